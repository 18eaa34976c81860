//! Before phase 1: which files make up the project, its directory, its environment and its name,
//! as Docker Compose decides them.
//!
//! - Files: `-f` (repeatable), else `COMPOSE_FILE` (split on `COMPOSE_PATH_SEPARATOR`, default
//!   `:`), else the first of compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml
//!   in the working directory or its nearest parent that has one, plus the override file beside it
//!   (compose.override.yml/.yaml, docker-compose.override.yml/.yaml).
//! - Project directory: `--project-directory`, else the directory of the first file.
//! - Environment: the process environment over `--env-file` files or `<project dir>/.env`.
//! - Name: `-p`, else `COMPOSE_PROJECT_NAME`, else top-level `name:`, else the project
//!   directory's name, normalised (lowercase; characters other than letters, digits, `-` and `_`
//!   dropped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dotenv;
use super::error::{Diagnostic, Diagnostics, LoadError, Location};
use super::parse::display_path;
use super::source::{absolute, FileSource};
use super::LoadOptions;

/// Default compose file names, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The outcome of discovery.
#[derive(Debug)]
pub(crate) struct Discovered {
    /// Absolute compose files in merge order.
    pub files: Vec<PathBuf>,
    /// Absolute project directory.
    pub project_dir: PathBuf,
    /// Variables for interpolation: process environment over the env files.
    pub env: BTreeMap<String, String>,
}

/// Finds the compose files, the project directory and the environment.
pub(crate) fn discover(
    opts: &LoadOptions,
    fs: &dyn FileSource,
    warnings: &mut Diagnostics,
) -> Result<Discovered, LoadError> {
    let cwd = &opts.working_dir;
    let project_dir_flag = opts.project_directory.as_ref().map(|d| absolute(cwd, d));
    let mut files: Vec<PathBuf> = opts.files.iter().map(|f| absolute(cwd, f)).collect();
    if files.is_empty() {
        let compose_file = match opts.environment.get("COMPOSE_FILE") {
            Some(v) => Some(v.clone()),
            None => {
                let dir = project_dir_flag.as_deref().unwrap_or(cwd);
                let (files, optional) = if opts.env_files.is_empty() {
                    (vec![dir.join(".env")], true)
                } else {
                    (
                        opts.env_files.iter().map(|f| absolute(cwd, f)).collect(),
                        false,
                    )
                };
                read_env_files(&files, &opts.environment, fs, cwd, optional)?.remove("COMPOSE_FILE")
            }
        };
        if let Some(list) = compose_file.filter(|l| !l.is_empty()) {
            let sep = opts
                .environment
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .unwrap_or_else(|| ":".to_string());
            files = list
                .split(sep.as_str())
                .filter(|f| !f.is_empty())
                .map(|f| absolute(project_dir_flag.as_deref().unwrap_or(cwd), Path::new(f)))
                .collect();
        } else {
            files = search(
                project_dir_flag.as_deref().unwrap_or(cwd),
                fs,
                cwd,
                warnings,
            )?;
        }
    }
    let project_dir = match project_dir_flag {
        Some(d) => d,
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.clone()),
    };
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        vec![project_dir.join(".env")]
    } else {
        opts.env_files.iter().map(|f| absolute(cwd, f)).collect()
    };
    let mut env = read_env_files(
        &env_files,
        &opts.environment,
        fs,
        cwd,
        opts.env_files.is_empty(),
    )?;
    env.extend(opts.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(Discovered {
        files,
        project_dir,
        env,
    })
}

/// The default file in `dir` or its nearest parent, plus its override file.
fn search(
    dir: &Path,
    fs: &dyn FileSource,
    cwd: &Path,
    warnings: &mut Diagnostics,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut current = Some(dir);
    while let Some(d) = current {
        let found: Vec<PathBuf> = DEFAULT_FILES
            .iter()
            .map(|n| d.join(n))
            .filter(|p| fs.is_file(p))
            .collect();
        if let Some(first) = found.first() {
            if found.len() > 1 {
                let names: Vec<String> = found.iter().map(|p| display_path(p, cwd)).collect();
                warnings.push(
                    "",
                    format!(
                        "found several compose files ({}); using {}",
                        names.join(", "),
                        names[0]
                    ),
                );
            }
            let mut files = vec![first.clone()];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|n| d.join(n))
                .find(|p| fs.is_file(p))
            {
                files.push(o);
            }
            return Ok(files);
        }
        current = d.parent();
    }
    Err(LoadError::NotFound {
        dir: dir.to_path_buf(),
    })
}

/// Reads env files in order (later ones win); a missing file is an error unless `optional`.
pub(crate) fn read_env_files(
    files: &[PathBuf],
    process_env: &BTreeMap<String, String>,
    fs: &dyn FileSource,
    cwd: &Path,
    optional: bool,
) -> Result<BTreeMap<String, String>, LoadError> {
    let mut out = BTreeMap::new();
    for file in files {
        if optional && !fs.is_file(file) {
            continue;
        }
        let text = fs.read(file).map_err(|source| LoadError::Read {
            what: "env file",
            path: file.clone(),
            source,
        })?;
        let pairs = dotenv::parse(&text, process_env).map_err(|e| {
            LoadError::Invalid(Diagnostics(vec![Diagnostic {
                location: Some(Location {
                    file: display_path(file, cwd),
                    line: e.line,
                    column: 1,
                }),
                ..Diagnostic::at("", e.message)
            }]))
        })?;
        out.extend(pairs);
    }
    Ok(out)
}

/// Whether `name` is a valid project name.
pub(crate) fn valid_project_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A directory name turned into a project name: lowercase, other characters dropped.
pub(crate) fn normalize_project_name(name: &str) -> String {
    let lower: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    lower.trim_start_matches(['-', '_']).to_string()
}

/// The project name from flags and environment (`-p`, `COMPOSE_PROJECT_NAME`), validated.
pub(crate) fn explicit_name(
    opts: &LoadOptions,
    env: &BTreeMap<String, String>,
) -> Result<Option<String>, LoadError> {
    let name = opts
        .project_name
        .clone()
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|n| !n.is_empty());
    match name {
        Some(n) if !valid_project_name(&n) => Err(LoadError::ProjectName { name: n }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::MemoryFiles;
    use super::*;

    fn opts(cwd: &str) -> LoadOptions {
        LoadOptions {
            working_dir: cwd.into(),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn finds_the_default_file_and_its_override_in_a_parent() {
        let mut fs = MemoryFiles::new();
        fs.insert("/p/compose.yaml", "")
            .insert("/p/compose.override.yaml", "")
            .insert("/p/.env", "A=1\nB=2\n");
        let mut o = opts("/p/sub/dir");
        o.environment.insert("B".into(), "env".into());
        let mut w = Diagnostics::default();
        let d = discover(&o, &fs, &mut w).unwrap();
        assert_eq!(
            d.files,
            [
                PathBuf::from("/p/compose.yaml"),
                "/p/compose.override.yaml".into()
            ]
        );
        assert_eq!(d.project_dir, PathBuf::from("/p"));
        assert_eq!(d.env["A"], "1");
        assert_eq!(d.env["B"], "env", "the process environment wins over .env");
        assert!(w.is_empty());
    }

    #[test]
    fn warns_when_several_default_files_exist() {
        let mut fs = MemoryFiles::new();
        fs.insert("/p/compose.yml", "")
            .insert("/p/docker-compose.yml", "");
        let mut w = Diagnostics::default();
        let d = discover(&opts("/p"), &fs, &mut w).unwrap();
        assert_eq!(d.files, [PathBuf::from("/p/compose.yml")]);
        assert!(w.0[0].message.contains("using compose.yml"), "{w}");
    }

    #[test]
    fn compose_file_variable_and_flags() {
        let mut fs = MemoryFiles::new();
        fs.insert("/p/.env", "COMPOSE_FILE=a.yaml:b.yaml\n");
        let mut w = Diagnostics::default();
        let d = discover(&opts("/p"), &fs, &mut w).unwrap();
        assert_eq!(d.files, [PathBuf::from("/p/a.yaml"), "/p/b.yaml".into()]);
        let mut o = opts("/p");
        o.files = vec!["x/c.yaml".into()];
        o.env_files = vec!["custom.env".into()];
        fs.insert("/p/custom.env", "C=3");
        let d = discover(&o, &fs, &mut w).unwrap();
        assert_eq!(d.project_dir, PathBuf::from("/p/x"));
        assert_eq!(d.env.get("C").map(String::as_str), Some("3"));
        assert!(
            !d.env.contains_key("COMPOSE_FILE"),
            ".env replaced by --env-file"
        );
    }

    #[test]
    fn missing_files_and_bad_env_files_are_errors() {
        let fs = MemoryFiles::new();
        let mut w = Diagnostics::default();
        let e = discover(&opts("/nowhere"), &fs, &mut w).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no compose file found in /nowhere"),
            "{e}"
        );
        let mut fs = MemoryFiles::new();
        fs.insert("/p/compose.yaml", "")
            .insert("/p/.env", "A=1\noops\n");
        let e = discover(&opts("/p"), &fs, &mut w).unwrap_err();
        assert_eq!(
            e.to_string(),
            ".env:2:1: expected KEY=VALUE, found \"oops\""
        );
        let mut o = opts("/p");
        o.env_files = vec!["missing.env".into()];
        let e = discover(&o, &fs, &mut w).unwrap_err();
        assert_eq!(e.to_string(), "read env file /p/missing.env");
    }

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x"), "x");
        assert!(valid_project_name("web-1_a"));
        assert!(!valid_project_name("Web"));
        assert!(!valid_project_name("-x"));
        let mut o = opts("/p");
        o.project_name = Some("Bad Name".into());
        assert!(explicit_name(&o, &BTreeMap::new()).is_err());
        let env = [("COMPOSE_PROJECT_NAME".to_string(), "fromenv".to_string())].into();
        assert_eq!(
            explicit_name(&opts("/p"), &env).unwrap().as_deref(),
            Some("fromenv")
        );
    }
}
