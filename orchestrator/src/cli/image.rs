//! `berth image ...`: the image store.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use hyper::Method;

use crate::api::{ImageSummary, ImportImage};
use crate::client::{enc, Client};

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Make a one-layer image from a rootfs tarball (like `docker import`).
    Import { tarball: String, reference: String },
    /// List images.
    #[command(alias = "list")]
    Ls {
        #[arg(long)]
        format: Option<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show images' full records as JSON.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Add a reference to an image.
    Tag { source: String, target: String },
    /// Remove images (refused while a container uses one, unless -f).
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images no reference and no container uses.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// Write images to an OCI or Docker archive.
    Save {
        /// The archive to write.
        #[arg(short, long, required = true)]
        output: String,
        /// `oci` (OCI image layout) or `docker` (`docker save`'s format).
        #[arg(long, default_value = "oci")]
        format: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an OCI or Docker archive.
    Load {
        /// The archive to read.
        #[arg(short, long, required = true)]
        input: String,
    },
    /// Download an image from its registry.
    Pull { image: String },
    /// Upload an image to its registry.
    Push { image: String },
    /// Store credentials for a registry.
    Login {
        #[arg(short, long, required = true)]
        username: String,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        registry: String,
    },
    /// Forget the credentials for a registry.
    Logout { registry: String },
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
}

/// Flags of `berth image build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name (and optionally tag) of the image: NAME[:TAG]; repeatable.
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Build-time variable KEY=VALUE (KEY alone takes it from the environment); repeatable.
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The build context directory.
    pub context: String,
}

pub(super) const NONE: Option<&()> = None;

/// Runs a `berth image` command.
pub async fn run(root: &Path, cmd: ImageCmd) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    match cmd {
        ImageCmd::Import { tarball, reference } => {
            let path = std::fs::canonicalize(&tarball)
                .with_context(|| format!("import: {tarball} not found"))?;
            let req = ImportImage {
                path: path.display().to_string(),
                reference,
            };
            let img: ImageSummary = client
                .call(Method::POST, "/images/import", Some(&req))
                .await?;
            println!("{}", img.id);
        }
        ImageCmd::Ls { format, quiet } => {
            let list: Vec<ImageSummary> = client.call(Method::GET, "/images/json", NONE).await?;
            match format.as_deref() {
                Some("json") => println!("{}", serde_json::to_string(&list)?),
                Some(f) => anyhow::bail!("unknown --format {f:?}: use json"),
                None if quiet => list.iter().for_each(|i| println!("{}", short(&i.id))),
                None => {
                    println!(
                        "{:<48}  {:<12}  {:<30}  SIZE",
                        "REFERENCE", "IMAGE ID", "CREATED"
                    );
                    for i in &list {
                        let refs = if i.references.is_empty() {
                            vec!["<none>".to_string()]
                        } else {
                            i.references.clone()
                        };
                        for r in refs {
                            println!(
                                "{:<48}  {:<12}  {:<30}  {}",
                                r,
                                short(&i.id),
                                i.created,
                                human(i.size)
                            );
                        }
                    }
                }
            }
        }
        ImageCmd::Inspect { images } => {
            let mut out = Vec::new();
            for i in &images {
                let v: serde_json::Value = client
                    .call(
                        Method::GET,
                        &format!("/images/inspect?ref={}", enc(i)),
                        NONE,
                    )
                    .await?;
                out.push(v);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ImageCmd::Tag { source, target } => {
            client
                .call::<serde_json::Value>(
                    Method::POST,
                    &format!("/images/tag?src={}&dst={}", enc(&source), enc(&target)),
                    NONE,
                )
                .await?;
        }
        ImageCmd::Rm { force, images } => {
            let mut code = 0;
            for i in &images {
                let path = format!(
                    "/images?ref={}{}",
                    enc(i),
                    if force { "&force=1" } else { "" }
                );
                match client
                    .call::<Vec<String>>(Method::DELETE, &path, NONE)
                    .await
                {
                    Ok(removed) => removed.iter().for_each(|r| println!("Deleted: {r}")),
                    Err(e) => {
                        eprintln!("berth: {e:#}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        ImageCmd::Prune { .. } => {
            let removed: Vec<String> = client.call(Method::POST, "/images/prune", NONE).await?;
            removed.iter().for_each(|r| println!("Deleted: {r}"));
        }
        cmd => return super::image_transfer::run(&client, cmd).await,
    }
    Ok(0)
}

pub(super) fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

pub(super) fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1}MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}kB", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}
