//! `deploy`, `scale`, `restart` and the resource shorthands.

use orchestrator::compose::RestartPolicy;

use super::{error, service};

#[test]
fn replicas_resources_and_byte_sizes() {
    let s = service(
        "services:\n  web:\n    image: x\n    deploy:\n      replicas: 3\n      resources:\n        limits:\n          cpus: '0.5'\n          memory: 1.5G\n          pids: 100\n",
        "web",
    );
    assert_eq!(s.deploy.replicas, 3);
    let l = &s.deploy.resources.limits;
    assert_eq!(l.cpus, Some(0.5));
    assert_eq!(l.memory, Some(1_610_612_736));
    assert_eq!(l.pids, Some(100));
}

#[test]
fn shorthands_land_in_deploy() {
    let s = service(
        "services:\n  web:\n    image: x\n    scale: 2\n    mem_limit: 64m\n    cpus: 1.5\n    pids_limit: -1\n",
        "web",
    );
    assert_eq!(s.deploy.replicas, 2);
    assert_eq!(s.deploy.resources.limits.memory, Some(64 << 20));
    assert_eq!(s.deploy.resources.limits.cpus, Some(1.5));
    assert_eq!(s.deploy.resources.limits.pids, Some(-1));
    assert_eq!(
        service("services:\n  w:\n    image: x\n", "w")
            .deploy
            .replicas,
        1
    );
}

#[test]
fn replicas_must_be_an_integer() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    deploy:\n      replicas: three\n"),
        "compose.yaml:5:7: services.web.deploy.replicas: expected an integer, found \"three\""
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    deploy:\n      replicas: -1\n"),
        "compose.yaml:5:7: services.web.deploy.replicas: expected a non-negative integer, found -1"
    );
}

#[test]
fn disagreeing_shorthands_are_errors() {
    assert_eq!(
        error("services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n"),
        "compose.yaml:4:5: services.web.scale: `scale` (2) and `deploy.replicas` (3) disagree; keep one of them"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n"),
        "compose.yaml:4:5: services.web.mem_limit: `mem_limit` and `deploy.resources.limits` disagree (1073741824 and 2147483648 bytes); keep one of them"
    );
    assert_eq!(
        error("services:\n  web:\n    image: x\n    mem_limit: lots\n"),
        "compose.yaml:4:5: services.web.mem_limit: expected a byte size like \"64m\" or \"1.5g\", found \"lots\""
    );
}

#[test]
fn restart_policies() {
    let r = |v: &str| {
        service(
            &format!("services:\n  w:\n    image: x\n    restart: {v}\n"),
            "w",
        )
        .restart
    };
    assert_eq!(r("\"no\""), RestartPolicy::No);
    assert_eq!(r("always"), RestartPolicy::Always);
    assert_eq!(
        r("on-failure"),
        RestartPolicy::OnFailure { max_retries: None }
    );
    assert_eq!(
        r("on-failure:3"),
        RestartPolicy::OnFailure {
            max_retries: Some(3)
        }
    );
    assert_eq!(r("unless-stopped"), RestartPolicy::UnlessStopped);
    assert_eq!(
        error("services:\n  w:\n    image: x\n    restart: sometimes\n"),
        "compose.yaml:4:5: services.w.restart: expected \"no\", \"always\", \"on-failure\", \"on-failure:N\" or \"unless-stopped\", found \"sometimes\""
    );
}

#[test]
fn deploy_restart_policy_sets_restart_when_unset() {
    let s = service(
        "services:\n  w:\n    image: x\n    deploy:\n      restart_policy:\n        condition: on-failure\n        max_attempts: 4\n        delay: 5s\n",
        "w",
    );
    assert_eq!(
        s.restart,
        RestartPolicy::OnFailure {
            max_retries: Some(4)
        }
    );
    assert_eq!(
        s.deploy.restart_policy.unwrap().delay,
        Some(std::time::Duration::from_secs(5))
    );
}

#[test]
fn unimplemented_deploy_keys_are_rejected() {
    assert_eq!(
        error("services:\n  w:\n    image: x\n    deploy:\n      resources:\n        reservations: {memory: 1g}\n"),
        "compose.yaml:6:9: services.w.deploy.resources.reservations: `reservations` is not supported yet (berth does not implement it); remove it"
    );
}
