//! The content-addressed image store.
//!
//! Everything lives under one directory (`<berth-root>/images`):
//!
//! ```text
//! blobs/sha256/HEX          configs, manifests and layer blobs, named by their sha256
//! layers/HEX/root/          a layer unpacked once (HEX = its diff id), shared read-only by
//!                           every container as an overlay lowerdir
//! layers/HEX/layer.json     the layer's record (diff id, sizes)
//! imagedb/HEX.json          one record per image (HEX = image id = sha256 of its config)
//! repositories.json         the references: `docker.io/library/busybox:latest` -> image id
//! tmp/                      work in progress: unpacked into here, then renamed into place
//! ```
//!
//! Layers and blobs are written to `tmp/` and renamed into place once complete and verified, so
//! a crash or a digest mismatch never leaves a half-written layer. Image records and the index
//! are written atomically. The store is safe to share between threads and processes: the
//! index is updated under an exclusive file lock, and imports hold a shared lock that removal
//! and pruning (which delete layers) take exclusively.
//!
//! - [`reference`]: image references parsed and normalised as Docker does.
//! - [`config`]: the image config JSON (OCI with Docker's extensions).
//! - [`unpack`]: exact and safe layer unpacking (whiteouts, links, devices, xattrs).
//! - [`digest`]: hashing readers and compression detection.
//! - [`media`]: manifest, index, config and layer media types; platform choice.
//! - `archive`: [`ImageStore::save`] and [`ImageStore::load`] of OCI and Docker archives.
//! - [`build`]: Dockerfile builds with a layer cache ([`ImageStore::build`]).
//! - `registry`, `auth`, `pull`, `push`: the OCI distribution API ([`ImageStore::pull`],
//!   [`ImageStore::push`], [`ImageStore::login`]).

mod archive;
mod auth;
pub mod build;
pub mod config;
pub mod digest;
mod layer;
pub mod media;
mod pull;
mod push;
pub mod reference;
mod registry;
mod store;
mod sys;
pub mod unpack;

use std::io;
use std::path::PathBuf;

pub use archive::{ArchiveFormat, Loaded};
pub use auth::Credentials;
pub use build::{BuildError, BuildOptions, Built};
pub use config::{ConfigFile, Healthcheck, ImageConfig};
pub use pull::{Progress, ProgressFn, TransferState};
pub use reference::{Reference, ReferenceError};
pub use registry::RegistryOptions;
pub use store::ImageStore;

use crate::fsutil::FsError;

/// An image in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Image {
    /// `sha256:HEX` of the image config.
    pub id: String,
    /// The references naming it, in Docker's short form (`busybox:latest`), sorted.
    pub references: Vec<String>,
    /// The container defaults from the image config.
    pub config: ImageConfig,
    /// The unpacked layer directories, bottom first (overlay wants them top first).
    pub layers: Vec<PathBuf>,
    /// When the image was created (RFC 3339), empty when the config does not say.
    pub created: String,
    /// Bytes of file content over all layers.
    pub size: u64,
    /// `linux`, as the config says.
    pub os: String,
    /// `amd64`, `arm64`, ... as the config says.
    pub architecture: String,
    /// The digest of the manifest the image was stored with.
    pub manifest_digest: String,
}

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("image id prefix {prefix} is ambiguous: it matches {count} images")]
    Ambiguous { prefix: String, count: usize },
    #[error("unable to remove image {reference} (must force): {reason}")]
    Conflict { reference: String, reason: String },
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("unpack layer entry {entry:?}: {step}: {source}")]
    Unpack {
        entry: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("read layer tar: {source}")]
    Tar {
        #[source]
        source: io::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    State(#[from] FsError),
    #[error("registry {registry}: {step}: {reason}")]
    Registry {
        registry: String,
        step: String,
        reason: String,
    },
    #[error("registry {registry}: {step}: unauthorized: {reason}")]
    Unauthorized {
        registry: String,
        step: String,
        reason: String,
    },
}

impl ImageError {
    pub(crate) fn io(
        step: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { step, path, source }
    }
}
