//! End-to-end tests of the commands that watch or reach into a running project: `events`,
//! attached `up`, `stats`, `cp`; the real binary, as root.

#![allow(clippy::unwrap_used)] // test harness helpers outside #[test] fns

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::Root;

struct Project<'a> {
    root: &'a Root,
    _dir: tempfile::TempDir,
    file: String,
    name: String,
}

impl<'a> Project<'a> {
    fn new(root: &'a Root, tag: &str, compose: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        Project {
            root,
            file: dir.path().join("compose.yaml").display().to_string(),
            _dir: dir,
            name: support::unique(tag),
        }
    }

    fn args<'b>(&'b self, rest: &[&'b str]) -> Vec<&'b str> {
        let mut a = vec!["-f", self.file.as_str(), "-p", self.name.as_str()];
        a.extend_from_slice(rest);
        a
    }

    fn ok(&self, rest: &[&str]) -> String {
        self.root.ok(&self.args(rest))
    }

    fn run(&self, rest: &[&str]) -> support::Run {
        self.root.run(&self.args(rest))
    }

    /// Starts berth in the background; its stdout lines are collected.
    fn spawn(&self, rest: &[&str]) -> Background {
        let mut cmd = self.root.cmd(&self.args(rest));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let errs = Arc::new(Mutex::new(Vec::new()));
        for (pipe, sink) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                lines.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), errs.clone()),
        ] {
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines() {
                    let Ok(l) = l else { break };
                    sink.lock().unwrap().push(l);
                }
            });
        }
        Background { child, lines, errs }
    }

    fn container(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.name)
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.root.run(&["-p", &self.name, "down", "-v", "-t", "1"]);
    }
}

/// A berth process running in the background; killed on drop.
struct Background {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    errs: Arc<Mutex<Vec<String>>>,
}

impl Background {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn errs(&self) -> Vec<String> {
        self.errs.lock().unwrap().clone()
    }

    fn wait_line(&self, what: &str, secs: u64, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.lines().iter().any(|l| f(l)) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; output so far:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.errs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process to end; its exit code.
    fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "berth did not exit; output so far:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.errs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn events(b: &Background) -> Vec<serde_json::Value> {
    b.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn has(evs: &[serde_json::Value], name: &str, action: &str, attr: Option<(&str, &str)>) -> bool {
    evs.iter().any(|e| {
        e["name"] == name
            && e["action"] == action
            && attr.is_none_or(|(k, v)| e["attributes"][k] == v)
    })
}

#[test]
fn events_stream_lifecycle_health_restarts_and_oom_filtered_by_service() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "ev",
        r#"
services:
  crash:
    image: bb:latest
    command: ["sh", "-c", "sleep 0.2; exit 3"]
    restart: "on-failure:1"
  hc:
    image: bb:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 100ms
  hog:
    image: bb:latest
    command: ["sh", "-c", "a=$$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"]
    mem_limit: 32m
  quiet:
    image: bb:latest
    command: ["sleep", "3600"]
"#,
    );
    let all = p.spawn(&["events", "--json", "crash", "hc", "hog"]);
    let plain = p.spawn(&["events", "hc"]);
    // The engine runs already: subscribing is one request away.
    std::thread::sleep(Duration::from_millis(800));
    p.ok(&["up", "-d"]);
    let (crash, hc, hog) = (
        p.container("crash", 1),
        p.container("hc", 1),
        p.container("hog", 1),
    );
    all.wait_line("the second death of crash", 20, |_| {
        events(&all)
            .iter()
            .filter(|e| e["name"] == crash.as_str() && e["action"] == "die")
            .count()
            >= 2
    });
    all.wait_line("hog's oom death", 20, |_| {
        has(&events(&all), &hog, "die", Some(("oomKilled", "true")))
    });
    all.wait_line("hc healthy", 20, |_| {
        has(
            &events(&all),
            &hc,
            "health_status",
            Some(("health_status", "healthy")),
        )
    });
    r.ok(&["container", "pause", &hc]);
    r.ok(&["container", "unpause", &hc]);
    r.ok(&["container", "kill", "-s", "TERM", &hc]);
    p.ok(&["down", "-t", "1"]);
    all.wait_line("hc destroyed", 20, |_| {
        has(&events(&all), &hc, "destroy", None)
    });

    let evs = events(&all);
    let actions = |name: &str| -> Vec<String> {
        evs.iter()
            .filter(|e| e["name"] == name)
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    let crash_actions = actions(&crash);
    assert_eq!(
        crash_actions[..5],
        ["create", "start", "die", "start", "restart"].map(String::from),
        "{crash_actions:?}"
    );
    assert!(has(&evs, &crash, "die", Some(("exitCode", "3"))));
    assert!(has(&evs, &crash, "restart", Some(("restartCount", "1"))));
    assert!(has(&evs, &hog, "oom", None));
    assert!(has(&evs, &hog, "die", Some(("exitCode", "137"))));
    for a in ["pause", "unpause", "kill", "die", "destroy"] {
        assert!(
            actions(&hc).contains(&a.to_string()),
            "{a}: {:?}",
            actions(&hc)
        );
    }
    assert!(has(&evs, &hc, "kill", Some(("signal", "15"))));
    assert!(
        evs.iter().all(|e| e["project"] == p.name.as_str()),
        "only the project's events"
    );
    assert!(
        !evs.iter().any(|e| e["service"] == "quiet"),
        "only the services asked for"
    );
    assert!(evs
        .iter()
        .all(|e| e["type"] == "container" && e["id"].is_string()));

    plain.wait_line("plain destroy line", 10, |l| {
        l.contains(" container destroy ")
    });
    let lines = plain.lines();
    assert!(
        lines.iter().all(|l| l.contains(&format!("name={hc}"))),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" container health_status ")
            && l.contains("health_status=healthy")),
        "{lines:?}"
    );
}

#[test]
fn attached_up_prefixes_output_and_ctrl_c_stops_the_project_gracefully() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "att",
        r#"
services:
  db:
    image: bb:latest
    command: ["sh", "-c", "echo db says hi; exec sleep 3600"]
  talk:
    image: bb:latest
    command: ["sh", "-c", "echo hello from talk; echo to stderr >&2; exec sleep 3600"]
    deploy:
      replicas: 2
    restart: always
    depends_on: [db]
  stubborn:
    image: bb:latest
    command: ["sh", "-c", "trap 'echo ignoring TERM' TERM; echo stubborn up; while :; do sleep 0.1; done"]
    restart: always
"#,
    );
    // Ctrl-C: a graceful stop in dependency order.
    let mut up = p.spawn(&["up", "--no-attach", "db", "--no-attach", "stubborn"]);
    up.wait_line("both replicas' output", 30, |l| l.starts_with("talk-2"));
    up.wait_line("stderr output", 30, |l| l.contains("| to stderr"));
    let lines = up.lines();
    assert!(
        lines.iter().any(|l| l == "talk-1     | hello from talk"),
        "prefix padded to the longest service name: {lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("db says hi")), "{lines:?}");
    assert!(
        lines.iter().all(|l| !l.contains('\x1b')),
        "no colour when piped"
    );
    up.signal(libc::SIGINT);
    // stubborn ignores SIGTERM: a second Ctrl-C kills it instead of waiting 10 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !up
        .errs()
        .iter()
        .any(|l| l.contains("Stopping") && l.contains("stubborn"))
    {
        assert!(Instant::now() < deadline, "{:?}", up.errs());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    up.signal(libc::SIGINT);
    assert_eq!(up.wait(8), 130);
    let errs = up.errs();
    let at = |needle: &str| {
        errs.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in {errs:?}"))
    };
    at("Gracefully stopping... (press Ctrl+C again to force)");
    at(&format!("Container {}  Killed", p.container("stubborn", 1)));
    assert!(
        at(&format!("Container {}  Stopped", p.container("talk", 2)))
            < at(&format!("Container {}  Stopping", p.container("db", 1))),
        "dependents stop first: {errs:?}"
    );
    std::thread::sleep(Duration::from_millis(600));
    let ps: Vec<serde_json::Value> =
        serde_json::from_str(&p.ok(&["ps", "-a", "--format", "json"])).unwrap();
    assert_eq!(ps.len(), 4);
    for c in &ps {
        assert_eq!(c["state"]["status"], "exited", "stays stopped: {c}");
    }
}

#[test]
fn attached_up_exit_code_from_and_abort_on_exit() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "exi",
        r#"
services:
  server:
    image: bb:latest
    command: ["sleep", "3600"]
  worker:
    image: bb:latest
    command: ["sh", "-c", "echo working; sleep 0.5; exit 7"]
    depends_on: [server]
"#,
    );
    let out = p.run(&["up", "--exit-code-from", "worker"]);
    assert_eq!(out.code, 7, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("worker-1 | working"), "{}", out.stdout);
    assert!(
        out.stdout.contains("worker-1 exited with code 7"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("Aborting on container exit..."),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("Container {}  Stopped", p.container("server", 1))),
        "{}",
        out.stderr
    );
    let out = p.run(&["up", "--exit-code-from", "nosuch"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no such service: \"nosuch\""),
        "{}",
        out.stderr
    );
    // Without abort: up returns once every attached container exited for good.
    let out = p.run(&["up", "--attach", "worker", "worker"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("worker-1 exited with code 7"),
        "{}",
        out.stdout
    );
}

#[test]
fn stats_no_stream_reports_cpu_memory_against_the_limit_pids_and_network() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "sta",
        r#"
services:
  web:
    image: bb:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
  busy:
    image: bb:latest
    command: ["sh", "-c", "while :; do :; done"]
    mem_limit: 64m
  client:
    image: bb:latest
    command: ["sh", "-c", "while :; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 web 80 >/dev/null; sleep 0.1; done"]
    depends_on: [web]
"#,
    );
    let out = p.ok(&["up", "-d"]);
    // Not a terminal: plain progress lines, each with a UTC timestamp.
    for l in out.lines() {
        let (time, rest) = l.split_once(' ').unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{l}"
        );
        assert!(!rest.contains('\x1b'), "{l}");
    }
    assert!(
        out.contains(&format!(" Container {}  Started", p.container("busy", 1))),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = p.ok(&["stats", "--no-stream", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let get = |svc: &str| {
        rows.iter()
            .find(|r| r["service"] == svc)
            .unwrap_or_else(|| panic!("{svc} missing: {out}"))
            .clone()
    };
    let busy = get("busy");
    assert_eq!(busy["name"], p.container("busy", 1).as_str());
    // A busy loop, even on a loaded shared machine.
    assert!(busy["cpu_percent"].as_f64().unwrap() > 5.0, "{busy}");
    assert_eq!(busy["memory_limit"], 64 << 20, "{busy}");
    assert!(busy["memory_usage"].as_u64().unwrap() > 0, "{busy}");
    assert!(busy["pids"].as_u64().unwrap() >= 1, "{busy}");
    let client = get("client");
    assert!(client["net_rx"].as_u64().unwrap() > 0, "{client}");
    assert!(client["net_tx"].as_u64().unwrap() > 0, "{client}");
    let web = get("web");
    assert!(web["cpu_percent"].as_f64().unwrap() < 20.0, "{web}");
    let host_mem = web["memory_limit"].as_u64().unwrap();
    assert!(
        host_mem > 64 << 20,
        "an unlimited container shows the host's memory"
    );

    let out = p.ok(&["stats", "--no-stream", "busy"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("MEM USAGE / LIMIT"));
    assert!(
        lines[1].starts_with(&p.container("busy", 1)) && lines[1].contains("/ 64.000MiB"),
        "{out}"
    );
    p.ok(&["down", "-t", "1"]);
}

#[test]
fn cp_copies_both_ways_and_never_leaves_the_container_root() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "cpy",
        r#"
services:
  app:
    image: bb:latest
    command: ["sleep", "3600"]
    volumes: ["data:/data"]
volumes:
  data: {}
"#,
    );
    p.ok(&["up", "-d"]);
    let app = p.container("app", 1);
    r.ok(&[
        "container",
        "exec",
        &app,
        "sh",
        "-c",
        "mkdir -p /srv/site/sub && echo hi > /srv/site/index.html && echo deep > /srv/site/sub/x \
         && ln -s /etc/hostname /srv/site/host-link && ln -s / /srv/escape \
         && ln -s ../../../../../.. /srv/up && ln -s / /tmp/rootlink",
    ]);
    let host = tempfile::tempdir().unwrap();
    let h = |rel: &str| host.path().join(rel);
    let hs = |rel: &str| h(rel).display().to_string();

    // Out of the container: a directory, a file, through links that point "outside".
    p.ok(&["cp", "app:/srv/site", &hs("site")]);
    assert_eq!(
        std::fs::read_to_string(h("site/index.html")).unwrap(),
        "hi\n"
    );
    assert_eq!(std::fs::read_to_string(h("site/sub/x")).unwrap(), "deep\n");
    assert_eq!(
        std::fs::read_link(h("site/host-link"))
            .unwrap()
            .display()
            .to_string(),
        "/etc/hostname",
        "links are copied as links"
    );
    for (src, out) in [
        ("app:/etc/hostname", "plain"),
        ("app:/srv/escape/etc/hostname", "abs"),
        ("app:/srv/up/etc/hostname", "dotdot"),
    ] {
        p.ok(&["cp", src, &hs(out)]);
        assert_eq!(
            std::fs::read_to_string(h(out)).unwrap(),
            format!("{app}\n"),
            "{src} is the container's file, not the host's"
        );
    }
    p.ok(&["cp", "app:/srv/site/.", &hs("flat")]);
    assert!(h("flat/index.html").exists() && h("flat/sub/x").exists());

    // Into the container: into a volume, and through a link to "/".
    std::fs::create_dir_all(h("up/inner")).unwrap();
    std::fs::write(h("up/inner/f.txt"), "from the host").unwrap();
    p.ok(&["cp", &hs("up"), "app:/data/"]);
    let out = r.ok(&["container", "exec", &app, "cat", "/data/up/inner/f.txt"]);
    assert_eq!(out, "from the host");
    let marker = format!("berth-cp-{}", p.name);
    std::fs::write(h("m"), "inside").unwrap();
    p.ok(&["cp", &hs("m"), &format!("app:/tmp/rootlink/etc/{marker}")]);
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "written outside the container"
    );
    let out = r.ok(&["container", "exec", &app, "cat", &format!("/etc/{marker}")]);
    assert_eq!(out, "inside");

    let out = p.run(&["cp", "app:/nope", &hs("nope")]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/nope"), "{}", out.stderr);
    let out = p.run(&["cp", &hs("m"), "app:/nodir/"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the destination directory /nodir/ does not exist"),
        "the engine's refusal, not a broken pipe: {}",
        out.stderr
    );
    let out = p.run(&["cp", "nosuch:/x", &hs("x")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no such service: \"nosuch\"") && out.stderr.contains("app"),
        "{}",
        out.stderr
    );
    p.ok(&["down", "-t", "1"]);
}

#[test]
fn up_on_a_terminal_draws_a_live_board() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "brd",
        r#"
services:
  db:
    image: bb:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD-SHELL", "sleep 0.3"]
      interval: 200ms
  api:
    image: bb:latest
    command: ["sleep", "3600"]
    depends_on:
      db: { condition: service_healthy }
"#,
    );
    // `script` gives berth a pseudo-terminal as its stdout.
    let cmd = std::iter::once(support::berth_bin().display().to_string())
        .chain(["--root".into(), r.dir.display().to_string()])
        .chain(p.args(&["up", "-d"]).iter().map(|s| s.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\x1b[2K"), "lines redrawn in place: {text:?}");
    assert!(
        text.contains("A\r\x1b[2K"),
        "cursor moved back up: {text:?}"
    );
    let db = p.container("db", 1);
    for state in ["Waiting", "Healthy"] {
        assert!(
            text.split('\r')
                .any(|row| row.contains(&format!("Container {db} ")) && row.contains(state)),
            "db's row shows {state}: {text:?}"
        );
    }
    assert!(text.contains("\x1b[32m✔\x1b[0m Container"), "{text:?}");
    assert!(
        text.contains(&format!("Container {}", p.container("api", 1))),
        "{text:?}"
    );
    p.ok(&["down", "-t", "1"]);
}
