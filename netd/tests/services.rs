//! Root tests: service names over replicas (rotation, health), aliases, DNS over TCP, and
//! published ports (TCP and UDP, loopback and bridge-facing addresses, ephemeral ports, taken
//! ports, hairpin).

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use netd::{EndpointSpec, NetdError, PortSpec, Proto};

fn replica(network: &str, name: &str) -> EndpointSpec {
    EndpointSpec {
        service: Some("web".into()),
        aliases: vec!["frontend".into()],
        ..endpoint(network, name)
    }
}

#[test]
fn a_service_with_three_replicas_resolves_to_all_of_them_in_rotation() {
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let net = netd.create_network(network("svc")).await.unwrap();
        let client = TestNetns::new("c");
        netd.attach("client", &client.path, &[endpoint("svc", "client")], &[])
            .await
            .unwrap();
        let mut replicas = Vec::new();
        let mut servers = Vec::new();
        let mut ips = HashSet::new();
        for i in 1..=3 {
            let ns = TestNetns::new("r");
            let a = netd
                .attach(
                    &format!("web-{i}"),
                    &ns.path,
                    &[replica("svc", &format!("proj-web-{i}"))],
                    &[],
                )
                .await
                .unwrap();
            ips.insert(a.endpoints[0].ipv4);
            servers.push(TcpServer::start(
                &ns.path,
                "0.0.0.0:80".parse().unwrap(),
                &format!("web-{i}"),
            ));
            replicas.push(ns);
        }
        let gw = net.gateway;
        let mut firsts = Vec::new();
        let mut reached = HashSet::new();
        for _ in 0..6 {
            let ans = client
                .run(move || dns_query(gw, "web", RecordType::A))
                .await
                .unwrap();
            assert_eq!(ans.a.iter().copied().collect::<HashSet<_>>(), ips);
            firsts.push(ans.a[0]);
            // A client that takes the first address.
            let first = SocketAddr::from((ans.a[0], 80));
            let got = client.run(move || tcp_fetch(first)).await.unwrap();
            reached.insert(got.split('@').next().unwrap().to_string());
        }
        assert_eq!(firsts.iter().collect::<HashSet<_>>().len(), 3, "{firsts:?}");
        assert_eq!(reached.len(), 3, "{reached:?}");
        // Aliases resolve too.
        let ans = client
            .run(move || dns_query(gw, "frontend", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.a.len(), 3);

        // An unhealthy replica drops out at once, and comes back.
        netd.set_dns_enabled("web-2", false).await.unwrap();
        let ans = client
            .run(move || dns_query(gw, "web", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.a.len(), 2);
        let ans = client
            .run(move || dns_query(gw, "proj-web-2", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.code, ResponseCode::NXDomain);
        let inspected = netd.get("svc").await.unwrap();
        assert!(inspected
            .containers
            .iter()
            .any(|c| c.container_id == "web-2" && !c.dns_enabled));
        netd.set_dns_enabled("web-2", true).await.unwrap();
        let ans = client
            .run(move || dns_query(gw, "web", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.a.len(), 3);
        // A stopped replica is gone.
        netd.detach("web-3").await.unwrap();
        let ans = client
            .run(move || dns_query(gw, "web", RecordType::A))
            .await
            .unwrap();
        assert_eq!(ans.a.len(), 2);

        // The same over TCP.
        let tcp = client
            .run(move || {
                let mut s =
                    TcpStream::connect_timeout(&SocketAddr::from((gw, 53)), Duration::from_secs(1))
                        .unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut m = Message::query();
                m.add_query(Query::query(
                    Name::from_ascii("web.").unwrap(),
                    RecordType::A,
                ));
                let bytes = m.to_vec().unwrap();
                s.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
                s.write_all(&bytes).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).unwrap();
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf).unwrap();
                Message::from_vec(&buf).unwrap()
            })
            .await;
        assert_eq!(tcp.answers.len(), 2);

        drop(servers);
        for c in ["client", "web-1", "web-2"] {
            netd.detach(c).await.unwrap();
        }
        netd.remove_network("svc").await.unwrap();
        netd.shutdown().await;
    });
}

fn port(host_port: Option<u16>, container_port: u16, proto: Proto) -> PortSpec {
    PortSpec {
        host_ip: Ipv4Addr::UNSPECIFIED,
        host_port,
        container_port,
        proto,
    }
}

#[test]
fn published_ports_reach_the_container_from_loopback_and_the_bridge() {
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let net = netd.create_network(network("pub")).await.unwrap();
        let (c1, c2) = (TestNetns::new("c"), TestNetns::new("c"));
        // A port to ask for explicitly, below the ephemeral range (this test host is private, so
        // nothing else uses it).
        let fixed = 18081;
        let a = netd
            .attach(
                "web",
                &c1.path,
                &[endpoint("pub", "web")],
                &[
                    port(None, 80, Proto::Tcp),
                    port(Some(fixed), 81, Proto::Tcp),
                    port(None, 53, Proto::Udp),
                    PortSpec {
                        host_ip: Ipv4Addr::LOCALHOST,
                        ..port(None, 82, Proto::Tcp)
                    },
                ],
            )
            .await
            .unwrap();
        let ip = a.endpoints[0].ipv4;
        assert_eq!(a.ports.len(), 4);
        assert_eq!(a.ports[1].host_port, fixed);
        assert!(a
            .ports
            .iter()
            .all(|p| p.host_port != 0 && p.container_ip == ip));
        assert_eq!(netd.ports("web").await, a.ports);
        let _s80 = TcpServer::start(&c1.path, "0.0.0.0:80".parse().unwrap(), "p80");
        let _s81 = TcpServer::start(&c1.path, "0.0.0.0:81".parse().unwrap(), "p81");
        let _s82 = TcpServer::start(&c1.path, "0.0.0.0:82".parse().unwrap(), "p82");
        let _u53 = UdpServer::start(&c1.path, "0.0.0.0:53".parse().unwrap(), "u53");
        let (p80, p81, u53, p82) = (
            a.ports[0].host_port,
            a.ports[1].host_port,
            a.ports[2].host_port,
            a.ports[3].host_port,
        );

        let fetch = |addr: SocketAddr| tokio::task::spawn_blocking(move || tcp_fetch(addr));
        // From the host over 127.0.0.1 (masqueraded to the gateway) and the bridge address.
        let got = fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, p80)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, format!("p80@{}", net.gateway));
        let got = fetch(SocketAddr::from((net.gateway, p81)))
            .await
            .unwrap()
            .unwrap();
        assert!(got.starts_with("p81@"), "{got}");
        let got = fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, p82)))
            .await
            .unwrap()
            .unwrap();
        assert!(got.starts_with("p82@"), "{got}");
        // Bound to 127.0.0.1 only: not on the bridge address.
        assert!(fetch(SocketAddr::from((net.gateway, p82)))
            .await
            .unwrap()
            .is_err());
        let udp = SocketAddr::from((Ipv4Addr::LOCALHOST, u53));
        let got = tokio::task::spawn_blocking(move || udp_fetch(udp))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "u53");
        // From another host, through the test host's outside-facing address.
        let outside = Outside::new();
        let from_out = SocketAddr::from((Ipv4Addr::new(198, 18, 0, 1), p80));
        let got = outside.ns.run(move || tcp_fetch(from_out)).await.unwrap();
        // The client's own address is preserved.
        assert_eq!(got, "p80@198.18.0.2");
        // From another container on the network, through the host (hairpin).
        netd.attach("cli", &c2.path, &[endpoint("pub", "cli")], &[])
            .await
            .unwrap();
        let hairpin = SocketAddr::from((net.gateway, p80));
        let got = c2.run(move || tcp_fetch(hairpin)).await.unwrap();
        assert!(got.starts_with("p80@"), "{got}");

        // A taken host port fails before anything is created.
        let links_before = link_names();
        let c3 = TestNetns::new("c");
        let err = netd
            .attach(
                "dup",
                &c3.path,
                &[endpoint("pub", "dup")],
                &[port(Some(p80), 80, Proto::Tcp)],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, NetdError::Port(_)), "{}", chain(&err));
        assert!(
            chain(&err).contains(&format!("0.0.0.0:{p80}/tcp is already in use")),
            "{}",
            chain(&err)
        );
        assert_eq!(link_names(), links_before);
        assert!(netd.attachment("dup").await.is_none());
        // So is a port another program holds.
        let other = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let held = other.local_addr().unwrap().port();
        assert!(netd
            .attach(
                "dup",
                &c3.path,
                &[endpoint("pub", "dup")],
                &[port(Some(held), 80, Proto::Tcp)]
            )
            .await
            .is_err());

        // Detaching frees the ports and removes the rules.
        netd.detach("web").await.unwrap();
        assert!(netd.ports("web").await.is_empty());
        assert!(fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, p80)))
            .await
            .unwrap()
            .is_err());
        // The host port is free again (checked on the fixed one: an ephemeral port may be
        // reused by any client socket at once).
        std::net::TcpListener::bind(("0.0.0.0", fixed)).unwrap();
        let rules = run_ok("nft", &["list", "table", "ip", netd.firewall_table()]);
        assert!(!rules.contains("dnat to"), "{rules}");
        netd.detach("cli").await.unwrap();
        netd.remove_network("pub").await.unwrap();
        netd.shutdown().await;
    });
}
