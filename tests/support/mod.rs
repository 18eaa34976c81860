//! Shared harness of the end-to-end tests: a private berth root per test (its own engine), the
//! busybox image, and a guard that removes everything the test made even when it fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The berth binary next to the test executable (target/<profile>/berth), or $BERTH_BIN.
pub fn berth_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("berth");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p berth)",
        bin.display()
    );
    bin
}

/// The busybox rootfs tarball, made once per test run.
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("make-rootfs.sh");
        let out = Command::new(&script).output().expect("run make-rootfs.sh");
        assert!(
            out.status.success(),
            "make-rootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
    .clone()
}

/// A berth root for one test. Dropping it removes every container, stops the engine, checks
/// nothing is left mounted and deletes the directory.
pub struct Root {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Root {
    /// A fresh root with the busybox image imported as `bb:latest`.
    pub fn with_busybox() -> Root {
        let r = Root::new();
        let tar = busybox_tar();
        r.ok(&["image", "import", tar.to_str().unwrap(), "bb:latest"]);
        r
    }

    /// A fresh empty root.
    pub fn new() -> Root {
        let tmp = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        Root {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    }

    /// A command with `--root` set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.arg("--root").arg(&self.dir).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth and returns its exit code and output.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run berth"))
    }

    /// Runs berth and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "berth {args:?} failed ({}):\n{}\n{}",
            r.code, r.stdout, r.stderr
        );
        r.stdout
    }

    /// `container inspect` of one container as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["container", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v[0].clone()
    }

    /// The engine's pid, if it runs.
    pub fn engine_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("engine.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        cmdline.contains("engine").then_some(pid)
    }

    /// The cgroup directories of this root (in every hierarchy).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for base in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = base.path().join("berth").join(root_id(&self.dir));
            if p.exists() {
                for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        dirs.push(e.path());
                    }
                }
            }
        }
        dirs
    }
}

/// The same id the engine derives from its root path.
pub fn root_id(root: &Path) -> String {
    use std::io::Write;
    let canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(canon.as_os_str().as_encoded_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..8].to_string()
}

/// Mounts under `dir` in the host's mount table.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["container", "ls", "-a", "-q"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["container", "rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.cmd(&args).output();
            }
        }
        // Networks go once their containers are gone; netd removes their bridges and rules.
        if let Ok(out) = self.cmd(&["network", "ls", "-q"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["network", "rm"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.cmd(&args).output();
            }
        }
        if let Some(pid) = self.engine_pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        // Whatever the engine could not remove (a test that broke the CLI, say): kill every
        // process left in this root's cgroups and remove the cgroups, so nothing outlives the test.
        let rid = root_id(&self.dir);
        for base in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let root = base.path().join("berth").join(&rid);
            for leaf in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                if !leaf.path().is_dir() {
                    continue;
                }
                for _ in 0..50 {
                    let procs = std::fs::read_to_string(leaf.path().join("cgroup.procs"))
                        .unwrap_or_default();
                    if procs.trim().is_empty() {
                        break;
                    }
                    for pid in procs.split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let _ = std::fs::remove_dir(leaf.path());
            }
            let _ = std::fs::remove_dir(&root);
            let _ = std::fs::remove_dir(base.path().join("berth"));
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A short name unique in this process and across concurrent test processes.
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `f` on a new thread inside the network namespace of process `pid`.
pub fn in_netns<T: Send + 'static>(
    pid: i32,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("open netns");
    std::thread::spawn(move || {
        // SAFETY: `ns` is an open namespace file; setns only moves this thread, which ends
        // after `f`.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A stand-in for "the outside": a network namespace behind a veth pair on the host (an address
/// in 198.18.0.0/15, the benchmarking range) running busybox httpd that serves `body`. Removed
/// on drop, also when its setup fails half-way.
pub struct OutsideNet {
    pub addr: Ipv4Addr,
    pub port: u16,
    ns: String,
    host_if: String,
    server: Option<Child>,
    _www: tempfile::TempDir,
}

impl OutsideNet {
    pub fn new(body: &str) -> OutsideNet {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let octet = ((std::process::id() as usize + n) % 250 + 1) as u8;
        let tag = format!("{}{n}", std::process::id() % 10_000);
        let ns = format!("btout{tag}");
        let host_if = format!("btoh{tag}");
        let peer = format!("btop{tag}");
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), body).unwrap();
        let mut out = OutsideNet {
            addr: Ipv4Addr::new(198, 18, octet, 2),
            port: 8081,
            server: None,
            ns,
            host_if,
            _www: www,
        };
        let gw = format!("198.18.{octet}.1");
        let run = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&["netns", "add", &out.ns]);
        run(&[
            "link",
            "add",
            &out.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        run(&["link", "set", &peer, "netns", &out.ns]);
        run(&["addr", "add", &format!("{gw}/24"), "dev", &out.host_if]);
        run(&["link", "set", &out.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["netns", "exec", &out.ns, "ip"];
            full.extend_from_slice(args);
            run(&full);
        };
        inside(&["link", "set", "lo", "up"]);
        inside(&["addr", "add", &format!("{}/24", out.addr), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["route", "add", "default", "via", &gw]);
        let server = Command::new("ip")
            .args(["netns", "exec", &out.ns, "busybox", "httpd", "-f"])
            .args(["-p", &out.port.to_string()])
            .arg("-h")
            .arg(out._www.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        out.server = Some(server);
        out
    }
}

impl Drop for OutsideNet {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// A registry process on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry on a free loopback port.
    pub fn start() -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is missing: apt-get install docker-registry"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reg = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
