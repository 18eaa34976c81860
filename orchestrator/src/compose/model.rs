//! The canonical project model: what the loader produces and every later command consumes.
//!
//! Everything is in long form (no short syntax survives normalization), names are resolved
//! (`<project>_<key>` for networks and volumes), relative paths are absolute, durations and byte
//! sizes are typed. Maps are `BTreeMap`s so that serialization is deterministic. The service side
//! of the model lives in [`super::service`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::error::Diagnostic;
use super::service::Service;

/// `x-*` extension keys and their values, kept as written.
pub type Extensions = BTreeMap<String, Value>;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A loaded, validated compose project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Project name (normalised: lowercase letters, digits, `-` and `_`).
    pub name: String,
    /// Project directory: base of relative paths, location of `.env`.
    pub working_dir: PathBuf,
    /// Enabled services (profiles applied).
    pub services: BTreeMap<String, Service>,
    /// Networks, including the implicit `default` network when a service uses it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    /// Named volumes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Configs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Config>,
    /// Secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Secret>,
    /// Top-level `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
    /// Services whose profiles are not enabled.
    #[serde(skip)]
    pub disabled_services: BTreeMap<String, Service>,
    /// The compose files loaded, in order (`-f` files, override files; not includes).
    #[serde(skip)]
    pub files: Vec<PathBuf>,
    /// Warnings found while loading (unset variables, obsolete keys); the CLI prints them.
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl Project {
    /// Every profile named by a service, enabled or not, sorted.
    pub fn all_profiles(&self) -> BTreeSet<String> {
        self.services
            .values()
            .chain(self.disabled_services.values())
            .flat_map(|s| s.profiles.iter().cloned())
            .collect()
    }

    /// The model as a compose document: what `berth config` prints. It loads back as a
    /// compose file to the same model: `working_dir` (not a compose key) is left out and, when
    /// `escape_dollars` is set (the values were interpolated), every `$` in a value is written
    /// `$$` so that loading does not interpolate it again.
    pub fn to_compose_value(&self, escape_dollars: bool) -> Result<Value, serde_yaml::Error> {
        let mut value = serde_yaml::to_value(self)?;
        if let Value::Mapping(map) = &mut value {
            map.shift_remove("working_dir");
        }
        if escape_dollars {
            escape(&mut value);
        }
        Ok(value)
    }

    /// Images the services use, sorted and deduplicated (`berth config --images`).
    pub fn images(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .map(|(name, s)| {
                s.image
                    .clone()
                    .unwrap_or_else(|| format!("{}-{name}", self.name))
            })
            .collect()
    }
}

fn escape(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Sequence(items) => items.iter_mut().for_each(escape),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| escape(v)),
        Value::Tagged(t) => escape(&mut t.value),
        _ => {}
    }
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name on the host: `name:` when given, else `<project>_<key>` (the key when external).
    pub name: String,
    /// Driver; only `bridge` is implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Address management.
    #[serde(default, skip_serializing_if = "Ipam::is_empty")]
    pub ipam: Ipam,
    /// No outside connectivity.
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Created outside the project; never created or removed by berth.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ipam {
    /// Address pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
}

impl Ipam {
    /// Whether no pool is configured.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
    }
}

/// One address pool of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamPool {
    /// Subnet in CIDR notation (`172.20.0.0/24`), validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Gateway address inside the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<std::net::IpAddr>,
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Name on the host: `name:` when given, else `<project>_<key>` (the key when external).
    pub name: String,
    /// Driver; only `local` is implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Created outside the project.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A top-level config: exactly one of file, content, environment, external.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Name: `name:` when given, else `<project>_<key>`.
    pub name: String,
    /// Absolute path of the file holding the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Inline data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Name of the environment variable holding the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Created outside the project.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A top-level secret: exactly one of file, environment, external.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// Name: `name:` when given, else `<project>_<key>`.
    pub name: String,
    /// Absolute path of the file holding the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Name of the environment variable holding the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Created outside the project.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
    /// `x-*` extensions.
    #[serde(flatten)]
    pub extensions: Extensions,
}
