//! Unit tests of [`Cgroup`] on tempdirs laid out like cgroupfs: the control files a kernel
//! would provide are created up front, and the tests check what berth wrote into them.

use std::fs;
use std::path::Path;

use super::*;

/// Creates `dir` with the given (empty unless stated) control files.
fn files(dir: &Path, names: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in names {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

const V1: [&str; 6] = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// A v1 layout with one hierarchy per controller under `root`, and the leaf `rel` pre-created
/// with each controller's files.
fn v1_host(root: &Path, rel: &str) -> Layout {
    let roots: Vec<(&str, std::path::PathBuf)> = V1.iter().map(|c| (*c, root.join(c))).collect();
    for (c, r) in &roots {
        let leaf = r.join(rel);
        files(&leaf, &[("cgroup.procs", "")]);
        let extra: &[&str] = match *c {
            "memory" => &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
            "cpu" => &["cpu.cfs_period_us", "cpu.cfs_quota_us"],
            "pids" => &["pids.max"],
            "devices" => &["devices.deny", "devices.allow"],
            _ => &[],
        };
        for f in extra {
            fs::write(leaf.join(f), "").unwrap();
        }
    }
    let refs: Vec<(&str, &Path)> = roots.iter().map(|(c, p)| (*c, p.as_path())).collect();
    Layout::rooted_at(&refs, None).unwrap()
}

#[test]
fn v1_limits_devices_and_procs() {
    let t = tempfile::tempdir().unwrap();
    let rel = "berth/root1/c1";
    let layout = v1_host(t.path(), rel);
    let res = Resources {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids: Some(32),
    };
    let cg = Cgroup::create(&layout, rel, &res).unwrap();
    let dir = |c: &str| t.path().join(c).join(rel);
    assert_eq!(
        read(dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(
        read(dir("memory").join("memory.memsw.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(dir("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(dir("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(dir("pids").join("pids.max")), "32");
    assert_eq!(read(dir("devices").join("devices.deny")), "a");
    assert!(read(dir("devices").join("devices.allow")).contains("c 5:2 rwm"));
    assert!(cg.devices_enforced());
    assert_eq!(cg.rel(), rel);

    let procs = cg.procs_paths();
    assert_eq!(procs.len(), 6);
    cg.add_process(4242).unwrap();
    for p in &procs {
        assert_eq!(read(p), "4242");
    }
    assert_eq!(cg.pids().unwrap(), vec![4242]);
    assert!(!cg.oom_killed().unwrap());
    fs::write(
        dir("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    )
    .unwrap();
    assert!(cg.oom_killed().unwrap());
    fs::write(dir("freezer").join("freezer.state"), "FROZEN\n").unwrap();
    assert!(cg.is_frozen().unwrap());
}

#[test]
fn v1_without_memsw_and_comounted_cpu() {
    let t = tempfile::tempdir().unwrap();
    let rel = "x/c";
    let both = t.path().join("cpu,cpuacct");
    let mem = t.path().join("memory");
    files(
        &both.join(rel),
        &[
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_quota_us", ""),
            ("cgroup.procs", ""),
        ],
    );
    files(
        &mem.join(rel),
        &[("memory.limit_in_bytes", ""), ("cgroup.procs", "")],
    );
    let layout = Layout::rooted_at(
        &[("cpu", &both), ("cpuacct", &both), ("memory", &mem)],
        None,
    )
    .unwrap();
    let res = Resources {
        memory: Some(1 << 20),
        cpus: Some(1.5),
        pids: None,
    };
    let cg = Cgroup::create(&layout, rel, &res).unwrap();
    assert_eq!(read(both.join(rel).join("cpu.cfs_quota_us")), "150000");
    assert_eq!(read(mem.join(rel).join("memory.limit_in_bytes")), "1048576");
    assert!(!mem.join(rel).join("memory.memsw.limit_in_bytes").exists());
    // cpu and cpuacct share one directory: one cgroup.procs for both.
    assert_eq!(cg.procs_paths().len(), 2);
    assert!(!cg.devices_enforced());
}

#[test]
fn v1_missing_controller_creates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let mem = t.path().join("memory");
    fs::create_dir(&mem).unwrap();
    let layout = Layout::rooted_at(&[("memory", &mem)], None).unwrap();
    let res = Resources {
        pids: Some(10),
        ..Resources::default()
    };
    let err = Cgroup::create(&layout, "a/b", &res).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "pids",
                ..
            }
        ),
        "{err}"
    );
    assert!(!mem.join("a").exists());
}

#[test]
fn v2_limits_and_delegation() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let all = "cpuset cpu io memory hugetlb pids rdma misc\n";
    files(
        root,
        &[("cgroup.controllers", all), ("cgroup.subtree_control", "")],
    );
    files(
        &root.join("berth"),
        &[("cgroup.controllers", all), ("cgroup.subtree_control", "")],
    );
    let leaf = root.join("berth/c2");
    files(
        &leaf,
        &[
            ("cgroup.controllers", "cpu memory pids\n"),
            ("cgroup.procs", ""),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("cpu.max", "max 100000\n"),
            ("pids.max", "max\n"),
        ],
    );
    let layout = Layout::rooted_at(&[], Some(root)).unwrap();
    let res = Resources {
        memory: Some(16 << 20),
        cpus: Some(0.25),
        pids: Some(0),
    };
    let cg = Cgroup::create(&layout, "berth/c2", &res).unwrap();
    assert_eq!(
        read(root.join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(
        read(root.join("berth/cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(read(leaf.join("memory.max")), "16777216");
    assert_eq!(read(leaf.join("memory.swap.max")), "0");
    assert_eq!(read(leaf.join("cpu.max")), "25000 100000");
    assert_eq!(read(leaf.join("pids.max")), "max");
    // A tempdir is no cgroup: the eBPF device program cannot be attached.
    assert!(!cg.devices_enforced());
    assert_eq!(cg.procs_paths(), vec![leaf.join("cgroup.procs")]);
    fs::write(
        leaf.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(cg.oom_killed().unwrap());
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    assert!(cg.is_frozen().unwrap());
    fs::write(leaf.join("memory.current"), "8192\n").unwrap();
    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory_usage_bytes, Some(8192));
    assert_eq!(stats.memory_limit_bytes, Some(16 << 20));
    assert_eq!(stats.pids_max, None);
}

#[test]
fn v2_failure_removes_what_it_created() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    files(
        root,
        &[
            ("cgroup.controllers", "cpu memory pids\n"),
            ("cgroup.subtree_control", ""),
        ],
    );
    let layout = Layout::rooted_at(&[], Some(root)).unwrap();
    let res = Resources {
        memory: Some(1 << 20),
        ..Resources::default()
    };
    // `a` is created, then delegation below it fails (no cgroup.controllers in a tempdir).
    let err = Cgroup::create(&layout, "a/b", &res).unwrap_err();
    assert!(matches!(err, CgroupError::Read { .. }), "{err}");
    assert!(!root.join("a").exists());
    assert!(err.to_string().contains("cgroup.controllers"), "{err}");
}

#[test]
fn v2_missing_controller() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    files(
        root,
        &[
            ("cgroup.controllers", "io\n"),
            ("cgroup.subtree_control", ""),
        ],
    );
    files(&root.join("c"), &[("cgroup.controllers", "")]);
    let layout = Layout::rooted_at(&[], Some(root)).unwrap();
    let res = Resources {
        cpus: Some(1.0),
        ..Resources::default()
    };
    let err = Cgroup::create(&layout, "c", &res).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "cpu",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "cpu limit requested for cgroup c but the host has no cpu controller"
    );
}

#[test]
fn hybrid_limits_go_to_v1_and_unified_is_joined() {
    let t = tempfile::tempdir().unwrap();
    let mem = t.path().join("memory");
    let uni = t.path().join("unified");
    files(
        &mem.join("k"),
        &[("memory.limit_in_bytes", ""), ("cgroup.procs", "")],
    );
    files(&uni.join("k"), &[("cgroup.procs", "")]);
    let layout = Layout::rooted_at(&[("memory", &mem)], Some(&uni)).unwrap();
    let res = Resources {
        memory: Some(8 << 20),
        ..Resources::default()
    };
    let cg = Cgroup::create(&layout, "k", &res).unwrap();
    assert_eq!(read(mem.join("k/memory.limit_in_bytes")), "8388608");
    assert_eq!(
        cg.procs_paths(),
        vec![mem.join("k/cgroup.procs"), uni.join("k/cgroup.procs")]
    );
    // No v1 freezer: the unified dir's cgroup.freeze is used.
    fs::write(uni.join("k/cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
    assert!(!cg.is_frozen().unwrap());
}

#[test]
fn invalid_paths_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let layout = Layout::rooted_at(&[], Some(t.path())).unwrap();
    for rel in ["", "/abs", "a/../b", "a//b", "./a", "a/"] {
        let err = Cgroup::create(&layout, rel, &Resources::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{rel}: {err}"
        );
        let cg = Cgroup::open(&layout, rel);
        assert!(cg.procs_paths().is_empty());
        assert!(cg.pids().is_err());
        assert!(cg.add_process(1).is_err());
        assert!(cg.delete().is_err());
        assert!(!cg.devices_enforced());
    }
    assert!(Cgroup::create(
        &layout,
        "x",
        &Resources {
            cpus: Some(0.0),
            ..Resources::default()
        }
    )
    .is_err());
    assert!(!t.path().join("x").exists());
}

#[test]
fn delete_reports_every_failure_and_tolerates_missing() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("b");
    files(&a.join("c"), &[("stuck", "")]);
    files(&b.join("c"), &[("stuck", "")]);
    let layout = Layout::rooted_at(&[("memory", &a), ("pids", &b)], None).unwrap();
    let cg = Cgroup::open(&layout, "c");
    let err = cg.delete().unwrap_err();
    let CgroupError::Several { op, errors, .. } = &err else {
        panic!("expected several errors, got {err}");
    };
    assert_eq!(*op, "delete");
    assert_eq!(errors.len(), 2);
    fs::remove_file(a.join("c/stuck")).unwrap();
    fs::remove_file(b.join("c/stuck")).unwrap();
    cg.delete().unwrap();
    cg.delete().unwrap();
    assert!(!a.join("c").exists());
    assert_eq!(cg.pids().unwrap(), Vec::<i32>::new());
}
