//! End-to-end tests of single containers: the real `berth` binary, as root, one private root
//! (and engine) per test.

mod support;

use std::time::{Duration, Instant};

use support::{mounts_under, Root};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_passes_output_and_exit_code_and_rm_leaves_nothing() {
    let r = Root::with_busybox();
    let out = r.run(&[
        "container",
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo hi; echo err >&2; exit 3",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout, "hi\n");
    assert!(out.stderr.contains("err"), "{}", out.stderr);
    assert_eq!(
        r.ok(&["container", "ls", "-a", "-q"]),
        "",
        "--rm removed the container"
    );
    assert!(
        r.cgroup_dirs().is_empty(),
        "cgroups left: {:?}",
        r.cgroup_dirs()
    );
    assert!(
        mounts_under(&r.dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(&r.dir)
    );
}

#[test]
fn errors_name_what_failed() {
    let r = Root::with_busybox();
    let out = r.run(&["container", "run", "--rm", "nosuch"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("image nosuch:latest not found"),
        "{}",
        out.stderr
    );
    let out = r.run(&["container", "run", "--rm", "bb", "no-such-binary"]);
    assert_eq!(out.code, 127);
    assert!(
        out.stderr
            .contains("\"no-such-binary\": executable file not found in $PATH"),
        "{}",
        out.stderr
    );
    assert_eq!(
        r.ok(&["container", "ls", "-a", "-q"]),
        "",
        "a failed start leaves no container behind"
    );
    assert!(r.cgroup_dirs().is_empty());
    let out = r.run(&["container", "stop", "ghost"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no such container: ghost"),
        "{}",
        out.stderr
    );
}

#[test]
fn isolation_init_hostname_masks_mounts_and_capabilities() {
    let r = Root::with_busybox();
    let script = "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; \
                  ls /proc | grep -c '^[0-9]'; \
                  cat /proc/kcore | wc -c; cat /proc/keys | wc -c; \
                  echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable || echo sys-ro; \
                  mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo mount-denied; \
                  grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; \
                  ls /dev | tr '\\n' ' '";
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "--hostname",
        "box1",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("berth-init __init"),
        "PID 1 is berth's init: {out}"
    );
    assert_eq!(lines[1], "box1");
    let procs: u32 = lines[2].trim().parse().unwrap();
    assert!(
        procs <= 4,
        "only the container's processes are visible: {procs}"
    );
    assert_eq!(lines[3].trim(), "0", "/proc/kcore is masked");
    assert_eq!(lines[4].trim(), "0", "/proc/keys is masked");
    assert_eq!(lines[5], "sys-ro");
    assert_eq!(lines[6], "mount-denied");
    assert_eq!(
        lines[7].split_whitespace().nth(1),
        Some("00000000a80425fb"),
        "Docker's default capability set"
    );
    assert_eq!(lines[8].split_whitespace().nth(1), Some("1"));
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(
            lines[9].split_whitespace().any(|d| d == dev),
            "/dev/{dev} missing: {}",
            lines[9]
        );
    }
}

#[test]
fn user_env_workdir() {
    let r = Root::with_busybox();
    let out = r.ok(&[
        "container",
        "run",
        "--rm",
        "-u",
        "app",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp/wd",
        "bb",
        "sh",
        "-c",
        "id; echo $FOO; pwd; grep CapEff /proc/self/status",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("uid=1000(app) gid=1000(app)"), "{out}");
    assert!(
        lines[0].contains("10(wheel)"),
        "supplementary groups from /etc/group: {out}"
    );
    assert_eq!(lines[1], "bar");
    assert_eq!(lines[2], "/tmp/wd");
    assert_eq!(
        lines[3].split_whitespace().nth(1),
        Some("0000000000000000"),
        "no capabilities for a non-root user"
    );
    let out = r.ok(&["container", "run", "--rm", "-u", "1234:10", "bb", "id"]);
    assert!(out.starts_with("uid=1234 gid=10(wheel)"), "{out}");
    let out = r.run(&["container", "run", "--rm", "-u", "nobody-here", "bb", "id"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("unable to find user nobody-here"),
        "{}",
        out.stderr
    );
}

#[test]
fn memory_limit_ends_in_oom_kill() {
    let r = Root::with_busybox();
    let out = r.run(&[
        "container",
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "bb",
        "sh",
        "-c",
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
    ]);
    assert_eq!(
        out.code, 137,
        "stdout: {} stderr: {}",
        out.stdout, out.stderr
    );
    let info = r.inspect("hog");
    assert_eq!(info["state"]["OOMKilled"], true, "{info}");
    assert_eq!(info["state"]["exit_code"], 137);
    r.ok(&["container", "rm", "hog"]);
    assert!(r.cgroup_dirs().is_empty());
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let r = Root::with_busybox();
    let id = r.ok(&[
        "container",
        "run",
        "-d",
        "--pids-limit",
        "8",
        "bb",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    // busybox sh gives up at the first failed fork; the sleeps it started stay behind.
    let out = r.run(&[
        "container",
        "exec",
        id,
        "sh",
        "-c",
        "while :; do sleep 30 & done",
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("can't fork"), "{}", out.stderr);
    let base = format!(
        "/sys/fs/cgroup/pids/berth/{}/{id}",
        support::root_id(&r.dir)
    );
    wait_until("fork failures at the limit", || {
        std::fs::read_to_string(format!("{base}/pids.events"))
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .is_some_and(|n| n != "0")
    });
    let current: u32 = std::fs::read_to_string(format!("{base}/pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        current <= 8,
        "at most 8 tasks in the container, saw {current}"
    );
    assert_eq!(
        r.inspect(id)["state"]["status"],
        "running",
        "the container survives hitting the limit"
    );
    r.ok(&["container", "rm", "-f", id]);
    assert!(r.cgroup_dirs().is_empty());
}

#[test]
fn cpus_sets_a_quota_that_throttles() {
    let r = Root::with_busybox();
    let id = r.ok(&[
        "container",
        "run",
        "-d",
        "--cpus",
        "0.2",
        "bb",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let id = id.trim();
    let rid = support::root_id(&r.dir);
    let base = format!("/sys/fs/cgroup/cpu/berth/{rid}/{id}");
    let quota = std::fs::read_to_string(format!("{base}/cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "20000");
    wait_until("throttling", || {
        std::fs::read_to_string(format!("{base}/cpu.stat"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("nr_throttled ") && l != "nr_throttled 0")
    });
    r.ok(&["container", "rm", "-f", id]);
}

#[test]
fn stop_is_immediate_for_apps_that_do_not_handle_term_and_kills_ignorers() {
    let r = Root::with_busybox();
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "sleeper",
        "bb",
        "sleep",
        "1000",
    ]);
    let t = Instant::now();
    r.ok(&["container", "stop", "sleeper"]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "sleep got SIGTERM from the init: {:?}",
        t.elapsed()
    );
    assert_eq!(r.inspect("sleeper")["state"]["exit_code"], 143);
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "stubborn",
        "bb",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000",
    ]);
    r.ok(&["container", "stop", "-t", "1", "stubborn"]);
    let st = r.inspect("stubborn");
    assert_eq!(st["state"]["status"], "exited");
    assert_eq!(st["state"]["exit_code"], 137);
    r.ok(&["container", "start", "sleeper"]);
    assert_eq!(
        r.inspect("sleeper")["state"]["status"],
        "running",
        "an exited container starts again"
    );
    r.ok(&["container", "kill", "-s", "TERM", "sleeper"]);
    r.ok(&["container", "wait", "sleeper"]);
    r.ok(&["container", "rm", "sleeper", "stubborn"]);
    assert!(r.cgroup_dirs().is_empty());
}

fn log_lines(r: &Root, name: &str) -> usize {
    r.ok(&["container", "logs", name]).lines().count()
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let r = Root::with_busybox();
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "ticker",
        "bb",
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.05; done",
    ]);
    wait_until("ticks", || log_lines(&r, "ticker") > 2);
    r.ok(&["container", "pause", "ticker"]);
    assert_eq!(r.inspect("ticker")["state"]["status"], "paused");
    let before = log_lines(&r, "ticker");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(log_lines(&r, "ticker"), before, "no output while frozen");
    let out = r.run(&["container", "exec", "ticker", "true"]);
    assert_ne!(out.code, 0, "exec into a paused container is refused");
    r.ok(&["container", "unpause", "ticker"]);
    wait_until("ticks after unpause", || {
        log_lines(&r, "ticker") > before + 2
    });
    let out = r.ok(&["container", "logs", "--tail", "2", "ticker"]);
    assert_eq!(out, "tick\ntick\n");
    r.ok(&["container", "rm", "-f", "ticker"]);
}

#[test]
fn exec_joins_the_container() {
    let r = Root::with_busybox();
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "host1",
        "--hostname",
        "inside",
        "-e",
        "A=1",
        "bb",
        "sleep",
        "1000",
    ]);
    let out = r.ok(&["container", "exec", "-e", "B=2", "host1", "sh", "-c", "hostname; echo $A$B; cat /proc/1/cmdline | head -c 10; echo; cat /proc/self/cgroup | grep -c ':/$'"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "inside");
    assert_eq!(lines[1], "12");
    assert_eq!(lines[2], "berth-init");
    assert_ne!(
        lines[3], "0",
        "exec'd process sits in the container's cgroup (root of its cgroup namespace)"
    );
    let out = r.run(&["container", "exec", "host1", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7);
    let out = r.run(&["container", "exec", "host1", "nope"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    r.ok(&["container", "rm", "-f", "host1"]);
}

#[test]
fn engine_killed_with_sigkill_keeps_containers_and_comes_back() {
    let r = Root::with_busybox();
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "survivor",
        "bb",
        "sleep",
        "1000",
    ]);
    let pid = r.engine_pid().expect("engine pid");
    let app_pid = r.inspect("survivor")["state"]["pid"].as_i64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("engine death", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(
        std::path::Path::new(&format!("/proc/{app_pid}")).exists(),
        "the container outlives the engine"
    );
    let st = r.inspect("survivor");
    assert_eq!(
        st["state"]["status"], "running",
        "a new engine finds the container running"
    );
    let out = r.ok(&["container", "exec", "survivor", "echo", "still here"]);
    assert_eq!(out, "still here\n");
    r.ok(&["container", "stop", "survivor"]);
    assert_eq!(r.inspect("survivor")["state"]["status"], "exited");
    r.ok(&["container", "rm", "survivor"]);
    // The old init was re-parented to the host's init when the engine died, which reaps it.
    wait_until("the container's init to be gone", || {
        !std::path::Path::new(&format!("/proc/{app_pid}")).exists()
    });
    assert!(r.cgroup_dirs().is_empty());
}

#[test]
fn read_only_rootfs_and_volumes() {
    let r = Root::with_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host").unwrap();
    let vol = format!("{}:/data", host.path().display());
    let out = r.ok(&["container", "run", "--rm", "--read-only", "--tmpfs", "/scratch", "-v", &vol, "bb", "sh", "-c",
        "cat /data/in.txt; echo; echo out > /data/out.txt; touch /etc/x 2>/dev/null && echo rw || echo ro; touch /scratch/ok && echo tmpfs-ok"]);
    assert_eq!(out, "from host\nro\ntmpfs-ok\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "out\n"
    );
}
