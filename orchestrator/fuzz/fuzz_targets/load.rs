//! Fuzz target: the whole compose loader on arbitrary input must never panic.
//!
//! The input is split on the line `--- override ---` into compose.yaml and
//! compose.override.yaml, with a `.env` from the part after `--- env ---`, so merging and
//! interpolation are exercised too. A project that loads is also rendered as `berth config`
//! does and walked by the dependency graph.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orchestrator::compose::{load_with, LoadOptions, MemoryFiles};
use orchestrator::graph::ServiceGraph;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (main, env) = match text.split_once("\n--- env ---\n") {
        Some((m, e)) => (m.to_string(), e.to_string()),
        None => (text.to_string(), String::new()),
    };
    let mut fs = MemoryFiles::new();
    match main.split_once("\n--- override ---\n") {
        Some((base, over)) => {
            fs.insert("/fuzz/compose.yaml", base);
            fs.insert("/fuzz/compose.override.yaml", over);
        }
        None => {
            fs.insert("/fuzz/compose.yaml", main.as_str());
        }
    }
    fs.insert("/fuzz/.env", env);
    let mut opts = LoadOptions::new("/fuzz");
    opts.environment.insert("HOME".into(), "/root".into());
    opts.environment.insert("TAG".into(), "1.0".into());
    if let Ok(project) = load_with(&opts, &fs) {
        if let Ok(value) = project.to_compose_value(true) {
            let _ = serde_yaml::to_string(&value);
        }
        if let Ok(graph) = ServiceGraph::new(&project) {
            let _ = graph.start_order();
            let _ = graph.to_dot();
        }
        for svc in project.services.values() {
            let _ = svc.config_hash();
        }
    }
});
