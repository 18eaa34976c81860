//! `berth cp SERVICE:PATH HOST_PATH` and `berth cp HOST_PATH SERVICE:PATH`: copies files
//! between a service's running replica (`--index N`, default 1) and the host as a tar stream
//! through the engine, with Docker's rules for `DIR`, `DIR/.` and existing destinations.
//! Paths inside the container are resolved by the engine and never leave its root; entries
//! extracted on the host never leave the destination.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use tokio::sync::mpsc;

use super::{ps, ProjectArgs};
use crate::api::{ContainerInfo, Status};
use crate::client::{enc, Client};
use crate::engine::copy::{self, ChannelReader, ChannelWriter, CopyError, Extracted, Root};
use crate::engine::translate::{NUMBER, SERVICE};

const NONE: Option<&()> = None;

/// Flags of `berth cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Replica of the service.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// SERVICE:PATH or a host path.
    src: String,
    /// SERVICE:PATH or a host path.
    dest: String,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Host(PathBuf),
    Service { service: String, path: String },
}

/// `SERVICE:PATH`, or a host path (one starting with `/` or `.` is always a host path, so a
/// host file with a colon in its name is given as `./a:b`).
pub fn parse(arg: &str) -> Location {
    if !arg.starts_with('/') && !arg.starts_with('.') {
        if let Some((service, path)) = arg.split_once(':') {
            if !service.is_empty() {
                return Location::Service {
                    service: service.to_string(),
                    path: path.to_string(),
                };
            }
        }
    }
    Location::Host(PathBuf::from(arg))
}

/// A path inside the container, relative ones taken from its working directory.
fn in_container(c: &ContainerInfo, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        let wd = c.config.working_dir.trim_end_matches('/');
        format!("{wd}/{}", if path.is_empty() { "." } else { path })
    }
}

async fn replica(
    client: &Client,
    project: &str,
    service: &str,
    index: u32,
) -> anyhow::Result<ContainerInfo> {
    let list: Vec<ContainerInfo> = client
        .call(Method::GET, &format!("/projects/{}/ps", enc(project)), NONE)
        .await?;
    let svc = |c: &ContainerInfo| c.config.labels.get(SERVICE).cloned().unwrap_or_default();
    if !list.iter().any(|c| svc(c) == service) {
        let mut known: Vec<String> = list.iter().map(svc).collect();
        known.dedup();
        bail!("no such service: {service:?} (the project has {known:?})");
    }
    let c = list
        .into_iter()
        .find(|c| svc(c) == service && c.config.labels.get(NUMBER) == Some(&index.to_string()))
        .ok_or_else(|| anyhow!("service {service} has no replica {index}"))?;
    if !matches!(c.state.status, Status::Running | Status::Paused) {
        bail!("{} is not running: cp needs a running replica", c.name);
    }
    Ok(c)
}

fn host_path(p: &Path) -> anyhow::Result<String> {
    let abs = copy::absolute(p).context("read the working directory")?;
    let mut text = copy::path_text(&abs);
    if p.to_string_lossy().ends_with('/') && !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

/// Runs `berth cp`.
pub async fn run(root: &Path, project: &ProjectArgs, args: CpArgs) -> anyhow::Result<u8> {
    let (src, dest) = (parse(&args.src), parse(&args.dest));
    let name = ps::project_name(project)?;
    match (src, dest) {
        (Location::Service { service, path }, Location::Host(dest)) => {
            let client = Client::connect(root).await?;
            let c = replica(&client, &name, &service, args.index).await?;
            let path = in_container(&c, &path);
            let rx = client
                .download(&format!("/containers/{}/archive?path={}", c.id, enc(&path)))
                .await
                .with_context(|| format!("copy {service}:{path}"))?;
            let dest = host_path(&dest)?;
            let shown = dest.clone();
            tokio::task::spawn_blocking(move || {
                copy::extract(&Root::host()?, &dest, ChannelReader::new(rx))
            })
            .await
            .context("copy worker")?
            .with_context(|| format!("copy {service}:{path} to {shown}"))?;
        }
        (Location::Host(src), Location::Service { service, path }) => {
            let src = host_path(&src)?;
            let host = Root::host().context("open the host's root")?;
            copy::probe(&host, &src).with_context(|| format!("copy {src}"))?;
            let client = Client::connect(root).await?;
            let c = replica(&client, &name, &service, args.index).await?;
            let path = in_container(&c, &path);
            // The archive is written as it is sent: nothing is held in memory.
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
            let shown = src.clone();
            let writer = tokio::task::spawn_blocking(move || {
                copy::archive(&host, &src, ChannelWriter::new(tx))
            });
            let (btx, brx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if btx.send(Bytes::from(chunk)).await.is_err() {
                        break;
                    }
                }
            });
            let sent: anyhow::Result<Extracted> = client
                .upload(
                    Method::PUT,
                    &format!("/containers/{}/archive?path={}", c.id, enc(&path)),
                    brx,
                )
                .await;
            // A failure to read the host files explains a broken upload better than the
            // engine's view of a truncated archive; the engine's refusal explains the
            // archive's broken pipe better than the pipe does.
            if let Err(e) = writer.await.context("copy worker")? {
                let pipe = matches!(&e, CopyError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::BrokenPipe);
                if sent.is_ok() || !pipe {
                    return Err(e).with_context(|| format!("copy {shown}"));
                }
            }
            sent.with_context(|| format!("copy {shown} to {service}:{path}"))?;
        }
        (Location::Host(_), Location::Host(_)) => {
            bail!("cp copies between a service and the host: give SERVICE:PATH on one side")
        }
        (Location::Service { .. }, Location::Service { .. }) => {
            bail!("cp copies between a service and the host: copying between two services is not supported")
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            parse("web:/etc/hostname"),
            Location::Service {
                service: "web".into(),
                path: "/etc/hostname".into()
            }
        );
        assert_eq!(parse("./a:b"), Location::Host("./a:b".into()));
        assert_eq!(parse("/tmp/x"), Location::Host("/tmp/x".into()));
        assert_eq!(parse("out"), Location::Host("out".into()));
        assert_eq!(parse(":x"), Location::Host(":x".into()));
    }
}
