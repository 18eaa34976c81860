//! Container operations of the engine: create, start, stop, kill, pause, remove, wait, exec,
//! and the exit monitor that turns a pidfd becoming readable into an `exited` state.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use runtime::container::{self as rt, Running};
use runtime::spec::{ContainerSpec, LogConfig};
use tokio::io::unix::AsyncFd;
use tracing::{info, instrument, warn};

use super::record::Container;
use super::{networks, Engine, EngineError};
use crate::api::{ContainerState, CreateContainer, Created, ExecOptions, Status};

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "zesty", "bold",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "cove", "dock", "ferry", "galley", "harbor", "jetty", "keel", "lagoon",
    "mast", "pier", "quay", "reef", "sail", "tide", "wharf", "yacht", "berth", "hull",
];

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("worker task failed: {e}")))?
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Creates a container from an image: resolves the image's config against the request and
/// writes the container's spec and state.
#[instrument(skip(engine, req), fields(image = %req.image))]
pub async fn create(engine: &Arc<Engine>, req: CreateContainer) -> Result<Created, EngineError> {
    if req.image.is_empty() {
        return Err(EngineError::BadRequest("no image given".into()));
    }
    let image = {
        let e = engine.clone();
        let r = req.image.clone();
        blocking(move || Ok(e.images.get(&r)?)).await?
    };
    let id = {
        let mut rng = rand::rng();
        let bytes: [u8; 32] = rng.random();
        hex::encode(bytes)
    };
    let name = match &req.name {
        Some(n) if !valid_name(n) => {
            return Err(EngineError::BadRequest(format!(
                "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )))
        }
        Some(n) => n.clone(),
        None => {
            let mut rng = rand::rng();
            format!(
                "{}_{}_{}",
                ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                NOUNS[rng.random_range(0..NOUNS.len())],
                &id[..4]
            )
        }
    };
    let cfg = &image.config;
    let entrypoint = req
        .entrypoint
        .clone()
        .or_else(|| cfg.entrypoint.clone())
        .unwrap_or_default();
    let cmd = if !req.cmd.is_empty() {
        req.cmd.clone()
    } else if req.entrypoint.is_some() {
        Vec::new()
    } else {
        cfg.cmd.clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(EngineError::BadRequest(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT; give a command after the image",
            req.image
        )));
    }
    let env = merge_env(&cfg.env, &req.env);
    let (network, net_config) = networks::plan(engine, &req, &name).await?;
    let spec = ContainerSpec {
        id: id.clone(),
        name: name.clone(),
        hostname: req.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        layers: image.layers.clone(),
        args,
        env,
        working_dir: req
            .working_dir
            .clone()
            .or_else(|| cfg.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: req
            .user
            .clone()
            .or_else(|| cfg.user.clone())
            .unwrap_or_default(),
        network,
        memory: req.memory,
        cpus: req.cpus,
        pids_limit: req.pids_limit,
        stop_signal: req
            .stop_signal
            .clone()
            .or_else(|| cfg.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: req.stop_timeout.unwrap_or(10),
        read_only: req.read_only,
        mounts: req.mounts.clone(),
        cap_add: req.cap_add.clone(),
        cap_drop: req.cap_drop.clone(),
        rlimits: req.rlimits.clone(),
        sysctls: req.sysctls.clone(),
        labels: req.labels.clone(),
        log: LogConfig::default(),
        image: req.image.clone(),
        image_id: image.id.clone(),
    };
    if rt::parse_signal(&spec.stop_signal).is_none() {
        return Err(EngineError::BadRequest(format!(
            "invalid stop signal {:?}",
            spec.stop_signal
        )));
    }
    runtime::caps::resolve(&spec.cap_add, &spec.cap_drop)
        .map_err(|e| EngineError::BadRequest(e.to_string()))?;
    let state = ContainerState {
        status: Status::Created,
        pid: None,
        pid_start_time: None,
        exit_code: None,
        oom_killed: false,
        created_at: runtime::logs::now_rfc3339(),
        started_at: None,
        finished_at: None,
        auto_remove: req.auto_remove,
        restart_count: 0,
        restart: if req.restart.is_empty() {
            "no".into()
        } else {
            req.restart.clone()
        },
        healthcheck: req.healthcheck.clone(),
        health: None,
        stopped_by_user: false,
    };
    let dir = engine.runtime.container_dir(&id);
    let c = Arc::new(Container::new(spec.clone(), dir, state));
    engine.insert(c.clone())?;
    let (e, c2, id2) = (engine.clone(), c.clone(), id.clone());
    let durable = !req.auto_remove;
    // Spec, network request and state written as they are, then made durable together (one
    // journal commit rather than one per file); `--rm` containers need not survive a crash.
    let res = blocking(move || {
        e.runtime.create(&spec, false)?;
        networks::save_config(&id2, &c2.dir, &net_config)?;
        c2.update(|_| {})?;
        if durable {
            let files = ["spec.json", networks::CONFIG_FILE, "state.json"];
            runtime::fsutil::sync_files(&c2.dir, &files)
                .map_err(|err| EngineError::Internal(format!("container {id2}: {err}")))?;
        }
        Ok(())
    })
    .await;
    if let Err(err) = res {
        engine.forget(&id);
        let _ = engine.runtime.delete(&id);
        return Err(err);
    }
    info!(container = %id, name = %name, "created");
    engine.events.emit(&c, "create", &[]);
    Ok(Created { id, name })
}

fn merge_env(image: &[String], req: &[String]) -> Vec<String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut order = Vec::new();
    for e in image.iter().chain(req) {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        if !map.contains_key(k) {
            order.push(k.to_string());
        }
        map.insert(k.to_string(), v.to_string());
    }
    if !map.contains_key("PATH") {
        order.insert(0, "PATH".into());
        map.insert(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    order
        .into_iter()
        .map(|k| format!("{k}={}", map[&k]))
        .collect()
}

/// Starts a created or exited container.
#[instrument(skip(engine, c), fields(container = %c.id))]
pub async fn start(engine: &Arc<Engine>, c: &Arc<Container>) -> Result<(), EngineError> {
    let _op = c.op.lock().await;
    match c.status() {
        Status::Running | Status::Paused => return Ok(()),
        Status::Created | Status::Exited => {}
    }
    let started = networks::launch(engine, c).await;
    let running: Running = match started {
        Ok(r) => r,
        Err(err) => {
            if c.state().auto_remove {
                engine.forget(&c.id);
                let _ = engine.runtime.delete(&c.id);
            }
            return Err(err);
        }
    };
    let (pid, start_time) = (running.pid, running.start_time);
    let fd = Arc::new(
        crate::sys::watch_fd(running.pidfd)
            .map_err(|e| EngineError::Internal(format!("watch pidfd: {e}")))?,
    );
    c.set_pidfd(Some(fd.clone()));
    c.update(|s| {
        s.status = Status::Running;
        s.pid = Some(pid);
        s.pid_start_time = Some(start_time);
        s.exit_code = None;
        s.oom_killed = false;
        s.started_at = Some(runtime::logs::now_rfc3339());
        s.finished_at = None;
        s.stopped_by_user = false;
        s.health = None;
    })?;
    info!(container = %c.id, pid, "started");
    engine.events.emit(c, "start", &[]);
    if c.state().healthcheck.is_none() {
        networks::announce(engine, c).await;
    }
    spawn_monitor(engine.clone(), c.clone(), fd, true);
    super::health::spawn(engine.clone(), c.clone());
    Ok(())
}

fn spawn_monitor(engine: Arc<Engine>, c: Arc<Container>, fd: Arc<AsyncFd<OwnedFd>>, ours: bool) {
    tokio::spawn(async move {
        let reaped = loop {
            let mut guard = match fd.readable().await {
                Ok(g) => g,
                Err(e) => {
                    warn!(container = %c.id, error = %e, "pidfd watch failed");
                    break None;
                }
            };
            if !ours {
                break None;
            }
            match runtime::sys::waitid_pidfd(fd.get_ref().as_raw_fd()) {
                Ok(Some(status)) => break Some(status),
                Ok(None) => guard.clear_ready(),
                Err(_) => break None,
            }
        };
        on_exit(&engine, &c, reaped).await;
    });
}

async fn on_exit(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    reaped: Option<runtime::sys::ChildExit>,
) {
    let (code, record) = rt::exit_code(&c.dir, reaped);
    let oom = engine.runtime.cgroup(&c.id).oom_killed().unwrap_or(false);
    if let Err(e) = engine.runtime.release(&c.id) {
        warn!(container = %c.id, error = %e, "release after exit");
    }
    c.set_pidfd(None);
    networks::release(engine, c).await;
    let finished = record
        .map(|r| r.finished_at)
        .unwrap_or_else(runtime::logs::now_rfc3339);
    let res = c.update(|s| {
        s.status = Status::Exited;
        s.pid = None;
        s.pid_start_time = None;
        s.exit_code = Some(if oom && code == 0 { 137 } else { code });
        s.oom_killed = oom;
        s.finished_at = Some(finished);
    });
    if let Err(e) = res {
        warn!(container = %c.id, error = %e, "persist exit");
    }
    info!(container = %c.id, code, oom, "exited");
    if oom {
        engine.events.emit(c, "oom", &[]);
    }
    let exit = c.state().exit_code.unwrap_or(code).to_string();
    engine.events.emit(
        c,
        "die",
        &[("exitCode", exit), ("oomKilled", oom.to_string())],
    );
    // An auto-removed container is gone before anyone waiting hears that it exited.
    if c.state().auto_remove {
        if let Err(e) = remove(engine, c, true).await {
            warn!(container = %c.id, error = %e, "auto-remove");
        }
    }
    c.exits.send_modify(|n| *n += 1);
    engine.exited.notify_one();
}

/// Waits until the container is not running; returns its exit code.
pub async fn wait(c: &Arc<Container>) -> i32 {
    let mut rx = c.exits.subscribe();
    loop {
        let st = c.state();
        if matches!(st.status, Status::Exited | Status::Created) {
            return st.exit_code.unwrap_or(0);
        }
        if rx.changed().await.is_err() {
            return c.state().exit_code.unwrap_or(0);
        }
    }
}

async fn wait_timeout(c: &Arc<Container>, d: Duration) -> bool {
    tokio::time::timeout(d, wait(c)).await.is_ok()
}

/// Sends a signal to the container's init, which forwards it to the main process (SIGKILL ends
/// the whole container at once).
pub async fn kill(engine: &Arc<Engine>, c: &Arc<Container>, sig: i32) -> Result<(), EngineError> {
    let Some(fd) = c.pidfd() else {
        return Err(EngineError::Conflict(format!(
            "container {} is not running",
            c.name
        )));
    };
    rt::signal(fd.get_ref(), sig)
        .map_err(|e| EngineError::Internal(format!("signal container {}: {e}", c.name)))?;
    engine
        .events
        .emit(c, "kill", &[("signal", sig.to_string())]);
    if c.status() == Status::Paused {
        let _ = engine.runtime.cgroup(&c.id).thaw();
        let _ = c.update(|s| s.status = Status::Running);
    }
    Ok(())
}

/// Stops a container: its stop signal, then SIGKILL after the grace period.
#[instrument(skip(engine, c), fields(container = %c.id))]
pub async fn stop(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    timeout: Option<u64>,
) -> Result<(), EngineError> {
    let _op = c.op.lock().await;
    c.update(|s| s.stopped_by_user = true)?;
    if c.pidfd().is_none() {
        return Ok(());
    }
    let sig = rt::parse_signal(&c.spec.stop_signal).unwrap_or(libc::SIGTERM);
    let grace = Duration::from_secs(timeout.unwrap_or(c.spec.stop_timeout));
    let _ = kill(engine, c, sig).await;
    if wait_timeout(c, grace).await {
        engine.events.emit(c, "stop", &[]);
        return Ok(());
    }
    warn!(container = %c.id, "did not stop within the grace period, killing");
    let _ = kill(engine, c, libc::SIGKILL).await;
    wait(c).await;
    engine.events.emit(c, "stop", &[]);
    Ok(())
}

/// Freezes every process of the container.
pub async fn pause(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    freeze: bool,
) -> Result<(), EngineError> {
    let _op = c.op.lock().await;
    let status = c.status();
    if freeze && status != Status::Running {
        return Err(EngineError::Conflict(format!(
            "container {} is not running",
            c.name
        )));
    }
    if !freeze && status != Status::Paused {
        return Err(EngineError::Conflict(format!(
            "container {} is not paused",
            c.name
        )));
    }
    let e = engine.clone();
    let id = c.id.clone();
    blocking(move || {
        let cg = e.runtime.cgroup(&id);
        let r = if freeze { cg.freeze() } else { cg.thaw() };
        r.map_err(|err| EngineError::Internal(format!("container {id}: freezer: {err}")))
    })
    .await?;
    c.update(|s| {
        s.status = if freeze {
            Status::Paused
        } else {
            Status::Running
        }
    })?;
    engine
        .events
        .emit(c, if freeze { "pause" } else { "unpause" }, &[]);
    Ok(())
}

/// Removes a container (force: kill it first if it runs).
#[instrument(skip(engine, c), fields(container = %c.id))]
pub async fn remove(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    force: bool,
) -> Result<(), EngineError> {
    if c.pidfd().is_some() {
        if !force {
            return Err(EngineError::Conflict(format!(
                "container {} is running: stop it first or use --force",
                c.name
            )));
        }
        let _ = kill(engine, c, libc::SIGKILL).await;
        wait(c).await;
    }
    let _op = c.op.lock().await;
    engine.forget(&c.id);
    networks::release(engine, c).await;
    let e = engine.clone();
    let id = c.id.clone();
    blocking(move || Ok(e.runtime.delete(&id)?)).await?;
    info!(container = %c.id, "removed");
    engine.events.emit(c, "destroy", &[]);
    Ok(())
}

/// Starts a process inside a running container.
pub async fn exec(
    engine: &Arc<Engine>,
    c: &Arc<Container>,
    opts: ExecOptions,
) -> Result<rt::ExecProcess, EngineError> {
    let pid = match (c.status(), c.state().pid) {
        (Status::Running, Some(pid)) => pid,
        (Status::Paused, _) => {
            return Err(EngineError::Conflict(format!(
                "container {} is paused: unpause it first",
                c.name
            )))
        }
        _ => {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.name
            )))
        }
    };
    if opts.cmd.is_empty() {
        return Err(EngineError::BadRequest("exec needs a command".into()));
    }
    let caps = runtime::caps::resolve(&c.spec.cap_add, &c.spec.cap_drop)
        .map_err(|e| EngineError::BadRequest(e.to_string()))?;
    let req = runtime::init::ExecRequest {
        args: opts.cmd,
        env: merge_env(&c.spec.env, &opts.env),
        cwd: opts
            .working_dir
            .unwrap_or_else(|| c.spec.working_dir.clone()),
        user: opts.user.unwrap_or_else(|| c.spec.user.clone()),
        caps,
        cgroup_procs: Vec::new(),
    };
    let e = engine.clone();
    let id = c.id.clone();
    blocking(move || Ok(e.runtime.exec(&id, pid, req, false)?)).await
}

/// Loads every container of the root; re-adopts the ones whose init still runs.
pub async fn load_all(engine: &Arc<Engine>) {
    let dir = engine.root.join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let spec: ContainerSpec = match runtime::fsutil::read_json(&path.join("spec.json")) {
            Ok(s) => s,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "skipping unreadable container");
                continue;
            }
        };
        let Ok(state) = runtime::fsutil::read_json::<ContainerState>(&path.join("state.json"))
        else {
            warn!(path = %path.display(), "container without state: removing");
            let _ = engine.runtime.delete(&spec.id);
            continue;
        };
        let c = Arc::new(Container::new(spec, path, state.clone()));
        if engine.insert(c.clone()).is_err() {
            continue;
        }
        if matches!(state.status, Status::Running | Status::Paused) {
            adopt(engine, &c, &state).await;
        }
    }
}

async fn adopt(engine: &Arc<Engine>, c: &Arc<Container>, state: &ContainerState) {
    let alive = state.pid.and_then(|pid| {
        let same = runtime::sys::process_start_time(pid) == state.pid_start_time;
        same.then(|| runtime::sys::pidfd_open(pid).ok()).flatten()
    });
    match alive.and_then(|fd| crate::sys::watch_fd(fd).ok()) {
        Some(fd) => {
            let fd = Arc::new(fd);
            c.set_pidfd(Some(fd.clone()));
            info!(container = %c.id, "re-adopted running container");
            spawn_monitor(engine.clone(), c.clone(), fd, false);
            super::health::spawn(engine.clone(), c.clone());
        }
        None => on_exit(engine, c, None).await,
    }
}
