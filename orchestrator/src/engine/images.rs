//! Image operations of the engine, run on blocking worker threads. Archives (`save`, `load`)
//! and registry transfers (`pull`, `push`) answer with a frame stream of progress lines: one
//! `LAYER: STATUS` line per change of a layer, then the result.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use runtime::image::{ArchiveFormat, Progress, RegistryOptions, TransferState};
use tokio::sync::mpsc;

use super::project_routes::streamed;
use super::routes::{body_json, json, Body};
use super::{Engine, EngineError};
use crate::api::{self, ImageSummary, ImportImage, LoadImages, RegistryLogin, SaveImages};

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

/// `POST /images/{save,load,pull,push,login,logout,build}`.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    op: &str,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, EngineError> {
    let reference = q.get("ref").cloned().unwrap_or_default();
    match op {
        "save" => {
            let body: SaveImages = body_json(req).await?;
            Ok(streamed(
                move |tx| async move { save(&engine, body, tx).await },
            ))
        }
        "load" => {
            let body: LoadImages = body_json(req).await?;
            Ok(streamed(
                move |tx| async move { load(&engine, body, tx).await },
            ))
        }
        "build" => {
            let body: crate::api::BuildImage = body_json(req).await?;
            Ok(streamed(move |tx| async move {
                super::image_build::build(&engine, body, tx).await.map(drop)
            }))
        }
        "pull" => Ok(streamed(move |tx| async move {
            pull(&engine, reference, tx).await
        })),
        "push" => Ok(streamed(move |tx| async move {
            push(&engine, reference, tx).await
        })),
        "login" => {
            let body: RegistryLogin = body_json(req).await?;
            blocking(&engine, move |e| {
                Ok(e.images.login(
                    &body.registry,
                    &body.username,
                    &body.password,
                    &RegistryOptions::default(),
                )?)
            })
            .await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"status": "Login Succeeded"}),
            ))
        }
        _ => {
            let registry = q.get("registry").cloned().unwrap_or_default();
            let removed = blocking(&engine, move |e| Ok(e.images.logout(&registry)?)).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"removed": removed}),
            ))
        }
    }
}

fn line(tx: &mpsc::Sender<Vec<u8>>, text: &str) {
    let _ = tx.blocking_send(api::frame(api::STDOUT, format!("{text}\n").as_bytes()));
}

fn short(digest: &str) -> &str {
    let h = digest.split_once(':').map_or(digest, |(_, h)| h);
    &h[..h.len().min(12)]
}

fn mb(n: u64) -> String {
    format!("{:.1}MB", n as f64 / (1u64 << 20) as f64)
}

/// One progress line of a blob transfer; `verb` is `Downloading` or `Pushing`.
fn progress_line(p: &Progress, verb: &str, done: &str) -> String {
    let state = match p.state {
        TransferState::Exists => "Already exists".to_string(),
        TransferState::Mounted => "Mounted from another repository".to_string(),
        TransferState::Transferring if p.total > 0 => {
            format!("{verb} {}/{}", mb(p.done), mb(p.total))
        }
        TransferState::Transferring => format!("{verb} {}", mb(p.done)),
        TransferState::Done => done.to_string(),
    };
    format!("{}: {state}", short(&p.digest))
}

fn absolute(path: &str) -> Result<PathBuf, EngineError> {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(EngineError::BadRequest(format!(
            "archive path {path:?} is not absolute"
        )))
    }
}

/// Writes `req.references` as one archive; the file appears only once complete.
async fn save(
    engine: &Arc<Engine>,
    req: SaveImages,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    blocking(engine, move |e| {
        let format: ArchiveFormat = req.format.parse()?;
        let path = absolute(&req.path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| EngineError::BadRequest(format!("save: {} is not a file", req.path)))?;
        let tmp = path.with_file_name(format!(".{name}.berth-tmp"));
        let refs: Vec<&str> = req.references.iter().map(String::as_str).collect();
        let written = write_archive(e, &refs, format, &tmp);
        if let Err(err) = written.and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(|err| {
                EngineError::Internal(format!(
                    "save: rename {} to {}: {err}",
                    tmp.display(),
                    path.display()
                ))
            })
        }) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
        line(
            &tx,
            &format!("Saved {} to {}", req.references.join(", "), path.display()),
        );
        Ok(())
    })
    .await
}

fn write_archive(
    e: &Engine,
    refs: &[&str],
    format: ArchiveFormat,
    tmp: &Path,
) -> Result<(), EngineError> {
    let io_err = |step: &str, err: std::io::Error| {
        EngineError::BadRequest(format!("save: {step} {}: {err}", tmp.display()))
    };
    let file = std::fs::File::create(tmp).map_err(|err| io_err("create", err))?;
    let mut w = std::io::BufWriter::new(file);
    e.images.save(refs, format, &mut w)?;
    w.flush().map_err(|err| io_err("write", err))?;
    let file = w
        .into_inner()
        .map_err(|err| io_err("write", err.into_error()))?;
    file.sync_all().map_err(|err| io_err("sync", err))
}

/// Loads every image of an archive and names what it stored.
async fn load(
    engine: &Arc<Engine>,
    req: LoadImages,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    blocking(engine, move |e| {
        let path = absolute(&req.path)?;
        let file = std::fs::File::open(&path).map_err(|err| {
            EngineError::BadRequest(format!("load: open {}: {err}", path.display()))
        })?;
        for l in e.images.load(std::io::BufReader::new(file))? {
            if l.references.is_empty() {
                line(&tx, &format!("Loaded image ID: {}", l.id));
            }
            for r in &l.references {
                line(&tx, &format!("Loaded image: {r}"));
            }
        }
        Ok(())
    })
    .await
}

/// Pulls an image from its registry, a progress line per layer change.
pub(super) async fn pull(
    engine: &Arc<Engine>,
    reference: String,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    blocking(engine, move |e| {
        let report = |p: &Progress| line(&tx, &progress_line(p, "Downloading", "Pull complete"));
        let img = e
            .images
            .pull(&reference, &RegistryOptions::default(), &report)?;
        line(&tx, &format!("Digest: {}", img.manifest_digest));
        line(&tx, &format!("Status: Downloaded image for {reference}"));
        Ok(())
    })
    .await
}

/// Pushes a local image to its registry, a progress line per layer change.
async fn push(
    engine: &Arc<Engine>,
    reference: String,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), EngineError> {
    blocking(engine, move |e| {
        let report = |p: &Progress| line(&tx, &progress_line(p, "Pushing", "Pushed"));
        let digest = e
            .images
            .push(&reference, &RegistryOptions::default(), &report)?;
        line(&tx, &format!("{reference}: digest: {digest}"));
        Ok(())
    })
    .await
}
