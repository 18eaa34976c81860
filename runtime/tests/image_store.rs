//! The image store end to end on a real busybox rootfs: import, lookup by every kind of name,
//! tag, remove (untag, conflicts, force), prune, sharing of layers, concurrency and cleanup.
#![allow(clippy::unwrap_used)]

mod image_support;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use image_support::{busybox_tar, gzip, tempdir, zstd, Tb};
use runtime::image::{ImageError, ImageStore};

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn busybox_bytes() -> Vec<u8> {
    fs::read(busybox_tar()).unwrap()
}

#[test]
fn import_and_get_by_every_name() {
    let d = tempdir("store-get");
    let store = ImageStore::open(&d.path().join("images")).unwrap();
    let img = store
        .import(fs::File::open(busybox_tar()).unwrap(), "busybox")
        .unwrap();
    assert!(
        img.id.starts_with("sha256:") && img.id.len() == 71,
        "{}",
        img.id
    );
    assert_eq!(img.references, ["busybox:latest"]);
    assert_eq!(img.layers.len(), 1);
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(img.layers[0].join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::read(img.layers[0].join("var/www/index.html")).unwrap(),
        b"hello\n"
    );
    assert!(img.size > 100_000, "size {}", img.size);
    assert!(img.created.starts_with("20"), "{}", img.created);
    assert_eq!(
        (img.os.as_str(), img.architecture.as_str()),
        ("linux", "amd64")
    );
    assert_eq!(img.config, Default::default());
    let hex = &img.id["sha256:".len()..];
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "index.docker.io/library/busybox:latest",
        img.id.as_str(),
        &hex[..12],
        &format!("sha256:{}", &hex[..8]),
    ] {
        assert_eq!(store.get(name).unwrap().id, img.id, "lookup by {name}");
    }
    let e = store.get(&hex[..3]).unwrap_err();
    assert!(
        matches!(e, ImageError::NotFound(_)),
        "3-digit prefixes are too short: {e}"
    );
    assert_eq!(store.list().unwrap(), vec![img]);
}

#[test]
fn errors_name_the_image() {
    let d = tempdir("store-err");
    let store = ImageStore::open(d.path()).unwrap();
    let e = store.get("busybox").unwrap_err();
    assert!(matches!(e, ImageError::NotFound(_)));
    assert_eq!(e.to_string(), "image busybox:latest not found");
    assert_eq!(
        store.get("host:5000/a/b:v1").unwrap_err().to_string(),
        "image host:5000/a/b:v1 not found"
    );
    let id = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        store.get(&id).unwrap_err().to_string(),
        format!("image {id} not found")
    );
    let e = store.get("Busybox").unwrap_err();
    assert!(e.to_string().contains("must be lowercase"), "{e}");
    let e = store.import(
        &b""[..],
        "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    assert!(matches!(e, Err(ImageError::Invalid { .. })));
}

#[test]
fn compressed_imports_share_one_unpacked_layer() {
    let d = tempdir("store-share");
    let store = ImageStore::open(d.path()).unwrap();
    let plain = busybox_bytes();
    let a = store.import(&plain[..], "plain").unwrap();
    let b = store.import(&gzip(&plain)[..], "gz").unwrap();
    let c = store.import(&zstd(&plain)[..], "zst").unwrap();
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.layers, c.layers);
    assert_eq!(count(&d.path().join("layers")), 1);
    // Three configs, three manifests, three layer blobs.
    assert_eq!(count(&d.path().join("blobs/sha256")), 9);
    let e = store
        .import(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..], "xz")
        .unwrap_err();
    assert_eq!(e.to_string(), "unsupported layer compression: xz");
}

#[test]
fn tag_list_and_remove_like_docker() {
    let d = tempdir("store-rm");
    let store = ImageStore::open(d.path()).unwrap();
    let img = store.import(&busybox_bytes()[..], "busybox:1").unwrap();
    store.tag("busybox:1", "host:5000/a/b:v1").unwrap();
    store.tag(&img.id, "mine").unwrap();
    assert!(matches!(
        store.tag(
            "busybox:1",
            "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        ),
        Err(ImageError::Invalid { .. })
    ));
    assert!(matches!(
        store.tag("nosuch", "x"),
        Err(ImageError::NotFound(_))
    ));
    let got = store.get("host:5000/a/b:v1").unwrap();
    assert_eq!(
        got.references,
        ["busybox:1", "host:5000/a/b:v1", "mine:latest"]
    );

    let never = |_: &str| false;
    let always = |_: &str| true;
    // By id with several tags: refused unless forced.
    let e = store.remove(&img.id, false, &never).unwrap_err();
    assert!(matches!(e, ImageError::Conflict { .. }), "{e}");
    // By tag while others remain: only untagged, even when in use.
    assert_eq!(
        store.remove("mine", false, &always).unwrap(),
        ["Untagged: mine:latest"]
    );
    assert_eq!(
        store.remove("host:5000/a/b:v1", false, &always).unwrap(),
        ["Untagged: host:5000/a/b:v1"]
    );
    // The last tag of an image in use: refused, then forced (image stays, dangling).
    let e = store.remove("busybox:1", false, &always).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unable to remove image busybox:1 (must force): image "),
        "{e}"
    );
    assert_eq!(
        store.remove("busybox:1", true, &always).unwrap(),
        ["Untagged: busybox:1"]
    );
    let dangling = store.get(&img.id).unwrap();
    assert!(dangling.references.is_empty());
    assert!(
        dangling.layers[0].join("bin/busybox").exists(),
        "layers stay while in use"
    );
    assert!(store.prune(&always).unwrap().is_empty());
    assert_eq!(store.prune(&never).unwrap(), vec![img.id.clone()]);
    assert!(matches!(store.get(&img.id), Err(ImageError::NotFound(_))));
    assert_eq!(count(&d.path().join("layers")), 0);
    assert_eq!(count(&d.path().join("blobs/sha256")), 0);
    assert_eq!(count(&d.path().join("imagedb")), 0);
    assert_eq!(count(&d.path().join("tmp")), 0);
}

#[test]
fn removing_the_last_tag_deletes_the_image_but_not_shared_layers() {
    let d = tempdir("store-rm2");
    let store = ImageStore::open(d.path()).unwrap();
    let a = store.import(&busybox_bytes()[..], "img-a").unwrap();
    let b = store.import(&busybox_bytes()[..], "img-b").unwrap();
    let out = store.remove("img-a", false, &|_| false).unwrap();
    assert_eq!(
        out,
        [
            "Untagged: img-a:latest".to_string(),
            format!("Deleted: {}", a.id)
        ]
    );
    assert!(
        b.layers[0].join("bin/busybox").exists(),
        "layer shared with b survives"
    );
    assert!(matches!(
        store.remove("img-a", false, &|_| false),
        Err(ImageError::NotFound(_))
    ));
    store.tag("img-b", "img-c").unwrap();
    let out = store.remove(&b.id, true, &|_| false).unwrap();
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(count(&d.path().join("layers")), 0);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn failed_import_leaves_nothing_behind() {
    let d = tempdir("store-fail");
    let store = ImageStore::open(d.path()).unwrap();
    let mut t = Tb::new();
    t.file("ok", b"1").symlink("l", "/").file("l/evil", b"x");
    let e = store.import(&t.finish()[..], "bad").unwrap_err();
    assert!(matches!(e, ImageError::UnsafeEntry { .. }), "{e}");
    let mut t = Tb::new();
    t.file("big", &[1u8; 4096]);
    let tar = t.finish();
    assert!(store.import(&gzip(&tar)[..100], "truncated").is_err());
    for sub in ["tmp", "layers", "blobs/sha256", "imagedb"] {
        assert_eq!(count(&d.path().join(sub)), 0, "{sub} not empty");
    }
    assert!(matches!(store.get("bad"), Err(ImageError::NotFound(_))));
}

#[test]
fn reopening_keeps_images_and_clears_crash_leftovers() {
    let d = tempdir("store-reopen");
    let id = {
        let store = ImageStore::open(d.path()).unwrap();
        store.import(&busybox_bytes()[..], "keep").unwrap().id
    };
    fs::create_dir_all(d.path().join("tmp/0123/root/half")).unwrap();
    fs::write(d.path().join("tmp/abcd.blob"), b"partial").unwrap();
    let store = ImageStore::open(d.path()).unwrap();
    assert_eq!(count(&d.path().join("tmp")), 0);
    assert_eq!(store.get("keep").unwrap().id, id);
}

#[test]
fn concurrent_imports_and_lookups() {
    let d = tempdir("store-conc");
    let store = Arc::new(ImageStore::open(d.path()).unwrap());
    let data = Arc::new(busybox_bytes());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (store, data) = (store.clone(), data.clone());
            std::thread::spawn(move || {
                let img = store.import(&data[..], &format!("conc:{i}")).unwrap();
                for _ in 0..20 {
                    assert_eq!(store.get(&format!("conc:{i}")).unwrap().id, img.id);
                    store.list().unwrap();
                }
                if i % 2 == 0 {
                    store.prune(&|_| false).unwrap();
                }
                img.id
            })
        })
        .collect();
    let ids: HashSet<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(store.list().unwrap().len(), ids.len());
    for i in 0..4 {
        let img = store.get(&format!("conc:{i}")).unwrap();
        assert!(img.layers[0].join("bin/busybox").exists());
    }
    assert_eq!(count(&d.path().join("layers")), 1);
    assert_eq!(count(&d.path().join("tmp")), 0);
}
