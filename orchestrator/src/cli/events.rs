//! `berth events [--json] [SERVICE...]`: the engine's container events for the project (or
//! some of its services) as they happen, until interrupted.

use std::io::Write;
use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{ps, ProjectArgs};
use crate::client::{enc, Client};
use crate::engine::events::Event;

const NONE: Option<&()> = None;

/// Flags of `berth events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Only these services.
    services: Vec<String>,
}

/// An event as one human-readable line (Docker Compose's layout).
pub fn line(e: &Event) -> String {
    let mut attrs: Vec<String> = vec![format!("name={}", e.name)];
    attrs.extend(e.attributes.iter().map(|(k, v)| format!("{k}={v}")));
    format!(
        "{} {} {} {} ({})",
        e.time,
        e.kind,
        e.action,
        e.id,
        attrs.join(", ")
    )
}

/// Runs `berth events`.
pub async fn run(root: &Path, project: &ProjectArgs, args: EventsArgs) -> anyhow::Result<u8> {
    let name = ps::project_name(project)?;
    let client = Client::connect(root).await?;
    let path = format!(
        "/events?project={}&service={}",
        enc(&name),
        enc(&args.services.join(","))
    );
    let mut pending: Vec<u8> = Vec::new();
    client
        .stream(Method::GET, &path, NONE, |stream, data| {
            if stream == crate::api::STDERR {
                let _ = std::io::stderr().write_all(data);
                return;
            }
            pending.extend_from_slice(data);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = pending.drain(..=nl).collect();
                let text = if args.json {
                    String::from_utf8_lossy(&raw).trim_end().to_string()
                } else {
                    match serde_json::from_slice::<Event>(&raw) {
                        Ok(e) => line(&e),
                        Err(_) => continue,
                    }
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        })
        .await?;
    Ok(0)
}
