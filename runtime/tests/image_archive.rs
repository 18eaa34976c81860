//! `save` and `load` against each other and against tools no one here wrote: skopeo reads
//! and umoci unpacks what berth saves, and images made by umoci and skopeo load into berth.

#![allow(clippy::unwrap_used)]

mod image_support;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;

use image_support::{busybox_tar, ensure_tool, run, tempdir};
use runtime::image::{ArchiveFormat, ImageError, ImageStore};

fn store_with_busybox(root: &Path, name: &str) -> (ImageStore, String) {
    let store = ImageStore::open(root).unwrap();
    let id = store
        .import(fs::File::open(busybox_tar()).unwrap(), name)
        .unwrap()
        .id;
    (store, id)
}

fn save(store: &ImageStore, refs: &[&str], format: ArchiveFormat, path: &Path) {
    store
        .save(refs, format, fs::File::create(path).unwrap())
        .unwrap();
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn oci_round_trip_keeps_id_manifest_and_names() {
    let d = tempdir("arch-oci");
    let (src, id) = store_with_busybox(&d.path().join("a"), "busybox:1");
    src.tag("busybox:1", "registry.local:5000/team/bb:v2")
        .unwrap();
    let file = d.path().join("out.tar");
    save(
        &src,
        &["busybox:1", "registry.local:5000/team/bb:v2"],
        ArchiveFormat::Oci,
        &file,
    );
    let dst = ImageStore::open(&d.path().join("b")).unwrap();
    let loaded = dst.load(fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id);
    assert_eq!(
        loaded[0].references,
        ["busybox:1", "registry.local:5000/team/bb:v2"]
    );
    let (a, b) = (src.get(&id).unwrap(), dst.get("busybox:1").unwrap());
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.size, b.size);
    assert!(b.layers[0].join("bin/busybox").is_file());
    // Loading twice is idempotent and leaves no work behind.
    dst.load(fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(count(&d.path().join("b/tmp")), 0);
    assert_eq!(count(&d.path().join("b/layers")), 1);
}

#[test]
fn docker_round_trip_and_gzipped_archives() {
    let d = tempdir("arch-docker");
    let (src, id) = store_with_busybox(&d.path().join("a"), "busybox");
    let file = d.path().join("out.tar");
    save(&src, &["busybox"], ArchiveFormat::Docker, &file);
    let gz = d.path().join("out.tar.gz");
    fs::write(&gz, image_support::gzip(&fs::read(&file).unwrap())).unwrap();
    let dst = ImageStore::open(&d.path().join("b")).unwrap();
    let loaded = dst.load(fs::File::open(&gz).unwrap()).unwrap();
    assert_eq!(loaded[0].id, id, "the config, and so the id, survive");
    assert_eq!(loaded[0].references, ["busybox:latest"]);
    assert_eq!(dst.get("busybox").unwrap().layers.len(), 1);
    assert!("zip".parse::<ArchiveFormat>().is_err());
}

#[test]
fn skopeo_reads_and_umoci_unpacks_what_berth_saves() {
    if !ensure_tool("skopeo", "skopeo") || !ensure_tool("umoci", "umoci") {
        return;
    }
    let d = tempdir("arch-skopeo");
    let (src, id) = store_with_busybox(&d.path().join("s"), "busybox");
    let img = src.get(&id).unwrap();
    let oci = d.path().join("bb-oci.tar");
    save(&src, &["busybox"], ArchiveFormat::Oci, &oci);
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", oci.display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Digest"], img.manifest_digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    let docker = d.path().join("bb-docker.tar");
    save(&src, &["busybox"], ArchiveFormat::Docker, &docker);
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", docker.display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    let cfg = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("docker-archive:{}", docker.display())));
    assert!(cfg.contains("\"diff_ids\""), "{cfg}");

    let layout = d.path().join("layout");
    fs::create_dir(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&oci)
        .arg("-C")
        .arg(&layout));
    let bundle = d.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    assert_eq!(
        fs::read(bundle.join("rootfs/var/www/index.html")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn images_made_by_umoci_and_skopeo_load() {
    if !ensure_tool("skopeo", "skopeo") || !ensure_tool("umoci", "umoci") {
        return;
    }
    let d = tempdir("arch-umoci");
    let layout = d.path().join("layout");
    let image = format!("{}:made", layout.display());
    let rootfs = d.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(busybox_tar())
        .arg("-C")
        .arg(&rootfs));
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&rootfs)
        .arg("/"));
    run(Command::new("umoci").args([
        "insert",
        "--image",
        &image,
        "--whiteout",
        "/var/www/index.html",
    ]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "GREETING=hi",
        "--config.workingdir",
        "/var/www",
        "--config.label",
        "made.by=umoci",
        "--config.exposedports",
        "8080/tcp",
        "--config.stopsignal",
        "SIGQUIT",
    ]));

    // The OCI layout itself, as a tarball.
    let oci = d.path().join("umoci.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&oci)
        .arg("."));
    let store = ImageStore::open(&d.path().join("store")).unwrap();
    let loaded = store.load(fs::File::open(&oci).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].references, ["made:latest"]);
    let img = store.get("made").unwrap();
    assert_eq!(img.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert!(img.config.env.contains(&"GREETING=hi".to_string()));
    assert_eq!(img.config.working_dir.as_deref(), Some("/var/www"));
    assert_eq!(
        img.config.labels.get("made.by").map(String::as_str),
        Some("umoci")
    );
    assert!(img.config.exposed_ports.contains("8080/tcp"));
    assert_eq!(img.config.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(img.layers.len(), 2);
    assert!(img.layers[0].join("bin/busybox").is_file());
    let wh = fs::symlink_metadata(img.layers[1].join("var/www/index.html")).unwrap();
    assert!(
        wh.file_type().is_char_device(),
        "umoci's whiteout became an overlay whiteout"
    );

    // Through skopeo into a docker archive with a registry-style name.
    let docker = d.path().join("skopeo-docker.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{image}"))
        .arg(format!(
            "docker-archive:{}:example.com/made/by:skopeo",
            docker.display()
        )));
    let store2 = ImageStore::open(&d.path().join("store2")).unwrap();
    let loaded = store2.load(fs::File::open(&docker).unwrap()).unwrap();
    assert_eq!(loaded[0].references, ["example.com/made/by:skopeo"]);
    let img2 = store2.get("example.com/made/by:skopeo").unwrap();
    assert_eq!(img2.id, img.id, "same config through skopeo");
    assert_eq!(img2.layers.len(), 2);

    // And skopeo's own oci-archive.
    let oci2 = d.path().join("skopeo-oci.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{image}"))
        .arg(format!(
            "oci-archive:{}:localhost:5000/x/y:z",
            oci2.display()
        )));
    let loaded = store2.load(fs::File::open(&oci2).unwrap()).unwrap();
    assert_eq!(loaded[0].id, img.id);
    assert_eq!(loaded[0].references, ["localhost:5000/x/y:z"]);
}

/// Rewrites an archive, passing each member's path and data through `f`.
fn rewrite(src: &Path, dst: &Path, f: impl Fn(&str, &mut Vec<u8>)) {
    let mut ar = tar::Archive::new(fs::File::open(src).unwrap());
    let mut b = tar::Builder::new(fs::File::create(dst).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        f(&path, &mut data);
        let mut h = e.header().clone();
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn corrupted_archives_are_rejected_and_leave_nothing() {
    let d = tempdir("arch-corrupt");
    let (src, id) = store_with_busybox(&d.path().join("a"), "busybox");
    let layer_digest = {
        let img = src.get(&id).unwrap();
        let out = d.path().join("probe.tar");
        save(&src, &["busybox"], ArchiveFormat::Oci, &out);
        assert!(!img.manifest_digest.is_empty());
        out
    };
    let flipped = d.path().join("flipped.tar");
    rewrite(&layer_digest, &flipped, |path, data| {
        if path.starts_with("blobs/") && data.len() > 100_000 {
            data[50_000] ^= 0xff;
        }
    });
    let dst = ImageStore::open(&d.path().join("b")).unwrap();
    let err = dst.load(fs::File::open(&flipped).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::DigestMismatch { .. } | ImageError::Tar { .. } | ImageError::Unpack { .. }
        ),
        "{err}"
    );
    for sub in ["tmp", "layers", "imagedb", "blobs/sha256"] {
        assert_eq!(
            count(&d.path().join("b").join(sub)),
            0,
            "{sub} not empty after a failed load"
        );
    }

    // A docker archive whose config is a symlink to a host file: resolved inside the archive.
    let docker = d.path().join("docker.tar");
    save(&src, &["busybox"], ArchiveFormat::Docker, &docker);
    let evil = d.path().join("evil.tar");
    let mut b = tar::Builder::new(fs::File::create(&evil).unwrap());
    let mut ar = tar::Archive::new(fs::File::open(&docker).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with(".json") && path != "manifest.json" {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &path, "/etc/passwd").unwrap();
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut h = e.header().clone();
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let err = dst.load(fs::File::open(&evil).unwrap()).unwrap_err();
    assert!(matches!(err, ImageError::Io { .. }), "{err}");
    assert!(dst.list().unwrap().is_empty());
}
