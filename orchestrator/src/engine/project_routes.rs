//! HTTP routes of projects (`/projects/...`) and volumes (`/volumes/...`). Long operations
//! (`up`, `down`, `scale`) answer with a frame stream: progress lines, then the error (stderr)
//! if any, then the exit code frame.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::routes::{body_json, error_chain, json, stream, Body};
use super::{projects, volumes, Engine, EngineError};
use crate::api;

pub(super) fn streamed<F>(f: impl FnOnce(mpsc::Sender<Vec<u8>>) -> F) -> Response<Body>
where
    F: Future<Output = Result<(), EngineError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let fut = f(tx.clone());
    tokio::spawn(async move {
        let code = match fut.await {
            Ok(()) => 0,
            Err(e) => {
                let _ = tx
                    .send(api::frame(
                        api::STDERR,
                        format!("{}\n", error_chain(&e)).as_bytes(),
                    ))
                    .await;
                1
            }
        };
        let _ = tx
            .send(api::frame(api::EXIT, code.to_string().as_bytes()))
            .await;
    });
    stream(rx)
}

/// `/projects/...`.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Result<Response<Body>, EngineError> {
    match (method, rest) {
        (&Method::GET, []) => Ok(json(StatusCode::OK, &projects::list(&engine))),
        (&Method::POST, [name, "up"]) => {
            let body: projects::UpRequest = body_json(req).await?;
            if body.project.name != *name {
                return Err(EngineError::BadRequest(format!(
                    "project name mismatch: {} vs {name}",
                    body.project.name
                )));
            }
            Ok(streamed(move |tx| async move {
                projects::up(&engine, body, tx).await
            }))
        }
        (&Method::POST, [name, "down"]) => {
            let body: projects::DownRequest = body_json(req).await?;
            let name = name.to_string();
            Ok(streamed(move |tx| async move {
                projects::down(&engine, &name, body, tx).await
            }))
        }
        (&Method::POST, [name, "scale"]) => {
            let body: BTreeMap<String, u32> = body_json(req).await?;
            let name = name.to_string();
            Ok(streamed(move |tx| async move {
                projects::scale(&engine, &name, body, tx).await
            }))
        }
        (&Method::GET, [name, "ps"]) => {
            Ok(json(StatusCode::OK, &projects::ps(&engine, name).await))
        }
        (&Method::GET, [name]) => Ok(json(StatusCode::OK, &projects::stored(&engine, name)?)),
        (&Method::POST, [name, op]) if super::project_ops::OPS.contains(op) => {
            super::project_ops::route(engine, req, name, op).await
        }
        _ => Err(EngineError::NotFound(format!(
            "no such endpoint: {method} /projects/{}",
            rest.join("/")
        ))),
    }
}

/// `/volumes/...`.
pub async fn volume_route(
    engine: Arc<Engine>,
    method: &Method,
    rest: &[&str],
) -> Result<Response<Body>, EngineError> {
    let in_use = |name: &str| {
        let mount = engine.root.join("volumes").join(name).join("_data");
        engine.all().iter().any(|c| {
            c.spec
                .mounts
                .iter()
                .any(|m| matches!(&m.kind, api::MountKind::Bind { source } if *source == mount))
        })
    };
    match (method, rest) {
        (&Method::GET, []) => Ok(json(StatusCode::OK, &volumes::list(&engine.root))),
        (&Method::POST, ["create", name]) => Ok(json(
            StatusCode::CREATED,
            &volumes::create(&engine.root, name, BTreeMap::new())?,
        )),
        (&Method::GET, [name]) => Ok(json(StatusCode::OK, &volumes::get(&engine.root, name)?)),
        (&Method::DELETE, [name]) => {
            volumes::get(&engine.root, name)?;
            if in_use(name) {
                return Err(EngineError::Conflict(format!(
                    "volume {name} is in use by a container: remove the container first"
                )));
            }
            volumes::remove(&engine.root, name)?;
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        (&Method::POST, ["prune"]) => {
            let mut removed = Vec::new();
            for v in volumes::list(&engine.root) {
                if !in_use(&v.name) {
                    volumes::remove(&engine.root, &v.name)?;
                    removed.push(v.name);
                }
            }
            Ok(json(StatusCode::OK, &removed))
        }
        _ => Err(EngineError::NotFound(format!(
            "no such endpoint: {method} /volumes/{}",
            rest.join("/")
        ))),
    }
}
