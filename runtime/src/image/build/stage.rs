//! The stage builder: global ARGs, stages and the stages the target needs, and every step's
//! cache lookup and execution.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::cache::{self, CachedLayer, Entry};
use super::context::{self, ContextDir, CopyOptions, Source};
use super::dockerfile::{Dockerfile, Instruction, Keyword, LineError};
use super::run::{self, RunRequest};
use super::steps;
use super::view::LayerView;
use super::words::{process_word, process_words, split_raw};
use super::{BuildError, BuildOptions, BuildProgress, StepError};
use crate::container::Runtime;
use crate::image::config::{host_arch, ConfigFile, History};
use crate::image::layer::{add_layer, Expect, TempPath};
use crate::image::store::BlobRef;
use crate::image::{media, ImageError, ImageStore, RegistryOptions};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a stage stands after a step.
#[derive(Debug, Clone)]
pub(super) struct State {
    config: ConfigFile,
    blobs: Vec<BlobRef>,
    /// The cache key chain: identifies the filesystem and config so far.
    key: String,
    /// ARGs declared in the stage, with their values.
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

impl State {
    fn scratch() -> State {
        State {
            config: ConfigFile {
                architecture: host_arch().to_string(),
                os: "linux".to_string(),
                ..ConfigFile::default()
            },
            blobs: Vec::new(),
            key: cache::key("", &["FROM scratch"]),
            args: BTreeMap::new(),
            cmd_set: false,
        }
    }

    /// Variables for substitution: ARG values, overridden by ENV.
    fn vars(&self) -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for e in &self.config.config.env {
            let (k, val) = e.split_once('=').unwrap_or((e.as_str(), ""));
            v.insert(k.to_string(), val.to_string());
        }
        v
    }

    /// The ARG values in scope, as part of a cache key.
    fn args_key(&self) -> String {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}\n")))
            .collect()
    }

    /// The config blob and the layer blobs of the finished image.
    pub fn finish(self) -> Result<(Vec<u8>, Vec<BlobRef>), ImageError> {
        let data = serde_json::to_vec(&self.config).map_err(|source| ImageError::Json {
            what: "image config".into(),
            source,
        })?;
        Ok((data, self.blobs))
    }
}

/// What one COPY or ADD copies where.
struct CopyJob<'j> {
    sources: &'j [String],
    dest: &'j str,
    opts: &'j CopyOptions<'j>,
    /// The stage's filesystem so far.
    image: &'j LayerView,
}

struct StageDef<'a> {
    name: Option<String>,
    base: String,
    from: &'a Instruction,
    body: &'a [Instruction],
}

pub(super) struct Builder<'a> {
    store: &'a ImageStore,
    runtime: &'a Runtime,
    opts: &'a BuildOptions,
    escape: char,
    file: &'a str,
    progress: BuildProgress<'a>,
    global: BTreeMap<String, Option<String>>,
    stages: Vec<StageDef<'a>>,
    done: Vec<Option<State>>,
    context: Option<ContextDir>,
    total: usize,
    n: usize,
    pub steps: usize,
    pub cached: usize,
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

impl<'a> Builder<'a> {
    pub fn new(
        store: &'a ImageStore,
        runtime: &'a Runtime,
        opts: &'a BuildOptions,
        df: &'a Dockerfile,
        file: &'a str,
        progress: BuildProgress<'a>,
    ) -> Result<Builder<'a>, BuildError> {
        let mut b = Builder {
            store,
            runtime,
            opts,
            escape: df.escape,
            file,
            progress,
            global: BTreeMap::new(),
            stages: Vec::new(),
            done: Vec::new(),
            context: None,
            total: 0,
            n: 0,
            steps: 0,
            cached: 0,
        };
        let ins = &df.instructions;
        let first_from = ins.iter().position(|i| i.keyword == Keyword::From);
        for i in &ins[..first_from.unwrap_or(ins.len())] {
            if i.keyword != Keyword::Arg {
                return Err(b.line_err(i, "no build stage in current context: the first instruction must be FROM (ARG may come before it)"));
            }
            let mut args = std::mem::take(&mut b.global);
            b.declare(i, &mut args, &BTreeMap::new())
                .map_err(|e| b.step_err(i, e))?;
            b.global = args;
        }
        let Some(first) = first_from else {
            return Err(BuildError::Parse(LineError {
                file: file.to_string(),
                line: ins.last().map_or(1, |i| i.line),
                instruction: None,
                message: "no FROM instruction".to_string(),
            }));
        };
        let froms: Vec<usize> = (first..ins.len())
            .filter(|&k| ins[k].keyword == Keyword::From)
            .collect();
        let globals = b.global_vars();
        for (n, &start) in froms.iter().enumerate() {
            let end = froms.get(n + 1).copied().unwrap_or(ins.len());
            let from = &ins[start];
            let lookup = |k: &str| globals.get(k).cloned();
            let words = process_words(&from.rest, df.escape, &lookup)
                .map_err(|e| b.step_err(from, e.into()))?;
            let base = words.first().cloned().unwrap_or_default();
            if base.is_empty() {
                return Err(b.line_err(from, "empty image name"));
            }
            b.stages.push(StageDef {
                name: words.get(2).map(|s| s.to_ascii_lowercase()),
                base,
                from,
                body: &ins[start + 1..end],
            });
            b.done.push(None);
        }
        Ok(b)
    }

    fn line_err(&self, ins: &Instruction, message: &str) -> BuildError {
        BuildError::Parse(LineError {
            file: self.file.to_string(),
            line: ins.line,
            instruction: Some(ins.keyword),
            message: message.to_string(),
        })
    }

    fn step_err(&self, ins: &Instruction, source: StepError) -> BuildError {
        BuildError::Step {
            file: self.file.to_string(),
            line: ins.line,
            keyword: ins.keyword,
            source: Box::new(source),
        }
    }

    fn global_vars(&self) -> BTreeMap<String, String> {
        self.global
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// The index of the stage to build.
    pub fn target_index(&self, target: Option<&str>) -> Result<usize, BuildError> {
        match target {
            None => Ok(self.stages.len().saturating_sub(1)),
            Some(t) => self
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .ok_or_else(|| BuildError::Target(t.to_string())),
        }
    }

    /// The earlier stage `name` (a stage name or index) refers to, if any.
    fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }

    fn deps(&self, i: usize) -> Vec<usize> {
        let s = &self.stages[i];
        let mut out: Vec<usize> = self.stage_ref(&s.base, i).into_iter().collect();
        for ins in s.body {
            if let Some(from) = ins.flag("from") {
                out.extend(self.stage_ref(from, i));
            }
        }
        out
    }

    /// Builds the target stage and the stages it needs; returns its final state.
    pub fn build_target(&mut self, target: usize) -> Result<State, BuildError> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(self.deps(i));
            }
        }
        self.total = needed.iter().map(|&i| 1 + self.stages[i].body.len()).sum();
        for &i in &needed {
            let state = self.build_stage(i)?;
            self.done[i] = Some(state);
        }
        self.done[target]
            .take()
            .ok_or_else(|| BuildError::Target(format!("{target}")))
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn build_stage(&mut self, i: usize) -> Result<State, BuildError> {
        let (from, base, body) = {
            let s = &self.stages[i];
            (s.from, s.base.clone(), s.body)
        };
        self.n += 1;
        self.say(&format!("[{}/{}] {}", self.n, self.total, from.text()));
        let mut state = if base.eq_ignore_ascii_case("scratch") {
            State::scratch()
        } else if let Some(j) = self.stage_ref(&base, i) {
            let mut s = self.done[j]
                .clone()
                .ok_or_else(|| BuildError::Target(base.clone()))?;
            s.args.clear();
            s.cmd_set = false;
            s
        } else {
            self.base_image(&base).map_err(|e| self.step_err(from, e))?
        };
        for ins in body {
            self.n += 1;
            self.steps += 1;
            self.step(&mut state, ins)
                .map_err(|e| self.step_err(ins, e))?;
        }
        Ok(state)
    }

    fn base_image(&self, base: &str) -> Result<State, StepError> {
        let image = match self.store.get(base) {
            Ok(img) => img,
            Err(ImageError::NotFound(_)) => {
                self.say(&format!("pulling {base}"));
                self.store.pull(
                    base,
                    &RegistryOptions::default(),
                    &|_: &crate::image::Progress| {},
                )?
            }
            Err(e) => return Err(e.into()),
        };
        let config = self.store.read_config(&image.id)?;
        let record = self.store.read_record(&image.id)?;
        let doc = self.store.read_blob(&record.manifest.digest)?;
        let oci = media::to_oci_manifest(&doc, &record.manifest.media_type)?;
        let manifest = media::parse_manifest(&oci)?;
        let blobs = manifest
            .layers()
            .iter()
            .map(|d| BlobRef {
                media_type: d.media_type().to_string(),
                digest: d.digest().to_string(),
                size: d.size(),
            })
            .collect();
        Ok(State {
            config,
            blobs,
            key: cache::key("", &["FROM", &image.id]),
            args: BTreeMap::new(),
            cmd_set: false,
        })
    }

    /// `ARG NAME[=default] ...` into `args`; a stage's ARG without default takes the global
    /// value; `--build-arg` wins over both.
    fn declare(
        &self,
        ins: &Instruction,
        args: &mut BTreeMap<String, Option<String>>,
        vars: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        for w in split_raw(&ins.rest, self.escape)? {
            let lookup = |k: &str| {
                args.get(k)
                    .cloned()
                    .flatten()
                    .or_else(|| vars.get(k).cloned())
            };
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(process_word(d, self.escape, &lookup)?)),
                None => (w.clone(), None),
            };
            let value = self
                .opts
                .build_args
                .get(&name)
                .cloned()
                .or(default)
                .or_else(|| self.global.get(&name).cloned().flatten());
            args.insert(name, value);
        }
        Ok(())
    }

    fn cache_get(&self, key: &str) -> Option<Entry> {
        if self.opts.no_cache {
            None
        } else {
            cache::get(self.store, key)
        }
    }

    fn step(&mut self, state: &mut State, ins: &Instruction) -> Result<(), StepError> {
        let text = ins.text();
        match ins.keyword {
            Keyword::Run => return self.run_step(state, ins, &text),
            Keyword::Copy | Keyword::Add => return self.copy_step(state, ins, &text),
            _ => {}
        }
        let args = state.args_key();
        let vars = state.vars();
        let key = cache::key(&state.key, &[&text, &args]);
        if ins.keyword == Keyword::Arg {
            let mut a = std::mem::take(&mut state.args);
            let res = self.declare(ins, &mut a, &vars);
            state.args = a;
            res?;
        } else {
            let lookup = |k: &str| vars.get(k).cloned();
            steps::apply(
                ins,
                self.escape,
                &lookup,
                &mut state.config,
                &mut state.cmd_set,
            )?;
        }
        let hit = self.cache_get(&key);
        self.finish_step(state, key, &text, hit, None);
        Ok(())
    }

    /// Records a step: the cache entry (new unless `hit`), history, layer, progress line.
    fn finish_step(
        &mut self,
        state: &mut State,
        key: String,
        text: &str,
        hit: Option<Entry>,
        made: Option<CachedLayer>,
    ) {
        let cached = hit.is_some();
        let entry = match hit {
            Some(e) => e,
            None => {
                let e = Entry {
                    created: now(),
                    layer: made,
                };
                cache::put(self.store, &key, &e);
                e
            }
        };
        let makes_layer = matches!(text.split(' ').next(), Some("RUN" | "COPY" | "ADD"));
        if cached {
            self.cached += 1;
        }
        match (makes_layer, cached) {
            (true, true) => self.say(&format!("[{}/{}] CACHED {text}", self.n, self.total)),
            // A RUN, COPY or ADD that ran said so before it started.
            (true, false) => {}
            (false, _) => self.say(&format!("[{}/{}] {text}", self.n, self.total)),
        }
        if let Some(l) = &entry.layer {
            state.config.rootfs.diff_ids.push(l.diff_id.clone());
            state.blobs.push(l.blob.clone());
        }
        state.config.history.push(History {
            created: Some(entry.created.clone()),
            created_by: Some(text.to_string()),
            comment: Some("berth build".to_string()),
            empty_layer: entry.layer.is_none(),
            ..History::default()
        });
        state.config.created = Some(entry.created);
        state.key = key;
    }

    fn layer_dirs(&self, state: &State) -> Result<Vec<PathBuf>, StepError> {
        state
            .config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| self.store.layer_path(d).map_err(StepError::from))
            .collect()
    }

    fn run_step(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        text: &str,
    ) -> Result<(), StepError> {
        let key = cache::key(&state.key, &[text, &state.args_key()]);
        if let Some(hit) = self.cache_get(&key) {
            self.finish_step(state, key, text, Some(hit), None);
            return Ok(());
        }
        self.say(&format!("[{}/{}] {text}", self.n, self.total));
        let layers = self.layer_dirs(state)?;
        if layers.is_empty() {
            return Err(StepError::Invalid(
                "the stage has no filesystem to run in (FROM scratch without layers)".into(),
            ));
        }
        let c = &state.config.config;
        let args = steps::command(ins, c.shell.as_ref());
        let mut env = c.env.clone();
        for (k, v) in &state.args {
            let declared = env
                .iter()
                .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k));
            if let (Some(v), false) = (v, declared) {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        let req = RunRequest {
            args: args.clone(),
            env,
            working_dir: c.working_dir.clone().unwrap_or_else(|| "/".into()),
            user: c.user.clone().unwrap_or_default(),
            layers,
        };
        let progress = self.progress;
        let (code, container) =
            run::run(self.runtime, &req, &|line| progress(&format!("  {line}")))?;
        if code != 0 {
            return Err(StepError::Failed {
                command: args.join(" "),
                code,
            });
        }
        let layer = self.add_dir_layer(&container.upper(), true)?;
        drop(container);
        self.finish_step(state, key, text, None, Some(layer));
        Ok(())
    }

    fn copy_step(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        text: &str,
    ) -> Result<(), StepError> {
        let vars = state.vars();
        let lookup = |k: &str| vars.get(k).cloned();
        let mut words = match &ins.json {
            Some(j) => j
                .iter()
                .map(|w| process_word(w, self.escape, &lookup))
                .collect::<Result<Vec<_>, _>>()?,
            None => process_words(&ins.rest, self.escape, &lookup)?,
        };
        let dest = words.pop().unwrap_or_default();
        if words.is_empty() {
            return Err(context::CopyError::NoSources.into());
        }
        if ins.keyword == Keyword::Add && words.iter().any(|w| w.contains("://")) {
            return Err(StepError::Invalid("ADD from a URL is not supported".into()));
        }
        let workdir = state.config.config.working_dir.clone().unwrap_or_default();
        let mut dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{workdir}/{dest}")
        };
        if dest == "." || dest.ends_with("/.") {
            dest_abs.push('/');
        }
        let image = LayerView::new(self.layer_dirs(state)?);
        let chown = ins
            .flag("chown")
            .map(|c| process_word(c, self.escape, &lookup))
            .transpose()?;
        let opts = CopyOptions {
            chown: chown.as_deref(),
            chmod: ins.flag("chmod"),
            extract: ins.keyword == Keyword::Add,
            context: ins.flag("from").is_none(),
        };
        let from_view = match ins.flag("from") {
            Some(f) => Some(self.copy_source(f)?),
            None => None,
        };
        if from_view.is_none() && self.context.is_none() {
            self.context = Some(ContextDir::open(&self.opts.context)?);
        }
        let job = CopyJob {
            sources: &words,
            dest: &dest_abs,
            opts: &opts,
            image: &image,
        };
        let (key, hit, made) = {
            let src: &dyn Source = match (&from_view, &self.context) {
                (Some(v), _) => v,
                (None, Some(c)) => c,
                (None, None) => return Err(StepError::Invalid("no build context".into())),
            };
            self.copy_layer(state, &job, text, src)?
        };
        self.finish_step(state, key, text, hit, made);
        Ok(())
    }

    /// The cache key of a COPY or ADD, and its cached entry or the layer it made.
    fn copy_layer(
        &self,
        state: &State,
        job: &CopyJob<'_>,
        text: &str,
        src: &dyn Source,
    ) -> Result<(String, Option<Entry>, Option<CachedLayer>), StepError> {
        let plan = context::plan(src, job.sources, job.dest, job.image, job.opts)?;
        let digest = context::digest(&plan, src)?;
        let key = cache::key(&state.key, &[text, &state.args_key(), &digest]);
        if let Some(hit) = self.cache_get(&key) {
            return Ok((key, Some(hit), None));
        }
        self.say(&format!("[{}/{}] {text}", self.n, self.total));
        let dir = TempPath::new(self.store.layout.tmp_path(".stage"));
        std::fs::create_dir(dir.path()).map_err(|source| StepError::Io {
            step: "create staging directory",
            source,
        })?;
        context::stage(&plan, src, dir.path(), job.image)?;
        let layer = self.add_dir_layer(dir.path(), false)?;
        Ok((key, None, Some(layer)))
    }

    /// The filesystem of `COPY --from=NAME`: an earlier stage, or an image.
    fn copy_source(&self, name: &str) -> Result<LayerView, StepError> {
        let cur = self.stages.len();
        if let Some(j) = self.stage_ref(name, cur) {
            if let Some(s) = &self.done[j] {
                return Ok(LayerView::new(self.layer_dirs(s)?));
            }
        }
        let image = match self.store.get(name) {
            Ok(i) => i,
            Err(ImageError::NotFound(_)) => self.store.pull(
                name,
                &RegistryOptions::default(),
                &|_: &crate::image::Progress| {},
            )?,
            Err(e) => return Err(e.into()),
        };
        Ok(LayerView::new(image.layers))
    }

    /// Turns a directory of changes into a layer in the store.
    fn add_dir_layer(&self, dir: &Path, upper: bool) -> Result<CachedLayer, StepError> {
        let (reader, writer) = std::io::pipe().map_err(|source| StepError::Io {
            step: "pipe",
            source,
        })?;
        let d = dir.to_path_buf();
        let writer_thread =
            std::thread::spawn(move || super::diff::write_tar(&d, upper, writer).map(drop));
        let added = add_layer(&self.store.layout, reader, Expect::default(), "build layer");
        let written = writer_thread
            .join()
            .map_err(|_| StepError::Invalid("the layer writer panicked".into()))?;
        written.map_err(|source| StepError::Io {
            step: "write layer tar",
            source,
        })?;
        let added = added?;
        Ok(CachedLayer {
            diff_id: added.record.diff_id,
            blob: BlobRef {
                media_type: added.compression.oci_media_type().to_string(),
                digest: added.digest,
                size: added.blob_size,
            },
        })
    }
}
