//! netd's performance figures (run as root: `cargo bench -p berth-netd`): attach + detach of
//! one container to one network, 100 containers attached to one network, DNS answer latency.
//! Runs inside a private network namespace like the root tests and prints its figures (and
//! `podman network`'s, when podman is installed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("netd bench needs root; skipped");
        return;
    }
    in_test_host(|| async {
        let root = TestRoot::new();
        let netd = root.open(None).await;
        let net = netd.create_network(network("bench")).await.unwrap();

        // 100 containers on one network.
        // Namespaces are made up front: deleting them makes the kernel busy for a while.
        let namespaces: Vec<TestNetns> = (0..100).map(|_| TestNetns::new("b")).collect();
        let cycle_ns: Vec<TestNetns> = (0..100).map(|_| TestNetns::new("b")).collect();
        let t = Instant::now();
        let mut each = Vec::new();
        for (i, ns) in namespaces.iter().enumerate() {
            let id = format!("many-{i}");
            let one = Instant::now();
            netd.attach(&id, &ns.path, &[endpoint("bench", &id)], &[])
                .await
                .unwrap();
            each.push(one.elapsed());
        }
        let attach_all = t.elapsed();
        println!(
            "attach 100 containers to one network: {} (median of the first 10 {}, of the last 10 {})",
            ms(attach_all),
            ms(median(each[..10].to_vec())),
            ms(median(each[90..].to_vec()))
        );

        // DNS answers, from inside a container, for a name with 100 candidates in the network.
        let gw = net.gateway;
        let rtts = namespaces[0]
            .run(move || {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s.connect((gw, 53)).unwrap();
                let mut m = Message::query();
                m.add_query(Query::query(
                    Name::from_ascii("many-57.").unwrap(),
                    RecordType::A,
                ));
                let q = m.to_vec().unwrap();
                let mut buf = [0u8; 512];
                (0..2000)
                    .map(|_| {
                        let t = Instant::now();
                        s.send(&q).unwrap();
                        s.recv(&mut buf).unwrap();
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        println!(
            "dns answer (A, local name): median {} (2000 queries)",
            ms(median(rtts))
        );

        let t = Instant::now();
        for i in 0..100 {
            netd.detach(&format!("many-{i}")).await.unwrap();
        }
        println!("detach 100 containers: {}", ms(t.elapsed()));

        // Attach + detach of one container to one network (each cycle a new container, as a
        // restarted container has a new network namespace).
        let (mut cycles, mut attaches, mut detaches) = (Vec::new(), Vec::new(), Vec::new());
        for c in &cycle_ns {
            let t = Instant::now();
            netd.attach("one", &c.path, &[endpoint("bench", "one")], &[])
                .await
                .unwrap();
            let attached = t.elapsed();
            netd.detach("one").await.unwrap();
            cycles.push(t.elapsed());
            attaches.push(attached);
            detaches.push(t.elapsed() - attached);
        }
        println!(
            "attach+detach, 1 container, 1 network: median {} (attach {}, detach {}; 100 runs)",
            ms(median(cycles)),
            ms(median(attaches)),
            ms(median(detaches))
        );

        drop(namespaces);
        drop(cycle_ns);
        netd.remove_network("bench").await.unwrap();

        // Network create + remove (bridge, address, rules, DNS server).
        let mut nets = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            netd.create_network(network("churn")).await.unwrap();
            netd.remove_network("churn").await.unwrap();
            nets.push(t.elapsed());
        }
        println!(
            "network create+remove: median {} (10 runs)",
            ms(median(nets))
        );
        netd.shutdown().await;
    });
    podman_figures();
}

/// `podman network create` + `rm` through the CLI, when podman is installed. Not the same work:
/// podman's bridge only appears when a container starts; attach figures would need an image,
/// which this machine cannot pull.
fn podman_figures() {
    let present = std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        println!("podman not installed: no comparison");
        return;
    }
    let name = unique("pbench");
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let created = run("podman", &["network", "create", &name]);
        let removed = run("podman", &["network", "rm", "-f", &name]);
        if !created.status.success() || !removed.status.success() {
            println!("podman network create failed: no comparison");
            return;
        }
        runs.push(t.elapsed());
    }
    println!(
        "podman network create+rm (CLI, bridge made lazily): median {} (5 runs)",
        ms(median(runs))
    );
}
