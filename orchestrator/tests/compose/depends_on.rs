//! `depends_on`: syntax, conditions, unknown services and cycles.

use orchestrator::compose::Condition;
use orchestrator::graph::ServiceGraph;

use super::{error, errors, load, warnings};

#[test]
fn list_and_map_syntax_with_conditions() {
    let p = load(
        "services:\n  web:\n    image: x\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      migrate:\n        condition: service_completed_successfully\n      cache:\n  worker:\n    image: x\n    depends_on: [db]\n  db:\n    image: x\n    healthcheck: {test: pg_isready}\n  migrate:\n    image: x\n  cache:\n    image: x\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.depends_on["db"].condition, Condition::ServiceHealthy);
    assert!(web.depends_on["db"].restart);
    assert!(web.depends_on["db"].required);
    assert_eq!(
        web.depends_on["migrate"].condition,
        Condition::ServiceCompletedSuccessfully
    );
    assert_eq!(web.depends_on["cache"].condition, Condition::ServiceStarted);
    assert_eq!(
        p.services["worker"].depends_on["db"].condition,
        Condition::ServiceStarted
    );
    let g = ServiceGraph::new(&p).unwrap();
    assert_eq!(
        g.start_order(),
        vec![vec!["cache", "db", "migrate"], vec!["web", "worker"]]
    );
}

#[test]
fn unknown_services_are_named_with_a_suggestion() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    depends_on: [dbb]\n  db:\n    image: x\n"),
        "compose.yaml:4:18: services.web.depends_on.dbb: unknown service `dbb` (did you mean `db`?)"
    );
}

#[test]
fn optional_unknown_dependencies_only_warn() {
    let p = load("services:\n  web:\n    image: x\n    depends_on:\n      metrics:\n        condition: service_started\n        required: false\n");
    assert!(p.services["web"].depends_on.is_empty());
    assert_eq!(
        warnings(&p),
        ["compose.yaml:5:7: services.web.depends_on.metrics: optional dependency `metrics` is not defined; ignoring it"]
    );
}

#[test]
fn cycles_are_reported_whole_and_deterministically() {
    assert_eq!(
        error("services:\n  c:\n    image: x\n    depends_on: [a]\n  b:\n    image: x\n    depends_on: [c]\n  a:\n    image: x\n    depends_on: [b]\n"),
        "compose.yaml:10:18: services.a.depends_on.b: dependency cycle: a -> b -> c -> a"
    );
    assert_eq!(
        error("services:\n  a:\n    image: x\n    depends_on: [a]\n"),
        "compose.yaml:4:18: services.a.depends_on.a: dependency cycle: a -> a"
    );
}

#[test]
fn bad_conditions_suggest_the_right_one() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    depends_on:\n      db: {condition: service_healty}\n  db:\n    image: x\n"),
        "compose.yaml:5:12: services.web.depends_on.db.condition: expected \"service_started\", \"service_healthy\" or \"service_completed_successfully\", found \"service_healty\" (did you mean `service_healthy`?)"
    );
}

#[test]
fn a_healthy_condition_on_a_disabled_check_is_an_error() {
    let e = errors("services:\n  web:\n    image: x\n    depends_on:\n      db:\n        condition: service_healthy\n  db:\n    image: x\n    healthcheck:\n      disable: true\n");
    assert_eq!(
        e,
        ["compose.yaml:6:9: services.web.depends_on.db.condition: `db` has its health check disabled, so it never becomes healthy; use service_started or enable the check"]
    );
}
