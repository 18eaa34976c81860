//! Errors in general: unknown and unsupported keys, types, YAML syntax, several errors at once.

use super::{error, errors, errors_of, load_files};

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    enviroment:\n      A: 1\n"),
        "compose.yaml:4:5: services.web.enviroment: unknown key `enviroment` (did you mean `environment`?)"
    );
    assert_eq!(
        error("servics:\n  web:\n    image: x\n"),
        "compose.yaml:1:1: servics: unknown key `servics` (did you mean `services`?)"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    frobnicate: 1\n"),
        "compose.yaml:4:5: services.web.frobnicate: unknown key `frobnicate`"
    );
}

#[test]
fn spec_keys_berth_lacks_are_not_supported_yet() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    logging:\n      driver: json-file\n"),
        "compose.yaml:4:5: services.web.logging: `logging` is not supported yet (berth does not implement it); remove it"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\nmodels:\n  m: {}\n"),
        "compose.yaml:4:1: models: `models` is not supported yet (berth does not implement it); remove it"
    );
}

#[test]
fn every_error_of_a_load_is_reported() {
    let e = errors("services:\n  web:\n    image: x\n    deploy:\n      replicas: three\n    ports: ['99999:80']\n    depends_on: [nope]\n  db:\n    restart: maybe\n");
    assert_eq!(
        e,
        [
            "compose.yaml:5:7: services.web.deploy.replicas: expected an integer, found \"three\"",
            "compose.yaml:6:13: services.web.ports[0]: invalid port spec \"99999:80\": host port: port 99999 is out of range 1-65535",
            "compose.yaml:7:18: services.web.depends_on.nope: unknown service `nope`",
            "compose.yaml:8:3: services.db: missing `image` or `build`: say which image to run or how to build it",
            "compose.yaml:9:5: services.db.restart: expected \"no\", \"always\", \"on-failure\", \"on-failure:N\" or \"unless-stopped\", found \"maybe\"",
        ]
    );
}

#[test]
fn type_errors_name_what_was_found() {
    assert_eq!(
        error("services:\n  web:\n    image: [x]\n"),
        "compose.yaml:3:5: services.web.image: expected a string, found a sequence"
    );
    assert_eq!(
        error("services:\n  web: nginx\n"),
        "compose.yaml:2:3: services.web: expected a mapping, found \"nginx\""
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    init: maybe\n"),
        "compose.yaml:4:5: services.web.init: expected a boolean, found \"maybe\""
    );
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let e = errors_of(load_files(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n   bad indent: y\n",
        )],
        &[],
    ));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("compose.yaml:4:"), "{e:?}");
    assert!(e[0].contains("invalid YAML"), "{e:?}");
    let e = errors_of(load_files(
        &[(
            "compose.yaml",
            "services:\n  web: {image: x}\n  web: {image: y}\n",
        )],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:2:3: invalid YAML: services: duplicate entry with key \"web\""]
    );
    assert!(e[0].contains("duplicate entry"), "{e:?}");
}

#[test]
fn empty_and_odd_documents() {
    assert_eq!(
        errors_of(load_files(&[("compose.yaml", "")], &[])),
        ["compose.yaml: expected a mapping with a `services` key at the top, found an empty document"]
    );
    assert_eq!(
        errors_of(load_files(&[("compose.yaml", "name: x\n")], &[])),
        ["services: missing `services`: a compose file defines services"]
    );
    assert_eq!(
        error("services:\n  \"web app\":\n    image: x\n"),
        "compose.yaml:2:3: services.web app: invalid service name \"web app\": use letters, digits, `_`, `.` and `-`"
    );
}

#[test]
fn unknown_yaml_tags_are_rejected() {
    assert_eq!(
        error("services:\n  web:\n    image: !custom x\n"),
        "compose.yaml:3:5: services.web.image: expected a string, found a value tagged !custom"
    );
}
