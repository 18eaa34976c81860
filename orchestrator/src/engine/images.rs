//! Image operations of the engine, run on blocking worker threads.

use std::sync::Arc;

use super::{Engine, EngineError};
use crate::api::{ImageSummary, ImportImage};

fn summary(i: &runtime::image::Image) -> ImageSummary {
    ImageSummary {
        id: i.id.clone(),
        references: i.references.clone(),
        created: i.created.clone(),
        size: i.size,
    }
}

async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let e = engine.clone();
    tokio::task::spawn_blocking(move || f(&e))
        .await
        .map_err(|e| EngineError::Internal(format!("worker task failed: {e}")))?
}

/// Imports a rootfs tarball as a one-layer image.
pub async fn import(engine: &Arc<Engine>, req: ImportImage) -> Result<ImageSummary, EngineError> {
    blocking(engine, move |e| {
        let file = std::fs::File::open(&req.path)
            .map_err(|err| EngineError::BadRequest(format!("open {}: {err}", req.path)))?;
        let img = e
            .images
            .import(std::io::BufReader::new(file), &req.reference)?;
        Ok(summary(&img))
    })
    .await
}

/// Every image.
pub async fn list(engine: &Arc<Engine>) -> Result<Vec<ImageSummary>, EngineError> {
    blocking(engine, |e| {
        Ok(e.images.list()?.iter().map(summary).collect())
    })
    .await
}

/// One image's full record.
pub async fn inspect(
    engine: &Arc<Engine>,
    reference: String,
) -> Result<serde_json::Value, EngineError> {
    blocking(engine, move |e| {
        let i = e.images.get(&reference)?;
        Ok(serde_json::json!({
            "id": i.id,
            "references": i.references,
            "created": i.created,
            "size": i.size,
            "config": i.config,
            "layers": i.layers,
        }))
    })
    .await
}

/// Adds a reference to an image.
pub async fn tag(engine: &Arc<Engine>, src: String, dst: String) -> Result<(), EngineError> {
    blocking(engine, move |e| Ok(e.images.tag(&src, &dst)?)).await
}

/// Removes a reference (and the image when it was the last one).
pub async fn remove(
    engine: &Arc<Engine>,
    reference: String,
    force: bool,
) -> Result<Vec<String>, EngineError> {
    blocking(engine, move |e| {
        Ok(e.images
            .remove(&reference, force, &|id| e.image_in_use(id))?)
    })
    .await
}

/// Removes images no reference and no container uses.
pub async fn prune(engine: &Arc<Engine>) -> Result<Vec<String>, EngineError> {
    blocking(engine, move |e| {
        Ok(e.images.prune(&|id| e.image_in_use(id))?)
    })
    .await
}
