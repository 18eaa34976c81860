//! Root tests: subnet selection beside the host's and another root's networks, rollback of a
//! failed attach, engine restart (restore and reconcile), complete teardown, Docker
//! coexistence, and one smoke test in the machine's real network namespace.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use hickory_proto::rr::RecordType;
use netd::{NetdError, NetworkSpec};

#[test]
fn subnet_pool_skips_host_subnets_and_other_roots() {
    in_test_host(|| async {
        // The host already uses the first subnet of the pool.
        run_ok("ip", &["link", "add", "bthostnet", "type", "bridge"]);
        run_ok("ip", &["addr", "add", "10.89.0.1/24", "dev", "bthostnet"]);
        run_ok("ip", &["link", "set", "bthostnet", "up"]);
        let (r1, r2) = (TestRoot::new(), TestRoot::new());
        let (n1, n2) = (r1.open(None).await, r2.open(None).await);
        assert_ne!(n1.root_id(), n2.root_id());
        let a = n1.create_network(network("a")).await.unwrap();
        assert_eq!(a.subnet.to_string(), "10.89.1.0/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 89, 1, 1));
        // Another berth root on the same host skips it too.
        let b = n2.create_network(network("b")).await.unwrap();
        assert_eq!(b.subnet.to_string(), "10.89.2.0/24");
        // A container of one root cannot use the other root's DNS server (or reach its
        // network), though the other root's rules know nothing of it.
        let c = TestNetns::new("c");
        n1.attach("c", &c.path, &[endpoint("a", "c")], &[])
            .await
            .unwrap();
        let other_gw = b.gateway;
        assert!(c
            .run(move || dns_query(other_gw, "x", RecordType::A))
            .await
            .is_err());
        let own_gw = a.gateway;
        assert!(c
            .run(move || dns_query(own_gw, "c", RecordType::A))
            .await
            .is_ok());
        n1.detach("c").await.unwrap();
        // A given subnet that overlaps is refused with the owner named.
        let err = n2
            .create_network(NetworkSpec {
                name: "c".into(),
                subnet: Some("10.89.0.0/16".parse().unwrap()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(chain(&err).contains("overlaps"), "{}", chain(&err));
        // Names are unique per root, and validated.
        assert!(matches!(
            n1.create_network(network("a")).await,
            Err(NetdError::NetworkExists(_))
        ));
        assert!(matches!(
            n1.create_network(network("-bad")).await,
            Err(NetdError::InvalidNetwork { .. })
        ));
        // Lookup by id prefix; listing.
        assert_eq!(n1.get(&a.id[..8]).await.unwrap().name, "a");
        assert_eq!(n1.list().await.len(), 1);
        assert!(matches!(
            n1.get("zzz").await,
            Err(NetdError::NetworkNotFound(_))
        ));
        n1.remove_network("a").await.unwrap();
        n2.remove_network("b").await.unwrap();
        // Removing twice reports the network as missing.
        assert!(matches!(
            n1.remove_network("a").await,
            Err(NetdError::NetworkNotFound(_))
        ));
        n1.shutdown().await;
        n2.shutdown().await;
        run_ok("ip", &["link", "del", "bthostnet"]);
    });
}

#[test]
fn a_failed_attach_leaves_nothing_behind() {
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        netd.create_network(network("a")).await.unwrap();
        netd.create_network(network("b")).await.unwrap();
        let c = TestNetns::new("c");
        // eth1 already exists inside (a bridge: this kernel has no dummy driver): the second veth cannot be created after the first was.
        c.exec(&["ip", "link", "add", "eth1", "type", "bridge"]);
        let links_before = link_names();
        let err = netd
            .attach(
                "c1",
                &c.path,
                &[endpoint("a", "x"), endpoint("b", "x")],
                &[],
            )
            .await
            .unwrap_err();
        assert!(chain(&err).contains("create veth pair"), "{}", chain(&err));
        assert_eq!(link_names(), links_before);
        let inside = c.exec(&["ip", "-o", "link"]);
        assert!(!inside.contains("eth0"), "{inside}");
        assert!(netd.attachment("c1").await.is_none());
        assert!(netd.get("a").await.unwrap().containers.is_empty());
        // Unknown networks and duplicates are refused up front.
        assert!(matches!(
            netd.attach("c1", &c.path, &[endpoint("nope", "x")], &[])
                .await,
            Err(NetdError::NetworkNotFound(_))
        ));
        assert!(matches!(
            netd.attach(
                "c1",
                &c.path,
                &[endpoint("a", "x"), endpoint("a", "y")],
                &[]
            )
            .await,
            Err(NetdError::AlreadyAttached { .. })
        ));
        assert!(matches!(
            netd.attach("c1", &c.path, &[endpoint("a", "bad name")], &[])
                .await,
            Err(NetdError::InvalidEndpoint { .. })
        ));
        let missing = std::path::Path::new("/proc/999999999/ns/net");
        assert!(matches!(
            netd.attach("c1", missing, &[endpoint("a", "x")], &[]).await,
            Err(NetdError::Netns { .. })
        ));
        // The address planned for the failed attach is free again.
        c.exec(&["ip", "link", "del", "eth1"]);
        let ok = netd
            .attach("c1", &c.path, &[endpoint("a", "x")], &[])
            .await
            .unwrap();
        assert_eq!(ok.endpoints[0].ipv4.octets()[3], 2);
        netd.detach("c1").await.unwrap();
        netd.prune().await.unwrap();
        netd.shutdown().await;
    });
}

#[test]
fn restart_restores_networks_and_reconcile_drops_dead_containers() {
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let net = netd.create_network(network("keep")).await.unwrap();
        let (alive, dead) = (TestNetns::new("c"), TestNetns::new("c"));
        let pub_port = netd::PortSpec {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: None,
            container_port: 80,
            proto: netd::Proto::Tcp,
        };
        let a = netd
            .attach(
                "alive",
                &alive.path,
                &[endpoint("keep", "alive")],
                &[pub_port],
            )
            .await
            .unwrap();
        let d = netd
            .attach("dead", &dead.path, &[endpoint("keep", "dead")], &[])
            .await
            .unwrap();
        let host_port = a.ports[0].host_port;
        netd.shutdown().await;
        drop(netd);

        // While the engine is away: one container dies, and someone wipes the bridge and rules.
        drop(dead);
        run_ok("ip", &["link", "del", &net.bridge]);
        run_ok("nft", &["flush", "ruleset"]);

        let netd = root.open(None).await;
        let again = netd.get("keep").await.unwrap();
        assert_eq!(again.subnet, net.subnet);
        assert_eq!(again.containers.len(), 2);
        let addr = run_ok("ip", &["-o", "-4", "addr", "show", "dev", &net.bridge]);
        assert!(addr.contains(&format!("{}/24", net.gateway)), "{addr}");
        let rules = run_ok("nft", &["list", "table", "ip", netd.firewall_table()]);
        assert!(
            rules.contains(&format!("dport {host_port} dnat to")),
            "{rules}"
        );
        // The port is held again.
        assert!(std::net::TcpListener::bind(("0.0.0.0", host_port)).is_err());

        // The surviving container's veth was deleted with the bridge; the dead one is gone.
        // Reconcile detaches the dead container; the live one keeps its lease.
        let detached = netd.reconcile(&["alive".to_string()]).await.unwrap();
        assert_eq!(detached, vec!["dead".to_string()]);
        let after = netd.get("keep").await.unwrap();
        assert_eq!(after.containers.len(), 1);
        assert_eq!(after.containers[0].ipv4, a.endpoints[0].ipv4);
        // DNS answers from the restored records (re-attach the live container's link first,
        // as the engine would after a bridge loss).
        netd.detach("alive").await.unwrap();
        let re = netd
            .attach("alive", &alive.path, &[endpoint("keep", "alive")], &[])
            .await
            .unwrap();
        let gw = net.gateway;
        let ans = alive
            .run(move || dns_query(gw, "alive", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.a, vec![re.endpoints[0].ipv4]);
        // The dead container's address can be leased again.
        assert!(netd
            .get("keep")
            .await
            .unwrap()
            .containers
            .iter()
            .all(|c| c.ipv4 != d.endpoints[0].ipv4 || c.container_id == "alive"));

        // A veth on our bridge that no endpoint records is swept by reconcile.
        run_ok(
            "ip",
            &[
                "link", "add", "btstray0", "type", "veth", "peer", "name", "btstray1",
            ],
        );
        run_ok("ip", &["link", "set", "btstray0", "master", &net.bridge]);
        netd.reconcile(&["alive".to_string()]).await.unwrap();
        assert!(!link_names().iter().any(|l| l.starts_with("btstray")));

        netd.detach("alive").await.unwrap();
        netd.remove_network("keep").await.unwrap();
        netd.shutdown().await;
    });
}

/// Nothing of what a test's netd made is left: the networks' bridges, routes and gateway
/// addresses, the given veths, the nftables table and the iptables chain. (Other netd users may
/// run on the same host, so only these exact names are checked.)
fn assert_no_trace(networks: &[netd::Network], veths: &[String], table: &str, chain_name: &str) {
    let links = link_names();
    for name in networks.iter().map(|n| &n.bridge).chain(veths) {
        assert!(!links.contains(name), "link {name} left in {links:?}");
    }
    let routes = run_ok("ip", &["-4", "route"]);
    let addrs = run_ok("ip", &["-o", "-4", "addr"]);
    for n in networks {
        let route = format!("{} ", n.subnet);
        assert!(
            !routes.contains(&route),
            "route of {} left: {routes}",
            n.subnet
        );
        let addr = format!("inet {}/", n.gateway);
        assert!(
            !addrs.contains(&addr),
            "address {} left: {addrs}",
            n.gateway
        );
    }
    let ruleset = run_ok("nft", &["list", "ruleset"]);
    assert!(
        !ruleset.contains(&format!("table ip {table} ")),
        "nft table left: {ruleset}"
    );
    let chains = run_ok("iptables", &["-S"]);
    assert!(
        !chains.contains(chain_name),
        "iptables chain left: {chains}"
    );
}

#[test]
fn removing_every_network_leaves_no_trace() {
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let mut networks = Vec::new();
        for (name, internal) in [("x", false), ("y", true)] {
            let n = netd
                .create_network(NetworkSpec {
                    name: name.into(),
                    internal,
                    ..Default::default()
                })
                .await
                .unwrap();
            networks.push(n);
        }
        let c = TestNetns::new("c");
        let a = netd
            .attach(
                "c",
                &c.path,
                &[endpoint("x", "c"), endpoint("y", "c")],
                &[netd::PortSpec {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: None,
                    container_port: 80,
                    proto: netd::Proto::Udp,
                }],
            )
            .await
            .unwrap();
        assert!(run_ok("nft", &["list", "ruleset"]).contains(netd.firewall_table()));
        netd.detach("c").await.unwrap();
        assert_eq!(
            netd.prune().await.unwrap(),
            vec!["x".to_string(), "y".to_string()]
        );
        netd.shutdown().await;
        let veths: Vec<String> = a
            .endpoints
            .iter()
            .map(|e| e.host_interface.clone())
            .collect();
        assert_no_trace(
            &networks,
            &veths,
            netd.firewall_table(),
            netd.docker_chain(),
        );
        // The DNS servers are gone: the gateway port is free (its address is gone too).
    });
}

/// Docker's filter chains as Docker lays them out: FORWARD policy DROP, first rule a jump to
/// DOCKER-USER.
fn mimic_docker() {
    run_ok("iptables", &["-N", "DOCKER-USER"]);
    run_ok("iptables", &["-A", "DOCKER-USER", "-j", "RETURN"]);
    run_ok("iptables", &["-N", "DOCKER"]);
    run_ok("iptables", &["-A", "FORWARD", "-j", "DOCKER-USER"]);
    run_ok(
        "iptables",
        &["-A", "FORWARD", "-o", "docker0", "-j", "DOCKER"],
    );
    run_ok("iptables", &["-P", "FORWARD", "DROP"]);
}

#[test]
fn works_beside_docker_forward_drop() {
    in_test_host(|| async {
        mimic_docker();
        let outside = Outside::new();
        let _out_srv = TcpServer::start(
            &outside.ns.path,
            "198.18.0.2:8000".parse().unwrap(),
            "outside",
        );
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let net = netd.create_network(network("nextdoor")).await.unwrap();
        let (c1, c2) = (TestNetns::new("c"), TestNetns::new("c"));
        netd.attach("c1", &c1.path, &[endpoint("nextdoor", "one")], &[])
            .await
            .unwrap();
        let a2 = netd
            .attach(
                "c2",
                &c2.path,
                &[endpoint("nextdoor", "two")],
                &[netd::PortSpec {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: None,
                    container_port: 80,
                    proto: netd::Proto::Tcp,
                }],
            )
            .await
            .unwrap();
        let user = run_ok("iptables", &["-S", "DOCKER-USER"]);
        assert!(
            user.contains(&format!("-A DOCKER-USER -j {}", netd.docker_chain())),
            "{user}"
        );
        let _srv = TcpServer::start(&c2.path, "0.0.0.0:80".parse().unwrap(), "two");
        // Container to container across the bridge (bridged traffic crosses FORWARD).
        let t = SocketAddr::from((a2.endpoints[0].ipv4, 80));
        assert!(c1
            .run(move || tcp_fetch(t))
            .await
            .unwrap()
            .starts_with("two@"));
        // Without our jump, Docker's policy would indeed cut it; a refresh puts it back (as
        // after a restart of Docker, which rebuilds its chains).
        let chain_name = netd.docker_chain().to_string();
        run_ok("iptables", &["-D", "DOCKER-USER", "-j", &chain_name]);
        assert!(c1.run(move || tcp_fetch(t)).await.is_err());
        netd.refresh_firewall().await.unwrap();
        assert!(c1
            .run(move || tcp_fetch(t))
            .await
            .unwrap()
            .starts_with("two@"));
        // Egress.
        let out = "198.18.0.2:8000".parse().unwrap();
        assert_eq!(
            c1.run(move || tcp_fetch(out)).await.unwrap(),
            "outside@198.18.0.1"
        );
        // Published port from another host.
        let p = SocketAddr::from((Ipv4Addr::new(198, 18, 0, 1), a2.ports[0].host_port));
        assert!(outside
            .ns
            .run(move || tcp_fetch(p))
            .await
            .unwrap()
            .starts_with("two@"));
        let _ = net;

        netd.detach("c1").await.unwrap();
        netd.detach("c2").await.unwrap();
        netd.remove_network("nextdoor").await.unwrap();
        netd.shutdown().await;
        // Docker's own chains and policy are as they were; ours is gone.
        let forward = run_ok("iptables", &["-S", "FORWARD"]);
        assert!(forward.starts_with("-P FORWARD DROP"), "{forward}");
        let user = run_ok("iptables", &["-S", "DOCKER-USER"]);
        assert_eq!(user.trim(), "-N DOCKER-USER\n-A DOCKER-USER -j RETURN");
        assert!(!run_ok("iptables", &["-S"]).contains(netd.docker_chain()));
    });
}

/// The same life cycle in the machine's own network namespace (no test namespace around it),
/// with an internal network so no host-wide sysctl changes.
#[test]
fn smoke_in_the_real_host_namespace() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let spec = NetworkSpec {
            name: "smoke".into(),
            internal: true,
            ..Default::default()
        };
        let net = netd.create_network(spec).await.unwrap();
        let result = async {
            let c = TestNetns::new("h");
            let a = netd
                .attach("h1", &c.path, &[endpoint("smoke", "h1")], &[])
                .await?;
            let gw = net.gateway;
            let ans = c
                .run(move || dns_query(gw, "h1", RecordType::A))
                .await
                .unwrap();
            assert_eq!(ans.a, vec![a.endpoints[0].ipv4]);
            netd.detach("h1").await?;
            Ok::<_, netd::NetdError>(a.endpoints[0].host_interface.clone())
        }
        .await;
        let removed = netd.remove_network("smoke").await;
        netd.shutdown().await;
        let veth = result.unwrap();
        removed.unwrap();
        assert_no_trace(&[net], &[veth], netd.firewall_table(), netd.docker_chain());
    });
}
