//! `berth down`: stop and remove the project's containers in reverse dependency order, its
//! networks and, with `-v`, its volumes.

use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{up, ProjectArgs};
use crate::client::Client;
use crate::engine::projects::DownRequest;

/// Flags of `berth down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes too.
    #[arg(short, long)]
    volumes: bool,
    #[arg(long)]
    remove_orphans: bool,
    /// Seconds to wait for each container to stop.
    #[arg(short, long)]
    timeout: Option<u64>,
    /// Remove images used by services too: `local` (those without an `image:` of their own,
    /// built as PROJECT-SERVICE) or `all`.
    #[arg(long, value_parser = ["local", "all"])]
    rmi: Option<String>,
}

/// The images `down --rmi` removes: every service's, or only the ones named after the project.
fn images_to_remove(project: &crate::compose::Project, rmi: &str) -> Vec<String> {
    let mut refs: Vec<String> = project
        .services
        .iter()
        .filter(|(_, s)| rmi == "all" || s.image.is_none())
        .map(|(name, s)| crate::engine::translate::image_of(project, name, s))
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

/// Runs `berth down`. Works without the compose file when `-p` names the project.
pub async fn run(root: &Path, project: &ProjectArgs, args: DownArgs) -> anyhow::Result<u8> {
    let loaded = match (&project.project_name, project.files.is_empty()) {
        (Some(_), true) => up::load(project).ok(),
        _ => Some(up::load(project)?),
    };
    let name = loaded
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| project.project_name.clone())
        .unwrap_or_default();
    let images = match (&args.rmi, &loaded) {
        (Some(rmi), Some(p)) => images_to_remove(p, rmi),
        (Some(_), None) => anyhow::bail!("down --rmi needs the compose file to know the images"),
        (None, _) => Vec::new(),
    };
    let req = DownRequest {
        project: loaded,
        volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
    };
    let client = Client::connect(root).await?;
    let code = up::send(&client, &format!("/projects/{name}/down"), &req).await?;
    if code != 0 {
        return Ok(code);
    }
    // Images never pulled or built (or already gone) are skipped: the store lists references
    // in Docker's short form, which the compose names are brought to.
    let stored: Vec<crate::api::ImageSummary> = if images.is_empty() {
        Vec::new()
    } else {
        client
            .call(Method::GET, "/images/json", None::<&()>)
            .await?
    };
    let present = |image: &str| {
        runtime::image::Reference::parse(image).is_ok_and(|r| {
            let short = r.familiar();
            stored.iter().any(|i| i.references.contains(&short))
        })
    };
    let mut code = 0;
    for image in images.iter().filter(|i| present(i)) {
        let path = format!("/images?ref={}", crate::client::enc(image));
        match client
            .call::<serde_json::Value>(Method::DELETE, &path, None::<&()>)
            .await
        {
            Ok(_) => println!("Image {image}  Removed"),
            Err(e) => {
                eprintln!("berth: remove image {image}: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}
