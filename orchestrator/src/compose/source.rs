//! Where the loader reads files from: the host ([`HostFiles`]) or memory ([`MemoryFiles`], for
//! tests and fuzzing). Loading only ever reads (compose files, `.env`, env files); it never writes
//! or creates anything.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Read access to files for the loader.
pub trait FileSource {
    /// The whole file as UTF-8 text.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Whether a regular file exists at `path`.
    fn is_file(&self, path: &Path) -> bool;
}

/// Reads the host's filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFiles;

impl FileSource for HostFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Files held in memory, keyed by absolute path.
#[derive(Debug, Default, Clone)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryFiles {
    /// An empty set of files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> &mut Self {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl FileSource for MemoryFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
}

/// `path` made absolute against `base` and cleaned of `.` and `..` components, without touching
/// the filesystem.
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_cleans_dots() {
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("./c/../d")),
            PathBuf::from("/a/b/d")
        );
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("/x/./y")),
            PathBuf::from("/x/y")
        );
        assert_eq!(
            absolute(Path::new("/a"), Path::new("..")),
            PathBuf::from("/")
        );
    }

    #[test]
    fn memory_files_read_back() {
        let mut fs = MemoryFiles::new();
        fs.insert("/p/compose.yaml", "services: {}");
        assert!(fs.is_file(Path::new("/p/compose.yaml")));
        assert_eq!(
            fs.read(Path::new("/p/compose.yaml")).unwrap(),
            "services: {}"
        );
        assert_eq!(
            fs.read(Path::new("/p/x")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
