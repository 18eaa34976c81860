//! `berth convert` over real projects: the repository's example stack converts with exactly
//! the warnings it deserves, and every valid file of the two compose corpora (the 39 of
//! docker/awesome-compose and our own) converts without a panic, to documents that deserialise
//! strictly and follow the API server's rules. Bind mounts are refused unless
//! `--allow-hostpath`, so each file is converted both ways.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod convert_support;

use std::path::{Path, PathBuf};

use convert_support::{check_document, documents};
use orchestrator::compose::{load, LoadOptions, MountType, Project};
use orchestrator::convert::{convert, ConvertError, Options};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Loads a compose file, or a directory's project as `berth` discovers it.
fn load_path(path: &Path) -> Option<Project> {
    let mut opts = if path.is_dir() {
        LoadOptions::new(path)
    } else {
        let mut opts = LoadOptions::new(path.parent().unwrap());
        opts.files = vec![path.to_path_buf()];
        opts
    };
    opts.environment.insert("HOME".into(), "/root".into());
    load(&opts).ok()
}

/// Converts both ways; returns the number of documents and warnings, or `None` when a config
/// or secret file the project names does not exist (the corpus leaves some out).
fn convert_both_ways(name: &str, project: &Project) -> Option<(usize, usize)> {
    let has_binds = project
        .services
        .values()
        .any(|s| s.volumes.iter().any(|m| m.kind == MountType::Bind));
    match convert(project, &Options::default()) {
        Ok(_) => assert!(!has_binds, "{name}: bind mounts must be refused"),
        Err(ConvertError::BindMounts(list)) => {
            assert!(has_binds, "{name}");
            assert!(list.iter().all(|l| l.starts_with("service ")), "{list:?}");
        }
        Err(ConvertError::ReadFile { .. }) => return None,
        Err(e) => panic!("{name}: {e}"),
    }
    let opts = Options {
        allow_hostpath: true,
        ..Options::default()
    };
    let converted = match convert(project, &opts) {
        Err(ConvertError::ReadFile { .. }) => return None,
        other => other.unwrap_or_else(|e| panic!("{name}: {e}")),
    };
    let text = converted.to_yaml().unwrap();
    let docs = documents(&text);
    assert_eq!(docs.len(), converted.objects.len(), "{name}");
    for doc in &docs {
        check_document(doc);
    }
    let workloads = docs
        .iter()
        .filter(|d| d.contains("\nkind: Deployment\n") || d.contains("\nkind: Job\n"))
        .count();
    assert_eq!(
        workloads,
        project.services.len(),
        "{name}: one workload per service"
    );
    Some((docs.len(), converted.warnings.len()))
}

#[test]
fn the_example_stack_converts_with_only_the_warnings_it_deserves() {
    let dir = manifest_dir().join("../examples/webstack");
    let project = load(&LoadOptions::new(&dir)).unwrap();
    let converted = convert(&project, &Options::default()).unwrap();
    let warnings: Vec<String> = converted.warnings.iter().map(|w| w.to_string()).collect();
    // `data` sits only on the internal network but waits for the `seed` Job, which it can
    // only learn about from the API server.
    assert_eq!(
        warnings,
        [
            "service data: depends_on: waiting through the Kubernetes API lets the pod open \
             TCP 443 and 6443 although it has no outside network (network_mode none or only \
             internal networks)"
        ]
    );
    let kinds: Vec<String> = converted
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.kind(), o.name()))
        .collect();
    for want in [
        "Job/seed",
        "Deployment/data",
        "Deployment/api",
        "Deployment/front",
        "Service/api",
        "Service/front-published",
        "PersistentVolumeClaim/content",
        "NetworkPolicy/net-backend",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} missing: {kinds:?}");
    }
    for doc in documents(&converted.to_yaml().unwrap()) {
        check_document(&doc);
    }
}

fn corpus_files(name: &str) -> Vec<PathBuf> {
    let root = manifest_dir().join("tests/corpus").join(name);
    let text = std::fs::read_to_string(root.join("EXPECT.tsv")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let (path, verdict) = (cols.next()?, cols.next()?);
            (!matches!(verdict, "invalid" | "missing-file")).then(|| root.join(path))
        })
        .collect()
}

#[test]
fn awesome_compose_files_convert_without_panic() {
    let files = corpus_files("awesome-compose");
    assert_eq!(files.len(), 39);
    let (mut docs, mut warnings) = (0, 0);
    for file in files {
        let project = load_path(&file).unwrap_or_else(|| panic!("{} loads", file.display()));
        let (d, w) = convert_both_ways(&file.display().to_string(), &project)
            .unwrap_or_else(|| panic!("{}: files missing", file.display()));
        docs += d;
        warnings += w;
    }
    println!("awesome-compose: {docs} documents, {warnings} warnings");
    assert!(docs > 300, "{docs}");
}

#[test]
fn own_corpus_files_convert_without_panic() {
    let mut converted = 0;
    for path in corpus_files("own") {
        let Some(project) = load_path(&path) else {
            continue;
        };
        if convert_both_ways(&path.display().to_string(), &project).is_some() {
            converted += 1;
        }
    }
    assert!(converted >= 20, "{converted}");
}
