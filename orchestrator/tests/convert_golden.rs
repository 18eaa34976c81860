//! Golden tests of `berth convert`: a compose project in, Kubernetes manifests and warnings out;
//! and every emitted document deserialises back into its k8s-openapi type unchanged.
//!
//! Each directory under `tests/convert_golden/` holds a compose file, an `args` file (one
//! `berth` invocation per line, run in that directory with an empty environment plus `HOME`)
//! and `expected.txt`: for each invocation the command, its stdout, its stderr lines prefixed
//! with `! ` and a non-zero exit code as `? exit N`. The directory's absolute path is written
//! `$DIR`. Run with `BERTH_UPDATE_GOLDEN=1` to rewrite the expected files after an intended
//! change, then review the diff.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use orchestrator::compose::{self, LoadOptions};
use orchestrator::convert::{self, Options};

fn berth(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .env_clear()
        .env("HOME", "/home/golden")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn run_case(dir: &Path) -> String {
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let mut out = String::new();
    for line in args.lines().filter(|l| !l.trim().is_empty()) {
        let output = berth(dir, &line.split_whitespace().collect::<Vec<_>>());
        let _ = writeln!(out, "$ berth {line}");
        out.push_str(&String::from_utf8_lossy(&output.stdout));
        for l in String::from_utf8_lossy(&output.stderr).lines() {
            let _ = writeln!(out, "! {l}");
        }
        if !output.status.success() {
            let _ = writeln!(out, "? exit {}", output.status.code().unwrap_or(-1));
        }
        out.push('\n');
    }
    out.replace(&dir.display().to_string(), "$DIR")
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert_golden");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    cases
}

#[test]
fn convert_output_matches_the_golden_files() {
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some();
    let mut failed = Vec::new();
    for dir in cases() {
        let got = run_case(&dir);
        let path = dir.join("expected.txt");
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            eprintln!("--- {} differs:\n{got}", dir.display());
            failed.push(dir);
        }
    }
    assert!(failed.is_empty(), "golden mismatch: {failed:?}");
}

/// Deserialises one document into `T` and checks it serialises back to the same text.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &str) {
    let typed: T = serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let again = serde_yaml::to_string(&typed).unwrap();
    assert_eq!(
        again.trim_end(),
        doc.trim_end(),
        "not stable through the typed struct"
    );
}

fn check_document(doc: &str) {
    let value: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
    let kind = value["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind: {doc}"));
    match kind {
        "Deployment" => round_trip::<Deployment>(doc),
        "Job" => round_trip::<Job>(doc),
        "Service" => round_trip::<Service>(doc),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(doc),
        "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(doc),
        "ConfigMap" => round_trip::<ConfigMap>(doc),
        "Secret" => round_trip::<Secret>(doc),
        "ServiceAccount" => round_trip::<ServiceAccount>(doc),
        "Role" => round_trip::<Role>(doc),
        "RoleBinding" => round_trip::<RoleBinding>(doc),
        other => panic!("unexpected kind {other}"),
    }
}

#[test]
fn every_document_deserialises_into_its_typed_struct() {
    let mut checked = 0;
    for dir in cases() {
        let args = std::fs::read_to_string(dir.join("args")).unwrap();
        for line in args.lines().filter(|l| !l.trim().is_empty()) {
            let output = berth(&dir, &line.split_whitespace().collect::<Vec<_>>());
            if !output.status.success() {
                continue;
            }
            let text = String::from_utf8(output.stdout).unwrap();
            for doc in text.split("\n---\n") {
                check_document(doc);
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} documents checked");
}

#[test]
fn output_directory_gets_one_file_per_object() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert_golden/stack");
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("manifests");
    let output = berth(&dir, &["convert", "-o", target.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let project = compose::load(&LoadOptions::new(&dir)).unwrap();
    let converted = convert::convert(&project, &Options::default()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = converted.objects.iter().map(|o| o.file_name()).collect();
    want.sort();
    assert_eq!(names, want);
    for o in &converted.objects {
        let text = std::fs::read_to_string(target.join(o.file_name())).unwrap();
        assert_eq!(text, o.to_yaml().unwrap());
        check_document(&text);
    }
}

#[test]
fn conversion_is_deterministic() {
    for dir in cases() {
        let Ok(project) = compose::load(&LoadOptions::new(&dir)) else {
            continue;
        };
        let opts = Options {
            allow_hostpath: true,
            ..Options::default()
        };
        let a = convert::convert(&project, &opts)
            .unwrap()
            .to_yaml()
            .unwrap();
        let b = convert::convert(&project, &opts)
            .unwrap()
            .to_yaml()
            .unwrap();
        assert_eq!(a, b, "{}", dir.display());
    }
}
