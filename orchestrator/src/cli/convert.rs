//! `berth convert`: load the project like `up` does and print Kubernetes manifests (YAML
//! documents separated by `---`) or write one file per object into a directory. Warnings about
//! what cannot be expressed go to stderr.
//!
//! In a directory each object is `<NN>-<kind>-<name>.yaml`, `NN` its kind's place in apply
//! order, so `kubectl apply -f DIR` creates what others refer to first. Files of that form left
//! by an earlier run for objects that no longer exist are removed, so the directory diffs
//! cleanly in git; other files are left alone.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::ProjectArgs;
use crate::compose::{self, LoadOptions};
use crate::convert::{self, Object, Options, ServiceType};

/// Target platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Kubernetes manifests.
    #[default]
    Kubernetes,
}

/// Flags of `berth convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Target platform.
    #[arg(long, value_enum, default_value_t = Target::Kubernetes)]
    pub to: Target,
    /// Output: "-" for one YAML stream on stdout, or a directory to get one file per object
    /// (`<NN>-<kind>-<name>.yaml`, NN = apply order).
    #[arg(short, long, default_value = "-")]
    pub output: String,
    /// Namespace of every object, created by the manifests (default: kubectl's current
    /// namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Type of the Services carrying published ports.
    #[arg(long, value_enum, default_value_t = ServiceType::ClusterIp)]
    pub service_type: ServiceType,
    /// Storage class of volume claims (default: the cluster's default class).
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Size of volume claims without an x-kubernetes.size.
    #[arg(long, default_value = "1Gi")]
    pub volume_size: String,
    /// Mount bind mounts as hostPath volumes instead of refusing them.
    #[arg(long)]
    pub allow_hostpath: bool,
}

/// Runs `berth convert`.
pub fn run(project: &ProjectArgs, args: &ConvertArgs) -> anyhow::Result<u8> {
    let opts = LoadOptions::from_args(project).context("convert: read the current directory")?;
    let loaded = compose::load(&opts)?;
    let mut stderr = std::io::stderr().lock();
    for w in &loaded.warnings {
        let _ = writeln!(stderr, "warning: {w}");
    }
    let options = Options {
        namespace: args.namespace.clone(),
        service_type: args.service_type,
        storage_class: args.storage_class.clone(),
        volume_size: args.volume_size.clone(),
        allow_hostpath: args.allow_hostpath,
    };
    let out = convert::convert(&loaded, &options)?;
    for w in &out.warnings {
        let _ = writeln!(stderr, "warning: {w}");
    }
    if args.output == "-" {
        let text = out.to_yaml()?;
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("convert: write stdout")?;
        return Ok(0);
    }
    let dir = PathBuf::from(&args.output);
    std::fs::create_dir_all(&dir).with_context(|| format!("convert: create {}", dir.display()))?;
    let written: BTreeSet<String> = out.objects.iter().map(Object::file_name).collect();
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("convert: list {}", dir.display()))?;
    for entry in entries {
        let name = entry
            .with_context(|| format!("convert: list {}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if Object::is_file_name(&name) && !written.contains(name.as_ref()) {
            let path = dir.join(name.as_ref());
            std::fs::remove_file(&path)
                .with_context(|| format!("convert: remove stale {}", path.display()))?;
        }
    }
    for o in &out.objects {
        let path = dir.join(o.file_name());
        std::fs::write(&path, o.to_yaml()?)
            .with_context(|| format!("convert: write {}", path.display()))?;
    }
    Ok(0)
}
