//! Runs a [`Plan`]: every step whose predecessors succeeded starts at once (up to a parallel
//! limit); the first failure stops new steps, lets running ones finish and is returned with the
//! step that failed. Progress goes to the client as plain lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::warn;

use super::projects::containers;
use super::translate::{self, SERVICE};
use super::{containers as ops, volumes, Engine, EngineError};
use crate::api::{self, Status};
use crate::compose::{Condition, Project};
use crate::planner::{Action, Desired, Plan};

/// Progress lines to the client (dropped when it has gone away).
#[derive(Clone)]
pub struct Progress {
    tx: mpsc::Sender<Vec<u8>>,
}

impl Progress {
    /// Progress over a stream channel.
    pub fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self { tx }
    }

    /// Sends one line.
    pub async fn line(&self, text: String) {
        let _ = self
            .tx
            .send(api::frame(api::STDOUT, format!("{text}\n").as_bytes()))
            .await;
    }
}

/// Runs the plan.
pub async fn run(
    engine: &Arc<Engine>,
    project: &Arc<Project>,
    plan: Plan,
    parallel: usize,
    progress: &Progress,
) -> Result<(), EngineError> {
    let n = plan.steps.len();
    let mut state = vec![0u8; n]; // 0 waiting, 1 running, 2 done
    let limit = Arc::new(Semaphore::new(if parallel == 0 { 64 } else { parallel }));
    let mut set = JoinSet::new();
    let mut failure: Option<EngineError> = None;
    loop {
        if failure.is_none() {
            for i in 0..n {
                if state[i] == 0 && plan.steps[i].after.iter().all(|a| state[*a] == 2) {
                    state[i] = 1;
                    let (engine, project, progress, limit) = (
                        engine.clone(),
                        project.clone(),
                        progress.clone(),
                        limit.clone(),
                    );
                    let action = plan.steps[i].action.clone();
                    set.spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        (
                            i,
                            step(&engine, &project, &action, &progress)
                                .await
                                .map_err(|e| (action, e)),
                        )
                    });
                }
            }
        }
        match set.join_next().await {
            None => break,
            Some(Ok((i, Ok(())))) => state[i] = 2,
            Some(Ok((_, Err((action, e))))) => {
                warn!(error = %e, "{action} failed");
                if failure.is_none() {
                    failure = Some(e);
                }
            }
            Some(Err(e)) => {
                failure.get_or_insert(EngineError::Internal(format!("plan step panicked: {e}")));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn step(
    engine: &Arc<Engine>,
    project: &Project,
    action: &Action,
    progress: &Progress,
) -> Result<(), EngineError> {
    match action {
        Action::CreateNetwork { network } => {
            let (key, net) = project
                .networks
                .iter()
                .find(|(_, n)| &n.name == network)
                .ok_or_else(|| {
                    EngineError::Internal(format!("network {network} is not in the project"))
                })?;
            let pool = net.ipam.config.first();
            let spec = netd::NetworkSpec {
                name: network.clone(),
                subnet: pool
                    .and_then(|p| p.subnet.as_deref())
                    .map(|s| {
                        s.parse().map_err(|e| {
                            EngineError::BadRequest(format!("network {key}: subnet {s}: {e}"))
                        })
                    })
                    .transpose()?,
                gateway: pool.and_then(|p| match p.gateway {
                    Some(std::net::IpAddr::V4(g)) => Some(g),
                    _ => None,
                }),
                internal: net.internal,
                labels: net
                    .labels
                    .clone()
                    .into_iter()
                    .chain(translate::project_labels(&project.name))
                    .collect(),
            };
            engine
                .net
                .get()
                .await?
                .create_network(spec)
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            progress.line(format!("Network {network}  Created")).await;
        }
        Action::CreateVolume { volume } => {
            let labels = project
                .volumes
                .values()
                .find(|v| &v.name == volume)
                .map(|v| v.labels.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(translate::project_labels(&project.name))
                .collect();
            volumes::create(&engine.root, volume, labels)?;
            progress.line(format!("Volume {volume}  Created")).await;
        }
        Action::Run { service, number } => {
            run_replica(engine, project, service, *number, progress).await?
        }
        Action::Start { container } => {
            let c = engine.find(container)?;
            ops::start(engine, &c).await?;
            progress
                .line(format!("Container {container}  Started"))
                .await;
        }
        Action::Stop { container, timeout } => {
            let Ok(c) = engine.find(container) else {
                return Ok(());
            };
            ops::stop(engine, &c, *timeout).await?;
            progress
                .line(format!("Container {container}  Stopped"))
                .await;
        }
        Action::Remove { container } => {
            let Ok(c) = engine.find(container) else {
                return Ok(());
            };
            if c.pidfd().is_some() {
                ops::stop(engine, &c, None).await?;
                progress
                    .line(format!("Container {container}  Stopped"))
                    .await;
            }
            ops::remove(engine, &c, true).await?;
            progress
                .line(format!("Container {container}  Removed"))
                .await;
        }
        Action::Await { service, condition } => {
            await_service(
                engine,
                &project.name,
                service,
                *condition,
                Duration::from_secs(600),
            )
            .await?;
            if *condition != Condition::ServiceStarted {
                progress
                    .line(format!("Service {service}  {}", condition.as_str()))
                    .await;
            }
        }
        Action::RemoveNetwork { network } => {
            engine
                .net
                .get()
                .await?
                .remove_network(network)
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            progress.line(format!("Network {network}  Removed")).await;
        }
        Action::RemoveVolume { volume } => {
            volumes::remove(&engine.root, volume)?;
            progress.line(format!("Volume {volume}  Removed")).await;
        }
    }
    Ok(())
}

async fn run_replica(
    engine: &Arc<Engine>,
    project: &Project,
    service: &str,
    number: u32,
    progress: &Progress,
) -> Result<(), EngineError> {
    let id = super::oneoff::create_replica(engine, project, service, number, progress).await?;
    let c = engine.find(&id)?;
    progress
        .line(format!("Container {}  Starting", c.name))
        .await;
    ops::start(engine, &c).await?;
    progress
        .line(format!("Container {}  Started", c.name))
        .await;
    Ok(())
}

/// Waits until `service` of `project` meets `condition`.
pub async fn await_service(
    engine: &Engine,
    project: &str,
    service: &str,
    condition: Condition,
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    loop {
        let cs: Vec<_> = containers(engine, project)
            .into_iter()
            .filter(|c| c.spec.labels.get(SERVICE).map(String::as_str) == Some(service))
            .collect();
        let states: Vec<api::ContainerState> = cs.iter().map(|c| c.state()).collect();
        let ready = !states.is_empty()
            && match condition {
                Condition::ServiceStarted => states.iter().all(|s| s.status != Status::Created),
                Condition::ServiceHealthy => {
                    if let Some(s) = states.iter().find(|s| s.healthcheck.is_none()) {
                        let _ = s;
                        return Err(EngineError::BadRequest(format!(
                            "dependency {service} has no healthcheck, so it can never be service_healthy: add one or use service_started"
                        )));
                    }
                    if let Some(s) = states
                        .iter()
                        .find(|s| s.health.as_ref().is_some_and(|h| h.status == "unhealthy"))
                    {
                        let out = s
                            .health
                            .as_ref()
                            .map(|h| h.last_output.trim().to_string())
                            .unwrap_or_default();
                        return Err(EngineError::Conflict(format!(
                            "dependency {service} is unhealthy; last check output: {out:?}"
                        )));
                    }
                    states.iter().all(|s| {
                        s.status == Status::Running
                            && s.health.as_ref().is_some_and(|h| h.status == "healthy")
                    })
                }
                Condition::ServiceCompletedSuccessfully => {
                    if let Some(s) = states
                        .iter()
                        .find(|s| s.status == Status::Exited && s.exit_code != Some(0))
                    {
                        return Err(EngineError::Conflict(format!(
                            "dependency {service} did not complete successfully: exit code {}",
                            s.exit_code.unwrap_or(-1)
                        )));
                    }
                    states.iter().all(|s| s.status == Status::Exited)
                }
            };
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(EngineError::Conflict(format!(
                "timed out after {}s waiting for {service} to be {}",
                timeout.as_secs(),
                condition.as_str()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `up --wait`: every service running (healthy where it has a check), one-shots completed.
pub async fn wait_all(
    engine: &Engine,
    project: &Project,
    desired: &Desired,
    timeout: Duration,
    progress: &Progress,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    for svc in &desired.services {
        if svc.replicas == 0 {
            continue;
        }
        let cond = if svc.one_shot {
            Condition::ServiceCompletedSuccessfully
        } else if project
            .services
            .get(&svc.name)
            .is_some_and(|s| s.healthcheck.as_ref().is_some_and(|h| !h.is_disabled()))
        {
            Condition::ServiceHealthy
        } else {
            Condition::ServiceStarted
        };
        let left = deadline.saturating_duration_since(Instant::now());
        await_service(engine, &project.name, &svc.name, cond, left).await?;
        if cond == Condition::ServiceStarted {
            // Started is not enough for --wait: the replicas must still be running.
            let down: Vec<String> = containers(engine, &project.name)
                .iter()
                .filter(|c| {
                    c.spec.labels.get(SERVICE) == Some(&svc.name) && c.status() != Status::Running
                })
                .map(|c| format!("{} ({})", c.name, c.status()))
                .collect();
            if !down.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "service {} is not running: {}",
                    svc.name,
                    down.join(", ")
                )));
            }
        }
        progress.line(format!("Service {}  Ready", svc.name)).await;
    }
    Ok(())
}
