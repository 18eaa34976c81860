//! Compose projects in the engine: the desired state (`<root>/projects/<name>/project.json`),
//! the observed state (containers, networks and volumes labelled with the project), and `up`,
//! `down` and `scale`, which plan with [`crate::planner`] and run the plan with
//! [`super::executor`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, instrument};

use super::executor::{self, Progress};
use super::record::Container;
use super::translate::{self, NUMBER, ONEOFF, PROJECT, SERVICE};
use super::{volumes, Engine, EngineError};
use crate::api::{ContainerInfo, Status};
use crate::compose::{Condition, Project, RestartPolicy};
use crate::graph::ServiceGraph;
use crate::planner::{self, Desired, DesiredService, Observed, ObservedContainer, RunState};

/// Flags of `up`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UpFlags {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    pub no_deps: bool,
    pub services: Vec<String>,
    pub scale: BTreeMap<String, u32>,
    pub dry_run: bool,
    /// Wait until every service is running (healthy where it has a check) or completed.
    pub wait: bool,
    pub wait_timeout: Option<u64>,
    /// Parallel operations at most (0: unlimited).
    pub parallel: usize,
    /// Build every service with `build:` first (`up --build`).
    pub build: bool,
    /// Build nothing, not even missing images (`up --no-build`).
    pub no_build: bool,
    /// `always`: pull every service image first; `missing`: those not in the store; `never`
    /// or unset: use the store as it is.
    pub pull: Option<String>,
}

/// `POST /projects/{name}/up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpRequest {
    pub project: Project,
    #[serde(default)]
    pub flags: UpFlags,
}

/// `POST /projects/{name}/down`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DownRequest {
    /// The project as loaded now; the stored one when absent.
    pub project: Option<Project>,
    pub volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<u64>,
}

/// One project in `ls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub name: String,
    pub status: String,
    pub working_dir: PathBuf,
}

fn project_dir(engine: &Engine, name: &str) -> PathBuf {
    engine.root.join("projects").join(name)
}

/// The stored desired state of a project.
pub fn stored(engine: &Engine, name: &str) -> Result<Project, EngineError> {
    runtime::fsutil::read_json(&project_dir(engine, name).join("project.json")).map_err(|_| {
        EngineError::NotFound(format!("no such project: {name} (run `berth up` first)"))
    })
}

pub(super) fn store(engine: &Engine, project: &Project) -> Result<(), EngineError> {
    let dir = project_dir(engine, &project.name);
    std::fs::create_dir_all(&dir).map_err(|e| {
        EngineError::Internal(format!(
            "project {}: create {}: {e}",
            project.name,
            dir.display()
        ))
    })?;
    runtime::fsutil::write_json(&dir.join("project.json"), project)
        .map_err(|e| EngineError::Internal(e.to_string()))
}

/// The containers of a project (not one-off ones), by service and replica number.
pub fn containers(engine: &Engine, project: &str) -> Vec<Arc<Container>> {
    let mut out: Vec<Arc<Container>> = engine
        .all()
        .into_iter()
        .filter(|c| c.spec.labels.get(PROJECT).map(String::as_str) == Some(project))
        .filter(|c| c.spec.labels.get(ONEOFF).map(String::as_str) != Some("True"))
        .collect();
    out.sort_by_key(|c| {
        (
            c.spec.labels.get(SERVICE).cloned().unwrap_or_default(),
            number(c),
        )
    });
    out
}

/// Replica number of a project container.
pub fn number(c: &Container) -> u32 {
    c.spec
        .labels
        .get(NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn run_state(c: &Container) -> RunState {
    let st = c.state();
    match st.status {
        Status::Created => RunState::Created,
        Status::Running => RunState::Running,
        Status::Paused => RunState::Paused,
        Status::Exited => RunState::Exited(st.exit_code.unwrap_or(0)),
    }
}

pub(super) async fn observe(engine: &Engine, project: &str) -> Observed {
    let labelled = |labels: &BTreeMap<String, String>| {
        labels.get(PROJECT).map(String::as_str) == Some(project)
    };
    let mut networks = BTreeSet::new();
    if let Ok(netd) = engine.net.get().await {
        for n in netd.list().await {
            if labelled(&n.labels) {
                networks.insert(n.name);
            }
        }
    }
    Observed {
        containers: containers(engine, project)
            .iter()
            .map(|c| ObservedContainer {
                name: c.name.clone(),
                service: c.spec.labels.get(SERVICE).cloned().unwrap_or_default(),
                number: number(c),
                config_hash: super::image_build::observed_hash(
                    engine,
                    &c.spec,
                    c.spec
                        .labels
                        .get(translate::CONFIG_HASH)
                        .cloned()
                        .unwrap_or_default(),
                ),
                state: run_state(c),
            })
            .collect(),
        networks,
        volumes: volumes::list(&engine.root)
            .into_iter()
            .filter(|v| labelled(&v.labels))
            .map(|v| v.name)
            .collect(),
    }
}

/// The planner's view of a project.
pub fn desired(project: &Project) -> Result<Desired, EngineError> {
    let graph = ServiceGraph::new(project).map_err(|e| EngineError::BadRequest(e.to_string()))?;
    let mut services = Vec::new();
    for level in graph.start_order() {
        for name in &level {
            let Some(svc) = project.services.get(name.as_str()) else {
                continue;
            };
            let one_shot = svc.restart == RestartPolicy::No
                && project.services.values().any(|o| {
                    o.depends_on
                        .get(name.as_str())
                        .is_some_and(|d| d.condition == Condition::ServiceCompletedSuccessfully)
                });
            services.push(DesiredService {
                name: name.clone(),
                replicas: svc.replicas(),
                config_hash: svc.config_hash(),
                depends_on: svc
                    .depends_on
                    .iter()
                    .filter(|(d, _)| project.services.contains_key(d.as_str()))
                    .map(|(d, o)| (d.clone(), o.condition, o.restart))
                    .collect(),
                one_shot,
            });
        }
    }
    let used_networks: BTreeSet<&String> = project
        .services
        .values()
        .flat_map(|s| s.networks.keys())
        .collect();
    Ok(Desired {
        services,
        networks: project
            .networks
            .iter()
            .filter(|(k, n)| !n.external && used_networks.contains(k))
            .map(|(_, n)| n.name.clone())
            .collect(),
        volumes: project
            .volumes
            .values()
            .filter(|v| !v.external)
            .map(|v| v.name.clone())
            .collect(),
    })
}

/// `up --pull`: the images of `services` that name one (built-only services are left to the
/// build), all of them (`always`) or those the store lacks.
async fn pull_services(
    engine: &Arc<Engine>,
    project: &Project,
    services: &BTreeSet<String>,
    always: bool,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    let mut refs = BTreeSet::new();
    for (name, svc) in &project.services {
        if (services.is_empty() || services.contains(name)) && svc.build.is_none() {
            if let Some(image) = &svc.image {
                refs.insert(image.clone());
            }
        }
    }
    for image in refs {
        if !always && engine.images.get(&image).is_ok() {
            continue;
        }
        let _ = tx
            .send(crate::api::frame(
                crate::api::STDOUT,
                format!("Image {image}  Pulling\n").as_bytes(),
            ))
            .await;
        super::images::pull(engine, image, tx.clone()).await?;
    }
    Ok(())
}

fn with_dependencies(project: &Project, flags: &UpFlags) -> Result<BTreeSet<String>, EngineError> {
    let mut out = BTreeSet::new();
    for s in &flags.services {
        if !project.services.contains_key(s) {
            let known: Vec<&String> = project.services.keys().collect();
            return Err(EngineError::BadRequest(format!(
                "no such service: {s} (services: {known:?})"
            )));
        }
        out.insert(s.clone());
        if !flags.no_deps {
            let graph =
                ServiceGraph::new(project).map_err(|e| EngineError::BadRequest(e.to_string()))?;
            out.extend(
                graph
                    .transitive_deps(s)
                    .map_err(|e| EngineError::BadRequest(e.to_string()))?,
            );
        }
    }
    Ok(out)
}

/// Writes the files of secrets and configs that come from content or the environment.
pub(super) fn write_generated(engine: &Engine, project: &Project) -> Result<(), EngineError> {
    let mut files: Vec<(&str, &str, Option<String>)> = Vec::new();
    for (k, s) in &project.secrets {
        if s.file.is_none() {
            files.push((
                "secrets",
                k,
                s.environment.as_ref().and_then(|e| std::env::var(e).ok()),
            ));
        }
    }
    for (k, c) in &project.configs {
        if c.file.is_none() {
            let content = c
                .content
                .clone()
                .or_else(|| c.environment.as_ref().and_then(|e| std::env::var(e).ok()));
            files.push(("configs", k, content));
        }
    }
    for (kind, key, content) in files {
        let path = translate::generated_file(&engine.root, &project.name, kind, key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::Internal(format!("{kind} {key}: {e}")))?;
        }
        runtime::fsutil::write_atomic(&path, content.unwrap_or_default().as_bytes())
            .map_err(|e| EngineError::Internal(format!("{kind} {key}: {e}")))?;
    }
    Ok(())
}

/// `up`: converge the project to `req.project`, streaming progress lines.
#[instrument(skip_all, fields(project = %req.project.name))]
pub async fn up(
    engine: &Arc<Engine>,
    req: UpRequest,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    let mut project = req.project;
    let flags = req.flags;
    for (svc, n) in &flags.scale {
        match project.services.get_mut(svc) {
            Some(s) => s.deploy.replicas = *n,
            None => {
                return Err(EngineError::BadRequest(format!(
                    "--scale {svc}={n}: no such service {svc}"
                )))
            }
        }
    }
    if let Some(policy) = flags.pull.as_deref().filter(|p| *p != "never") {
        if !flags.dry_run {
            let services = with_dependencies(&project, &flags)?;
            pull_services(engine, &project, &services, policy == "always", &tx).await?;
        }
    }
    if !flags.no_build && !flags.dry_run {
        let services = with_dependencies(&project, &flags)?;
        super::image_build::build_services(engine, &project, &services, flags.build, &tx).await?;
    }
    let desired = desired(&project)?;
    let opts = planner::UpOptions {
        force_recreate: flags.force_recreate,
        no_recreate: flags.no_recreate,
        remove_orphans: flags.remove_orphans,
        services: with_dependencies(&project, &flags)?,
    };
    let progress = Progress::new(tx);
    let _guard = engine.project_lock(&project.name).await;
    let plan = planner::plan_up(&desired, &observe(engine, &project.name).await, &opts);
    if flags.dry_run {
        for (i, s) in plan.steps.iter().enumerate() {
            progress
                .line(format!(
                    "DRY-RUN step {i}: {} (after {:?})",
                    s.action, s.after
                ))
                .await;
        }
        return Ok(());
    }
    store(engine, &project)?;
    write_generated(engine, &project)?;
    let project = Arc::new(project);
    executor::run(engine, &project, plan, flags.parallel, &progress).await?;
    if flags.wait {
        let timeout = std::time::Duration::from_secs(flags.wait_timeout.unwrap_or(600));
        executor::wait_all(engine, &project, &desired, timeout, &progress).await?;
    }
    info!(project = %project.name, "up done");
    Ok(())
}

/// `down`: remove the project's one-off containers, then its containers in reverse dependency
/// order, its networks and, with `volumes`, its volumes. Safe to run twice.
#[instrument(skip(engine, req, tx))]
pub async fn down(
    engine: &Arc<Engine>,
    name: &str,
    req: DownRequest,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    let progress = Progress::new(tx);
    let project = match req.project {
        Some(p) => p,
        None => stored(engine, name).unwrap_or_else(|_| Project {
            name: name.to_string(),
            ..Project::default()
        }),
    };
    let _guard = engine.project_lock(name).await;
    super::project_ops::remove_oneoffs(engine, name, req.timeout, &progress).await?;
    let desired = desired(&project)?;
    let plan = planner::plan_down(
        &desired,
        &observe(engine, name).await,
        &planner::DownOptions {
            volumes: req.volumes,
            timeout: req.timeout,
        },
    );
    let project = Arc::new(project);
    executor::run(engine, &project, plan, 0, &progress).await?;
    let _ = std::fs::remove_dir_all(project_dir(engine, name));
    Ok(())
}

/// `scale`: change replica counts of the stored project and converge.
pub async fn scale(
    engine: &Arc<Engine>,
    name: &str,
    scale: BTreeMap<String, u32>,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    let project = stored(engine, name)?;
    let flags = UpFlags {
        scale,
        no_recreate: true,
        ..UpFlags::default()
    };
    up(engine, UpRequest { project, flags }, tx).await
}

/// Containers of a project for `ps`.
pub async fn ps(engine: &Engine, name: &str) -> Vec<ContainerInfo> {
    let mut out = Vec::new();
    for c in containers(engine, name) {
        let mut info = c.info();
        info.network = super::networks::settings(engine, &c).await.ok();
        out.push(info);
    }
    out
}

/// Every project this engine has containers or a stored state for.
pub fn list(engine: &Engine) -> Vec<ProjectSummary> {
    let mut names: BTreeSet<String> = engine
        .all()
        .iter()
        .filter_map(|c| c.spec.labels.get(PROJECT).cloned())
        .collect();
    for e in std::fs::read_dir(engine.root.join("projects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        names.insert(e.file_name().to_string_lossy().into_owned());
    }
    names
        .into_iter()
        .map(|name| {
            let cs = containers(engine, &name);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for c in &cs {
                *counts.entry(c.status().to_string()).or_default() += 1;
            }
            let status = if counts.is_empty() {
                "empty".to_string()
            } else {
                counts
                    .iter()
                    .map(|(s, n)| format!("{s}({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let working_dir = stored(engine, &name)
                .map(|p| p.working_dir)
                .unwrap_or_default();
            ProjectSummary {
                name,
                status,
                working_dir,
            }
        })
        .collect()
}
