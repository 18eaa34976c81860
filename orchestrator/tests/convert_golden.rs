//! Golden tests of `berth convert`, one directory per mapping: a compose project in,
//! Kubernetes manifests and warnings out; every emitted document deserialises strictly into its
//! k8s-openapi type and follows the API server's naming rules (see `convert_support`).
//!
//! Each directory under `tests/convert_golden/` holds a compose file, an `args` file (one
//! `berth` invocation per line, run in that directory with an empty environment plus `HOME`)
//! and `expected.txt`: for each invocation the command, its stdout, its stderr lines prefixed
//! with `! ` and a non-zero exit code as `? exit N`. The directory's absolute path is written
//! `$DIR`. To regenerate the expected files after an intended change run
//! `BERTH_UPDATE_GOLDEN=1 cargo test -p berth --test convert_golden`, then review the diff.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod convert_support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use convert_support::{check_document, documents};
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

fn invocations(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn run_case(dir: &Path) -> String {
    let mut out = String::new();
    for line in invocations(dir) {
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
    assert!(cases.len() >= 10, "one case per mapping");
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

#[test]
fn every_document_deserialises_strictly_and_follows_the_api_rules() {
    let mut checked = 0;
    for dir in cases() {
        for line in invocations(&dir) {
            let output = berth(&dir, &line.split_whitespace().collect::<Vec<_>>());
            if !output.status.success() {
                continue;
            }
            let text = String::from_utf8(output.stdout).unwrap();
            for doc in documents(&text) {
                check_document(&doc);
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} documents checked");
}

/// kubectl reads YAML 1.1 (`yes` is a boolean there): where it is installed, it must read every
/// document to the same values as a YAML 1.2 reader. `kubectl label --local` parses without a
/// cluster and prints what it read.
#[test]
fn kubectl_reads_the_same_values() {
    let probe = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("note: kubectl is not installed; skipping the YAML 1.1 check");
        return;
    }
    let mut checked = 0;
    for dir in cases() {
        for line in invocations(&dir) {
            let output = berth(&dir, &line.split_whitespace().collect::<Vec<_>>());
            if !output.status.success() {
                continue;
            }
            let text = String::from_utf8(output.stdout).unwrap();
            let ours: Vec<serde_json::Value> = documents(&text)
                .iter()
                .map(|d| serde_yaml::from_str(d).unwrap())
                .collect();
            let theirs = kubectl_read(&text);
            assert_eq!(theirs.len(), ours.len(), "{}: {line}", dir.display());
            for (mut t, o) in theirs.into_iter().zip(&ours) {
                let labels = t["metadata"]["labels"].as_object_mut().unwrap();
                labels.remove("berth.dev/checked");
                if labels.is_empty() {
                    t["metadata"].as_object_mut().unwrap().remove("labels");
                }
                assert_eq!(
                    &t,
                    o,
                    "{}: {line}: kubectl reads other values",
                    dir.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

/// The objects kubectl reads from a YAML stream, as JSON.
fn kubectl_read(text: &str) -> Vec<serde_json::Value> {
    use std::io::Write as _;
    let mut child = Command::new("kubectl")
        .args([
            "label",
            "--local",
            "-f",
            "-",
            "-o",
            "json",
            "berth.dev/checked=1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<serde_json::Value>()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn output_directory_gets_one_file_per_object_in_apply_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert_golden/stack");
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("manifests");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("08-service-gone.yaml"), "stale").unwrap();
    std::fs::write(target.join("notes.txt"), "mine").unwrap();
    let output = berth(
        &dir,
        &[
            "convert",
            "--namespace",
            "shop",
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let project = compose::load(&LoadOptions::new(&dir)).unwrap();
    let opts = Options {
        namespace: Some("shop".into()),
        ..Options::default()
    };
    let converted = convert::convert(&project, &opts).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "notes.txt")
        .collect();
    names.sort();
    assert!(
        target.join("notes.txt").exists(),
        "other files are left alone"
    );
    let mut want: Vec<String> = converted.objects.iter().map(|o| o.file_name()).collect();
    want.sort();
    assert_eq!(names, want);
    assert!(names[0].starts_with("00-namespace-shop"));
    let mut joined = Vec::new();
    for o in &converted.objects {
        let text = std::fs::read_to_string(target.join(o.file_name())).unwrap();
        assert_eq!(text, o.to_yaml().unwrap());
        check_document(&text);
        joined.push(text);
    }
    assert_eq!(joined.join("---\n"), converted.to_yaml().unwrap());
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
        let Ok(a) = convert::convert(&project, &opts) else {
            continue;
        };
        let b = convert::convert(&project.clone(), &opts).unwrap();
        assert_eq!(
            a.to_yaml().unwrap(),
            b.to_yaml().unwrap(),
            "{}",
            dir.display()
        );
        assert_eq!(a.warnings, b.warnings);
    }
}
