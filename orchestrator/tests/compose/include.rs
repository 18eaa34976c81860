//! `include`.

use super::{errors_of, load_files};

#[test]
fn included_projects_bring_their_resources_with_their_own_paths_and_env() {
    let p = load_files(
        &[
            (
                "compose.yaml",
                "include:\n  - infra/db.yaml\n  - path: tools/compose.yaml\n    env_file: tools/tools.env\nservices:\n  web:\n    image: web\n    depends_on: [db]\n",
            ),
            (
                "infra/db.yaml",
                "services:\n  db:\n    image: postgres:${PG_VERSION}\n    volumes: ['./init:/docker-entrypoint-initdb.d', 'pg:/var/lib/postgresql/data']\nvolumes:\n  pg:\n",
            ),
            ("infra/.env", "PG_VERSION=16\n"),
            ("tools/compose.yaml", "services:\n  adminer:\n    image: adminer:${ADMINER}\n    profiles: [tools]\n"),
            ("tools/tools.env", "ADMINER=4\n"),
        ],
        &[],
    )
    .unwrap();
    let db = &p.services["db"];
    assert_eq!(db.image.as_deref(), Some("postgres:16"));
    assert_eq!(db.volumes[0].source.as_deref(), Some("/proj/infra/init"));
    assert!(p.volumes.contains_key("pg"));
    assert_eq!(
        p.disabled_services["adminer"].image.as_deref(),
        Some("adminer:4")
    );
}

#[test]
fn conflicting_definitions_and_cycles_are_errors() {
    let e = errors_of(load_files(
        &[
            (
                "compose.yaml",
                "include: [other.yaml]\nservices:\n  db:\n    image: mysql\n",
            ),
            ("other.yaml", "services:\n  db:\n    image: postgres\n"),
        ],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:3:3: services.db: defined both here and in included other.yaml; rename one of them"]
    );
    let e = errors_of(load_files(
        &[
            ("compose.yaml", "include: [a.yaml]\nservices: {}\n"),
            ("a.yaml", "include: [b.yaml]\nservices: {}\n"),
            ("b.yaml", "include: [a.yaml]\nservices: {}\n"),
        ],
        &[],
    ));
    assert_eq!(
        e,
        ["b.yaml:1:11: include[0]: include cycle: a.yaml -> b.yaml -> a.yaml"]
    );
}

#[test]
fn a_missing_included_file_is_an_error() {
    let e = errors_of(load_files(
        &[("compose.yaml", "include: [missing.yaml]\nservices: {}\n")],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:1:11: include[0]: cannot read missing.yaml: No such file or directory"]
    );
}
