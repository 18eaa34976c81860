//! Phase 4 (second half): `extends`.
//!
//! A service with `extends: base` or `extends: {service: base, file: other.yaml}` starts from the
//! (recursively resolved) base service and merges its own definition on top with the merge
//! phase's service rules. Bases in other files are read, parsed and interpolated with the
//! project's environment, and their relative paths resolved against their own directory.
//! Unknown bases and cycles (`extends cycle: a -> b -> a`) are errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::did_you_mean;
use super::merge::merge_service;
use super::parse::join_key;
use super::paths::resolve_document;
use super::read::{KeySet, Reader};
use super::source::absolute;
use super::Ctx;

const EXTENDS_KEYS: KeySet = KeySet {
    known: &["service", "file"],
    unsupported: &[],
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Doc {
    Main,
    File(PathBuf),
}

struct Extender<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    env: &'c BTreeMap<String, String>,
    project_dir: &'c Path,
    main: Mapping,
    files: HashMap<PathBuf, (usize, Mapping)>,
    done: HashSet<(Doc, String)>,
    failed: HashSet<(Doc, String)>,
}

/// Resolves every `extends` in the services of `doc`.
pub(crate) fn apply(
    ctx: &mut Ctx<'_>,
    doc: &mut Mapping,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
) {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return;
    };
    let names: Vec<String> = services
        .iter()
        .filter(|(_, v)| v.get("extends").is_some())
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect();
    if names.is_empty() {
        return;
    }
    let mut ext = Extender {
        ctx,
        env,
        project_dir,
        main: std::mem::take(services),
        files: HashMap::new(),
        done: HashSet::new(),
        failed: HashSet::new(),
    };
    for name in names {
        let mut stack = Vec::new();
        ext.resolve(&Doc::Main, &name, &mut stack);
    }
    for (doc, name) in &ext.failed {
        if *doc == Doc::Main {
            ext.ctx.broken_services.insert(name.clone());
        }
    }
    *services = ext.main;
    // Services whose extends failed keep the key; the error is already reported.
    for (_, svc) in services.iter_mut() {
        if let Value::Mapping(m) = svc {
            m.shift_remove("extends");
        }
    }
}

impl Extender<'_, '_> {
    fn services(&mut self, doc: &Doc) -> Option<&mut Mapping> {
        match doc {
            Doc::Main => Some(&mut self.main),
            Doc::File(p) => self.files.get_mut(p).map(|(_, m)| m),
        }
    }

    fn load_file(&mut self, path: &Path, at: &str) -> bool {
        if self.files.contains_key(path) {
            return true;
        }
        let Some((idx, mut doc)) = self.ctx.load_document(path, self.env, at) else {
            return false;
        };
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        resolve_document(&mut doc, &dir);
        let services = match doc.shift_remove("services") {
            Some(Value::Mapping(m)) => m,
            _ => Mapping::new(),
        };
        self.files.insert(path.to_path_buf(), (idx, services));
        true
    }

    /// Resolves service `name` of `doc` in place; returns its resolved definition.
    fn resolve(
        &mut self,
        doc: &Doc,
        name: &str,
        stack: &mut Vec<(Doc, String)>,
    ) -> Option<Mapping> {
        let key = (doc.clone(), name.to_string());
        if self.failed.contains(&key) {
            return None;
        }
        let svc = match self.services(doc)?.get(name) {
            Some(Value::Mapping(m)) => m.clone(),
            _ => return None,
        };
        if self.done.contains(&key) || svc.get("extends").is_none() {
            return Some(svc);
        }
        let path = join_key(&join_key("services", name), "extends");
        let Some((base_name, file)) = svc.get("extends").and_then(|e| self.read_extends(&path, e))
        else {
            self.failed.insert(key);
            return None;
        };
        let base_doc = match &file {
            Some(f) => {
                let dir = match doc {
                    Doc::Main => self.project_dir.to_path_buf(),
                    Doc::File(p) => p.parent().unwrap_or(Path::new("/")).to_path_buf(),
                };
                let abs = absolute(&dir, Path::new(f));
                if !self.load_file(&abs, &path) {
                    self.failed.insert(key);
                    return None;
                }
                Doc::File(abs)
            }
            None => doc.clone(),
        };
        let base_key = (base_doc.clone(), base_name.clone());
        if base_key == key || stack.contains(&base_key) {
            let mut chain: Vec<&str> = stack.iter().map(|(_, n)| n.as_str()).collect();
            chain.push(name);
            chain.push(&base_name);
            let at = join_key(&join_key("services", chain[0]), "extends");
            self.ctx
                .errors
                .push(at, format!("extends cycle: {}", chain.join(" -> ")));
            self.failed.extend(stack.iter().cloned());
            self.failed.insert(key);
            return None;
        }
        let exists = self
            .services(&base_doc)
            .is_some_and(|s| s.contains_key(base_name.as_str()));
        if !exists {
            let candidates: Vec<String> = self
                .services(&base_doc)
                .map(|s| {
                    s.keys()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let hint = did_you_mean(&base_name, candidates.iter().map(String::as_str));
            let place = match &file {
                Some(f) => format!(" in {f}"),
                None => String::new(),
            };
            self.ctx.errors.push(
                &path,
                format!("extends unknown service `{base_name}`{place}{hint}"),
            );
            self.failed.insert(key);
            return None;
        }
        stack.push(key.clone());
        let base = self.resolve(&base_doc, &base_name, stack);
        stack.pop();
        let Some(mut merged) = base else {
            self.failed.insert(key);
            return None;
        };
        let mut own = svc;
        own.shift_remove("extends");
        merge_service(&mut merged, own);
        self.record_origin(doc, name, &base_doc, &base_name);
        self.services(doc)?.insert(
            Value::String(name.to_string()),
            Value::Mapping(merged.clone()),
        );
        self.done.insert(key);
        Some(merged)
    }

    fn read_extends(&mut self, path: &str, v: &Value) -> Option<(String, Option<String>)> {
        let mut r = Reader::default();
        let out = match v {
            Value::String(s) => Some((s.clone(), None)),
            Value::Mapping(m) => {
                let mut service = None;
                let mut file = None;
                for (key, p, v) in r.fields(path, m, &EXTENDS_KEYS) {
                    match key {
                        "service" => service = r.string(&p, v),
                        "file" => file = r.string(&p, v),
                        _ => {}
                    }
                }
                if service.is_none() {
                    r.error(path, "missing `service`: name the service to extend");
                }
                service.map(|s| (s, file))
            }
            other => {
                r.error(
                    path,
                    format!(
                        "expected a service name or a mapping with `service`, found {}",
                        super::read::describe(other)
                    ),
                );
                None
            }
        };
        self.ctx.errors.0.extend(r.errors.0);
        out
    }

    fn record_origin(&mut self, doc: &Doc, name: &str, base_doc: &Doc, base_name: &str) {
        if *doc != Doc::Main {
            return;
        }
        let base_path = join_key("services", base_name);
        match base_doc {
            Doc::Main => {
                for idx in self.ctx.main_files.clone() {
                    self.ctx.locator.add_origin(name, idx, base_path.clone());
                }
            }
            Doc::File(p) => {
                if let Some((idx, _)) = self.files.get(p) {
                    self.ctx.locator.add_origin(name, *idx, base_path);
                }
            }
        }
    }
}
