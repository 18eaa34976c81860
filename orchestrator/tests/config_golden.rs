//! Golden tests of `berth config`: YAML in, canonical model (or lists, hashes, errors) out.
//!
//! Each directory under `tests/golden/` holds compose files, an `args` file (one `berth`
//! invocation per line, run in that directory with an empty environment plus `HOME` and the
//! variables of the optional `env` file) and `expected.txt`: for each invocation the command,
//! its stdout, its stderr lines prefixed with `! ` and a non-zero exit code as `? exit N`.
//! The directory's absolute path is written `$DIR`. Run with `BERTH_UPDATE_GOLDEN=1` to rewrite
//! the expected files after an intended change, then review the diff.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn run_case(dir: &Path) -> String {
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let env = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
    let dir_text = dir.display().to_string();
    let mut out = String::new();
    for line in args.lines().filter(|l| !l.trim().is_empty()) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env_clear()
            .env("HOME", "/home/golden")
            .current_dir(dir)
            .args(line.split_whitespace());
        for kv in env.lines() {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        let output = cmd.output().unwrap();
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
    // Hashes of services with host paths depend on where the checkout is: mask them all (their
    // stability is tested in the unit tests).
    out.replace(&dir_text, "$DIR")
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((name, h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                format!("{name} <sha256>\n")
            }
            _ => format!("{l}\n"),
        })
        .collect()
}

#[test]
fn config_output_matches_the_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4);
    let mut failures = Vec::new();
    for case in cases {
        let got = run_case(&case);
        let expected_path = case.join("expected.txt");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}: output differs\n--- expected\n{expected}\n--- got\n{got}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
