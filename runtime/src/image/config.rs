//! Image configuration JSON: the OCI image config with Docker's extensions (healthcheck, shell,
//! onbuild), with the field names both formats use on disk and on the wire.
//!
//! [`ConfigFile`] is the whole config blob whose sha256 is the image id; [`ImageConfig`] is its
//! `config` object, the part the engine turns into a container specification.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The runtime defaults an image gives its containers (`config` in the image config JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `user`, `uid`, `user:group` or `uid:gid`.
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `KEY=VALUE` entries.
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "StopSignal",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    /// `PORT/PROTO` entries, e.g. `80/tcp`.
    #[serde(
        rename = "ExposedPorts",
        default,
        with = "object_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// Container paths that get an anonymous volume.
    #[serde(
        rename = "Volumes",
        default,
        with = "object_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    /// The shell of the shell form of RUN, CMD and ENTRYPOINT (Dockerfile `SHELL`).
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Dockerfile `ONBUILD` triggers.
    #[serde(
        rename = "OnBuild",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
}

/// Docker's container health check (`Healthcheck` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(
        rename = "Test",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        rename = "Interval",
        default,
        with = "nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(
        rename = "Timeout",
        default,
        with = "nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(
        rename = "StartPeriod",
        default,
        with = "nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<Duration>,
    #[serde(
        rename = "StartInterval",
        default,
        with = "nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval: Option<Duration>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// The whole image config blob (OCI `application/vnd.oci.image.config.v1+json`, which Docker's
/// `application/vnd.docker.container.image.v1+json` extends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ImageConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
}

/// The uncompressed layer digests, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of how the image was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The GOARCH name of the architecture this binary runs on (`amd64`, `arm64`, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `null` reads as the type's default (Docker writes `"Env": null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `""` and `null` read as `None`.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// A set stored as a JSON object whose values are `{}` (`"ExposedPorts": {"80/tcp": {}}`).
mod object_set {
    use super::*;

    pub fn serialize<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, BTreeMap<(), ()>> =
            set.iter().map(|k| (k.as_str(), BTreeMap::new())).collect();
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let map = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
        Ok(map.unwrap_or_default().into_keys().collect())
    }
}

/// A duration stored as integer nanoseconds; 0 reads as unset.
mod nanos {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let n = Option::<i64>::deserialize(d)?;
        Ok(n.filter(|&n| n > 0)
            .map(|n| Duration::from_nanos(n.unsigned_abs())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config_with_nulls_and_extensions() {
        let json = r#"{
          "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
          "container_config": {"Hostname": "x"},
          "config": {
            "User": "", "Env": ["PATH=/bin"], "Entrypoint": null, "Cmd": ["sh"],
            "WorkingDir": "", "Labels": null, "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3},
            "OnBuild": null
          },
          "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
          "history": [{"created_by": "/bin/sh -c #(nop) CMD [\"sh\"]", "empty_layer": true}]
        }"#;
        let c: ConfigFile = serde_json::from_str(json).unwrap();
        assert_eq!(c.config.user.as_deref(), Some(""));
        assert_eq!(c.config.env, vec!["PATH=/bin"]);
        assert_eq!(c.config.entrypoint, None);
        assert_eq!(c.config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.config.working_dir, None);
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(c.config.exposed_ports.contains("53/udp"));
        assert!(c.config.volumes.contains("/data"));
        let hc = c.config.healthcheck.as_ref().unwrap();
        assert_eq!(hc.interval, Some(Duration::from_secs(30)));
        assert_eq!(hc.retries, Some(3));
        assert_eq!(c.rootfs.diff_ids, vec!["sha256:aa"]);
        assert!(c.history[0].empty_layer);
    }

    #[test]
    fn serialises_with_docker_names() {
        let cfg = ImageConfig {
            exposed_ports: ["80/tcp".to_string()].into(),
            healthcheck: Some(Healthcheck {
                test: vec!["NONE".into()],
                timeout: Some(Duration::from_millis(1500)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&cfg).unwrap();
        assert_eq!(v["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(
            v["Healthcheck"]["Timeout"],
            serde_json::json!(1_500_000_000u64)
        );
        assert!(v.get("Env").is_none());
        let back: ImageConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, cfg);
    }
}
