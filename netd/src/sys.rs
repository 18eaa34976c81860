//! The privileged primitives netd needs, in one place: running code inside another network
//! namespace on a dedicated thread, and the host-wide lock shared by berth roots.
//!
//! Namespace switches happen only on a freshly spawned thread that exits right after, so no
//! thread ever returns to the async runtime (or to anything else) in the wrong namespace.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sched::{setns, CloneFlags};

/// Errors of the privileged primitives.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("duplicate namespace file descriptor")]
    DupNetns(#[source] io::Error),
    #[error("spawn namespace thread")]
    Spawn(#[source] io::Error),
    #[error("enter network namespace")]
    Setns(#[source] nix::Error),
    #[error("namespace thread died before answering")]
    ThreadDied,
    #[error("open host lock {path}")]
    LockOpen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("take host lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("host lock task for {path} failed")]
    LockTask { path: PathBuf },
}

/// Runs `f` on a new thread that first joins the network namespace `netns`; the thread exits
/// afterwards. Sockets `f` creates stay bound to that namespace.
pub(crate) async fn in_netns<T, F>(netns: &File, f: F) -> Result<T, SysError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let fd = netns.try_clone().map_err(SysError::DupNetns)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netd-netns".into())
        .spawn(move || {
            let result = setns(&fd, CloneFlags::CLONE_NEWNET)
                .map_err(SysError::Setns)
                .map(|()| f());
            // The receiver only goes away if the caller was cancelled; nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(SysError::Spawn)?;
    rx.await.map_err(|_| SysError::ThreadDied)?
}

/// An exclusive `flock` on the host-wide lock file, released on drop.
#[derive(Debug)]
pub(crate) struct HostLock {
    _lock: Flock<File>,
}

impl HostLock {
    /// Waits for the lock (on a blocking thread, not the runtime).
    pub(crate) async fn acquire(path: &Path) -> Result<HostLock, SysError> {
        let path = path.to_owned();
        let task_path = path.clone();
        tokio::task::spawn_blocking(move || Self::acquire_blocking(&task_path))
            .await
            .map_err(|_| SysError::LockTask { path })?
    }

    fn acquire_blocking(path: &Path) -> Result<HostLock, SysError> {
        let open_err = |source| SysError::LockOpen {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(open_err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(open_err)?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, source)| SysError::Lock {
                path: path.to_owned(),
                source,
            })?;
        Ok(HostLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn host_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/netd.lock");
        let first = HostLock::acquire(&path).await.unwrap();
        let file = File::open(&path).unwrap();
        let again = Flock::lock(file, FlockArg::LockExclusiveNonblock);
        let file = match again {
            Ok(_) => panic!("lock taken twice"),
            Err((file, _)) => file,
        };
        drop(first);
        assert!(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
