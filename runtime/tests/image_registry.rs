//! Pull and push against a real registry (Debian's `docker-registry`) started by each test on
//! a free loopback port: round trips, chunked uploads, blob mounts, manifest lists, images
//! pushed by skopeo, basic auth with htpasswd, the bearer token flow and corrupted blobs.

#![allow(clippy::unwrap_used)]

mod image_support;

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use image_support::servers::{FlakyProxy, TokenServer, TOKEN_PASS, TOKEN_USER};
use image_support::{busybox_tar, ensure_tool, run, tempdir};
use runtime::image::{ImageError, ImageStore, Progress, RegistryOptions, TransferState};

/// A registry process on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry; `auth` is the YAML of its `auth:` section, if any.
    fn start(auth: Option<&dyn Fn(&Path) -> String>) -> Option<Registry> {
        if !ensure_tool("docker-registry", "docker-registry") {
            return None;
        }
        let dir = tempdir("registry");
        let port = free_port();
        let auth = auth.map(|f| f(dir.path())).unwrap_or_default();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let reg = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The file holding blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn no_progress(_: &Progress) {}

fn busybox_store(root: &Path, name: &str) -> (ImageStore, String) {
    let store = ImageStore::open(root).unwrap();
    let id = store
        .import(fs::File::open(busybox_tar()).unwrap(), name)
        .unwrap()
        .id;
    (store, id)
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn push_then_pull_into_a_fresh_root() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let d = tempdir("reg-roundtrip");
    let name = format!("{}/berth/busybox:v1", reg.host());
    let (src, id) = busybox_store(&d.path().join("src"), &name);
    let events = Mutex::new(Vec::new());
    let record = |p: &Progress| events.lock().unwrap().push(p.clone());
    // Chunked upload: the 2 MB layer goes in 256 KiB PATCHes.
    let opts = RegistryOptions {
        chunk_size: 256 << 10,
        ..RegistryOptions::default()
    };
    let digest = src.push(&name, &opts, &record).unwrap();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(src.get(&id).unwrap().manifest_digest, digest);
    let evs = events.lock().unwrap().clone();
    assert!(
        evs.iter()
            .any(|p| p.state == TransferState::Transferring && p.done > 0 && p.done < p.total),
        "{evs:?}"
    );
    assert!(evs.iter().any(|p| p.state == TransferState::Done));

    // Pushing again finds every blob there.
    events.lock().unwrap().clear();
    src.push(&name, &RegistryOptions::default(), &record)
        .unwrap();
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.state == TransferState::Exists));

    let dst = ImageStore::open(&d.path().join("dst")).unwrap();
    events.lock().unwrap().clear();
    let img = dst
        .pull(&name, &RegistryOptions::default(), &record)
        .unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.manifest_digest, digest);
    assert_eq!(
        img.references,
        [
            name.clone(),
            format!("{}/berth/busybox@{digest}", reg.host())
        ]
    );
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(
        fs::read(img.layers[0].join("var/www/index.html")).unwrap(),
        b"hello\n"
    );
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.state == TransferState::Done));

    // A second pull downloads nothing; a pull by digest finds the same image.
    events.lock().unwrap().clear();
    dst.pull(&name, &RegistryOptions::default(), &record)
        .unwrap();
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.state == TransferState::Exists));
    let by_digest = format!("{}/berth/busybox@{digest}", reg.host());
    assert_eq!(
        dst.pull(&by_digest, &RegistryOptions::default(), &no_progress)
            .unwrap()
            .id,
        id
    );
    assert_eq!(count(&d.path().join("dst/tmp")), 0);

    // Tagged into another repository of the same registry: blobs are mounted, not uploaded.
    let other = format!("{}/berth/copy:v1", reg.host());
    dst.tag(&name, &other).unwrap();
    events.lock().unwrap().clear();
    dst.push(&other, &RegistryOptions::default(), &record)
        .unwrap();
    let evs = events.lock().unwrap().clone();
    assert!(
        evs.iter().any(|p| p.state == TransferState::Mounted),
        "{evs:?}"
    );
    assert!(
        !evs.iter().any(|p| p.state == TransferState::Transferring),
        "{evs:?}"
    );

    let e = dst
        .pull(
            &format!("{}/berth/nope:v1", reg.host()),
            &RegistryOptions::default(),
            &no_progress,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("MANIFEST_UNKNOWN") || e.to_string().contains("NAME_UNKNOWN"),
        "{e}"
    );
}

/// PUTs a document as a manifest with plain HTTP.
fn put_manifest(reg: &Registry, repo: &str, tag: &str, media_type: &str, doc: &[u8]) {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", reg.host());
    let out = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg("@-")
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(doc)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "put manifest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pull_chooses_linux_amd64_from_an_image_index() {
    if !ensure_tool("curl", "curl") {
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let d = tempdir("reg-index");
    let amd = format!("{}/multi/app:amd64", reg.host());
    let (src, id) = busybox_store(&d.path().join("src"), &amd);
    let amd_digest = src
        .push(&amd, &RegistryOptions::default(), &no_progress)
        .unwrap();
    // A second, different image stands in for the arm64 one.
    let mut t = image_support::Tb::new();
    t.file("arm", b"not for this host");
    let arm_store = ImageStore::open(&d.path().join("arm")).unwrap();
    let arm = format!("{}/multi/app:arm64", reg.host());
    arm_store.import(&t.finish()[..], &arm).unwrap();
    let arm_digest = arm_store
        .push(&arm, &RegistryOptions::default(), &no_progress)
        .unwrap();
    let manifest_len = |digest: &str| {
        let url = format!("http://{}/v2/multi/app/manifests/{digest}", reg.host());
        run(Command::new("curl")
            .args([
                "-sS",
                "-f",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg(url))
        .len()
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{arm_digest}","size":{},"platform":{{"os":"linux","architecture":"arm64"}}}},
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{amd_digest}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        manifest_len(&arm_digest),
        manifest_len(&amd_digest)
    );
    put_manifest(
        &reg,
        "multi/app",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        index.as_bytes(),
    );
    let dst = ImageStore::open(&d.path().join("dst")).unwrap();
    let img = dst
        .pull(
            &format!("{}/multi/app", reg.host()),
            &RegistryOptions::default(),
            &no_progress,
        )
        .unwrap();
    assert_eq!(img.id, id, "the amd64 image was chosen");
    let index_digest = format!("sha256:{}", {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(index.as_bytes()))
    });
    let by_index = format!("{}/multi/app@{index_digest}", reg.host());
    assert_eq!(dst.get(&by_index).unwrap().id, id);
    assert_eq!(
        dst.get(&format!("{}/multi/app@{amd_digest}", reg.host()))
            .unwrap()
            .id,
        id
    );
    assert!(img.layers[0].join("bin/busybox").exists());
}

#[test]
fn images_pushed_by_skopeo_pull_into_berth() {
    if !ensure_tool("skopeo", "skopeo") || !ensure_tool("umoci", "umoci") {
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let d = tempdir("reg-skopeo");
    let layout = d.path().join("layout");
    let image = format!("{}:v1", layout.display());
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
        "config",
        "--image",
        &image,
        "--config.cmd",
        "httpd",
        "--config.env",
        "FROM=skopeo",
    ]));
    let name = format!("{}/skopeo/made:v1", reg.host());
    // As a Docker v2 schema 2 manifest.
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{name}")));
    let store = ImageStore::open(&d.path().join("store")).unwrap();
    let img = store
        .pull(&name, &RegistryOptions::default(), &no_progress)
        .unwrap();
    assert_eq!(img.config.cmd, Some(vec!["httpd".to_string()]));
    assert!(img.config.env.contains(&"FROM=skopeo".to_string()));
    assert!(img.layers[0].join("bin/busybox").is_file());
    // And an OCI manifest.
    let oci_name = format!("{}/skopeo/made:oci", reg.host());
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--format", "oci"])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{oci_name}")));
    let img2 = store
        .pull(&oci_name, &RegistryOptions::default(), &no_progress)
        .unwrap();
    assert_eq!(img2.id, img.id);
    // skopeo reads back what berth pushes.
    let pushed = format!("{}/berth/from-skopeo:v2", reg.host());
    store.tag(&name, &pushed).unwrap();
    let digest = store
        .push(&pushed, &RegistryOptions::default(), &no_progress)
        .unwrap();
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{pushed}")));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], digest.as_str());
}

#[test]
fn basic_auth_with_htpasswd() {
    let htpasswd = |dir: &Path| {
        let line = run(Command::new("htpasswd").args(["-Bbn", "berth", "s3cret"]));
        let path = dir.join("htpasswd");
        fs::write(&path, line).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            path.display()
        )
    };
    if !ensure_tool("htpasswd", "apache2-utils") {
        return;
    }
    let Some(reg) = Registry::start(Some(&htpasswd)) else {
        return;
    };
    let d = tempdir("reg-basic");
    let name = format!("{}/private/bb:v1", reg.host());
    let (store, id) = busybox_store(&d.path().join("s"), &name);
    let opts = RegistryOptions::default();
    let e = store.push(&name, &opts, &no_progress).unwrap_err();
    assert!(matches!(e, ImageError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("log in"), "{e}");
    let e = store
        .login(&reg.host(), "berth", "wrong", &opts)
        .unwrap_err();
    assert!(matches!(e, ImageError::Unauthorized { .. }), "{e}");
    assert!(!d.path().join("s/auth.json").exists());
    store.login(&reg.host(), "berth", "s3cret", &opts).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(d.path().join("s/auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    store.push(&name, &opts, &no_progress).unwrap();
    let other = ImageStore::open(&d.path().join("o")).unwrap();
    assert!(matches!(
        other.pull(&name, &opts, &no_progress),
        Err(ImageError::Unauthorized { .. })
    ));
    assert_eq!(count(&d.path().join("o/imagedb")), 0);
    other.login(&reg.host(), "berth", "s3cret", &opts).unwrap();
    assert_eq!(other.pull(&name, &opts, &no_progress).unwrap().id, id);
    assert!(other.logout(&reg.host()).unwrap());
    assert!(!other.logout(&reg.host()).unwrap());
}

#[test]
fn a_corrupted_blob_is_rejected_and_nothing_stays() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let d = tempdir("reg-corrupt");
    let name = format!("{}/berth/corrupt:v1", reg.host());
    let (src, id) = busybox_store(&d.path().join("src"), &name);
    src.push(&name, &RegistryOptions::default(), &no_progress)
        .unwrap();
    assert!(src.get(&id).is_ok());
    // The layer blob is the only big file in the registry's storage.
    let blobs = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    let mut big = None;
    for a in fs::read_dir(&blobs).unwrap() {
        for b in fs::read_dir(a.unwrap().path()).unwrap() {
            let p = b.unwrap().path().join("data");
            if fs::metadata(&p).unwrap().len() > 100_000 {
                big = Some(p);
            }
        }
    }
    let big = big.expect("layer blob in registry storage");
    let digest = format!(
        "sha256:{}",
        big.parent().unwrap().file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(reg.blob_file(&digest), big);
    let mut data = fs::read(&big).unwrap();
    data[1000] ^= 0xff;
    fs::write(&big, data).unwrap();
    let dst = ImageStore::open(&d.path().join("dst")).unwrap();
    let e = dst
        .pull(&name, &RegistryOptions::default(), &no_progress)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::DigestMismatch { .. } | ImageError::Tar { .. } | ImageError::Unpack { .. }
        ),
        "{e}"
    );
    for sub in ["tmp", "layers", "imagedb"] {
        assert_eq!(count(&d.path().join("dst").join(sub)), 0, "{sub}");
    }
    assert!(matches!(dst.get(&name), Err(ImageError::NotFound(_))));
}

#[test]
fn bearer_token_flow() {
    if !ensure_tool("openssl", "openssl") {
        return;
    }
    let d = tempdir("reg-token");
    let tokens = TokenServer::start(d.path());
    let yaml = tokens.auth_yaml();
    let auth = move |_: &Path| yaml.clone();
    let Some(reg) = Registry::start(Some(&auth)) else {
        return;
    };
    let name = format!("{}/berth/tok:v1", reg.host());
    let (store, id) = busybox_store(&d.path().join("s"), &name);
    let opts = RegistryOptions::default();
    // Anonymous callers may pull but not push.
    let e = store.push(&name, &opts, &no_progress).unwrap_err();
    assert!(
        matches!(e, ImageError::Unauthorized { .. }),
        "{e}\n{}",
        reg.log()
    );
    let e = store
        .login(&reg.host(), TOKEN_USER, "wrong", &opts)
        .unwrap_err();
    assert!(matches!(e, ImageError::Unauthorized { .. }), "{e}");
    store
        .login(&reg.host(), TOKEN_USER, TOKEN_PASS, &opts)
        .unwrap();
    store.push(&name, &opts, &no_progress).unwrap();
    let seen = tokens.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s == "tok:repository:berth/tok:pull,push"
                || s == "tok:repository:berth/tok:push,pull"),
        "{seen:?}"
    );
    let anon = ImageStore::open(&d.path().join("anon")).unwrap();
    assert_eq!(anon.pull(&name, &opts, &no_progress).unwrap().id, id);
    assert!(tokens
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s == "-:repository:berth/tok:pull"));
}

#[test]
fn a_broken_download_resumes_where_it_stopped() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let d = tempdir("reg-resume");
    let name = format!("{}/berth/resume:v1", reg.host());
    let (src, id) = busybox_store(&d.path().join("src"), &name);
    src.push(&name, &RegistryOptions::default(), &no_progress)
        .unwrap();
    let proxy = FlakyProxy::start(reg.port, 300_000);
    let via_proxy = format!("127.0.0.1:{}/berth/resume:v1", proxy.port);
    let dst = ImageStore::open(&d.path().join("dst")).unwrap();
    let img = dst
        .pull(&via_proxy, &RegistryOptions::default(), &no_progress)
        .unwrap();
    assert!(
        proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    assert_eq!(img.id, id);
    assert!(img.layers[0].join("bin/busybox").is_file());
}
