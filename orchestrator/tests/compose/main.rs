//! Loader tests, one module per compose area (as compose-go keeps one test file per key). Files
//! live in memory ([`MemoryFiles`]) under `/proj`, the environment is explicit, so the tests
//! never depend on the host.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod build;
mod depends_on;
mod deploy;
mod environment;
mod errors;
mod extends;
mod healthcheck;
mod include;
mod interpolation;
mod misc;
mod networks;
mod overrides;
mod ports;
mod profiles;
mod project;
mod roundtrip;
mod volumes;

use orchestrator::compose::{load_with, LoadError, LoadOptions, MemoryFiles, Project, Service};

/// Loads `files` (paths relative to `/proj`) with environment `env`.
pub fn load_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Project, LoadError> {
    load_opts(files, env, |_| {})
}

/// Like [`load_files`], with a hook to adjust the options.
pub fn load_opts(
    files: &[(&str, &str)],
    env: &[(&str, &str)],
    adjust: impl FnOnce(&mut LoadOptions),
) -> Result<Project, LoadError> {
    let mut fs = MemoryFiles::new();
    for (path, text) in files {
        fs.insert(format!("/proj/{path}"), *text);
    }
    let mut opts = LoadOptions::new("/proj");
    opts.environment = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    adjust(&mut opts);
    load_with(&opts, &fs)
}

/// Loads a single compose.yaml that must be valid.
pub fn load(yaml: &str) -> Project {
    match load_files(&[("compose.yaml", yaml)], &[("HOME", "/home/u")]) {
        Ok(p) => p,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

/// The one service of a valid compose.yaml.
pub fn service(yaml: &str, name: &str) -> Service {
    let p = load(yaml);
    p.services
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no service {name}"))
}

/// The error lines of a compose.yaml that must be invalid.
pub fn errors(yaml: &str) -> Vec<String> {
    errors_of(load_files(
        &[("compose.yaml", yaml)],
        &[("HOME", "/home/u")],
    ))
}

/// The error lines of a load that must fail.
pub fn errors_of(r: Result<Project, LoadError>) -> Vec<String> {
    match r {
        Ok(p) => panic!("expected an error, loaded {:#?}", p.services.keys()),
        Err(e) => {
            let text = e.to_string();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            let n = e.diagnostics().len();
            if n > 1 {
                assert_eq!(lines[0], format!("{n} errors:"));
                return lines[1..].to_vec();
            }
            lines
        }
    }
}

/// The only error line of a compose.yaml that must be invalid.
pub fn error(yaml: &str) -> String {
    let e = errors(yaml);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e[0].clone()
}

/// The warnings of a valid load, as text.
pub fn warnings(p: &Project) -> Vec<String> {
    p.warnings.iter().map(|w| w.to_string()).collect()
}
