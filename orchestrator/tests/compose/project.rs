//! Project name, discovery and warnings.

use super::{errors_of, load_files, load_opts, warnings};

#[test]
fn the_name_comes_from_flags_environment_file_or_directory() {
    let file = (
        "compose.yaml",
        "name: fromfile\nservices:\n  web:\n    image: x\n",
    );
    let p = load_opts(&[file], &[("COMPOSE_PROJECT_NAME", "fromenv")], |o| {
        o.project_name = Some("fromflag".into())
    })
    .unwrap();
    assert_eq!(p.name, "fromflag");
    let p = load_files(&[file], &[("COMPOSE_PROJECT_NAME", "fromenv")]).unwrap();
    assert_eq!(p.name, "fromenv");
    let p = load_files(&[file], &[]).unwrap();
    assert_eq!(p.name, "fromfile");
    let p = load_files(
        &[("compose.yaml", "services:\n  web:\n    image: x\n")],
        &[],
    )
    .unwrap();
    assert_eq!(p.name, "proj");
    assert_eq!(p.working_dir.display().to_string(), "/proj");
}

#[test]
fn invalid_names_are_errors() {
    let err = load_opts(&[("compose.yaml", "services: {}\n")], &[], |o| {
        o.project_name = Some("My App".into())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid project name \"My App\""),
        "{err}"
    );
    let e = errors_of(load_files(
        &[("compose.yaml", "name: My_App\nservices: {}\n")],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:1:1: name: invalid project name \"My_App\": use only lowercase letters, digits, dashes and underscores, starting with a letter or digit"]
    );
}

#[test]
fn the_obsolete_version_key_warns() {
    let p = load_files(
        &[(
            "compose.yaml",
            "version: '3.8'\nservices:\n  web:\n    image: x\n",
        )],
        &[],
    )
    .unwrap();
    assert_eq!(
        warnings(&p),
        ["compose.yaml:1:1: version: `version` is obsolete and ignored; remove it to avoid confusion"]
    );
}

#[test]
fn no_compose_file_is_a_clear_error() {
    let err = load_files(&[], &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no compose file found in /proj"),
        "{err}"
    );
}

#[test]
fn anchors_aliases_and_merge_keys_work() {
    let p = load_files(
        &[(
            "compose.yaml",
            "x-common: &common\n  restart: always\n  environment:\n    TZ: UTC\nservices:\n  a:\n    <<: *common\n    image: a\n  b:\n    <<: *common\n    image: b\n    restart: \"no\"\n",
        )],
        &[],
    )
    .unwrap();
    assert_eq!(p.services["a"].restart.to_string(), "always");
    assert_eq!(p.services["b"].restart.to_string(), "no");
    assert_eq!(p.services["b"].environment["TZ"].as_deref(), Some("UTC"));
    assert!(p.extensions.contains_key("x-common"));
}
