//! cgroups for containers on cgroup v1, v2 and hybrid hosts.
//!
//! [`Layout::detect`] reads `/proc/self/mountinfo` at run time and finds which kind of host
//! this is (see [`layout`]). [`Cgroup::create`] then makes the container's cgroup, a relative
//! path such as `berth/<rootid>/<container-id>`, in every hierarchy berth needs:
//!
//! - v1: `memory`, `cpu`, `cpuacct`, `pids`, `freezer` and `devices` (never `cpuset`, whose
//!   new cgroups accept no process until `cpuset.cpus`/`cpuset.mems` are filled in);
//! - v2: the unified hierarchy, after delegating `cpu`, `memory` and `pids` through
//!   `cgroup.subtree_control` of every ancestor;
//! - hybrid: the v1 hierarchies above plus the (controller-less) unified hierarchy, so the
//!   container's cgroup namespace is rooted in its own cgroup everywhere and `cgroup.kill` is
//!   available.
//!
//! Limits: memory (`memory.limit_in_bytes` plus `memory.memsw.limit_in_bytes` on v1,
//! `memory.max` plus `memory.swap.max = 0` on v2, so swap cannot dodge the limit), CPU quota
//! (`--cpus` times a 100 ms period) and a pids limit. Every container also gets Docker's
//! device allowlist (module `devices`): the v1 devices controller where the host has it, else an
//! eBPF device program on the cgroup2 directory. If neither can be put in force,
//! [`Cgroup::devices_enforced`] says so and the caller must drop `CAP_MKNOD`.
//!
//! # How cgroup v2 is tested on this v1-heavy host
//!
//! The development host is hybrid: every controller is bound to a v1 hierarchy and the cgroup2
//! mount at `/sys/fs/cgroup/unified` has none, and a controller bound to v1 cannot be given to
//! v2 without unmounting the host's hierarchies. So:
//! - the v2 code paths that need no controller run for real on `/sys/fs/cgroup/unified`, using
//!   a pure-v2 [`Layout`] rooted there: joining (`cgroup.procs`), freezing through
//!   `cgroup.freeze` and `cgroup.events`, `cgroup.kill`, removal, and the eBPF device filter
//!   (a child in the cgroup is refused a block device node and allowed `/dev/null`);
//! - the v2 limit files (`memory.max`, `memory.swap.max`, `cpu.max`, `pids.max`), controller
//!   delegation through `cgroup.subtree_control` and v2 statistics are tested on tempdirs laid
//!   out like cgroupfs;
//! - the hybrid and v1 paths (limits, OOM detection, freezer, statistics, devices) run for
//!   real on the host's hierarchies.

mod devices;
mod files;
mod freezer;
pub mod layout;
mod limits;
mod sys;

#[cfg(test)]
mod host_tests;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tracing::instrument;

pub use layout::Layout;

/// Failure of a cgroup operation, naming the step and the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("create cgroup directory {path}: {source}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove cgroup directory {path}: {source}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("parse mountinfo line {line}: {text:?}")]
    Mountinfo { line: usize, text: String },
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchies,
    #[error("invalid cgroup path {rel:?}: {reason}")]
    InvalidPath { rel: String, reason: &'static str },
    #[error("invalid {resource} limit {value}: {reason}")]
    InvalidLimit {
        resource: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "{resource} limit requested for cgroup {rel} but the host has no {controller} controller"
    )]
    MissingController {
        resource: &'static str,
        controller: &'static str,
        rel: String,
    },
    #[error("cgroup {rel} has no freezer")]
    NoFreezer { rel: String },
    #[error("timed out after {waited_ms} ms waiting for {path} to show {want}")]
    Timeout {
        path: PathBuf,
        want: &'static str,
        waited_ms: u64,
    },
    #[error("send SIGKILL to pid {pid} of cgroup {rel}: {source}")]
    Kill {
        pid: i32,
        rel: String,
        #[source]
        source: nix::Error,
    },
    #[error("device filter for {path}: {step}: {source}{}", if log.is_empty() { String::new() } else { format!("; verifier log: {log}") })]
    Bpf {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        log: String,
    },
    #[error("{op} cgroup {rel}: {}", join(errors))]
    Several {
        op: &'static str,
        rel: String,
        errors: Vec<CgroupError>,
    },
}

fn join(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl CgroupError {
    /// `Ok` when `errors` is empty, the single error, or all of them in [`CgroupError::Several`].
    fn collect(
        op: &'static str,
        rel: &str,
        mut errors: Vec<CgroupError>,
    ) -> Result<(), CgroupError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CgroupError::Several {
                op,
                rel: rel.to_string(),
                errors,
            }),
        }
    }
}

/// Resource limits of a container; `None` leaves the resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (swap included).
    pub memory: Option<u64>,
    /// CPU quota in CPUs: `cpus * 100 ms` of CPU time per 100 ms period.
    pub cpus: Option<f64>,
    /// Maximum number of tasks; zero or negative means unlimited.
    pub pids: Option<i64>,
}

/// Usage figures of a cgroup. A field is `None` when the host has no controller for it, and
/// the two limits are `None` when unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub memory_usage_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// Total CPU time of all tasks, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Enforcement periods elapsed while a quota was set.
    pub cpu_periods: Option<u64>,
    /// Periods in which the quota ran out.
    pub cpu_throttled_periods: Option<u64>,
    /// Total time tasks were held back by the quota, in nanoseconds.
    pub cpu_throttled_ns: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_max: Option<u64>,
}

/// A container's cgroup: its directory in every hierarchy it uses.
#[derive(Debug, Clone)]
pub struct Cgroup {
    rel: String,
    /// Why `rel` was refused by [`Cgroup::open`]; every operation then fails with it.
    invalid: Option<&'static str>,
    /// v1 controller name to this cgroup's directory in that controller's hierarchy.
    v1: BTreeMap<String, PathBuf>,
    /// This cgroup's directory in the unified hierarchy (pure v2 and hybrid).
    unified: Option<PathBuf>,
    /// Whether the resource controllers live in `unified` (pure v2).
    v2_controllers: bool,
    /// Whether a device filter is in force; known after `create`, looked up after `open`.
    devices: Option<bool>,
}

/// Checks a cgroup path: relative, no empty, `.` or `..` components.
fn check_rel(rel: &str) -> Result<(), &'static str> {
    if rel.is_empty() {
        return Err("empty");
    }
    if rel.starts_with('/') {
        return Err("must be relative");
    }
    if rel.contains('\0') {
        return Err("contains a NUL byte");
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("empty, `.` or `..` component");
    }
    Ok(())
}

impl Cgroup {
    /// Creates the cgroup `rel` (e.g. `berth/<rootid>/<container-id>`) in every hierarchy
    /// berth needs, applies `res` and the device allowlist. On failure, removes the
    /// directories it created.
    #[instrument(skip_all, fields(cgroup = %rel))]
    pub fn create(layout: &Layout, rel: &str, res: &Resources) -> Result<Cgroup, CgroupError> {
        check_rel(rel).map_err(|reason| CgroupError::InvalidPath {
            rel: rel.to_string(),
            reason,
        })?;
        limits::validate(res)?;
        let mut cg = Cgroup::open(layout, rel);
        if !cg.v2_controllers {
            for (resource, controller) in limits::required(res) {
                if !cg.v1.contains_key(controller) {
                    return Err(CgroupError::MissingController {
                        resource,
                        controller,
                        rel: rel.to_string(),
                    });
                }
            }
        }
        let mut created = Vec::new();
        match cg.populate(layout, res, &mut created) {
            Ok(enforced) => {
                cg.devices = Some(enforced);
                tracing::debug!(devices_enforced = enforced, "cgroup created");
                Ok(cg)
            }
            Err(e) => {
                undo(&created);
                Err(e)
            }
        }
    }

    /// Makes the directories, writes the limits and the device filter. Returns whether the
    /// device filter is in force.
    fn populate(
        &self,
        layout: &Layout,
        res: &Resources,
        created: &mut Vec<PathBuf>,
    ) -> Result<bool, CgroupError> {
        let required: Vec<&str> = limits::required(res).iter().map(|r| r.1).collect();
        if let Some(v1) = layout.v1_controllers() {
            let mut done: Vec<&Path> = Vec::new();
            for (_, root) in v1.iter().filter(|(c, _)| self.v1.contains_key(*c)) {
                if !done.contains(&root.as_path()) {
                    files::mkdir_p(root, &self.rel, created, &mut |_| Ok(()))?;
                    done.push(root);
                }
            }
        }
        if let Some(root) = layout.unified() {
            let v2 = self.v2_controllers;
            let mut delegate = |parent: &Path| {
                if v2 {
                    limits::delegate_v2(parent, &required)
                } else {
                    Ok(())
                }
            };
            let dir = files::mkdir_p(root, &self.rel, created, &mut delegate)?;
            if v2 {
                limits::check_v2(&dir, &self.rel, res)?;
                limits::apply_v2(&dir, res)?;
            }
        }
        if !self.v2_controllers {
            limits::apply_v1(&self.v1, res)?;
        }
        if let Some(dir) = self.v1.get("devices") {
            devices::apply_v1(dir)?;
            return Ok(true);
        }
        match &self.unified {
            Some(dir) => match devices::attach_bpf(dir) {
                Ok(()) => Ok(true),
                Err(error) => {
                    tracing::warn!(%error, "no device filter; CAP_MKNOD must be dropped");
                    Ok(false)
                }
            },
            None => Ok(false),
        }
    }

    /// Refers to an existing cgroup (after an engine restart); touches nothing. An invalid
    /// `rel` makes every later operation fail.
    pub fn open(layout: &Layout, rel: &str) -> Cgroup {
        let invalid = check_rel(rel).err();
        let v1 = match (invalid, layout.v1_controllers()) {
            (None, Some(map)) => map
                .iter()
                .filter(|(c, _)| layout::V1_CONTROLLERS.contains(&c.as_str()))
                .map(|(c, root)| (c.clone(), root.join(rel)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Cgroup {
            rel: rel.to_string(),
            invalid,
            v1,
            unified: layout
                .unified()
                .filter(|_| invalid.is_none())
                .map(|u| u.join(rel)),
            v2_controllers: layout.is_v2(),
            devices: None,
        }
    }

    /// The relative path this cgroup was created or opened with.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    fn check(&self) -> Result<(), CgroupError> {
        match self.invalid {
            Some(reason) => Err(CgroupError::InvalidPath {
                rel: self.rel.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Every directory of this cgroup, each once (co-mounted controllers share one).
    fn dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for d in self
            .v1
            .values()
            .map(PathBuf::as_path)
            .chain(self.unified.as_deref())
        {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// The `cgroup.procs` file of every hierarchy; writing a pid to each moves it in.
    pub fn procs_paths(&self) -> Vec<PathBuf> {
        self.dirs().iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Moves process `pid` into the cgroup in every hierarchy.
    #[instrument(skip(self), fields(cgroup = %self.rel))]
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.check()?;
        for p in self.procs_paths() {
            files::write(&p, &pid.to_string())?;
        }
        Ok(())
    }

    /// Every process in the cgroup (in any of its hierarchies), sorted. A cgroup that no
    /// longer exists has none.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.check()?;
        let mut pids = Vec::new();
        for p in self.procs_paths() {
            let Some(text) = files::read_opt(&p)? else {
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
                    path: p.clone(),
                    content: line.to_string(),
                })?;
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup. v1 reads the
    /// `oom_kill` counter of `memory.oom_control` (Linux 4.13+; older kernels report false),
    /// v2 the one of `memory.events`. Without a memory controller this is always false.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        self.check()?;
        let path = match (&self.unified, self.v1.get("memory")) {
            (Some(d), _) if self.v2_controllers => d.join("memory.events"),
            (_, Some(d)) => d.join("memory.oom_control"),
            _ => return Ok(false),
        };
        let Some(text) = files::read_opt(&path)? else {
            return Ok(false);
        };
        Ok(files::keyed(&text).get("oom_kill").is_some_and(|&n| n > 0))
    }

    /// Memory, CPU and pids figures.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.check()?;
        match &self.unified {
            Some(d) if self.v2_controllers => limits::stats_v2(d),
            u => limits::stats_v1(&self.v1, u.as_deref()),
        }
    }

    /// Removes the cgroup from every hierarchy. Best effort: keeps going after a failure and
    /// returns every error; a directory already gone is success, a busy one is retried
    /// briefly (processes that were just killed take a moment to leave).
    #[instrument(skip_all, fields(cgroup = %self.rel))]
    pub fn delete(&self) -> Result<(), CgroupError> {
        self.check()?;
        let errors: Vec<CgroupError> = self
            .dirs()
            .into_iter()
            .filter_map(|d| files::rmdir(d).err())
            .collect();
        CgroupError::collect("delete", &self.rel, errors)
    }

    /// Whether a device allowlist is in force for this cgroup (v1 devices controller or an
    /// eBPF device program). When false the caller must drop `CAP_MKNOD`.
    pub fn devices_enforced(&self) -> bool {
        if let Some(known) = self.devices {
            return known;
        }
        if self.invalid.is_some() {
            return false;
        }
        if let Some(d) = self.v1.get("devices") {
            return d.is_dir();
        }
        self.unified.as_deref().is_some_and(devices::bpf_attached)
    }
}

/// Removes directories a failed `create` made, innermost first. Ancestors still holding
/// another container's cgroup are left alone.
fn undo(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if let Err(error) = std::fs::remove_dir(dir) {
            let in_use = matches!(error.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY));
            if !in_use && error.kind() != io::ErrorKind::NotFound {
                tracing::warn!(%error, path = %dir.display(), "cannot remove cgroup directory after a failed create");
            }
        }
    }
}

#[cfg(test)]
mod tests;
