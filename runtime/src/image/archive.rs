//! `save` and `load`: OCI image layout tarballs (`oci-archive`) in both directions, and
//! `docker save` tarballs (`docker-archive`), loaded and written.
//!
//! An OCI archive holds `oci-layout`, `index.json` and `blobs/sha256/HEX`; the manifests are
//! written as stored (converted to OCI media types when they came from a Docker registry), so
//! a saved image keeps its manifest digest. A Docker archive holds `manifest.json`, the config
//! as `HEX.json` and each layer uncompressed as `DIFFID/layer.tar`.
//!
//! Loading extracts the archive into the store's `tmp/` with the same safe unpacker as layers,
//! then verifies every blob against its digest before anything is stored. Files inside the
//! archive are opened with `RESOLVE_IN_ROOT`, so a symlink in an archive cannot reach out.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use oci_spec::image::{
    Descriptor, Digest, ImageIndexBuilder, MediaType, Platform, PlatformBuilder,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use super::config::ConfigFile;
use super::digest::{detect_compression, sha256_hex, Compression, HashingReader};
use super::layer::{add_layer, put_blob_stream, read_layer, Expect, TempPath};
use super::media::{self, OCI_MANIFEST};
use super::store::{oci_manifest, BlobRef};
use super::unpack::unpack_layer;
use super::{ImageError, ImageStore, Reference};

/// The archive format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveFormat {
    /// OCI image layout (`skopeo`'s `oci-archive`).
    #[default]
    Oci,
    /// `docker save`'s format (`docker-archive`).
    Docker,
}

impl FromStr for ArchiveFormat {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "oci" => Ok(ArchiveFormat::Oci),
            "docker" => Ok(ArchiveFormat::Docker),
            other => Err(ImageError::Unsupported {
                what: "archive format",
                value: format!("{other} (use oci or docker)"),
            }),
        }
    }
}

/// One image `load` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The image id.
    pub id: String,
    /// The references the archive named it by, in Docker's short form.
    pub references: Vec<String>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An entry of a Docker archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An image chosen for saving, with the references to save it under.
struct Chosen {
    id: String,
    names: Vec<Reference>,
}

impl ImageStore {
    /// Writes the images named by `references` (references or ids) as one archive to `out`.
    #[instrument(skip(self, out))]
    pub fn save(
        &self,
        references: &[&str],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<(), ImageError> {
        let _gc = self.lock_gc(false)?;
        let idx = self.read_index()?;
        let mut chosen: Vec<Chosen> = Vec::new();
        for r in references {
            let id = self.resolve(r, &idx)?;
            let name = Reference::parse(r).ok().filter(|p| {
                p.digest().is_none() && idx.references.get(&p.to_string()) == Some(&id)
            });
            match chosen.iter_mut().find(|c| c.id == id) {
                Some(c) => c.names.extend(name),
                None => chosen.push(Chosen {
                    id,
                    names: name.into_iter().collect(),
                }),
            }
        }
        let mut tar = tar::Builder::new(out);
        match format {
            ArchiveFormat::Oci => self.write_oci(&chosen, &mut tar)?,
            ArchiveFormat::Docker => self.write_docker(&chosen, &mut tar)?,
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| write_err("end of archive", e))
    }

    fn write_oci<W: Write>(
        &self,
        chosen: &[Chosen],
        tar: &mut tar::Builder<W>,
    ) -> Result<(), ImageError> {
        append_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut written = HashSet::new();
        let mut descriptors = Vec::new();
        for c in chosen {
            let record = self.read_record(&c.id)?;
            let stored = self.read_blob(&record.manifest.digest)?;
            let manifest = media::to_oci_manifest(&stored, &record.manifest.media_type)?;
            let parsed = media::parse_manifest(&manifest)?;
            self.append_blob(tar, parsed.config().digest().as_ref(), &mut written)?;
            for l in parsed.layers() {
                self.append_blob(tar, l.digest().as_ref(), &mut written)?;
            }
            let digest = super::digest::sha256_digest(&manifest);
            if written.insert(digest.clone()) {
                append_bytes(tar, &blob_path(&digest)?, &manifest)?;
            }
            let config: ConfigFile = self.read_config(&c.id)?;
            let mut desc = Descriptor::new(
                MediaType::ImageManifest,
                manifest.len() as u64,
                oci_digest(&digest)?,
            );
            desc.set_platform(Some(platform(&config)?));
            if c.names.is_empty() {
                descriptors.push(desc.clone());
            }
            for name in &c.names {
                let mut d = desc.clone();
                let ann = [
                    (CONTAINERD_NAME.to_string(), name.to_string()),
                    (
                        REF_NAME.to_string(),
                        name.tag().unwrap_or("latest").to_string(),
                    ),
                ];
                d.set_annotations(Some(ann.into_iter().collect()));
                descriptors.push(d);
            }
        }
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(descriptors)
            .build()
            .map_err(|e| ImageError::Invalid {
                what: "image index".to_string(),
                reason: e.to_string(),
            })?;
        let data = serde_json::to_vec(&index).map_err(|source| ImageError::Json {
            what: "index.json".to_string(),
            source,
        })?;
        append_bytes(tar, "index.json", &data)
    }

    fn write_docker<W: Write>(
        &self,
        chosen: &[Chosen],
        tar: &mut tar::Builder<W>,
    ) -> Result<(), ImageError> {
        let mut entries = Vec::new();
        let mut written = HashSet::new();
        for c in chosen {
            let record = self.read_record(&c.id)?;
            let manifest = media::parse_manifest(&self.read_blob(&record.manifest.digest)?)?;
            let config_bytes = self.read_blob(&c.id)?;
            let config: ConfigFile = self.read_config(&c.id)?;
            let hex = sha256_hex(&c.id).unwrap_or_default().to_string();
            let config_name = format!("{hex}.json");
            if written.insert(config_name.clone()) {
                append_bytes(tar, &config_name, &config_bytes)?;
            }
            let mut layers = Vec::new();
            for (desc, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
                let dir = sha256_hex(diff_id).unwrap_or_default();
                let name = format!("{dir}/layer.tar");
                if written.insert(name.clone()) {
                    self.append_uncompressed_layer(tar, desc.digest().as_ref(), diff_id, &name)?;
                }
                layers.push(name);
            }
            entries.push(DockerEntry {
                config: config_name,
                repo_tags: Some(c.names.iter().map(Reference::familiar).collect()),
                layers,
            });
        }
        let data = serde_json::to_vec(&entries).map_err(|source| ImageError::Json {
            what: "manifest.json".to_string(),
            source,
        })?;
        append_bytes(tar, "manifest.json", &data)
    }

    fn append_blob<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        digest: &str,
        written: &mut HashSet<String>,
    ) -> Result<(), ImageError> {
        if !written.insert(digest.to_string()) {
            return Ok(());
        }
        let path = self.layout.blob(digest)?;
        let file = File::open(&path).map_err(ImageError::io("open blob", &path))?;
        let len = file
            .metadata()
            .map_err(ImageError::io("stat blob", &path))?
            .len();
        append_reader(tar, &blob_path(digest)?, len, file)
    }

    /// Appends a layer blob decompressed, as `docker save` does.
    fn append_uncompressed_layer<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        digest: &str,
        diff_id: &str,
        name: &str,
    ) -> Result<(), ImageError> {
        let size = read_layer(&self.layout, diff_id)?.tar_size;
        let path = self.layout.blob(digest)?;
        let file = File::open(&path).map_err(ImageError::io("open blob", &path))?;
        let (kind, stream) =
            detect_compression(file).map_err(ImageError::io("read blob", &path))?;
        let plain: Box<dyn Read> = match kind {
            Compression::None => Box::new(stream),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(stream)
                    .map_err(ImageError::io("read blob", &path))?,
            ),
            other => {
                return Err(ImageError::Unsupported {
                    what: "layer compression",
                    value: format!("{other:?}").to_lowercase(),
                })
            }
        };
        let mut hashed = HashingReader::new(plain.take(size));
        append_reader(tar, name, size, &mut hashed)?;
        let (got, len, _) = hashed.finish();
        if len != size || got != diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("layer {diff_id} of the store"),
                expected: diff_id.to_string(),
                actual: got,
            });
        }
        Ok(())
    }

    /// Loads every image of an OCI or Docker archive (plain or compressed).
    #[instrument(skip_all)]
    pub fn load(&self, input: impl Read) -> Result<Vec<Loaded>, ImageError> {
        let _gc = self.lock_gc(false)?;
        let work = TempPath::new(self.layout.tmp_path(""));
        fs::create_dir(work.path()).map_err(ImageError::io("create", work.path()))?;
        let (kind, stream) =
            detect_compression(input).map_err(|source| ImageError::Tar { source })?;
        match kind {
            Compression::None => unpack_layer(stream, work.path())?,
            Compression::Gzip => {
                unpack_layer(flate2::read::MultiGzDecoder::new(stream), work.path())?
            }
            Compression::Zstd => unpack_layer(
                zstd::stream::read::Decoder::new(stream)
                    .map_err(|source| ImageError::Tar { source })?,
                work.path(),
            )?,
            other => {
                return Err(ImageError::Unsupported {
                    what: "archive compression",
                    value: format!("{other:?}").to_lowercase(),
                })
            }
        };
        let dir = Archive::at(work.path())?;
        let loaded = if dir.has("index.json") {
            self.load_oci(&dir)?
        } else if dir.has("manifest.json") {
            self.load_docker(&dir)?
        } else {
            return Err(ImageError::Invalid {
                what: "image archive".to_string(),
                reason: "it has neither index.json (OCI layout) nor manifest.json (docker save)"
                    .to_string(),
            });
        };
        for l in &loaded {
            info!(image = %l.id, references = ?l.references, "loaded image");
        }
        Ok(loaded)
    }

    fn load_oci(&self, dir: &Archive) -> Result<Vec<Loaded>, ImageError> {
        let index = media::parse_index(&dir.read("index.json")?)?;
        let mut out: Vec<Loaded> = Vec::new();
        for desc in index.manifests() {
            let name = desc.annotations().as_ref().and_then(|a| {
                let pick = |k: &str| a.get(k).and_then(|v| Reference::parse(v).ok());
                pick(CONTAINERD_NAME).or_else(|| pick(REF_NAME))
            });
            let id = self.load_oci_manifest(dir, desc, name.as_ref(), 0)?;
            let familiar = name.as_ref().map(Reference::familiar);
            match out.iter_mut().find(|l| l.id == id) {
                Some(l) => l.references.extend(familiar),
                None => out.push(Loaded {
                    id,
                    references: familiar.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    fn load_oci_manifest(
        &self,
        dir: &Archive,
        desc: &Descriptor,
        name: Option<&Reference>,
        depth: u32,
    ) -> Result<String, ImageError> {
        let digest = desc.digest().to_string();
        let doc = dir.blob(&digest, Some(desc.size()))?;
        let mt = media::sniff(&doc, desc.media_type().as_ref());
        if media::is_index(&mt) && depth < 4 {
            let nested = media::parse_index(&doc)?;
            return self.load_oci_manifest(dir, media::pick_platform(&nested)?, name, depth + 1);
        }
        if !media::is_manifest(&mt) {
            return Err(ImageError::Unsupported {
                what: "manifest media type",
                value: mt,
            });
        }
        let manifest = media::parse_manifest(&doc)?;
        let config_desc = manifest.config();
        let config = dir.blob(config_desc.digest().as_ref(), Some(config_desc.size()))?;
        let cfg: ConfigFile =
            serde_json::from_slice(&config).map_err(|source| ImageError::Json {
                what: format!("image config {}", config_desc.digest()),
                source,
            })?;
        if cfg.rootfs.diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::Invalid {
                what: format!("image {}", config_desc.digest()),
                reason: "the manifest and the config disagree on the number of layers".to_string(),
            });
        }
        for (l, diff_id) in manifest.layers().iter().zip(&cfg.rootfs.diff_ids) {
            let digest = l.digest().to_string();
            let expect = Expect {
                digest: Some(&digest),
                size: Some(l.size()),
                diff_id: Some(diff_id),
            };
            let file = dir.open(&blob_path(&digest)?)?;
            self.store_layer(file, expect, &format!("layer {digest}"))?;
        }
        self.commit(
            &config,
            &doc,
            &mt,
            name.map(std::slice::from_ref).unwrap_or_default(),
            None,
        )
    }

    /// Stores a layer blob, unpacking it only when no layer with its diff id exists yet;
    /// returns the blob's digest and size.
    pub(super) fn store_layer(
        &self,
        blob: impl Read,
        expect: Expect<'_>,
        what: &str,
    ) -> Result<(String, u64), ImageError> {
        let have_layer = expect
            .diff_id
            .and_then(|d| self.layout.layer(d).ok())
            .is_some_and(|p| p.exists());
        if have_layer {
            put_blob_stream(&self.layout, blob, expect, what)
        } else {
            add_layer(&self.layout, blob, expect, what).map(|l| (l.digest, l.blob_size))
        }
    }

    fn load_docker(&self, dir: &Archive) -> Result<Vec<Loaded>, ImageError> {
        let entries: Vec<DockerEntry> = serde_json::from_slice(&dir.read("manifest.json")?)
            .map_err(|source| ImageError::Json {
                what: "manifest.json".to_string(),
                source,
            })?;
        let mut out = Vec::new();
        for e in entries {
            let config = dir.read(&e.config)?;
            let cfg: ConfigFile =
                serde_json::from_slice(&config).map_err(|source| ImageError::Json {
                    what: e.config.clone(),
                    source,
                })?;
            if cfg.rootfs.diff_ids.len() != e.layers.len() {
                return Err(ImageError::Invalid {
                    what: format!("image {}", e.config),
                    reason: "manifest.json and the config disagree on the number of layers"
                        .to_string(),
                });
            }
            let mut layers = Vec::new();
            for (path, diff_id) in e.layers.iter().zip(&cfg.rootfs.diff_ids) {
                let mut file = dir.open(path)?;
                let (kind, stream) =
                    detect_compression(&mut file).map_err(ImageError::io("read", path))?;
                let expect = Expect {
                    diff_id: Some(diff_id),
                    ..Expect::default()
                };
                let (digest, size) = self.store_layer(stream, expect, &format!("layer {path}"))?;
                layers.push(BlobRef {
                    media_type: kind.oci_media_type().to_string(),
                    digest,
                    size,
                });
            }
            let manifest = oci_manifest(&config, &layers)?;
            let names: Vec<Reference> = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<_, _>>()?;
            let id = self.commit(&config, &manifest, OCI_MANIFEST, &names, None)?;
            out.push(Loaded {
                id,
                references: names.iter().map(Reference::familiar).collect(),
            });
        }
        Ok(out)
    }
}

/// An extracted archive; files are opened without letting symlinks leave it.
struct Archive {
    root: File,
    path: std::path::PathBuf,
}

impl Archive {
    fn at(path: &Path) -> Result<Archive, ImageError> {
        let root = File::open(path).map_err(ImageError::io("open", path))?;
        Ok(Archive {
            root,
            path: path.to_path_buf(),
        })
    }

    fn has(&self, rel: &str) -> bool {
        self.open(rel).is_ok()
    }

    fn open(&self, rel: &str) -> Result<File, ImageError> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.root.as_fd(), rel, how).map_err(|e| ImageError::Io {
            step: "open archive member",
            path: self.path.join(rel),
            source: e.into(),
        })?;
        Ok(File::from(fd))
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        let mut data = Vec::new();
        self.open(rel)?
            .read_to_end(&mut data)
            .map_err(ImageError::io("read archive member", self.path.join(rel)))?;
        Ok(data)
    }

    /// A small blob (manifest, config), verified against its digest and size.
    fn blob(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>, ImageError> {
        let data = self.read(&blob_path(digest)?)?;
        let got = super::digest::sha256_digest(&data);
        if got != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {digest} of the archive"),
                expected: digest.to_string(),
                actual: got,
            });
        }
        if let Some(s) = size.filter(|&s| s != data.len() as u64) {
            return Err(ImageError::SizeMismatch {
                what: format!("blob {digest} of the archive"),
                expected: s,
                actual: data.len() as u64,
            });
        }
        Ok(data)
    }
}

fn blob_path(digest: &str) -> Result<String, ImageError> {
    let hex = sha256_hex(digest).ok_or_else(|| ImageError::Unsupported {
        what: "digest",
        value: digest.to_string(),
    })?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn oci_digest(d: &str) -> Result<Digest, ImageError> {
    Digest::from_str(d).map_err(|e| ImageError::Invalid {
        what: format!("digest {d}"),
        reason: e.to_string(),
    })
}

fn platform(config: &ConfigFile) -> Result<Platform, ImageError> {
    let mut b = PlatformBuilder::default()
        .os(config.os.as_str())
        .architecture(config.architecture.as_str());
    if let Some(v) = &config.variant {
        b = b.variant(v.clone());
    }
    b.build().map_err(|e| ImageError::Invalid {
        what: "platform".to_string(),
        reason: e.to_string(),
    })
}

fn write_err(what: &str, source: io::Error) -> ImageError {
    ImageError::Io {
        step: "write archive",
        path: what.into(),
        source,
    }
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(len);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> Result<(), ImageError> {
    append_reader(tar, name, data.len() as u64, data)
}

fn append_reader<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    len: u64,
    data: impl Read,
) -> Result<(), ImageError> {
    let mut h = header(len);
    tar.append_data(&mut h, name, data)
        .map_err(|e| write_err(name, e))
}
