//! The CLI's side of the engine API: HTTP/1.1 over the root's unix socket, starting the engine
//! when none answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::api::{self, ErrorBody};

/// A connection factory for one root's engine.
#[derive(Debug, Clone)]
pub struct Client {
    sock: PathBuf,
}

/// Percent-encodes a path segment or query value for an engine request.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The socket of a root.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join("berth.sock")
}

impl Client {
    /// Connects to the engine of `root`, starting it first if none answers.
    pub async fn connect(root: &Path) -> anyhow::Result<Client> {
        let sock = socket_path(root);
        if UnixStream::connect(&sock).await.is_ok() {
            return Ok(Client { sock });
        }
        start_engine(root)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if UnixStream::connect(&sock).await.is_ok() {
                return Ok(Client { sock });
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(root.join("engine.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "the engine for {} did not come up within 15s; last lines of {}:\n{}",
                    root.display(),
                    root.join("engine.log").display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let stream = UnixStream::connect(&self.sock)
            .await
            .with_context(|| format!("connect to the engine at {}", self.sock.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("engine handshake")?;
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "berth");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("build request")?;
        sender.send_request(req).await.context("engine request")
    }

    /// Sends a request and decodes a JSON answer; an error answer becomes an error with the
    /// engine's message.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> anyhow::Result<T> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("read answer")?
            .to_bytes();
        check(status, &bytes)?;
        serde_json::from_slice(&bytes).with_context(|| format!("decode answer of {path}"))
    }

    /// Sends a request whose answer is a frame stream; calls `on_frame` for stdout/stderr
    /// frames and returns the exit code frame's value, if one came.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
        mut on_frame: impl FnMut(u8, &[u8]),
    ) -> anyhow::Result<Option<i32>> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body.collect().await.context("read answer")?.to_bytes();
            check(status, &bytes)?;
            return Ok(None);
        }
        let mut buf = Vec::new();
        let mut code = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.context("read stream")?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                for (stream, chunk) in api::take_frames(&mut buf) {
                    if stream == api::EXIT {
                        code = String::from_utf8_lossy(&chunk).trim().parse().ok();
                    } else {
                        on_frame(stream, &chunk);
                    }
                }
            }
        }
        Ok(code)
    }
}

impl Client {
    /// Sends a request whose body is streamed from a channel (such as a tar archive as it is
    /// written) and decodes a JSON answer.
    pub async fn upload<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        chunks: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> anyhow::Result<T> {
        let stream = UnixStream::connect(&self.sock)
            .await
            .with_context(|| format!("connect to the engine at {}", self.sock.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("engine handshake")?;
        tokio::spawn(conn);
        let frames = futures::stream::unfold(chunks, |mut rx| async move {
            rx.recv().await.map(|b| {
                (
                    Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b)),
                    rx,
                )
            })
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "berth")
            .header("content-type", "application/x-tar")
            .body(http_body_util::StreamBody::new(frames))
            .context("build request")?;
        let resp = sender.send_request(req).await.context("engine request")?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("read answer")?
            .to_bytes();
        check(status, &bytes)?;
        serde_json::from_slice(&bytes).with_context(|| format!("decode answer of {path}"))
    }

    /// Sends a GET whose answer is a raw byte stream; an error answer is an error, else the
    /// body's chunks arrive on the channel (closed at the end or when the stream breaks).
    pub async fn download(&self, path: &str) -> anyhow::Result<tokio::sync::mpsc::Receiver<Bytes>> {
        let resp = self.send(Method::GET, path, None).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body.collect().await.context("read answer")?.to_bytes();
            check(status, &bytes)?;
            anyhow::bail!("{path}: the engine answered {status}");
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }
}

fn check(status: StatusCode, bytes: &[u8]) -> anyhow::Result<()> {
    if status.is_success() {
        return Ok(());
    }
    let msg = serde_json::from_slice::<ErrorBody>(bytes)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned());
    Err(anyhow!(msg))
}

/// Starts `berth engine` for `root` in the background, detached from this terminal.
fn start_engine(root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("create the root {}", root.display()))?;
    let exe = std::env::current_exe().context("locate the berth binary")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("engine.log"))
        .with_context(|| format!("open {}", root.join("engine.log").display()))?;
    Command::new(exe)
        .arg("--root")
        .arg(root)
        .arg("engine")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start the engine")?;
    Ok(())
}
