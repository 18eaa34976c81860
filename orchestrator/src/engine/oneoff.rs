//! Containers of a project created without starting them: the one-off container of `run`
//! (`PROJECT-SERVICE-run-<id>`, labelled one-off, with the service's config, networks and
//! volumes) and the replicas of `create`. Both make sure the networks, volumes and mount
//! sources they need exist first.

use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::executor::{self, Progress};
use super::translate::{self, CONFIG_HASH, ONEOFF};
use super::{containers as ops, volumes, Engine, EngineError};
use crate::api::Created;
use crate::compose::{MountType, Project, Service};
use crate::planner::{Action, Plan, Step};

/// `POST /projects/{name}/run`: create a one-off container of `service` (not started).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub project: Project,
    pub service: String,
    /// Replaces the service's command when not empty.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Replaces the service's entrypoint (empty: none).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `K=V` added to the service's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Ports to publish (the service's own only with `service_ports`).
    #[serde(default)]
    pub ports: Vec<netd::PortSpec>,
    #[serde(default)]
    pub service_ports: bool,
    #[serde(default)]
    pub name: Option<String>,
    /// Remove the container when it exits.
    #[serde(default)]
    pub rm: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub workdir: Option<String>,
}

fn service<'a>(project: &'a Project, name: &str) -> Result<&'a Service, EngineError> {
    project.services.get(name).ok_or_else(|| {
        let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
        EngineError::BadRequest(format!(
            "no such service: {name}; the services of project {} are: {}",
            project.name,
            known.join(", ")
        ))
    })
}

/// Creates the networks and named volumes `svc` uses that do not exist yet.
async fn ensure_infra(
    engine: &Arc<Engine>,
    project: &Arc<Project>,
    svc: &Service,
    progress: &Progress,
) -> Result<(), EngineError> {
    let existing: Vec<String> = match engine.net.get().await {
        Ok(netd) => netd.list().await.into_iter().map(|n| n.name).collect(),
        Err(_) => Vec::new(),
    };
    let vols: Vec<String> = volumes::list(&engine.root)
        .into_iter()
        .map(|v| v.name)
        .collect();
    let mut steps = Vec::new();
    for key in svc.networks.keys() {
        if let Some(n) = project.networks.get(key) {
            if !n.external && !existing.contains(&n.name) {
                steps.push(Action::CreateNetwork {
                    network: n.name.clone(),
                });
            }
        }
    }
    for m in svc.volumes.iter().filter(|m| m.kind == MountType::Volume) {
        let Some(v) = m.source.as_ref().and_then(|k| project.volumes.get(k)) else {
            continue;
        };
        if !v.external && !vols.contains(&v.name) {
            steps.push(Action::CreateVolume {
                volume: v.name.clone(),
            });
        }
    }
    steps.dedup();
    let plan = Plan {
        steps: steps
            .into_iter()
            .map(|action| Step {
                action,
                after: Vec::new(),
            })
            .collect(),
    };
    executor::run(engine, project, plan, 0, progress).await
}

/// Makes what the mounts of a container of `service` named `cname` need: missing bind sources
/// (unless `create_host_path: false`), named and anonymous volumes, and an empty new volume
/// filled with the image's content at its target (as the executor does for `up`).
pub async fn prepare_mounts(
    engine: &Arc<Engine>,
    project: &Project,
    service: &str,
    svc: &Service,
    cname: &str,
    image: &str,
) -> Result<(), EngineError> {
    let layers = {
        let e = engine.clone();
        let r = image.to_string();
        ops::blocking(move || Ok(e.images.get(&r)?.layers)).await?
    };
    for m in &svc.volumes {
        if m.kind == MountType::Bind && m.bind.as_ref().is_none_or(|b| b.create_host_path) {
            if let Some(src) = m.source.as_deref().filter(|s| !Path::new(s).exists()) {
                std::fs::create_dir_all(src).map_err(|e| {
                    EngineError::BadRequest(format!(
                        "service {service}: create bind source {src}: {e}"
                    ))
                })?;
            }
        }
        if m.kind != MountType::Volume {
            continue;
        }
        let name = match &m.source {
            Some(key) => project
                .volumes
                .get(key)
                .map(|v| v.name.clone())
                .unwrap_or_else(|| key.clone()),
            None => format!(
                "{cname}-anon-{}",
                m.target.trim_matches('/').replace('/', "_")
            ),
        };
        volumes::create(
            &engine.root,
            &name,
            translate::project_labels(&project.name),
        )?;
        if !m.volume.as_ref().is_some_and(|o| o.nocopy) {
            volumes::populate(&engine.root, &name, &layers, &m.target)?;
        }
    }
    Ok(())
}

/// Creates replica `number` of `service` without starting it; returns its id.
pub async fn create_replica(
    engine: &Arc<Engine>,
    project: &Project,
    service: &str,
    number: u32,
    progress: &Progress,
) -> Result<String, EngineError> {
    let svc = self::service(project, service)?;
    let req = translate::create_request(&engine.root, project, service, svc, number);
    let name = req.name.clone().unwrap_or_default();
    progress.line(format!("Container {name}  Creating")).await;
    prepare_mounts(engine, project, service, svc, &name, &req.image).await?;
    let created = ops::create(engine, req).await?;
    progress.line(format!("Container {name}  Created")).await;
    Ok(created.id)
}

/// `run`: creates the one-off container (its networks and volumes first); the caller starts
/// it, attached or not.
#[instrument(skip_all, fields(project = %req.project.name, service = %req.service))]
pub async fn run(
    engine: &Arc<Engine>,
    req: RunRequest,
    progress: &Progress,
) -> Result<Created, EngineError> {
    let project = Arc::new(req.project);
    let base = service(&project, &req.service)?;
    ensure_infra(engine, &project, base, progress).await?;
    super::projects::write_generated(engine, &project)?;
    let name = match req.name {
        Some(n) => n,
        None => {
            let id: [u8; 6] = rand::rng().random();
            format!("{}-{}-run-{}", project.name, req.service, hex::encode(id))
        }
    };
    // The one-off is the service under another container name: hostname, anonymous volumes
    // and DNS registration follow the name.
    let mut svc = base.clone();
    svc.container_name = Some(name.clone());
    let mut c = translate::create_request(&engine.root, &project, &req.service, &svc, 1);
    c.labels.insert(ONEOFF.into(), "True".into());
    c.labels.insert(CONFIG_HASH.into(), base.config_hash());
    if !req.cmd.is_empty() {
        c.cmd = req.cmd;
    }
    if req.entrypoint.is_some() {
        c.entrypoint = req.entrypoint;
    }
    c.env.extend(req.env);
    if !req.service_ports {
        c.ports.clear();
    }
    c.ports.extend(req.ports);
    for ep in &mut c.networks {
        ep.service = None;
        ep.aliases.clear();
    }
    c.restart = "no".into();
    c.auto_remove = req.rm;
    c.user = req.user.or(c.user);
    c.working_dir = req.workdir.or(c.working_dir);
    prepare_mounts(engine, &project, &req.service, &svc, &name, &c.image).await?;
    let auto_remove = c.auto_remove;
    let mounts = c.mounts.clone();
    let created = ops::create(engine, c).await?;
    if auto_remove {
        remove_volumes_when_gone(engine, &created.id, mounts);
    }
    Ok(created)
}

/// `run --rm`: the one-off's anonymous volumes go with it, once it has been auto-removed.
fn remove_volumes_when_gone(engine: &Arc<Engine>, id: &str, mounts: Vec<crate::api::Mount>) {
    let Ok(c) = engine.find(id) else {
        return;
    };
    let mut exits = c.exits.subscribe();
    drop(c);
    let (engine, id) = (engine.clone(), id.to_string());
    tokio::spawn(async move {
        // Ends when the container exits and is gone, or when its record is dropped.
        while exits.changed().await.is_ok() {
            if engine.find(&id).is_err() {
                break;
            }
        }
        if engine.find(&id).is_ok() {
            return;
        }
        for v in anonymous_volumes(&engine.root, &mounts) {
            if let Err(e) = volumes::remove(&engine.root, &v) {
                tracing::warn!(container = %id, volume = %v, error = %e, "remove anonymous volume");
            }
        }
    });
}

/// Anonymous volumes of a container (`rm -v`): the volume names of its mounts made by berth
/// for unnamed volumes.
pub fn anonymous_volumes(root: &Path, mounts: &[crate::api::Mount]) -> Vec<String> {
    let base = root.join("volumes");
    mounts
        .iter()
        .filter_map(|m| match &m.kind {
            crate::api::MountKind::Bind { source } => source
                .strip_prefix(&base)
                .ok()
                .and_then(|rest| rest.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
            _ => None,
        })
        .filter(|v| v.contains("-anon-"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::api::{Mount, MountKind};

    #[test]
    fn anonymous_volumes_are_the_berth_made_unnamed_ones() {
        let root = Path::new("/r");
        let bind = |s: &str| Mount {
            destination: "/x".into(),
            kind: MountKind::Bind {
                source: PathBuf::from(s),
            },
            read_only: false,
        };
        let mounts = vec![
            bind("/r/volumes/p-api-1-anon-data/_data"),
            bind("/r/volumes/shared/_data"),
            bind("/elsewhere/p-anon-x"),
            Mount {
                destination: "/t".into(),
                kind: MountKind::Tmpfs {
                    size: None,
                    mode: None,
                },
                read_only: false,
            },
        ];
        assert_eq!(
            anonymous_volumes(root, &mounts),
            vec!["p-api-1-anon-data".to_string()]
        );
    }
}
