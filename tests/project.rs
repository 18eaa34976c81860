//! End-to-end tests of compose projects: `up`, `down`, `scale`, `ps`, the reconciler's restart
//! policies and health checks, volumes, secrets; the real binary, as root.

#![allow(clippy::unwrap_used)] // test harness helpers outside #[test] fns

mod support;

use std::time::{Duration, Instant};

use support::Root;

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Project<'a> {
    root: &'a Root,
    dir: tempfile::TempDir,
    file: String,
    name: String,
}

impl<'a> Project<'a> {
    fn new(root: &'a Root, name: &str, compose: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        Project {
            root,
            file: dir.path().join("compose.yaml").display().to_string(),
            dir,
            name: name.to_string(),
        }
    }

    fn write(&self, compose: &str) {
        std::fs::write(self.dir.path().join("compose.yaml"), compose).unwrap();
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

    fn ps(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["ps", "-a", "--format", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    fn ids(&self, service: &str) -> Vec<String> {
        self.ps()
            .iter()
            .filter(|c| c["config"]["labels"]["com.docker.compose.service"] == service)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.root.run(&["-p", &self.name, "down", "-v", "-t", "1"]);
    }
}

const STACK: &str = r#"
services:
  seed:
    image: bb:latest
    command: ["sh", "-c", "echo seeding; echo seeded > /data/seed.txt"]
    volumes: ["shared:/data"]
  db:
    image: bb:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: ["127.0.0.1::8080"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /var/www/index.html"]
      interval: 200ms
      retries: 3
  api:
    image: bb:latest
    command: ["sleep", "3600"]
    environment:
      MODE: one
    volumes: ["shared:/data"]
    deploy:
      replicas: 3
    depends_on:
      db: { condition: service_healthy }
      seed: { condition: service_completed_successfully }
  web:
    image: bb:latest
    command: ["sleep", "3600"]
    depends_on: [api]
volumes:
  shared: {}
"#;

#[test]
fn up_is_idempotent_recreates_only_what_changed_scales_and_down_removes_everything() {
    let r = Root::with_busybox();
    let p = Project::new(&r, "stack1", STACK);
    let out = p.ok(&["up", "-d"]);
    assert!(out.contains("Service db  service_healthy"), "{out}");
    let ps = p.ps();
    let running = |svc: &str| {
        ps.iter()
            .filter(|c| {
                c["config"]["labels"]["com.docker.compose.service"] == svc
                    && c["state"]["status"] == "running"
            })
            .count()
    };
    assert_eq!((running("db"), running("api"), running("web")), (1, 3, 1));
    let seed: Vec<_> = ps.iter().filter(|c| c["name"] == "stack1-seed-1").collect();
    assert_eq!(seed[0]["state"]["exit_code"], 0);
    assert_eq!(
        p.ok(&["ps", "--services"]).lines().count(),
        3,
        "running services only"
    );
    // The table: status with uptime and health, the published port with its ephemeral host port.
    let table = p.ok(&["ps"]);
    let db_row = table
        .lines()
        .find(|l| l.starts_with("stack1-db-1"))
        .unwrap();
    assert!(
        db_row.contains("Up ") && db_row.contains("(healthy)"),
        "{table}"
    );
    assert!(
        db_row.contains("127.0.0.1:") && db_row.contains("->8080/tcp"),
        "{table}"
    );
    let logs = p.ok(&["logs", "-t", "--no-color", "seed"]);
    let line = logs.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("seed-1") && line.contains(" | 20") && line.ends_with("Z seeding"),
        "{logs}"
    );
    let db = r.inspect("stack1-db-1");
    assert_eq!(db["state"]["health"]["status"], "healthy");
    let out = r.ok(&["container", "exec", "stack1-api-2", "cat", "/data/seed.txt"]);
    assert_eq!(out, "seeded\n", "the one-shot seeded the shared volume");

    let before = (p.ids("db"), p.ids("api"), p.ids("web"));
    let out = p.ok(&["up", "-d"]);
    assert!(!out.contains("Created"), "second up does nothing: {out}");
    assert_eq!((p.ids("db"), p.ids("api"), p.ids("web")), before);

    p.write(&STACK.replace("MODE: one", "MODE: two"));
    p.ok(&["up", "-d"]);
    assert_eq!(p.ids("db"), before.0, "db untouched");
    assert_eq!(p.ids("web"), before.2, "web untouched");
    let api = p.ids("api");
    assert_eq!(api.len(), 3);
    assert!(
        api.iter().all(|id| !before.1.contains(id)),
        "every api replica recreated"
    );
    let out = r.ok(&[
        "container",
        "exec",
        "stack1-api-1",
        "sh",
        "-c",
        "echo $MODE",
    ]);
    assert_eq!(out, "two\n");

    p.ok(&["scale", "api=1"]);
    let names: Vec<String> = p
        .ps()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"stack1-api-1".to_string()) && !names.contains(&"stack1-api-3".to_string()),
        "{names:?}"
    );
    p.ok(&["scale", "api=2"]);
    assert!(
        p.ps().iter().any(|c| c["name"] == "stack1-api-2"),
        "numbers are reused"
    );
    // The service name resolves to every replica, and each replica has its own hostname.
    let out = r.ok(&["container", "exec", "stack1-web-1", "nslookup", "api"]);
    let addrs = out
        .lines()
        .filter(|l| l.starts_with("Address") && !l.contains(":53"))
        .count();
    assert_eq!(addrs, 2, "two replicas behind the name api: {out}");
    assert_eq!(
        p.ok(&["exec", "--index", "2", "api", "hostname"]),
        "stack1-api-2\n"
    );
    let out = p.run(&["exec", "nosuch", "true"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no such service: \"nosuch\"") && out.stderr.contains("api"),
        "{}",
        out.stderr
    );

    let out = p.ok(&["down"]);
    assert!(out.contains("Removed"), "{out}");
    assert!(p.ps().is_empty());
    assert!(
        r.ok(&["volume", "ls", "-q"]).contains("stack1_shared"),
        "down keeps volumes"
    );
    p.ok(&["down", "-v"]);
    assert!(!r.ok(&["volume", "ls", "-q"]).contains("stack1_shared"));
    assert!(r.cgroup_dirs().is_empty());
}

#[test]
fn restart_policies_back_off_and_user_stops_are_respected() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "crashy",
        r#"
services:
  crash:
    image: bb:latest
    command: ["sh", "-c", "exit 3"]
    restart: always
  keeper:
    image: bb:latest
    command: ["sleep", "3600"]
    restart: unless-stopped
"#,
    );
    p.ok(&["up", "-d"]);
    wait_until("several restarts", 20, || {
        r.inspect("crashy-crash-1")["state"]["restart_count"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    });
    std::thread::sleep(Duration::from_secs(2));
    let n = r.inspect("crashy-crash-1")["state"]["restart_count"]
        .as_u64()
        .unwrap();
    assert!(
        n <= 8,
        "a crash loop backs off instead of spinning: {n} restarts"
    );
    let pid = r.inspect("crashy-keeper-1")["state"]["pid"]
        .as_i64()
        .unwrap();
    r.ok(&["container", "kill", "crashy-keeper-1"]);
    wait_until("the killed replica restarted", 10, || {
        let st = r.inspect("crashy-keeper-1");
        st["state"]["status"] == "running" && st["state"]["pid"].as_i64() != Some(pid)
    });
    r.ok(&["container", "stop", "crashy-keeper-1"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        r.inspect("crashy-keeper-1")["state"]["status"],
        "exited",
        "a stopped container stays stopped"
    );
    p.ok(&["down"]);
}

#[test]
fn failing_dependencies_and_wait_report_the_reason() {
    let r = Root::with_busybox();
    let p = Project::new(
        &r,
        "failing",
        r#"
services:
  migrate:
    image: bb:latest
    command: ["sh", "-c", "exit 3"]
  app:
    image: bb:latest
    command: ["sleep", "3600"]
    depends_on:
      migrate: { condition: service_completed_successfully }
"#,
    );
    let out = p.run(&["up", "-d"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("dependency migrate did not complete successfully: exit code 3"),
        "{}",
        out.stderr
    );
    p.ok(&["down"]);
    p.write(
        r#"
services:
  sick:
    image: bb:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 2
"#,
    );
    let out = p.run(&["up", "--wait", "--wait-timeout", "20"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("sick is unhealthy"), "{}", out.stderr);
    p.ok(&["down"]);
}

#[test]
fn projects_side_by_side_orphans_secrets_and_configs() {
    let r = Root::with_busybox();
    let a = Project::new(
        &r,
        "proja",
        r#"
services:
  one:
    image: bb:latest
    command: ["sleep", "3600"]
    secrets: [token]
    configs: [motd]
  two:
    image: bb:latest
    command: ["sleep", "3600"]
    dns: [192.0.2.53]
    dns_search: corp.example
    dns_opt: ["ndots:2"]
    extra_hosts: ["db.local:192.0.2.7", "gw=host-gateway"]
secrets:
  token:
    file: ./token.txt
configs:
  motd:
    content: "welcome aboard"
"#,
    );
    std::fs::write(a.dir.path().join("token.txt"), "s3cret").unwrap();
    let b = Project::new(
        &r,
        "projb",
        "services:\n  one:\n    image: bb:latest\n    command: [\"sleep\", \"3600\"]\n",
    );
    a.ok(&["up", "-d"]);
    b.ok(&["up", "-d"]);
    assert_eq!(a.ps().len(), 2);
    assert_eq!(b.ps().len(), 1);
    let out = r.ok(&[
        "container",
        "exec",
        "proja-one-1",
        "sh",
        "-c",
        "cat /run/secrets/token; echo; cat /motd",
    ]);
    assert_eq!(out, "s3cret\nwelcome aboard");
    let out = r.run(&[
        "container",
        "exec",
        "proja-one-1",
        "sh",
        "-c",
        "echo x > /run/secrets/token",
    ]);
    assert_ne!(out.code, 0, "secrets are read-only");
    // dns_search / dns_opt in resolv.conf with the network's DNS server kept as nameserver
    // (`dns` servers become its upstreams), extra_hosts with host-gateway resolved.
    let files = r.ok(&[
        "container",
        "exec",
        "proja-two-1",
        "cat",
        "/etc/resolv.conf",
        "/etc/hosts",
    ]);
    assert!(files.contains("search corp.example\n"), "{files}");
    assert!(files.contains("options ndots:2\n"), "{files}");
    assert_eq!(files.matches("nameserver").count(), 1, "{files}");
    assert!(!files.contains("192.0.2.53"), "{files}");
    assert!(files.contains("192.0.2.7\tdb.local"), "{files}");
    let gw_line = files.lines().find(|l| l.ends_with("\tgw")).unwrap();
    assert!(
        gw_line.starts_with("10.") || gw_line.starts_with("172."),
        "{files}"
    );
    // Without a network the servers are written as they are.
    let files = r.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db.local:192.0.2.7",
        "bb",
        "cat",
        "/etc/resolv.conf",
        "/etc/hosts",
    ]);
    assert!(files.contains("nameserver 192.0.2.53\n"), "{files}");
    assert!(files.contains("192.0.2.7\tdb.local"), "{files}");
    let out = r.run(&[
        "container",
        "run",
        "--rm",
        "--add-host",
        "oops",
        "bb",
        "true",
    ]);
    assert_eq!(out.code, 125, "docker run's code for a refused request");
    assert!(out.stderr.contains("expected HOST:IP"), "{}", out.stderr);
    a.write("services:\n  one:\n    image: bb:latest\n    command: [\"sleep\", \"3600\"]\n");
    a.ok(&["up", "-d"]);
    assert_eq!(a.ps().len(), 2, "orphans stay without --remove-orphans");
    a.ok(&["up", "-d", "--remove-orphans"]);
    let names: Vec<String> = a
        .ps()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["proja-one-1"]);
    a.ok(&["down"]);
    assert_eq!(b.ps().len(), 1, "the other project is untouched");
    let ls = r.ok(&["ls"]);
    assert!(ls.contains("projb") && !ls.contains("proja"), "{ls}");
    // --rmi all takes the services' images too; `local` would keep an image named by `image:`.
    assert!(r.ok(&["image", "ls"]).contains("bb"));
    b.ok(&["down", "--rmi", "local"]);
    assert!(r.ok(&["image", "ls"]).contains("bb"));
    let out = b.ok(&["down", "--rmi", "all"]);
    assert!(out.contains("Image bb:latest  Removed"), "{out}");
    assert!(!r.ok(&["image", "ls"]).contains("bb"));
}
