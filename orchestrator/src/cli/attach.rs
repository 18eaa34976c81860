//! The attached mode of `berth up` (without `-d`): every replica's output with a `service-N |`
//! prefix (a colour per service on a terminal), replicas followed as they start or restart,
//! `--abort-on-container-exit` and `--exit-code-from`, and Ctrl-C stopping the project
//! gracefully in dependency order (a second Ctrl-C kills).
//!
//! The engine's event stream drives it: [`subscribe`] opens it before `up` sends the project, so
//! no start or exit is missed, and [`run`] follows the logs of every container that starts.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use hyper::Method;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::api::{self, ContainerInfo, Status};
use crate::client::{enc, Client};
use crate::engine::events::Event;
use crate::engine::translate::{NUMBER, SERVICE};

const NONE: Option<&()> = None;
const COLOURS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// What the attached mode shows and when it ends.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Colour the prefixes.
    pub colour: bool,
    /// Stop the project when any container exits.
    pub abort_on_exit: bool,
    /// Exit with the code of this service's container (implies `abort_on_exit`).
    pub exit_code_from: Option<String>,
    /// Services whose output is shown (empty: all but `hidden`).
    pub shown: BTreeSet<String>,
    /// Services whose output is not shown.
    pub hidden: BTreeSet<String>,
    /// Every service of the project in stop waves (dependents first).
    pub stop_order: Vec<Vec<String>>,
    /// Seconds each container gets to stop.
    pub timeout: Option<u64>,
}

impl AttachOptions {
    fn shows(&self, service: &str) -> bool {
        (self.shown.is_empty() || self.shown.contains(service)) && !self.hidden.contains(service)
    }

    fn width(&self) -> usize {
        self.stop_order
            .iter()
            .flatten()
            .map(|s| s.len() + 2)
            .max()
            .unwrap_or(8)
    }

    /// `service-N`, padded to the longest service name when `pad`, coloured when asked.
    fn label(&self, service: &str, number: &str, pad: bool) -> String {
        let text = format!("{service}-{number}");
        let width = if pad { self.width() } else { 0 };
        let text = format!("{text:<width$}");
        if !self.colour {
            return text;
        }
        let mut all: Vec<&String> = self.stop_order.iter().flatten().collect();
        all.sort();
        let i = all.iter().position(|s| *s == service).unwrap_or(all.len());
        format!("\x1b[{}m{text}\x1b[0m", COLOURS[i % COLOURS.len()])
    }
}

/// The project's events, subscribed to.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Subscription {
    /// The next event; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

/// Subscribes to the events of `project`; returns once the engine delivers every later event.
pub async fn subscribe(client: &Client, project: &str) -> anyhow::Result<Subscription> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let client = client.clone();
    let path = format!("/events?project={}", enc(project));
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut pending = Vec::new();
        let res = client
            .stream(Method::GET, &path, NONE, |stream, data| {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                if stream != api::STDOUT {
                    return;
                }
                pending.extend_from_slice(data);
                while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = pending.drain(..=nl).collect();
                    if let Ok(e) = serde_json::from_slice::<Event>(&raw) {
                        let _ = tx.send(e);
                    }
                }
            })
            .await;
        if let Err(e) = res {
            eprintln!("berth: event stream: {e:#}");
        }
    });
    tokio::time::timeout(Duration::from_secs(15), ready_rx)
        .await
        .map_err(|_| anyhow!("the engine did not open the event stream within 15s"))?
        .map_err(|_| anyhow!("the engine closed the event stream"))?;
    Ok(Subscription { rx })
}

/// Per container: frames printed so far (to skip on a restart) and whether a follower runs.
#[derive(Debug, Default)]
struct Followed {
    frames: usize,
    active: bool,
}

type Table = Arc<Mutex<HashMap<String, Followed>>>;

fn lock(t: &Table) -> std::sync::MutexGuard<'_, HashMap<String, Followed>> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks a follower of `id` as running; false when one runs already.
fn claim(t: &Table, id: &str) -> bool {
    let mut map = lock(t);
    let f = map.entry(id.to_string()).or_default();
    !std::mem::replace(&mut f.active, true)
}

/// Streams one container's output until it stops for good, picking it up again when it
/// restarts before this follower let go.
async fn follow(client: Client, table: Table, id: String, label: String) {
    loop {
        let skip = lock(&table).get(&id).map_or(0, |f| f.frames);
        let mut seen = 0usize;
        let mut pending: Vec<u8> = Vec::new();
        let _ = client
            .stream(
                Method::GET,
                &format!("/containers/{id}/logs?follow=1"),
                NONE,
                |_, data| {
                    seen += 1;
                    if seen <= skip {
                        return;
                    }
                    if let Some(f) = lock(&table).get_mut(&id) {
                        f.frames = seen;
                    }
                    pending.extend_from_slice(data);
                    let mut out = std::io::stdout().lock();
                    while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=nl).collect();
                        let _ = write!(out, "{label} | {}", String::from_utf8_lossy(&line));
                    }
                    let _ = out.flush();
                },
            )
            .await;
        if let Some(f) = lock(&table).get_mut(&id) {
            f.active = false;
        }
        let running = client
            .call::<ContainerInfo>(Method::GET, &format!("/containers/{id}/json"), NONE)
            .await
            .is_ok_and(|c| matches!(c.state.status, Status::Running | Status::Paused));
        if !running || !claim(&table, &id) {
            return;
        }
    }
}

async fn ps(client: &Client, project: &str) -> anyhow::Result<Vec<ContainerInfo>> {
    client
        .call(Method::GET, &format!("/projects/{}/ps", enc(project)), NONE)
        .await
}

fn service_of(c: &ContainerInfo) -> String {
    c.config.labels.get(SERVICE).cloned().unwrap_or_default()
}

/// How the attached mode ended.
enum End {
    /// Every shown container exited for good.
    Done,
    /// A container exited and `--abort-on-container-exit` is on; its exit code.
    Abort(i32),
    /// Ctrl-C.
    Interrupted,
}

/// Whether every container of the shown services (all when none is shown) exited for good.
/// The ids of the containers `up` waits for, when every one of them has exited for good.
async fn all_exited(client: &Client, project: &str, opts: &AttachOptions) -> Option<Vec<String>> {
    let list = ps(client, project).await.ok()?;
    let shown: Vec<&ContainerInfo> = list.iter().filter(|c| opts.shows(&service_of(c))).collect();
    let relevant = if shown.is_empty() {
        list.iter().collect()
    } else {
        shown
    };
    relevant
        .iter()
        .all(|c| {
            c.state.status == Status::Exited
                && crate::engine::restart::wants_restart(&c.state).is_none()
        })
        .then(|| relevant.iter().map(|c| c.id.clone()).collect())
}

/// Takes over Ctrl-C (SIGINT) from the default of ending the process; done before `up` is
/// sent, so a Ctrl-C while the project comes up stops it once it is up.
pub fn watch_ctrl_c() -> anyhow::Result<Signal> {
    signal(SignalKind::interrupt()).map_err(|e| anyhow!("watch for Ctrl-C (SIGINT): {e}"))
}

/// Follows the project until it ends (see [`End`]); returns the exit code of `up`.
pub async fn run(
    client: &Client,
    project: &str,
    mut sub: Subscription,
    opts: AttachOptions,
    mut sigint: Signal,
) -> anyhow::Result<u8> {
    let table: Table = Arc::default();
    let mut tasks = JoinSet::new();
    let start = |tasks: &mut JoinSet<()>, id: &str, service: &str, number: &str| {
        if opts.shows(service) && claim(&table, id) {
            let label = opts.label(service, number, true);
            tasks.spawn(follow(client.clone(), table.clone(), id.to_string(), label));
        }
    };
    for c in ps(client, project).await? {
        let number = c.config.labels.get(NUMBER).cloned().unwrap_or_default();
        start(&mut tasks, &c.id, &service_of(&c), &number);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // Containers whose exit was reported, and ticks for which everything has been exited.
    let mut died: HashSet<String> = HashSet::new();
    let mut settled = 0u32;
    let end = loop {
        tokio::select! {
            ev = sub.rx.recv() => {
                let Some(e) = ev else { bail!("the engine closed the event stream") };
                let service = e.service.clone().unwrap_or_default();
                let number = e.attributes.get("number").cloned().unwrap_or_default();
                match e.action.as_str() {
                    "start" => start(&mut tasks, &e.id, &service, &number),
                    "die" => {
                        died.insert(e.id.clone());
                        let code: i32 = e.attributes.get("exitCode").and_then(|c| c.parse().ok()).unwrap_or(0);
                        if opts.shows(&service) || opts.abort_on_exit {
                            println!("{} exited with code {code}", opts.label(&service, &number, false));
                        }
                        if opts.abort_on_exit {
                            break End::Abort(code);
                        }
                    }
                    _ => {}
                }
            }
            _ = sigint.recv() => break End::Interrupted,
            // Everything exited for good: done once every exit has been reported (its `die`
            // event travels on another connection), or after two seconds without it.
            _ = tick.tick() => match all_exited(client, project, &opts).await {
                Some(ids) => {
                    settled += 1;
                    if settled > 4 || ids.iter().all(|id| died.contains(id)) {
                        break End::Done;
                    }
                }
                None => settled = 0,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    let code = match end {
        End::Done => 0,
        End::Abort(code) => {
            eprintln!("Aborting on container exit...");
            stop_all(client, project, &opts, &mut sigint).await?;
            code
        }
        End::Interrupted => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            stop_all(client, project, &opts, &mut sigint).await?;
            130
        }
    };
    // Let the followers print what the containers wrote last.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let code = match &opts.exit_code_from {
        Some(svc) => exit_code_of(client, project, svc).await?,
        None => code,
    };
    Ok(code.clamp(0, 255) as u8)
}

async fn exit_code_of(client: &Client, project: &str, service: &str) -> anyhow::Result<i32> {
    let list = ps(client, project).await?;
    let c = list
        .iter()
        .filter(|c| service_of(c) == service)
        .min_by_key(|c| {
            c.config
                .labels
                .get(NUMBER)
                .and_then(|n| n.parse::<u32>().ok())
        })
        .ok_or_else(|| anyhow!("--exit-code-from {service}: the service has no container"))?;
    Ok(c.state.exit_code.unwrap_or(0))
}

/// Stops the project's running containers wave by wave (dependents first); a Ctrl-C meanwhile
/// kills whatever still runs.
async fn stop_all(
    client: &Client,
    project: &str,
    opts: &AttachOptions,
    sigint: &mut Signal,
) -> anyhow::Result<()> {
    let list = ps(client, project).await?;
    let live = |c: &&ContainerInfo| matches!(c.state.status, Status::Running | Status::Paused);
    let mut waves: Vec<Vec<&ContainerInfo>> = opts
        .stop_order
        .iter()
        .map(|wave| {
            list.iter()
                .filter(live)
                .filter(|c| wave.contains(&service_of(c)))
                .collect()
        })
        .collect();
    let known: BTreeSet<&String> = opts.stop_order.iter().flatten().collect();
    waves.push(
        list.iter()
            .filter(live)
            .filter(|c| !known.contains(&service_of(c)))
            .collect(),
    );
    let t = opts.timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    let graceful = async {
        for wave in &waves {
            let stops = wave.iter().map(|c| {
                let t = &t;
                async move {
                    eprintln!("Container {}  Stopping", c.name);
                    let path = format!("/containers/{}/stop{t}", c.id);
                    match client
                        .call::<serde_json::Value>(Method::POST, &path, NONE)
                        .await
                    {
                        Ok(_) => eprintln!("Container {}  Stopped", c.name),
                        Err(e) => eprintln!("Container {}  stop failed: {e:#}", c.name),
                    }
                }
            });
            futures::future::join_all(stops).await;
        }
    };
    tokio::select! {
        () = graceful => return Ok(()),
        _ = sigint.recv() => {}
    }
    let all: Vec<&ContainerInfo> = waves.into_iter().flatten().collect();
    // SIGKILL ends them at once (a stop in progress holds the container's operation lock, so a
    // second stop would wait for it); the stop with no grace period that follows marks the
    // ones no stop reached yet as stopped by the user, so no restart policy brings them back.
    let kills = all.iter().map(|c| async move {
        let path = format!("/containers/{}/kill", c.id);
        // One that stopped meanwhile answers "not running": nothing to kill.
        if client
            .call::<serde_json::Value>(Method::POST, &path, NONE)
            .await
            .is_ok()
        {
            eprintln!("Container {}  Killed", c.name);
        }
    });
    futures::future::join_all(kills).await;
    let stops = all.iter().map(|c| async move {
        let path = format!("/containers/{}/stop?t=0", c.id);
        let _ = client
            .call::<serde_json::Value>(Method::POST, &path, NONE)
            .await;
    });
    futures::future::join_all(stops).await;
    Ok(())
}
