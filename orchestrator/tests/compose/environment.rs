//! `environment`, `env_file`, `labels`, `sysctls`.

use super::{error, errors_of, load_files, service};

#[test]
fn list_and_map_syntax() {
    let s = service(
        "services:\n  web:\n    image: x\n    environment:\n      - A=1\n      - B=x=y\n      - HOME\n      - UNSET\n    labels: [com.example=1, flag]\n    sysctls: {net.core.somaxconn: 1024}\n",
        "web",
    );
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"].as_deref(), Some("x=y"));
    assert_eq!(
        s.environment["HOME"].as_deref(),
        Some("/home/u"),
        "taken from the environment"
    );
    assert_eq!(s.environment["UNSET"], None, "declared but unset");
    assert_eq!(s.labels["com.example"], "1");
    assert_eq!(s.labels["flag"], "");
    assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
}

#[test]
fn map_values_may_be_numbers_booleans_or_null() {
    let s = service(
        "services:\n  web:\n    image: x\n    environment:\n      PORT: 8000\n      DEBUG: true\n      RATIO: 0.5\n      EMPTY: ''\n      UNSET_VAR:\n",
        "web",
    );
    assert_eq!(s.environment["PORT"].as_deref(), Some("8000"));
    assert_eq!(s.environment["DEBUG"].as_deref(), Some("true"));
    assert_eq!(s.environment["RATIO"].as_deref(), Some("0.5"));
    assert_eq!(s.environment["EMPTY"].as_deref(), Some(""));
    assert_eq!(s.environment["UNSET_VAR"], None);
}

#[test]
fn env_files_are_read_and_environment_wins() {
    let p = load_files(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: x\n    env_file:\n      - common.env\n      - path: ./local.env\n        required: false\n      - ./override.env\n    environment:\n      B: from-environment\n",
            ),
            ("common.env", "A=1\nB=from-file\nC=${HOME}/x\n"),
            ("override.env", "A=2\n"),
        ],
        &[("HOME", "/home/u")],
    )
    .unwrap();
    let s = &p.services["web"];
    assert_eq!(s.environment["A"].as_deref(), Some("2"));
    assert_eq!(s.environment["B"].as_deref(), Some("from-environment"));
    assert_eq!(s.environment["C"].as_deref(), Some("/home/u/x"));
    let files: Vec<String> = s
        .env_file
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        files,
        ["/proj/common.env", "/proj/local.env", "/proj/override.env"]
    );
    assert!(!s.env_file[1].required);
}

#[test]
fn a_missing_required_env_file_is_an_error() {
    let e = errors_of(load_files(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n    env_file: missing.env\n",
        )],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:4:5: services.web.env_file[0]: cannot read env file /proj/missing.env: No such file or directory"]
    );
}

#[test]
fn a_malformed_env_file_names_its_line() {
    let e = errors_of(load_files(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: x\n    env_file: [bad.env]\n",
            ),
            ("bad.env", "A=1\nnot valid\n"),
        ],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:4:16: services.web.env_file[0]: /proj/bad.env:2: expected KEY=VALUE, found \"not valid\""]
    );
}

#[test]
fn environment_must_be_a_list_or_a_map() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    environment: FOO=1\n"),
        "compose.yaml:4:5: services.web.environment: expected a mapping, found \"FOO=1\""
    );
}
