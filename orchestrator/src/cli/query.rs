//! `berth top|port|images|wait`: what the project's containers run, publish and use, and
//! waiting for them to exit.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use hyper::Method;
use tokio::task::JoinSet;

use super::lifecycle::{request, select, Target};
use super::{image, port, ProjectArgs};
use crate::api::{ContainerInfo, ImageSummary};
use crate::client::Client;
use crate::engine::project_ops::Top;
use crate::engine::projects::DownRequest;
use crate::engine::translate::SERVICE;

const NONE: Option<&()> = None;

/// Flags of `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    target: Target,
}

/// Flags of `port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Replica number.
    #[arg(long, default_value_t = 1)]
    index: u32,
    service: String,
    /// The container's port.
    private_port: u16,
}

/// Flags of `images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Only the image ids.
    #[arg(short, long)]
    quiet: bool,
    services: Vec<String>,
}

/// Flags of `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Take the project down once the first container exits.
    #[arg(long)]
    down_project: bool,
    #[arg(required = true)]
    services: Vec<String>,
}

/// Runs `berth top`: each running container's processes, `ps -ef` style.
pub async fn top(root: &Path, project: &ProjectArgs, args: TopArgs) -> anyhow::Result<u8> {
    let (name, req) = request(project, &args.target)?;
    let client = Client::connect(root).await?;
    let tops: Vec<Top> = client
        .call(Method::POST, &format!("/projects/{name}/top"), Some(&req))
        .await?;
    for (i, t) in tops.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", t.name);
        let mut widths: Vec<usize> = t.titles.iter().map(String::len).collect();
        for p in &t.processes {
            for (w, cell) in widths.iter_mut().zip(p) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            let last = cells.len().saturating_sub(1);
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.clone()
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(&t.titles));
        for p in &t.processes {
            println!("{}", line(p));
        }
    }
    Ok(0)
}

/// Runs `berth port`: the host address of a replica's container port.
pub async fn port(root: &Path, project: &ProjectArgs, args: PortArgs) -> anyhow::Result<u8> {
    let target = Target {
        index: Some(args.index),
        services: vec![args.service],
    };
    let (name, req) = request(project, &target)?;
    let client = Client::connect(root).await?;
    let list = select(&client, &name, &req).await?;
    let c = list
        .first()
        .context("the service has no container (run `berth up` first)")?;
    let filter = format!("{}/{}", args.private_port, args.protocol);
    port::run(&client, &c.name, Some(&filter)).await
}

/// `registry/repo:tag` into (`registry/repo`, `tag`).
fn split_reference(r: &str) -> (&str, &str) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (r, "latest"),
    }
}

/// Runs `berth images`: the image each container uses.
pub async fn images(root: &Path, project: &ProjectArgs, args: ImagesArgs) -> anyhow::Result<u8> {
    let target = Target {
        index: None,
        services: args.services,
    };
    let (name, req) = request(project, &target)?;
    let client = Client::connect(root).await?;
    let list: Vec<ContainerInfo> = select(&client, &name, &req).await?;
    let images: Vec<ImageSummary> = client.call(Method::GET, "/images/json", NONE).await?;
    let size = |id: &str| images.iter().find(|i| i.id == id).map(|i| i.size);
    if args.quiet {
        let mut ids: Vec<&str> = list
            .iter()
            .map(|c| image::short(&c.config.image_id))
            .collect();
        ids.dedup();
        ids.iter().for_each(|i| println!("{i}"));
        return Ok(0);
    }
    match args.format.as_str() {
        "json" => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|c| {
                    let (repo, tag) = split_reference(&c.image);
                    serde_json::json!({
                        "ContainerName": c.name,
                        "Repository": repo,
                        "Tag": tag,
                        "ID": c.config.image_id,
                        "Size": size(&c.config.image_id).unwrap_or(0),
                        "Service": c.config.labels.get(SERVICE),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&rows)?);
        }
        "table" => {
            println!(
                "{:<32}  {:<32}  {:<12}  {:<12}  SIZE",
                "CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"
            );
            for c in &list {
                let (repo, tag) = split_reference(&c.image);
                println!(
                    "{:<32}  {:<32}  {:<12}  {:<12}  {}",
                    c.name,
                    repo,
                    tag,
                    image::short(&c.config.image_id),
                    size(&c.config.image_id)
                        .map(image::human)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        f => anyhow::bail!("unknown --format {f:?}: use table or json"),
    }
    Ok(0)
}

/// Runs `berth wait`: blocks until every container of the services has exited, printing each
/// exit; the exit code is the last one's, as Compose's. With `--down-project`, the project is
/// taken down as soon as the first exits.
pub async fn wait(root: &Path, project: &ProjectArgs, args: WaitArgs) -> anyhow::Result<u8> {
    let target = Target {
        index: None,
        services: args.services,
    };
    let (name, req) = request(project, &target)?;
    let client = Client::connect(root).await?;
    let list = select(&client, &name, &req).await?;
    if list.is_empty() {
        anyhow::bail!("no containers for the given services (run `berth up` first)");
    }
    let mut set = JoinSet::new();
    for c in list {
        let client = client.clone();
        set.spawn(async move {
            let v: anyhow::Result<serde_json::Value> = client
                .call(Method::POST, &format!("/containers/{}/wait", c.id), NONE)
                .await;
            (c.name, v)
        });
    }
    let mut code = 0;
    while let Some(done) = set.join_next().await {
        let (cname, v) = done.context("wait task")?;
        let status = v?["StatusCode"].as_i64().unwrap_or(255);
        println!("container {cname:?} exited with status code {status}");
        code = status.clamp(0, 255) as u8;
        if args.down_project {
            set.abort_all();
            let down = DownRequest {
                project: None,
                ..DownRequest::default()
            };
            super::up::send(&client, &format!("/projects/{name}/down"), &down).await?;
            break;
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("bb:latest"), ("bb", "latest"));
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b", "v1")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", "latest")
        );
    }
}
