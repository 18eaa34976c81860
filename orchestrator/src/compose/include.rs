//! Phase 4 (first half): `include`.
//!
//! Each entry (`- path.yaml` or `- {path, project_directory, env_file}`) is loaded as its own
//! project: its files are read, parsed and interpolated with its own environment (the process
//! environment over its `env_file`, default `.env` in its project directory), its own includes are
//! applied, its relative paths are resolved against its project directory, and its files are
//! merged. Its services, networks, volumes, configs and secrets are then imported; a resource
//! already defined differently by the including file is an error. Include cycles are errors.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::discover::read_env_files;
use super::merge::{merge_documents, strip_tags};
use super::parse::{join_index, join_key};
use super::paths::resolve_document;
use super::read::{KeySet, Reader};
use super::source::absolute;
use super::Ctx;

const INCLUDE_KEYS: KeySet = KeySet {
    known: &["path", "project_directory", "env_file"],
    unsupported: &[],
};

const SECTIONS: [&str; 5] = ["services", "networks", "volumes", "configs", "secrets"];

struct Entry {
    path: String,
    files: Vec<PathBuf>,
    project_dir: PathBuf,
    env_files: Vec<PathBuf>,
}

/// Applies the `include` key of `doc` (a file in `dir`); `stack` holds the files being
/// included, for cycle detection.
pub(crate) fn apply(
    ctx: &mut Ctx<'_>,
    doc: &mut Mapping,
    dir: &Path,
    file: usize,
    stack: &mut Vec<PathBuf>,
) {
    let Some(include) = doc.shift_remove("include") else {
        return;
    };
    let before = ctx.errors.0.len();
    process(ctx, doc, include, dir, stack);
    // Errors about this file's include entries and conflicts point into this file.
    for d in ctx.errors.0[before..].iter_mut() {
        if d.location.is_none() && d.file.is_none() {
            ctx.locator.locate_in(file, d);
        }
    }
}

fn process(
    ctx: &mut Ctx<'_>,
    doc: &mut Mapping,
    include: Value,
    dir: &Path,
    stack: &mut Vec<PathBuf>,
) {
    let include = strip_tags(include);
    let mut r = Reader::default();
    let entries = read_entries(&mut r, &include, dir);
    ctx.errors.0.extend(r.errors.0);
    for entry in entries {
        if let Some(cycle_start) = entry
            .files
            .iter()
            .find_map(|f| stack.iter().position(|s| s == f))
        {
            let chain: Vec<String> = stack[cycle_start..]
                .iter()
                .chain(entry.files.first())
                .map(|p| ctx.display(p))
                .collect();
            ctx.errors.push(
                &entry.path,
                format!("include cycle: {}", chain.join(" -> ")),
            );
            continue;
        }
        if let Some(imported) = load_project(ctx, &entry, stack) {
            import(ctx, doc, imported, &entry);
        }
    }
}

fn read_entries(r: &mut Reader, include: &Value, dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Some(items) = r.seq("include", include) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = join_index("include", i);
        let mut files = Vec::new();
        let mut project_dir = None;
        let mut env_files = Vec::new();
        match item {
            Value::String(s) => files.push(absolute(dir, Path::new(s))),
            Value::Mapping(m) => {
                for (key, p, v) in r.fields(&path, m, &INCLUDE_KEYS) {
                    match key {
                        "path" => {
                            for f in r.string_or_list(&p, v).unwrap_or_default() {
                                files.push(absolute(dir, Path::new(&f)));
                            }
                        }
                        "project_directory" => {
                            project_dir = r.string(&p, v).map(|d| absolute(dir, Path::new(&d)))
                        }
                        "env_file" => {
                            for f in r.string_or_list(&p, v).unwrap_or_default() {
                                env_files.push(absolute(dir, Path::new(&f)));
                            }
                        }
                        _ => {}
                    }
                }
                if files.is_empty() {
                    r.error(&path, "missing `path`: name the compose file to include");
                }
            }
            other => {
                r.error(
                    &path,
                    format!(
                        "expected a path or a mapping with `path`, found {}",
                        super::read::describe(other)
                    ),
                );
            }
        }
        let Some(first) = files.first() else { continue };
        let project_dir = project_dir
            .or_else(|| first.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| dir.to_path_buf());
        out.push(Entry {
            path,
            files,
            project_dir,
            env_files,
        });
    }
    out
}

/// Loads an included project into one merged document with absolute paths.
fn load_project(ctx: &mut Ctx<'_>, entry: &Entry, stack: &mut Vec<PathBuf>) -> Option<Mapping> {
    let optional = entry.env_files.is_empty();
    let env_files = if optional {
        vec![entry.project_dir.join(".env")]
    } else {
        entry.env_files.clone()
    };
    let mut env = match read_env_files(&env_files, ctx.process_env, ctx.fs, &ctx.cwd, optional) {
        Ok(env) => env,
        Err(e) => {
            ctx.errors.push(&entry.path, e.to_string());
            return None;
        }
    };
    env.extend(ctx.process_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut merged: Option<Mapping> = None;
    for file in &entry.files {
        let (idx, mut doc) = ctx.load_document(file, &env, &entry.path)?;
        stack.push(file.clone());
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        apply(ctx, &mut doc, &dir, idx, stack);
        stack.pop();
        resolve_document(&mut doc, &entry.project_dir);
        match &mut merged {
            None => merged = Some(doc),
            Some(m) => merge_documents(m, doc),
        }
    }
    merged.map(|m| match strip_tags(Value::Mapping(m)) {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    })
}

/// Imports the resources of an included project; conflicting definitions are errors.
fn import(ctx: &mut Ctx<'_>, doc: &mut Mapping, imported: Mapping, entry: &Entry) {
    for section in SECTIONS {
        let Some(Value::Mapping(items)) = imported.get(section) else {
            continue;
        };
        let target = doc
            .entry(Value::String(section.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if target.is_null() {
            *target = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(target) = target else {
            continue;
        };
        for (key, value) in items {
            match target.get(key) {
                Some(existing) if existing != value => {
                    let name = super::read::key_text(key);
                    ctx.errors.push(
                        join_key(section, &name),
                        format!(
                            "defined both here and in included {}; rename one of them",
                            ctx.display(&entry.files[0])
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
}
