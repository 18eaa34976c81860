//! Dockerfile builds: [`ImageStore::build`].
//!
//! The Dockerfile is parsed ([`dockerfile`]), split into stages, and the target stage is built
//! with the stages it needs (`FROM stage`, `COPY --from=stage`). Each RUN runs in a container
//! of berth's runtime ([`run`]) and its overlay upper dir becomes a layer ([`diff`]); each COPY
//! or ADD stages its files ([`context`]) into a directory that becomes a layer. Layers enter
//! the store like imported ones: stored once, unpacked once, shared. Every step is recorded in
//! the build cache ([`cache`]) under a key chained from its parent's, so an unchanged rebuild
//! only reads small records, and a changed COPY rebuilds from that step on.
//!
//! - [`dockerfile`]: the parser; [`words`]: quotes and variable substitution.
//! - [`ignore`]: `.dockerignore` and path patterns; [`view`]: a stack of layers read as one.
//! - [`steps`]: config-only instructions.

mod cache;
pub mod context;
mod diff;
pub mod dockerfile;
pub mod ignore;
mod run;
mod stage;
mod steps;
pub mod view;
pub mod words;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use tracing::{info, instrument};

pub use dockerfile::{Keyword, LineError};

use super::media::OCI_MANIFEST;
use super::store::oci_manifest;
use super::{ImageError, ImageStore, Reference};
use crate::container::{Runtime, RuntimeError};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile; relative paths are taken from the context. Default `Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// References given to the result (`name:tag`).
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (default: the last).
    pub target: Option<String>,
    /// Run every step even when the cache has it.
    pub no_cache: bool,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Built {
    /// `sha256:HEX` of the image config.
    pub id: String,
    /// The references it was given.
    pub tags: Vec<String>,
    /// Steps (instructions) built, and how many of those came from the cache.
    pub steps: usize,
    pub cached: usize,
}

/// Errors of a step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Word(#[from] words::WordError),
    #[error(transparent)]
    Copy(#[from] context::CopyError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("process {command:?} did not complete successfully: exit code: {code}")]
    Failed { command: String, code: i32 },
    #[error("{0}")]
    Invalid(String),
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Parse(#[from] LineError),
    #[error("{file}:{line}: {keyword}: {source}")]
    Step {
        file: String,
        line: usize,
        keyword: Keyword,
        #[source]
        source: Box<StepError>,
    },
    #[error("target stage {0:?} not found")]
    Target(String),
    #[error("invalid tag {tag}: {reason}")]
    Tag { tag: String, reason: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A progress callback: one line per step, plus the output of RUN commands.
pub type BuildProgress<'a> = &'a (dyn Fn(&str) + Sync);

impl ImageStore {
    /// Builds an image from a Dockerfile with the containers of `runtime`, reporting progress
    /// lines (`[2/7] RUN apk add ...`, `... CACHED`) to `progress`.
    #[instrument(skip(self, runtime, progress), fields(context = %opts.context.display()))]
    pub fn build(
        &self,
        runtime: &Runtime,
        opts: &BuildOptions,
        progress: BuildProgress<'_>,
    ) -> Result<Built, BuildError> {
        let refs = opts
            .tags
            .iter()
            .map(|t| match Reference::parse(t) {
                Ok(r) if r.digest().is_none() => Ok(r),
                Ok(_) => Err(BuildError::Tag {
                    tag: t.clone(),
                    reason: "a digest cannot be assigned; use a tag".into(),
                }),
                Err(e) => Err(BuildError::Tag {
                    tag: t.clone(),
                    reason: e.to_string(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let path = match &opts.dockerfile {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => opts.context.join(p),
            None => opts.context.join("Dockerfile"),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Read {
            path: path.clone(),
            source,
        })?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into());
        let df = dockerfile::parse(&text, &file)?;
        let _gc = self.lock_gc(false)?;
        let mut b = stage::Builder::new(self, runtime, opts, &df, &file, progress)?;
        let target = b.target_index(opts.target.as_deref())?;
        let state = b.build_target(target)?;
        let (config, blobs) = state.finish()?;
        let manifest = oci_manifest(&config, &blobs)?;
        let id = self.commit(&config, &manifest, OCI_MANIFEST, &refs, None)?;
        info!(image = %id, steps = b.steps, cached = b.cached, "built image");
        Ok(Built {
            id,
            tags: refs.iter().map(Reference::familiar).collect(),
            steps: b.steps,
            cached: b.cached,
        })
    }
}
