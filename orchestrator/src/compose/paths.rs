//! Relative paths of a document loaded from another directory (an `include`d project, an
//! `extends.file` base) are made absolute against that document's own directory before it is
//! merged, so that they keep pointing where their author meant. Paths of the main files are
//! resolved against the project directory in the normalize phase.
//!
//! Paths handled: `build` / `build.context` (local contexts only), `env_file`, bind sources of
//! `volumes` (short and long syntax), `extends.file`, and `file` of top-level configs and secrets.
//! `~` paths are left for the normalize phase, which expands them.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::shorthand::is_host_path;
use super::source::absolute;

/// Whether a build context is a remote source rather than a directory.
pub(crate) fn is_remote_context(context: &str) -> bool {
    [
        "http://",
        "https://",
        "git://",
        "git@",
        "github.com/",
        "ssh://",
    ]
    .iter()
    .any(|p| context.starts_with(p))
}

fn resolve_str(s: &mut String, base: &Path) {
    if !s.starts_with('/') && !s.starts_with('~') {
        *s = absolute(base, Path::new(s.as_str())).display().to_string();
    }
}

fn resolve_in(v: &mut Value, base: &Path) {
    if let Value::String(s) = v {
        resolve_str(s, base);
    }
}

/// Resolves the relative paths of a whole document against `base`.
pub(crate) fn resolve_document(doc: &mut Mapping, base: &Path) {
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (_, svc) in services.iter_mut() {
            if let Value::Mapping(svc) = svc {
                resolve_service(svc, base);
            }
        }
    }
    for section in ["configs", "secrets"] {
        if let Some(Value::Mapping(items)) = doc.get_mut(section) {
            for (_, item) in items.iter_mut() {
                if let Some(file) = item.get_mut("file") {
                    resolve_in(file, base);
                }
            }
        }
    }
}

/// Resolves the relative paths of one service definition against `base`.
pub(crate) fn resolve_service(svc: &mut Mapping, base: &Path) {
    match svc.get_mut("build") {
        Some(Value::String(ctx)) if !is_remote_context(ctx) => resolve_str(ctx, base),
        Some(Value::Mapping(b)) => {
            if let Some(Value::String(ctx)) = b.get_mut("context") {
                if !is_remote_context(ctx) {
                    resolve_str(ctx, base);
                }
            }
        }
        _ => {}
    }
    match svc.get_mut("env_file") {
        Some(Value::Sequence(items)) => {
            for item in items {
                match item {
                    Value::Mapping(m) => {
                        if let Some(p) = m.get_mut("path") {
                            resolve_in(p, base);
                        }
                    }
                    other => resolve_in(other, base),
                }
            }
        }
        Some(other) => resolve_in(other, base),
        None => {}
    }
    if let Some(Value::Sequence(items)) = svc.get_mut("volumes") {
        for item in items {
            resolve_volume(item, base);
        }
    }
    if let Some(Value::Mapping(ext)) = svc.get_mut("extends") {
        if let Some(file) = ext.get_mut("file") {
            resolve_in(file, base);
        }
    }
}

fn resolve_volume(item: &mut Value, base: &Path) {
    match item {
        Value::String(spec) => {
            let Some((source, rest)) = spec.split_once(':') else {
                return;
            };
            if source.starts_with('.') {
                let abs = absolute(base, Path::new(source));
                *spec = format!("{}:{rest}", abs.display());
            }
        }
        Value::Mapping(m) => {
            let is_bind = m.get("type").and_then(Value::as_str) == Some("bind");
            if let Some(Value::String(src)) = m.get_mut("source") {
                if is_bind || (is_host_path(src) && src.starts_with('.')) {
                    resolve_str(src, base);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute() {
        let mut doc: Mapping = serde_yaml::from_str(
            "services:\n  a:\n    build: ./app\n    env_file: [a.env, {path: b.env}]\n    volumes: ['./data:/data', 'named:/n', {type: bind, source: src, target: /s}, '~/x:/x']\n    extends: {file: base.yaml, service: b}\n  b:\n    build: {context: 'https://example.com/r.git'}\n    env_file: c.env\nsecrets:\n  s: {file: ./s.txt}\n",
        )
        .unwrap();
        resolve_document(&mut doc, Path::new("/inc"));
        let a = &doc["services"]["a"];
        assert_eq!(a["build"].as_str(), Some("/inc/app"));
        assert_eq!(a["env_file"][0].as_str(), Some("/inc/a.env"));
        assert_eq!(a["env_file"][1]["path"].as_str(), Some("/inc/b.env"));
        assert_eq!(a["volumes"][0].as_str(), Some("/inc/data:/data"));
        assert_eq!(a["volumes"][1].as_str(), Some("named:/n"));
        assert_eq!(a["volumes"][2]["source"].as_str(), Some("/inc/src"));
        assert_eq!(a["volumes"][3].as_str(), Some("~/x:/x"));
        assert_eq!(a["extends"]["file"].as_str(), Some("/inc/base.yaml"));
        let b = &doc["services"]["b"];
        assert_eq!(
            b["build"]["context"].as_str(),
            Some("https://example.com/r.git")
        );
        assert_eq!(b["env_file"].as_str(), Some("/inc/c.env"));
        assert_eq!(doc["secrets"]["s"]["file"].as_str(), Some("/inc/s.txt"));
    }
}
