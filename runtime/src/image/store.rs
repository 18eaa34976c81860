//! [`ImageStore`]: references, image records, import, tag, removal and garbage collection.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, Digest, ImageManifest, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

use super::config::{host_arch, ConfigFile, History, RootFs};
use super::digest::sha256_hex;
use super::layer::{add_layer, put_blob, read_layer, remove_any, write_atomic, Expect, Layout};
use super::media::OCI_MANIFEST;
use super::{Image, ImageError, Reference};

/// Shortest id prefix accepted for a lookup, so a short name like `a` or `cafe` that is not
/// an image does not silently match some image id.
const MIN_ID_PREFIX: usize = 4;

/// The content-addressed image store rooted at one directory. Cheap to share behind an `Arc`;
/// every method is safe to call from several threads (and processes) at once.
#[derive(Debug)]
pub struct ImageStore {
    pub(super) layout: Layout,
}

/// `repositories.json`: full reference (`docker.io/library/busybox:latest` or
/// `NAME@sha256:...`) to image id.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Index {
    #[serde(default)]
    pub references: BTreeMap<String, String>,
}

/// A blob as a manifest or record refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BlobRef {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// `imagedb/HEX.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ImageRecord {
    pub id: String,
    pub manifest: BlobRef,
    /// Bytes of file content over all layers.
    pub size: u64,
    /// `registry/repository` the image was pulled from or pushed to (blob mounts use them).
    #[serde(default)]
    pub sources: Vec<String>,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`, e.g. `<berth-root>/images`, and
    /// clears work left in `tmp/` by a crash when no other process is using the store.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        for d in [
            layout.blobs(),
            layout.layers(),
            layout.imagedb(),
            layout.tmp(),
        ] {
            fs::create_dir_all(&d).map_err(ImageError::io("create store directory", &d))?;
        }
        let store = ImageStore { layout };
        if let Some(_gc) = store.try_lock_gc_exclusive()? {
            store.clear_tmp();
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// The image named by a reference (`busybox`, `host:5000/a/b:tag`, `name@sha256:...`),
    /// a full id (`sha256:HEX`) or a unique id prefix of at least 4 hex digits.
    pub fn get(&self, reference_or_id: &str) -> Result<Image, ImageError> {
        let idx = self.read_index()?;
        let id = self.resolve(reference_or_id, &idx)?;
        self.load_image(&id, &idx)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let idx = self.read_index()?;
        let mut images = Vec::new();
        for id in self.image_ids()? {
            match self.load_image(&id, &idx) {
                Ok(img) => images.push(img),
                // Removed while we were listing.
                Err(ImageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(images)
    }

    /// Makes a one-layer image from a rootfs tarball (plain, gzip or zstd), like `docker
    /// import`, and names it `reference`.
    #[instrument(skip(self, tar))]
    pub fn import(&self, tar: impl Read, reference: &str) -> Result<Image, ImageError> {
        let reference = parse_tag_reference(reference)?;
        let _gc = self.lock_gc(false)?;
        let layer = add_layer(&self.layout, tar, Expect::default(), "imported layer")?;
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let config = ConfigFile {
            created: Some(now.clone()),
            architecture: host_arch().to_string(),
            os: "linux".to_string(),
            rootfs: RootFs {
                diff_ids: vec![layer.record.diff_id.clone()],
                ..RootFs::default()
            },
            history: vec![History {
                created: Some(now),
                created_by: Some("berth image import".to_string()),
                comment: Some("imported from a rootfs tarball".to_string()),
                ..History::default()
            }],
            ..ConfigFile::default()
        };
        let config = serde_json::to_vec(&config).map_err(|source| ImageError::Json {
            what: "image config".to_string(),
            source,
        })?;
        let layers = [BlobRef {
            media_type: layer.compression.oci_media_type().to_string(),
            digest: layer.digest.clone(),
            size: layer.blob_size,
        }];
        let manifest = oci_manifest(&config, &layers)?;
        let id = self.commit(
            &config,
            &manifest,
            OCI_MANIFEST,
            std::slice::from_ref(&reference),
            None,
        )?;
        info!(image = %id, reference = %reference, "imported image");
        self.get(&id)
    }

    /// Adds the reference `dst` to the image `src` (moving `dst` if it named another image).
    #[instrument(skip(self))]
    pub fn tag(&self, src: &str, dst: &str) -> Result<(), ImageError> {
        let dst = parse_tag_reference(dst)?;
        let _gc = self.lock_gc(false)?;
        self.update_index(|idx| {
            let id = self.resolve(src, idx)?;
            idx.references.insert(dst.to_string(), id);
            Ok(())
        })
    }

    /// Removes a reference, and the image with it when it was the last tag or `reference` is
    /// an id. Returns Docker's lines: `Untagged: busybox:latest`, `Deleted: sha256:...`.
    /// An image `in_use` by a container is refused unless `force`; forced, it loses its
    /// references but stays (dangling) until no container uses it and it is pruned.
    #[instrument(skip(self, in_use))]
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, ImageError> {
        let _gc = self.lock_gc(true)?;
        let mut deleted = None;
        let out = self.update_index(|idx| {
            let id = self.resolve(reference, idx)?;
            let named = Reference::parse(reference)
                .ok()
                .map(|r| r.to_string())
                .filter(|k| idx.references.get(k) == Some(&id));
            let refs: Vec<String> = idx
                .references
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect();
            let tags = refs.iter().filter(|r| !r.contains('@')).count();
            let mut out = Vec::new();
            if let Some(key) = named.as_ref().filter(|_| tags > 1) {
                idx.references.remove(key);
                out.push(format!("Untagged: {}", familiar(key)));
                return Ok(out);
            }
            if named.is_none() && tags > 1 && !force {
                return Err(ImageError::Conflict {
                    reference: reference.to_string(),
                    reason: format!("image {} is referenced by {tags} tags", short_id(&id)),
                });
            }
            let used = in_use(&id);
            if used && !force {
                return Err(ImageError::Conflict {
                    reference: reference.to_string(),
                    reason: format!("image {} is in use by a container", short_id(&id)),
                });
            }
            for k in refs {
                idx.references.remove(&k);
                out.push(format!("Untagged: {}", familiar(&k)));
            }
            if !used {
                out.push(format!("Deleted: {id}"));
                deleted = Some(id);
            }
            Ok(out)
        })?;
        if let Some(id) = deleted {
            self.delete_record(&id)?;
            self.sweep();
        }
        Ok(out)
    }

    /// Deletes every image without references that no container uses, then every layer and
    /// blob no image needs. Returns the deleted image ids.
    #[instrument(skip(self, in_use))]
    pub fn prune(&self, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>, ImageError> {
        let _gc = self.lock_gc(true)?;
        let idx = self.read_index()?;
        let named: BTreeSet<&String> = idx.references.values().collect();
        let mut deleted = Vec::new();
        for id in self.image_ids()? {
            if !named.contains(&id) && !in_use(&id) {
                self.delete_record(&id)?;
                deleted.push(id);
            }
        }
        self.sweep();
        Ok(deleted)
    }

    /// Stores config and manifest blobs (whose layers must already be stored), writes the
    /// image record and points `references` at it. Returns the image id.
    pub(super) fn commit(
        &self,
        config: &[u8],
        manifest: &[u8],
        manifest_media_type: &str,
        references: &[Reference],
        source: Option<&str>,
    ) -> Result<String, ImageError> {
        let cfg: ConfigFile =
            serde_json::from_slice(config).map_err(|source| ImageError::Json {
                what: "image config".to_string(),
                source,
            })?;
        let mut size = 0;
        for diff_id in &cfg.rootfs.diff_ids {
            size += read_layer(&self.layout, diff_id)?.size;
        }
        let id = put_blob(&self.layout, config)?;
        let manifest_digest = put_blob(&self.layout, manifest)?;
        let mut sources = self.read_record(&id).map(|r| r.sources).unwrap_or_default();
        sources.extend(source.map(str::to_string).filter(|s| !sources.contains(s)));
        let record = ImageRecord {
            id: id.clone(),
            manifest: BlobRef {
                media_type: manifest_media_type.to_string(),
                digest: manifest_digest,
                size: manifest.len() as u64,
            },
            size,
            sources,
        };
        let data = serde_json::to_vec_pretty(&record).map_err(|source| ImageError::Json {
            what: "image record".to_string(),
            source,
        })?;
        write_atomic(&self.layout, &self.layout.image(&id)?, &data)?;
        if !references.is_empty() {
            self.update_index(|idx| {
                for r in references {
                    idx.references.insert(r.to_string(), id.clone());
                }
                Ok(())
            })?;
        }
        Ok(id)
    }

    /// Records that image `id` is in `source` (`registry/repository`) as `digest_ref`.
    pub(super) fn add_source(
        &self,
        id: &str,
        source: &str,
        digest_ref: &Reference,
    ) -> Result<(), ImageError> {
        self.update_index(|idx| {
            let mut record = self.read_record(id)?;
            if !record.sources.iter().any(|s| s == source) {
                record.sources.push(source.to_string());
                let data =
                    serde_json::to_vec_pretty(&record).map_err(|source| ImageError::Json {
                        what: "image record".to_string(),
                        source,
                    })?;
                write_atomic(&self.layout, &self.layout.image(id)?, &data)?;
            }
            idx.references
                .insert(digest_ref.to_string(), id.to_string());
            Ok(())
        })
    }

    /// Whether the layer `diff_id` is unpacked and its blob `digest` stored.
    pub(super) fn has_layer_blob(&self, diff_id: &str, digest: &str) -> bool {
        let layer = self.layout.layer(diff_id).map(|p| p.join("layer.json"));
        let blob = self.layout.blob(digest);
        matches!((layer, blob), (Ok(l), Ok(b)) if l.exists() && b.exists())
    }

    pub(super) fn resolve(&self, s: &str, idx: &Index) -> Result<String, ImageError> {
        if sha256_hex(s).is_some() {
            return match self.layout.image(s)?.exists() {
                true => Ok(s.to_string()),
                false => Err(ImageError::NotFound(s.to_string())),
            };
        }
        let parsed = Reference::parse(s);
        if let Ok(r) = &parsed {
            let by_digest = r.digest().map(|d| r.with_digest(d).to_string());
            for key in [Some(r.to_string()), by_digest].into_iter().flatten() {
                if let Some(id) = idx.references.get(&key) {
                    return Ok(id.clone());
                }
            }
        }
        let prefix = s.strip_prefix("sha256:").unwrap_or(s);
        if prefix.len() >= MIN_ID_PREFIX
            && prefix.len() < 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let hits: Vec<String> = self
                .image_ids()?
                .into_iter()
                .filter(|id| id["sha256:".len()..].starts_with(prefix))
                .collect();
            match hits.len() {
                0 => {}
                1 => return Ok(hits.into_iter().next().unwrap_or_default()),
                count => {
                    return Err(ImageError::Ambiguous {
                        prefix: s.to_string(),
                        count,
                    })
                }
            }
        }
        match parsed {
            Ok(r) => Err(ImageError::NotFound(r.familiar())),
            Err(_) if s.starts_with("sha256:") => Err(ImageError::NotFound(s.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    fn load_image(&self, id: &str, idx: &Index) -> Result<Image, ImageError> {
        let record = self.read_record(id)?;
        let config = self.read_config(&record.id)?;
        let mut layers = Vec::with_capacity(config.rootfs.diff_ids.len());
        for diff_id in &config.rootfs.diff_ids {
            layers.push(self.layout.layer(diff_id)?.join("root"));
        }
        let mut references: Vec<String> = idx
            .references
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| familiar(k))
            .collect();
        references.sort();
        Ok(Image {
            id: record.id,
            references,
            config: config.config,
            layers,
            created: config.created.unwrap_or_default(),
            size: record.size,
            os: config.os,
            architecture: config.architecture,
            manifest_digest: record.manifest.digest,
        })
    }

    pub(super) fn read_record(&self, id: &str) -> Result<ImageRecord, ImageError> {
        let path = self.layout.image(id)?;
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(id.to_string()))
            }
            Err(e) => return Err(ImageError::io("read image record", path)(e)),
        };
        serde_json::from_slice(&data).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })
    }

    pub(super) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.layout.blob(digest)?;
        fs::read(&path).map_err(ImageError::io("read blob", path))
    }

    pub(super) fn read_config(&self, digest: &str) -> Result<ConfigFile, ImageError> {
        let data = self.read_blob(digest)?;
        serde_json::from_slice(&data).map_err(|source| ImageError::Json {
            what: format!("image config {digest}"),
            source,
        })
    }

    fn image_ids(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.layout.imagedb();
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(ImageError::io("list images", &dir))? {
            let entry = entry.map_err(ImageError::io("list images", &dir))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let id = format!("sha256:{hex}");
            if sha256_hex(&id).is_some() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn delete_record(&self, id: &str) -> Result<(), ImageError> {
        let path = self.layout.image(id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("remove image record", path)(e)),
        }
    }

    pub(super) fn read_index(&self) -> Result<Index, ImageError> {
        let path = self.layout.index();
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| ImageError::Json {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(ImageError::io("read index", path)(e)),
        }
    }

    /// Read-modify-write of the index under its exclusive lock; written only when `f`
    /// succeeds and changed something.
    fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _lock = self.flock("index.lock", FlockArg::LockExclusive)?;
        let before = self.read_index()?;
        let mut idx = before.clone();
        let out = f(&mut idx)?;
        if idx != before {
            let data = serde_json::to_vec_pretty(&idx).map_err(|source| ImageError::Json {
                what: "index".to_string(),
                source,
            })?;
            write_atomic(&self.layout, &self.layout.index(), &data)?;
        }
        Ok(out)
    }

    fn flock(&self, name: &str, arg: FlockArg) -> Result<Flock<File>, ImageError> {
        let path = self.layout.root.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io("open lock", &path))?;
        Flock::lock(file, arg).map_err(|(_, e)| ImageError::Io {
            step: "lock",
            path,
            source: e.into(),
        })
    }

    /// Imports hold the gc lock shared; removal and pruning, which delete layers, exclusive.
    pub(super) fn lock_gc(&self, exclusive: bool) -> Result<Flock<File>, ImageError> {
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        self.flock("gc.lock", arg)
    }

    fn try_lock_gc_exclusive(&self) -> Result<Option<Flock<File>>, ImageError> {
        match self.flock("gc.lock", FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(l)),
            Err(ImageError::Io { source, .. })
                if source.raw_os_error() == Some(libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes everything under `tmp/`; only with the gc lock held exclusively.
    fn clear_tmp(&self) {
        if let Ok(entries) = fs::read_dir(self.layout.tmp()) {
            for e in entries.flatten() {
                remove_any(&e.path());
            }
        }
    }

    /// Deletes layers and blobs no image needs; only with the gc lock held exclusively.
    /// Best effort: a record that cannot be read stops the sweep rather than risk deleting
    /// what it needs.
    fn sweep(&self) {
        let (layers, blobs) = match self.live_set() {
            Ok(live) => live,
            Err(e) => {
                warn!(error = %e, "image garbage collection skipped");
                return;
            }
        };
        for (dir, live, kind) in [
            (self.layout.layers(), &layers, "layer"),
            (self.layout.blobs(), &blobs, "blob"),
        ] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if live.contains(&name) {
                    continue;
                }
                // Rename first so a half-deleted layer is never visible under its name.
                let doomed = self.layout.tmp_path("");
                match fs::rename(e.path(), &doomed) {
                    Ok(()) => remove_any(&doomed),
                    Err(err) => {
                        warn!(path = %e.path().display(), error = %err, "cannot remove unused {kind}")
                    }
                }
            }
        }
        self.clear_tmp();
    }

    /// Hex names of the layers and blobs some image needs.
    fn live_set(&self) -> Result<(BTreeSet<String>, BTreeSet<String>), ImageError> {
        let mut layers = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        let hex = |d: &str| sha256_hex(d).map(str::to_string);
        for id in self.image_ids()? {
            let record = self.read_record(&id)?;
            blobs.extend(hex(&record.manifest.digest));
            let data = self.read_blob(&record.manifest.digest)?;
            let manifest =
                ImageManifest::from_reader(&data[..]).map_err(|e| ImageError::Invalid {
                    what: format!("manifest {}", record.manifest.digest),
                    reason: e.to_string(),
                })?;
            blobs.extend(hex(manifest.config().digest().as_ref()));
            blobs.extend(
                manifest
                    .layers()
                    .iter()
                    .filter_map(|l| hex(l.digest().as_ref())),
            );
            let config = self.read_config(&id)?;
            layers.extend(config.rootfs.diff_ids.iter().filter_map(|d| hex(d)));
        }
        Ok((layers, blobs))
    }

    /// The path of the unpacked layer `diff_id` (whether or not it exists).
    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.layout.layer(diff_id)?.join("root"))
    }
}

/// Parses a reference that names a tag (a digest cannot be assigned locally).
fn parse_tag_reference(s: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse(s)?;
    if r.digest().is_some() {
        return Err(ImageError::Invalid {
            what: format!("reference {s}"),
            reason: "a digest reference cannot be assigned; use a tag".to_string(),
        });
    }
    Ok(r)
}

/// An OCI manifest for `config` and the layer blobs, bottom first.
pub(super) fn oci_manifest(config: &[u8], layers: &[BlobRef]) -> Result<Vec<u8>, ImageError> {
    let bad = |e: oci_spec::OciSpecError| ImageError::Invalid {
        what: "manifest".to_string(),
        reason: e.to_string(),
    };
    let digest = |d: &str| Digest::from_str(d).map_err(bad);
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config.len() as u64,
        digest(&super::digest::sha256_digest(config))?,
    );
    let mut descs = Vec::with_capacity(layers.len());
    for l in layers {
        descs.push(Descriptor::new(
            MediaType::from(l.media_type.as_str()),
            l.size,
            digest(&l.digest)?,
        ));
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(descs)
        .build()
        .map_err(bad)?;
    serde_json::to_vec(&manifest).map_err(|source| ImageError::Json {
        what: "manifest".to_string(),
        source,
    })
}

fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
