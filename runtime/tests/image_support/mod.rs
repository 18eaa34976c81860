//! Helpers shared by the image store tests: hand-made layer tars (with entries no well-behaved
//! tar writer produces), busybox rootfs tarballs and unique temporary roots.
#![allow(dead_code)]

pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tar::{EntryType, Header};

/// Builds a tar in memory, entry by entry, writing names verbatim.
pub struct Tb {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Tb {
    fn default() -> Self {
        Tb::new()
    }
}

pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<&'a str>,
    pub data: &'a [u8],
    pub dev: (u32, u32),
}

impl<'a> Entry<'a> {
    pub fn new(path: &'a str, kind: EntryType) -> Self {
        Entry {
            path,
            kind,
            mode: if kind.is_dir() { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: None,
            data: b"",
            dev: (0, 0),
        }
    }
}

impl Tb {
    pub fn new() -> Tb {
        Tb {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(&mut self, e: Entry<'_>) -> &mut Self {
        let mut h = Header::new_gnu();
        let name = e.path.as_bytes();
        assert!(name.len() < 100, "test path too long");
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if let Some(l) = e.link {
            h.set_link_name_literal(l.as_bytes()).unwrap();
        }
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, e.data).unwrap();
        self
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(Entry::new(path, EntryType::Directory))
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(Entry {
            data,
            ..Entry::new(path, EntryType::Regular)
        })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(Entry {
            link: Some(target),
            mode: 0o777,
            ..Entry::new(path, EntryType::Symlink)
        })
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(Entry {
            link: Some(target),
            ..Entry::new(path, EntryType::Link)
        })
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1;
            let mut len = body_len + 1;
            while format!("{len}").len() + body_len != len {
                len = format!("{len}").len() + body_len;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut e = Entry::new("././@PaxHeader", EntryType::XHeader);
        e.data = &data;
        self.entry(e)
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// A busybox rootfs tarball, made once by the shared script and cached in the temp dir.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = std::env::temp_dir().join("berth-test-busybox-rootfs.tar");
        if out.exists() {
            return out;
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/make-busybox-rootfs.sh");
        let script = if script.exists() {
            script
        } else {
            PathBuf::from("/work/shared/bench/make-busybox-rootfs.sh")
        };
        let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
        let st = Command::new("bash")
            .arg(&script)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "make-busybox-rootfs: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// A fresh temporary directory under /var/tmp (a real disk filesystem, overlay-capable).
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-image-{tag}-"))
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// Makes sure `tool` is installed, installing Debian package `pkg` when it is missing.
/// Returns false (after a loud message) only when apt itself is unavailable.
pub fn ensure_tool(tool: &str, pkg: &str) -> bool {
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let have = || {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have() {
        return true;
    }
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if have() {
        return true;
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("\n!!!!! SKIPPING: {tool} is not installed and apt-get is unavailable to install {pkg} !!!!!\n");
        return false;
    }
    let st = Command::new("apt-get")
        .args(["install", "-y", "-q", pkg])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    if !st.status.success() {
        // The package lists may be missing on a fresh machine.
        let _ = Command::new("apt-get").args(["update", "-q"]).output();
        let st = Command::new("apt-get")
            .args(["install", "-y", "-q", pkg])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "apt-get install {pkg}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    assert!(have(), "{pkg} installed but {tool} is still missing");
    true
}

/// Runs a command, failing the test with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
