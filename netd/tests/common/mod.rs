//! Helpers of netd's root tests.
//!
//! Each test runs its whole body inside a private network namespace (a thread that unshared
//! `CLONE_NEWNET` and runs a tokio runtime): the test's "host". Its firewall, routes, sysctls and
//! links are its own, so tests run in parallel without touching the machine, and whatever a
//! failing test leaves behind vanishes with the namespace. Stand-in containers are named
//! namespaces (`ip netns add`) removed by an RAII guard. Traffic only flows between addresses
//! the test made and loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use netd::{Netd, NetdConfig};
use nix::sched::{setns, unshare, CloneFlags};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique in this process and across concurrent test processes.
pub fn unique(tag: &str) -> String {
    format!(
        "bt{}{}{}",
        tag,
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `body` in a fresh network namespace with `lo` up, on its own thread and runtime.
pub fn in_test_host<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let t = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare network namespace");
        run_ok("ip", &["link", "set", "lo", "up"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(body());
    });
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a command, returning its output.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd} {args:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace standing in for a container; deleted on drop.
pub struct TestNetns {
    pub name: String,
    pub path: PathBuf,
}

impl TestNetns {
    pub fn new(tag: &str) -> TestNetns {
        let name = unique(tag);
        run_ok("ip", &["netns", "add", &name]);
        TestNetns {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        }
    }

    /// Runs a command inside the namespace; returns stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    /// Runs `f` inside the namespace (on a fresh thread spawned from a blocking-pool thread, so
    /// the runtime keeps serving DNS meanwhile).
    pub async fn run<T, F>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || in_netns_blocking(&path, f))
            .await
            .unwrap()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `f` on a new thread inside the namespace at `path`.
pub fn in_netns_blocking<T, F>(path: &Path, f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let file = std::fs::File::open(path).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP server inside a namespace that answers each connection with `reply` and the peer's
/// address (`reply@peer`), stopped on drop.
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TcpServer {
    pub fn start(netns: &Path, addr: SocketAddr, reply: &str) -> TcpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, reply, flag) = (netns.to_owned(), reply.to_string(), stop.clone());
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            let listener = TcpListener::bind(addr).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.write_all(format!("{reply}@{}", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv().unwrap();
        TcpServer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A UDP server inside a namespace that answers each datagram with `reply`, stopped on drop.
pub struct UdpServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn start(netns: &Path, addr: SocketAddr, reply: &str) -> UdpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, reply, flag) = (netns.to_owned(), reply.to_string(), stop.clone());
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            let sock = UdpSocket::bind(addr).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((_, peer)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(reply.as_bytes(), peer);
                }
            }
        });
        rx.recv().unwrap();
        UdpServer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Connects to `addr` (blocking, 1 s timeout) and reads the reply.
pub fn tcp_fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Sends one datagram to `addr` and waits up to 1 s for the reply.
pub fn udp_fetch(addr: SocketAddr) -> std::io::Result<String> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.send_to(b"ping", addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The outcome of a DNS query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    pub code: ResponseCode,
    pub a: Vec<Ipv4Addr>,
}

/// One DNS query over UDP (blocking, 3 s timeout).
pub fn dns_query(server: Ipv4Addr, name: &str, ty: RecordType) -> std::io::Result<DnsAnswer> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    s.send_to(&m.to_vec().unwrap(), (server, 53))?;
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf)?;
    let resp = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
    assert_eq!(resp.metadata.id, m.metadata.id);
    Ok(DnsAnswer {
        code: resp.metadata.response_code,
        a: resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    })
}

/// A fake upstream resolver on 127.0.0.1 of the test host: `upstream.test` is 192.0.2.99,
/// everything else NXDOMAIN.
pub async fn fake_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    fake_upstream_at("127.0.0.1:0").await
}

/// [`fake_upstream`] bound to `bind`.
pub async fn fake_upstream_at(bind: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = tokio::net::UdpSocket::bind(bind).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
            resp.add_queries(req.queries.iter().cloned());
            let q = &req.queries[0];
            if q.name().to_ascii().trim_end_matches('.') == "upstream.test" {
                resp.add_answer(hickory_proto::rr::Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(hickory_proto::rr::rdata::A(Ipv4Addr::new(192, 0, 2, 99))),
                ));
            } else {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    });
    (addr, task)
}

/// A netd root in a temporary directory with a config suited to tests.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        TestRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    pub fn config(&self, upstream: Option<SocketAddr>) -> NetdConfig {
        NetdConfig {
            dns_upstreams: Some(upstream.into_iter().collect()),
            host_resolv_conf: self.dir.path().join("no-resolv.conf"),
            ..Default::default()
        }
    }

    pub async fn open(&self, upstream: Option<SocketAddr>) -> Netd {
        Netd::open(&self.path(), self.config(upstream))
            .await
            .unwrap()
    }
}

/// Every link name in the current namespace.
pub fn link_names() -> Vec<String> {
    run_ok("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// An endpoint spec.
pub fn endpoint(network: &str, name: &str) -> netd::EndpointSpec {
    netd::EndpointSpec {
        network: network.to_string(),
        container_name: name.to_string(),
        ..Default::default()
    }
}

/// A network spec with just a name.
pub fn network(name: &str) -> netd::NetworkSpec {
    netd::NetworkSpec {
        name: name.to_string(),
        ..Default::default()
    }
}

/// An error with its whole source chain, `: `-separated.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

/// An "outside" host: a namespace linked to the test host by a veth pair, with 198.18.0.2/30
/// on its side and 198.18.0.1/30 on the test host's.
pub struct Outside {
    pub ns: TestNetns,
    pub host_if: String,
}

impl Outside {
    pub fn new() -> Outside {
        let ns = TestNetns::new("o");
        let host_if = unique("ov");
        let peer = unique("op");
        run_ok(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer, "netns", &ns.name,
            ],
        );
        run_ok("ip", &["addr", "add", "198.18.0.1/30", "dev", &host_if]);
        run_ok("ip", &["link", "set", &host_if, "up"]);
        ns.exec(&["ip", "addr", "add", "198.18.0.2/30", "dev", &peer]);
        ns.exec(&["ip", "link", "set", &peer, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Outside { ns, host_if }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}
