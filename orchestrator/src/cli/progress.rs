//! Progress of `berth up`. On a terminal: one line per network, volume, container and awaited
//! service, redrawn in place as it moves on (a container goes created, started, waiting for
//! its health check, healthy), with the time each took. Otherwise (CI logs): every progress
//! line of the engine as it comes, prefixed with a UTC timestamp.
//!
//! The board takes the engine's progress lines (`Container NAME  Started`) and its events
//! (health changes, exits), which arrive on a second connection subscribed before `up` starts.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper::Method;

use super::attach;
use crate::api;
use crate::client::Client;
use crate::engine::events::Event;

/// One object on the board.
#[derive(Debug, Clone)]
struct Row {
    kind: String,
    name: String,
    state: String,
    since: Instant,
    /// When it reached a final state; `None` while in progress.
    done: Option<Instant>,
}

/// States after which nothing more is expected for the object.
fn is_final(kind: &str, state: &str) -> bool {
    match kind {
        "Container" => !matches!(state, "Creating" | "Created" | "Waiting" | "Starting"),
        _ => true,
    }
}

/// The board of one `up`.
#[derive(Debug, Default)]
pub struct Board {
    rows: Vec<Row>,
    /// Lines drawn last time (to move the cursor back over them).
    drawn: usize,
}

impl Board {
    fn set(&mut self, kind: &str, name: &str, state: &str) {
        let now = Instant::now();
        let done = is_final(kind, state).then_some(now);
        match self
            .rows
            .iter_mut()
            .find(|r| r.kind == kind && r.name == name)
        {
            Some(r) => {
                r.state = state.to_string();
                r.done = done;
            }
            None => self.rows.push(Row {
                kind: kind.to_string(),
                name: name.to_string(),
                state: state.to_string(),
                since: now,
                done,
            }),
        }
    }

    fn state_of(&self, name: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|r| r.kind == "Container" && r.name == name)
            .map(|r| r.state.as_str())
    }

    /// Takes one progress line of the engine (`KIND NAME  STATE`); other lines are kept as
    /// they are.
    pub fn line(&mut self, text: &str) {
        let parsed = text.split_once(' ').and_then(|(kind, rest)| {
            let (name, state) = rest.split_once("  ")?;
            Some((kind, name, state.trim()))
        });
        match parsed {
            // A container with a health check goes on to "Waiting" through its events.
            Some(("Container", name, "Started")) if self.state_of(name) == Some("Waiting") => {}
            Some((kind, name, state)) => self.set(kind, name, state),
            None => self.set("", text, ""),
        }
    }

    /// Takes one engine event.
    pub fn event(&mut self, e: &Event) {
        let health = e.attributes.get("health_status").map(String::as_str);
        match (e.action.as_str(), health) {
            ("create", _) => self.set("Container", &e.name, "Created"),
            ("start", _) if self.state_of(&e.name) != Some("Waiting") => {
                self.set("Container", &e.name, "Started")
            }
            ("health_status", Some("healthy")) => self.set("Container", &e.name, "Healthy"),
            ("health_status", Some("unhealthy")) => self.set("Container", &e.name, "Unhealthy"),
            ("die", _) => {
                let code = e.attributes.get("exitCode").cloned().unwrap_or_default();
                self.set("Container", &e.name, &format!("Exited ({code})"));
            }
            _ => {}
        }
    }

    /// Marks a started container as waiting for its first health check result.
    pub fn waiting(&mut self, name: &str) {
        if matches!(self.state_of(name), None | Some("Created" | "Started")) {
            self.set("Container", name, "Waiting");
        }
    }

    /// The escape sequences and lines that redraw the board over its previous drawing.
    pub fn render(&mut self, colour: bool) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.kind.len() + r.name.len() + 1)
            .max()
            .unwrap_or(0);
        for r in &self.rows {
            let end = r.done.unwrap_or_else(Instant::now);
            let secs = end.duration_since(r.since).as_secs_f64();
            let (mark, on) = match r.done {
                Some(_) if r.state.starts_with("Exited") || r.state == "Unhealthy" => ("✘", "31"),
                Some(_) => ("✔", "32"),
                None => ("⠿", "33"),
            };
            let mark = if colour {
                format!("\x1b[{on}m{mark}\x1b[0m")
            } else {
                mark.to_string()
            };
            let label = format!("{} {}", r.kind, r.name);
            out.push_str(&format!(
                "\r\x1b[2K {mark} {:<width$}  {:<16} {secs:>5.1}s\n",
                label.trim(),
                r.state
            ));
        }
        self.drawn = self.rows.len();
        out
    }
}

fn draw(board: &Mutex<Board>, colour: bool) {
    let text = board
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .render(colour);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Sends `up` and draws its progress as a board; returns the exit code.
pub async fn board(
    client: &Client,
    project: &str,
    path: &str,
    body: &impl serde::Serialize,
    colour: bool,
) -> anyhow::Result<u8> {
    let mut sub = attach::subscribe(client, project).await?;
    let board = Arc::new(Mutex::new(Board::default()));
    let watcher = {
        let board = board.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    ev = sub.next() => {
                        let Some(e) = ev else { break };
                        let waits = e.action == "start" && has_healthcheck(&client, &e.id).await;
                        let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
                        b.event(&e);
                        if waits {
                            b.waiting(&e.name);
                        }
                    }
                    _ = tick.tick() => draw(&board, colour),
                }
            }
        })
    };
    let mut errors = Vec::new();
    let code = client
        .stream(Method::POST, path, Some(body), |stream, data| {
            if stream == api::STDERR {
                errors.extend_from_slice(data);
                return;
            }
            let text = String::from_utf8_lossy(data);
            {
                let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
                text.lines().for_each(|l| b.line(l));
            }
            draw(&board, colour);
        })
        .await;
    watcher.abort();
    draw(&board, colour);
    let _ = std::io::stderr().write_all(&errors);
    Ok(code?.unwrap_or(1).clamp(0, 255) as u8)
}

async fn has_healthcheck(client: &Client, id: &str) -> bool {
    client
        .call::<api::ContainerInfo>(Method::GET, &format!("/containers/{id}/json"), None::<&()>)
        .await
        .is_ok_and(|c| c.state.healthcheck.is_some())
}

/// Sends `up` and prints each progress line with a timestamp; returns the exit code.
pub async fn plain(
    client: &Client,
    path: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<u8> {
    let code = client
        .stream(Method::POST, path, Some(body), |stream, data| {
            if stream == api::STDERR {
                let _ = std::io::stderr().write_all(data);
                return;
            }
            let now = humantime::format_rfc3339_millis(SystemTime::now());
            let mut out = std::io::stdout().lock();
            for l in String::from_utf8_lossy(data).lines() {
                let _ = writeln!(out, "{now} {l}");
            }
            let _ = out.flush();
        })
        .await?;
    Ok(code.unwrap_or(1).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(action: &str, name: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            time: String::new(),
            kind: "container".into(),
            action: action.into(),
            id: "x".into(),
            name: name.into(),
            project: None,
            service: None,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn rows_move_on_and_redraw_in_place() {
        let mut b = Board::default();
        b.line("Network p_default  Created");
        b.event(&ev("create", "p-db-1", &[]));
        b.line("Container p-db-1  Created");
        b.event(&ev("start", "p-db-1", &[]));
        b.waiting("p-db-1");
        b.line("Container p-db-1  Started");
        let first = b.render(false);
        assert!(!first.contains("\x1b[2A"), "nothing drawn before");
        assert!(first.contains("✔ Network p_default  Created"), "{first}");
        assert!(first.contains("⠿ Container p-db-1   Waiting"), "{first}");
        b.event(&ev(
            "health_status",
            "p-db-1",
            &[("health_status", "healthy")],
        ));
        b.line("Service db  service_healthy");
        b.event(&ev("die", "p-seed-1", &[("exitCode", "3")]));
        let second = b.render(false);
        assert!(
            second.starts_with("\x1b[2A"),
            "back over the two lines drawn"
        );
        assert!(second.contains("✔ Container p-db-1    Healthy"), "{second}");
        assert!(
            second.contains("✔ Service db          service_healthy"),
            "{second}"
        );
        assert!(
            second.contains("✘ Container p-seed-1  Exited (3)"),
            "{second}"
        );
        assert_eq!(second.matches('\n').count(), 4);
        assert!(b.render(true).contains("\x1b[32m✔\x1b[0m"));
    }
}
