//! The compose loader: compose files in, one validated canonical [`Project`] out.
//!
//! # Phases
//!
//! Discovery ([`discover`]) picks the files (`-f`, `COMPOSE_FILE`, or compose.yaml and its
//! override file), the project directory and the environment (process environment over `.env`
//! or `--env-file`). Then, one module per phase:
//!
//! 1. [`parse`]: read each file and parse its YAML (serde_yaml), keeping a map from key paths to
//!    positions for error messages;
//! 2. [`interpolate`]: substitute `${VAR}` and friends in values (never keys);
//! 3. [`merge`]: merge the files in order (mappings merge, sequences append, the spec's
//!    exceptions, `!reset` and `!override`);
//! 4. [`include`] and [`extends`]: import included projects (per file, before merging) and
//!    resolve `extends` bases (after merging);
//! 5. [`normalize`] (with `normalize_service`, `normalize_refs`): every short syntax to its long
//!    form, typed values, resolved names and absolute paths; unknown keys are errors with a
//!    suggestion, spec keys berth does not implement are errors saying "not supported yet";
//! 6. [`profiles`]: keep the services whose profiles are active;
//! 7. [`validate`]: cross-references, uniqueness and dependency cycles.
//!
//! Every phase collects its errors; the load fails with all of them at once
//! ([`LoadError::Invalid`]), each with `file:line:col`, key path and what was expected. Warnings
//! (unset variables, obsolete `version`) are returned in [`Project::warnings`]. Loading only reads
//! files (through a [`FileSource`]) and never touches anything else on the host.

pub mod discover;
pub mod dotenv;
pub mod error;
pub mod extends;
pub mod include;
pub mod interpolate;
pub mod keys;
pub mod merge;
mod model;
pub mod normalize;
mod normalize_refs;
mod normalize_service;
pub mod parse;
mod paths;
pub mod profiles;
mod read;
mod service;
mod shorthand;
mod source;
pub mod units;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

pub use error::{Diagnostic, Diagnostics, LoadError, Location};
pub use model::{Config, Extensions, Ipam, IpamPool, Network, Project, Secret, Volume};
pub use service::{
    BindOptions, Build, Condition, DependsOn, Deploy, DeployRestartPolicy, EnvFile, FileRef,
    Healthcheck, Limits, Mount, MountType, NetworkMode, Port, PortRange, Protocol, Resources,
    RestartPolicy, Service, ServiceNetwork, TmpfsOptions, Ulimit, VolumeOptions,
};
pub use source::{FileSource, HostFiles, MemoryFiles};

pub(crate) use normalize::Norm;

use parse::{display_path, Locator};

/// What to load and with which environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Compose files (`-f`), relative to `working_dir`; empty means discovery.
    pub files: Vec<PathBuf>,
    /// Project name (`-p`).
    pub project_name: Option<String>,
    /// Profiles to enable (`--profile`), added to `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Env files (`--env-file`) replacing `<project dir>/.env`.
    pub env_files: Vec<PathBuf>,
    /// The directory the command runs in (base of relative `-f` paths, start of discovery).
    pub working_dir: PathBuf,
    /// Project directory (`--project-directory`); default: the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// The process environment (explicit, so tests do not depend on the real one).
    pub environment: BTreeMap<String, String>,
    /// Skip interpolation (`--no-interpolate`).
    pub no_interpolate: bool,
}

impl LoadOptions {
    /// Options for loading from `working_dir` with an empty environment.
    pub fn new(working_dir: impl Into<PathBuf>) -> Self {
        Self {
            working_dir: working_dir.into(),
            ..Self::default()
        }
    }

    /// Options from the global CLI flags, the current directory and the process environment
    /// (variables whose name or value is not UTF-8 are left out).
    pub fn from_args(args: &crate::cli::ProjectArgs) -> std::io::Result<Self> {
        Ok(Self {
            files: args.files.clone(),
            project_name: args.project_name.clone(),
            profiles: args.profiles.clone(),
            env_files: args.env_files.clone(),
            working_dir: std::env::current_dir()?,
            project_directory: args.project_directory.clone(),
            environment: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            no_interpolate: false,
        })
    }
}

/// Loads a project from the host's files.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    load_with(opts, &HostFiles)
}

/// Shared state of one load.
pub(crate) struct Ctx<'a> {
    fs: &'a dyn FileSource,
    cwd: PathBuf,
    process_env: &'a BTreeMap<String, String>,
    interpolate: bool,
    locator: Locator,
    main_files: Vec<usize>,
    errors: Diagnostics,
    warnings: Diagnostics,
    warned: BTreeSet<String>,
    /// Services whose `extends` failed: their later "missing image" errors are follow-ons.
    broken_services: BTreeSet<String>,
}

impl Ctx<'_> {
    fn display(&self, p: &Path) -> String {
        display_path(p, &self.cwd)
    }

    /// Phases 1 and 2 for one file read from `path`; `at` is the key path blamed when the file
    /// cannot be read.
    fn load_document(
        &mut self,
        path: &Path,
        env: &BTreeMap<String, String>,
        at: &str,
    ) -> Option<(usize, Mapping)> {
        match self.fs.read(path) {
            Ok(text) => self.parse_document(path, &text, env),
            Err(e) => {
                self.errors
                    .push(at, format!("cannot read {}: {e}", self.display(path)));
                None
            }
        }
    }

    fn parse_document(
        &mut self,
        path: &Path,
        text: &str,
        env: &BTreeMap<String, String>,
    ) -> Option<(usize, Mapping)> {
        let (file, doc) = match parse::parse(path, self.display(path), text) {
            Ok(parsed) => parsed,
            Err(d) => {
                self.errors.0.push(d);
                return None;
            }
        };
        let idx = self.locator.add(file);
        let mut doc = Value::Mapping(doc);
        if self.interpolate {
            let mut errors = Diagnostics::default();
            let mut warnings = Diagnostics::default();
            interpolate::interpolate_tree(
                &mut doc,
                "",
                env,
                &mut errors,
                &mut self.warned,
                &mut warnings,
            );
            for mut d in errors.0 {
                self.locator.locate_in(idx, &mut d);
                self.errors.0.push(d);
            }
            for mut d in warnings.0 {
                self.locator.locate_in(idx, &mut d);
                self.warnings.0.push(d);
            }
        }
        match doc {
            Value::Mapping(m) => Some((idx, m)),
            _ => None,
        }
    }
}

/// Loads a project, reading files through `fs`.
#[tracing::instrument(skip_all, fields(dir = %opts.working_dir.display()))]
pub fn load_with(opts: &LoadOptions, fs: &dyn FileSource) -> Result<Project, LoadError> {
    let mut warnings = Diagnostics::default();
    let disc = discover::discover(opts, fs, &mut warnings)?;
    let mut ctx = Ctx {
        fs,
        cwd: opts.working_dir.clone(),
        process_env: &opts.environment,
        interpolate: !opts.no_interpolate,
        locator: Locator::default(),
        main_files: Vec::new(),
        errors: Diagnostics::default(),
        warnings,
        warned: BTreeSet::new(),
        broken_services: BTreeSet::new(),
    };
    let mut docs = Vec::new();
    for file in &disc.files {
        let text = fs.read(file).map_err(|source| LoadError::Read {
            what: "compose file",
            path: file.clone(),
            source,
        })?;
        if let Some((idx, mut doc)) = ctx.parse_document(file, &text, &disc.env) {
            ctx.main_files.push(idx);
            let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
            include::apply(&mut ctx, &mut doc, &dir, idx, &mut vec![file.clone()]);
            docs.push(doc);
        }
    }
    if docs.len() < disc.files.len() {
        return Err(finish_errors(&ctx, Vec::new()));
    }
    let mut docs = docs.into_iter();
    let mut merged = docs.next().unwrap_or_default();
    for doc in docs {
        merge::merge_documents(&mut merged, doc);
    }
    let mut merged = Value::Mapping(merged);
    merge::strip_tags_in_place(&mut merged);
    let Value::Mapping(mut merged) = merged else {
        return Err(finish_errors(&ctx, Vec::new()));
    };
    extends::apply(&mut ctx, &mut merged, &disc.project_dir, &disc.env);
    let name = project_name(opts, &disc, &merged, &mut ctx.errors)?;
    let mut norm = Norm {
        r: read::Reader::default(),
        warnings: Diagnostics::default(),
        project_dir: &disc.project_dir,
        env: &disc.env,
        fs,
    };
    let mut project = norm.project(&merged, &name);
    ctx.errors.0.extend(norm.r.errors.0);
    ctx.warnings.0.extend(norm.warnings.0);
    let active = active_profiles(opts, &disc.env);
    let mut later = Diagnostics::default();
    profiles::apply(&mut project, &active, &mut later);
    validate::validate(&mut project, &mut later, &mut ctx.warnings);
    // Drop follow-on errors about a key that already has an error from an earlier phase.
    let earlier: Vec<String> = ctx.errors.0.iter().map(|d| d.path.clone()).collect();
    let later: Vec<Diagnostic> = later
        .0
        .into_iter()
        .filter(|d| !earlier.iter().any(|e| follows_from(&d.path, e)))
        .filter(|d| {
            !ctx.broken_services
                .iter()
                .any(|s| d.path == format!("services.{s}"))
        })
        .collect();
    if !ctx.errors.is_empty() || !later.is_empty() {
        return Err(finish_errors(&ctx, later));
    }
    let warnings = std::mem::take(&mut ctx.warnings.0);
    project.warnings = located(&ctx, warnings);
    project.files = disc.files;
    tracing::debug!(
        project = %project.name,
        services = project.services.len(),
        disabled = project.disabled_services.len(),
        warnings = project.warnings.len(),
        "compose project loaded"
    );
    Ok(project)
}

/// Whether an error at `later` is a consequence of an earlier error at `earlier`: the earlier one
/// is at or above it, or is the service's image or build (which makes "missing image" moot).
fn follows_from(later: &str, earlier: &str) -> bool {
    let under = |child: &str, parent: &str| {
        !parent.is_empty()
            && child.strip_prefix(parent).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
            })
    };
    under(later, earlier)
        || earlier == format!("{later}.image")
        || earlier == format!("{later}.extends")
        || under(earlier, &format!("{later}.build"))
}

/// All errors located, sorted by position and deduplicated.
fn finish_errors(ctx: &Ctx<'_>, later: Vec<Diagnostic>) -> LoadError {
    let all: Vec<Diagnostic> = ctx.errors.0.iter().cloned().chain(later).collect();
    LoadError::Invalid(Diagnostics(located(ctx, all)))
}

/// Diagnostics with their positions filled in, sorted by position and deduplicated.
fn located(ctx: &Ctx<'_>, mut all: Vec<Diagnostic>) -> Vec<Diagnostic> {
    for d in &mut all {
        ctx.locator.locate(d);
    }
    all.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.location
                .as_ref()
                .map(|l| (0, l.file.clone(), l.line, l.column))
                .unwrap_or((1, String::new(), 0, 0))
        };
        key(a).cmp(&key(b))
    });
    all.dedup();
    all
}

/// `-p`, `COMPOSE_PROJECT_NAME`, top-level `name:`, else the project directory's name.
fn project_name(
    opts: &LoadOptions,
    disc: &discover::Discovered,
    doc: &Mapping,
    errors: &mut Diagnostics,
) -> Result<String, LoadError> {
    if let Some(name) = discover::explicit_name(opts, &disc.env)? {
        return Ok(name);
    }
    if let Some(v) = doc.get("name") {
        match v.as_str() {
            Some(n) if discover::valid_project_name(n) => return Ok(n.to_string()),
            Some(n) => errors.push(
                "name",
                format!(
                    "invalid project name {n:?}: use only lowercase letters, digits, dashes and \
                     underscores, starting with a letter or digit"
                ),
            ),
            None => errors.push(
                "name",
                format!("expected a string, found {}", read::describe(v)),
            ),
        }
    }
    let dir_name = disc
        .project_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = discover::normalize_project_name(&dir_name);
    if name.is_empty() {
        errors.push(
            "",
            format!(
                "cannot derive a project name from directory {}: pass -p NAME or set `name:`",
                disc.project_dir.display()
            ),
        );
        return Ok("default".to_string());
    }
    Ok(name)
}

/// `--profile` flags plus `COMPOSE_PROFILES` (comma-separated).
fn active_profiles(opts: &LoadOptions, env: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(list) = env.get("COMPOSE_PROFILES") {
        active.extend(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
    }
    active
}
