//! The last steps before the main process (or an exec'd process) becomes the user's program:
//! rlimits, ids, capabilities, `no_new_privs`, working directory, `$PATH` lookup and `execve`.
//!
//! Runs in a freshly forked child of the init; every failure is reported as a message the
//! caller passes back to the engine ("exec: \"foo\": executable file not found in $PATH").

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{Gid, Uid};

use super::user::Ids;
use crate::spec::Rlimit;
use crate::sys;

/// What to run and as whom.
pub struct ExecTarget<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub ids: &'a Ids,
    pub caps: u64,
    pub rlimits: &'a [Rlimit],
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_prefix("rlimit_").unwrap_or(&n);
    Some(match n {
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "core" => Resource::RLIMIT_CORE,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "stack" => Resource::RLIMIT_STACK,
        "fsize" => Resource::RLIMIT_FSIZE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "as" => Resource::RLIMIT_AS,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "locks" => Resource::RLIMIT_LOCKS,
        _ => return None,
    })
}

/// Applies rlimits, clamped to the current hard limit (raising a hard limit needs
/// CAP_SYS_RESOURCE, which berth never assumes).
pub fn apply_rlimits(limits: &[Rlimit]) -> Result<(), String> {
    for l in limits {
        let res = rlimit_resource(&l.name).ok_or_else(|| format!("unknown ulimit {:?}", l.name))?;
        let (_, cur_hard) = getrlimit(res).map_err(|e| format!("getrlimit {}: {e}", l.name))?;
        let hard = l.hard.min(cur_hard);
        let soft = l.soft.min(hard);
        setrlimit(res, soft, hard).map_err(|e| format!("setrlimit {}: {e}", l.name))?;
    }
    Ok(())
}

/// Finds `cmd` on the `PATH` of `env` the way execvp does.
pub fn lookup(cmd: &str, env: &[String]) -> Result<String, String> {
    if cmd.contains('/') {
        return Ok(cmd.to_string());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(cmd);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate.display().to_string());
            }
        }
    }
    Err(format!(
        "exec: \"{cmd}\": executable file not found in $PATH"
    ))
}

/// Turns this process into the target program. Returns only on failure, with the reason.
pub fn become_target(t: &ExecTarget<'_>) -> String {
    match try_become(t) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn try_become(t: &ExecTarget<'_>) -> Result<Never, String> {
    let first = t.args.first().ok_or("no command specified")?;
    apply_rlimits(t.rlimits)?;
    if !t.cwd.is_empty() {
        fs::create_dir_all(t.cwd)
            .map_err(|e| format!("create working directory {}: {e}", t.cwd))?;
    }
    sys::restrict_capabilities(t.caps).map_err(|e| format!("drop capabilities: {e}"))?;
    let groups: Vec<Gid> = t.ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setgid(Gid::from_raw(t.ids.gid))
        .map_err(|e| format!("setgid {}: {e}", t.ids.gid))?;
    nix::unistd::setuid(Uid::from_raw(t.ids.uid))
        .map_err(|e| format!("setuid {}: {e}", t.ids.uid))?;
    if t.ids.uid == 0 {
        sys::capset(t.caps, t.caps, 0).map_err(|e| format!("capset: {e}"))?;
    }
    sys::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    if !t.cwd.is_empty() {
        nix::unistd::chdir(t.cwd)
            .map_err(|e| format!("chdir to working directory {}: {e}", t.cwd))?;
    }
    let prog = lookup(first, t.env)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("argument {s:?} contains a NUL byte"));
    let prog_c = cstr(&prog)?;
    let argv: Vec<CString> = t.args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = t.env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    match nix::unistd::execve(&prog_c, &argv, &envp) {
        Err(e) => Err(format!("exec: \"{first}\": {}", e.desc())),
        Ok(inf) => match inf {},
    }
}
