//! The orchestrator's only `unsafe`: registering owned descriptors (pidfds) with tokio.

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

/// Registers a pidfd with the reactor, so its exit can be awaited.
pub fn watch_fd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the OwnedFd, so the descriptor stays open and is
    // not reused for as long as it is registered, and it is closed only when the AsyncFd drops.
    unsafe { AsyncFd::register(fd).map_err(Into::into) }
}
