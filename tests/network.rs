//! End-to-end tests of networks: the real `berth` binary, as root, one private root (and
//! engine) per test, unique network names. Traffic goes only to addresses of bridges, containers
//! and namespaces the tests made, and to loopback.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{in_netns, root_id, unique, OutsideNet, Root, Run};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /` from inside container `from` to `target:port` with busybox nc (2 s connect timeout).
fn http_get(r: &Root, from: &str, target: &str, port: u16) -> Run {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {target} {port}");
    r.run(&["container", "exec", from, "sh", "-c", &script])
}

fn reaches(r: &Root, from: &str, target: &str, port: u16) -> bool {
    http_get(r, from, target, port).stdout.contains("hello")
}

/// Asserts that `from` cannot get `/` from `target:port` and that nc itself says why (so the
/// failure is the network's, not the exec's); returns nc's message.
fn assert_blocked(r: &Root, from: &str, target: &str, port: u16) -> String {
    let out = http_get(r, from, target, port);
    assert!(
        !out.stdout.contains("hello"),
        "{from} reached {target}:{port}"
    );
    assert!(
        out.code != 0 && out.stderr.contains("nc: "),
        "exec in {from} failed by itself ({}): {}",
        out.code,
        out.stderr
    );
    out.stderr
}

/// Starts busybox httpd serving "hello" on `port` in a new detached container.
fn run_web(r: &Root, name: &str, extra: &[&str], port: u16) {
    let port = port.to_string();
    let mut args = vec!["container", "run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb", "httpd", "-f", "-p", &port, "-h", "/var/www"]);
    r.ok(&args);
}

fn run_sleeper(r: &Root, name: &str, extra: &[&str]) {
    let mut args = vec!["container", "run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb", "sleep", "1000"]);
    r.ok(&args);
}

/// The first endpoint of a container as `container inspect` shows it.
fn endpoint(r: &Root, name: &str) -> serde_json::Value {
    r.inspect(name)["network"]["endpoints"][0].clone()
}

fn ip_of(r: &Root, name: &str) -> String {
    endpoint(r, name)["ipv4"]
        .as_str()
        .expect("ipv4")
        .to_string()
}

fn network(r: &Root, name: &str) -> serde_json::Value {
    let out = r.ok(&["network", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect json");
    v[0].clone()
}

fn host_links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn nft_tables() -> String {
    String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn containers_reach_each_other_by_name_and_alias_only_on_a_shared_network() {
    let r = Root::with_busybox();
    let (net_a, net_b, net_i) = (unique("a"), unique("b"), unique("i"));
    r.ok(&["network", "create", &net_a]);
    r.ok(&["network", "create", &net_b]);
    r.ok(&["network", "create", "--internal", &net_i]);
    run_web(
        &r,
        "web",
        &["--network", &net_a, "--network-alias", "frontdoor"],
        8080,
    );
    run_sleeper(&r, "peer", &["--network", &net_a]);
    run_sleeper(&r, "stranger", &["--network", &net_b]);
    run_sleeper(&r, "hermit", &["--network", &net_i]);

    wait_until("web to answer peer by name", || {
        reaches(&r, "peer", "web", 8080)
    });
    assert!(reaches(&r, "peer", "frontdoor", 8080), "by alias");
    let ping = r.run(&[
        "container",
        "exec",
        "peer",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "web",
    ]);
    assert_eq!(ping.code, 0, "ping by name: {}{}", ping.stdout, ping.stderr);

    let web_ip = ip_of(&r, "web");
    assert!(reaches(&r, "peer", &web_ip, 8080), "by address");
    // Another network reaches neither the address nor the name. (The name is tried from the
    // internal network, whose DNS server answers only its own names and forwards nothing.)
    assert_blocked(&r, "stranger", &web_ip, 8080);
    let why = assert_blocked(&r, "hermit", "web", 8080);
    assert!(why.contains("bad address"), "{why}");
    assert_blocked(&r, "hermit", &web_ip, 8080);

    let ep = endpoint(&r, "web");
    assert_eq!(ep["network"], net_a.as_str());
    assert_eq!(ep["interface"], "eth0");
    let mac = ep["mac"].as_str().unwrap();
    assert_eq!(mac.len(), 17, "{mac}");
    let net = network(&r, &net_a);
    let names: Vec<&str> = net["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["container_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"web") && names.contains(&"peer"),
        "{names:?}"
    );
    assert_eq!(names.len(), 2);
}

/// The host port `berth container port NAME PORT` reports.
fn host_port(r: &Root, name: &str, port: &str) -> u16 {
    let out = r.ok(&["container", "port", name, port]);
    let (_, p) = out.trim().rsplit_once(':').expect("HOST_IP:PORT");
    p.parse().expect("port number")
}

/// `GET /` over TCP from the host; empty when nothing answers.
fn host_get(addr: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
    else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Sends `msg` to `to` until an answer comes (at most ~9 s); returns it.
fn udp_ask(to: (&str, u16), msg: &[u8]) -> Option<Vec<u8>> {
    let client = UdpSocket::bind("0.0.0.0:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..30 {
        client.send_to(msg, to).unwrap();
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

#[test]
fn published_tcp_and_udp_ports_reach_the_container_from_the_host() {
    let r = Root::with_busybox();
    // No --network: the default bridge network, created on first use.
    let publish = [
        "-p",
        "127.0.0.1::8080",
        "-p",
        "9999/udp",
        "-p",
        "127.0.0.1::7000-7001",
    ];
    run_web(&r, "pub", &publish, 8080);
    let ports = r.ok(&["container", "port", "pub"]);
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 4, "{ports}");
    for (line, prefix) in lines.iter().zip([
        "7000/tcp -> 127.0.0.1:",
        "7001/tcp -> 127.0.0.1:",
        "8080/tcp -> 127.0.0.1:",
        "9999/udp -> 0.0.0.0:",
    ]) {
        assert!(line.starts_with(prefix), "{ports}");
    }
    let tcp = host_port(&r, "pub", "8080");
    let udp = host_port(&r, "pub", "9999/udp");
    let missing = r.run(&["container", "port", "pub", "81"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no public port '81/tcp'"),
        "{}",
        missing.stderr
    );

    let info = r.inspect("pub");
    assert_eq!(info["network"]["mode"], "bridge");
    assert_eq!(info["network"]["endpoints"][0]["network"], "bridge");
    assert_eq!(info["network"]["published"].as_array().unwrap().len(), 4);
    let gateway = network(&r, "bridge")["gateway"]
        .as_str()
        .unwrap()
        .to_string();

    let local = format!("127.0.0.1:{tcp}");
    wait_until("the published tcp port", || {
        host_get(&local).contains("hello")
    });
    // A host port in use is a clear error, and the second container gets no network.
    let taken = format!("127.0.0.1:{tcp}:8080");
    let again = r.run(&[
        "container",
        "run",
        "-d",
        "--name",
        "again",
        "-p",
        &taken,
        "bb",
        "true",
    ]);
    assert_eq!(again.code, 125);
    assert!(
        again
            .stderr
            .contains(&format!("host port {local}/tcp is already in use")),
        "{}",
        again.stderr
    );
    assert!(r.inspect("again")["network"]["endpoints"]
        .as_array()
        .unwrap()
        .is_empty());

    // UDP: a socket bound inside the container's namespace answers datagrams sent to the
    // published port, over 127.0.0.1 and over the bridge-facing address.
    let pid = info["state"]["pid"].as_i64().unwrap() as i32;
    let server = in_netns(pid, || {
        let s = UdpSocket::bind("0.0.0.0:9999").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 64];
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let (n, from) = s.recv_from(&mut buf).unwrap();
            s.send_to(&[b"echo:", &buf[..n]].concat(), from).unwrap();
            if !seen.contains(&buf[..n].to_vec()) {
                seen.push(buf[..n].to_vec());
            }
        }
    });
    let lo = udp_ask(("127.0.0.1", udp), b"lo");
    let gw = udp_ask((gateway.as_str(), udp), b"gw");
    server.join().unwrap();
    assert_eq!(lo.as_deref(), Some(&b"echo:lo"[..]));
    assert_eq!(gw.as_deref(), Some(&b"echo:gw"[..]));
}

#[test]
fn internal_networks_have_no_egress() {
    let r = Root::with_busybox();
    let outside = OutsideNet::new("hello");
    let (open, closed) = (unique("o"), unique("c"));
    r.ok(&["network", "create", &open]);
    r.ok(&["network", "create", "--internal", &closed]);
    run_sleeper(&r, "out", &["--network", &open]);
    // NET_ADMIN lets the test give the internal container a route out by hand below.
    run_sleeper(&r, "in", &["--network", &closed, "--cap-add", "NET_ADMIN"]);
    let target = outside.addr.to_string();
    wait_until("egress to the test's namespace", || {
        reaches(&r, "out", &target, outside.port)
    });
    let routes = r.ok(&["container", "exec", "out", "ip", "route"]);
    assert!(routes.contains("default via"), "{routes}");

    let routes = r.ok(&["container", "exec", "in", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let why = assert_blocked(&r, "in", &target, outside.port);
    assert!(why.contains("unreachable"), "{why}");
    // Even with a default route via its gateway, the host forwards nothing out of it.
    let gateway = network(&r, &closed)["gateway"]
        .as_str()
        .unwrap()
        .to_string();
    r.ok(&[
        "container",
        "exec",
        "in",
        "ip",
        "route",
        "add",
        "default",
        "via",
        &gateway,
    ]);
    assert_blocked(&r, "in", &target, outside.port);
}

#[test]
fn network_rm_is_refused_while_attached_and_nothing_is_left_after() {
    let r = Root::with_busybox();
    let net = unique("r");
    r.ok(&["network", "create", "--label", "team=qa", &net]);
    run_sleeper(&r, "holder", &["--network", &net]);
    let bridge = network(&r, &net)["bridge"].as_str().unwrap().to_string();
    let veth = endpoint(&r, "holder")["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(host_links().contains(&format!(" {bridge}:")));
    assert!(host_links().contains(&format!(" {veth}@")));
    let table = format!("berth-{}", root_id(&r.dir));
    assert!(nft_tables().contains(&table));

    let refused = r.run(&["network", "rm", &net]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("in use") && refused.stderr.contains("holder"),
        "{}",
        refused.stderr
    );
    r.ok(&["container", "rm", "-f", "holder"]);
    r.ok(&["network", "rm", &net]);
    let links = host_links();
    assert!(
        !links.contains(&format!(" {bridge}:")),
        "bridge left: {links}"
    );
    assert!(!links.contains(&format!(" {veth}@")), "veth left: {links}");
    assert!(!nft_tables().contains(&table), "nft table left");

    let spare = unique("p");
    r.ok(&["network", "create", &spare]);
    let pruned = r.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains(&spare), "{pruned}");
    assert_eq!(r.ok(&["network", "ls", "-q"]), "");
}

#[test]
fn engine_killed_with_sigkill_keeps_networks_working() {
    let r = Root::with_busybox();
    let net = unique("k");
    r.ok(&["network", "create", &net]);
    run_web(
        &r,
        "web",
        &[
            "--network",
            &net,
            "--network-alias",
            "site",
            "-p",
            "127.0.0.1::8080",
        ],
        8080,
    );
    run_sleeper(&r, "client", &["--network", &net]);
    wait_until("web by name", || reaches(&r, "client", "site", 8080));

    let pid = r.engine_pid().expect("engine pid");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("engine death", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    // The next command starts a new engine, which restores DNS and published ports.
    assert!(reaches(&r, "client", "site", 8080), "dns after restart");
    let port = host_port(&r, "web", "8080");
    let out = host_get(&format!("127.0.0.1:{port}"));
    assert!(out.contains("hello"), "published port after restart: {out}");

    // Exits are still noticed: a stopped container leaves the network.
    r.ok(&["container", "stop", "-t", "1", "web"]);
    let attached = network(&r, &net)["containers"].as_array().unwrap().len();
    assert_eq!(attached, 1);
    let why = assert_blocked(&r, "client", "site", 8080);
    assert!(why.contains("bad address"), "{why}");
}

#[test]
fn none_host_static_ip_and_etc_files() {
    let r = Root::with_busybox();
    let links = r.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"));
    assert_eq!(
        r.ok(&["network", "ls", "-q"]),
        "",
        "--network none made no network"
    );

    let host_if: Vec<String> = host_links()
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap().to_string())
        })
        .collect();
    let inside = r.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "ip",
        "-o",
        "link",
    ]);
    assert!(
        host_if
            .iter()
            .filter(|n| *n != "lo")
            .any(|n| inside.contains(&format!(" {n}:")) || inside.contains(&format!(" {n}@"))),
        "host interfaces visible: {inside}"
    );
    assert!(
        !r.dir.join("net").exists(),
        "--network none and host never start the network layer"
    );

    let net = unique("s");
    r.ok(&["network", "create", &net]);
    let subnet = network(&r, &net)["subnet"].as_str().unwrap().to_string();
    let gateway = network(&r, &net)["gateway"].as_str().unwrap().to_string();
    let base = subnet.rsplit_once('.').unwrap().0;
    let ip = format!("{base}.50");
    run_sleeper(
        &r,
        "fixed",
        &["--network", &net, "--ip", &ip, "--hostname", "box"],
    );
    let addrs = r.ok(&[
        "container",
        "exec",
        "fixed",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addrs.contains(&format!("{ip}/")), "{addrs}");
    let dup = r.run(&[
        "container",
        "run",
        "-d",
        "--name",
        "dup",
        "--network",
        &net,
        "--ip",
        &ip,
        "bb",
        "true",
    ]);
    assert_ne!(dup.code, 0);
    assert!(dup.stderr.contains("already in use"), "{}", dup.stderr);

    let etc = r.ok(&[
        "container",
        "exec",
        "fixed",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts /etc/hostname",
    ]);
    assert!(etc.contains(&format!("nameserver {gateway}")), "{etc}");
    assert!(etc.contains(&format!("{ip}\tfixed")), "{etc}");
    assert!(
        etc.lines().any(|l| l.starts_with(&ip) && l.contains("box")),
        "{etc}"
    );
    assert!(etc.ends_with("box\n"), "{etc}");
}
