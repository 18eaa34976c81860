//! Raw syscalls behind safe wrappers: the only module of the runtime with `unsafe` outside
//! the cgroup BPF filter.
//!
//! Everything here is a thin, documented shim over one kernel interface: sealed memfds for the
//! init binary, `clone3` into fresh namespaces followed by `execveat` of that memfd, pidfds,
//! capability bounding-set prctls and `fork` in the single-threaded init.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Creates a sealed, executable, in-memory copy of the running binary.
///
/// The in-container init is exec'd from this copy, never from `/proc/self/exe`: a container
/// that could open the host binary writable through `/proc/PID/exe` would overwrite it
/// (CVE-2019-5736). The seals make the copy immutable for everyone.
pub fn sealed_self_copy() -> io::Result<OwnedFd> {
    let name = c"berth-init";
    // SAFETY: name is a valid NUL-terminated string; the flags are valid memfd flags.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = File::from(owned);
    let mut src = File::open("/proc/self/exe")?;
    io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd we own; no pointers involved.
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(dst))
}

/// Everything the child of [`clone_exec`] needs, prepared before the clone so the child only
/// makes async-signal-safe syscalls (the engine is multi-threaded).
pub struct ExecPlan {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// `(source, target)`: the child dup2s `source` onto `target` (targets 0..=3).
    fds: Vec<(RawFd, RawFd)>,
}

impl ExecPlan {
    /// Builds a plan; fails if an argument or variable contains a NUL byte.
    pub fn new(argv: &[String], env: &[String], fds: Vec<(RawFd, RawFd)>) -> io::Result<Self> {
        let cs = |v: &[String]| -> io::Result<Vec<CString>> {
            v.iter()
                .map(|s| CString::new(s.as_bytes()).map_err(io::Error::other))
                .collect()
        };
        let mut fds = fds;
        // Lower targets first, so a source that equals a higher target is consumed before it
        // is overwritten (sources are never below 3).
        fds.sort_by_key(|(_, target)| *target);
        Ok(Self {
            argv: cs(argv)?,
            env: cs(env)?,
            fds,
        })
    }
}

/// A process started by [`clone_exec`].
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones a child into the namespaces in `ns_flags` (`CLONE_NEW*`) and execs the binary behind
/// `exe` (an fd, via `execveat(AT_EMPTY_PATH)`) with the plan's arguments, environment and fds.
/// Returns the child's pid and a pidfd for it.
pub fn clone_exec(exe: RawFd, ns_flags: i32, plan: &ExecPlan) -> io::Result<Spawned> {
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let empty = c"";
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: (ns_flags as u64) | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy-on-write copy of
    // this address space, so the pointers above stay valid in it. The child only calls
    // async-signal-safe syscalls (dup2, fcntl, execveat, _exit) and never returns into Rust code.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        // Child.
        for &(src, dst) in &plan.fds {
            // SAFETY: plain fd syscalls on fds inherited from the parent.
            unsafe {
                if src == dst {
                    libc::fcntl(src, libc::F_SETFD, 0);
                } else if libc::dup2(src, dst) < 0 {
                    libc::_exit(127);
                }
            }
        }
        // SAFETY: argv and envp are NUL-terminated arrays of valid C strings; on failure the
        // child exits at once without running any destructor.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                exe,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127);
        }
    }
    // SAFETY: CLONE_PIDFD stored a fresh pidfd owned by us into `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Spawned {
        pid: ret as i32,
        pidfd,
    })
}

/// Opens a pidfd for `pid` (`pidfd_open`).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the returned fd is owned by the caller.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh pidfd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` through a pidfd (no pid-reuse race). ESRCH means the process is gone.
pub fn pidfd_send_signal(pidfd: RawFd, sig: i32) -> io::Result<()> {
    // SAFETY: no pointers (siginfo NULL); pidfd is a valid descriptor owned by the caller.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Exited(i32),
    Signaled(i32),
}

impl ChildExit {
    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ChildExit::Exited(c) => c,
            ChildExit::Signaled(s) => 128 + s,
        }
    }
}

/// Reaps the child behind `pidfd` without blocking. `Ok(None)`: still running. ECHILD: not our
/// child (adopted after an engine restart).
pub fn waitid_pidfd(pidfd: RawFd) -> io::Result<Option<ChildExit>> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid initial value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid out-pointer for the duration of the call.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after a successful waitid the pid/status fields of the union are initialised.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if info.si_code == libc::CLD_EXITED {
        ChildExit::Exited(status)
    } else {
        ChildExit::Signaled(status)
    }))
}

/// Drops every capability not in `keep` (a bitmask of capability numbers) from the bounding
/// set, clears the ambient set and sets `no_new_privs`.
pub fn restrict_capabilities(keep: u64) -> io::Result<()> {
    let last = last_cap();
    for cap in 0..=last {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    Ok(())
}

/// Sets `no_new_privs` so setuid binaries and file capabilities cannot raise privileges.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the permitted, effective and inheritable capability sets of this thread.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a two-element data array in the v3 layout the kernel expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `cap` is in this thread's bounding set.
pub fn in_bounding_set(cap: u32) -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) == 1 }
}

/// The highest capability number the kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Outcome of [`fork`].
pub enum Fork {
    Parent(i32),
    Child,
}

/// Forks. Only called from the single-threaded init, where the child may do anything.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the init process is single-threaded (no runtime, no helper threads), so the child
    // inherits a consistent heap and may allocate.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Fork::Parent(child.as_raw())),
        Ok(nix::unistd::ForkResult::Child) => Ok(Fork::Child),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Makes the calling process receive `sig` when its parent dies.
pub fn set_parent_death_signal(sig: i32) {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0);
    }
}

/// Process start time (field 22 of /proc/PID/stat), used to tell a pid from a reused one.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Adopts an inherited descriptor (the init's control socket on fd 3). `None` if it is not open.
pub fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only checks that the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open and, by the init protocol, nobody else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sets FD_CLOEXEC on a descriptor we now own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(owned)
}

/// `dup2(src, dst)`, clearing close-on-exec when both are the same descriptor.
pub fn dup_onto(src: RawFd, dst: RawFd) -> io::Result<()> {
    // SAFETY: plain descriptor syscalls; dst is a standard descriptor number of this process.
    let r = unsafe {
        if src == dst {
            libc::fcntl(src, libc::F_SETFD, 0)
        } else {
            libc::dup2(src, dst)
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets O_NONBLOCK on a descriptor.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ends a forked child at once, without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}
