//! Pausing (freezer) and killing every process of a cgroup.
//!
//! The v1 freezer is used when the host has one (pure v1 and hybrid hosts); otherwise the
//! unified hierarchy's `cgroup.freeze`, which needs no controller and so also works on the
//! controller-less cgroup2 mount of a hybrid host. Freezing is asynchronous in both versions:
//! v1 passes through `FREEZING` and v2 reports completion in `cgroup.events`; both are waited
//! for, and a freeze that does not complete in time is undone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::instrument;

use super::files::{self, read_key};
use super::{Cgroup, CgroupError};

/// How long a freeze or thaw may take before it is reported as failed.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a v1 freeze re-requests `FROZEN` while tasks are still `FREEZING`.
const V1_REFREEZE: Duration = Duration::from_millis(100);
/// Rounds of "SIGKILL every listed pid" when there is neither `cgroup.kill` nor a freezer.
const KILL_ROUNDS: usize = 50;

/// Which freezer interface a cgroup uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Freezer<'a> {
    /// The v1 freezer cgroup directory (`freezer.state`).
    V1(&'a Path),
    /// A cgroup2 directory (`cgroup.freeze`, `cgroup.events`).
    V2(&'a Path),
}

impl Freezer<'_> {
    fn state_path(&self) -> PathBuf {
        match self {
            Freezer::V1(d) => d.join("freezer.state"),
            Freezer::V2(d) => d.join("cgroup.events"),
        }
    }

    fn request(&self, frozen: bool) -> Result<(), CgroupError> {
        match self {
            Freezer::V1(d) => files::write(
                &d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Freezer::V2(d) => {
                files::write(&d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
            }
        }
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self {
            Freezer::V1(d) => Ok(files::read(&d.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(d) => Ok(read_key(&d.join("cgroup.events"), "frozen")? == 1),
        }
    }

    fn is_thawed(&self) -> Result<bool, CgroupError> {
        match self {
            Freezer::V1(d) => Ok(files::read(&d.join("freezer.state"))?.trim() == "THAWED"),
            Freezer::V2(d) => Ok(read_key(&d.join("cgroup.events"), "frozen")? == 0),
        }
    }

    /// Requests the state and waits until the kernel reports it reached.
    fn set(&self, frozen: bool) -> Result<(), CgroupError> {
        self.request(frozen)?;
        let start = Instant::now();
        let mut last_request = start;
        let mut pause = Duration::from_micros(200);
        loop {
            let done = if frozen {
                self.is_frozen()?
            } else {
                self.is_thawed()?
            };
            if done {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::Timeout {
                    path: self.state_path(),
                    want: if frozen { "frozen" } else { "thawed" },
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            if frozen && matches!(self, Freezer::V1(_)) && last_request.elapsed() > V1_REFREEZE {
                // Tasks that were busy in the kernel may have missed the first request.
                self.request(true)?;
                last_request = Instant::now();
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

/// Sends SIGKILL to `pid`; a process that is already gone is fine.
fn sigkill(pid: i32, rel: &str) -> Result<(), CgroupError> {
    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(CgroupError::Kill {
            pid,
            rel: rel.to_string(),
            source,
        }),
    }
}

impl Cgroup {
    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    /// When that does not happen in time the cgroup is thawed again and an error returned.
    #[instrument(skip_all, fields(cgroup = %self.rel))]
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.check()?;
        let f = self.freezer()?;
        let result = f.set(true);
        if result.is_err() {
            if let Err(error) = f.request(false) {
                tracing::warn!(%error, "cannot thaw after a failed freeze");
            }
        }
        result
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    #[instrument(skip_all, fields(cgroup = %self.rel))]
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.check()?;
        self.freezer()?.set(false)
    }

    /// Whether the cgroup is completely frozen (a freeze still in progress is not frozen).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        self.check()?;
        self.freezer()?.is_frozen()
    }

    /// Kills every process of the cgroup with SIGKILL. Uses `cgroup.kill` (Linux 5.14+)
    /// where the cgroup has a cgroup2 directory, which also catches processes forking
    /// meanwhile; otherwise freezes the cgroup, signals every pid and thaws it, so nothing can
    /// fork out of reach. A paused cgroup works too: a v1 freezer is thawed afterwards, since
    /// its tasks only die once thawed. Does not wait for the processes to be gone.
    #[instrument(skip_all, fields(cgroup = %self.rel))]
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        self.check()?;
        let mut errors = Vec::new();
        let cgroup_kill = self.unified.as_ref().map(|d| d.join("cgroup.kill"));
        match cgroup_kill.filter(|p| p.exists()) {
            Some(path) => {
                files::write(&path, "1")?;
                // Anything that joined only a v1 hierarchy is not covered by cgroup.kill.
                for pid in self.pids()? {
                    errors.extend(sigkill(pid, &self.rel).err());
                }
                // Tasks frozen by a v1 freezer die only once thawed (v2-frozen ones die at once).
                if let Some(d) = self.v1.get("freezer") {
                    errors.extend(Freezer::V1(d).set(false).err());
                }
            }
            None => match self.freezer() {
                Ok(f) => {
                    // Best effort: even if the freeze fails, every pid still gets its SIGKILL.
                    let frozen = f.set(true);
                    for pid in self.pids()? {
                        errors.extend(sigkill(pid, &self.rel).err());
                    }
                    errors.extend(frozen.err());
                    errors.extend(f.set(false).err());
                }
                Err(_) => {
                    for _ in 0..KILL_ROUNDS {
                        let pids = self.pids()?;
                        if pids.is_empty() {
                            break;
                        }
                        for pid in pids {
                            errors.extend(sigkill(pid, &self.rel).err());
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            },
        }
        CgroupError::collect("kill", &self.rel, errors)
    }

    /// The freezer interface: v1 freezer when joined, else the cgroup2 directory.
    pub(crate) fn freezer(&self) -> Result<Freezer<'_>, CgroupError> {
        if let Some(d) = self.v1.get("freezer") {
            return Ok(Freezer::V1(d));
        }
        match &self.unified {
            Some(d) => Ok(Freezer::V2(d)),
            None => Err(CgroupError::NoFreezer {
                rel: self.rel.clone(),
            }),
        }
    }
}
