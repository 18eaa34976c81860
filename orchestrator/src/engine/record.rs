//! A container as the engine holds it: its spec, its persisted state (`state.json`, written
//! atomically on every change) and the live handles (pidfd, exit notifications, an operation
//! lock that serialises lifecycle steps on one container).

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use super::EngineError;
use crate::api::{ContainerInfo, ContainerSpec, ContainerState, Status};

/// One container.
pub struct Container {
    pub id: String,
    pub name: String,
    pub spec: ContainerSpec,
    pub dir: PathBuf,
    state: Mutex<ContainerState>,
    pidfd: Mutex<Option<Arc<AsyncFd<OwnedFd>>>>,
    /// Bumped every time the container stops running.
    pub exits: watch::Sender<u64>,
    /// Held by start/stop/kill/pause/remove so they never interleave on one container.
    pub op: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl Container {
    /// A handle for a container with the given spec and state.
    pub fn new(spec: ContainerSpec, dir: PathBuf, state: ContainerState) -> Self {
        Self {
            id: spec.id.clone(),
            name: spec.name.clone(),
            spec,
            dir,
            state: Mutex::new(state),
            pidfd: Mutex::new(None),
            exits: watch::channel(0).0,
            op: tokio::sync::Mutex::new(()),
        }
    }

    /// A copy of the current state.
    pub fn state(&self) -> ContainerState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.state().status
    }

    /// Changes the state and persists it atomically.
    pub fn update(&self, f: impl FnOnce(&mut ContainerState)) -> Result<(), EngineError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st);
        // Not fsynced: after a host crash every container is dead whatever the file says, and
        // a restarted engine re-checks the process itself. The rename keeps it whole. The
        // write may wait on the disk, so a runtime worker hands its other tasks on meanwhile.
        let write = || {
            runtime::fsutil::write_json_with(&self.dir.join("state.json"), &*st, false)
                .map_err(|e| EngineError::Internal(format!("container {}: {e}", self.id)))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(write)
            }
            _ => write(),
        }
    }

    /// The pidfd of the running init, if any.
    pub fn pidfd(&self) -> Option<Arc<AsyncFd<OwnedFd>>> {
        self.pidfd.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets or clears the pidfd.
    pub fn set_pidfd(&self, fd: Option<Arc<AsyncFd<OwnedFd>>>) {
        *self.pidfd.lock().unwrap_or_else(|p| p.into_inner()) = fd;
    }

    /// What `inspect` shows.
    pub fn info(&self) -> ContainerInfo {
        ContainerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.spec.image.clone(),
            state: self.state(),
            config: self.spec.clone(),
            network: None,
        }
    }
}
