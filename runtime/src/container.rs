//! The host side of a container's lifecycle.
//!
//! A container lives in `<containers dir>/<id>/`: `spec.json` (what to run), `upper/` and
//! `work/` (its writable overlay layer), `rootfs/` (the mount point, mounted only inside the
//! container's own mount namespace), `log.json` and `exit.json` (written by its init).
//!
//! Starting is two steps so the caller can wire the network in between: [`Runtime::spawn`]
//! clones the init into new namespaces, places it in the cgroup and leaves it waiting;
//! [`Starting::resume`] lets it build the root and start the main process, and returns the
//! init's verdict. Every failure on the way removes what was made.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, instrument};

use crate::cgroup::{Cgroup, CgroupError, Layout, Resources};
use crate::init::{self, ExecRequest, ExitRecord};
use crate::spec::{ContainerSpec, NetworkMode};
use crate::sys::{self, ChildExit, ExecPlan};

/// Errors of container lifecycle steps; each names the container and the step.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("prepare the init binary: {0}")]
    InitBinary(#[source] io::Error),
    #[error("detect cgroups: {0}")]
    Cgroups(#[source] CgroupError),
    #[error("container {id}: {step}: {source}")]
    Io {
        id: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("container {id}: {step}: {source}")]
    Cgroup {
        id: String,
        step: &'static str,
        #[source]
        source: CgroupError,
    },
    #[error("container {id}: write state: {source}")]
    State {
        id: String,
        #[source]
        source: crate::fsutil::FsError,
    },
    #[error("container {id} failed to start: {message}")]
    StartFailed { id: String, message: String },
}

/// The container runtime of one berth root.
pub struct Runtime {
    dir: PathBuf,
    init: OwnedFd,
    layout: Layout,
    cgroup_base: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("dir", &self.dir)
            .field("cgroup_base", &self.cgroup_base)
            .finish()
    }
}

/// A container whose init waits for `go`.
#[derive(Debug)]
pub struct Starting {
    pub id: String,
    pub pid: i32,
    pub pidfd: OwnedFd,
    ctl: UnixStream,
    cgroup: Cgroup,
    no_mknod: bool,
    dir: PathBuf,
}

/// A running container: its init's pid (on the host) and a pidfd for it.
#[derive(Debug)]
pub struct Running {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub start_time: u64,
}

/// A process started by `exec`, with its stdio pipes.
#[derive(Debug)]
pub struct ExecProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub stdin: Option<fs::File>,
    pub stdout: fs::File,
    pub stderr: fs::File,
}

impl Runtime {
    /// Opens the runtime: containers under `dir`, cgroups under `cgroup_base` in every
    /// hierarchy. Makes the sealed copy of this binary that every init is exec'd from.
    pub fn new(dir: &Path, cgroup_base: &str) -> Result<Self, RuntimeError> {
        fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
            id: String::new(),
            step: "create containers dir",
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            init: sys::sealed_self_copy().map_err(RuntimeError::InitBinary)?,
            layout: Layout::detect().map_err(RuntimeError::Cgroups)?,
            cgroup_base: cgroup_base.to_string(),
        })
    }

    /// The directory of a container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The cgroup of a container (whether or not it exists yet).
    pub fn cgroup(&self, id: &str) -> Cgroup {
        Cgroup::open(&self.layout, &format!("{}/{id}", self.cgroup_base))
    }

    /// Creates a container's directory and writes its spec (durably unless `durable` is false:
    /// containers removed at exit need not survive a host crash).
    #[instrument(skip(self, spec), fields(container = %spec.id))]
    pub fn create(&self, spec: &ContainerSpec, durable: bool) -> Result<(), RuntimeError> {
        let dir = self.container_dir(&spec.id);
        let io = |step| {
            move |source| RuntimeError::Io {
                id: spec.id.clone(),
                step,
                source,
            }
        };
        for sub in ["upper", "work", "rootfs"] {
            fs::create_dir_all(dir.join(sub)).map_err(io("create container dirs"))?;
        }
        crate::fsutil::write_json_with(&dir.join("spec.json"), spec, durable).map_err(|source| {
            let _ = fs::remove_dir_all(&dir);
            RuntimeError::State {
                id: spec.id.clone(),
                source,
            }
        })
    }

    /// Clones the container's init into new namespaces, inside a fresh cgroup with the spec's
    /// limits. The init waits until [`Starting::resume`].
    #[instrument(skip(self, spec), fields(container = %spec.id))]
    pub fn spawn(&self, spec: &ContainerSpec) -> Result<Starting, RuntimeError> {
        let id = spec.id.clone();
        let dir = self.container_dir(&id);
        let io = |step| {
            let id = id.clone();
            move |source| RuntimeError::Io { id, step, source }
        };
        let _ = fs::remove_file(dir.join("exit.json"));
        let res = Resources {
            memory: spec.memory,
            cpus: spec.cpus,
            pids: spec.pids_limit,
        };
        let cgroup = Cgroup::create(&self.layout, &format!("{}/{id}", self.cgroup_base), &res)
            .map_err(|source| RuntimeError::Cgroup {
                id: id.clone(),
                step: "create cgroup",
                source,
            })?;
        let cleanup_cgroup = |e: RuntimeError| {
            let _ = cgroup.delete();
            e
        };
        let (engine_end, child_end) = UnixStream::pair()
            .map_err(io("socketpair"))
            .map_err(cleanup_cgroup)?;
        let null = fs::File::open("/dev/null")
            .map_err(io("open /dev/null"))
            .map_err(cleanup_cgroup)?;
        let init_log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("init.log"))
            .map_err(io("open init.log"))
            .map_err(cleanup_cgroup)?;
        let argv = vec![
            "berth-init".to_string(),
            "__init".to_string(),
            dir.display().to_string(),
        ];
        let env =
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
        let plan = ExecPlan::new(
            &argv,
            &env,
            vec![
                (null.as_raw_fd(), 0),
                (init_log.as_raw_fd(), 1),
                (init_log.as_raw_fd(), 2),
                (child_end.as_raw_fd(), 3),
            ],
        )
        .map_err(io("prepare init arguments"))
        .map_err(cleanup_cgroup)?;
        let mut flags =
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
        if spec.network != NetworkMode::Host {
            flags |= libc::CLONE_NEWNET;
        }
        let child = sys::clone_exec(self.init.as_raw_fd(), flags, &plan)
            .map_err(io("clone the init"))
            .map_err(cleanup_cgroup)?;
        drop(child_end);
        debug!(pid = child.pid, "init cloned");
        let starting = Starting {
            id: id.clone(),
            pid: child.pid,
            pidfd: child.pidfd,
            ctl: engine_end,
            no_mknod: !cgroup.devices_enforced(),
            cgroup,
            dir,
        };
        if let Err(source) = starting.cgroup.add_process(starting.pid) {
            starting.abort();
            return Err(RuntimeError::Cgroup {
                id,
                step: "join cgroup",
                source,
            });
        }
        Ok(starting)
    }

    /// Deletes what an interrupted removal left in the trash.
    pub fn empty_trash(&self) {
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(".trash-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// Removes this root's parent cgroup (`berth/<root id>`) once no container uses it.
    pub fn remove_cgroup_base(&self) -> Result<(), RuntimeError> {
        Cgroup::open(&self.layout, &self.cgroup_base)
            .delete()
            .map_err(|source| RuntimeError::Cgroup {
                id: String::new(),
                step: "delete the root's cgroup",
                source,
            })?;
        // The shared `berth` parent goes too once no other root uses it (rmdir fails while
        // another root's cgroups are inside, which is fine).
        let mounts = self
            .layout
            .v1_controllers()
            .map(|c| c.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(self.layout.unified().map(Path::to_path_buf));
        if let Some(top) = self.cgroup_base.split('/').next() {
            for m in mounts {
                let _ = fs::remove_dir(m.join(top));
            }
        }
        Ok(())
    }

    /// Removes a stopped container's cgroup (its processes are gone).
    pub fn release(&self, id: &str) -> Result<(), RuntimeError> {
        let cg = self.cgroup(id);
        let _ = cg.kill_all();
        cg.delete().map_err(|source| RuntimeError::Cgroup {
            id: id.to_string(),
            step: "delete cgroup",
            source,
        })
    }

    /// Deletes a container that has stopped: its cgroup and its directory. ENOENT is success,
    /// so deleting twice is safe; every error is returned.
    #[instrument(skip(self))]
    pub fn delete(&self, id: &str) -> Result<(), Vec<RuntimeError>> {
        let mut errors = Vec::new();
        if let Err(e) = self.release(id) {
            errors.push(e);
        }
        // Rename into the trash first (atomic: the container is gone at once), then delete the
        // files off the caller's path.
        let dir = self.container_dir(id);
        let trash = self.dir.join(format!(".trash-{id}"));
        match fs::rename(&dir, &trash) {
            Ok(()) => {
                std::thread::spawn(move || {
                    let _ = fs::remove_dir_all(&trash);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => errors.push(RuntimeError::Io {
                id: id.to_string(),
                step: "remove container dir",
                source,
            }),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Starts `req` inside the running container whose init is `pid`.
    #[instrument(skip(self, req))]
    pub fn exec(
        &self,
        id: &str,
        pid: i32,
        mut req: ExecRequest,
        stdin: bool,
    ) -> Result<ExecProcess, RuntimeError> {
        let io = |step| {
            move |source| RuntimeError::Io {
                id: id.to_string(),
                step,
                source,
            }
        };
        req.cgroup_procs = self.cgroup(id).procs_paths();
        let dir = self.container_dir(id);
        let argv = init::exec_args(&dir, pid, &req)
            .map_err(|e| io("encode exec request")(io::Error::other(e)))?;
        let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
            Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
        };
        let (in_r, in_w) = if stdin {
            let (r, w) = pipe().map_err(io("pipe"))?;
            (OwnedFd::from(fs::File::from(r)), Some(w))
        } else {
            (
                OwnedFd::from(fs::File::open("/dev/null").map_err(io("open /dev/null"))?),
                None,
            )
        };
        let (out_r, out_w) = pipe().map_err(io("pipe"))?;
        let (err_r, err_w) = pipe().map_err(io("pipe"))?;
        let plan = ExecPlan::new(
            &argv,
            &[],
            vec![
                (in_r.as_raw_fd(), 0),
                (out_w.as_raw_fd(), 1),
                (err_w.as_raw_fd(), 2),
            ],
        )
        .map_err(io("prepare exec arguments"))?;
        let child = sys::clone_exec(self.init.as_raw_fd(), 0, &plan)
            .map_err(io("clone the exec helper"))?;
        Ok(ExecProcess {
            pid: child.pid,
            pidfd: child.pidfd,
            stdin: in_w.map(fs::File::from),
            stdout: fs::File::from(out_r),
            stderr: fs::File::from(err_r),
        })
    }
}

impl Starting {
    /// The network namespace of the container, for the network layer to attach to.
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid))
    }

    /// Lets the init build the root and start the main process; returns once the main process
    /// has been exec'd, or the init's error (then nothing of the container is left running).
    #[instrument(skip(self), fields(container = %self.id))]
    pub fn resume(mut self) -> Result<Running, RuntimeError> {
        let go: &[u8] = if self.no_mknod {
            b"go nomknod\n"
        } else {
            b"go\n"
        };
        let mut line = String::new();
        let outcome = self
            .ctl
            .set_read_timeout(Some(Duration::from_secs(60)))
            .and_then(|()| self.ctl.write_all(go))
            .and_then(|()| BufReader::new(&self.ctl).read_line(&mut line));
        let message = match outcome {
            Ok(_) if line.trim() == "ok" => {
                let start_time = sys::process_start_time(self.pid).unwrap_or(0);
                return Ok(Running {
                    pid: self.pid,
                    pidfd: self.pidfd,
                    start_time,
                });
            }
            Ok(_) => match line.trim().strip_prefix("err ") {
                Some(m) => m.to_string(),
                None => {
                    let log = fs::read_to_string(self.dir.join("init.log")).unwrap_or_default();
                    format!("the init exited during setup: {}", log.trim())
                }
            },
            Err(e) => format!("talking to the init: {e}"),
        };
        let id = self.id.clone();
        self.abort();
        Err(RuntimeError::StartFailed { id, message })
    }

    /// Kills and reaps the init and removes the cgroup.
    pub fn abort(self) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL);
        for _ in 0..200 {
            match sys::waitid_pidfd(self.pidfd.as_raw_fd()) {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        let _ = self.cgroup.delete();
    }
}

/// How a container's init ended, from what the kernel and the init report.
pub fn exit_code(dir: &Path, reaped: Option<ChildExit>) -> (i32, Option<ExitRecord>) {
    let record = init::read_exit(dir);
    let code = match (&record, reaped) {
        (Some(r), _) => r.exit_code,
        (None, Some(status)) => status.code(),
        (None, None) => 137,
    };
    (code, record)
}

/// Sends `sig` to a container's init through its pidfd; a process already gone is success.
pub fn signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    match sys::pidfd_send_signal(pidfd.as_raw_fd(), sig) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other,
    }
}

/// Parses a signal given as `TERM`, `SIGTERM` or `15`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}
