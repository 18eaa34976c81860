//! Service `volumes` (bind, volume, tmpfs), top-level `volumes` and `tmpfs`.

use orchestrator::compose::MountType;

use super::{error, load, service};

#[test]
fn short_syntax_classifies_and_resolves_sources() {
    let s = service(
        "services:\n  web:\n    image: x\n    volumes:\n      - ./src:/app:ro\n      - data:/var/lib/data\n      - /node_modules\n      - ~/cache:/cache\n      - ../up:/up:rw\n      - /abs:/abs\nvolumes:\n  data:\n",
        "web",
    );
    let got: Vec<(MountType, Option<&str>, &str, bool)> = s
        .volumes
        .iter()
        .map(|m| (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only))
        .collect();
    assert_eq!(
        got,
        [
            (MountType::Bind, Some("/proj/src"), "/app", true),
            (MountType::Volume, Some("data"), "/var/lib/data", false),
            (MountType::Volume, None, "/node_modules", false),
            (MountType::Bind, Some("/home/u/cache"), "/cache", false),
            (MountType::Bind, Some("/up"), "/up", false),
            (MountType::Bind, Some("/abs"), "/abs", false),
        ]
    );
    assert!(s.volumes[0].bind.as_ref().unwrap().create_host_path);
}

#[test]
fn long_syntax_with_options() {
    let s = service(
        "services:\n  web:\n    image: x\n    volumes:\n      - type: bind\n        source: ./conf\n        target: /etc/conf\n        read_only: true\n        bind: {create_host_path: false}\n      - type: volume\n        source: data\n        target: /data\n        volume: {nocopy: true}\n      - type: tmpfs\n        target: /run\n        tmpfs: {size: 64m, mode: 1777}\nvolumes:\n  data: {}\n",
        "web",
    );
    assert_eq!(s.volumes[0].source.as_deref(), Some("/proj/conf"));
    assert!(s.volumes[0].read_only);
    assert!(!s.volumes[0].bind.as_ref().unwrap().create_host_path);
    assert!(s.volumes[1].volume.as_ref().unwrap().nocopy);
    let t = s.volumes[2].tmpfs.as_ref().unwrap();
    assert_eq!((t.size, t.mode), (Some(64 << 20), Some(0o1777)));
}

#[test]
fn named_volumes_get_project_names() {
    let p = load("name: app\nservices:\n  web:\n    image: x\n    volumes: [a:/a, b:/b, c:/c]\nvolumes:\n  a:\n  b: {name: custom}\n  c: {external: true}\n");
    assert_eq!(p.volumes["a"].name, "app_a");
    assert_eq!(p.volumes["b"].name, "custom");
    assert_eq!(p.volumes["c"].name, "c");
    assert!(p.volumes["c"].external);
}

#[test]
fn undeclared_volumes_are_errors_with_a_suggestion() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes: [dbdata:/data]\nvolumes:\n  db-data:\n"),
        "compose.yaml:4:15: services.web.volumes[0]: undeclared volume `dbdata` (did you mean `db-data`?); declare it under the top-level `volumes`"
    );
}

#[test]
fn bad_mounts_explain_themselves() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes: ['./a:relative']\n"),
        "compose.yaml:4:15: services.web.volumes[0]: invalid volume spec \"./a:relative\": the container path \"relative\" must be absolute"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes: ['./a:/a:z']\n"),
        "compose.yaml:4:15: services.web.volumes[0]: volume option `z` in \"./a:/a:z\" is not supported yet; use ro or rw"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes:\n      - type: bind\n        target: /a\n"),
        "compose.yaml:5:9: services.web.volumes[0]: a bind mount needs `source`: the host path"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes:\n      - type: npipe\n        target: /a\n"),
        "compose.yaml:5:9: services.web.volumes[0].type: mount type `npipe` is not supported yet"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    volumes:\n      - type: bind\n        source: .\n        target: /a\n        bind: {propagation: rshared}\n"),
        "compose.yaml:8:16: services.web.volumes[0].bind.propagation: `propagation` is not supported yet (berth does not implement it); remove it"
    );
}

#[test]
fn volume_drivers_other_than_local_are_not_supported() {
    assert_eq!(
        error("services:\n  web:\n    image: x\nvolumes:\n  v:\n    driver: nfs\n"),
        "compose.yaml:6:5: volumes.v.driver: volume driver `nfs` is not supported yet; use local"
    );
}

#[test]
fn tmpfs_paths_must_be_absolute() {
    let s = service("services:\n  web:\n    image: x\n    tmpfs: /run\n", "web");
    assert_eq!(s.tmpfs, ["/run"]);
    assert_eq!(
        error("services:\n  web:\n    image: x\n    tmpfs: [run]\n"),
        "compose.yaml:4:13: services.web.tmpfs[0]: the tmpfs path \"run\" must be absolute"
    );
}
