//! Builds the container's root filesystem inside its own mount namespace: an overlayfs of the
//! image layers plus the container's upper dir, /proc, /sys, a tmpfs /dev with the usual nodes,
//! /dev/pts, /dev/shm, /dev/mqueue, the user's mounts, then `pivot_root` and Docker's masked and
//! read-only paths.
//!
//! Everything is mounted in the container's private mount namespace, so it all disappears with
//! the namespace: nothing can leak onto the host. Mount targets are resolved inside the new root
//! with [`secure_join`], so a symlink in an image never sends a mount onto a host path.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::spec::{ContainerSpec, Mount, MountKind};

/// Docker's masked paths: made unreadable inside the container.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device nodes every container gets: (name, major, minor).
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A step of root filesystem setup that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mount {what} on {target}: {source}")]
    Mount {
        what: String,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pivot_root into {root}: {source}")]
    Pivot {
        root: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(
        "the writable layer in {upper} was mounted when the host went down and is not synced \
         (berth mounts it volatile): remove the container and create it again"
    )]
    StaleVolatile { upper: PathBuf },
    #[error("write sysctl {key}: {source}")]
    Sysctl {
        key: String,
        #[source]
        source: io::Error,
    },
}

fn do_mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    mount(src, target, fstype, flags, data).map_err(|source| RootfsError::Mount {
        what: fstype
            .map(str::to_string)
            .or_else(|| src.map(|s| s.display().to_string()))
            .unwrap_or_default(),
        target: target.to_path_buf(),
        source,
    })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Joins `path` onto `root` resolving every symlink as if `root` were `/`: the result never
/// leaves `root`, whatever the image's symlinks say.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match fs::read_link(&full) {
            Ok(target) if links < 40 => {
                links += 1;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    resolved = PathBuf::new();
                }
                let mut more = components(&t);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// Builds the root under `dir/rootfs` and pivots into it. Runs in the init, in the new mount
/// namespace, before the main process starts.
pub fn prepare(spec: &ContainerSpec, dir: &Path) -> Result<(), RootfsError> {
    let slash = Path::new("/");
    do_mount(
        None,
        slash,
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let root = dir.join("rootfs");
    mount_overlay(spec, dir, &root)?;
    mount_system(spec, &root)?;
    for m in &spec.mounts {
        mount_user(&root, m)?;
    }
    for name in ["resolv.conf", "hosts", "hostname"] {
        let src = dir.join(name);
        if src.exists() {
            let target = secure_join(&root, &format!("/etc/{name}"));
            ensure_file(&target)?;
            do_mount(Some(&src), &target, None, MsFlags::MS_BIND, None)?;
        }
    }
    pivot(&root)?;
    for (k, v) in &spec.sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        fs::write(&path, v).map_err(|source| RootfsError::Sysctl {
            key: k.clone(),
            source,
        })?;
    }
    mask_paths()?;
    if spec.read_only {
        do_mount(
            None,
            slash,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn mount_overlay(spec: &ContainerSpec, dir: &Path, root: &Path) -> Result<(), RootfsError> {
    let lower: Vec<String> = spec
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    reuse_volatile(dir)?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={},volatile",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    do_mount(
        Some(Path::new("overlay")),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )
}

/// The writable layer is mounted `volatile`: overlayfs skips every sync of it, so stopping a
/// container does not sync the host filesystem (one sync per container made stopping 50
/// replicas take seconds), and fsync inside the container is a no-op on its own layer (as
/// with podman's volatile mounts; data that must survive a host crash belongs in a volume).
/// Overlayfs leaves `work/work/incompat/volatile` behind and refuses the next mount while it
/// exists. Within the same boot the layer is intact and the marker is removed; after a reboot
/// the layer may be torn, and the start fails saying so.
fn reuse_volatile(dir: &Path) -> Result<(), RootfsError> {
    let marker = dir.join("work/work/incompat/volatile");
    let boot_file = dir.join("boot_id");
    let now = fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(io_err(&boot_file))?;
    if marker.exists() {
        if fs::read_to_string(&boot_file).ok().as_deref() != Some(now.as_str()) {
            return Err(RootfsError::StaleVolatile {
                upper: dir.join("upper"),
            });
        }
        fs::remove_dir_all(dir.join("work/work/incompat")).map_err(io_err(&marker))?;
    }
    fs::write(&boot_file, now).map_err(io_err(&boot_file))
}

fn mkdir_in(root: &Path, path: &str) -> Result<PathBuf, RootfsError> {
    let p = secure_join(root, path);
    fs::create_dir_all(&p).map_err(io_err(&p))?;
    Ok(p)
}

fn mount_system(spec: &ContainerSpec, root: &Path) -> Result<(), RootfsError> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc_dir = mkdir_in(root, "/proc")?;
    do_mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        nosuid_noexec_nodev,
        None,
    )?;
    let dev = mkdir_in(root, "/dev")?;
    do_mount(
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*major, *minor),
        )
        .map_err(|e| io_err(&p)(io::Error::from(e)))?;
        // mknod honours the umask; set the mode explicitly.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &p,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| io_err(&p)(io::Error::from(e)))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(name);
        symlink(target, &p).map_err(io_err(&p))?;
    }
    let pts = dev.join("pts");
    fs::create_dir(&pts).map_err(io_err(&pts))?;
    do_mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    fs::create_dir(&shm).map_err(io_err(&shm))?;
    do_mount(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        nosuid_noexec_nodev,
        Some("mode=1777,size=65536k"),
    )?;
    let mq = dev.join("mqueue");
    fs::create_dir(&mq).map_err(io_err(&mq))?;
    do_mount(
        Some(Path::new("mqueue")),
        &mq,
        Some("mqueue"),
        nosuid_noexec_nodev,
        None,
    )?;
    let sys = mkdir_in(root, "/sys")?;
    let sys_flags = nosuid_noexec_nodev | MsFlags::MS_RDONLY;
    if spec.network == crate::spec::NetworkMode::Host {
        // sysfs of the host's network namespace: bind it read-only.
        do_mount(
            Some(Path::new("/sys")),
            &sys,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        do_mount(
            None,
            &sys,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | sys_flags,
            None,
        )?;
    } else {
        do_mount(
            Some(Path::new("sysfs")),
            &sys,
            Some("sysfs"),
            sys_flags,
            None,
        )?;
    }
    Ok(())
}

fn ensure_file(p: &Path) -> Result<(), RootfsError> {
    if p.exists() {
        return Ok(());
    }
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(p)
        .map_err(io_err(p))?;
    Ok(())
}

fn mount_user(root: &Path, m: &Mount) -> Result<(), RootfsError> {
    let target = secure_join(root, &m.destination);
    match &m.kind {
        MountKind::Bind { source } => {
            let meta = fs::metadata(source).map_err(io_err(source))?;
            if meta.is_dir() {
                fs::create_dir_all(&target).map_err(io_err(&target))?;
            } else {
                ensure_file(&target)?;
            }
            do_mount(
                Some(source),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            if m.read_only {
                do_mount(
                    None,
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None,
                )?;
            }
        }
        MountKind::Tmpfs { size, mode } => {
            fs::create_dir_all(&target).map_err(io_err(&target))?;
            let mut data = format!("mode={:o}", mode.unwrap_or(0o1777));
            if let Some(s) = size {
                data.push_str(&format!(",size={s}"));
            }
            let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            if m.read_only {
                flags |= MsFlags::MS_RDONLY;
            }
            do_mount(
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                flags,
                Some(&data),
            )?;
        }
    }
    Ok(())
}

fn pivot(root: &Path) -> Result<(), RootfsError> {
    let perr = |source| RootfsError::Pivot {
        root: root.to_path_buf(),
        source,
    };
    nix::unistd::chdir(root).map_err(perr)?;
    // pivot_root(".", "."): the old root ends up on top of the new one and is detached at once.
    nix::unistd::pivot_root(".", ".").map_err(perr)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(perr)?;
    nix::unistd::chdir("/").map_err(perr)?;
    Ok(())
}

fn mask_paths() -> Result<(), RootfsError> {
    for p in MASKED {
        let path = Path::new(p);
        let Ok(meta) = fs::symlink_metadata(path) else {
            continue;
        };
        if meta.is_dir() {
            do_mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )?;
        } else {
            do_mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for p in READ_ONLY {
        let path = Path::new(p);
        if !path.exists() {
            continue;
        }
        do_mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        do_mount(
            None,
            path,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("a/abs")).unwrap();
        symlink("../../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(secure_join(root, "/a/abs/passwd"), root.join("etc/passwd"));
        assert_eq!(secure_join(root, "/a/up/etc"), root.join("etc"));
        assert_eq!(secure_join(root, "/a/rel/x"), root.join("a/b/x"));
        assert_eq!(secure_join(root, "../../x"), root.join("x"));
        symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, "/loop").starts_with(root));
    }
}
