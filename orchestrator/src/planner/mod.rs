//! The planner: a pure function from (desired, observed) to a plan of single operations.
//!
//! The engine observes what it has for a project (containers with their labels: service,
//! replica number, config hash; networks; volumes), the loader gives what is desired, and
//! [`plan_up`] / [`plan_down`] decide what to do. Nothing here touches the host, so every rule
//! (idempotent `up`, recreate on hash change one replica at a time, scale down highest numbers
//! first, orphans, dependency order) is tested without root.
//!
//! A [`Plan`] is a DAG: each [`Step`] lists the steps it must wait for; the executor runs the
//! rest in parallel.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::compose::Condition;

/// What the user wants of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub name: String,
    pub replicas: u32,
    pub config_hash: String,
    /// Dependencies with their condition and `restart: true`.
    pub depends_on: Vec<(String, Condition, bool)>,
    /// A one-shot: runs to completion and is not restarted by `up` once it succeeded.
    pub one_shot: bool,
}

/// The desired state of a project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Services in dependency order (dependencies first).
    pub services: Vec<DesiredService>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

/// Status of an observed container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    Created,
    Running,
    Paused,
    Exited(i32),
}

/// A container the engine has for the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub name: String,
    pub service: String,
    pub number: u32,
    pub config_hash: String,
    pub state: RunState,
}

/// What the engine has for the project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub containers: Vec<ObservedContainer>,
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
}

/// Options of `up`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// Only these services (and, unless `no_deps`, their dependencies); empty = all.
    pub services: BTreeSet<String>,
}

/// Options of `down`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownOptions {
    pub volumes: bool,
    /// Seconds each container gets to stop (`down -t`).
    pub timeout: Option<u64>,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    CreateNetwork {
        network: String,
    },
    CreateVolume {
        volume: String,
    },
    /// Create and start replica `number` of `service`.
    Run {
        service: String,
        number: u32,
    },
    /// Start an existing stopped container.
    Start {
        container: String,
    },
    /// Stop a container (`down` stops dependents before their dependencies).
    Stop {
        container: String,
        /// Seconds before SIGKILL (`down -t`); `None`: the container's grace period.
        timeout: Option<u64>,
    },
    /// Stop and remove a container.
    Remove {
        container: String,
    },
    /// Wait until `service` meets `condition` (its replicas started, healthy, or completed).
    Await {
        service: String,
        condition: Condition,
    },
    RemoveNetwork {
        network: String,
    },
    RemoveVolume {
        volume: String,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::CreateNetwork { network } => write!(f, "create network {network}"),
            Action::CreateVolume { volume } => write!(f, "create volume {volume}"),
            Action::Run { service, number } => write!(f, "run {service} replica {number}"),
            Action::Start { container } => write!(f, "start {container}"),
            Action::Stop { container, .. } => write!(f, "stop {container}"),
            Action::Remove { container } => write!(f, "stop and remove {container}"),
            Action::Await { service, condition } => {
                write!(f, "wait for {service} ({})", condition.as_str())
            }
            Action::RemoveNetwork { network } => write!(f, "remove network {network}"),
            Action::RemoveVolume { volume } => write!(f, "remove volume {volume}"),
        }
    }
}

/// An operation and the steps (indexes) it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    pub after: Vec<usize>,
}

/// A plan: steps in an order where every step comes after the ones it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    fn push(&mut self, action: Action, after: Vec<usize>) -> usize {
        let mut after = after;
        after.sort_unstable();
        after.dedup();
        self.steps.push(Step { action, after });
        self.steps.len() - 1
    }

    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Per-service bookkeeping while planning `up`.
#[derive(Default)]
struct ServiceSteps {
    /// Steps after which the service is (re)started.
    done: Vec<usize>,
    /// Whether any of its containers was (re)created or started by this plan.
    changed: bool,
}

/// Plans `up`: networks and volumes first, then every service in dependency order, each
/// starting only after its dependencies meet their conditions.
pub fn plan_up(desired: &Desired, observed: &Observed, opts: &UpOptions) -> Plan {
    let mut plan = Plan::default();
    let mut infra = Vec::new();
    for n in &desired.networks {
        if !observed.networks.contains(n) {
            infra.push(plan.push(Action::CreateNetwork { network: n.clone() }, vec![]));
        }
    }
    for v in &desired.volumes {
        if !observed.volumes.contains(v) {
            infra.push(plan.push(Action::CreateVolume { volume: v.clone() }, vec![]));
        }
    }
    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    let mut steps: BTreeMap<&str, ServiceSteps> = BTreeMap::new();
    for svc in &desired.services {
        let selected = opts.services.is_empty() || opts.services.contains(&svc.name);
        let mut gate = infra.clone();
        let mut dep_restarted = false;
        for (dep, cond, restart) in &svc.depends_on {
            let Some(dep_steps) = steps.get(dep.as_str()) else {
                continue;
            };
            dep_restarted |= *restart && dep_steps.changed;
            let mut after = dep_steps.done.clone();
            after.extend(&infra);
            gate.push(plan.push(
                Action::Await {
                    service: dep.clone(),
                    condition: *cond,
                },
                after,
            ));
        }
        let mut existing: Vec<&ObservedContainer> =
            by_service.remove(svc.name.as_str()).unwrap_or_default();
        existing.sort_by_key(|c| c.number);
        let mut st = ServiceSteps::default();
        if selected {
            plan_service(
                &mut plan,
                svc,
                &existing,
                &gate,
                opts,
                dep_restarted,
                &mut st,
            );
        } else {
            // Not selected: leave it alone, but let dependents wait on it as it is.
            st.done = gate;
        }
        steps.insert(svc.name.as_str(), st);
    }
    if opts.remove_orphans {
        for containers in by_service.values() {
            for c in containers {
                plan.push(
                    Action::Remove {
                        container: c.name.clone(),
                    },
                    vec![],
                );
            }
        }
    }
    plan
}

fn needs_recreate(
    svc: &DesiredService,
    c: &ObservedContainer,
    opts: &UpOptions,
    dep_restarted: bool,
) -> bool {
    if opts.no_recreate {
        return false;
    }
    opts.force_recreate || c.config_hash != svc.config_hash || dep_restarted
}

fn plan_service(
    plan: &mut Plan,
    svc: &DesiredService,
    existing: &[&ObservedContainer],
    gate: &[usize],
    opts: &UpOptions,
    dep_restarted: bool,
    st: &mut ServiceSteps,
) {
    // Replicas are recreated one at a time so the service keeps serving: each replica's
    // removal waits for the previous replica's replacement.
    let mut previous: Option<usize> = None;
    for number in 1..=svc.replicas {
        let current = existing.iter().find(|c| c.number == number);
        let mut after = gate.to_vec();
        match current {
            None => {
                let s = plan.push(
                    Action::Run {
                        service: svc.name.clone(),
                        number,
                    },
                    after,
                );
                st.done.push(s);
                st.changed = true;
            }
            Some(c) if needs_recreate(svc, c, opts, dep_restarted) => {
                after.extend(previous);
                let rm = plan.push(
                    Action::Remove {
                        container: c.name.clone(),
                    },
                    after,
                );
                let s = plan.push(
                    Action::Run {
                        service: svc.name.clone(),
                        number,
                    },
                    vec![rm],
                );
                previous = Some(s);
                st.done.push(s);
                st.changed = true;
            }
            Some(c) => match c.state {
                RunState::Running | RunState::Paused => {}
                RunState::Exited(0) if svc.one_shot => {}
                RunState::Created | RunState::Exited(_) => {
                    let s = plan.push(
                        Action::Start {
                            container: c.name.clone(),
                        },
                        after,
                    );
                    st.done.push(s);
                    st.changed = true;
                }
            },
        }
    }
    // Scale down: the highest numbers first.
    let mut extra: Vec<&&ObservedContainer> = existing
        .iter()
        .filter(|c| c.number > svc.replicas)
        .collect();
    extra.sort_by_key(|c| std::cmp::Reverse(c.number));
    let mut prev = None;
    for c in extra {
        let s = plan.push(
            Action::Remove {
                container: c.name.clone(),
            },
            prev.into_iter().collect(),
        );
        prev = Some(s);
    }
}

/// Plans `down`: containers in reverse dependency order (dependents before their
/// dependencies), then the project's networks and, with `-v`, its volumes (the observed ones:
/// what carries the project's label, even if the file no longer names it).
pub fn plan_down(desired: &Desired, observed: &Observed, opts: &DownOptions) -> Plan {
    let mut plan = Plan::default();
    let order: Vec<&str> = desired.services.iter().map(|s| s.name.as_str()).collect();
    let mut stopped: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // Services not in the file (orphans) go first.
    let known: BTreeSet<&str> = order.iter().copied().collect();
    let mut all_removals = Vec::new();
    for c in observed
        .containers
        .iter()
        .filter(|c| !known.contains(c.service.as_str()))
    {
        all_removals.push(plan.push(
            Action::Remove {
                container: c.name.clone(),
            },
            vec![],
        ));
    }
    // Stops follow the reverse dependency order; each container's removal waits only for its
    // own stop, so removals overlap with the next level's stops.
    for name in order.iter().rev() {
        let dependents: Vec<usize> = desired
            .services
            .iter()
            .filter(|s| s.depends_on.iter().any(|(d, _, _)| d == name))
            .flat_map(|s| stopped.get(s.name.as_str()).cloned().unwrap_or_default())
            .collect();
        let mut mine = Vec::new();
        let mut cs: Vec<&ObservedContainer> = observed
            .containers
            .iter()
            .filter(|c| c.service == *name)
            .collect();
        cs.sort_by_key(|c| std::cmp::Reverse(c.number));
        for c in cs {
            let container = c.name.clone();
            let stop = plan.push(
                Action::Stop {
                    container: container.clone(),
                    timeout: opts.timeout,
                },
                dependents.clone(),
            );
            mine.push(stop);
            all_removals.push(plan.push(Action::Remove { container }, vec![stop]));
        }
        stopped.insert(name, mine);
    }
    // Everything labelled with the project goes, whether or not the file still names it.
    for n in &observed.networks {
        plan.push(
            Action::RemoveNetwork { network: n.clone() },
            all_removals.clone(),
        );
    }
    if opts.volumes {
        for v in &observed.volumes {
            plan.push(
                Action::RemoveVolume { volume: v.clone() },
                all_removals.clone(),
            );
        }
    }
    plan
}
