//! Reading and writing cgroup control files and directories, with errors that name the path.
//!
//! Control files are opened without `O_CREAT`: a missing file means a missing controller and
//! must fail, on cgroupfs and on the tempdirs the unit tests use alike.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;

/// How long `rmdir` keeps retrying while the kernel still reports the cgroup busy (processes
/// that were just killed leave it a moment later).
const RMDIR_BUSY_WAIT: Duration = Duration::from_secs(2);

/// Reads a control file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a control file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `value` to an existing control file in a single `write(2)`.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = File::options()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Parses a single number, as in `memory.usage_in_bytes`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_string(),
    })
}

/// Parses the `key value` lines of flat keyed files (`cpu.stat`, `memory.events`,
/// `cgroup.events`, `memory.oom_control`). Lines whose value is not a number are skipped.
pub(crate) fn keyed(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

/// Reads a keyed file and returns the value of `key`, failing when the key is absent.
pub(crate) fn read_key(path: &Path, key: &str) -> Result<u64, CgroupError> {
    let text = read(path)?;
    keyed(&text)
        .get(key)
        .copied()
        .ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            content: format!("no key {key:?} in {:?}", text.trim()),
        })
}

/// Creates `root/rel` and any missing parents. Calls `before_child(parent)` before each
/// directory is created below `parent` (v2 uses it to delegate controllers). Appends the
/// directories it created to `created`, outermost first, so the caller can undo them.
pub(crate) fn mkdir_p(
    root: &Path,
    rel: &str,
    created: &mut Vec<PathBuf>,
    before_child: &mut dyn FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<PathBuf, CgroupError> {
    let mut dir = root.to_path_buf();
    for part in rel.split('/') {
        before_child(&dir)?;
        dir.push(part);
        match fs::create_dir(&dir) {
            Ok(()) => created.push(dir.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Mkdir { path: dir, source }),
        }
    }
    Ok(dir)
}

/// Removes one cgroup directory. A missing directory is success; while the kernel says it is
/// busy (processes still leaving), retries for a short while.
pub(crate) fn rmdir(path: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if busy(&e) && start.elapsed() < RMDIR_BUSY_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

fn busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let m = keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbad line x\n");
        assert_eq!(m["oom_kill"], 3);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn write_requires_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memory.max");
        assert!(matches!(write(&p, "1"), Err(CgroupError::Write { .. })));
        fs::write(&p, "").unwrap();
        write(&p, "4096").unwrap();
        assert_eq!(parse_u64(&p, &read(&p).unwrap()).unwrap(), 4096);
        write(&p, "1").unwrap();
        assert_eq!(read(&p).unwrap(), "1");
        assert!(parse_u64(&p, "max\n").is_err());
        assert_eq!(read_opt(&dir.path().join("nope")).unwrap(), None);
    }

    #[test]
    fn mkdir_p_records_and_rmdir_tolerates_missing() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("a")).unwrap();
        let mut created = Vec::new();
        let mut parents = Vec::new();
        let leaf = mkdir_p(root.path(), "a/b/c", &mut created, &mut |p| {
            parents.push(p.to_path_buf());
            Ok(())
        })
        .unwrap();
        assert_eq!(leaf, root.path().join("a/b/c"));
        assert_eq!(
            created,
            vec![root.path().join("a/b"), root.path().join("a/b/c")]
        );
        assert_eq!(parents[0], root.path());
        assert_eq!(parents.len(), 3);
        rmdir(&leaf).unwrap();
        rmdir(&leaf).unwrap();
    }
}
