//! End-to-end tests of the everyday project commands: `create`, `start`, `stop`, `restart`,
//! `pause`, `unpause`, `kill`, `rm`, `top`, `port`, `images`, `run`, `wait`, `pull`, `push`,
//! `ls`, `version`, `completion`, with their exit codes; the real binary, as root. Each test
//! reuses one small project across its assertions to keep the suite fast.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{unique, Registry, Root};

/// A compose project in a temp dir, taken down on drop.
struct Project<'a> {
    root: &'a Root,
    _dir: tempfile::TempDir,
    file: String,
    name: String,
}

impl<'a> Project<'a> {
    fn new(root: &'a Root, compose: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        Project {
            root,
            file: dir.path().join("compose.yaml").display().to_string(),
            _dir: dir,
            name: unique("cmd"),
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

    /// `container-name -> status` of every container of the project (one-offs too).
    fn states(&self) -> Vec<(String, String)> {
        let out = self.root.ok(&["container", "ls", "-a", "--format", "json"]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let mut v: Vec<(String, String)> = list
            .iter()
            .filter(|c| c["config"]["labels"]["com.docker.compose.project"] == self.name.as_str())
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["state"]["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn status(&self, service: &str, n: u32) -> String {
        let name = format!("{}-{service}-{n}", self.name);
        self.states()
            .into_iter()
            .find(|(c, _)| *c == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| "missing".into())
    }

    fn c(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.name)
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.root.run(&["-p", &self.name, "down", "-v", "-t", "1"]);
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The position of the first line containing `needle`.
fn line_of(out: &str, needle: &str) -> usize {
    out.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
}

const LIFECYCLE: &str = r#"
services:
  db:
    image: bb:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "true"]
      interval: 100ms
  api:
    image: bb:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    restart: always
    deploy: { replicas: 2 }
    ports: ["80"]
    volumes: ["/data"]
    depends_on:
      db: { condition: service_healthy }
"#;

#[test]
fn create_start_stop_restart_pause_kill_rm_in_dependency_order() {
    let r = Root::with_busybox();
    let p = Project::new(&r, LIFECYCLE);
    let out = p.ok(&["create"]);
    assert!(
        out.contains(&format!("Container {}  Created", p.c("api", 2))),
        "{out}"
    );
    assert!(
        p.states().iter().all(|(_, s)| s == "created"),
        "{:?}",
        p.states()
    );
    let out = p.ok(&["start"]);
    assert!(
        line_of(&out, "Service db  service_healthy")
            < line_of(&out, &format!("{}  Started", p.c("api", 1))),
        "api waits for db to be healthy:\n{out}"
    );
    assert!(p.states().iter().all(|(_, s)| s == "running"));

    // A user stop is respected by `restart: always`; `up` starts the containers again.
    p.ok(&["stop", "-t", "1", "api"]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        (p.status("api", 1), p.status("api", 2), p.status("db", 1)),
        ("exited".into(), "exited".into(), "running".into())
    );
    p.ok(&["up", "-d"]);
    assert_eq!(p.status("api", 2), "running");

    let out = p.ok(&["restart", "-t", "1"]);
    assert!(
        line_of(&out, &format!("{}  Started", p.c("db", 1)))
            < line_of(&out, &format!("{}  Restarting", p.c("api", 1))),
        "db restarts before api:\n{out}"
    );

    p.ok(&["pause", "db"]);
    assert_eq!(p.status("db", 1), "paused");
    p.ok(&["unpause"]);
    assert_eq!(p.status("db", 1), "running");

    // One replica: top, port, kill.
    let out = p.ok(&["top", "--index", "2", "api"]);
    assert!(out.starts_with(&p.c("api", 2)), "{out}");
    assert!(out.contains("PID") && out.contains("sleep 3600"), "{out}");
    let a1 = p.ok(&["port", "api", "80"]);
    let a2 = p.ok(&["port", "--index", "2", "api", "80"]);
    assert!(a1.starts_with("0.0.0.0:") && a1 != a2, "{a1} {a2}");
    let bad = p.run(&["port", "api", "81"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let out = p.ok(&["images"]);
    assert!(
        out.contains(&p.c("db", 1)) && out.contains("latest"),
        "{out}"
    );
    p.ok(&["kill", "db"]);
    wait_until("db to die of SIGKILL", 5, || p.status("db", 1) == "exited");

    // rm: running containers stay; without -f and no terminal the answer is no.
    let out = p.ok(&["rm", "api"]);
    assert!(out.contains("No stopped containers"), "{out}");
    p.ok(&["stop", "-t", "1", "api"]);
    p.ok(&["rm", "api"]);
    assert_eq!(p.status("api", 1), "exited", "declined: nothing removed");
    let vols = |r: &Root| r.ok(&["volume", "ls"]);
    assert!(vols(&r).contains(&format!("{}-anon-data", p.c("api", 1))));
    let out = p.ok(&["rm", "-f", "-v", "api"]);
    assert!(
        out.contains(&format!("{}  Removed", p.c("api", 2))),
        "{out}"
    );
    assert_eq!(p.status("api", 1), "missing");
    assert!(!vols(&r).contains("-anon-data"), "{}", vols(&r));
    p.ok(&["start", "db"]);
    p.ok(&["rm", "-s", "-f", "db"]);
    assert!(p.states().is_empty(), "{:?}", p.states());

    // Unknown services: exit 1, naming the service and those that exist.
    for cmd in [
        vec!["stop", "nosuch"],
        vec!["port", "nosuch", "80"],
        vec!["run", "nosuch"],
    ] {
        let res = p.run(&cmd);
        assert_eq!(res.code, 1, "{cmd:?}: {}{}", res.stdout, res.stderr);
        let msg = format!("{}{}", res.stdout, res.stderr);
        assert!(
            msg.contains("no such service: nosuch") && msg.contains("api, db"),
            "{cmd:?}: {msg}"
        );
    }
    let res = p.run(&["start"]);
    assert_eq!(res.code, 1, "nothing to start: {}", res.stderr);
}

const RUN: &str = r#"
services:
  db:
    image: bb:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  app:
    image: bb:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      FOO: from-file
    volumes: ["/data"]
    depends_on: [db]
  job:
    image: bb:latest
    command: ["sh", "-c", "sleep 0.3; exit 5"]
"#;

#[test]
fn run_one_offs_wait_ls_version_completion() {
    let r = Root::with_busybox();
    let p = Project::new(&r, RUN);
    // Dependencies first, the service's environment plus -e, the exit code passed through.
    let res = p.run(&[
        "run",
        "--rm",
        "-e",
        "BAR=x",
        "app",
        "sh",
        "-c",
        "echo $FOO $BAR; exit 3",
    ]);
    assert_eq!(res.code, 3, "{}", res.stderr);
    assert_eq!(res.stdout, "from-file x\n");
    assert_eq!(p.status("db", 1), "running");
    assert_eq!(
        p.status("app", 1),
        "missing",
        "run does not start the service"
    );
    wait_until("the --rm one-off and its volume to go", 10, || {
        p.states().len() == 1 && !r.ok(&["volume", "ls"]).contains("-run-")
    });

    // Docker's codes when the command cannot run.
    assert_eq!(
        p.run(&["run", "--rm", "--no-deps", "app", "nosuchcmd"])
            .code,
        127
    );
    assert_eq!(
        p.run(&["run", "--rm", "--no-deps", "app", "/etc/passwd"])
            .code,
        126
    );

    // --no-deps leaves a stopped dependency alone; --entrypoint replaces the image's.
    p.ok(&["stop", "-t", "1", "db"]);
    let out = p.ok(&[
        "run",
        "--rm",
        "--no-deps",
        "--entrypoint",
        "echo",
        "app",
        "hi",
    ]);
    assert_eq!(out, "hi\n");
    assert_eq!(p.status("db", 1), "exited");

    // Detached with a name: a labelled one-off, removed by rm -s -f.
    let out = p.ok(&["run", "-d", "--name", &format!("{}-x", p.name), "app"]);
    assert_eq!(out.trim(), format!("{}-x", p.name));
    let one = r.inspect(&format!("{}-x", p.name));
    assert_eq!(one["config"]["labels"]["com.docker.compose.oneoff"], "True");
    assert_eq!(one["state"]["status"], "running");
    assert_eq!(p.status("db", 1), "running", "dependencies started again");
    let out = p.ok(&["rm", "-s", "-f", "app"]);
    assert!(out.contains(&format!("{}-x  Removed", p.name)), "{out}");

    // wait: the exit code of the service's container.
    p.ok(&["up", "-d", "job"]);
    let res = p.run(&["wait", "job"]);
    assert_eq!(res.code, 5, "{}{}", res.stdout, res.stderr);
    assert!(
        res.stdout.contains("exited with status code 5"),
        "{}",
        res.stdout
    );

    // ls: running projects, -a also the others.
    let listed = |v: Vec<serde_json::Value>| v.iter().any(|x| x["name"] == p.name.as_str());
    let ls_json = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut a = vec!["ls", "--format", "json"];
        a.extend_from_slice(extra);
        serde_json::from_str(&r.ok(&a)).unwrap()
    };
    assert!(listed(ls_json(&[])), "db runs");
    p.ok(&["stop", "-t", "1"]);
    assert!(!listed(ls_json(&[])) && listed(ls_json(&["-a"])));

    // down takes one-offs with it (they hold the project's network).
    p.ok(&["run", "-d", "--no-deps", "app"]);
    p.ok(&["down", "-t", "1"]);
    assert!(p.states().is_empty(), "{:?}", p.states());
    assert!(!listed(ls_json(&["-a"])), "down: gone");

    assert_eq!(
        r.ok(&["version", "--short"]).trim(),
        r.ok(&["--version"]).trim().trim_start_matches("berth ")
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = r.ok(&["completion", shell]);
        assert!(out.contains("berth") && out.contains("restart"), "{shell}");
    }
    assert_ne!(r.run(&["completion", "tcsh"]).code, 0);
}

#[test]
fn pull_and_push_the_services_images() {
    let reg = Registry::start();
    let r = Root::with_busybox();
    let image = format!("{}/berth/cmds:v1", reg.host());
    let p = Project::new(
        &r,
        &format!(
            "services:\n  web:\n    image: {image}\n    command: [sleep, \"3600\"]\n  other:\n    image: 127.0.0.1:1/berth/none:v1\n"
        ),
    );
    r.ok(&["image", "tag", "bb:latest", &image]);
    let out = p.ok(&["push", "web"]);
    assert!(out.contains("Pushed"), "{out}");
    r.ok(&["image", "rm", &image]);
    let out = p.ok(&["pull", "web"]);
    assert!(
        out.contains("Pull complete") || out.contains("Already exists"),
        "{out}"
    );
    r.ok(&["image", "inspect", &image]);
    // up --pull missing: only what the store lacks; the service runs from the pulled image.
    r.ok(&["image", "rm", &image]);
    let out = p.ok(&["up", "-d", "--pull", "missing", "web"]);
    assert!(out.contains(&format!("Image {image}  Pulling")), "{out}");
    let out = p.ok(&["up", "-d", "--pull", "missing", "web"]);
    assert!(
        !out.contains("Pulling"),
        "present images are not pulled again: {out}"
    );
    let res = p.run(&["up", "-d", "--pull", "always", "other"]);
    assert_ne!(res.code, 0, "an unreachable registry fails up");
    p.ok(&["down"]);
    // Nothing listens on port 1: the failure is exit 1, unless ignored.
    assert_eq!(p.run(&["pull", "-q"]).code, 1);
    assert_eq!(p.run(&["pull", "-q", "--ignore-pull-failures"]).code, 0);
    let res = p.run(&["pull", "nosuch"]);
    assert_eq!(res.code, 1);
    assert!(
        res.stderr.contains("no such service: nosuch"),
        "{}",
        res.stderr
    );
}
