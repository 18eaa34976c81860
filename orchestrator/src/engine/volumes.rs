//! Named volumes: directories under `<root>/volumes/<name>/_data` with a `meta.json` (labels,
//! creation time), shared by every container that mounts them. A new volume is populated from
//! the image's content at the mount point the first time a container mounts it, as Docker does.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EngineError;

/// A volume as `volume ls`/`inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    pub mountpoint: PathBuf,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created: String,
    /// Whether the image content was copied in already (or the volume was used once).
    #[serde(default)]
    pub populated: bool,
}

fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name)
}

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn io(step: &str, name: &str) -> impl FnOnce(std::io::Error) -> EngineError {
    let msg = format!("volume {name}: {step}");
    move |e| EngineError::Internal(format!("{msg}: {e}"))
}

/// Creates a volume; an existing one is returned as it is.
pub fn create(
    root: &Path,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<VolumeInfo, EngineError> {
    if !valid(name) {
        return Err(EngineError::BadRequest(format!(
            "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if let Ok(v) = get(root, name) {
        return Ok(v);
    }
    let d = dir(root, name);
    fs::create_dir_all(d.join("_data")).map_err(io("create", name))?;
    let info = VolumeInfo {
        name: name.to_string(),
        mountpoint: d.join("_data"),
        labels,
        created: runtime::logs::now_rfc3339(),
        populated: false,
    };
    runtime::fsutil::write_json(&d.join("meta.json"), &info)
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(info)
}

/// One volume.
pub fn get(root: &Path, name: &str) -> Result<VolumeInfo, EngineError> {
    runtime::fsutil::read_json(&dir(root, name).join("meta.json"))
        .map_err(|_| EngineError::NotFound(format!("no such volume: {name}")))
}

/// Every volume, by name.
pub fn list(root: &Path) -> Vec<VolumeInfo> {
    let mut out: Vec<VolumeInfo> = fs::read_dir(root.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| get(root, &e.file_name().to_string_lossy()).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Removes a volume and its data; a missing volume is success.
pub fn remove(root: &Path, name: &str) -> Result<(), EngineError> {
    match fs::remove_dir_all(dir(root, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", name)(e)),
        _ => Ok(()),
    }
}

/// Copies the image's content at `target` into the volume the first time it is mounted, if
/// the volume is empty. `layers` are the image's layer dirs, bottom first.
pub fn populate(
    root: &Path,
    name: &str,
    layers: &[PathBuf],
    target: &str,
) -> Result<(), EngineError> {
    let mut info = get(root, name)?;
    if info.populated {
        return Ok(());
    }
    let data = info.mountpoint.clone();
    let empty = fs::read_dir(&data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if empty {
        let rel = target.trim_start_matches('/');
        // Lower layers first, upper layers overwrite them.
        for layer in layers {
            let src = layer.join(rel);
            if src.is_dir() && !src.is_symlink() {
                copy_tree(&src, &data).map_err(io("populate from the image", name))?;
            }
        }
    }
    info.populated = true;
    runtime::fsutil::write_json(&dir(root, name).join("meta.json"), &info)
        .map_err(|e| EngineError::Internal(e.to_string()))
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".wh.") {
            continue;
        }
        if meta.file_type().is_symlink() {
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if meta.is_dir() {
            fs::create_dir_all(&to)?;
            copy_tree(&from, &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if meta.is_file() {
            fs::copy(&from, &to)?;
        } else {
            continue;
        }
        lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_populate_remove() {
        let root = tempfile::tempdir().unwrap();
        let v = create(root.path(), "p_data", [("k".into(), "v".into())].into()).unwrap();
        assert!(v.mountpoint.ends_with("volumes/p_data/_data"));
        assert_eq!(
            create(root.path(), "p_data", BTreeMap::new())
                .unwrap()
                .labels
                .len(),
            1
        );
        assert!(create(root.path(), "../x", BTreeMap::new()).is_err());
        let layer = tempfile::tempdir().unwrap();
        fs::create_dir_all(layer.path().join("srv/www")).unwrap();
        fs::write(layer.path().join("srv/www/index.html"), "hi").unwrap();
        populate(root.path(), "p_data", &[layer.path().to_path_buf()], "/srv").unwrap();
        assert_eq!(
            fs::read_to_string(v.mountpoint.join("www/index.html")).unwrap(),
            "hi"
        );
        fs::remove_file(v.mountpoint.join("www/index.html")).unwrap();
        populate(root.path(), "p_data", &[layer.path().to_path_buf()], "/srv").unwrap();
        assert!(
            !v.mountpoint.join("www/index.html").exists(),
            "populated once only"
        );
        assert_eq!(list(root.path()).len(), 1);
        remove(root.path(), "p_data").unwrap();
        remove(root.path(), "p_data").unwrap();
        assert!(list(root.path()).is_empty());
    }
}
