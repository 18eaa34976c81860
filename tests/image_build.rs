//! End to end: `berth image build` and compose builds through the engine, with RUN steps in
//! berth's own containers: multi-stage builds with `COPY --from`, whiteouts of deleted files,
//! `.dockerignore`, the layer cache (a rebuild with no change is fully cached; a changed file
//! rebuilds from its COPY on), errors naming the Dockerfile line, and `up` building a service.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::time::Instant;

use support::{unique, Root};

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=bb
FROM ${BASE} AS builder
WORKDIR /work
COPY src/ ./src/
RUN cat src/a.txt src/b.txt > joined.txt

from bb
ENV GREETING="hello world"
# files made in one layer and deleted in the next must be absent in the image
RUN echo x > /tmp/x && mkdir -p /opt/d && echo y > /opt/d/f && \
    echo keep > /opt/keep
RUN rm /tmp/x && rm -rf /opt/d && mkdir /opt/d && echo new > /opt/d/g
COPY --from=builder /work/joined.txt /app/
COPY . /ctx/
LABEL org.test=yes
EXPOSE 8080
CMD ["sh", "-c", "cat /app/joined.txt; echo $GREETING"]
"#;

fn context(dir: &Path) {
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(dir.join("src/a.txt"), "A\n").unwrap();
    fs::write(dir.join("src/b.txt"), "B\n").unwrap();
    fs::write(dir.join("secret.txt"), "do not ship\n").unwrap();
    fs::write(dir.join("debug.log"), "noise\n").unwrap();
    fs::write(dir.join(".dockerignore"), "secret.txt\n*.log\n").unwrap();
}

fn build(r: &Root, tag: &str, dir: &Path, extra: &[&str]) -> support::Run {
    let mut args = vec!["image", "build", "-t", tag];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    r.run(&args)
}

fn image_id(r: &Root, tag: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["image", "inspect", tag])).unwrap();
    v[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn multi_stage_build_runs_and_rebuilds_from_the_cache() {
    let r = Root::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    context(ctx.path());
    let tag = format!("{}:1", unique("built"));

    let out = build(&r, &tag, ctx.path(), &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("[1/13] FROM ${BASE} AS builder"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("[13/13] CMD"), "{}", out.stdout);
    assert!(!out.stdout.contains("CACHED"), "{}", out.stdout);

    // The image runs; files deleted by a later RUN are gone (whiteouts and an opaque dir);
    // .dockerignore kept secret.txt and the log out of the context.
    let run = r.ok(&["container", "run", "--rm", &tag]);
    assert_eq!(run, "A\nB\nhello world\n");
    let listing = r.ok(&[
        "container",
        "run",
        "--rm",
        &tag,
        "sh",
        "-c",
        "test -e /tmp/x && echo x-present; ls /opt/d; cat /opt/keep; ls -a /ctx",
    ]);
    assert_eq!(
        listing, "g\nkeep\n.\n..\n.dockerignore\nDockerfile\nsrc\n",
        "{listing}"
    );
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["image", "inspect", &tag])).unwrap();
    assert_eq!(v[0]["config"]["Labels"]["org.test"], "yes");
    assert!(v[0]["config"]["ExposedPorts"]["8080/tcp"].is_object());
    let id = v[0]["id"].as_str().unwrap().to_string();

    // No change: every step from the cache, the same image.
    let t = Instant::now();
    let again = build(&r, &tag, ctx.path(), &[]);
    let took = t.elapsed();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("(11 steps, 11 cached)"),
        "{}",
        again.stdout
    );
    assert_eq!(
        again.stdout.matches("CACHED").count(),
        6,
        "{}",
        again.stdout
    );
    assert_eq!(image_id(&r, &tag), id);
    eprintln!("cached rebuild of 13 instructions: {took:?}");

    // One copied file changes: its COPY and what follows rebuild, the RUNs before stay cached.
    fs::write(ctx.path().join("src/b.txt"), "B2\n").unwrap();
    let changed = build(&r, &tag, ctx.path(), &[]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    let s = &changed.stdout;
    assert!(s.contains("[3/13] COPY src/ ./src/\n"), "{s}");
    assert!(s.contains("[4/13] RUN cat"), "{s}");
    assert!(s.contains("CACHED RUN echo x > /tmp/x"), "{s}");
    assert!(s.contains("CACHED RUN rm /tmp/x"), "{s}");
    assert!(s.contains("] COPY --from=builder"), "{s}");
    assert_ne!(image_id(&r, &tag), id);
    assert_eq!(
        r.ok(&["container", "run", "--rm", &tag]),
        "A\nB2\nhello world\n"
    );

    // --target builds only the stage asked for; --no-cache runs every step again.
    let stage_tag = format!("{}:b", unique("stage"));
    let out = build(
        &r,
        &stage_tag,
        ctx.path(),
        &["--target", "builder", "--no-cache"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("[4/4] RUN cat"), "{}", out.stdout);
    assert!(!out.stdout.contains("CACHED"), "{}", out.stdout);
    let joined = r.ok(&[
        "container",
        "run",
        "--rm",
        &stage_tag,
        "cat",
        "/work/joined.txt",
    ]);
    assert_eq!(joined, "A\nB2\n");
}

#[test]
fn errors_name_the_dockerfile_line() {
    let r = Root::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let df = |text: &str| fs::write(ctx.path().join("Dockerfile"), text).unwrap();

    df("FROM bb\nRUN true\nCOPY nothing*.txt /x/\n");
    let out = build(&r, "bad:1", ctx.path(), &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Dockerfile:3: COPY: no source files were specified"),
        "{}",
        out.stderr
    );

    df("FROM bb\n\nRUN echo about to fail && exit 3\n");
    let out = build(&r, "bad:1", ctx.path(), &[]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("about to fail"), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "Dockerfile:3: RUN: process \"/bin/sh -c echo about to fail && exit 3\" did not complete successfully: exit code: 3"
        ),
        "{}",
        out.stderr
    );

    df("FROM bb\nFROBNICATE x\n");
    let out = build(&r, "bad:1", ctx.path(), &[]);
    assert!(
        out.stderr
            .contains("Dockerfile:2: unknown instruction: FROBNICATE"),
        "{}",
        out.stderr
    );

    // Nothing of a failed build is left running or mounted, and no image was tagged.
    assert!(r.run(&["image", "inspect", "bad:1"]).code != 0);
    assert!(r.cgroup_dirs().is_empty(), "{:?}", r.cgroup_dirs());
    assert!(support::mounts_under(&r.dir).is_empty());
}

#[test]
fn up_builds_a_service_image_and_build_rebuilds_it() {
    let r = Root::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM bb\nARG MSG=default\nRUN echo $MSG > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; sleep 300\"]\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    build:\n      context: ./app\n      args:\n        MSG: from-compose\n",
    )
    .unwrap();
    let name = unique("bld");
    let file = dir.path().join("compose.yaml").display().to_string();
    let p = |rest: &[&str]| {
        let mut a = vec!["-f", file.as_str(), "-p", name.as_str()];
        a.extend_from_slice(rest);
        r.run(&a)
    };
    let out = p(&["up", "-d"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Building app"), "{}", out.stdout);
    let image = format!("{name}-app");
    let msg = r.ok(&["container", "run", "--rm", &image, "cat", "/msg"]);
    assert_eq!(msg, "from-compose\n");

    // The image exists now: up does not build again; build does, from the cache.
    let out = p(&["up", "-d"]);
    assert!(!out.stdout.contains("Building app"), "{}", out.stdout);
    let out = p(&["build"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("CACHED RUN echo $MSG"),
        "{}",
        out.stdout
    );
    // A changed Dockerfile: up --build rebuilds and recreates the service's container.
    let before = r.ok(&["container", "ls", "-q"]);
    fs::write(
        app.join("Dockerfile"),
        "FROM bb\nARG MSG=default\nRUN echo v2-$MSG > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; sleep 300\"]\n",
    )
    .unwrap();
    let out = p(&["up", "-d", "--build"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Building app"), "{}", out.stdout);
    let after = r.ok(&["container", "ls", "-q"]);
    assert_ne!(before, after, "the container was recreated");
    let id = after.lines().next().unwrap().to_string();
    let msg = r.ok(&["container", "exec", &id, "cat", "/msg"]);
    assert_eq!(msg, "v2-from-compose\n");
    let _ = p(&["down", "-t", "1"]);
}
