//! Dockerfile builds in the engine: `POST /images/build` (a frame stream of step lines and RUN
//! output, then the result), and the builds `up` makes for compose services with `build:`
//! (those whose image is missing, or all of them with `up --build`); containers whose image
//! reference now names another image are seen as changed, so `up` recreates them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use runtime::image::{BuildOptions, Built};
use tokio::sync::mpsc;
use tracing::instrument;

use super::{translate, Engine, EngineError};
use crate::api::{self, BuildImage};
use crate::compose::Project;

fn line(tx: &mpsc::Sender<Vec<u8>>, text: &str) {
    let _ = tx.blocking_send(api::frame(api::STDOUT, format!("{text}\n").as_bytes()));
}

/// Builds one image, streaming its progress to `tx`.
#[instrument(skip(engine, req, tx), fields(context = %req.context))]
pub async fn build(
    engine: &Arc<Engine>,
    req: BuildImage,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<Built, EngineError> {
    let context = PathBuf::from(&req.context);
    if !context.is_absolute() {
        return Err(EngineError::BadRequest(format!(
            "build context {:?} is not absolute",
            req.context
        )));
    }
    let opts = BuildOptions {
        context,
        dockerfile: req.dockerfile.map(PathBuf::from),
        tags: req.tags,
        build_args: req.build_args,
        target: req.target,
        no_cache: req.no_cache,
    };
    let e = engine.clone();
    tokio::task::spawn_blocking(move || {
        let report = |l: &str| line(&tx, l);
        let built = e.images.build(&e.runtime, &opts, &report)?;
        line(
            &tx,
            &format!(
                "Successfully built {} ({} steps, {} cached)",
                built.id, built.steps, built.cached
            ),
        );
        for t in &built.tags {
            line(&tx, &format!("Successfully tagged {t}"));
        }
        Ok(built)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("worker task failed: {e}")))?
}

/// A container's config hash as the planner should see it: marked stale when its image
/// reference now names another image (rebuilt or pulled since), so `up` recreates it.
pub fn observed_hash(engine: &Engine, spec: &runtime::spec::ContainerSpec, hash: String) -> String {
    match engine.images.get(&spec.image) {
        Ok(img) if !spec.image_id.is_empty() && img.id != spec.image_id => {
            format!("{hash}+image-changed")
        }
        _ => hash,
    }
}

/// The build request of a compose service with `build:`; its image is `image:` or
/// `PROJECT-SERVICE`. Build args without a value take the engine's environment, or are left out.
pub fn service_request(project: &Project, name: &str) -> Result<Option<BuildImage>, EngineError> {
    let Some(svc) = project.services.get(name) else {
        return Err(EngineError::BadRequest(format!("no such service: {name}")));
    };
    let Some(b) = &svc.build else {
        return Ok(None);
    };
    if b.context.contains("://") || b.context.starts_with("git@") {
        return Err(EngineError::BadRequest(format!(
            "service {name}: remote build context {} is not supported",
            b.context
        )));
    }
    let build_args: BTreeMap<String, String> = b
        .args
        .iter()
        .filter_map(|(k, v)| {
            v.clone()
                .or_else(|| std::env::var(k).ok())
                .map(|v| (k.clone(), v))
        })
        .collect();
    Ok(Some(BuildImage {
        context: b.context.clone(),
        dockerfile: b.dockerfile.clone(),
        tags: vec![translate::image_of(project, name, svc)],
        build_args,
        target: b.target.clone(),
        no_cache: false,
    }))
}

/// Builds the images of `services` (every service when empty) that have `build:`: all of them
/// with `always`, otherwise only those whose image is not in the store.
pub async fn build_services(
    engine: &Arc<Engine>,
    project: &Project,
    services: &BTreeSet<String>,
    always: bool,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    for name in project.services.keys() {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(req) = service_request(project, name)? else {
            continue;
        };
        let present = req.tags.iter().all(|t| engine.images.get(t).is_ok());
        if present && !always {
            continue;
        }
        let _ = tx
            .send(api::frame(
                api::STDOUT,
                format!("Building {name} ({})\n", req.tags.join(", ")).as_bytes(),
            ))
            .await;
        build(engine, req, tx.clone()).await?;
    }
    Ok(())
}
