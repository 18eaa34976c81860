//! The on-disk layout of the store and its write paths for blobs and layers: everything is
//! written under `tmp/`, verified, made durable and then renamed into place, so an error or a
//! crash leaves nothing half-written where readers look.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

use super::digest::{detect_compression, sha256_hex, Compression, HashingReader};
use super::unpack::{unpack_layer, UnpackStats};
use super::ImageError;

/// Paths of the store's parts.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn imagedb(&self) -> PathBuf {
        self.root.join("imagedb")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    /// The file of blob `digest` (`sha256:HEX`); an invalid digest is an error, so a digest
    /// from a manifest can never name a path outside the store.
    pub fn blob(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.blobs().join(valid_hex(digest)?))
    }

    /// The directory of the layer with diff id `diff_id`.
    pub fn layer(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.layers().join(valid_hex(diff_id)?))
    }

    /// The record of image `id`.
    pub fn image(&self, id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.imagedb().join(format!("{}.json", valid_hex(id)?)))
    }

    /// A fresh, unique path under `tmp/`.
    pub fn tmp_path(&self, suffix: &str) -> PathBuf {
        self.tmp()
            .join(format!("{:016x}{suffix}", rand::random::<u64>()))
    }
}

fn valid_hex(digest: &str) -> Result<&str, ImageError> {
    sha256_hex(digest).ok_or_else(|| ImageError::Invalid {
        what: "digest".to_string(),
        reason: format!("{digest:?} is not a sha256 digest"),
    })
}

/// A path under `tmp/` removed on drop unless kept.
pub(super) struct TempPath(Option<PathBuf>);

impl TempPath {
    pub fn new(path: PathBuf) -> TempPath {
        TempPath(Some(path))
    }
    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    /// Disarms the guard (the path was renamed away).
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            remove_any(&p);
        }
    }
}

/// Best-effort removal of a file or directory tree; absent is fine.
pub(super) fn remove_any(p: &Path) {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    };
    if let Err(e) = r {
        debug!(path = %p.display(), error = %e, "cannot remove temporary path");
    }
}

/// Writes `data` to `path` atomically through a unique temporary file in `tmp/`.
pub(super) fn write_atomic(layout: &Layout, path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let tmp = TempPath::new(layout.tmp_path(".json"));
    let err = ImageError::io("write", path);
    let mut f = File::create(tmp.path()).map_err(ImageError::io("create", tmp.path()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(ImageError::io("write", tmp.path()))?;
    fs::rename(tmp.path(), path).map_err(err)?;
    tmp.keep();
    sync_dir(path);
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Stores `data` as a blob and returns its digest.
pub(super) fn put_blob(layout: &Layout, data: &[u8]) -> Result<String, ImageError> {
    let digest = super::digest::sha256_digest(data);
    let path = layout.blob(&digest)?;
    if !path.exists() {
        write_atomic(layout, &path, data)?;
    }
    Ok(digest)
}

/// What a blob must match.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Expect<'a> {
    pub digest: Option<&'a str>,
    pub size: Option<u64>,
    pub diff_id: Option<&'a str>,
}

/// Streams a blob into the store, verifying digest and size.
pub(super) fn put_blob_stream(
    layout: &Layout,
    input: impl Read,
    expect: Expect<'_>,
    what: &str,
) -> Result<(String, u64), ImageError> {
    let tmp = TempPath::new(layout.tmp_path(".blob"));
    let file = File::create(tmp.path()).map_err(ImageError::io("create", tmp.path()))?;
    let mut r = HashingReader::tee(input, BufWriter::with_capacity(1 << 20, file));
    r.drain()
        .map_err(ImageError::io("write blob", tmp.path()))?;
    let (digest, size, w) = r.finish();
    let file = w.into_inner().map_err(|e| ImageError::Io {
        step: "write blob",
        path: tmp.path().to_path_buf(),
        source: e.into_error(),
    })?;
    verify(what, expect.digest, &digest, expect.size, size)?;
    file.sync_all()
        .map_err(ImageError::io("sync blob", tmp.path()))?;
    let dest = layout.blob(&digest)?;
    fs::rename(tmp.path(), &dest).map_err(ImageError::io("store blob", &dest))?;
    tmp.keep();
    Ok((digest, size))
}

fn verify(
    what: &str,
    want_digest: Option<&str>,
    digest: &str,
    want_size: Option<u64>,
    size: u64,
) -> Result<(), ImageError> {
    if let Some(w) = want_size.filter(|&w| w != size) {
        return Err(ImageError::SizeMismatch {
            what: what.to_string(),
            expected: w,
            actual: size,
        });
    }
    if let Some(w) = want_digest.filter(|&w| w != digest) {
        return Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: w.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(())
}

/// The record of an unpacked layer (`layers/HEX/layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LayerRecord {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// Bytes of regular-file content.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

/// A layer blob stored and unpacked.
#[derive(Debug, Clone)]
pub(super) struct AddedLayer {
    pub record: LayerRecord,
    /// Digest and size of the blob as received.
    pub digest: String,
    pub blob_size: u64,
    pub compression: Compression,
}

/// Stores the layer blob `input` (plain, gzip or zstd tar) and unpacks it into
/// `layers/DIFFID/root`, unless a layer with that diff id is already there.
#[instrument(skip_all, fields(what = what))]
pub(super) fn add_layer(
    layout: &Layout,
    input: impl Read,
    expect: Expect<'_>,
    what: &str,
) -> Result<AddedLayer, ImageError> {
    let work = TempPath::new(layout.tmp_path(""));
    let root = work.path().join("root");
    fs::create_dir_all(&root).map_err(ImageError::io("create", &root))?;
    let blob_tmp = TempPath::new(layout.tmp_path(".blob"));
    let file = File::create(blob_tmp.path()).map_err(ImageError::io("create", blob_tmp.path()))?;
    let mut outer = HashingReader::tee(input, BufWriter::with_capacity(1 << 20, file));
    let (compression, stream) =
        detect_compression(&mut outer).map_err(|source| ImageError::Tar { source })?;
    let (stats, diff_id, tar_size) = match compression {
        Compression::None => unpack_hashed(stream, &root)?,
        Compression::Gzip => unpack_hashed(flate2::read::MultiGzDecoder::new(stream), &root)?,
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::new(stream)
                .map_err(|source| ImageError::Tar { source })?;
            unpack_hashed(dec, &root)?
        }
        other => {
            return Err(ImageError::Unsupported {
                what: "layer compression",
                value: format!("{other:?}").to_lowercase(),
            })
        }
    };
    outer.drain().map_err(|source| ImageError::Tar { source })?;
    let (digest, blob_size, w) = outer.finish();
    let file = w.into_inner().map_err(|e| ImageError::Io {
        step: "write blob",
        path: blob_tmp.path().to_path_buf(),
        source: e.into_error(),
    })?;
    verify(what, expect.digest, &digest, expect.size, blob_size)?;
    if let Some(want) = expect.diff_id.filter(|&w| w != diff_id) {
        return Err(ImageError::DigestMismatch {
            what: format!("{what} (uncompressed)"),
            expected: want.to_string(),
            actual: diff_id,
        });
    }
    let record = LayerRecord {
        diff_id: diff_id.clone(),
        size: stats.size,
        tar_size,
    };
    commit_layer(layout, work, &record)?;
    file.sync_all()
        .map_err(ImageError::io("sync blob", blob_tmp.path()))?;
    let dest = layout.blob(&digest)?;
    fs::rename(blob_tmp.path(), &dest).map_err(ImageError::io("store blob", &dest))?;
    blob_tmp.keep();
    debug!(diff_id = %record.diff_id, digest = %digest, entries = stats.entries, "layer stored");
    Ok(AddedLayer {
        record,
        digest,
        blob_size,
        compression,
    })
}

/// Unpacks the uncompressed tar stream, returning its stats, diff id and length.
fn unpack_hashed(r: impl Read, root: &Path) -> Result<(UnpackStats, String, u64), ImageError> {
    let mut h = HashingReader::new(r);
    let stats = unpack_layer(&mut h, root)?;
    h.drain().map_err(|source| ImageError::Tar { source })?;
    let (diff_id, len, _) = h.finish();
    Ok((stats, diff_id, len))
}

/// Writes the record, flushes the unpacked tree to disk and renames `work` to
/// `layers/HEX`; when another writer got there first, ours is dropped.
fn commit_layer(layout: &Layout, work: TempPath, record: &LayerRecord) -> Result<(), ImageError> {
    let dest = layout.layer(&record.diff_id)?;
    if dest.exists() {
        return Ok(());
    }
    let rec_path = work.path().join("layer.json");
    let data = serde_json::to_vec_pretty(record).map_err(|source| ImageError::Json {
        what: rec_path.display().to_string(),
        source,
    })?;
    fs::write(&rec_path, data).map_err(ImageError::io("write", &rec_path))?;
    let dir = File::open(work.path()).map_err(ImageError::io("open", work.path()))?;
    nix::unistd::syncfs(dir.as_fd()).map_err(|e| ImageError::Io {
        step: "sync layer",
        path: work.path().to_path_buf(),
        source: e.into(),
    })?;
    match fs::rename(work.path(), &dest) {
        Ok(()) => {
            work.keep();
            sync_dir(&dest);
            Ok(())
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => Ok(()),
        Err(e) => Err(ImageError::Io {
            step: "store layer",
            path: dest,
            source: e,
        }),
    }
}

/// Reads a layer's record.
pub(super) fn read_layer(layout: &Layout, diff_id: &str) -> Result<LayerRecord, ImageError> {
    let path = layout.layer(diff_id)?.join("layer.json");
    let data = fs::read(&path).map_err(ImageError::io("read layer record", &path))?;
    serde_json::from_slice(&data).map_err(|source| ImageError::Json {
        what: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, Layout) {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: d.path().to_path_buf(),
        };
        for p in [layout.blobs(), layout.layers(), layout.tmp()] {
            fs::create_dir_all(p).unwrap();
        }
        (d, layout)
    }

    fn tar_with(data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", data).unwrap();
        b.into_inner().unwrap()
    }

    fn empty(p: &Path) -> bool {
        fs::read_dir(p).unwrap().next().is_none()
    }

    #[test]
    fn digest_and_size_mismatches_leave_nothing() {
        let (_d, layout) = layout();
        let tar = tar_with(b"content");
        let wrong = format!("sha256:{}", "0".repeat(64));
        let cases = [
            Expect {
                digest: Some(&wrong),
                ..Expect::default()
            },
            Expect {
                diff_id: Some(&wrong),
                ..Expect::default()
            },
            Expect {
                size: Some(1),
                ..Expect::default()
            },
        ];
        for expect in cases {
            let err = add_layer(&layout, &tar[..], expect, "layer f").unwrap_err();
            assert!(
                matches!(
                    err,
                    ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. }
                ),
                "{err:?}"
            );
            assert!(err.to_string().starts_with("layer f"), "{err}");
            for p in [layout.blobs(), layout.layers(), layout.tmp()] {
                assert!(empty(&p), "{} not empty", p.display());
            }
        }
        let err = put_blob_stream(&layout, &b"abc"[..], cases[0], "blob").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }));
        assert!(empty(&layout.blobs()) && empty(&layout.tmp()));
    }

    #[test]
    fn matching_digests_are_accepted_and_layers_deduplicated() {
        let (_d, layout) = layout();
        let tar = tar_with(b"content");
        let digest = super::super::digest::sha256_digest(&tar);
        let expect = Expect {
            digest: Some(&digest),
            diff_id: Some(&digest),
            size: Some(tar.len() as u64),
        };
        let a = add_layer(&layout, &tar[..], expect, "l").unwrap();
        let b = add_layer(&layout, &tar[..], expect, "l").unwrap();
        assert_eq!(a.record, b.record);
        assert_eq!(a.record.tar_size, tar.len() as u64);
        assert_eq!(read_layer(&layout, &digest).unwrap(), a.record);
        assert_eq!(
            fs::read(layout.layer(&digest).unwrap().join("root/f")).unwrap(),
            b"content"
        );
        assert!(empty(&layout.tmp()));
        assert!(layout.blob("sha256:../../etc").is_err());
    }
}
