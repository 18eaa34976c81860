//! `healthcheck`.

use std::time::Duration;

use super::{error, service};

#[test]
fn string_test_becomes_cmd_shell_and_durations_parse() {
    let s = service(
        "services:\n  db:\n    image: x\n    healthcheck:\n      test: pg_isready -U postgres\n      interval: 1m30s\n      timeout: 5s\n      retries: 5\n      start_period: 30s\n      start_interval: 500ms\n",
        "db",
    );
    let h = s.healthcheck.unwrap();
    assert_eq!(h.test, ["CMD-SHELL", "pg_isready -U postgres"]);
    assert_eq!(h.interval, Some(Duration::from_secs(90)));
    assert_eq!(h.timeout, Some(Duration::from_secs(5)));
    assert_eq!(h.retries, Some(5));
    assert_eq!(h.start_period, Some(Duration::from_secs(30)));
    assert_eq!(h.start_interval, Some(Duration::from_millis(500)));
}

#[test]
fn list_tests_and_disabling() {
    let s = service(
        "services:\n  db:\n    image: x\n    healthcheck:\n      test: [CMD, pg_isready]\n",
        "db",
    );
    assert_eq!(s.healthcheck.unwrap().test, ["CMD", "pg_isready"]);
    let s = service(
        "services:\n  db:\n    image: x\n    healthcheck:\n      test: [NONE]\n",
        "db",
    );
    assert!(s.healthcheck.unwrap().is_disabled());
    let s = service(
        "services:\n  db:\n    image: x\n    healthcheck:\n      disable: true\n",
        "db",
    );
    assert!(s.healthcheck.unwrap().is_disabled());
}

#[test]
fn malformed_checks_explain_themselves() {
    assert_eq!(
        error("services:\n  db:\n    image: x\n    healthcheck:\n      test: [pg_isready]\n"),
        "compose.yaml:5:7: services.db.healthcheck.test: the first item must be \"NONE\", \"CMD\" or \"CMD-SHELL\" (or write the test as a string)"
    );
    assert_eq!(
        error("services:\n  db:\n    image: x\n    healthcheck:\n      test: [CMD]\n"),
        "compose.yaml:5:7: services.db.healthcheck.test: CMD needs a command after it"
    );
    assert_eq!(
        error("services:\n  db:\n    image: x\n    healthcheck:\n      interval: 10\n"),
        "compose.yaml:5:7: services.db.healthcheck.interval: expected a duration like \"1m30s\" or \"500ms\", found 10"
    );
    assert_eq!(
        error("services:\n  db:\n    image: x\n    healthcheck:\n      timeout: 5 seconds\n"),
        "compose.yaml:5:7: services.db.healthcheck.timeout: expected a duration like \"1m30s\" or \"500ms\", found \"5 seconds\""
    );
    assert_eq!(
        error("services:\n  db:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n      disable: true\n"),
        "compose.yaml:4:5: services.db.healthcheck: `disable: true` cannot be combined with `test`; remove one of them (use `test: !reset` to drop an inherited test)"
    );
}
