//! Copying files in and out of containers as tar streams (`berth cp`), with Docker's path
//! rules: `SRC` is a file, a directory (copied as itself) or `DIR/.` (its contents); the
//! destination is an existing directory to copy into, or a path to create or overwrite.
//!
//! Paths inside a container are resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` on a
//! descriptor of the container's root (`/proc/<init pid>/root`): symlinks and `..` can never
//! leave it, whatever the container does meanwhile. Below the start point, directories are
//! walked one component at a time with `O_NOFOLLOW`, so links are archived as links, never
//! followed. Extraction on the host resolves every entry beneath the destination directory
//! (`RESOLVE_BENEATH`), so an archive from a container cannot write outside it either.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};
use tokio::sync::mpsc;

/// Errors of a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{step} {path}: {source}")]
    Sys {
        step: &'static str,
        path: String,
        #[source]
        source: Errno,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl CopyError {
    /// Whether the path named does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CopyError::Sys {
                source: Errno::ENOENT,
                ..
            }
        )
    }
}

fn sys<'a>(step: &'static str, path: &'a str) -> impl FnOnce(Errno) -> CopyError + 'a {
    move |source| CopyError::Sys {
        step,
        path: path.to_string(),
        source,
    }
}

fn io_err<'a>(step: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        step,
        path: path.to_string(),
        source,
    }
}

/// Where paths are resolved: a container's root (absolute symlinks and `..` stay inside it) or
/// the host's `/`.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    resolve: ResolveFlag,
}

impl Root {
    /// The root of the container whose init is `pid`.
    pub fn container(pid: i32) -> Result<Root, CopyError> {
        let path = format!("/proc/{pid}/root");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open the container root", &path))?;
        Ok(Root {
            fd,
            resolve: ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        })
    }

    /// The host's root.
    pub fn host() -> Result<Root, CopyError> {
        let fd = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open", "/"))?;
        Ok(Root {
            fd,
            resolve: ResolveFlag::RESOLVE_NO_MAGICLINKS,
        })
    }

    fn open(&self, path: &str, flags: OFlag) -> Result<OwnedFd, CopyError> {
        open_under(self.fd.as_fd(), path, flags, self.resolve)
    }
}

fn rel(path: &str) -> &str {
    match path.trim_start_matches('/') {
        "" => ".",
        p => p,
    }
}

fn open_under(
    dir: BorrowedFd<'_>,
    path: &str,
    flags: OFlag,
    resolve: ResolveFlag,
) -> Result<OwnedFd, CopyError> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve);
    openat2(dir, rel(path), how).map_err(sys("open", path))
}

/// Splits `path` into its directory and last component (`.` for `/` and `DIR/.`).
fn split(path: &str) -> (String, String) {
    let p = Path::new(path);
    if path.ends_with("/.") || path.trim_end_matches('/').is_empty() {
        let dir = path.strip_suffix('.').unwrap_or(path);
        return (dir.to_string(), ".".into());
    }
    let base = p
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let dir = p
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into());
    (dir, base)
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn header(st: &FileStat, ty: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(st.st_mode & 0o7777);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_size(size);
    h
}

/// Fails when `path` does not exist under `root` (the last component is not followed).
pub fn probe(root: &Root, path: &str) -> Result<(), CopyError> {
    let (dir, base) = split(path);
    let dirfd = root.open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    fstatat(&dirfd, base.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("stat", path))?;
    Ok(())
}

/// Writes a tar archive of `path` under `root` to `out`: a file or link as itself, a directory
/// with everything below it, `DIR/.` as a `.` entry followed by the directory's contents.
pub fn archive(root: &Root, path: &str, out: impl Write) -> Result<(), CopyError> {
    let (dir, base) = split(path);
    let dirfd = root.open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let mut tar = tar::Builder::new(out);
    add(&mut tar, dirfd.as_fd(), &base, &base, path)?;
    tar.finish().map_err(io_err("write the archive of", path))
}

fn add<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &str,
    tar_path: &str,
    shown: &str,
) -> Result<(), CopyError> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys("stat", shown))?;
    let werr = io_err("write the archive entry", shown);
    match kind(&st) {
        SFlag::S_IFDIR => {
            let fd = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("open directory", shown))?;
            let mut h = header(&st, tar::EntryType::Directory, 0);
            tar.append_data(&mut h, tar_path, io::empty())
                .map_err(werr)?;
            let mut names: Vec<Vec<u8>> = Dir::openat(
                fd.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("list directory", shown))?
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n.as_slice() != b"." && n.as_slice() != b"..")
            .collect();
            names.sort();
            for n in names {
                let n = String::from_utf8_lossy(&n).into_owned();
                let child = if tar_path == "." {
                    n.clone()
                } else {
                    format!("{tar_path}/{n}")
                };
                add(tar, fd.as_fd(), &n, &child, &format!("{shown}/{n}"))?;
            }
        }
        SFlag::S_IFREG => {
            let fd = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys("open file", shown))?;
            let st = fstat(&fd).map_err(sys("stat", shown))?;
            let size = st.st_size.max(0) as u64;
            let mut h = header(&st, tar::EntryType::Regular, size);
            tar.append_data(&mut h, tar_path, File::from(fd).take(size))
                .map_err(werr)?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(dir, name).map_err(sys("read link", shown))?;
            let mut h = header(&st, tar::EntryType::Symlink, 0);
            tar.append_link(&mut h, tar_path, &target).map_err(werr)?;
        }
        // Devices, sockets and fifos are not copied (Docker's cp does the same for sockets).
        _ => {}
    }
    Ok(())
}

/// What [`extract`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
}

/// Entry paths of an archive as normal components; `None` for the `.` entry.
fn entry_components(p: &Path) -> Result<Option<Vec<String>>, CopyError> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(CopyError::Invalid(format!(
                    "archive entry {} leaves the destination",
                    p.display()
                )))
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Where entries go: the directory they land in (its descriptor, resolved beneath it) and the
/// new name of the top entry.
struct Placement {
    base: OwnedFd,
    rename: Option<(String, String)>,
}

fn is_dir(root: &Root, path: &str) -> Result<Option<bool>, CopyError> {
    match root.open(path, OFlag::O_PATH) {
        Ok(fd) => Ok(Some(
            kind(&fstat(&fd).map_err(sys("stat", path))?) == SFlag::S_IFDIR,
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn place(
    root: &Root,
    dest: &str,
    top: Option<&str>,
    top_is_dir: bool,
) -> Result<Placement, CopyError> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let (parent, base) = split(dest.trim_end_matches('/'));
    let rename = |to: String| top.map(|t| (t.to_string(), to));
    match (is_dir(root, dest)?, top) {
        (Some(true), _) => Ok(Placement {
            base: root.open(dest, dir_flags)?,
            rename: None,
        }),
        (Some(false), _) if top_is_dir => Err(CopyError::Invalid(format!(
            "cannot copy a directory onto the file {dest}"
        ))),
        (Some(false), _) => Ok(Placement {
            base: root.open(&parent, dir_flags)?,
            rename: rename(base),
        }),
        (None, _) if dest.ends_with('/') && !top_is_dir => Err(CopyError::Invalid(format!(
            "the destination directory {dest} does not exist"
        ))),
        (None, None) => {
            let p = root.open(&parent, dir_flags)?;
            mkdirat(&p, base.as_str(), Mode::from_bits_truncate(0o755))
                .map_err(sys("create directory", dest))?;
            Ok(Placement {
                base: root.open(dest, dir_flags)?,
                rename: None,
            })
        }
        (None, Some(_)) => Ok(Placement {
            base: root.open(&parent, dir_flags)?,
            rename: rename(base),
        }),
    }
}

/// Extracts a tar archive (as [`archive`] writes them) to `dest` under `root`: into `dest`
/// when it is a directory, else as `dest` itself.
pub fn extract(root: &Root, dest: &str, input: impl Read) -> Result<Extracted, CopyError> {
    let mut ar = tar::Archive::new(input);
    let mut placement: Option<Placement> = None;
    let mut done = Extracted::default();
    let entries = ar.entries().map_err(io_err("read the archive for", dest))?;
    for entry in entries {
        let mut entry = entry.map_err(io_err("read the archive for", dest))?;
        let raw = entry
            .path()
            .map_err(io_err("read an entry name for", dest))?
            .into_owned();
        let comps = entry_components(&raw)?;
        let ty = entry.header().entry_type();
        let p = match &mut placement {
            Some(p) => p,
            None => placement.insert(place(
                root,
                dest,
                comps.as_ref().and_then(|c| c.first()).map(String::as_str),
                ty.is_dir(),
            )?),
        };
        let Some(mut comps) = comps else {
            continue;
        };
        if let Some((from, to)) = &p.rename {
            if comps[0] == *from {
                comps[0].clone_from(to);
            }
        }
        let name = comps.pop().unwrap_or_default();
        let parent = if comps.is_empty() {
            ".".to_string()
        } else {
            comps.join("/")
        };
        let shown = format!("{}/{}", dest.trim_end_matches('/'), raw.display());
        let pfd = open_under(
            p.base.as_fd(),
            &parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )?;
        let mode = Mode::from_bits_truncate(entry.header().mode().unwrap_or(0o644) & 0o7777);
        done.entries += 1;
        done.bytes += write_entry(&mut entry, pfd.as_fd(), &name, mode, &shown)?;
    }
    if placement.is_none() {
        return Err(CopyError::Invalid(format!(
            "nothing to copy to {dest}: the archive is empty"
        )));
    }
    Ok(done)
}

fn write_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dir: BorrowedFd<'_>,
    name: &str,
    mode: Mode,
    shown: &str,
) -> Result<u64, CopyError> {
    let ty = entry.header().entry_type();
    let unlink = |dir: BorrowedFd<'_>| match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(sys("replace", shown)(e)),
    };
    if ty.is_dir() {
        match mkdirat(dir, name, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys("create directory", shown)(e)),
        }
        return Ok(0);
    }
    if ty.is_symlink() {
        let target = entry
            .link_name()
            .map_err(io_err("read the link target of", shown))?
            .map(|t| t.into_owned())
            .unwrap_or_default();
        unlink(dir)?;
        symlinkat(target.as_os_str(), dir, name).map_err(sys("create link", shown))?;
        return Ok(0);
    }
    if !ty.is_file() {
        return Ok(0);
    }
    unlink(dir)?;
    let fd = openat(
        dir,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(sys("create file", shown))?;
    fchmod(&fd, mode).map_err(sys("set the mode of", shown))?;
    let mut f = File::from(fd);
    io::copy(entry, &mut f).map_err(io_err("write", shown))
}

/// A blocking reader over chunks arriving on a channel (a request or answer body).
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A blocking writer sending chunks to a channel (an answer body).
#[derive(Debug)]
pub struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self { tx }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A host path made absolute against the working directory.
pub fn absolute(p: &Path) -> io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// A path as text for the resolver (bytes kept as they are on Linux).
pub fn path_text(p: &Path) -> String {
    String::from_utf8_lossy(OsStr::as_bytes(p.as_os_str())).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("src/sub")).unwrap();
        std::fs::write(d.join("src/a.txt"), "alpha").unwrap();
        std::fs::write(d.join("src/sub/b.txt"), "beta").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("src/link")).unwrap();
        t
    }

    fn copy(from: &str, to: &str) -> Extracted {
        let root = Root::host().unwrap();
        let mut buf = Vec::new();
        archive(&root, from, &mut buf).unwrap();
        extract(&root, to, buf.as_slice()).unwrap()
    }

    #[test]
    fn docker_path_rules() {
        let t = host_tree();
        let d = t.path().display().to_string();
        // A directory onto a missing path: the copy is that path.
        copy(&format!("{d}/src"), &format!("{d}/copy"));
        assert_eq!(
            std::fs::read_to_string(t.path().join("copy/sub/b.txt")).unwrap(),
            "beta"
        );
        assert_eq!(
            std::fs::read_link(t.path().join("copy/link")).unwrap(),
            Path::new("/etc/passwd"),
            "links are copied as links"
        );
        // Onto an existing directory: inside it.
        copy(&format!("{d}/src"), &format!("{d}/copy"));
        assert!(t.path().join("copy/src/a.txt").exists());
        // Contents only.
        copy(&format!("{d}/src/."), &format!("{d}/flat"));
        assert!(t.path().join("flat/a.txt").exists());
        // A file onto a new name, then over an existing file.
        copy(&format!("{d}/src/a.txt"), &format!("{d}/one.txt"));
        copy(&format!("{d}/src/sub/b.txt"), &format!("{d}/one.txt"));
        assert_eq!(
            std::fs::read_to_string(t.path().join("one.txt")).unwrap(),
            "beta"
        );
        let root = Root::host().unwrap();
        let mut buf = Vec::new();
        archive(&root, &format!("{d}/src"), &mut buf).unwrap();
        let e = extract(&root, &format!("{d}/one.txt"), buf.as_slice()).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot copy a directory onto the file"),
            "{e}"
        );
        let e = archive(&root, &format!("{d}/nope"), &mut Vec::new()).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn archive_entries_cannot_leave_the_destination() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        // A link to the outside, then a file through it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "x", t.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "x/escaped", &b"bad"[..]).unwrap();
        let buf = b.into_inner().unwrap();
        let root = Root::host().unwrap();
        let e = extract(&root, &dest.display().to_string(), buf.as_slice()).unwrap_err();
        assert!(e.to_string().contains("open x"), "{e}");
        assert!(!t.path().join("escaped").exists());
        assert_eq!(
            entry_components(Path::new("../up"))
                .unwrap_err()
                .to_string(),
            "archive entry ../up leaves the destination"
        );
    }
}
