//! PID 1 of every container, and the helper that `exec` runs inside a container.
//!
//! The engine execs a sealed memfd copy of the berth binary (see [`crate::sys::sealed_self_copy`])
//! as `berth __init DIR` in fresh namespaces. Over fd 3 (a socketpair) it waits for `go`, then
//! builds the root ([`rootfs`]), forks the main process ([`process`]) and answers `ok` or
//! `err MESSAGE`. From then on it is the container's init: it forwards signals to the main
//! process, reaps zombies, turns the main process's stdout and stderr into JSON log lines
//! ([`crate::logs`]) and, when the main process ends, writes `exit.json` and exits with its
//! code (the kernel then ends every other process of the pid namespace). There is no
//! per-container process on the host.
//!
//! `berth __exec DIR PID JSON` joins the cgroup and namespaces of the container whose init is
//! PID and runs a command there.

pub mod process;
pub mod rootfs;
pub mod user;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::logs;
use crate::spec::ContainerSpec;
use crate::sys::{self, Fork};

/// What the init writes when the main process ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: String,
}

/// What `exec` runs inside a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub caps: u64,
    pub cgroup_procs: Vec<PathBuf>,
}

/// Entry point for the hidden `__init` and `__exec` commands; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("__init"), Some(dir)) => init_main(Path::new(dir)),
        (Some("__exec"), Some(dir)) => exec_main(Path::new(dir), args.get(3), args.get(4)),
        _ => {
            eprintln!("berth: internal command used wrongly");
            2
        }
    }
}

struct App {
    /// The container's directory on the host, opened before `pivot_root` made its path
    /// unreachable: `exit.json` is written through it.
    dir: OwnedFd,
    pid: Pid,
    out: File,
    err: File,
    signals: SignalFd,
    log: logs::Writer,
}

fn init_main(dir: &Path) -> i32 {
    // fd 3 is the control socket the engine placed there for us.
    let ctl = match sys::take_fd(3) {
        Some(fd) => File::from(fd),
        None => return 125,
    };
    let mut writer = match ctl.try_clone() {
        Ok(w) => w,
        Err(_) => return 125,
    };
    match setup(dir, ctl) {
        Ok(app) => {
            let _ = writer.write_all(b"ok\n");
            drop(writer);
            supervise(app)
        }
        Err(msg) => {
            let _ = writer.write_all(format!("err {}\n", msg.replace('\n', " ")).as_bytes());
            125
        }
    }
}

fn setup(dir: &Path, ctl: File) -> Result<App, String> {
    let spec: ContainerSpec =
        crate::fsutil::read_json(&dir.join("spec.json")).map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(ctl)
        .read_line(&mut line)
        .map_err(|e| format!("read go: {e}"))?;
    let mut words = line.split_whitespace();
    if words.next() != Some("go") {
        return Err("the engine went away before start".into());
    }
    let no_mknod = words.any(|w| w == "nomknod");
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| format!("unshare cgroup namespace: {e}"))?;
    let log =
        logs::Writer::open(&dir.join("log.json"), spec.log.clone()).map_err(|e| e.to_string())?;
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", dir.display()))?;
    rootfs::prepare(&spec, dir).map_err(|e| e.to_string())?;
    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    let ids = user::resolve(Path::new("/"), &spec.user).map_err(|e| e.to_string())?;
    let mut caps =
        crate::caps::resolve(&spec.cap_add, &spec.cap_drop).map_err(|e| e.to_string())?;
    if no_mknod {
        caps &= !(1u64 << 27);
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(|e| format!("block signals: {e}"))?;
    let signals =
        SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC).map_err(|e| format!("signalfd: {e}"))?;
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let target = process::ExecTarget {
        args: &spec.args,
        env: &env,
        cwd: &spec.working_dir,
        ids: &ids,
        caps,
        rlimits: &spec.rlimits,
    };
    match sys::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            drop((out_r, err_r, rep_r));
            let _ = nix::sys::signal::sigprocmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            let _ = nix::unistd::setsid();
            let msg = match stdio(&out_w, &err_w) {
                Ok(()) => process::become_target(&target),
                Err(e) => e,
            };
            let _ = File::from(rep_w).write_all(msg.as_bytes());
            sys::exit_now(127)
        }
        Fork::Parent(pid) => {
            drop((out_w, err_w, rep_w));
            let mut report = String::new();
            let _ = File::from(rep_r).read_to_string(&mut report);
            if !report.is_empty() {
                return Err(report);
            }
            Ok(App {
                dir: dir_fd,
                pid: Pid::from_raw(pid),
                out: File::from(out_r),
                err: File::from(err_r),
                signals,
                log,
            })
        }
    }
}

fn stdio(out: &OwnedFd, err: &OwnedFd) -> Result<(), String> {
    let null = File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    for (src, dst) in [
        (null.as_raw_fd(), 0),
        (out.as_raw_fd(), 1),
        (err.as_raw_fd(), 2),
    ] {
        sys::dup_onto(src, dst).map_err(|e| format!("dup2 onto fd {dst}: {e}"))?;
    }
    Ok(())
}

fn supervise(mut app: App) -> i32 {
    let mut code: Option<i32> = None;
    let mut open = [true, true];
    let mut buf = vec![0u8; 64 * 1024];
    while code.is_none() {
        let mut fds = vec![PollFd::new(app.signals.as_fd(), PollFlags::POLLIN)];
        if open[0] {
            fds.push(PollFd::new(app.out.as_fd(), PollFlags::POLLIN));
        }
        if open[1] {
            fds.push(PollFd::new(app.err.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        for (stream, is_open) in open.iter_mut().enumerate() {
            if !*is_open {
                continue;
            }
            if ready[idx] {
                let file = if stream == 0 {
                    &mut app.out
                } else {
                    &mut app.err
                };
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => *is_open = false,
                    Ok(n) => {
                        let _ = app.log.push(stream + 1, &buf[..n]);
                    }
                }
            }
            idx += 1;
        }
        if ready[0] {
            code = handle_signals(&mut app);
        }
    }
    // Drain what the main process (or a child still holding the pipes) has written, without
    // waiting for an EOF that might never come.
    for (stream, file) in [(1, &mut app.out), (2, &mut app.err)] {
        let _ = sys::set_nonblocking(file.as_raw_fd());
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = app.log.push(stream, &buf[..n]);
        }
    }
    let _ = app.log.flush();
    let exit = code.unwrap_or(255);
    let record = ExitRecord {
        exit_code: exit,
        finished_at: logs::now_rfc3339(),
    };
    if let Ok(data) = serde_json::to_vec(&record) {
        if let Err(e) = logs::write_at(&app.dir, "exit.json", &data) {
            eprintln!("berth-init: write exit.json: {e}");
        }
    }
    exit
}

/// Reads pending signals: forwards the forwardable ones to the main process and reaps children.
/// Returns the main process's exit code once it has ended.
fn handle_signals(app: &mut App) -> Option<i32> {
    let mut result = None;
    while let Ok(Some(info)) = app.signals.read_signal() {
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, c)) if pid == app.pid => result = Some(c),
                    Ok(WaitStatus::Signaled(pid, s, _)) if pid == app.pid => {
                        result = Some(128 + s as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else if let Ok(sig) = Signal::try_from(signo) {
            let _ = nix::sys::signal::kill(app.pid, sig);
        }
        if result.is_some() {
            break;
        }
    }
    result
}

fn exec_main(dir: &Path, pid: Option<&String>, req: Option<&String>) -> i32 {
    match exec_setup(dir, pid, req) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("berth exec: {msg}");
            126
        }
    }
}

fn exec_setup(_dir: &Path, pid: Option<&String>, req: Option<&String>) -> Result<i32, String> {
    let pid: i32 = pid
        .and_then(|p| p.parse().ok())
        .ok_or("missing container pid")?;
    let req: ExecRequest = serde_json::from_str(req.ok_or("missing exec request")?)
        .map_err(|e| format!("exec request: {e}"))?;
    let me = std::process::id().to_string();
    for p in &req.cgroup_procs {
        std::fs::write(p, &me).map_err(|e| format!("join cgroup {}: {e}", p.display()))?;
    }
    let kinds = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut fds = Vec::new();
    for (name, flag) in kinds {
        let path = format!("/proc/{pid}/ns/{name}");
        let f = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        fds.push((f, flag, name));
    }
    for (f, flag, name) in &fds {
        nix::sched::setns(f.as_fd(), *flag)
            .map_err(|e| format!("join {name} namespace of pid {pid}: {e}"))?;
    }
    drop(fds);
    match sys::fork().map_err(|e| format!("fork: {e}"))? {
        Fork::Child => {
            sys::set_parent_death_signal(libc::SIGKILL);
            let msg = match user::resolve(Path::new("/"), &req.user) {
                Ok(ids) => {
                    let mut env = req.env.clone();
                    if !env.iter().any(|e| e.starts_with("HOME=")) {
                        env.push(format!("HOME={}", ids.home));
                    }
                    process::become_target(&process::ExecTarget {
                        args: &req.args,
                        env: &env,
                        cwd: &req.cwd,
                        ids: &ids,
                        caps: req.caps,
                        rlimits: &[],
                    })
                }
                Err(e) => e.to_string(),
            };
            eprintln!("berth exec: {msg}");
            let code = if msg.contains("not found") { 127 } else { 126 };
            sys::exit_now(code)
        }
        Fork::Parent(child) => loop {
            match waitpid(Pid::from_raw(child), None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("wait: {e}")),
            }
        },
    }
}

/// Builds the request an `exec` helper reads from its arguments.
pub fn exec_args(
    dir: &Path,
    pid: i32,
    req: &ExecRequest,
) -> Result<Vec<String>, serde_json::Error> {
    Ok(vec![
        "berth-init".to_string(),
        "__exec".to_string(),
        dir.display().to_string(),
        pid.to_string(),
        serde_json::to_string(req)?,
    ])
}

/// Reads the exit record the init wrote, if any.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    crate::fsutil::read_json(&dir.join("exit.json")).ok()
}
