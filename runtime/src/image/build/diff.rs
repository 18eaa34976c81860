//! A directory of changes (a RUN container's overlay upper dir, or a COPY's staging dir) as a
//! layer tar: overlayfs whiteouts (0:0 character devices) become `.wh.NAME` entries and opaque
//! directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry. Entries come in sorted
//! order, hard links are kept as links, and `security.capability` travels as a PAX xattr.
//!
//! Mount points the container's init made in an image that lacked them (empty `proc`, `sys`,
//! `dev`) and the placeholder files it bind-mounted over (`etc/hosts`, `etc/resolv.conf`,
//! `etc/hostname`) are left out, as Docker does.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::super::unpack::{read_xattr, OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX};

const CAPABILITY_XATTR: &str = "security.capability";

/// Writes the tar of the changes under `dir` to `out`; `upper` says whether `dir` is an
/// overlay upper dir (so mount points and placeholders are skipped).
pub fn write_tar<W: Write>(dir: &Path, upper: bool, out: W) -> io::Result<W> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        upper,
    };
    w.tar.follow_symlinks(false);
    w.dir(dir, "")?;
    w.tar.into_inner()
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    /// (dev, ino) of files with several links -> the first path written.
    links: HashMap<(u64, u64), String>,
    upper: bool,
}

impl<W: Write> Writer<W> {
    fn dir(&mut self, path: &Path, rel: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let name_s = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name_s.to_string()
            } else {
                format!("{rel}/{name_s}")
            };
            let child = path.join(&name);
            let meta = fs::symlink_metadata(&child)?;
            if self.upper && skipped(&child, &child_rel, &meta) {
                continue;
            }
            self.entry(&child, &child_rel, &meta)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str, meta: &fs::Metadata) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let (parent, name) = split(rel);
            let wh = join(parent, &format!("{WHITEOUT_PREFIX}{name}"));
            return self.empty_file(&wh, meta);
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        if ft.is_dir() {
            header.set_size(0);
            self.tar
                .append_data(&mut header, format!("{rel}/"), io::empty())?;
            if read_xattr(path, OPAQUE_XATTR)?.as_deref() == Some(b"y") {
                self.empty_file(&format!("{rel}/{OPAQUE_WHITEOUT}"), meta)?;
            }
            return self.dir(path, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(path)?;
            header.set_size(0);
            return self.tar.append_link(&mut header, rel, target);
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    let first = first.clone();
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    return self.tar.append_link(&mut header, rel, first);
                }
                self.links.insert(key, rel.to_string());
            }
            if let Some(cap) = read_xattr(path, CAPABILITY_XATTR)? {
                let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
                self.tar
                    .append_pax_extensions([(key.as_str(), cap.as_slice())])?;
            }
            let f = File::open(path)?;
            return self.tar.append_data(&mut header, rel, f);
        }
        // Devices and fifos: the header carries everything.
        header.set_size(0);
        self.tar.append_data(&mut header, rel, io::empty())
    }

    fn empty_file(&mut self, rel: &str, meta: &fs::Metadata) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o600);
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        self.tar.append_data(&mut h, rel, io::empty())
    }
}

/// What the init created in the upper dir only to mount over.
fn skipped(path: &Path, rel: &str, meta: &fs::Metadata) -> bool {
    match rel {
        "proc" | "sys" | "dev" => {
            meta.is_dir()
                && fs::read_dir(path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
        }
        "etc/hosts" | "etc/resolv.conf" | "etc/hostname" => placeholder(meta),
        // Copied up only to hold the placeholders.
        "etc" => {
            meta.is_dir()
                && !matches!(read_xattr(path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
                && fs::read_dir(path).is_ok_and(|entries| {
                    entries.flatten().all(|e| {
                        let name = e.file_name();
                        matches!(name.to_str(), Some("hosts" | "resolv.conf" | "hostname"))
                            && e.metadata().is_ok_and(|m| placeholder(&m))
                    })
                })
        }
        _ => false,
    }
}

fn placeholder(meta: &fs::Metadata) -> bool {
    meta.is_file() && meta.len() == 0
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn writes_files_links_and_skips_placeholders() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("proc")).unwrap();
        fs::create_dir_all(r.join("placeholders/etc")).unwrap();
        fs::write(r.join("placeholders/etc/resolv.conf"), "").unwrap();
        assert!(names(&write_tar(&r.join("placeholders"), true, Vec::new()).unwrap()).is_empty());
        fs::remove_dir_all(r.join("placeholders")).unwrap();
        fs::write(r.join("etc/hosts"), "").unwrap();
        fs::write(r.join("etc/app.conf"), "x=1").unwrap();
        fs::hard_link(r.join("etc/app.conf"), r.join("etc/link.conf")).unwrap();
        symlink("app.conf", r.join("etc/sym")).unwrap();
        let tar = write_tar(r, true, Vec::new()).unwrap();
        let n = names(&tar);
        assert_eq!(
            n,
            vec![
                ("etc/".to_string(), tar::EntryType::Directory),
                ("etc/app.conf".to_string(), tar::EntryType::Regular),
                ("etc/link.conf".to_string(), tar::EntryType::Link),
                ("etc/sym".to_string(), tar::EntryType::Symlink),
            ]
        );
        // A staging dir keeps everything.
        let tar = write_tar(r, false, Vec::new()).unwrap();
        assert_eq!(names(&tar).len(), 6);
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_wh_entries() {
        if !nix::unistd::geteuid().is_root() {
            return; // mknod and trusted.* xattrs need root
        }
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        nix::sys::stat::mknod(
            &r.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(r.join("opq")).unwrap();
        fs::write(r.join("opq/new"), "n").unwrap();
        let dir = File::open(r.join("opq")).unwrap();
        super::super::super::sys::set_xattr_fd(std::os::fd::AsFd::as_fd(&dir), OPAQUE_XATTR, b"y")
            .unwrap();
        let tar = write_tar(r, true, Vec::new()).unwrap();
        let n: Vec<String> = names(&tar).into_iter().map(|(p, _)| p).collect();
        assert_eq!(n, vec![".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/new"]);
    }
}
