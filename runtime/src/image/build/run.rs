//! RUN: the command runs in a container of berth's own runtime, on the stage's layers, in the
//! host's network namespace (with the host's `/etc/resolv.conf`), its output streamed line by
//! line. What it changed is the container's overlay upper dir, which the builder turns into
//! the step's layer; the container is deleted when the [`BuildContainer`] guard drops.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::{self, Runtime, RuntimeError};
use crate::logs::Follower;
use crate::spec::{ContainerSpec, LogConfig, NetworkMode};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// The stage's layer directories, bottom first.
    pub layers: Vec<PathBuf>,
}

/// A build container, deleted (killed first if it still runs) on drop.
pub struct BuildContainer<'a> {
    runtime: &'a Runtime,
    id: String,
    pidfd: Option<OwnedFd>,
}

impl BuildContainer<'_> {
    /// The overlay upper dir: everything the command changed.
    pub fn upper(&self) -> PathBuf {
        self.runtime.container_dir(&self.id).join("upper")
    }
}

impl Drop for BuildContainer<'_> {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = container::signal(&fd, libc::SIGKILL);
            for _ in 0..200 {
                match crate::sys::waitid_pidfd(fd.as_raw_fd()) {
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    _ => break,
                }
            }
        }
        if let Err(errors) = self.runtime.delete(&self.id) {
            for e in errors {
                tracing::warn!(container = %self.id, error = %e, "remove build container");
            }
        }
    }
}

/// Runs `req` to completion, sending each output line to `output`. Returns the exit code and
/// the (stopped) container, whose upper dir holds the changes.
#[tracing::instrument(skip_all, fields(args = ?req.args))]
pub fn run<'a>(
    runtime: &'a Runtime,
    req: &RunRequest,
    output: &dyn Fn(&str),
) -> Result<(i32, BuildContainer<'a>), RuntimeError> {
    let id = format!("build-{}", hex::encode(rand::random::<[u8; 12]>()));
    let spec = ContainerSpec {
        id: id.clone(),
        name: id.clone(),
        hostname: "berth-build".to_string(),
        layers: req.layers.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        working_dir: req.working_dir.clone(),
        user: req.user.clone(),
        network: NetworkMode::Host,
        memory: None,
        cpus: None,
        pids_limit: None,
        stop_signal: "SIGKILL".to_string(),
        stop_timeout: 0,
        read_only: false,
        mounts: Vec::new(),
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        rlimits: Vec::new(),
        sysctls: Default::default(),
        labels: Default::default(),
        log: LogConfig::default(),
        image: String::new(),
        image_id: String::new(),
    };
    runtime.create(&spec, false)?;
    let mut guard = BuildContainer {
        runtime,
        id: id.clone(),
        pidfd: None,
    };
    let dir = runtime.container_dir(&id);
    let io = |step| {
        let id = id.clone();
        move |source| RuntimeError::Io { id, step, source }
    };
    let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
    fs::write(dir.join("resolv.conf"), resolv).map_err(io("write resolv.conf"))?;
    fs::write(
        dir.join("hosts"),
        "127.0.0.1\tlocalhost berth-build\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .map_err(io("write hosts"))?;
    let running = runtime.spawn(&spec)?.resume()?;
    guard.pidfd = Some(running.pidfd);
    let mut follower = Follower::at_start(&dir.join("log.json"));
    let mut partial = String::new();
    let emit = |follower: &mut Follower, partial: &mut String| {
        for e in follower.poll() {
            partial.push_str(&e.log);
            while let Some(i) = partial.find('\n') {
                output(&partial[..i]);
                partial.drain(..=i);
            }
        }
    };
    let status = loop {
        let fd = guard.pidfd.as_ref().map(AsFd::as_fd);
        let Some(fd) = fd else { break None };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io("wait for the build command")(e.into())),
        }
        emit(&mut follower, &mut partial);
        match crate::sys::waitid_pidfd(fd.as_raw_fd()) {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => return Err(io("wait for the build command")(e)),
        }
    };
    guard.pidfd = None;
    emit(&mut follower, &mut partial);
    if !partial.is_empty() {
        output(&partial);
    }
    let (code, _) = container::exit_code(&dir, status);
    if let Err(e) = runtime.release(&id) {
        tracing::debug!(container = %id, error = %e, "release build container cgroup");
    }
    Ok((code, guard))
}
