//! `ports` and `expose`.

use orchestrator::compose::{PortRange, Protocol};

use super::{error, service};

#[test]
fn short_syntax_becomes_one_long_entry_per_container_port() {
    let s = service(
        "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - 8080:80\n      - \"127.0.0.1:8443:443\"\n      - 53:53/udp\n      - 9000-9001:9000-9001\n      - \"[::1]:6000:6000\"\n",
        "web",
    );
    let got: Vec<String> = s
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}|{}|{}|{}",
                p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                p.published.map(|r| r.to_string()).unwrap_or_default(),
                p.target,
                p.protocol.as_str()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "||80|tcp",
            "|8080|80|tcp",
            "127.0.0.1|8443|443|tcp",
            "|53|53|udp",
            "|9000|9000|tcp",
            "|9001|9001|tcp",
            "::1|6000|6000|tcp",
        ]
    );
}

#[test]
fn long_syntax_and_published_ranges() {
    let s = service(
        "services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        published: \"8000-8010\"\n        host_ip: 0.0.0.0\n        protocol: udp\n      - target: \"81\"\n        published: 8081\n",
        "web",
    );
    assert_eq!(
        s.ports[0].published,
        Some(PortRange {
            start: 8000,
            end: 8010
        })
    );
    assert_eq!(s.ports[0].protocol, Protocol::Udp);
    assert_eq!(s.ports[1].target, 81);
    assert_eq!(s.ports[1].published, Some(PortRange::single(8081)));
}

#[test]
fn out_of_range_and_malformed_ports_are_errors_with_positions() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    ports:\n      - \"70000:80\"\n"),
        "compose.yaml:5:9: services.web.ports[0]: invalid port spec \"70000:80\": host port: port 70000 is out of range 1-65535"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    ports:\n      - \"80:http\"\n"),
        "compose.yaml:5:9: services.web.ports[0]: invalid port spec \"80:http\": container port: expected a port number, found \"http\""
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    ports:\n      - published: 80\n"),
        "compose.yaml:5:9: services.web.ports[0]: missing `target`: the container port"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        mode: host\n"),
        "compose.yaml:6:9: services.web.ports[0].mode: `mode` is not supported yet (berth does not implement it); remove it"
    );
}

#[test]
fn two_services_cannot_publish_the_same_host_port() {
    assert_eq!(
        error("services:\n  a:\n    image: x\n    ports: ['80:80']\n  b:\n    image: x\n    ports: ['80:8080']\n"),
        "compose.yaml:7:13: services.b.ports[0]: host port 80/tcp is already published by service `a`"
    );
    assert_eq!(
        error("services:\n  a:\n    image: x\n    deploy: {replicas: 2}\n    ports: ['80:80']\n"),
        "compose.yaml:5:13: services.a.ports[0]: host port 80 cannot be published by 2 replicas; publish a range or let berth pick ports"
    );
}

#[test]
fn expose_accepts_numbers_ranges_and_protocols() {
    let s = service(
        "services:\n  db:\n    image: x\n    expose: [5432, \"8000-8010\", \"53/udp\"]\n",
        "db",
    );
    assert_eq!(s.expose, ["5432", "8000-8010", "53/udp"]);
    assert_eq!(
        error("services:\n  db:\n    image: x\n    expose: [\"99999\"]\n"),
        "compose.yaml:4:14: services.db.expose[0]: invalid exposed port \"99999\": port 99999 is out of range 1-65535"
    );
}
