//! Unpacking one layer tar into an empty directory, exactly and safely.
//!
//! Every entry is created relative to a descriptor of its parent directory, and that parent is
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a symlink is never followed while
//! writing, so neither `../` nor a symlink planted by an earlier entry can make the unpacker
//! touch anything outside the layer. Paths with `..` and entries that would need a symlink to be
//! traversed are refused with an error naming the entry.
//!
//! Whiteouts become what overlayfs understands: `.wh.NAME` turns into a 0:0 character device
//! `NAME`, and `.wh..wh..opq` marks its directory opaque (`trusted.overlay.opaque=y`). Ownership,
//! modes (setuid included), mtimes, xattrs, hard links, symlinks, device nodes and fifos are
//! reproduced. Directory mtimes are set last, after their content is written.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tracing::debug;

use super::{sys, ImageError};

/// Prefix of a whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the entry that marks its directory opaque.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Prefix of aufs metadata entries, which are skipped.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The xattr overlayfs reads to tell an opaque directory.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What an unpacked layer holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries processed.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub size: u64,
}

/// Metadata of one tar entry, PAX overrides applied.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The entry being unpacked, for error messages.
struct Ctx<'a> {
    entry: &'a str,
}

impl Ctx<'_> {
    fn io(&self, step: &'static str) -> impl FnOnce(io::Error) -> ImageError + '_ {
        move |source| ImageError::Unpack {
            entry: self.entry.to_string(),
            step,
            source,
        }
    }

    fn sys(&self, step: &'static str) -> impl FnOnce(Errno) -> ImageError + '_ {
        move |e| ImageError::Unpack {
            entry: self.entry.to_string(),
            step,
            source: io::Error::from(e),
        }
    }

    fn refuse(&self, reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            entry: self.entry.to_string(),
            reason: reason.into(),
        }
    }
}

/// Reads extended attribute `key` of `path` (not following a final symlink); `None` when unset.
pub fn read_xattr(path: &Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    sys::get_xattr(path, key)
}

/// Unpacks the (uncompressed) layer tar `tar` into `dest`, an existing empty directory.
pub fn unpack_layer<R: Read>(tar: R, dest: &Path) -> Result<UnpackStats, ImageError> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::Io {
        step: "open layer directory",
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    fchmod(root.as_fd(), Mode::from_bits_truncate(0o755)).map_err(|e| ImageError::Io {
        step: "chmod layer directory",
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let read = Rc::new(Cell::new(0u64));
    let mut archive = tar::Archive::new(Counting {
        inner: tar,
        read: read.clone(),
    });
    let mut stats = UnpackStats::default();
    let mut dir_times: Vec<(Vec<OsString>, TimeSpec)> = Vec::new();
    let mut data_end = 0;
    let entries = archive
        .entries()
        .map_err(|source| ImageError::Tar { source })?;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            // Go's archive/tar (and so docker, skopeo, umoci) accepts a stream that ends right
            // after the last entry's data, without padding or end-of-archive blocks.
            Err(_) if data_end > 0 && read.get() == data_end => {
                debug!(bytes = data_end, "layer tar ends without padding; accepted");
                break;
            }
            Err(source) => return Err(ImageError::Tar { source }),
        };
        data_end = entry.raw_file_position() + entry.size();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let ctx = Ctx { entry: &name };
        let comps = clean_path(&entry.path_bytes()).map_err(|r| ctx.refuse(r))?;
        let meta = read_meta(&mut entry).map_err(ctx.io("read extended header"))?;
        stats.entries += 1;
        if let Some(mtime) =
            unpack_entry(&ctx, root.as_fd(), &comps, &meta, &mut entry, &mut stats)?
        {
            dir_times.push((comps, mtime));
        }
    }
    for (comps, mtime) in dir_times.iter().rev() {
        set_dir_mtime(root.as_fd(), comps, *mtime);
    }
    Ok(stats)
}

/// Counts the bytes the tar parser has read, to tell a stream that ends cleanly after an
/// entry's data from one truncated inside it.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Splits a tar path into components: leading `/` and `.` are dropped, `..` is refused.
fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, String> {
    let mut comps = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains '..'".to_string()),
            c => comps.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(comps)
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    // Like Go's archive/tar, an empty or garbled numeric field reads as 0.
    let mut meta = Meta {
        uid: h
            .uid()
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        gid: h
            .gid()
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        mode: h.mode().unwrap_or(0) & 0o7777,
        mtime: TimeSpec::new(
            h.mtime()
                .ok()
                .and_then(|v| i64::try_from(v).ok())
                .unwrap_or(0),
            0,
        ),
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext
                .key()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let value = ext.value_bytes();
            let text = std::str::from_utf8(value).unwrap_or("");
            match key {
                "uid" => meta.uid = text.parse().unwrap_or(meta.uid),
                "gid" => meta.gid = text.parse().unwrap_or(meta.gid),
                "mtime" => meta.mtime = parse_pax_time(text).unwrap_or(meta.mtime),
                k => {
                    if let Some(x) = k.strip_prefix(PAX_XATTR_PREFIX) {
                        meta.xattrs.push((x.to_string(), value.to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// PAX times are decimal seconds with an optional fraction: `1700000000.5`.
fn parse_pax_time(s: &str) -> Option<TimeSpec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(TimeSpec::new(secs, nanos))
}

/// Unpacks one entry; returns the mtime to set later when the entry is a directory.
fn unpack_entry<R: Read>(
    ctx: &Ctx<'_>,
    root: BorrowedFd<'_>,
    comps: &[OsString],
    meta: &Meta,
    entry: &mut tar::Entry<'_, R>,
    stats: &mut UnpackStats,
) -> Result<Option<TimeSpec>, ImageError> {
    use tar::EntryType as T;
    let kind = entry.header().entry_type();
    let Some((name, parents)) = comps.split_last() else {
        // The layer root itself ("./").
        if kind.is_dir() {
            set_owner_mode(ctx, root, None, meta, true)?;
            return Ok(Some(meta.mtime));
        }
        return Err(ctx.refuse("a non-directory entry for the layer root"));
    };
    let parent = open_dir(ctx, root, parents, true)?;
    let parent = parent.as_fd();
    if unpack_whiteout(ctx, parent, name, meta)? {
        return Ok(None);
    }
    match kind {
        T::Directory => {
            if stat_is_dir(parent, name) != Some(true) {
                remove_existing(ctx, parent, name)?;
                mkdirat(parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(ctx.sys("create directory"))?;
            }
            let dir = open_dir(ctx, parent, std::slice::from_ref(name), false)?;
            set_owner_mode(ctx, dir.as_fd(), None, meta, true)?;
            return Ok(Some(meta.mtime));
        }
        T::Regular | T::Continuous | T::GNUSparse => {
            remove_existing(ctx, parent, name)?;
            let fd = openat(
                parent,
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(ctx.sys("create file"))?;
            let mut file = File::from(fd);
            stats.size += io::copy(entry, &mut file).map_err(ctx.io("write file"))?;
            set_owner_mode(ctx, file.as_fd(), None, meta, true)?;
            futimens(file.as_fd(), &meta.mtime, &meta.mtime).map_err(ctx.sys("set mtime"))?;
        }
        T::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| ctx.refuse("symlink without target"))?;
            remove_existing(ctx, parent, name)?;
            symlinkat(OsStr::from_bytes(&target), parent, name.as_os_str())
                .map_err(ctx.sys("create symlink"))?;
            set_owner_mode(ctx, parent, Some(name), meta, false)?;
            set_time_at(ctx, parent, name, meta.mtime)?;
        }
        T::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| ctx.refuse("hard link without target"))?;
            create_hard_link(ctx, root, parent, comps, &target)?;
        }
        T::Char | T::Block | T::Fifo => create_node(ctx, parent, name, entry.header(), meta)?,
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
        other => {
            debug!(entry = ctx.entry, kind = ?other, "skipping unsupported tar entry type");
        }
    }
    Ok(None)
}

/// Turns `.wh.NAME` into a 0:0 character device and `.wh..wh..opq` into the opaque xattr on
/// `parent`; returns whether `name` was a whiteout (or aufs metadata, which is skipped).
fn unpack_whiteout(
    ctx: &Ctx<'_>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
) -> Result<bool, ImageError> {
    let name_str = name.to_string_lossy();
    if name_str == OPAQUE_WHITEOUT {
        sys::set_xattr_fd(parent, OPAQUE_XATTR, b"y").map_err(ctx.io("mark directory opaque"))?;
        return Ok(true);
    }
    if name_str.starts_with(WHITEOUT_META_PREFIX) {
        debug!(entry = ctx.entry, "skipping aufs metadata entry");
        return Ok(true);
    }
    let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
        return Ok(false);
    };
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(ctx.refuse("whiteout of an invalid name"));
    }
    let hidden = OsStr::from_bytes(hidden);
    remove_existing(ctx, parent, hidden)?;
    mknodat(parent, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .map_err(ctx.sys("create whiteout device"))?;
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    fchownat(parent, hidden, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(ctx.sys("chown whiteout"))?;
    Ok(true)
}

/// Links the last component of `comps` in `parent` to `target`, an earlier entry of the layer.
fn create_hard_link(
    ctx: &Ctx<'_>,
    root: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    comps: &[OsString],
    target: &[u8],
) -> Result<(), ImageError> {
    let tcomps = clean_path(target).map_err(|r| ctx.refuse(format!("hard link target: {r}")))?;
    let (Some((tname, tparents)), Some(name)) = (tcomps.split_last(), comps.last()) else {
        return Err(ctx.refuse("hard link to the layer root"));
    };
    let tparent = open_dir(ctx, root, tparents, false)?;
    match stat_is_dir(tparent.as_fd(), tname) {
        None => return Err(ctx.refuse("hard link target is not in the layer")),
        Some(true) => return Err(ctx.refuse("hard link to a directory")),
        Some(false) => {}
    }
    if tcomps.as_slice() == comps {
        return Ok(());
    }
    remove_existing(ctx, parent, name)?;
    linkat(
        tparent.as_fd(),
        tname.as_os_str(),
        parent,
        name.as_os_str(),
        AtFlags::empty(),
    )
    .map_err(ctx.sys("create hard link"))
}

/// Creates a character or block device or a fifo.
fn create_node(
    ctx: &Ctx<'_>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    h: &tar::Header,
    meta: &Meta,
) -> Result<(), ImageError> {
    let kind = h.entry_type();
    let sflag = match kind {
        tar::EntryType::Char => SFlag::S_IFCHR,
        tar::EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let (major, minor) = if sflag == SFlag::S_IFIFO {
        (0, 0)
    } else {
        let major = h.device_major().map_err(ctx.io("read device major"))?;
        let minor = h.device_minor().map_err(ctx.io("read device minor"))?;
        (major.unwrap_or(0), minor.unwrap_or(0))
    };
    remove_existing(ctx, parent, name)?;
    let perm = Mode::from_bits_truncate(0o600);
    mknodat(
        parent,
        name,
        sflag,
        perm,
        makedev(major.into(), minor.into()),
    )
    .map_err(ctx.sys("create device node"))?;
    set_owner_mode(ctx, parent, Some(name), meta, true)?;
    set_time_at(ctx, parent, name, meta.mtime)
}

/// Opens the directory `comps` below `base` without following any symlink; with `create`,
/// missing components are created (mode 0755, root-owned, as Docker does).
fn open_dir(
    ctx: &Ctx<'_>,
    base: BorrowedFd<'_>,
    comps: &[OsString],
    create: bool,
) -> Result<OwnedFd, ImageError> {
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            )
    };
    let joined = join(comps);
    let path: &OsStr = if comps.is_empty() {
        OsStr::new(".")
    } else {
        &joined
    };
    match openat2(base, path, how()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create => {}
        Err(e) => return Err(map_open_err(ctx, path, e)),
    }
    let mut cur: Option<OwnedFd> = None;
    for comp in comps {
        let dir = cur.as_ref().map_or(base, |f| f.as_fd());
        let next = match openat2(dir, comp.as_os_str(), how()) {
            Err(Errno::ENOENT) => {
                mkdirat(dir, comp.as_os_str(), Mode::from_bits_truncate(0o755))
                    .map_err(ctx.sys("create parent directory"))?;
                fchmodat(
                    dir,
                    comp.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                    FchmodatFlags::NoFollowSymlink,
                )
                .map_err(ctx.sys("chmod parent directory"))?;
                openat2(dir, comp.as_os_str(), how())
            }
            other => other,
        };
        cur = Some(next.map_err(|e| map_open_err(ctx, comp, e))?);
    }
    cur.ok_or_else(|| ctx.refuse("empty parent path"))
}

fn map_open_err(ctx: &Ctx<'_>, path: &OsStr, e: Errno) -> ImageError {
    let p = path.to_string_lossy();
    match e {
        Errno::ELOOP => ctx.refuse(format!(
            "{p} is or passes through a symlink; refusing to follow it"
        )),
        Errno::EXDEV => ctx.refuse(format!("{p} escapes the layer")),
        Errno::ENOTDIR => ctx.refuse(format!("{p} is not a directory")),
        e => ImageError::Unpack {
            entry: ctx.entry.to_string(),
            step: "open parent directory",
            source: e.into(),
        },
    }
}

fn join(comps: &[OsString]) -> OsString {
    let mut out = OsString::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push("/");
        }
        out.push(c);
    }
    out
}

/// Whether `name` in `dir` is a directory, without following it; `None` when absent.
fn stat_is_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Option<bool> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Removes whatever `name` in `dir` is (a directory with its content); absent is fine.
fn remove_existing(ctx: &Ctx<'_>, dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), ImageError> {
    match stat_is_dir(dir, name) {
        None => Ok(()),
        Some(true) => {
            let sub = open_dir(ctx, dir, &[name.to_os_string()], false)?;
            clear_dir(ctx, sub.as_fd())?;
            nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir)
                .map_err(ctx.sys("remove replaced directory"))
        }
        Some(false) => nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(ctx.sys("remove replaced entry")),
    }
}

/// Removes everything inside the directory `dir`, never following symlinks.
fn clear_dir(ctx: &Ctx<'_>, dir: BorrowedFd<'_>) -> Result<(), ImageError> {
    let fd = dir.try_clone_to_owned().map_err(ctx.io("dup directory"))?;
    let mut listing = nix::dir::Dir::from_fd(fd).map_err(ctx.sys("list replaced directory"))?;
    let names: Vec<OsString> = listing
        .iter()
        .filter_map(Result::ok)
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    for n in names {
        remove_existing(ctx, dir, &n)?;
    }
    Ok(())
}

/// Applies owner, mode (unless `chmod` is false, for symlinks) and xattrs, to `fd` itself when
/// `name` is `None`, else to `name` in the directory `fd` without following it.
fn set_owner_mode(
    ctx: &Ctx<'_>,
    fd: BorrowedFd<'_>,
    name: Option<&OsStr>,
    meta: &Meta,
    chmod: bool,
) -> Result<(), ImageError> {
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    let mode = Mode::from_bits_truncate(meta.mode);
    match name {
        None => {
            fchown(fd, uid, gid).map_err(ctx.sys("chown"))?;
            fchmod(fd, mode).map_err(ctx.sys("chmod"))?;
        }
        Some(n) => {
            fchownat(fd, n, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(ctx.sys("chown"))?;
            if chmod {
                fchmodat(fd, n, mode, FchmodatFlags::NoFollowSymlink).map_err(ctx.sys("chmod"))?;
            }
        }
    }
    for (key, value) in &meta.xattrs {
        // An overlay xattr from a tar could redirect lookups out of the layer: never trust one.
        if key.starts_with("trusted.overlay.") || key.starts_with("user.overlay.") {
            debug!(entry = ctx.entry, xattr = %key, "skipping overlay xattr from layer tar");
            continue;
        }
        let r = match name {
            None => sys::set_xattr_fd(fd, key, value),
            Some(n) => sys::set_xattr_at(fd, n, key, value),
        };
        r.map_err(ctx.io("set xattr"))?;
    }
    Ok(())
}

fn set_time_at(
    ctx: &Ctx<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    t: TimeSpec,
) -> Result<(), ImageError> {
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(ctx.sys("set mtime"))
}

/// Best effort: a directory that a later entry replaced is skipped.
fn set_dir_mtime(root: BorrowedFd<'_>, comps: &[OsString], t: TimeSpec) {
    let ctx = Ctx { entry: "" };
    if let Ok(dir) = open_dir(&ctx, root, comps, false) {
        let _ = futimens(dir.as_fd(), &t, &t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_rules() {
        let c = |s: &str| clean_path(s.as_bytes()).map(|v| join(&v).into_string().unwrap());
        assert_eq!(c("./a/b/").unwrap(), "a/b");
        assert_eq!(c("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(c("./").unwrap(), "");
        assert!(c("a/../../b").is_err());
        assert!(c("..").is_err());
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(parse_pax_time("7"), Some(TimeSpec::new(7, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
