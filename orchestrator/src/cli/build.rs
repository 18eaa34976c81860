//! `berth build [SERVICE...]`: builds the images of the project's services that have `build:`
//! (image named by `image:` or `PROJECT-SERVICE`), one engine build per service.

use std::path::Path;

use anyhow::bail;
use clap::Args;

use super::image_transfer::{parse_build_args, streamed};
use super::{up, ProjectArgs};
use crate::client::Client;
use crate::engine::image_build::service_request;

/// Flags of `berth build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// KEY=VALUE overriding the services' build args; repeatable.
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Services to build (default: every service with `build:`).
    services: Vec<String>,
}

/// Runs `berth build`.
pub async fn run(root: &Path, project: &ProjectArgs, args: BuildArgs) -> anyhow::Result<u8> {
    let loaded = up::load(project)?;
    for s in &args.services {
        if !loaded.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let overrides = parse_build_args(&args.build_arg);
    let client = Client::connect(root).await?;
    for name in loaded.services.keys() {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let Some(mut req) = service_request(&loaded, name)? else {
            if args.services.contains(name) {
                eprintln!("{name}: no build section, skipped");
            }
            continue;
        };
        req.no_cache = args.no_cache;
        req.build_args.extend(overrides.clone());
        println!("Building {name} ({})", req.tags.join(", "));
        let code = streamed(&client, "/images/build", Some(&req)).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}
