//! The build cache: one small record per step under `<store>/buildcache/HEX.json`, keyed by
//! the sha256 of the parent step's key, the instruction, the build arguments in scope and the
//! content digest of copied files. A record keeps the step's time and, for RUN, COPY and ADD,
//! the layer it made; a hit whose layer was garbage-collected is a miss.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::layer::{write_atomic, Layout};
use super::super::store::BlobRef;
use super::super::ImageStore;

/// The layer a step made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub diff_id: String,
    pub blob: BlobRef,
}

/// A cached step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the step first ran (RFC 3339), so a cached rebuild makes the same image.
    pub created: String,
    #[serde(default)]
    pub layer: Option<CachedLayer>,
}

/// The key of a step.
pub fn key(parent: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn path(layout: &Layout, key: &str) -> PathBuf {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    layout.root.join("buildcache").join(format!("{hex}.json"))
}

/// The cached step `key`, if its layer is still in the store.
pub fn get(store: &ImageStore, key: &str) -> Option<Entry> {
    let data = fs::read(path(&store.layout, key)).ok()?;
    let entry: Entry = serde_json::from_slice(&data).ok()?;
    match &entry.layer {
        Some(l) if !store.has_layer_blob(&l.diff_id, &l.blob.digest) => None,
        _ => Some(entry),
    }
}

/// Records step `key` (best effort: a cache that cannot be written only costs a rebuild).
pub fn put(store: &ImageStore, key: &str, entry: &Entry) {
    let p = path(&store.layout, key);
    if let Some(dir) = p.parent() {
        let _ = fs::create_dir_all(dir);
    }
    if let Ok(data) = serde_json::to_vec(entry) {
        if let Err(e) = write_atomic(&store.layout, &p, &data) {
            tracing::debug!(error = %e, "build cache record not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layer_check() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let k = key("sha256:parent", &["ENV A=1", ""]);
        assert_ne!(k, key("sha256:parent", &["ENV A=2", ""]));
        assert_ne!(key("p", &["ab", "c"]), key("p", &["a", "bc"]));
        assert!(get(&store, &k).is_none());
        let e = Entry {
            created: "2024-01-01T00:00:00Z".into(),
            layer: None,
        };
        put(&store, &k, &e);
        assert_eq!(get(&store, &k), Some(e));
        let missing = Entry {
            created: "x".into(),
            layer: Some(CachedLayer {
                diff_id: format!("sha256:{}", "a".repeat(64)),
                blob: BlobRef {
                    media_type: "t".into(),
                    digest: format!("sha256:{}", "b".repeat(64)),
                    size: 1,
                },
            }),
        };
        put(&store, &k, &missing);
        assert!(get(&store, &k).is_none());
    }
}
