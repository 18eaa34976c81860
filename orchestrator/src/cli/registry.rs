//! `berth pull` and `berth push`: the services' images from and to their registries, through
//! the engine's image transfer (the same as `berth image pull|push`), one image at a time.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Args;

use super::{image_transfer, run, up, ProjectArgs};
use crate::client::{enc, Client};
use crate::engine::translate;

/// Flags of `pull` and `push`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Go on with the other images when one fails (exit 0).
    #[arg(long, alias = "ignore-push-failures")]
    ignore_pull_failures: bool,
    /// Print no progress.
    #[arg(short, long)]
    quiet: bool,
    /// Services (all when none).
    services: Vec<String>,
}

/// Runs `pull` (`push` false) or `push`: the images of services with an `image:` (`push` also
/// takes built-only services' `PROJECT-SERVICE` images), each once. A failure stops the run
/// with exit 1 unless `--ignore-pull-failures`, which reports it and goes on.
pub async fn run(
    root: &Path,
    project: &ProjectArgs,
    push: bool,
    args: TransferArgs,
) -> anyhow::Result<u8> {
    let loaded = up::load(project)?;
    for s in &args.services {
        run::check_service(&loaded, s)?;
    }
    let mut images = BTreeSet::new();
    for (name, svc) in &loaded.services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        if svc.image.is_some() || (push && svc.build.is_some()) {
            images.insert(translate::image_of(&loaded, name, svc));
        }
    }
    let client = Client::connect(root).await?;
    let op = if push { "push" } else { "pull" };
    for image in images {
        if !args.quiet {
            println!("{} {image}", if push { "Pushing" } else { "Pulling" });
        }
        let path = format!("/images/{op}?ref={}", enc(&image));
        let result = if args.quiet {
            quiet(&client, &path).await
        } else {
            image_transfer::streamed(&client, &path, None::<&()>).await
        };
        let failed = match result {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => {
                eprintln!("berth: {op} {image}: {e:#}");
                true
            }
        };
        if failed && !args.ignore_pull_failures {
            return Ok(1);
        }
    }
    Ok(0)
}

/// A transfer with only its errors printed.
async fn quiet(client: &Client, path: &str) -> anyhow::Result<u8> {
    let code = client
        .stream(hyper::Method::POST, path, None::<&()>, |stream, data| {
            if stream == crate::api::STDERR {
                eprint!("berth: {}", String::from_utf8_lossy(data));
            }
        })
        .await?;
    Ok(code.unwrap_or(1).clamp(0, 255) as u8)
}
