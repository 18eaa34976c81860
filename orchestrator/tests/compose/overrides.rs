//! Several files: `-f`, `compose.override.yaml`, merge rules, `!reset` and `!override`.

use super::{errors_of, load_files, load_opts};

const BASE: &str = "services:\n  web:\n    image: web:1\n    command: [serve]\n    ports: ['80:80']\n    environment: [A=1, B=2]\n    volumes: ['./a:/data']\n    depends_on: [db]\n  db:\n    image: postgres\n";

#[test]
fn the_override_file_is_discovered_and_merged() {
    let p = load_files(
        &[
            ("compose.yaml", BASE),
            (
                "compose.override.yaml",
                "services:\n  web:\n    image: web:2\n    command: [serve, --debug]\n    ports: ['80:80', '9229:9229']\n    environment: {B: '3'}\n    volumes: [{type: bind, source: ./b, target: /data}]\n",
            ),
        ],
        &[],
    )
    .unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("web:2"));
    assert_eq!(web.command.as_deref().unwrap(), ["serve", "--debug"]);
    let ports: Vec<u16> = web.ports.iter().map(|p| p.target).collect();
    assert_eq!(ports, [80, 9229]);
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("3"));
    assert_eq!(web.volumes.len(), 1);
    assert_eq!(web.volumes[0].source.as_deref(), Some("/proj/b"));
    assert_eq!(p.files.len(), 2);
}

#[test]
fn explicit_files_merge_in_order_and_paths_are_relative_to_the_project() {
    let p = load_opts(
        &[
            ("compose.yaml", BASE),
            (
                "deploy/prod.yaml",
                "services:\n  web:\n    volumes: ['./prod:/data']\n    restart: always\n",
            ),
        ],
        &[],
        |o| o.files = vec!["compose.yaml".into(), "deploy/prod.yaml".into()],
    )
    .unwrap();
    let web = &p.services["web"];
    assert_eq!(web.volumes[0].source.as_deref(), Some("/proj/prod"));
    assert_eq!(web.restart.to_string(), "always");
}

#[test]
fn reset_and_override_tags() {
    let p = load_files(
        &[
            ("compose.yaml", BASE),
            (
                "compose.override.yaml",
                "services:\n  web:\n    ports: !reset []\n    environment: !override\n      C: '3'\n    depends_on: !reset null\n",
            ),
        ],
        &[],
    )
    .unwrap();
    let web = &p.services["web"];
    assert!(web.ports.is_empty());
    assert_eq!(web.environment.keys().collect::<Vec<_>>(), ["C"]);
    assert!(web.depends_on.is_empty());
}

#[test]
fn errors_in_an_override_point_into_that_file() {
    let e = errors_of(load_files(
        &[
            ("compose.yaml", BASE),
            (
                "compose.override.yaml",
                "services:\n  web:\n    deploy:\n      replicas: many\n",
            ),
        ],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.override.yaml:4:7: services.web.deploy.replicas: expected an integer, found \"many\""]
    );
}

#[test]
fn a_missing_explicit_file_is_a_read_error() {
    let err = load_opts(&[], &[], |o| o.files = vec!["nope.yaml".into()]).unwrap_err();
    assert_eq!(err.to_string(), "read compose file /proj/nope.yaml");
}
