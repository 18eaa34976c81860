//! The per-container log: JSON lines (`{"stream":"stdout","time":"...","log":"text\n"}`), one
//! per line of output, written by the init, capped in size with rotation, read and followed by
//! the engine.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::spec::LogConfig;

/// Longest partial line kept before it is written without its newline.
const MAX_PARTIAL: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub stream: String,
    pub time: String,
    pub log: String,
}

/// Log file errors.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("open log {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write log {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Appends entries to a log file, rotating it at the configured size. Files are opened and
/// renamed relative to a handle on their directory, so the writer keeps working after the
/// init has pivoted away from the host's root.
pub struct Writer {
    path: PathBuf,
    dir: OwnedFd,
    name: String,
    file: File,
    size: u64,
    cfg: LogConfig,
    partial: [Vec<u8>; 2],
}

impl Writer {
    /// Opens (creates) the log file for appending.
    pub fn open(path: &Path, cfg: LogConfig) -> Result<Self, LogError> {
        let oerr = |source| LogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let dir_path = path.parent().unwrap_or(Path::new("."));
        let dir = nix::fcntl::open(
            dir_path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| oerr(io::Error::from(e)))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = open_append_at(&dir, &name).map_err(oerr)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            dir,
            name,
            file,
            size,
            cfg,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes raw output of stream 1 (stdout) or 2 (stderr); writes every complete line.
    pub fn push(&mut self, stream: usize, data: &[u8]) -> Result<(), LogError> {
        let idx = if stream == 2 { 1 } else { 0 };
        self.partial[idx].extend_from_slice(data);
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            self.write_entry(idx, &line)?;
        }
        if self.partial[idx].len() > MAX_PARTIAL {
            let line = std::mem::take(&mut self.partial[idx]);
            self.write_entry(idx, &line)?;
        }
        Ok(())
    }

    /// Writes what is left of unterminated lines.
    pub fn flush(&mut self) -> Result<(), LogError> {
        for idx in 0..2 {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.write_entry(idx, &line)?;
            }
        }
        Ok(())
    }

    fn write_entry(&mut self, idx: usize, line: &[u8]) -> Result<(), LogError> {
        let entry = Entry {
            stream: if idx == 0 { "stdout" } else { "stderr" }.to_string(),
            time: now_rfc3339(),
            log: String::from_utf8_lossy(line).into_owned(),
        };
        let mut buf = serde_json::to_vec(&entry).map_err(|e| self.werr(io::Error::other(e)))?;
        buf.push(b'\n');
        if self.size > 0 && self.size + buf.len() as u64 > self.cfg.max_size {
            self.rotate()?;
        }
        self.file.write_all(&buf).map_err(|e| self.werr(e))?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let n = self.cfg.max_files;
        if n == 0 {
            self.file.set_len(0).map_err(|e| self.werr(e))?;
        } else {
            let name = |i: u32| format!("{}.{i}", self.name);
            for i in (1..n).rev() {
                let _ = nix::fcntl::renameat(
                    &self.dir,
                    name(i).as_str(),
                    &self.dir,
                    name(i + 1).as_str(),
                );
            }
            nix::fcntl::renameat(&self.dir, self.name.as_str(), &self.dir, name(1).as_str())
                .map_err(|e| self.werr(io::Error::from(e)))?;
            self.file = open_append_at(&self.dir, &self.name).map_err(|e| self.werr(e))?;
        }
        self.size = 0;
        Ok(())
    }

    fn werr(&self, source: io::Error) -> LogError {
        LogError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

fn open_append_at(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )?;
    Ok(File::from(fd))
}

/// Writes `data` to `name` inside the directory `dir` atomically (temporary file, rename).
pub fn write_at(dir: &OwnedFd, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = format!(".{name}.tmp");
    let fd = nix::fcntl::openat(
        dir,
        tmp.as_str(),
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )?;
    let mut f = File::from(fd);
    f.write_all(data)?;
    f.sync_all()?;
    nix::fcntl::renameat(dir, tmp.as_str(), dir, name)?;
    Ok(())
}

fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The current time as RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Reads every entry (rotated files first, oldest first), keeping the last `tail` if given.
pub fn read_all(path: &Path, tail: Option<usize>) -> Result<Vec<Entry>, LogError> {
    let mut out = Vec::new();
    for i in (1..=16).rev() {
        let p = rotated(path, i);
        if p.exists() {
            read_file(&p, &mut out)?;
        }
    }
    if path.exists() {
        read_file(path, &mut out)?;
    }
    if let Some(n) = tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

fn read_file(path: &Path, out: &mut Vec<Entry>) -> Result<(), LogError> {
    let f = File::open(path).map_err(|source| LogError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|source| LogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
    }
    Ok(())
}

/// Follows a log file from a position, across rotations: each [`Follower::poll`] returns the
/// entries appended since the last one.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    pos: u64,
    buf: Vec<u8>,
}

impl Follower {
    /// Starts at the end of the file as it is now.
    pub fn at_end(path: &Path) -> Self {
        let mut f = Self::at_start(path);
        if let Some(file) = &f.file {
            f.pos = file.metadata().map(|m| m.len()).unwrap_or(0);
        }
        f
    }

    /// Starts at the beginning of the current file.
    pub fn at_start(path: &Path) -> Self {
        let file = File::open(path).ok();
        let inode = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino())
            .unwrap_or(0);
        Self {
            path: path.to_path_buf(),
            file,
            inode,
            pos: 0,
            buf: Vec::new(),
        }
    }

    /// New entries since the last call.
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        self.read_new(&mut out);
        // Rotated: finish the old file (done above), then switch to the new one.
        if let Ok(meta) = fs::metadata(&self.path) {
            if meta.ino() != self.inode {
                if let Ok(f) = File::open(&self.path) {
                    self.file = Some(f);
                    self.inode = meta.ino();
                    self.pos = 0;
                    self.buf.clear();
                    self.read_new(&mut out);
                }
            }
        }
        out
    }

    fn read_new(&mut self, out: &mut Vec<Entry>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut chunk = Vec::new();
        if io::Read::read_to_end(file, &mut chunk).is_err() {
            return;
        }
        self.pos += chunk.len() as u64;
        self.buf.extend_from_slice(&chunk);
        while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            if let Ok(e) = serde_json::from_slice(&line) {
                out.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partial_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.json");
        let mut w = Writer::open(
            &p,
            LogConfig {
                max_size: 400,
                max_files: 2,
            },
        )
        .unwrap();
        let mut follower = Follower::at_start(&p);
        w.push(1, b"hello\nwor").unwrap();
        w.push(2, b"oops\n").unwrap();
        w.push(1, b"ld\n").unwrap();
        let got = follower.poll();
        let texts: Vec<_> = got
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world\n")
            ]
        );
        for i in 0..20 {
            w.push(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.push(1, b"tail").unwrap();
        w.flush().unwrap();
        let followed = follower.poll();
        assert!(rotated(&p, 1).exists(), "log rotated");
        assert!(fs::metadata(&p).unwrap().len() <= 400);
        let all = read_all(&p, None).unwrap();
        assert_eq!(all.last().unwrap().log, "tail");
        assert_eq!(read_all(&p, Some(2)).unwrap().len(), 2);
        assert_eq!(followed.last().unwrap().log, "tail");
    }
}
