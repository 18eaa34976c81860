//! Engine-side network operations: the engine's [`Netd`] handle, the network API
//! (`/networks/...`) and the network part of a container's lifecycle.
//!
//! - Create: which networks a container joins and which ports it publishes, resolved against
//!   netd and persisted as `<container dir>/network.json`. A container that names no network
//!   joins [`DEFAULT_NETWORK`] (Docker's default bridge), created on first use.
//! - Start ([`launch`]): spawn the init, attach its network namespace, write the container's
//!   `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` (the init bind-mounts them), resume;
//!   a failure after the attach detaches again.
//! - Exit and remove ([`release`]): stop answering DNS for it, detach.
//!
//! `--network none` never touches netd (the start benchmark runs through it), and neither does
//! `--network host`, which only gets the host's resolver files.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use netd::{Attachment, EndpointSpec, Netd, NetdConfig, NetdError, NetworkSpec, PortSpec};
use runtime::container::Running;
use runtime::spec::NetworkMode;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tracing::{info, instrument, warn};

use super::containers::blocking;
use super::record::Container;
use super::resolver::Resolver;
use super::{Engine, EngineError};
use crate::api::{CreateContainer, NetworkSettings};

/// The network of containers that name none, created on first use.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Label marking the network berth created by itself.
const DEFAULT_LABEL: &str = "berth.default";

/// The container's network request, in its directory.
pub const CONFIG_FILE: &str = "network.json";

/// Errors of the engine's network operations.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("open the network layer in {dir}")]
    Open {
        dir: PathBuf,
        #[source]
        source: Box<NetdError>,
    },
    #[error("invalid network request: {0}")]
    Invalid(String),
    #[error("container {id}: write {path}")]
    WriteFile {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("container {id}: network config")]
    Config {
        id: String,
        #[source]
        source: runtime::fsutil::FsError,
    },
    #[error(transparent)]
    Netd(#[from] NetdError),
}

impl NetworkError {
    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            NetworkError::Invalid(_) => StatusCode::BAD_REQUEST,
            NetworkError::Netd(e) => netd_status(e),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn netd_status(e: &NetdError) -> StatusCode {
    use netd::ipam::IpamError;
    match e {
        NetdError::NetworkNotFound(_) => StatusCode::NOT_FOUND,
        NetdError::NetworkExists(_)
        | NetdError::NetworkInUse { .. }
        | NetdError::AlreadyAttached { .. }
        | NetdError::Port(netd::ports::PortError::InUse { .. })
        | NetdError::Ipam {
            source: IpamError::AddressInUse { .. } | IpamError::Overlap { .. },
            ..
        } => StatusCode::CONFLICT,
        NetdError::InvalidNetwork { .. }
        | NetdError::InvalidEndpoint { .. }
        | NetdError::InvalidPorts { .. }
        | NetdError::Ipam { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<NetdError> for EngineError {
    fn from(e: NetdError) -> Self {
        EngineError::Network(NetworkError::Netd(e))
    }
}

/// The engine's network layer: netd under `<root>/net`, opened when first needed.
///
/// A root whose netd has state from before opens it with the engine (DNS servers, port
/// reservations and the containers still attached need it at once); any other root only when a
/// network is first used, so an engine that runs nothing but `--network none` containers never
/// starts it.
pub struct NetLayer {
    dir: PathBuf,
    root_id: String,
    netd: OnceCell<Netd>,
}

impl NetLayer {
    /// The layer of a root; opens netd now if the root has network state.
    pub async fn open(root: &Path, root_id: &str) -> NetLayer {
        let layer = NetLayer {
            dir: root.join("net"),
            root_id: root_id.to_string(),
            netd: OnceCell::new(),
        };
        if layer.dir.exists() {
            // Not fatal: `--network none` and `host` still work, and the next use retries.
            if let Err(e) = layer.get().await {
                warn!(error = %error_text(&e), "network layer not opened");
            }
        }
        layer
    }

    /// netd, opened on first use (a failed open is retried on the next use).
    pub async fn get(&self) -> Result<&Netd, NetworkError> {
        self.netd
            .get_or_try_init(|| async {
                let cfg = NetdConfig {
                    root_id: Some(self.root_id.clone()),
                    ..NetdConfig::default()
                };
                Netd::open(&self.dir, cfg).await
            })
            .await
            .map_err(|source| NetworkError::Open {
                dir: self.dir.clone(),
                source: Box::new(source),
            })
    }

    /// netd if it is open (nothing is attached otherwise).
    fn opened(&self) -> Option<&Netd> {
        self.netd.get()
    }

    /// Whether this root never had a network (listing them need not start netd).
    fn unused(&self) -> bool {
        self.opened().is_none() && !self.dir.exists()
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// What a container asked for: the networks it joins (the first with egress carries the
/// default route) and the ports it publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub endpoints: Vec<EndpointSpec>,
    pub ports: Vec<PortSpec>,
    #[serde(default, skip_serializing_if = "Resolver::is_empty")]
    pub resolver: Resolver,
}

/// The network mode and request of a new container named `name`; makes sure every network it
/// names exists (the default one is created on first use).
pub async fn plan(
    engine: &Engine,
    req: &CreateContainer,
    name: &str,
) -> Result<(NetworkMode, NetConfig), EngineError> {
    let resolver = Resolver::from_request(req).map_err(invalid)?;
    let mode = match req.network.as_str() {
        "none" => Some(NetworkMode::None),
        "host" => Some(NetworkMode::Host),
        _ => None,
    };
    if let Some(mode) = mode {
        if !req.networks.is_empty() {
            return Err(invalid(format!(
                "--network {} cannot be combined with other networks",
                req.network
            )));
        }
        if !req.ports.is_empty() {
            return Err(invalid(format!(
                "--network {} publishes no ports: {}",
                req.network,
                if mode == NetworkMode::Host {
                    "the container uses the host's ports directly"
                } else {
                    "the container has no network"
                }
            )));
        }
        return Ok((
            mode,
            NetConfig {
                resolver,
                ..NetConfig::default()
            },
        ));
    }
    let mut endpoints = req.networks.clone();
    match req.network.as_str() {
        "" | "default" => {}
        named => {
            if !endpoints.iter().any(|e| e.network == named) {
                endpoints.insert(
                    0,
                    EndpointSpec {
                        network: named.to_string(),
                        ..EndpointSpec::default()
                    },
                );
            }
        }
    }
    if endpoints.is_empty() {
        endpoints.push(EndpointSpec {
            network: DEFAULT_NETWORK.to_string(),
            ..EndpointSpec::default()
        });
    }
    let netd = engine.net.get().await?;
    for e in &mut endpoints {
        if matches!(e.network.as_str(), "none" | "host") {
            return Err(invalid(format!(
                "--network {} cannot be combined with other networks",
                e.network
            )));
        }
        e.container_name = name.to_string();
        e.dns_upstreams = resolver.dns.clone();
        if e.network == DEFAULT_NETWORK {
            ensure_default(netd).await?;
        } else {
            let net = netd.get(&e.network).await.map_err(|err| match err {
                NetdError::NetworkNotFound(n) => NetdError::NetworkNotFound(format!(
                    "{n} (create it with `berth network create {n}`)"
                )),
                other => other,
            })?;
            e.network = net.name;
        }
    }
    Ok((
        NetworkMode::Private,
        NetConfig {
            endpoints,
            ports: req.ports.clone(),
            resolver,
        },
    ))
}

fn invalid(msg: String) -> EngineError {
    EngineError::Network(NetworkError::Invalid(msg))
}

/// Creates [`DEFAULT_NETWORK`] unless it exists.
async fn ensure_default(netd: &Netd) -> Result<(), NetdError> {
    match netd.get(DEFAULT_NETWORK).await {
        Ok(_) => return Ok(()),
        Err(NetdError::NetworkNotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let spec = NetworkSpec {
        name: DEFAULT_NETWORK.to_string(),
        labels: BTreeMap::from([(DEFAULT_LABEL.to_string(), "true".to_string())]),
        ..NetworkSpec::default()
    };
    match netd.create_network(spec).await {
        Ok(net) => {
            info!(subnet = %net.subnet, "default network created");
            Ok(())
        }
        // Another container's create made it meanwhile.
        Err(NetdError::NetworkExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a container's network request in its directory (not fsynced: the create makes the
/// whole record durable at once).
pub fn save_config(id: &str, dir: &Path, cfg: &NetConfig) -> Result<(), EngineError> {
    if cfg.endpoints.is_empty() && cfg.resolver.is_empty() {
        return Ok(());
    }
    runtime::fsutil::write_json_with(&dir.join(CONFIG_FILE), cfg, false).map_err(|source| {
        EngineError::Network(NetworkError::Config {
            id: id.to_string(),
            source,
        })
    })
}

/// The network request of a container (empty when it has none).
fn load_config(c: &Container) -> Result<NetConfig, NetworkError> {
    let path = c.dir.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(NetConfig::default());
    }
    runtime::fsutil::read_json(&path).map_err(|source| NetworkError::Config {
        id: c.id.clone(),
        source,
    })
}

/// Starts a container's init, wires its network and lets it run.
#[instrument(skip(engine, c), fields(container = %c.id))]
pub async fn launch(engine: &Arc<Engine>, c: &Arc<Container>) -> Result<Running, EngineError> {
    let e = engine.clone();
    let spec = c.spec.clone();
    let cfg = load_config(c)?;
    match spec.network {
        NetworkMode::None if !cfg.resolver.is_empty() => write_isolated_files(c, &cfg.resolver)?,
        NetworkMode::Host => copy_host_files(c, &cfg.resolver)?,
        NetworkMode::None | NetworkMode::Private => {}
    }
    if cfg.endpoints.is_empty() {
        return blocking(move || Ok(e.runtime.spawn(&spec)?.resume()?)).await;
    }
    let netd = engine.net.get().await?;
    if cfg.endpoints.iter().any(|e| e.network == DEFAULT_NETWORK) {
        ensure_default(netd).await?;
    }
    // Endpoints of an earlier run whose exit went unnoticed would make the attach fail.
    detach(netd, &c.id).await;
    let starting = blocking(move || Ok(e.runtime.spawn(&spec)?)).await?;
    let attached = netd
        .attach(&c.id, &starting.netns(), &cfg.endpoints, &cfg.ports)
        .await
        .map_err(EngineError::from)
        .and_then(|a| write_etc_files(c, &a, &cfg.resolver).map_err(EngineError::Network));
    if let Err(err) = attached {
        blocking(move || {
            starting.abort();
            Ok(())
        })
        .await?;
        detach(netd, &c.id).await;
        return Err(err);
    }
    let resumed = blocking(move || Ok(starting.resume()?)).await;
    if resumed.is_err() {
        detach(netd, &c.id).await;
    }
    resumed
}

async fn detach(netd: &Netd, id: &str) {
    if let Err(e) = netd.detach(id).await {
        warn!(container = %id, error = %error_text(&e), "detach from networks");
    }
}

/// `/etc/resolv.conf`, `/etc/hosts` (with the hostname on the first address) and
/// `/etc/hostname` of an attached container, for its init to bind-mount.
fn write_etc_files(c: &Container, a: &Attachment, own: &Resolver) -> Result<(), NetworkError> {
    let hostname = &c.spec.hostname;
    let mut hosts = a.hosts.clone();
    if let Some(first) = a.endpoints.first() {
        let named = hosts
            .lines()
            .any(|l| l.split_whitespace().skip(1).any(|n| n == hostname));
        if !named {
            hosts.push_str(&format!("{}\t{hostname}\n", first.ipv4));
        }
    }
    let gateway = a.endpoints.first().map(|e| e.gateway);
    write_file(c, "resolv.conf", &own.resolv_conf(&a.resolv_conf, false))?;
    write_file(c, "hosts", &own.hosts(&hosts, gateway))?;
    write_file(c, "hostname", &format!("{hostname}\n"))
}

/// `--network none` with resolver settings of its own: the image's files are replaced by
/// localhost, the hostname and those settings.
fn write_isolated_files(c: &Container, own: &Resolver) -> Result<(), NetworkError> {
    let hosts = format!(
        "127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        c.spec.hostname
    );
    write_file(c, "hosts", &own.hosts(&hosts, None))?;
    write_file(c, "resolv.conf", &own.resolv_conf("", true))
}

/// The host's resolver files for a `--network host` container (Docker's behaviour), with the
/// container's own settings over them (`host-gateway` is the host itself: loopback).
fn copy_host_files(c: &Container, own: &Resolver) -> Result<(), NetworkError> {
    for name in ["resolv.conf", "hosts"] {
        let host = Path::new("/etc").join(name);
        match std::fs::read_to_string(&host) {
            Ok(text) if name == "hosts" => {
                write_file(c, name, &own.hosts(&text, Some(Ipv4Addr::LOCALHOST)))?
            }
            Ok(text) => write_file(c, name, &own.resolv_conf(&text, true))?,
            // A host without the file: the image's own stays in place.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(NetworkError::WriteFile {
                    id: c.id.clone(),
                    path: host,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Written in place, without fsync: regenerated at every start.
fn write_file(c: &Container, name: &str, text: &str) -> Result<(), NetworkError> {
    let path = c.dir.join(name);
    std::fs::write(&path, text).map_err(|source| NetworkError::WriteFile {
        id: c.id.clone(),
        path,
        source,
    })
}

/// Takes a container off its networks: DNS stops answering with its addresses at once, then
/// its endpoints and published ports go. Best effort (logged): the container is gone either way.
pub async fn release(engine: &Engine, c: &Container) {
    if c.spec.network != NetworkMode::Private {
        return;
    }
    let Some(netd) = engine.net.opened() else {
        return;
    };
    // The detach drops the DNS records first, then the links: one netd operation.
    detach(netd, &c.id).await;
}

/// Makes DNS answer with a started container's addresses.
pub async fn announce(engine: &Engine, c: &Container) {
    if c.spec.network != NetworkMode::Private {
        return;
    }
    if let Some(netd) = engine.net.opened() {
        if let Err(e) = netd.set_dns_enabled(&c.id, true).await {
            warn!(container = %c.id, error = %error_text(&e), "enable dns records");
        }
    }
}

/// The `network` section of a container's inspect output.
pub async fn settings(engine: &Engine, c: &Container) -> Result<NetworkSettings, EngineError> {
    let mode = match c.spec.network {
        NetworkMode::None => "none",
        NetworkMode::Host => "host",
        NetworkMode::Private => "bridge",
    };
    let cfg = load_config(c)?;
    let mut s = NetworkSettings {
        mode: mode.to_string(),
        networks: cfg.endpoints,
        ports: cfg.ports,
        ..NetworkSettings::default()
    };
    if let Some(netd) = engine.net.opened() {
        if let Some(a) = netd.attachment(&c.id).await {
            s.endpoints = a.endpoints;
            s.published = a.ports;
        }
    }
    Ok(s)
}

/// Detaches containers that died while the engine was away and deletes stale veths.
pub async fn reconcile(engine: &Engine, live: &[String]) {
    let Some(netd) = engine.net.opened() else {
        return;
    };
    match netd.reconcile(live).await {
        Ok(gone) if !gone.is_empty() => info!(containers = ?gone, "detached dead containers"),
        Ok(_) => {}
        Err(e) => warn!(error = %error_text(&e), "reconcile networks"),
    }
}

/// Stops the DNS servers and releases port reservations (links and rules stay for the
/// containers that keep running).
pub async fn shutdown(engine: &Engine) {
    if let Some(netd) = engine.net.opened() {
        netd.shutdown().await;
    }
}

/// `/networks/...`: list, create, inspect, remove, prune. Returns the answer's status and body.
pub async fn route(
    engine: &Engine,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
    query: &HashMap<String, String>,
) -> Result<(StatusCode, serde_json::Value), EngineError> {
    if engine.net.unused() && method == Method::GET && rest.is_empty() {
        return Ok((StatusCode::OK, serde_json::json!([])));
    }
    let netd = engine.net.get().await?;
    let ok = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| EngineError::Internal(format!("encode answer: {e}")))
    };
    match (method, rest) {
        (&Method::GET, []) => {
            let mut list = netd.list().await;
            if let Some(name) = query.get("name") {
                list.retain(|n| &n.name == name);
            }
            Ok((StatusCode::OK, ok(serde_json::to_value(list))?))
        }
        (&Method::POST, ["create"]) => {
            let spec: NetworkSpec = read_body(req).await?;
            let net = netd.create_network(spec).await?;
            Ok((StatusCode::CREATED, ok(serde_json::to_value(net))?))
        }
        (&Method::POST, ["prune"]) => {
            let removed = netd.prune().await?;
            Ok((StatusCode::OK, ok(serde_json::to_value(removed))?))
        }
        (&Method::GET, [name]) => {
            let net = netd.get(name).await?;
            Ok((StatusCode::OK, ok(serde_json::to_value(net))?))
        }
        (&Method::DELETE, [name]) => {
            netd.remove_network(name).await?;
            Ok((StatusCode::OK, serde_json::json!({})))
        }
        _ => Err(EngineError::NotFound(format!(
            "no such endpoint: {method} /networks/{}",
            rest.join("/")
        ))),
    }
}

async fn read_body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, EngineError> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| EngineError::BadRequest(format!("read request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::BadRequest(format!("request body: {e}")))
}
