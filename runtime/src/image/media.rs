//! Media types of manifests, indexes, configs and layers (OCI and Docker v2 schema 2), the
//! conversion of a Docker manifest to OCI, and the choice of a platform from an index.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::config::host_arch;
use super::ImageError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Whether `mt` names an image index or a manifest list.
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

/// Whether `mt` names a single-image manifest.
pub fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// The media type of a manifest document: the one it declares, else `fallback` (the
/// `Content-Type` it came with) when that names a manifest or index, else what its shape says
/// (an index has `manifests`, a manifest `layers`; OCI makes the field optional).
pub fn sniff(doc: &[u8], fallback: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe = serde_json::from_slice::<Probe>(doc).ok();
    if let Some(mt) = probe
        .as_ref()
        .and_then(|p| p.media_type.clone())
        .filter(|m| !m.is_empty())
    {
        return mt;
    }
    let fallback = fallback.split(';').next().unwrap_or("").trim();
    if is_index(fallback) || is_manifest(fallback) {
        return fallback.to_string();
    }
    match probe {
        Some(Probe {
            manifests: Some(_), ..
        }) => OCI_INDEX.to_string(),
        Some(Probe {
            layers: Some(_), ..
        }) => OCI_MANIFEST.to_string(),
        _ => fallback.to_string(),
    }
}

/// The `Accept` header for manifests: every type berth can use.
pub fn manifest_accept() -> String {
    [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ")
}

/// The OCI layer media type of a Docker (or OCI) one.
fn oci_layer_type(mt: &str) -> &str {
    match mt {
        DOCKER_LAYER_GZIP | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            OCI_LAYER_GZIP
        }
        DOCKER_LAYER => OCI_LAYER,
        other => other,
    }
}

/// The Docker layer media type of an OCI (or Docker) one; `None` for zstd, which Docker v2
/// schema 2 has no type for.
pub fn docker_layer_type(mt: &str) -> Option<&str> {
    match mt {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(DOCKER_LAYER_GZIP),
        OCI_LAYER | DOCKER_LAYER => Some(DOCKER_LAYER),
        _ => None,
    }
}

/// The manifest `doc` as an OCI image manifest: returned as is when it already is one,
/// otherwise rewritten with OCI media types (same config and layer blobs).
pub fn to_oci_manifest(doc: &[u8], media_type: &str) -> Result<Vec<u8>, ImageError> {
    if media_type == OCI_MANIFEST {
        return Ok(doc.to_vec());
    }
    let mut m = parse_manifest(doc)?;
    m.set_media_type(Some(MediaType::ImageManifest));
    let mut config = m.config().clone();
    config.set_media_type(MediaType::ImageConfig);
    m.set_config(config);
    for l in m.layers_mut() {
        let mt = oci_layer_type(l.media_type().as_ref()).to_string();
        l.set_media_type(MediaType::from(mt.as_str()));
    }
    serde_json::to_vec(&m).map_err(|source| ImageError::Json {
        what: "oci manifest".to_string(),
        source,
    })
}

/// Parses an image manifest (OCI or Docker v2 schema 2).
pub fn parse_manifest(doc: &[u8]) -> Result<ImageManifest, ImageError> {
    ImageManifest::from_reader(doc).map_err(|e| ImageError::Invalid {
        what: "image manifest".to_string(),
        reason: e.to_string(),
    })
}

/// Parses an image index or manifest list.
pub fn parse_index(doc: &[u8]) -> Result<ImageIndex, ImageError> {
    ImageIndex::from_reader(doc).map_err(|e| ImageError::Invalid {
        what: "image index".to_string(),
        reason: e.to_string(),
    })
}

/// The manifest for this host (linux and our architecture) in an index; a single entry
/// without platform is taken as it is.
pub fn pick_platform(index: &ImageIndex) -> Result<&Descriptor, ImageError> {
    let arch = host_arch();
    let matching = index.manifests().iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
    });
    if let Some(d) = matching {
        return Ok(d);
    }
    match index.manifests().as_slice() {
        [only] if only.platform().is_none() => Ok(only),
        _ => Err(ImageError::Unsupported {
            what: "image platform",
            value: format!("no manifest for linux/{arch} in the image index"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_manifest_becomes_oci() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","size":7,"digest":"{D}"}},
            "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":9,"digest":"{D}"}}]}}"#
        );
        assert_eq!(sniff(doc.as_bytes(), ""), DOCKER_MANIFEST);
        let oci = to_oci_manifest(doc.as_bytes(), DOCKER_MANIFEST).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&oci).unwrap();
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(v["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(v["layers"][0]["digest"], D);
    }

    #[test]
    fn picks_linux_host_arch() {
        let doc = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{D}","platform":{{"os":"linux","architecture":"arm64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","size":2,"digest":"{D}","platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
            host_arch()
        );
        assert_eq!(sniff(doc.as_bytes(), ""), OCI_INDEX);
        let idx = parse_index(doc.as_bytes()).unwrap();
        assert_eq!(pick_platform(&idx).unwrap().size(), 2);
        let only_arm = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{D}","platform":{{"os":"linux","architecture":"s390x"}}}}]}}"#
        );
        assert!(pick_platform(&parse_index(only_arm.as_bytes()).unwrap()).is_err());
    }
}
