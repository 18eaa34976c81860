//! The engine: the long-running daemon that owns every piece of state of one berth root.
//!
//! # Layout
//!
//! - [`server`]: `run(listener, engine, shutdown)`: HTTP/1.1 over a unix socket, graceful
//!   shutdown, one task per connection.
//! - [`routes`]: maps requests to engine operations and errors to status codes.
//! - [`containers`]: container lifecycle operations and exit monitoring (pidfds).
//! - [`images`]: image store operations.
//! - [`networks`]: the engine's netd handle, network operations and the network part of a
//!   container's lifecycle.
//! - [`record`]: a container's persisted record and its in-memory handle.
//! - [`resolver`]: a container's own `dns`, `dns_search`, `dns_opt` and `extra_hosts` (pure).
//! - [`projects`]: compose projects: desired and observed state, `up`, `down`, `scale`.
//! - [`project_ops`]: start/stop/restart/pause/unpause/kill/rm/create/top of a project's
//!   containers, selected by service and replica.
//! - [`oneoff`]: containers created without starting them (`run`'s one-offs, `create`).
//! - [`translate`]: a service replica as a container request (pure).
//! - [`executor`]: runs a plan with the parallelism its dependencies allow.
//! - [`health`]: health checks run inside containers on their interval.
//! - [`restart`]: restart policies with capped exponential backoff.
//! - [`volumes`]: named volumes.
//! - [`events`]: the event bus (container lifecycle events) behind `GET /events`.
//! - [`stats`]: a container's resource usage (cgroup and network namespace).
//! - [`copy`], [`copy_routes`]: `cp` as tar streams, paths resolved inside the container.
//!
//! State on disk is the truth: `<root>/containers/<id>/{spec.json,state.json}` are written
//! atomically, and a restarted engine finds every container (running ones are re-adopted through
//! a pidfd of their init, checked against its start time).

pub mod containers;
pub mod copy;
pub mod copy_routes;
pub mod events;
pub mod executor;
pub mod health;
pub mod image_build;
pub mod images;
pub mod networks;
pub mod oneoff;
pub mod project_ops;
pub mod project_routes;
pub mod projects;
pub mod record;
pub mod resolver;
pub mod restart;
pub mod routes;
pub mod server;
pub mod stats;
pub mod translate;
pub mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use runtime::container::Runtime;
use runtime::image::ImageStore;
use sha2::{Digest, Sha256};

use crate::api::Status;
use record::Container;

/// Errors of engine operations, mapped to HTTP statuses by [`routes`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Runtime(#[from] runtime::container::RuntimeError),
    #[error(transparent)]
    Image(#[from] runtime::image::ImageError),
    #[error(transparent)]
    Build(#[from] runtime::image::BuildError),
    #[error(transparent)]
    Network(#[from] networks::NetworkError),
    #[error("{0}")]
    Internal(String),
}

impl From<Vec<runtime::container::RuntimeError>> for EngineError {
    fn from(v: Vec<runtime::container::RuntimeError>) -> Self {
        EngineError::Internal(
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// The engine of one root.
pub struct Engine {
    pub root: PathBuf,
    pub runtime: Runtime,
    pub images: ImageStore,
    /// The network layer (netd under `<root>/net`).
    pub net: networks::NetLayer,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    project_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes the restart loop when a container exits.
    pub exited: tokio::sync::Notify,
    /// Container lifecycle events.
    pub events: events::EventBus,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("root", &self.root).finish()
    }
}

/// A short, stable id of a root path, used to keep cgroups and host resources of two roots apart.
pub fn root_id(root: &Path) -> String {
    let canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(canon.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

impl Engine {
    /// Opens the engine state of `root`, re-adopting containers that still run.
    pub async fn open(root: &Path) -> Result<Arc<Engine>, EngineError> {
        let root = root.to_path_buf();
        let rid = root_id(&root);
        let runtime = Runtime::new(&root.join("containers"), &format!("berth/{rid}"))?;
        let images = ImageStore::open(&root.join("images"))?;
        let net = networks::NetLayer::open(&root, &rid).await;
        let engine = Arc::new(Engine {
            root,
            runtime,
            images,
            net,
            containers: Mutex::new(BTreeMap::new()),
            project_locks: Mutex::new(BTreeMap::new()),
            exited: tokio::sync::Notify::new(),
            events: events::EventBus::default(),
        });
        engine.runtime.empty_trash();
        containers::load_all(&engine).await;
        let live: Vec<String> = engine
            .all()
            .iter()
            .filter(|c| matches!(c.status(), Status::Running | Status::Paused))
            .map(|c| c.id.clone())
            .collect();
        networks::reconcile(&engine, &live).await;
        Ok(engine)
    }

    /// Stops what the engine runs besides containers (DNS servers, port reservations); the
    /// containers and their networks keep running.
    pub async fn shutdown(&self) {
        networks::shutdown(self).await;
    }

    /// Serialises `up`/`down`/`scale` of one project.
    pub async fn project_lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .project_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// All containers, by id.
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a container by full id, unique id prefix or name.
    pub fn find(&self, key: &str) -> Result<Arc<Container>, EngineError> {
        let map = self.lock();
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let key = key.trim_start_matches('/');
        if let Some(c) = map.values().find(|c| c.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = map.values().filter(|c| c.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if key.len() >= 3 => Ok((*one).clone()),
            [] | [_] => Err(EngineError::NotFound(format!("no such container: {key}"))),
            _ => Err(EngineError::BadRequest(format!(
                "container id prefix {key} is ambiguous; give more characters or the name"
            ))),
        }
    }

    fn insert(&self, c: Arc<Container>) -> Result<(), EngineError> {
        let mut map = self.lock();
        if map.values().any(|o| o.name == c.name) {
            return Err(EngineError::Conflict(format!(
                "the container name {:?} is already in use; remove that container or choose another name",
                c.name
            )));
        }
        map.insert(c.id.clone(), c);
        Ok(())
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether a container uses the image `id`.
    pub fn image_in_use(&self, image_id: &str) -> bool {
        self.lock().values().any(|c| c.spec.image_id == image_id)
    }
}
