//! COPY and ADD: where files come from (the build context, minus `.dockerignore`, or another
//! stage's or image's layers), the plan of what lands where, its content digest (the cache
//! key's part that changes when a copied file does) and the staging directory that becomes
//! the layer.
//!
//! Context files are read with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from a handle on
//! the context directory, so nothing outside it is ever read; symlinks in the context are
//! copied as symlinks. The staging directory is fresh, and every directory on the way to an
//! entry is checked to be a real directory before anything is written into it, so a symlink
//! copied earlier cannot redirect a later write out of the layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

use super::ignore::{clean, glob_segment, Ignore, Pattern};
use super::view::LayerView;

/// Errors of COPY and ADD.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no source files were specified")]
    NoSources,
    #[error("{0:?}: not found")]
    NotFound(String),
    #[error("forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("when copying more than one source, the destination must be a directory ending in /")]
    DestNotDir,
    #[error("{0}")]
    Owner(String),
    #[error("invalid --chmod {0:?}: an octal mode is expected")]
    Chmod(String),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

fn ioe(step: &'static str, path: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.into();
    move |source| CopyError::Io { step, path, source }
}

/// Where COPY reads from.
pub trait Source {
    /// Metadata of `rel` (not following a final symlink), `None` when absent.
    fn stat(&self, rel: &str) -> io::Result<Option<fs::Metadata>>;
    /// Names in directory `rel`, sorted.
    fn list(&self, rel: &str) -> io::Result<Vec<String>>;
    /// Opens the regular file `rel`.
    fn open(&self, rel: &str) -> io::Result<File>;
    /// The target of symlink `rel`.
    fn read_link(&self, rel: &str) -> io::Result<PathBuf>;
}

/// The build context directory with `.dockerignore` applied.
#[derive(Debug)]
pub struct ContextDir {
    root: PathBuf,
    fd: OwnedFd,
    /// Every included path (directories too) with its metadata.
    entries: BTreeMap<String, fs::Metadata>,
    children: BTreeMap<String, Vec<String>>,
}

impl ContextDir {
    /// Walks `root`, leaving out what `.dockerignore` (if there is one) excludes.
    pub fn open(root: &Path) -> Result<ContextDir, CopyError> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ioe("open build context", root.display().to_string())(e.into()))?;
        let ignore = match fs::read_to_string(root.join(".dockerignore")) {
            Ok(t) => Ignore::parse(&t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
            Err(e) => return Err(ioe("read", ".dockerignore")(e)),
        };
        let mut ctx = ContextDir {
            root: root.to_path_buf(),
            fd,
            entries: BTreeMap::new(),
            children: BTreeMap::new(),
        };
        ctx.walk("", &ignore)?;
        Ok(ctx)
    }

    /// Adds the included entries under `rel`; returns whether any was included.
    fn walk(&mut self, rel: &str, ignore: &Ignore) -> Result<bool, CopyError> {
        let dir = self.root.join(rel);
        let mut names: Vec<String> = Vec::new();
        for e in fs::read_dir(&dir).map_err(ioe("list", dir.display().to_string()))? {
            let e = e.map_err(ioe("list", dir.display().to_string()))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut kept = Vec::new();
        for name in names {
            let child = join(rel, &name);
            let path = self.root.join(&child);
            let meta = fs::symlink_metadata(&path).map_err(ioe("stat", child.clone()))?;
            let excluded = ignore.excluded(&child);
            if excluded && !ignore.has_exceptions() {
                // Nothing below an excluded directory can come back: don't walk it.
                continue;
            }
            let include = if meta.is_dir() {
                self.walk(&child, ignore)? || !excluded
            } else {
                !excluded
            };
            if include {
                self.entries.insert(child, meta);
                kept.push(name);
            }
        }
        let any = !kept.is_empty();
        self.children.insert(rel.to_string(), kept);
        Ok(any)
    }
}

impl Source for ContextDir {
    fn stat(&self, rel: &str) -> io::Result<Option<fs::Metadata>> {
        if rel.is_empty() {
            return fs::symlink_metadata(&self.root).map(Some);
        }
        Ok(self.entries.get(rel).cloned())
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        Ok(self.children.get(rel).cloned().unwrap_or_default())
    }

    fn open(&self, rel: &str) -> io::Result<File> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let fd = openat2(&self.fd, rel, how)?;
        Ok(File::from(fd))
    }

    fn read_link(&self, rel: &str) -> io::Result<PathBuf> {
        fs::read_link(self.root.join(rel))
    }
}

impl Source for LayerView {
    fn stat(&self, rel: &str) -> io::Result<Option<fs::Metadata>> {
        match self.lookup(rel)? {
            Some(p) => fs::symlink_metadata(p).map(Some),
            None => Ok(None),
        }
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        LayerView::list(self, rel)
    }

    fn open(&self, rel: &str) -> io::Result<File> {
        let p = self.lookup(rel)?.ok_or(io::ErrorKind::NotFound)?;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
    }

    fn read_link(&self, rel: &str) -> io::Result<PathBuf> {
        let p = self.lookup(rel)?.ok_or(io::ErrorKind::NotFound)?;
        fs::read_link(p)
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// One entry to write into the layer.
#[derive(Debug, Clone)]
pub struct Item {
    /// Path in the source.
    pub src: String,
    /// Path in the image (relative to `/`).
    pub dest: String,
    pub meta: fs::Metadata,
    /// ADD of a local archive: extracted into `dest`.
    pub extract: bool,
}

/// What one COPY or ADD writes.
#[derive(Debug, Clone, Default)]
pub struct CopyPlan {
    pub items: Vec<Item>,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
}

/// Options of a COPY or ADD.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions<'a> {
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    /// ADD: extract local archives.
    pub extract: bool,
    /// The source is the build context (so `..` is refused rather than clamped).
    pub context: bool,
}

/// Plans copying `sources` to `dest` (absolute, in the image) from `src`; `image` is the
/// current stage's filesystem (to tell existing directories and resolve `--chown` names).
pub fn plan(
    src: &dyn Source,
    sources: &[String],
    dest: &str,
    image: &LayerView,
    opts: &CopyOptions<'_>,
) -> Result<CopyPlan, CopyError> {
    let mut matched = Vec::new();
    for s in sources {
        if opts.context && escapes(s) {
            return Err(CopyError::Outside(s.clone()));
        }
        let rel = clean(s);
        if Pattern::has_wildcards(&rel) {
            matched.extend(expand(src, &rel)?);
        } else if src.stat(&rel).map_err(ioe("stat", rel.clone()))?.is_some() {
            matched.push(rel);
        } else {
            return Err(CopyError::NotFound(s.clone()));
        }
    }
    if matched.is_empty() {
        return Err(CopyError::NoSources);
    }
    let dest_dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
    let dest_rel = clean(dest);
    let dest_is_dir = dest_dir_syntax
        || dest_rel.is_empty()
        || image
            .lookup(&dest_rel)
            .ok()
            .flatten()
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.is_dir());
    if matched.len() > 1 && !dest_dir_syntax && !dest_rel.is_empty() {
        return Err(CopyError::DestNotDir);
    }
    let mut items = Vec::new();
    for m in matched {
        let meta = src
            .stat(&m)
            .map_err(ioe("stat", m.clone()))?
            .ok_or_else(|| CopyError::NotFound(m.clone()))?;
        if meta.is_dir() {
            add_tree(src, &m, &dest_rel, &mut items)?;
            continue;
        }
        let base = m.rsplit('/').next().unwrap_or(&m).to_string();
        let extract = opts.extract && meta.is_file() && is_archive(src, &m)?;
        let target = if extract {
            dest_rel.clone()
        } else if dest_is_dir {
            join(&dest_rel, &base)
        } else {
            dest_rel.clone()
        };
        items.push(Item {
            src: m,
            dest: target,
            meta,
            extract,
        });
    }
    let owner = match opts.chown {
        Some(spec) => Some(image.owner(spec).map_err(CopyError::Owner)?),
        None => None,
    };
    let chmod = match opts.chmod {
        Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| CopyError::Chmod(m.to_string()))?),
        None => None,
    };
    Ok(CopyPlan {
        items,
        owner,
        chmod,
    })
}

/// Whether a context source path climbs above the context.
fn escapes(s: &str) -> bool {
    let mut depth = 0i32;
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Paths of `src` matching the wildcard pattern `rel`, sorted.
fn expand(src: &dyn Source, rel: &str) -> Result<Vec<String>, CopyError> {
    let mut current = vec![String::new()];
    for seg in rel.split('/') {
        let mut next = Vec::new();
        for dir in &current {
            if Pattern::has_wildcards(seg) {
                for name in src.list(dir).map_err(ioe("list", dir.clone()))? {
                    if glob_segment(seg, &name) {
                        next.push(join(dir, &name));
                    }
                }
            } else {
                let p = join(dir, seg);
                if src.stat(&p).map_err(ioe("stat", p.clone()))?.is_some() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current.sort();
    Ok(current)
}

/// The content of directory `dir` (not the directory itself) copied into `dest`.
fn add_tree(
    src: &dyn Source,
    dir: &str,
    dest: &str,
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    for name in src.list(dir).map_err(ioe("list", dir.to_string()))? {
        let s = join(dir, &name);
        let d = join(dest, &name);
        let Some(meta) = src.stat(&s).map_err(ioe("stat", s.clone()))? else {
            continue;
        };
        let is_dir = meta.is_dir();
        items.push(Item {
            src: s.clone(),
            dest: d.clone(),
            meta,
            extract: false,
        });
        if is_dir {
            add_tree(src, &s, &d, items)?;
        }
    }
    Ok(())
}

/// Whether a regular file is a tar archive (plain, gzip or zstd), which ADD extracts.
fn is_archive(src: &dyn Source, rel: &str) -> Result<bool, CopyError> {
    let f = src.open(rel).map_err(ioe("open", rel.to_string()))?;
    let (kind, r) =
        super::super::digest::detect_compression(f).map_err(ioe("read", rel.to_string()))?;
    let mut head = vec![0u8; 512];
    let n = match kind {
        super::super::digest::Compression::None => read_full(r, &mut head),
        super::super::digest::Compression::Gzip => {
            read_full(flate2::read::MultiGzDecoder::new(r), &mut head)
        }
        super::super::digest::Compression::Zstd => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => read_full(d, &mut head),
            Err(_) => 0,
        },
        _ => 0,
    };
    Ok(n >= 262 && &head[257..262] == b"ustar")
}

fn read_full(mut r: impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// The digest of everything the plan writes: paths, types, modes, owners and contents.
pub fn digest(plan: &CopyPlan, src: &dyn Source) -> Result<String, CopyError> {
    let mut h = Sha256::new();
    h.update(format!("{:?} {:?}\n", plan.owner, plan.chmod));
    for it in &plan.items {
        let m = &it.meta;
        h.update(format!(
            "{}\0{}\0{:o}\0{}:{}\0{}\0{}\n",
            it.src,
            it.dest,
            m.mode(),
            m.uid(),
            m.gid(),
            m.len(),
            it.extract
        ));
        if m.is_file() {
            let mut f = src.open(&it.src).map_err(ioe("open", it.src.clone()))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(ioe("read", it.src.clone()))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if m.file_type().is_symlink() {
            let t = src
                .read_link(&it.src)
                .map_err(ioe("readlink", it.src.clone()))?;
            h.update(t.as_os_str().as_encoded_bytes());
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Writes the plan into the empty directory `stage`. Parent directories that exist in the
/// image keep the image's ownership and mode; new ones are root's (or `--chown`'s), 0755.
pub fn stage(
    plan: &CopyPlan,
    src: &dyn Source,
    stage: &Path,
    image: &LayerView,
) -> Result<(), CopyError> {
    let mut made = BTreeSet::new();
    for it in &plan.items {
        let (parent, _) = it.dest.rsplit_once('/').unwrap_or(("", &it.dest));
        ensure_dir(stage, parent, image, plan.owner, &mut made)?;
        let target = stage.join(&it.dest);
        let ft = it.meta.file_type();
        let (uid, gid) = plan.owner.unwrap_or((it.meta.uid(), it.meta.gid()));
        if it.extract {
            ensure_dir(stage, &it.dest, image, plan.owner, &mut made)?;
            extract(src, &it.src, &target)?;
            continue;
        }
        if ft.is_dir() {
            ensure_dir(stage, &it.dest, image, plan.owner, &mut made)?;
            let mode = plan.chmod.unwrap_or(it.meta.mode() & 0o7777);
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(ioe("chmod", it.dest.clone()))?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .map_err(ioe("chown", it.dest.clone()))?;
            continue;
        }
        remove_existing(&target, &it.dest)?;
        if ft.is_symlink() {
            let t = src
                .read_link(&it.src)
                .map_err(ioe("readlink", it.src.clone()))?;
            std::os::unix::fs::symlink(&t, &target).map_err(ioe("symlink", it.dest.clone()))?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .map_err(ioe("chown", it.dest.clone()))?;
        } else if ft.is_file() {
            let mut input = src.open(&it.src).map_err(ioe("open", it.src.clone()))?;
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(ioe("create", it.dest.clone()))?;
            io::copy(&mut input, &mut out).map_err(ioe("copy", it.dest.clone()))?;
            let mode = plan.chmod.unwrap_or(it.meta.mode() & 0o7777);
            out.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(ioe("chmod", it.dest.clone()))?;
            std::os::unix::fs::fchown(&out, Some(uid), Some(gid))
                .map_err(ioe("chown", it.dest.clone()))?;
            if let Ok(mtime) = it.meta.modified() {
                let _ = out.set_times(fs::FileTimes::new().set_modified(mtime));
            }
            out.flush().map_err(ioe("write", it.dest.clone()))?;
        }
        // Sockets, devices and fifos of a context are not copied (Docker neither).
    }
    Ok(())
}

fn remove_existing(target: &Path, rel: &str) -> Result<(), CopyError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Err(CopyError::Io {
            step: "replace",
            path: rel.to_string(),
            source: io::Error::from_raw_os_error(libc::EISDIR),
        }),
        Ok(_) => fs::remove_file(target).map_err(ioe("replace", rel.to_string())),
        Err(_) => Ok(()),
    }
}

/// Creates `rel` and its parents in `stage` as real directories, refusing to go through
/// anything else.
fn ensure_dir(
    stage: &Path,
    rel: &str,
    image: &LayerView,
    owner: Option<(u32, u32)>,
    made: &mut BTreeSet<String>,
) -> Result<(), CopyError> {
    let mut cur = String::new();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        cur = join(&cur, seg);
        if made.contains(&cur) {
            continue;
        }
        let p = stage.join(&cur);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(CopyError::Io {
                    step: "create directory",
                    path: cur,
                    source: io::Error::from_raw_os_error(libc::ENOTDIR),
                })
            }
            Err(_) => {
                fs::create_dir(&p).map_err(ioe("create directory", cur.clone()))?;
                let existing = image
                    .lookup(&cur)
                    .ok()
                    .flatten()
                    .and_then(|h| fs::metadata(h).ok())
                    .filter(|m| m.is_dir());
                let (mode, uid, gid) = match existing {
                    Some(m) => (m.mode() & 0o7777, m.uid(), m.gid()),
                    None => {
                        let (u, g) = owner.unwrap_or((0, 0));
                        (0o755, u, g)
                    }
                };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                    .map_err(ioe("chmod", cur.clone()))?;
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
                    .map_err(ioe("chown", cur.clone()))?;
            }
        }
        made.insert(cur.clone());
    }
    Ok(())
}

/// ADD of a local archive: its entries unpacked (safely) into `dest`.
fn extract(src: &dyn Source, rel: &str, dest: &Path) -> Result<(), CopyError> {
    let f = src.open(rel).map_err(ioe("open", rel.to_string()))?;
    let (kind, r) =
        super::super::digest::detect_compression(f).map_err(ioe("read", rel.to_string()))?;
    let res = match kind {
        super::super::digest::Compression::Gzip => {
            super::super::unpack::unpack_layer(flate2::read::MultiGzDecoder::new(r), dest)
        }
        super::super::digest::Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(r).map_err(ioe("read", rel.to_string()))?;
            super::super::unpack::unpack_layer(d, dest)
        }
        _ => super::super::unpack::unpack_layer(r, dest),
    };
    res.map(drop).map_err(|e| CopyError::Io {
        step: "extract",
        path: rel.to_string(),
        source: io::Error::other(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::create_dir_all(r.join("node_modules/x")).unwrap();
        fs::write(r.join("src/a.rs"), "a").unwrap();
        fs::write(r.join("src/b.rs"), "b").unwrap();
        fs::write(r.join("src/sub/c.txt"), "c").unwrap();
        fs::write(r.join("node_modules/x/i.js"), "i").unwrap();
        fs::write(r.join("app.log"), "log").unwrap();
        fs::write(r.join(".dockerignore"), "node_modules\n*.log\n").unwrap();
        d
    }

    fn dests(p: &CopyPlan) -> Vec<&str> {
        p.items.iter().map(|i| i.dest.as_str()).collect()
    }

    #[test]
    fn plans_globs_dirs_and_ignores() {
        let d = ctx_dir();
        let ctx = ContextDir::open(d.path()).unwrap();
        let image = LayerView::default();
        let opts = CopyOptions {
            context: true,
            ..Default::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = plan(&ctx, &s(&["src/*.rs"]), "/app/", &image, &opts).unwrap();
        assert_eq!(dests(&p), vec!["app/a.rs", "app/b.rs"]);
        let p = plan(&ctx, &s(&["src"]), "/app", &image, &opts).unwrap();
        assert_eq!(
            dests(&p),
            vec!["app/a.rs", "app/b.rs", "app/sub", "app/sub/c.txt"]
        );
        let p = plan(&ctx, &s(&["src/a.rs"]), "/bin/tool", &image, &opts).unwrap();
        assert_eq!(dests(&p), vec!["bin/tool"]);
        let p = plan(&ctx, &s(&["."]), "/", &image, &opts).unwrap();
        assert!(!dests(&p)
            .iter()
            .any(|d| d.contains("node_modules") || d.ends_with(".log")));
        assert!(matches!(
            plan(&ctx, &s(&["*.none"]), "/x/", &image, &opts),
            Err(CopyError::NoSources)
        ));
        assert!(matches!(
            plan(&ctx, &s(&["app.log"]), "/x/", &image, &opts),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            plan(&ctx, &s(&["../etc/passwd"]), "/x/", &image, &opts),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            plan(&ctx, &s(&["src/a.rs", "src/b.rs"]), "/x", &image, &opts),
            Err(CopyError::DestNotDir)
        ));
        // The digest follows content.
        let p = plan(&ctx, &s(&["src"]), "/app", &image, &opts).unwrap();
        let d1 = digest(&p, &ctx).unwrap();
        fs::write(d.path().join("src/sub/c.txt"), "changed").unwrap();
        let ctx = ContextDir::open(d.path()).unwrap();
        let p = plan(&ctx, &s(&["src"]), "/app", &image, &opts).unwrap();
        assert_ne!(d1, digest(&p, &ctx).unwrap());
    }

    #[test]
    fn stages_without_following_symlinks() {
        let d = ctx_dir();
        std::os::unix::fs::symlink("/etc", d.path().join("src/link")).unwrap();
        let ctx = ContextDir::open(d.path()).unwrap();
        let image = LayerView::default();
        let opts = CopyOptions {
            context: true,
            chmod: Some("600"),
            ..Default::default()
        };
        let p = plan(&ctx, &["src".to_string()], "/app/", &image, &opts).unwrap();
        let out = tempfile::tempdir().unwrap();
        stage(&p, &ctx, out.path(), &image).unwrap();
        assert_eq!(
            fs::read_to_string(out.path().join("app/sub/c.txt")).unwrap(),
            "c"
        );
        let m = fs::metadata(out.path().join("app/a.rs")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(
            fs::read_link(out.path().join("app/link")).unwrap(),
            PathBuf::from("/etc")
        );
    }
}
