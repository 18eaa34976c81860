//! End to end: `berth image save|load|pull|push|login|logout` through the engine, and `run` of a
//! missing image (no implicit pull). Registry tests start Debian's `docker-registry` on a free
//! loopback port and kill it when done.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::net::TcpListener;
use std::process::Stdio;

use support::{unique, Registry, Root};

#[test]
fn save_rm_load_run() {
    let root = Root::with_busybox();
    for format in ["oci", "docker"] {
        let file = root.dir.join(format!("bb-{format}.tar"));
        let f = file.to_str().unwrap();
        root.ok(&["image", "save", "-o", f, "--format", format, "bb:latest"]);
        assert!(fs::metadata(&file).unwrap().len() > 0);
        root.ok(&["image", "rm", "bb:latest"]);
        let r = root.run(&["container", "run", "--rm", "bb:latest", "true"]);
        assert_ne!(r.code, 0);
        let out = root.ok(&["image", "load", "-i", f]);
        assert!(out.contains("Loaded image: bb:latest"), "{out}");
        let name = unique("load");
        let out = root.ok(&[
            "container",
            "run",
            "--rm",
            "--name",
            &name,
            "bb:latest",
            "echo",
            "loaded",
        ]);
        assert_eq!(out.trim(), "loaded");
    }
}

#[test]
fn save_and_load_errors_name_what_failed() {
    let root = Root::with_busybox();
    let out = root.dir.join("x.tar");
    let r = root.run(&["image", "save", "-o", out.to_str().unwrap(), "nosuch:1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    assert!(!out.exists(), "a failed save leaves no file");
    let r = root.run(&[
        "image",
        "save",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "zip",
        "bb:latest",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("zip"), "{}", r.stderr);
    let garbage = root.dir.join("garbage.tar");
    fs::write(&garbage, b"not an archive at all").unwrap();
    let r = root.run(&["image", "load", "-i", garbage.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.trim().is_empty());
    let r = root.run(&["image", "load", "-i", "/nonexistent/berth.tar"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("/nonexistent/berth.tar"), "{}", r.stderr);
}

#[test]
fn run_of_a_missing_image_does_not_pull() {
    let root = Root::with_busybox();
    let r = root.run(&["container", "run", "--rm", "nosuchimage:9", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("image nosuchimage:9 not found"),
        "{}",
        r.stderr
    );
    let r = root.run(&["container", "create", "nosuchimage:9"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

#[test]
fn push_rm_pull_run() {
    let reg = Registry::start();
    let root = Root::with_busybox();
    let reference = format!("{}/berth/bb:v1", reg.host());
    root.ok(&["image", "tag", "bb:latest", &reference]);
    let out = root.ok(&["image", "push", &reference]);
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("digest: sha256:"), "{out}");
    root.ok(&["image", "rm", &reference]);
    root.ok(&["image", "rm", "bb:latest"]);
    let out = root.ok(&["image", "pull", &reference]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    let name = unique("pulled");
    let out = root.ok(&[
        "container",
        "run",
        "--rm",
        "--name",
        &name,
        &reference,
        "echo",
        "pulled",
    ]);
    assert_eq!(out.trim(), "pulled");
    // Pulled again: the layer is already there.
    let out = root.ok(&["image", "pull", &reference]);
    assert!(out.contains("Already exists"), "{out}");
}

#[test]
fn registry_errors_name_what_failed() {
    let reg = Registry::start();
    let root = Root::with_busybox();
    let missing = format!("{}/berth/none:v1", reg.host());
    let r = root.run(&["image", "pull", &missing]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&reg.host()), "{}", r.stderr);
    let r = root.run(&["image", "push", "bb:nosuchtag"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bb:nosuchtag"), "{}", r.stderr);
    // Nothing listens on this port any more.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = root.run(&["image", "pull", &format!("127.0.0.1:{dead}/a/b:c")]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        r.stderr
    );
}

#[test]
fn login_and_logout() {
    let reg = Registry::start();
    let root = Root::new();
    let mut c = root.cmd(&[
        "image",
        "login",
        "--username",
        "berth",
        "--password-stdin",
        &reg.host(),
    ]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let out = root.ok(&["image", "logout", &reg.host()]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let out = root.ok(&["image", "logout", &reg.host()]);
    assert!(out.contains("Not logged in"), "{out}");
    let r = root.run(&["image", "login", "--username", "x", &reg.host()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--password-stdin"), "{}", r.stderr);
}
