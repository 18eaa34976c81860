use super::*;

fn svc(name: &str, replicas: u32, hash: &str, deps: &[(&str, Condition)]) -> DesiredService {
    DesiredService {
        name: name.into(),
        replicas,
        config_hash: hash.into(),
        depends_on: deps
            .iter()
            .map(|(d, c)| (d.to_string(), *c, false))
            .collect(),
        one_shot: false,
    }
}

fn running(service: &str, number: u32, hash: &str) -> ObservedContainer {
    ObservedContainer {
        name: format!("p-{service}-{number}"),
        service: service.into(),
        number,
        config_hash: hash.into(),
        state: RunState::Running,
    }
}

fn stack() -> Desired {
    Desired {
        services: vec![
            svc("db", 1, "h-db", &[]),
            svc("api", 3, "h-api", &[("db", Condition::ServiceHealthy)]),
            svc("web", 1, "h-web", &[("api", Condition::ServiceStarted)]),
        ],
        networks: vec!["p_default".into()],
        volumes: vec!["p_data".into()],
    }
}

fn converged() -> Observed {
    Observed {
        containers: vec![
            running("db", 1, "h-db"),
            running("api", 1, "h-api"),
            running("api", 2, "h-api"),
            running("api", 3, "h-api"),
            running("web", 1, "h-web"),
        ],
        networks: ["p_default".to_string()].into(),
        volumes: ["p_data".to_string()].into(),
    }
}

fn actions(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.action.to_string()).collect()
}

/// Every step comes after the steps it waits for.
fn assert_topological(p: &Plan) {
    for (i, s) in p.steps.iter().enumerate() {
        assert!(
            s.after.iter().all(|a| *a < i),
            "step {i} waits on a later step: {p:?}"
        );
    }
}

#[test]
fn fresh_up_creates_infra_then_services_in_dependency_order() {
    let p = plan_up(&stack(), &Observed::default(), &UpOptions::default());
    assert_topological(&p);
    let a = actions(&p);
    assert_eq!(a[0], "create network p_default");
    assert_eq!(a[1], "create volume p_data");
    let pos = |s: &str| {
        a.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} missing in {a:?}"))
    };
    assert!(pos("run db replica 1") < pos("wait for db (service_healthy)"));
    assert!(pos("wait for db (service_healthy)") < pos("run api replica 1"));
    assert!(pos("wait for api (service_started)") < pos("run web replica 1"));
    let api1 = &p.steps[pos("run api replica 1")];
    assert!(api1.after.contains(&pos("wait for db (service_healthy)")));
    let wait_api = &p.steps[pos("wait for api (service_started)")];
    for n in 1..=3 {
        assert!(wait_api
            .after
            .contains(&pos(&format!("run api replica {n}"))));
    }
    assert_eq!(a.iter().filter(|x| x.starts_with("run ")).count(), 5);
}

#[test]
fn second_up_with_no_change_does_nothing() {
    let p = plan_up(&stack(), &converged(), &UpOptions::default());
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s.action, Action::Await { .. })),
        "only readiness checks: {:?}",
        actions(&p)
    );
}

#[test]
fn a_changed_service_is_recreated_one_replica_at_a_time_and_alone() {
    let mut d = stack();
    d.services[1].config_hash = "h-api-2".into();
    let p = plan_up(&d, &converged(), &UpOptions::default());
    assert_topological(&p);
    let a = actions(&p);
    let changes: Vec<&String> = a.iter().filter(|x| !x.starts_with("wait")).collect();
    assert_eq!(
        changes,
        vec![
            "stop and remove p-api-1",
            "run api replica 1",
            "stop and remove p-api-2",
            "run api replica 2",
            "stop and remove p-api-3",
            "run api replica 3"
        ]
    );
    let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
    assert!(p.steps[pos("stop and remove p-api-2")]
        .after
        .contains(&pos("run api replica 1")));
    assert!(p.steps[pos("stop and remove p-api-3")]
        .after
        .contains(&pos("run api replica 2")));
}

#[test]
fn dependency_restart_true_recreates_dependents() {
    let mut d = stack();
    d.services[0].config_hash = "h-db-2".into();
    d.services[1].depends_on[0].2 = true;
    let p = plan_up(&d, &converged(), &UpOptions::default());
    let a = actions(&p);
    assert!(a.contains(&"stop and remove p-db-1".to_string()));
    assert!(a.contains(&"stop and remove p-api-1".to_string()), "{a:?}");
    assert!(
        !a.contains(&"stop and remove p-web-1".to_string()),
        "web has no restart: true: {a:?}"
    );
}

#[test]
fn no_recreate_and_force_recreate() {
    let mut d = stack();
    d.services[2].config_hash = "h-web-2".into();
    let opts = UpOptions {
        no_recreate: true,
        ..Default::default()
    };
    assert!(actions(&plan_up(&d, &converged(), &opts))
        .iter()
        .all(|a| a.starts_with("wait")));
    let opts = UpOptions {
        force_recreate: true,
        ..Default::default()
    };
    let n = actions(&plan_up(&stack(), &converged(), &opts))
        .iter()
        .filter(|a| a.starts_with("stop and remove"))
        .count();
    assert_eq!(n, 5);
}

#[test]
fn scale_down_removes_highest_numbers_first_and_scale_up_reuses_numbers() {
    let mut d = stack();
    d.services[1].replicas = 1;
    let p = plan_up(&d, &converged(), &UpOptions::default());
    let removals: Vec<String> = actions(&p)
        .into_iter()
        .filter(|a| a.starts_with("stop"))
        .collect();
    assert_eq!(
        removals,
        vec!["stop and remove p-api-3", "stop and remove p-api-2"]
    );
    let mut obs = converged();
    obs.containers
        .retain(|c| !(c.service == "api" && c.number == 2));
    let p = plan_up(&stack(), &obs, &UpOptions::default());
    let runs: Vec<String> = actions(&p)
        .into_iter()
        .filter(|a| a.starts_with("run"))
        .collect();
    assert_eq!(runs, vec!["run api replica 2"]);
}

#[test]
fn stopped_containers_are_started_but_completed_one_shots_are_not() {
    let mut d = stack();
    d.services.push(DesiredService {
        one_shot: true,
        ..svc("seed", 1, "h-seed", &[])
    });
    let mut obs = converged();
    obs.containers[4].state = RunState::Exited(137);
    obs.containers.push(ObservedContainer {
        state: RunState::Exited(0),
        ..running("seed", 1, "h-seed")
    });
    let a = actions(&plan_up(&d, &obs, &UpOptions::default()));
    assert!(a.contains(&"start p-web-1".to_string()));
    assert!(!a.iter().any(|x| x.contains("seed")), "{a:?}");
}

#[test]
fn orphans_only_with_remove_orphans() {
    let mut obs = converged();
    obs.containers.push(running("old", 1, "h-old"));
    let a = actions(&plan_up(&stack(), &obs, &UpOptions::default()));
    assert!(!a.iter().any(|x| x.contains("p-old-1")));
    let opts = UpOptions {
        remove_orphans: true,
        ..Default::default()
    };
    let a = actions(&plan_up(&stack(), &obs, &opts));
    assert!(a.contains(&"stop and remove p-old-1".to_string()));
}

#[test]
fn selected_services_leave_the_others_alone() {
    let mut d = stack();
    d.services[0].config_hash = "h-db-2".into();
    let opts = UpOptions {
        services: ["web".to_string()].into(),
        ..Default::default()
    };
    let a = actions(&plan_up(&d, &converged(), &opts));
    assert!(!a.iter().any(|x| x.contains("p-db-1")), "{a:?}");
}

#[test]
fn down_removes_dependents_before_dependencies_then_networks_and_volumes() {
    let p = plan_down(
        &stack(),
        &converged(),
        &DownOptions {
            volumes: true,
            timeout: None,
        },
    );
    assert_topological(&p);
    let a = actions(&p);
    let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
    let web = pos("stop p-web-1");
    let api1 = pos("stop p-api-1");
    assert!(p.steps[api1].after.contains(&web));
    assert!(p.steps[pos("stop p-db-1")].after.contains(&api1));
    // A removal waits for its own stop only: it overlaps with the next level's stops.
    assert_eq!(p.steps[pos("stop and remove p-web-1")].after, vec![web]);
    let net = pos("remove network p_default");
    assert_eq!(p.steps[net].after.len(), 5);
    assert!(a.contains(&"remove volume p_data".to_string()));
    let quick = plan_down(
        &stack(),
        &converged(),
        &DownOptions {
            volumes: false,
            timeout: Some(3),
        },
    );
    assert!(quick.steps.iter().all(|s| match &s.action {
        Action::Stop { timeout, .. } => *timeout == Some(3),
        _ => true,
    }));
    let p = plan_down(
        &stack(),
        &converged(),
        &DownOptions {
            volumes: false,
            timeout: None,
        },
    );
    assert!(!actions(&p).iter().any(|x| x.contains("volume")));
    let empty = plan_down(
        &stack(),
        &Observed::default(),
        &DownOptions {
            volumes: true,
            timeout: None,
        },
    );
    assert!(empty.is_empty(), "down twice does nothing");
    let without_file = plan_down(
        &Desired::default(),
        &converged(),
        &DownOptions {
            volumes: true,
            timeout: None,
        },
    );
    let a = actions(&without_file);
    assert_eq!(
        a.iter()
            .filter(|x| x.starts_with("stop and remove"))
            .count(),
        5
    );
    assert!(a.contains(&"remove network p_default".to_string()));
    assert!(a.contains(&"remove volume p_data".to_string()));
}
