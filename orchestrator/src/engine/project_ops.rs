//! Everyday operations on a project's containers, selected by service and replica:
//! `start`, `stop`, `restart`, `pause`, `unpause`, `kill`, `rm`, `create`, `top`, the selection
//! itself (for the CLI's `port`, `images`, `wait`, `rm` prompt) and the one-off `run`.
//!
//! `start` and `restart` go in dependency order, a wave at a time, waiting for each
//! dependency's condition (started, healthy, completed) as `up` does; `stop` goes in reverse.
//! A stop is a user stop: the restart policy leaves the container alone until a start or `up`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::instrument;

use super::executor::{self, Progress};
use super::project_routes::streamed;
use super::record::Container;
use super::routes::{body_json, json, Body};
use super::translate::{ONEOFF, PROJECT, SERVICE};
use super::{containers as ops, oneoff, projects, volumes, Engine, EngineError};
use crate::api::{ContainerInfo, Status};
use crate::compose::Project;
use crate::graph::ServiceGraph;
use crate::planner::{self, Action, Plan, Step};

/// The body of every project operation: which containers, and the operation's options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpRequest {
    /// The project as loaded now; the stored one when absent.
    pub project: Option<Project>,
    /// Services to act on (all when empty).
    pub services: Vec<String>,
    /// Only this replica of each service.
    pub index: Option<u32>,
    /// Include one-off (`run`) containers.
    pub oneoff: bool,
    /// Stop timeout in seconds (`stop`, `restart`, `rm -s`).
    pub timeout: Option<u64>,
    /// Signal of `kill` (default SIGKILL).
    pub signal: Option<String>,
    /// `rm`: stop running containers first.
    pub stop: bool,
    /// `rm`: remove their anonymous volumes too.
    pub volumes: bool,
    /// `create`.
    pub force_recreate: bool,
    pub no_recreate: bool,
}

/// The processes of one container (`top`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Top {
    pub name: String,
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// The operations of `POST /projects/{name}/{op}`.
pub const OPS: &[&str] = &[
    "start", "stop", "restart", "pause", "unpause", "kill", "rm", "create", "select", "top", "run",
];

fn service_of(c: &Container) -> &str {
    c.spec.labels.get(SERVICE).map(String::as_str).unwrap_or("")
}

/// The request's project, else the stored one, else an empty one of that name.
fn project_of(engine: &Engine, name: &str, given: Option<Project>) -> Project {
    given
        .or_else(|| projects::stored(engine, name).ok())
        .unwrap_or_else(|| Project {
            name: name.to_string(),
            ..Project::default()
        })
}

/// The containers the request names, in service then replica order. An unknown service is an
/// error naming it and the services that exist.
pub fn select(
    engine: &Engine,
    project: &Project,
    req: &OpRequest,
) -> Result<Vec<Arc<Container>>, EngineError> {
    let mut all: Vec<Arc<Container>> = engine
        .all()
        .into_iter()
        .filter(|c| c.spec.labels.get(PROJECT) == Some(&project.name))
        .filter(|c| req.oneoff || c.spec.labels.get(ONEOFF).map(String::as_str) != Some("True"))
        .collect();
    all.sort_by(|a, b| {
        (service_of(a), projects::number(a), &a.name).cmp(&(
            service_of(b),
            projects::number(b),
            &b.name,
        ))
    });
    let mut known: BTreeSet<String> = project.services.keys().cloned().collect();
    known.extend(all.iter().map(|c| service_of(c).to_string()));
    for s in &req.services {
        if !known.contains(s) {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(EngineError::BadRequest(if list.is_empty() {
                format!(
                    "no such service: {s}; project {} has no services",
                    project.name
                )
            } else {
                format!(
                    "no such service: {s}; the services of project {} are: {}",
                    project.name,
                    list.join(", ")
                )
            }));
        }
    }
    all.retain(|c| req.services.is_empty() || req.services.iter().any(|s| s == service_of(c)));
    if let Some(i) = req.index {
        all.retain(|c| projects::number(c) == i);
        if all.is_empty() {
            return Err(EngineError::NotFound(format!(
                "no container with index {i} for service(s) {}",
                req.services.join(", ")
            )));
        }
    }
    Ok(all)
}

/// Containers in start waves of their services; services the file no longer has come last.
fn waves(project: &Project, cs: Vec<Arc<Container>>) -> Vec<Vec<Arc<Container>>> {
    let order = ServiceGraph::new(project)
        .map(|g| g.start_order())
        .unwrap_or_default();
    let mut rest = cs;
    let mut out = Vec::new();
    for wave in order {
        let (now, later): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|c| wave.iter().any(|s| s == service_of(c)));
        if !now.is_empty() {
            out.push(now);
        }
        rest = later;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Runs `f` on every container of a wave at once; all run, the errors are joined.
async fn each<F, Fut>(cs: &[Arc<Container>], f: F) -> Result<(), EngineError>
where
    F: Fn(Arc<Container>) -> Fut,
    Fut: std::future::Future<Output = Result<(), EngineError>>,
{
    let results = futures::future::join_all(cs.iter().cloned().map(f)).await;
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    match errors.len() {
        0 => Ok(()),
        1 => Err(EngineError::Conflict(errors.join(""))),
        _ => Err(EngineError::Conflict(errors.join("; "))),
    }
}

/// Waits for the conditions `wave`'s services have on services this operation started.
async fn await_deps(
    engine: &Engine,
    project: &Project,
    wave: &[Arc<Container>],
    started: &BTreeSet<String>,
    progress: &Progress,
) -> Result<(), EngineError> {
    let services: BTreeSet<&str> = wave.iter().map(|c| service_of(c)).collect();
    let mut done = BTreeSet::new();
    for s in services {
        let Some(svc) = project.services.get(s) else {
            continue;
        };
        for (dep, d) in &svc.depends_on {
            if !started.contains(dep) || !done.insert((dep.clone(), d.condition.as_str())) {
                continue;
            }
            executor::await_service(
                engine,
                &project.name,
                dep,
                d.condition,
                Duration::from_secs(600),
            )
            .await?;
            if d.condition != crate::compose::Condition::ServiceStarted {
                progress
                    .line(format!("Service {dep}  {}", d.condition.as_str()))
                    .await;
            }
        }
    }
    Ok(())
}

/// `start` (or, with `restart`, stop then start): in dependency order, each wave after the
/// conditions its services have on the previous ones are met.
async fn start(
    engine: &Arc<Engine>,
    project: &Project,
    cs: Vec<Arc<Container>>,
    restart: Option<Option<u64>>,
    progress: &Progress,
) -> Result<(), EngineError> {
    if cs.is_empty() && restart.is_none() {
        return Err(EngineError::NotFound(
            "no containers to start (run `berth up` or `berth create` first)".into(),
        ));
    }
    let mut started = BTreeSet::new();
    for wave in waves(project, cs) {
        await_deps(engine, project, &wave, &started, progress).await?;
        each(&wave, |c| async move {
            if let Some(timeout) = restart {
                progress
                    .line(format!("Container {}  Restarting", c.name))
                    .await;
                ops::stop(engine, &c, timeout).await?;
            } else if matches!(c.status(), Status::Running | Status::Paused) {
                return Ok(());
            }
            ops::start(engine, &c).await?;
            progress
                .line(format!("Container {}  Started", c.name))
                .await;
            Ok(())
        })
        .await?;
        started.extend(wave.iter().map(|c| service_of(c).to_string()));
    }
    Ok(())
}

/// `stop`: dependents before their dependencies.
async fn stop(
    engine: &Arc<Engine>,
    project: &Project,
    cs: Vec<Arc<Container>>,
    timeout: Option<u64>,
    progress: &Progress,
) -> Result<(), EngineError> {
    let mut w = waves(project, cs);
    w.reverse();
    for wave in w {
        each(&wave, |c| async move {
            if c.pidfd().is_none() {
                // Already stopped: it stays stopped by the user all the same.
                return c.update(|s| s.stopped_by_user = true);
            }
            progress
                .line(format!("Container {}  Stopping", c.name))
                .await;
            ops::stop(engine, &c, timeout).await?;
            progress
                .line(format!("Container {}  Stopped", c.name))
                .await;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// `rm`: stopped containers (running ones too after stopping them with `stop`), and with
/// `volumes` their anonymous volumes.
async fn rm(
    engine: &Arc<Engine>,
    project: &Project,
    cs: Vec<Arc<Container>>,
    req: &OpRequest,
    progress: &Progress,
) -> Result<(), EngineError> {
    if req.stop {
        let running: Vec<_> = cs.iter().filter(|c| c.pidfd().is_some()).cloned().collect();
        stop(engine, project, running, req.timeout, progress).await?;
    }
    let gone: Vec<_> = cs
        .into_iter()
        .filter(|c| matches!(c.status(), Status::Created | Status::Exited))
        .collect();
    if gone.is_empty() {
        progress.line("No stopped containers".into()).await;
        return Ok(());
    }
    each(&gone, |c| async move {
        ops::remove(engine, &c, false).await?;
        progress
            .line(format!("Container {}  Removed", c.name))
            .await;
        if req.volumes {
            for v in oneoff::anonymous_volumes(&engine.root, &c.spec.mounts) {
                volumes::remove(&engine.root, &v)?;
                progress.line(format!("Volume {v}  Removed")).await;
            }
        }
        Ok(())
    })
    .await
}

/// `down`'s first step: the project's one-off (`run`) containers, stopped and removed, so
/// that its networks can go.
pub async fn remove_oneoffs(
    engine: &Arc<Engine>,
    name: &str,
    timeout: Option<u64>,
    progress: &Progress,
) -> Result<(), EngineError> {
    let oneoffs: Vec<_> = engine
        .all()
        .into_iter()
        .filter(|c| c.spec.labels.get(PROJECT).map(String::as_str) == Some(name))
        .filter(|c| c.spec.labels.get(ONEOFF).map(String::as_str) == Some("True"))
        .collect();
    each(&oneoffs, |c| async move {
        ops::stop(engine, &c, timeout).await?;
        ops::remove(engine, &c, true).await?;
        progress
            .line(format!("Container {}  Removed", c.name))
            .await;
        Ok(())
    })
    .await
}

/// `create`: `up`'s plan for the selected services and their dependencies, without starting
/// anything.
async fn create(
    engine: &Arc<Engine>,
    project: Project,
    req: &OpRequest,
    progress: &Progress,
) -> Result<(), EngineError> {
    let desired = projects::desired(&project)?;
    let services = ServiceGraph::new(&project)
        .and_then(|g| g.selection(&req.services, false))
        .map_err(|e| EngineError::BadRequest(e.to_string()))?;
    let opts = planner::UpOptions {
        force_recreate: req.force_recreate,
        no_recreate: req.no_recreate,
        remove_orphans: false,
        services,
    };
    let _guard = engine.project_lock(&project.name).await;
    let plan = planner::plan_up(
        &desired,
        &projects::observe(engine, &project.name).await,
        &opts,
    );
    projects::store(engine, &project)?;
    projects::write_generated(engine, &project)?;
    let project = Arc::new(project);
    // The plan is in dependency order; creating is quick, so one step at a time.
    for step in plan.steps {
        match step.action {
            Action::Run { service, number } => {
                oneoff::create_replica(engine, &project, &service, number, progress).await?;
            }
            Action::Start { .. } | Action::Await { .. } => {}
            action => {
                let single = Plan {
                    steps: vec![Step {
                        action,
                        after: Vec::new(),
                    }],
                };
                executor::run(engine, &project, single, 1, progress).await?
            }
        }
    }
    Ok(())
}

/// Runs one streamed operation.
#[instrument(skip(engine, req, tx))]
async fn operate(
    engine: &Arc<Engine>,
    name: &str,
    op: &str,
    req: OpRequest,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    let progress = Progress::new(tx);
    let project = project_of(engine, name, req.project.clone());
    let cs = select(engine, &project, &req)?;
    match op {
        "create" => create(engine, project, &req, &progress).await,
        "start" => start(engine, &project, cs, None, &progress).await,
        "restart" => start(engine, &project, cs, Some(req.timeout), &progress).await,
        "stop" => stop(engine, &project, cs, req.timeout, &progress).await,
        "rm" => rm(engine, &project, cs, &req, &progress).await,
        "pause" | "unpause" => {
            let freeze = op == "pause";
            let want = if freeze {
                Status::Running
            } else {
                Status::Paused
            };
            let targets: Vec<_> = cs.into_iter().filter(|c| c.status() == want).collect();
            let verb = if freeze { "Paused" } else { "Unpaused" };
            each(&targets, |c| {
                let progress = &progress;
                async move {
                    ops::pause(engine, &c, freeze).await?;
                    progress.line(format!("Container {}  {verb}", c.name)).await;
                    Ok(())
                }
            })
            .await
        }
        "kill" => {
            let s = req.signal.as_deref().unwrap_or("SIGKILL");
            let sig = runtime::container::parse_signal(s)
                .ok_or_else(|| EngineError::BadRequest(format!("invalid signal {s:?}")))?;
            let running: Vec<_> = cs.into_iter().filter(|c| c.pidfd().is_some()).collect();
            each(&running, |c| {
                let progress = &progress;
                async move {
                    ops::kill(engine, &c, sig).await?;
                    progress.line(format!("Container {}  Killed", c.name)).await;
                    Ok(())
                }
            })
            .await
        }
        _ => Err(EngineError::NotFound(format!(
            "no such project operation: {op}"
        ))),
    }
}

/// `POST /projects/{name}/{op}` for the operations of [`OPS`].
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    name: &str,
    op: &str,
) -> Result<Response<Body>, EngineError> {
    let name = name.to_string();
    match op {
        "run" => {
            let body: oneoff::RunRequest = body_json(req).await?;
            if body.project.name != name {
                return Err(EngineError::BadRequest(format!(
                    "project name mismatch: {} vs {name}",
                    body.project.name
                )));
            }
            let (tx, mut rx) = mpsc::channel(64);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let created = oneoff::run(&engine, body, &Progress::new(tx)).await;
            let _ = drain.await;
            Ok(json(StatusCode::CREATED, &created?))
        }
        "select" | "top" => {
            let body: OpRequest = body_json(req).await?;
            let project = project_of(&engine, &name, body.project.clone());
            let cs = select(&engine, &project, &body)?;
            if op == "top" {
                let tops: Vec<Top> = cs
                    .iter()
                    .filter(|c| c.pidfd().is_some())
                    .map(|c| top(&engine, c))
                    .collect();
                return Ok(json(StatusCode::OK, &tops));
            }
            let infos: Vec<ContainerInfo> = cs.iter().map(|c| c.info()).collect();
            Ok(json(StatusCode::OK, &infos))
        }
        _ => {
            let body: OpRequest = body_json(req).await?;
            let op = op.to_string();
            Ok(streamed(move |tx| async move {
                operate(&engine, &name, &op, body, tx).await
            }))
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times: USER_HZ, fixed at 100 by the kernel ABI.
const USER_HZ: u64 = 100;

/// The processes of a running container, as `ps -ef` shows them (host pids).
fn top(engine: &Engine, c: &Container) -> Top {
    let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];
    let mut pids = engine.runtime.cgroup(&c.id).pids().unwrap_or_default();
    pids.sort_unstable();
    let boot = boot_time();
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    Top {
        name: c.name.clone(),
        titles: titles.iter().map(|t| t.to_string()).collect(),
        processes: pids
            .into_iter()
            .filter_map(|pid| process(pid, boot, uptime))
            .collect(),
    }
}

fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One `ps -ef` row of a host pid; `None` when it has exited meanwhile.
fn process(pid: i32, boot: u64, uptime: f64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, after) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields after the comm: state is index 0, ppid 1, utime 11, stime 12, starttime 19.
    let ppid = num(1);
    let cpu = (num(11) + num(12)) / USER_HZ;
    let started = num(19) / USER_HZ;
    let alive = (uptime as u64).saturating_sub(started).max(1);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let stime = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(boot + started),
    )
    .to_string();
    Some(vec![
        uid,
        pid.to_string(),
        ppid.to_string(),
        (cpu * 100 / alive).to_string(),
        stime.get(11..16).unwrap_or("?").to_string(),
        "?".into(),
        format!("{:02}:{:02}:{:02}", cpu / 3600, cpu / 60 % 60, cpu % 60),
        if cmd.is_empty() {
            format!("[{comm}]")
        } else {
            cmd.join(" ")
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_row_reads_proc() {
        let me = std::process::id() as i32;
        let row = process(me, boot_time(), 1e9).unwrap();
        assert_eq!(row.len(), 8);
        assert_eq!(row[1], me.to_string());
        assert_eq!(row[2], std::os::unix::process::parent_id().to_string());
        assert_eq!(row[4].len(), 5, "STIME is HH:MM: {row:?}");
        assert!(!row[7].is_empty(), "{row:?}");
        assert!(process(i32::MAX, 0, 0.0).is_none(), "a gone pid has no row");
        assert!(boot_time() > 0);
    }
}
