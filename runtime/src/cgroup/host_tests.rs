//! Tests on the host's real cgroup hierarchies (run as root). Every test works under its own
//! `berth-test-<random>` cgroup, and guards kill and remove what it made even when it fails.
//!
//! The v1 and hybrid tests use the layout detected from `/proc/self/mountinfo`; the v2 tests
//! use a pure-v2 layout rooted at the host's cgroup2 mount, which has no controllers here
//! (see the module docs of [`super`]).

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::*;

/// A cgroup for one test; dropping it kills its processes and removes it and its parent.
struct TestCgroup {
    layout: Layout,
    parent: String,
    cg: Cgroup,
}

impl TestCgroup {
    fn new(layout: Layout, res: &Resources) -> Result<TestCgroup, CgroupError> {
        let parent = format!("berth-test-{:016x}", rand::random::<u64>());
        let cg = Cgroup::create(&layout, &format!("{parent}/c"), res);
        match cg {
            Ok(cg) => Ok(TestCgroup { layout, parent, cg }),
            Err(e) => {
                let _ = Cgroup::open(&layout, &parent).delete();
                Err(e)
            }
        }
    }

    /// This cgroup's directories, for checking that `delete` removed them.
    fn dirs(&self) -> Vec<PathBuf> {
        self.cg.dirs().into_iter().map(Path::to_path_buf).collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        let _ = self.cg.kill_all();
        if let Err(e) = self.cg.delete() {
            eprintln!("cleanup: {e}");
        }
        if let Err(e) = Cgroup::open(&self.layout, &self.parent).delete() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A child shell that waits for a line on stdin before it runs `script`, so it can be moved
/// into a cgroup first. Killed and reaped on drop.
struct Kid {
    child: Option<Child>,
    pid: i32,
}

impl Kid {
    fn spawn(script: &str) -> Kid {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _ || exit 1; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Kid {
            pid: child.id() as i32,
            child: Some(child),
        }
    }

    fn pid(&self) -> i32 {
        self.pid
    }

    fn go(&mut self) {
        let child = self.child.as_mut().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\n").unwrap();
    }

    /// Waits for exit; returns the status and stdout followed by stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status, text)
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn host() -> Layout {
    Layout::detect().unwrap()
}

/// A pure-v2 layout on the host's cgroup2 mount.
fn unified() -> Layout {
    let u = host()
        .unified()
        .expect("host has a cgroup2 mount")
        .to_path_buf();
    Layout::rooted_at(&[], Some(&u)).unwrap()
}

fn status_field(pid: i32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .to_string()
}

/// User plus system CPU ticks of `pid`.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn hybrid_limits_membership_stats_kill_delete() {
    let layout = host();
    let res = Resources {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids: Some(32),
    };
    let t = TestCgroup::new(layout.clone(), &res).unwrap();
    let cg = &t.cg;
    let v1 = layout.v1_controllers().unwrap();
    let dir = |c: &str| v1[c].join(cg.rel());
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(
        read(dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    if dir("memory").join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            read(dir("memory").join("memory.memsw.limit_in_bytes")),
            "67108864"
        );
    }
    assert_eq!(read(dir("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(dir("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(dir("pids").join("pids.max")), "32");
    let list = read(dir("devices").join("devices.list"));
    let want: Vec<String> = devices::DEFAULT_RULES.iter().map(|r| r.v1_line()).collect();
    assert_eq!(list.lines().collect::<Vec<_>>(), want);
    assert!(cg.devices_enforced());
    if let Some(cpuset) = v1.get("cpuset") {
        assert!(!cpuset.join(cg.rel()).exists(), "cpuset must not be joined");
    }

    let mut kid = Kid::spawn("exec sleep 60");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", kid.pid())).unwrap();
    for c in ["memory", "pids", "freezer", "devices", "cpu", "cpuacct"] {
        let line = membership
            .lines()
            .find(|l| l.split(':').nth(1) == Some(c))
            .unwrap();
        assert!(line.ends_with(&format!("/{}", cg.rel())), "{line}");
    }
    if layout.unified().is_some() {
        assert!(
            membership.contains(&format!("0::/{}", cg.rel())),
            "{membership}"
        );
    }
    assert_eq!(cg.pids().unwrap(), vec![kid.pid()]);
    wait_until("sleep to exec", || {
        status_field(kid.pid(), "Name") == "sleep"
    });

    let s = cg.stats().unwrap();
    assert_eq!(s.memory_limit_bytes, Some(64 << 20));
    assert!(s.memory_usage_bytes.unwrap() > 0);
    assert!(s.cpu_usage_ns.unwrap() > 0);
    assert_eq!(s.pids_current, Some(1));
    assert_eq!(s.pids_max, Some(32));
    assert!(s.cpu_periods.is_some());
    assert!(!cg.oom_killed().unwrap());

    // Killing a paused container works: cgroup.kill, then the v1 freezer is thawed.
    cg.freeze().unwrap();
    cg.kill_all().unwrap();
    let (status, _) = kid.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("empty cgroup", || cg.pids().unwrap().is_empty());
    cg.delete().unwrap();
    for d in t.dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // Opening after the fact (engine restart) finds nothing and deleting again is fine.
    let again = Cgroup::open(&layout, cg.rel());
    assert_eq!(again.pids().unwrap(), Vec::<i32>::new());
    again.delete().unwrap();
}

#[test]
fn v1_freeze_thaw_and_cpu_throttling() {
    let res = Resources {
        cpus: Some(0.1),
        ..Resources::default()
    };
    let t = TestCgroup::new(host(), &res).unwrap();
    let cg = &t.cg;
    let mut kid = Kid::spawn("while :; do :; done");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    wait_until("throttling", || {
        cg.stats().unwrap().cpu_throttled_periods.unwrap_or(0) > 0
    });
    let s = cg.stats().unwrap();
    assert!(s.cpu_throttled_ns.unwrap() > 0);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    // v1 frozen tasks sleep uninterruptibly in the freezer and get no CPU time.
    assert!(status_field(kid.pid(), "State").starts_with('D'));
    let before = cpu_ticks(kid.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(kid.pid()), before);
    cg.freeze().unwrap();

    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    wait_until("cpu time after thaw", || cpu_ticks(kid.pid()) > before);
}

#[test]
fn v1_oom_kill_is_detected() {
    let res = Resources {
        memory: Some(16 << 20),
        ..Resources::default()
    };
    let t = TestCgroup::new(host(), &res).unwrap();
    let cg = &t.cg;
    let mut kid = Kid::spawn("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    let (status, out) = kid.finish();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "dd was not killed: {out}"
    );
    assert!(cg.oom_killed().unwrap());
}

#[test]
fn pids_limit_stops_forks() {
    let res = Resources {
        pids: Some(3),
        ..Resources::default()
    };
    let layout = host();
    let t = TestCgroup::new(layout.clone(), &res).unwrap();
    let cg = &t.cg;
    let mut kid =
        Kid::spawn("for i in 1 2 3 4 5; do sleep 30 >/dev/null 2>&1 & done; echo survived");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    // The shell and two sleeps fill the limit; the third fork fails.
    let (_, out) = kid.finish();
    assert!(
        out.to_lowercase().contains("fork"),
        "no fork failure reported: {out}"
    );
    let left = cg.pids().unwrap().len();
    assert!((2..=3).contains(&left), "{left} processes");
    let events = layout.v1_controllers().unwrap()["pids"]
        .join(cg.rel())
        .join("pids.events");
    let max_hits = files::read_key(&events, "max").unwrap();
    assert!(max_hits > 0);
}

#[test]
fn v1_kill_all_without_cgroup_kill_uses_the_freezer() {
    // A pure-v1 layout made of the host's v1 hierarchies: no cgroup.kill anywhere.
    let host = host();
    let v1: Vec<(&str, &Path)> = host
        .v1_controllers()
        .unwrap()
        .iter()
        .map(|(c, p)| (c.as_str(), p.as_path()))
        .collect();
    let layout = Layout::rooted_at(&v1, None).unwrap();
    let t = TestCgroup::new(layout, &Resources::default()).unwrap();
    let cg = &t.cg;
    let mut kid = Kid::spawn("sleep 60 & sleep 60 & echo started; wait");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    wait_until("three processes", || cg.pids().unwrap().len() == 3);
    // Killing a paused container works.
    cg.freeze().unwrap();
    cg.kill_all().unwrap();
    let (status, _) = kid.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("empty cgroup", || cg.pids().unwrap().is_empty());
    assert!(!cg.is_frozen().unwrap());
    cg.delete().unwrap();
}

/// Makes a block node 8:0 (a disk), a char node 1:3 (null) and a char node 1:1 (mem) in a
/// tempdir.
fn device_nodes() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rw = Mode::from_bits_truncate(0o600);
    mknod(&d.path().join("disk"), SFlag::S_IFBLK, rw, makedev(8, 0)).unwrap();
    mknod(&d.path().join("null"), SFlag::S_IFCHR, rw, makedev(1, 3)).unwrap();
    mknod(&d.path().join("mem"), SFlag::S_IFCHR, rw, makedev(1, 1)).unwrap();
    d
}

/// Opens each node from a child inside `cg` and returns the shell's report.
fn open_nodes_in(cg: &Cgroup, nodes: &Path) -> String {
    let d = nodes.display();
    let script = format!(
        "for n in disk null mem; do if (exec 3<{d}/$n) 2>/dev/null; then echo $n=ok; else echo $n=denied; fi; done; \
         (exec 3<{d}/disk) 2>&1 | grep -q 'not permitted' && echo disk=eperm; \
         mknod {d}/made c 1 3 && echo mknod=ok"
    );
    let mut kid = Kid::spawn(&script);
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    kid.finish().1
}

#[test]
fn v1_device_allowlist_denies_a_disk() {
    let t = TestCgroup::new(host(), &Resources::default()).unwrap();
    let nodes = device_nodes();
    let out = open_nodes_in(&t.cg, nodes.path());
    assert!(
        out.contains("disk=denied") && out.contains("disk=eperm"),
        "{out}"
    );
    assert!(out.contains("mem=denied"), "{out}");
    assert!(out.contains("null=ok"), "{out}");
    assert!(out.contains("mknod=ok"), "{out}");
}

#[test]
fn v2_join_freeze_kill_delete_on_unified() {
    let layout = unified();
    let t = TestCgroup::new(layout.clone(), &Resources::default()).unwrap();
    let cg = &t.cg;
    let mut kid = Kid::spawn("sleep 60 & exec sleep 60");
    cg.add_process(kid.pid()).unwrap();
    kid.go();
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", kid.pid())).unwrap();
    assert!(
        membership.contains(&format!("0::/{}", cg.rel())),
        "{membership}"
    );
    wait_until("two processes", || cg.pids().unwrap().len() == 2);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    let dir = layout.unified().unwrap().join(cg.rel());
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.contains("frozen 1"), "{events}");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    cg.kill_all().unwrap();
    let (status, _) = kid.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("empty cgroup", || cg.pids().unwrap().is_empty());
    cg.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v2_limits_without_controllers_are_refused_cleanly() {
    let layout = unified();
    let root = layout.unified().unwrap().to_path_buf();
    let parent = format!("berth-test-{:016x}", rand::random::<u64>());
    struct Cleanup(Layout, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Cgroup::open(&self.0, &format!("{}/c", self.1)).delete();
            let _ = Cgroup::open(&self.0, &self.1).delete();
        }
    }
    let _cleanup = Cleanup(layout.clone(), parent.clone());
    let res = Resources {
        memory: Some(16 << 20),
        ..Resources::default()
    };
    let err = Cgroup::create(&layout, &format!("{parent}/c"), &res).unwrap_err();
    assert!(
        matches!(err, CgroupError::MissingController { .. }),
        "{err}"
    );
    // Both directories the failed create made are gone again.
    assert!(!root.join(&parent).exists());
}

#[test]
fn v2_bpf_device_filter_denies_a_disk() {
    let t = TestCgroup::new(unified(), &Resources::default()).unwrap();
    assert!(t.cg.devices_enforced());
    // After an engine restart the filter is found by asking the kernel.
    assert!(Cgroup::open(&unified(), t.cg.rel()).devices_enforced());
    let nodes = device_nodes();
    // Outside the cgroup the disk node is not refused by policy (no such disk: ENXIO).
    let outside = std::fs::File::open(nodes.path().join("disk")).err();
    assert_ne!(outside.and_then(|e| e.raw_os_error()), Some(libc::EPERM));
    let out = open_nodes_in(&t.cg, nodes.path());
    assert!(
        out.contains("disk=denied") && out.contains("disk=eperm"),
        "{out}"
    );
    assert!(out.contains("mem=denied"), "{out}");
    assert!(out.contains("null=ok"), "{out}");
    assert!(out.contains("mknod=ok"), "{out}");
}
