//! Atomic file writes: every piece of state berth keeps on disk goes through here, so a crash
//! leaves either the old or the new content, never a torn file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Error of an atomic write, naming the step and the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes `data` to `path` atomically: a temporary file in the same directory is written and
/// fsynced, renamed over `path`, and the directory is fsynced.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), FsError> {
    write_with(path, data, true)
}

/// Like [`write_atomic`] without the fsyncs: atomic against a crash of the process (readers
/// see the old or the new content), not against a crash of the host. For state that is
/// worthless after a reboot (containers removed when they exit).
pub fn write_atomic_volatile(path: &Path, data: &[u8]) -> Result<(), FsError> {
    write_with(path, data, false)
}

fn write_with(path: &Path, data: &[u8], durable: bool) -> Result<(), FsError> {
    let err = |source| FsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(err)?;
    f.write_all(data).map_err(err)?;
    if durable {
        f.sync_all().map_err(err)?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })?;
    if durable {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Makes files already written in `dir` (and `dir`'s own entry) durable: each file is
/// fsynced, then `dir` and its parent. Written with [`write_atomic_volatile`] first and synced
/// here together, a record of several files costs one journal commit instead of one per file.
pub fn sync_files(dir: &Path, names: &[&str]) -> Result<(), FsError> {
    let sync = |path: &Path| {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|source| FsError::Write {
                path: path.to_path_buf(),
                source,
            })
    };
    for name in names {
        match sync(&dir.join(name)) {
            Err(FsError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    sync(dir)?;
    match dir.parent() {
        Some(parent) => sync(parent),
        None => Ok(()),
    }
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), FsError> {
    write_json_with(path, value, true)
}

/// Serialises `value` as JSON and writes it atomically, durably when `durable`.
pub fn write_json_with<T: serde::Serialize>(
    path: &Path,
    value: &T,
    durable: bool,
) -> Result<(), FsError> {
    let data = serde_json::to_vec_pretty(value).map_err(|e| FsError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    write_with(path, &data, durable)
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, FsError> {
    let data = fs::read(path).map_err(|source| FsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| FsError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        write_json(&p, &vec![1, 2, 3]).unwrap();
        write_json(&p, &vec![4]).unwrap();
        let v: Vec<i32> = read_json(&p).unwrap();
        assert_eq!(v, vec![4]);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    }
}
