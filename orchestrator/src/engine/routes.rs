//! Request routing: paths and methods to engine operations, errors to HTTP statuses, and the
//! streaming answers (logs, attach, exec) in the framing of [`crate::api`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::record::Container;
use super::{containers, images, networks, Engine, EngineError};
use crate::api::{self, ErrorBody, Status};

/// The body type of every answer.
pub type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, bytes: Vec<u8>, json: bool) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *r.status_mut() = status;
    if json {
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    }
    r
}

pub(super) fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => full(status, b, true),
        Err(e) => error(EngineError::Internal(format!("encode answer: {e}"))),
    }
}

fn error(e: EngineError) -> Response<Body> {
    let status = match &e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Image(runtime::image::ImageError::NotFound { .. }) => StatusCode::NOT_FOUND,
        EngineError::Conflict(_) => StatusCode::CONFLICT,
        EngineError::BadRequest(_) => StatusCode::BAD_REQUEST,
        EngineError::Network(n) => n.status(),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json(
        status,
        &ErrorBody {
            message: error_chain(&e),
        },
    )
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

pub(super) fn stream(rx: mpsc::Receiver<Vec<u8>>) -> Response<Body> {
    let s = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(Bytes::from(b))), rx))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(s)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
    );
    r
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, "1"));
            (decode(k), decode(v))
        })
        .collect()
}

fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "1" || v == "true")
}

pub(super) async fn body_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, EngineError> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| EngineError::BadRequest(format!("read request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::BadRequest(format!("request body: {e}")))
}

/// Handles one request.
pub async fn handle(
    engine: Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(route(engine, req).await.unwrap_or_else(error))
}

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Response<Body>, EngineError> {
    let q = query(&req);
    let path: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (&method, parts.as_slice()) {
        (&Method::GET, ["_ping"]) => Ok(full(StatusCode::OK, b"OK".to_vec(), false)),
        (&Method::GET, ["events"]) => {
            let (tx, rx) = mpsc::channel(64);
            let filter = super::events::Filter::from_query(&q);
            tokio::spawn(super::events::pump(engine.events.subscribe(), filter, tx));
            Ok(stream(rx))
        }
        (&Method::GET, ["version"]) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "root": engine.root}),
        )),
        (&Method::POST, ["containers", "create"]) => {
            let body: api::CreateContainer = body_json(req).await?;
            Ok(json(
                StatusCode::CREATED,
                &containers::create(&engine, body).await?,
            ))
        }
        (&Method::GET, ["containers", "json"]) => {
            let all = flag(&q, "all");
            let list: Vec<_> = engine
                .all()
                .iter()
                .filter(|c| all || matches!(c.status(), Status::Running | Status::Paused))
                .map(|c| c.info())
                .collect();
            Ok(json(StatusCode::OK, &list))
        }
        (_, ["containers", id, rest @ ..]) => {
            container_route(engine, req, &method, id, rest, &q).await
        }
        (&Method::POST, ["images", "import"]) => {
            let body: api::ImportImage = body_json(req).await?;
            Ok(json(StatusCode::OK, &images::import(&engine, body).await?))
        }
        (&Method::GET, ["images", "json"]) => {
            Ok(json(StatusCode::OK, &images::list(&engine).await?))
        }
        (&Method::GET, ["images", "inspect"]) => {
            let r = q.get("ref").cloned().unwrap_or_default();
            Ok(json(StatusCode::OK, &images::inspect(&engine, r).await?))
        }
        (&Method::POST, ["images", "tag"]) => {
            let src = q.get("src").cloned().unwrap_or_default();
            let dst = q.get("dst").cloned().unwrap_or_default();
            images::tag(&engine, src, dst).await?;
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        (&Method::DELETE, ["images"]) => {
            let r = q.get("ref").cloned().unwrap_or_default();
            Ok(json(
                StatusCode::OK,
                &images::remove(&engine, r, flag(&q, "force")).await?,
            ))
        }
        (
            &Method::POST,
            ["images", op @ ("save" | "load" | "pull" | "push" | "login" | "logout" | "build")],
        ) => {
            let op = op.to_string();
            images::route(engine, req, &op, &q).await
        }
        (&Method::POST, ["images", "prune"]) => {
            Ok(json(StatusCode::OK, &images::prune(&engine).await?))
        }
        (_, ["projects", rest @ ..]) => {
            super::project_routes::route(engine, req, &method, rest).await
        }
        (_, ["volumes", rest @ ..]) => {
            super::project_routes::volume_route(engine, &method, rest).await
        }
        (_, ["networks", rest @ ..]) => {
            let (status, body) = networks::route(&engine, req, &method, rest, &q).await?;
            Ok(json(status, &body))
        }
        _ => Err(EngineError::NotFound(format!(
            "no such endpoint: {method} {}",
            req.uri().path()
        ))),
    }
}

async fn container_route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    id: &str,
    rest: &[&str],
    q: &HashMap<String, String>,
) -> Result<Response<Body>, EngineError> {
    let c = engine.find(id)?;
    let ok = || json(StatusCode::OK, &serde_json::json!({}));
    match (method, rest) {
        (&Method::GET, ["json"]) => {
            let mut info = c.info();
            info.network = Some(networks::settings(&engine, &c).await?);
            Ok(json(StatusCode::OK, &info))
        }
        (&Method::POST, ["start"]) if flag(q, "attach") => {
            let (tx, rx) = mpsc::channel(64);
            containers::start(&engine, &c).await?;
            tokio::spawn(follow_logs(c, None, true, true, false, tx));
            Ok(stream(rx))
        }
        (&Method::POST, ["start"]) => {
            containers::start(&engine, &c).await?;
            Ok(ok())
        }
        (&Method::POST, ["stop"]) => {
            let t = q.get("t").and_then(|t| t.parse().ok());
            containers::stop(&engine, &c, t).await?;
            Ok(ok())
        }
        (&Method::POST, ["kill"]) => {
            let s = q.get("signal").map(String::as_str).unwrap_or("KILL");
            let sig = runtime::container::parse_signal(s)
                .ok_or_else(|| EngineError::BadRequest(format!("invalid signal {s:?}")))?;
            containers::kill(&engine, &c, sig).await?;
            Ok(ok())
        }
        (&Method::POST, ["pause"]) => {
            containers::pause(&engine, &c, true).await?;
            Ok(ok())
        }
        (&Method::POST, ["unpause"]) => {
            containers::pause(&engine, &c, false).await?;
            Ok(ok())
        }
        (&Method::POST, ["wait"]) => {
            let code = containers::wait(&c).await;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"StatusCode": code}),
            ))
        }
        (&Method::DELETE, []) => {
            containers::remove(&engine, &c, flag(q, "force")).await?;
            Ok(ok())
        }
        (&Method::GET, ["archive"]) => {
            let path = q.get("path").cloned().unwrap_or_default();
            super::copy_routes::get(&c, path).await
        }
        (&Method::PUT, ["archive"]) => {
            let path = q.get("path").cloned().unwrap_or_default();
            super::copy_routes::put(&c, req, path).await
        }
        (&Method::GET, ["stats"]) => Ok(json(
            StatusCode::OK,
            &super::stats::sample(&engine, &c).await?,
        )),
        (&Method::GET, ["logs"]) => {
            let tail = q.get("tail").and_then(|t| t.parse().ok());
            let (tx, rx) = mpsc::channel(64);
            let (follow, timestamps) = (flag(q, "follow"), flag(q, "timestamps"));
            tokio::spawn(follow_logs(c, tail, follow, false, timestamps, tx));
            Ok(stream(rx))
        }
        (&Method::POST, ["exec"]) => {
            let opts: api::ExecOptions = body_json(req).await?;
            let p = containers::exec(&engine, &c, opts).await?;
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(pump_exec(p, tx));
            Ok(stream(rx))
        }
        _ => Err(EngineError::NotFound(format!(
            "no such endpoint: {method} /containers/{id}/{}",
            rest.join("/")
        ))),
    }
}

/// One log entry as a frame; with `timestamps`, the line starts with its RFC 3339 time.
fn entry_frame(e: &runtime::logs::Entry, timestamps: bool) -> Vec<u8> {
    let s = if e.stream == "stderr" {
        api::STDERR
    } else {
        api::STDOUT
    };
    if timestamps {
        api::frame(s, format!("{} {}", e.time, e.log).as_bytes())
    } else {
        api::frame(s, e.log.as_bytes())
    }
}

/// Streams a container's log: the existing entries (or the last `tail`), then, when following,
/// new ones until the container stops; `exit` adds the exit code frame at the end.
async fn follow_logs(
    c: Arc<Container>,
    tail: Option<usize>,
    follow: bool,
    exit: bool,
    timestamps: bool,
    tx: mpsc::Sender<Vec<u8>>,
) {
    let path = c.dir.join("log.json");
    let mut rx = c.exits.subscribe();
    let gen0 = *rx.borrow_and_update();
    let was_running = matches!(c.status(), Status::Running | Status::Paused);
    let mut follower = if follow && tail.is_none() {
        runtime::logs::Follower::at_start(&path)
    } else {
        let entries = runtime::logs::read_all(&path, tail).unwrap_or_default();
        for e in &entries {
            if tx.send(entry_frame(e, timestamps)).await.is_err() {
                return;
            }
        }
        runtime::logs::Follower::at_end(&path)
    };
    if follow {
        loop {
            // Done once it stopped running and, if it ran when we started, its exit has been
            // fully handled (auto-removal included).
            let done = !matches!(c.status(), Status::Running | Status::Paused)
                && (!was_running || *rx.borrow() != gen0);
            for e in follower.poll() {
                if tx.send(entry_frame(&e, timestamps)).await.is_err() {
                    return;
                }
            }
            if done {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                _ = rx.changed() => {}
                _ = tx.closed() => return,
            }
        }
    }
    if exit {
        let code = c.state().exit_code.unwrap_or(0);
        let _ = tx
            .send(api::frame(api::EXIT, code.to_string().as_bytes()))
            .await;
    }
}

async fn pump_exec(p: runtime::container::ExecProcess, tx: mpsc::Sender<Vec<u8>>) {
    let mut readers = Vec::new();
    for (stream, mut file) in [(api::STDOUT, p.stdout), (api::STDERR, p.stderr)] {
        let tx = tx.clone();
        readers.push(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = file.read(&mut buf) {
                if n == 0 || tx.blocking_send(api::frame(stream, &buf[..n])).is_err() {
                    break;
                }
            }
        }));
    }
    let code = match crate::sys::watch_fd(p.pidfd) {
        Ok(fd) => loop {
            let Ok(mut g) = fd.readable().await else {
                break 255;
            };
            match runtime::sys::waitid_pidfd(fd.get_ref().as_raw_fd()) {
                Ok(Some(st)) => break st.code(),
                Ok(None) => g.clear_ready(),
                Err(_) => break 255,
            }
        },
        Err(_) => 255,
    };
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
    }
    let _ = tx
        .send(api::frame(api::EXIT, code.to_string().as_bytes()))
        .await;
}
