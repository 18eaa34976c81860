//! Interpolation from the environment, `.env` and `--env-file`.

use super::{errors_of, load_files, load_opts, warnings};

const FILE: &str = "services:\n  web:\n    image: \"nginx:${TAG:-latest}\"\n    environment:\n      A: $A\n      B: \"${B}\"\n      LIT: \"$$HOME\"\n      ALT: \"${A:+set}\"\n";

#[test]
fn values_come_from_the_environment_then_dot_env() {
    let p = load_files(
        &[
            ("compose.yaml", FILE),
            (".env", "A=from-dotenv\nB=b-dotenv\nTAG=1.25\n"),
        ],
        &[("A", "from-env")],
    )
    .unwrap();
    let s = &p.services["web"];
    assert_eq!(s.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(s.environment["A"].as_deref(), Some("from-env"));
    assert_eq!(s.environment["B"].as_deref(), Some("b-dotenv"));
    assert_eq!(s.environment["LIT"].as_deref(), Some("$HOME"));
    assert_eq!(s.environment["ALT"].as_deref(), Some("set"));
    assert!(p.warnings.is_empty());
}

#[test]
fn unset_variables_warn_once_with_their_position() {
    let p = load_files(&[("compose.yaml", FILE)], &[]).unwrap();
    let s = &p.services["web"];
    assert_eq!(s.image.as_deref(), Some("nginx:latest"));
    assert_eq!(s.environment["A"].as_deref(), Some(""));
    assert_eq!(
        warnings(&p),
        [
            "compose.yaml:5:7: services.web.environment.A: variable \"A\" is not set, using an empty string",
            "compose.yaml:6:7: services.web.environment.B: variable \"B\" is not set, using an empty string",
        ]
    );
}

#[test]
fn env_file_flag_replaces_dot_env() {
    let p = load_opts(
        &[
            ("compose.yaml", FILE),
            (".env", "A=dotenv\n"),
            ("prod.env", "A=prod\nB=p\n"),
        ],
        &[],
        |o| o.env_files = vec!["prod.env".into()],
    )
    .unwrap();
    assert_eq!(p.services["web"].environment["A"].as_deref(), Some("prod"));
}

#[test]
fn required_variables_print_their_message() {
    let e = errors_of(load_files(
        &[("compose.yaml", "services:\n  db:\n    image: postgres\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}\n")],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:5:7: services.db.environment.POSTGRES_PASSWORD: required variable DB_PASSWORD is missing a value: set DB_PASSWORD in .env"]
    );
}

#[test]
fn keys_are_never_interpolated_and_types_follow_values() {
    let p = load_files(
        &[("compose.yaml", "services:\n  web:\n    image: x\n    deploy:\n      replicas: ${N}\n    read_only: ${RO}\n    environment:\n      $KEY: v\n")],
        &[("N", "3"), ("RO", "true"), ("KEY", "k")],
    )
    .unwrap();
    let s = &p.services["web"];
    assert_eq!(s.deploy.replicas, 3);
    assert!(s.read_only);
    assert!(s.environment.contains_key("$KEY"));
}

#[test]
fn invalid_templates_are_errors() {
    let e = errors_of(load_files(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: \"x:${TAG\"\n",
        )],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:3:5: services.web.image: invalid interpolation in \"x:${TAG\": `${` is never closed with `}`"]
    );
}

#[test]
fn no_interpolate_keeps_the_text() {
    let p = load_opts(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: \"nginx:${TAG}\"\n    command: echo $$HOME\n",
        )],
        &[("TAG", "1")],
        |o| o.no_interpolate = true,
    )
    .unwrap();
    let s = &p.services["web"];
    assert_eq!(s.image.as_deref(), Some("nginx:${TAG}"));
    assert_eq!(
        s.command.as_deref(),
        Some(&["echo".to_string(), "$$HOME".to_string()][..])
    );
}

#[test]
fn dot_env_values_interpolate_and_strip_comments() {
    let p = load_files(
        &[
            ("compose.yaml", "services:\n  web:\n    image: x\n    environment:\n      - URL=${URL}\n      - EMPTY=${EMPTY}\n      - BASE=${BASE}\n"),
            (".env", "URL=your-domain.dyndns.com # free examples\nEMPTY=\nROOT=/srv\nBASE=\"${ROOT}/app\"\n"),
        ],
        &[],
    )
    .unwrap();
    let env = &p.services["web"].environment;
    assert_eq!(env["URL"].as_deref(), Some("your-domain.dyndns.com"));
    assert_eq!(env["EMPTY"].as_deref(), Some(""));
    assert_eq!(env["BASE"].as_deref(), Some("/srv/app"));
}
