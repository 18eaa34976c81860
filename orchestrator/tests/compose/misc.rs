//! The remaining service keys: command, entrypoint, user, signals, capabilities, ulimits, hosts,
//! DNS, names and flags.

use std::time::Duration;

use super::{error, errors, service};

#[test]
fn commands_split_like_a_shell() {
    let s = service(
        "services:\n  web:\n    image: x\n    command: bash -c \"echo 'hi there' && sleep 1\"\n    entrypoint: [/bin/tini, --]\n",
        "web",
    );
    assert_eq!(
        s.command.unwrap(),
        ["bash", "-c", "echo 'hi there' && sleep 1"]
    );
    assert_eq!(s.entrypoint.unwrap(), ["/bin/tini", "--"]);
    let s = service(
        "services:\n  web:\n    image: x\n    entrypoint: []\n",
        "web",
    );
    assert_eq!(
        s.entrypoint,
        Some(vec![]),
        "an empty entrypoint clears the image's"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    command: echo 'unterminated\n"),
        "compose.yaml:4:5: services.web.command: unterminated single quote in \"echo 'unterminated\""
    );
}

#[test]
fn scalars_and_flags() {
    let s = service(
        "services:\n  web:\n    image: x\n    user: 1000\n    working_dir: /app\n    hostname: web-1\n    container_name: shop_web\n    init: true\n    read_only: true\n    stdin_open: true\n    tty: true\n    stop_grace_period: 1m30s\n    stop_signal: int\n    platform: linux/amd64\n    runtime: runc\n",
        "web",
    );
    assert_eq!(s.user.as_deref(), Some("1000"));
    assert_eq!(s.working_dir.as_deref(), Some("/app"));
    assert_eq!(s.hostname.as_deref(), Some("web-1"));
    assert_eq!(s.container_name.as_deref(), Some("shop_web"));
    assert_eq!(s.init, Some(true));
    assert!(s.read_only && s.stdin_open && s.tty);
    assert_eq!(s.stop_grace_period, Some(Duration::from_secs(90)));
    assert_eq!(s.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(s.runtime.as_deref(), Some("runc"));
}

#[test]
fn capabilities_are_checked_and_normalized() {
    let s = service(
        "services:\n  web:\n    image: x\n    cap_add: [net_admin, CAP_SYS_TIME]\n    cap_drop: [ALL]\n",
        "web",
    );
    assert_eq!(s.cap_add, ["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(s.cap_drop, ["ALL"]);
    assert_eq!(
        error("services:\n  web:\n    image: x\n    cap_add: [NET_ADMN]\n"),
        "compose.yaml:4:15: services.web.cap_add[0]: unknown capability \"NET_ADMN\" (did you mean `NET_ADMIN`?)"
    );
}

#[test]
fn ulimits_hosts_dns_and_sysctls() {
    let s = service(
        "services:\n  web:\n    image: x\n    ulimits:\n      nproc: 65535\n      nofile: {soft: 20000, hard: 40000}\n    extra_hosts:\n      - \"somehost:162.242.195.82\"\n      - \"otherhost=50.31.209.229\"\n      - \"gw:host-gateway\"\n      - \"v6:::1\"\n    dns: 8.8.8.8\n",
        "web",
    );
    assert_eq!(
        (s.ulimits["nproc"].soft, s.ulimits["nproc"].hard),
        (65535, 65535)
    );
    assert_eq!(
        (s.ulimits["nofile"].soft, s.ulimits["nofile"].hard),
        (20000, 40000)
    );
    assert_eq!(s.extra_hosts["somehost"], ["162.242.195.82"]);
    assert_eq!(s.extra_hosts["otherhost"], ["50.31.209.229"]);
    assert_eq!(s.extra_hosts["gw"], ["host-gateway"]);
    assert_eq!(s.extra_hosts["v6"], ["::1"]);
    assert_eq!(s.dns, ["8.8.8.8".parse::<std::net::IpAddr>().unwrap()]);
    let e = errors("services:\n  web:\n    image: x\n    ulimits:\n      nofile: {soft: 2, hard: 1}\n    extra_hosts: {db: nowhere}\n    dns: [dns.google]\n");
    assert_eq!(
        e,
        [
            "compose.yaml:5:7: services.web.ulimits.nofile: soft limit 2 is above hard limit 1",
            "compose.yaml:6:19: services.web.extra_hosts.db: expected an IP address or \"host-gateway\", found \"nowhere\"",
            "compose.yaml:7:11: services.web.dns[0]: expected an IP address, found \"dns.google\"",
        ]
    );
}

#[test]
fn names_signals_and_paths_are_validated() {
    let e = errors("services:\n  a:\n    image: x\n    container_name: same\n    stop_signal: SIGBOGUS\n    working_dir: app\n    hostname: bad_host\n  b:\n    image: x\n    container_name: same\n");
    assert_eq!(
        e,
        [
            "compose.yaml:5:5: services.a.stop_signal: unknown signal \"SIGBOGUS\"",
            "compose.yaml:6:5: services.a.working_dir: the container path \"app\" must be absolute",
            "compose.yaml:7:5: services.a.hostname: invalid host name \"bad_host\": use dot-separated labels of letters, digits and `-`",
            "compose.yaml:10:5: services.b.container_name: container name \"same\" is already used by service `a`",
        ]
    );
    assert_eq!(
        error("services:\n  a:\n    image: x\n    container_name: one\n    scale: 2\n"),
        "compose.yaml:4:5: services.a.container_name: a fixed container name cannot be used with 2 replicas; remove one of them"
    );
}

#[test]
fn extensions_are_kept() {
    let s = service("services:\n  web:\n    image: x\n    x-team: shop\n", "web");
    assert_eq!(s.extensions["x-team"].as_str(), Some("shop"));
}
