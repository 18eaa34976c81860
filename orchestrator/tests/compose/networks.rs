//! Service `networks`, `network_mode` and top-level `networks`.

use orchestrator::compose::NetworkMode;

use super::{error, errors, load};

#[test]
fn services_without_networks_join_the_default_network() {
    let p = load("name: shop\nservices:\n  web:\n    image: x\n  vpn:\n    image: x\n    network_mode: host\n");
    assert!(p.services["web"].networks.contains_key("default"));
    assert!(p.services["vpn"].networks.is_empty());
    assert_eq!(p.services["vpn"].network_mode, Some(NetworkMode::Host));
    assert_eq!(p.networks["default"].name, "shop_default");
}

#[test]
fn list_and_map_syntax_with_aliases_and_addresses() {
    let p = load(
        "name: shop\nservices:\n  web:\n    image: x\n    networks:\n      front:\n        aliases: [www]\n      back:\n        ipv4_address: 10.5.0.10\n  db:\n    image: x\n    networks: [back]\nnetworks:\n  front:\n    labels: [tier=front]\n  back:\n    internal: true\n    ipam:\n      config:\n        - subnet: 10.5.0.0/16\n          gateway: 10.5.0.1\n  outside:\n    external: true\n    name: shared\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.networks["front"].aliases, ["www"]);
    assert_eq!(
        web.networks["back"].ipv4_address,
        Some("10.5.0.10".parse().unwrap())
    );
    assert!(
        !p.networks.contains_key("default"),
        "no service uses default"
    );
    assert_eq!(p.networks["front"].name, "shop_front");
    assert_eq!(p.networks["front"].labels["tier"], "front");
    assert!(p.networks["back"].internal);
    assert_eq!(
        p.networks["back"].ipam.config[0].subnet.as_deref(),
        Some("10.5.0.0/16")
    );
    assert_eq!(p.networks["outside"].name, "shared");
}

#[test]
fn undeclared_networks_are_errors_with_a_suggestion() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    networks: [bakend]\nnetworks:\n  backend:\n"),
        "compose.yaml:4:16: services.web.networks.bakend: undeclared network `bakend` (did you mean `backend`?); declare it under the top-level `networks`"
    );
}

#[test]
fn fixed_addresses_need_a_matching_subnet() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    networks:\n      n:\n        ipv4_address: 10.0.0.5\nnetworks:\n  n:\n"),
        "compose.yaml:6:9: services.web.networks.n.ipv4_address: a fixed address needs a subnet: set `ipam.config` with a subnet on network `n`"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    networks:\n      n:\n        ipv4_address: 10.1.0.5\nnetworks:\n  n:\n    ipam:\n      config: [{subnet: 10.0.0.0/24}]\n"),
        "compose.yaml:6:9: services.web.networks.n.ipv4_address: address 10.1.0.5 is outside the subnets of network `n` (10.0.0.0/24)"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          gateway: 10.9.0.1\n"),
        "compose.yaml:9:11: networks.n.ipam.config[0].gateway: gateway 10.9.0.1 is outside subnet 10.0.0.0/24"
    );
}

#[test]
fn network_mode_rules() {
    let p = load(
        "services:\n  vpn:\n    image: x\n  app:\n    image: x\n    network_mode: service:vpn\n",
    );
    assert_eq!(
        p.services["app"].network_mode,
        Some(NetworkMode::Service("vpn".into()))
    );
    assert_eq!(
        error("services:\n  app:\n    image: x\n    network_mode: service:vnp\n  vpn:\n    image: x\n"),
        "compose.yaml:4:5: services.app.network_mode: unknown service `vnp` (did you mean `vpn`?)"
    );
    assert_eq!(
        error("services:\n  app:\n    image: x\n    network_mode: host\n    networks: [n]\nnetworks:\n  n:\n"),
        "compose.yaml:4:5: services.app.network_mode: `network_mode` and `networks` cannot be combined; remove one of them"
    );
    assert_eq!(
        error("services:\n  app:\n    image: x\n    network_mode: bridge\n"),
        "compose.yaml:4:5: services.app.network_mode: network mode \"bridge\" is not supported yet; use \"none\", \"host\", \"service:NAME\" or project networks"
    );
}

#[test]
fn network_options_berth_lacks_are_rejected() {
    let e = errors("services:\n  web:\n    image: x\nnetworks:\n  n:\n    driver: overlay\n    enable_ipv6: true\n  e:\n    external: true\n    internal: true\n");
    assert_eq!(
        e,
        [
            "compose.yaml:6:5: networks.n.driver: network driver `overlay` is not supported yet; use bridge",
            "compose.yaml:7:5: networks.n.enable_ipv6: `enable_ipv6` is not supported yet (berth does not implement it); remove it",
            "compose.yaml:8:3: networks.e: an external network is created elsewhere: remove `driver`, `ipam` and `internal`",
        ]
    );
}
