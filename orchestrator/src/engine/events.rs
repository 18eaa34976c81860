//! The engine's event bus: every lifecycle step of a container (create, start, die with its exit
//! code and OOM flag, health status changes, restarts by policy, kill, stop, pause, unpause,
//! destroy) is published on a broadcast channel owned by the [`super::Engine`]; `GET /events`
//! streams them, one JSON object per frame, filtered by project and services.
//!
//! Publishing never blocks and never fails: with no subscriber an event is simply dropped, and
//! a subscriber that falls more than [`CAPACITY`] events behind is told how many it missed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::record::Container;
use super::translate::{NUMBER, PROJECT, SERVICE};
use crate::api;

/// Events a slow subscriber may lag behind before it misses some.
pub const CAPACITY: usize = 1024;

/// One event, as `GET /events` sends it and `berth events --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// Always `container` for now.
    #[serde(rename = "type")]
    pub kind: String,
    /// `create`, `start`, `die`, `oom`, `health_status`, `restart`, `kill`, `stop`, `pause`,
    /// `unpause` or `destroy`.
    pub action: String,
    pub id: String,
    pub name: String,
    /// The compose project and service, when the container belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Details: `image`, `exitCode`, `oomKilled`, `signal`, `health_status`, `restartCount`...
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// The bus: a broadcast sender every subscriber gets a receiver of.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publishes `action` about `c` with extra attributes.
    pub fn emit(&self, c: &Container, action: &str, attrs: &[(&str, String)]) {
        let label = |k: &str| c.spec.labels.get(k).cloned();
        let mut attributes: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        attributes.insert("image".into(), c.spec.image.clone());
        if let Some(n) = label(NUMBER) {
            attributes.insert("number".into(), n);
        }
        // No receiver is not an error: nobody is listening.
        let _ = self.tx.send(Event {
            time: runtime::logs::now_rfc3339(),
            kind: "container".into(),
            action: action.into(),
            id: c.id.clone(),
            name: c.name.clone(),
            project: label(PROJECT),
            service: label(SERVICE),
            attributes,
        });
    }

    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only containers of this project.
    pub project: Option<String>,
    /// Only these services (empty: all).
    pub services: Vec<String>,
}

impl Filter {
    /// From the query of `GET /events`: `project=NAME`, `service=A,B`.
    pub fn from_query(q: &HashMap<String, String>) -> Self {
        Filter {
            project: q.get("project").filter(|p| !p.is_empty()).cloned(),
            services: q
                .get("service")
                .map(|s| {
                    s.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Event) -> bool {
        let project_ok = self.project.is_none() || e.project == self.project;
        let service_ok = self.services.is_empty()
            || e.service
                .as_ref()
                .is_some_and(|s| self.services.contains(s));
        project_ok && service_ok
    }
}

/// Forwards the events passing `filter` to `tx` as stdout frames of one JSON line each, until
/// the subscriber goes away; a lag is reported on stderr frames. The first frame is an empty
/// one: it tells the subscriber that every event from then on reaches it.
pub async fn pump(mut rx: broadcast::Receiver<Event>, filter: Filter, tx: mpsc::Sender<Vec<u8>>) {
    if tx.send(api::frame(api::STDOUT, b"")).await.is_err() {
        return;
    }
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = tx.closed() => return,
        };
        let frame = match next {
            Ok(e) if filter.matches(&e) => match serde_json::to_vec(&e) {
                Ok(mut line) => {
                    line.push(b'\n');
                    api::frame(api::STDOUT, &line)
                }
                Err(_) => continue,
            },
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => api::frame(
                api::STDERR,
                format!("events: missed {n} events (reading too slowly)\n").as_bytes(),
            ),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(frame).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerState, Status};

    fn container(project: &str, service: &str) -> Container {
        let spec: api::ContainerSpec = serde_json::from_value(serde_json::json!({
            "id": format!("{project}{service}"), "name": format!("{project}-{service}-1"),
            "hostname": "h", "layers": [], "args": ["sh"], "env": [], "working_dir": "/",
            "user": "", "stop_signal": "SIGTERM", "stop_timeout": 10,
            "labels": {PROJECT: project, SERVICE: service, NUMBER: "1"}, "image": "bb:latest"
        }))
        .unwrap();
        let state = ContainerState {
            status: Status::Created,
            pid: None,
            pid_start_time: None,
            exit_code: None,
            oom_killed: false,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            auto_remove: false,
            restart_count: 0,
            restart: "no".into(),
            healthcheck: None,
            health: None,
            stopped_by_user: false,
        };
        Container::new(spec, "/nonexistent".into(), state)
    }

    #[tokio::test]
    async fn filtered_events_reach_subscribers_as_json_lines() {
        let bus = EventBus::default();
        bus.emit(&container("p", "api"), "create", &[]);
        let rx = bus.subscribe();
        let (tx, mut out) = mpsc::channel(8);
        let q: HashMap<String, String> = [
            ("project".to_string(), "p".to_string()),
            ("service".to_string(), "api,db".to_string()),
        ]
        .into();
        let filter = Filter::from_query(&q);
        let pump = tokio::spawn(pump(rx, filter, tx));
        bus.emit(&container("q", "api"), "start", &[]);
        bus.emit(&container("p", "web"), "start", &[]);
        bus.emit(&container("p", "api"), "die", &[("exitCode", "3".into())]);
        let mut buf = out.recv().await.unwrap();
        assert_eq!(api::take_frames(&mut buf), vec![(api::STDOUT, Vec::new())]);
        let mut buf = out.recv().await.unwrap();
        let frames = api::take_frames(&mut buf);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, api::STDOUT);
        let e: Event = serde_json::from_slice(&frames[0].1).unwrap();
        assert_eq!(e.action, "die", "only events after subscribing that match");
        assert_eq!(e.project.as_deref(), Some("p"));
        assert_eq!(e.service.as_deref(), Some("api"));
        assert_eq!(e.attributes["exitCode"], "3");
        assert_eq!(e.attributes["image"], "bb:latest");
        assert_eq!(e.attributes["number"], "1");
        drop(out);
        bus.emit(&container("p", "api"), "destroy", &[]);
        pump.await.unwrap();
    }
}
