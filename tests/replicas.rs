//! The replica-testing walk-through of `examples/replicas.sh` as an end-to-end test: the example
//! stack itself (`examples/replicas/compose.yaml`), scaled, a replica killed by hand and brought
//! back, the load client's per-second reports checked at every step.

#![allow(clippy::unwrap_used)] // test harness helpers outside #[test] fns

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::Root;

/// One line of the load client: requests that succeeded, failed, and the replicas that answered.
#[derive(Debug)]
struct Report {
    ok: u32,
    failed: u32,
    replicas: BTreeSet<String>,
}

fn parse(line: &str) -> Option<Report> {
    let (_, body) = line.split_once(" | ")?;
    let mut r = Report {
        ok: 0,
        failed: 0,
        replicas: BTreeSet::new(),
    };
    let mut seen_ok = false;
    for field in body.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "ok" => {
                r.ok = v.parse().ok()?;
                seen_ok = true;
            }
            "failed" => r.failed = v.parse().ok()?,
            "replicas" => {}
            host => {
                r.replicas.insert(host.to_string());
            }
        }
    }
    seen_ok.then_some(r)
}

struct Stack<'a> {
    root: &'a Root,
    file: String,
    name: String,
}

impl Stack<'_> {
    fn args<'b>(&'b self, rest: &[&'b str]) -> Vec<&'b str> {
        let mut a = vec!["-f", self.file.as_str(), "-p", self.name.as_str()];
        a.extend_from_slice(rest);
        a
    }

    fn ok(&self, rest: &[&str]) -> String {
        self.root.ok(&self.args(rest))
    }

    fn reports(&self) -> Vec<Report> {
        self.ok(&["logs", "--no-color", "load"])
            .lines()
            .filter_map(parse)
            .collect()
    }

    fn hosts(&self, n: u32) -> BTreeSet<String> {
        (1..=n).map(|i| format!("{}-api-{i}", self.name)).collect()
    }

    /// Waits for a report after the first `skip` ones in which exactly `n` replicas answered and
    /// nothing failed; returns how many reports there were then.
    fn await_spread(&self, skip: usize, n: u32, what: &str) -> usize {
        let want = self.hosts(n);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reports = self.reports();
            if reports
                .iter()
                .skip(skip)
                .any(|r| r.failed == 0 && r.ok > 0 && r.replicas == want)
            {
                return reports.len();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no report with every one of {want:?} answering and no failures; \
                 the last ones: {:?}",
                reports.iter().rev().take(5).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        let _ = self.root.run(&["-p", &self.name, "down", "-v", "-t", "1"]);
    }
}

#[test]
fn replicas_spread_recover_from_a_kill_and_follow_scale() {
    let r = Root::with_busybox();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/replicas/compose.yaml"
    );
    let s = Stack {
        root: &r,
        file: file.to_string(),
        name: support::unique("rep"),
    };
    s.ok(&["up", "-d", "--wait"]);
    let seen = s.await_spread(0, 3, "3 replicas");

    s.ok(&["scale", "api=6"]);
    s.await_spread(seen, 6, "scaled to 6");

    let victim = format!("{}-api-2", s.name);
    let pid = r.inspect(&victim)["state"]["pid"].as_i64().unwrap();
    r.ok(&["container", "kill", &victim]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = r.inspect(&victim)["state"].clone();
        if st["status"] == "running" && st["pid"].as_i64() != Some(pid) {
            assert!(st["restart_count"].as_u64().unwrap() >= 1, "{st}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{victim} did not come back: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Reports from now on were counted after the replica came back.
    let seen = s.reports().len();
    let seen = s.await_spread(seen, 6, "after the kill");

    s.ok(&["scale", "api=2"]);
    s.await_spread(seen, 2, "scaled to 2");

    s.ok(&["down"]);
    assert_eq!(
        s.ok(&["ps", "-a", "-q"]).trim(),
        "",
        "down removes everything"
    );
}
