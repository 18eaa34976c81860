//! A blocking client for one repository of an OCI distribution registry: requests with the
//! registry's authentication (anonymous, basic, or the `WWW-Authenticate: Bearer realm=...`
//! token flow Docker Hub uses), manifests, and blob downloads that resume where a broken
//! connection left off.
//!
//! Not oci-client: that crate is async (tokio + reqwest) while the store is a blocking API the
//! engine calls through `spawn_blocking`, and pulls stream each blob straight into the layer
//! unpacker, which wants a `Read`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tracing::{debug, warn};
use ureq::http::{self, Response};

use super::auth::{parse_challenge, Challenge, Credentials};
use super::ImageError;

/// Where and how to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain http. `localhost`, `127.0.0.0/8` and
    /// `[::1]` always are.
    pub insecure_registries: Vec<String>,
    /// Layers transferred at once.
    pub parallel: usize,
    /// Blobs up to this size are uploaded in one request; larger ones in chunks of it.
    pub chunk_size: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            parallel: 4,
            chunk_size: 16 << 20,
        }
    }
}

impl RegistryOptions {
    fn plain_http(&self, registry: &str) -> bool {
        let host = match registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => registry.split(':').next().unwrap_or(registry),
        };
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback())
            || self
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host)
    }
}

/// The request body of one call; re-creatable so a call can be retried after authenticating.
pub(super) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// A client for one repository, with the access scope it asked for.
pub(super) struct Client {
    agent: ureq::Agent,
    /// The registry as references name it (`docker.io`, `localhost:5000`).
    pub registry: String,
    base: String,
    pub repo: String,
    scope: String,
    creds: Option<Credentials>,
    /// The `Authorization` header value that last worked.
    authorization: Mutex<Option<String>>,
}

/// The error document registries return.
#[derive(Debug, Default, Deserialize)]
struct ErrorDoc {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Client {
    /// A client for `repo` on `registry` with `actions` (`pull` or `pull,push`) access.
    pub fn new(
        registry: &str,
        repo: &str,
        actions: &str,
        creds: Option<Credentials>,
        opts: &RegistryOptions,
    ) -> Client {
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if opts.plain_http(registry) {
            "http"
        } else {
            "https"
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent("berth")
            .build();
        Client {
            agent: config.new_agent(),
            registry: registry.to_string(),
            base: format!("{scheme}://{host}"),
            repo: repo.to_string(),
            scope: match repo.is_empty() {
                true => String::new(),
                false => format!("repository:{repo}:{actions}"),
            },
            creds,
            authorization: Mutex::new(None),
        }
    }

    /// `BASE/v2/REPO/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repo, path)
    }

    /// A `Location` header made absolute.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// Checks that the registry answers and the credentials (if any) are accepted.
    pub fn ping(&self) -> Result<(), ImageError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.call("GET", &url, &[], Body::Empty, "ping")?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.status_error("ping", resp)),
        }
    }

    /// One request, authenticating and retrying once when the registry answers 401.
    pub fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        step: &str,
    ) -> Result<Response<ureq::Body>, ImageError> {
        let resp = self.send(method, url, headers, &body, step)?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge);
        let Some(challenge) = challenge else {
            return Err(self.status_error(step, resp));
        };
        let header = self.authorize(&challenge, step)?;
        *self.lock_auth() = Some(header);
        self.send(method, url, headers, &body, step)
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.authorization.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one request; a transport failure (a pooled connection the server had closed,
    /// a reset) is retried twice after a short pause.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        step: &str,
    ) -> Result<Response<ureq::Body>, ImageError> {
        let mut attempt = 0;
        loop {
            match self.send_once(method, url, headers, body, step)? {
                Ok(resp) => return Ok(resp),
                Err(e) if attempt < 2 && transient(&e) => {
                    attempt += 1;
                    debug!(registry = %self.registry, step, error = %e, attempt, "retrying request");
                    std::thread::sleep(Duration::from_millis(200 * attempt));
                }
                Err(e) => return Err(self.error(step, e.to_string())),
            }
        }
    }

    /// One attempt: the outer error is ours (bad request, unreadable file), the inner one the
    /// transport's.
    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        step: &str,
    ) -> Result<Result<Response<ureq::Body>, ureq::Error>, ImageError> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(auth) = self.lock_auth().as_deref() {
            b = b.header("authorization", auth);
        }
        let err = |e: http::Error| self.error(step, e.to_string());
        Ok(match body {
            Body::Empty => self.agent.run(b.body(()).map_err(err)?),
            Body::Bytes(data) => self.agent.run(b.body(*data).map_err(err)?),
            Body::File(path) => {
                let f = File::open(path).map_err(ImageError::io("open blob", *path))?;
                self.agent.run(b.body(f).map_err(err)?)
            }
        })
    }

    /// The `Authorization` header value answering `challenge`.
    fn authorize(&self, challenge: &Challenge, step: &str) -> Result<String, ImageError> {
        match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => Ok(format!("Basic {}", c.basic())),
                None => {
                    Err(self.unauthorized(step, "the registry wants credentials; log in first"))
                }
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.clone().unwrap_or_else(|| self.scope.clone());
                self.fetch_token(realm, service.as_deref(), &scope, step)
                    .map(|t| format!("Bearer {t}"))
            }
            Challenge::Other(s) => {
                Err(self.unauthorized(step, &format!("unsupported authentication scheme {s:?}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        step: &str,
    ) -> Result<String, ImageError> {
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let mut req = self.agent.get(realm);
        if !scope.is_empty() {
            req = req.query("scope", scope);
        }
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(c) = &self.creds {
            req = req.header("authorization", format!("Basic {}", c.basic()));
        }
        let mut resp = req
            .call()
            .map_err(|e| self.error("fetch token", e.to_string()))?;
        if resp.status().as_u16() == 401 || resp.status().as_u16() == 403 {
            return Err(self.unauthorized(step, "the token service refused the credentials"));
        }
        if !resp.status().is_success() {
            return Err(self.status_error("fetch token", resp));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.error("fetch token", e.to_string()))?;
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| self.error("fetch token", format!("bad token response: {e}")))?;
        debug!(registry = %self.registry, scope, "got registry token");
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.error(
                    "fetch token",
                    "the token service answered without a token".to_string(),
                )
            })
    }

    pub fn error(&self, step: &str, reason: String) -> ImageError {
        ImageError::Registry {
            registry: self.registry.clone(),
            step: step.to_string(),
            reason,
        }
    }

    pub fn unauthorized(&self, step: &str, reason: &str) -> ImageError {
        ImageError::Unauthorized {
            registry: self.registry.clone(),
            step: step.to_string(),
            reason: reason.to_string(),
        }
    }

    /// An error from an unexpected status, with the registry's error codes and messages.
    pub fn status_error(&self, step: &str, mut resp: Response<ureq::Body>) -> ImageError {
        let status = resp.status();
        let doc: ErrorDoc = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let details: Vec<String> = doc
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect();
        let reason = match details.is_empty() {
            true => format!("http {status}"),
            false => format!("http {status}: {}", details.join("; ")),
        };
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return self.unauthorized(step, &reason);
        }
        self.error(step, reason)
    }

    /// GETs a small document (manifest, config) and returns it with its media type.
    pub fn get_document(
        &self,
        url: &str,
        accept: &str,
        step: &str,
    ) -> Result<(Vec<u8>, String), ImageError> {
        let mut resp = self.call("GET", url, &[("accept", accept)], Body::Empty, step)?;
        if !resp.status().is_success() {
            return Err(self.status_error(step, resp));
        }
        let mt = header(&resp, "content-type").unwrap_or_default();
        let data = resp
            .body_mut()
            .with_config()
            .limit(32 << 20)
            .read_to_vec()
            .map_err(|e| self.error(step, e.to_string()))?;
        Ok((data, mt))
    }

    /// A reader of blob `digest` that reconnects with a `Range` request when the connection
    /// breaks, up to a few times.
    pub fn blob_reader(&self, digest: &str) -> BlobReader<'_> {
        BlobReader {
            client: self,
            url: self.url(&format!("blobs/{digest}")),
            digest: digest.to_string(),
            inner: None,
            offset: 0,
            retries: 0,
        }
    }
}

/// Whether a transport error is worth another try.
fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Protocol(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
    )
}

/// A response header as a string.
pub(super) fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Reads one blob, resuming after a broken connection.
pub(super) struct BlobReader<'a> {
    client: &'a Client,
    url: String,
    digest: String,
    inner: Option<ureq::BodyReader<'static>>,
    offset: u64,
    retries: u32,
}

const MAX_RESUMES: u32 = 5;

impl BlobReader<'_> {
    fn open(&mut self) -> io::Result<()> {
        let range = format!("bytes={}-", self.offset);
        let headers: &[(&str, &str)] = if self.offset > 0 {
            &[("range", &range)]
        } else {
            &[]
        };
        let step = format!("get blob {}", self.digest);
        let resp = self
            .client
            .call("GET", &self.url, headers, Body::Empty, &step)
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(io::Error::other(self.client.status_error(&step, resp)));
        }
        let mut reader = resp.into_body().into_reader();
        if self.offset > 0 && status != 206 {
            // The registry ignored the range: skip what we already have.
            io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())?;
        }
        self.inner = Some(reader);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.inner.is_none() {
                self.open()?;
            }
            let Some(inner) = self.inner.as_mut() else {
                return Err(io::Error::other("blob reader not open"));
            };
            match inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if self.retries < MAX_RESUMES && e.kind() != io::ErrorKind::Interrupted => {
                    self.retries += 1;
                    warn!(blob = %self.digest, offset = self.offset, error = %e, "blob download broke; resuming");
                    self.inner = None;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Base64 of `user:password`, as basic authentication sends it.
pub(super) fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}
