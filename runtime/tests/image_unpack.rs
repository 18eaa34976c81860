//! Layer unpacking against hand-made tars: exact metadata, overlay whiteouts (checked through a
//! real overlay mount) and refusal of every way out of the layer.
#![allow(clippy::unwrap_used)]

mod image_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use image_support::{tempdir, Entry, Tb};
use runtime::image::unpack::{read_xattr, unpack_layer};
use runtime::image::ImageError;
use tar::EntryType;

fn unpack(tar: &[u8], dest: &Path) -> Result<(), ImageError> {
    unpack_layer(tar, dest).map(drop)
}

#[test]
fn unpacks_files_modes_owners_links_devices_and_xattrs() {
    let d = tempdir("unpack-meta");
    let mut t = Tb::new();
    t.entry(Entry {
        mode: 0o750,
        uid: 7,
        gid: 8,
        mtime: 1_234_567_890,
        ..Entry::new("etc/", EntryType::Directory)
    })
    .entry(Entry {
        mode: 0o4755,
        uid: 1234,
        gid: 5678,
        mtime: 1_111_111_111,
        data: b"#!/bin/sh\n",
        ..Entry::new("etc/suid", EntryType::Regular)
    })
    .hardlink("etc/suid-link", "etc/suid")
    .symlink("etc/abs", "/etc/passwd")
    .symlink("etc/rel", "../nowhere")
    .entry(Entry {
        dev: (1, 3),
        mode: 0o666,
        ..Entry::new("dev/null", EntryType::Char)
    })
    .entry(Entry {
        dev: (7, 0),
        mode: 0o660,
        gid: 6,
        ..Entry::new("dev/loop0", EntryType::Block)
    })
    .entry(Entry {
        mode: 0o620,
        ..Entry::new("run/fifo", EntryType::Fifo)
    })
    .pax(&[
        ("SCHILY.xattr.user.comment", b"hello"),
        ("SCHILY.xattr.security.capability", &CAP_NET_RAW),
    ])
    .file("bin/ping", b"ELF")
    .pax(&[("SCHILY.xattr.trusted.note", b"on-a-link")])
    .symlink("bin/sh", "busybox");
    let stats = unpack_layer(&t.finish()[..], d.path()).unwrap();
    assert_eq!(stats.entries, 10);
    assert_eq!(stats.size, 13);

    let etc = fs::metadata(d.path().join("etc")).unwrap();
    assert_eq!((etc.mode() & 0o7777, etc.uid(), etc.gid()), (0o750, 7, 8));
    assert_eq!(
        etc.mtime(),
        1_234_567_890,
        "directory mtime is set after its content"
    );
    let suid = fs::metadata(d.path().join("etc/suid")).unwrap();
    assert_eq!(
        (suid.mode() & 0o7777, suid.uid(), suid.gid()),
        (0o4755, 1234, 5678)
    );
    assert_eq!(suid.mtime(), 1_111_111_111);
    let link = fs::metadata(d.path().join("etc/suid-link")).unwrap();
    assert_eq!(link.ino(), suid.ino(), "hard link shares the inode");
    assert_eq!(suid.nlink(), 2);
    assert_eq!(
        fs::read_link(d.path().join("etc/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(d.path().join("etc/rel")).unwrap(),
        Path::new("../nowhere")
    );
    let null = fs::metadata(d.path().join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lp = fs::metadata(d.path().join("dev/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!((lp.rdev(), lp.gid()), (nix::sys::stat::makedev(7, 0), 6));
    let fifo = fs::metadata(d.path().join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    let implicit = fs::metadata(d.path().join("run")).unwrap();
    assert_eq!(
        implicit.permissions().mode() & 0o7777,
        0o755,
        "implicit parents are 0755"
    );
    let ping = d.path().join("bin/ping");
    assert_eq!(
        read_xattr(&ping, "user.comment").unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        read_xattr(&ping, "security.capability").unwrap().as_deref(),
        Some(&CAP_NET_RAW[..])
    );
    let sh = d.path().join("bin/sh");
    assert_eq!(
        read_xattr(&sh, "trusted.note").unwrap().as_deref(),
        Some(&b"on-a-link"[..])
    );
    assert_eq!(read_xattr(&ping, "trusted.note").unwrap(), None);
}

/// `cap_net_raw+ep` as a VFS_CAP_REVISION_2 `security.capability` value.
const CAP_NET_RAW: [u8; 20] = [
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn pax_headers_override_owner_and_mtime() {
    let d = tempdir("unpack-pax");
    let mut t = Tb::new();
    t.pax(&[
        ("uid", b"3000000"),
        ("gid", b"3000001"),
        ("mtime", b"1700000000.25"),
    ])
    .file("big-ids", b"x");
    unpack(&t.finish(), d.path()).unwrap();
    let m = fs::metadata(d.path().join("big-ids")).unwrap();
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
}

#[test]
fn whiteouts_become_overlay_devices_and_opaque_xattrs() {
    let d = tempdir("unpack-wh");
    let mut t = Tb::new();
    t.dir("a/")
        .file("a/.wh.gone", b"")
        .file("a/.wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .file("top/.wh.x", b"");
    unpack(&t.finish(), d.path()).unwrap();
    let gone = fs::metadata(d.path().join("a/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!d.path().join("a/.wh.gone").exists());
    assert!(!d.path().join("a/.wh..wh..opq").exists());
    assert!(
        !d.path().join(".wh..wh.plnk").exists(),
        "aufs metadata is skipped"
    );
    assert_eq!(
        read_xattr(&d.path().join("a"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(fs::metadata(d.path().join("top/x"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn overlay_xattrs_from_the_tar_are_not_trusted() {
    let d = tempdir("unpack-ovlx");
    let mut t = Tb::new();
    t.pax(&[
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ])
    .dir("d/");
    unpack(&t.finish(), d.path()).unwrap();
    let p = d.path().join("d");
    assert_eq!(read_xattr(&p, "trusted.overlay.redirect").unwrap(), None);
    assert_eq!(read_xattr(&p, "trusted.overlay.opaque").unwrap(), None);
}

/// Unmounts on drop, even when the test fails.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn overlayfs_honours_unpacked_whiteouts_and_opaque_dirs() {
    let d = tempdir("unpack-ovl");
    let (l0, l1, merged) = (
        d.path().join("l0"),
        d.path().join("l1"),
        d.path().join("merged"),
    );
    for p in [&l0, &l1, &merged] {
        fs::create_dir(p).unwrap();
    }
    let mut base = Tb::new();
    base.file("keep", b"1")
        .file("gone", b"2")
        .file("dir/old", b"3")
        .file("opq/old", b"4");
    unpack(&base.finish(), &l0).unwrap();
    let mut top = Tb::new();
    top.file(".wh.gone", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"5");
    unpack(&top.finish(), &l1).unwrap();
    let opts = format!("lowerdir={}:{}", l1.display(), l0.display());
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .unwrap();
    let _m = Mount(merged.clone());
    let mut names: Vec<String> = fs::read_dir(&merged)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dir", "keep", "opq"]);
    assert!(merged.join("dir/old").exists());
    let opq: Vec<_> = fs::read_dir(merged.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opq, ["new"], "opaque directory hides the lower content");
}

fn assert_refused(tar: Vec<u8>, needle: &str) {
    let d = tempdir("unpack-bad");
    let layer = d.path().join("layer");
    fs::create_dir(&layer).unwrap();
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let err = unpack(&tar, &layer).unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(needle), "{msg}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the layer"
    );
    assert!(!d.path().join("evil").exists());
}

#[test]
fn refuses_dotdot_paths() {
    let mut t = Tb::new();
    t.file("../evil", b"x");
    assert_refused(t.finish(), "'..'");
    let mut t = Tb::new();
    t.dir("a/").file("a/../../outside/evil", b"x");
    assert_refused(t.finish(), "'..'");
}

#[test]
fn refuses_writing_through_symlinks() {
    let outside = |t: &mut Tb| {
        t.symlink("abs", "/var/tmp");
    };
    let mut t = Tb::new();
    outside(&mut t);
    t.file("abs/evil", b"x");
    assert_refused(t.finish(), "symlink");

    let mut t = Tb::new();
    t.symlink("up", "..").file("up/outside/evil", b"x");
    assert_refused(t.finish(), "symlink");

    let mut t = Tb::new();
    t.dir("a/").symlink("a/b", "/").dir("a/b/outside/");
    assert_refused(t.finish(), "symlink");

    // A directory replaced by a symlink cannot be written through either.
    let mut t = Tb::new();
    t.dir("d/")
        .file("d/f", b"1")
        .symlink("d", "..")
        .file("d/outside/evil", b"x");
    assert_refused(t.finish(), "symlink");
}

#[test]
fn refuses_hard_link_escapes() {
    let mut t = Tb::new();
    t.hardlink("passwd", "../../../../etc/passwd");
    assert_refused(t.finish(), "'..'");

    let mut t = Tb::new();
    t.symlink("etc", "/etc").hardlink("passwd", "etc/passwd");
    assert_refused(t.finish(), "symlink");

    let mut t = Tb::new();
    t.hardlink("x", "missing");
    assert_refused(t.finish(), "not in the layer");
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    let d = tempdir("unpack-abs");
    let mut t = Tb::new();
    t.file("/etc/berth-abs-test", b"inside")
        .hardlink("/etc/hl", "/etc/berth-abs-test");
    unpack(&t.finish(), d.path()).unwrap();
    assert_eq!(
        fs::read(d.path().join("etc/berth-abs-test")).unwrap(),
        b"inside"
    );
    assert!(d.path().join("etc/hl").exists());
    assert!(!Path::new("/etc/berth-abs-test").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let d = tempdir("unpack-replace");
    let mut t = Tb::new();
    t.file("x", b"file")
        .dir("x/")
        .file("x/inner", b"1")
        .dir("y/")
        .file("y/deep", b"2")
        .file("y", b"now a file")
        .file("z", b"old")
        .symlink("z", "target")
        .file("w", b"first")
        .file("w", b"second");
    unpack(&t.finish(), d.path()).unwrap();
    assert_eq!(fs::read(d.path().join("x/inner")).unwrap(), b"1");
    assert_eq!(fs::read(d.path().join("y")).unwrap(), b"now a file");
    assert_eq!(
        fs::read_link(d.path().join("z")).unwrap(),
        Path::new("target")
    );
    assert_eq!(fs::read(d.path().join("w")).unwrap(), b"second");
}

#[test]
fn a_tar_ending_right_after_the_last_data_is_accepted_as_go_does() {
    let d = tempdir("unpack-nopad");
    let mut t = Tb::new();
    t.file("a", b"first").file("b", b"hello\n");
    let tar = t.finish();
    // Header a, data a (padded), header b, then 6 bytes of data: no padding, no trailer.
    unpack(&tar[..512 * 3 + 6], d.path()).unwrap();
    assert_eq!(fs::read(d.path().join("b")).unwrap(), b"hello\n");
    let short = tempdir("unpack-nopad-short");
    assert!(
        unpack(&tar[..512 * 3 + 3], short.path()).is_err(),
        "cut inside the data"
    );
}

#[test]
fn truncated_tar_is_an_error() {
    let d = tempdir("unpack-trunc");
    let mut t = Tb::new();
    t.file("big", &[7u8; 5000]);
    let tar = t.finish();
    let err = unpack(&tar[..2048], d.path()).unwrap_err();
    assert!(
        matches!(err, ImageError::Unpack { .. } | ImageError::Tar { .. }),
        "{err:?}"
    );
}
