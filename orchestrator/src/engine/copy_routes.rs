//! HTTP side of `berth cp`: `GET /containers/{id}/archive?path=P` answers a tar stream of `P`
//! inside the container, `PUT /containers/{id}/archive?path=P` extracts the tar body to `P`
//! (see [`super::copy`] for the path rules and how paths stay inside the container).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;
use tracing::{instrument, warn};

use super::containers::blocking;
use super::copy::{self, ChannelReader, ChannelWriter, CopyError, Root};
use super::record::Container;
use super::routes::{json, stream, Body};
use super::EngineError;
use crate::api::Status;

fn engine_error(e: CopyError) -> EngineError {
    let text = super::routes::error_chain(&e);
    match e {
        _ if e.is_not_found() => EngineError::NotFound(text),
        CopyError::Invalid(_) => EngineError::BadRequest(text),
        _ => EngineError::Internal(text),
    }
}

/// The root of a running container, checked to be its init still (not a reused pid).
fn container_root(c: &Container) -> Result<Root, EngineError> {
    let st = c.state();
    let pid = match (st.status, st.pid) {
        (Status::Running | Status::Paused, Some(pid)) => pid,
        _ => {
            return Err(EngineError::Conflict(format!(
                "container {} is not running: cp needs a running container",
                c.name
            )))
        }
    };
    let root = Root::container(pid).map_err(engine_error)?;
    if runtime::sys::process_start_time(pid) != st.pid_start_time {
        return Err(EngineError::Conflict(format!(
            "container {} stopped meanwhile",
            c.name
        )));
    }
    Ok(root)
}

/// `GET /containers/{id}/archive?path=P`.
#[instrument(skip(c), fields(container = %c.id))]
pub async fn get(c: &Arc<Container>, path: String) -> Result<Response<Body>, EngineError> {
    let root = container_root(c)?;
    let (root, path) = blocking(move || {
        copy::probe(&root, &path).map_err(engine_error)?;
        Ok((root, path))
    })
    .await?;
    let (tx, rx) = mpsc::channel(16);
    let name = c.name.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = copy::archive(&root, &path, ChannelWriter::new(tx)) {
            warn!(container = %name, error = %e, "cp: archive");
        }
    });
    let mut r = stream(rx);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `PUT /containers/{id}/archive?path=P`.
#[instrument(skip(c, req), fields(container = %c.id))]
pub async fn put(
    c: &Arc<Container>,
    req: Request<Incoming>,
    path: String,
) -> Result<Response<Body>, EngineError> {
    let root = container_root(c)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut body = req.into_body();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if tx.send(data).await.is_err() {
                    break;
                }
            }
        }
    });
    let done =
        blocking(move || copy::extract(&root, &path, ChannelReader::new(rx)).map_err(engine_error))
            .await?;
    Ok(json(StatusCode::OK, &done))
}
