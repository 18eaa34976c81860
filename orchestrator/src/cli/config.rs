//! `berth config`: load the project and print its canonical model (fully interpolated and
//! normalized, every short syntax in long form), like `docker compose config`; or one of its
//! lists (`--services`, `--volumes`, `--networks`, `--profiles`, `--images`) or per-service
//! configuration hashes (`--hash`). Warnings go to stderr; `-q` only validates.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use super::ProjectArgs;
use crate::compose::{self, LoadOptions, Project};
use crate::graph::ServiceGraph;

/// Output format of the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML (default).
    #[default]
    Yaml,
    /// JSON.
    Json,
}

/// Flags of `berth config`.
#[derive(Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// Only these services (and what they depend on).
    #[arg(value_name = "SERVICE")]
    pub services_filter: Vec<String>,
    /// Output format of the model.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line.
    #[arg(long = "profiles")]
    pub list_profiles: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print "SERVICE HASH" lines for these services (comma-separated, or "*" for all).
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Only validate; print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not interpolate variables.
    #[arg(long)]
    pub no_interpolate: bool,
    /// Pin image tags to digests (not supported: berth has no registry client).
    #[arg(long)]
    pub resolve_image_digests: bool,
    /// Write the output to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Runs `berth config`.
pub fn run(project: &ProjectArgs, args: &ConfigArgs) -> anyhow::Result<u8> {
    if args.resolve_image_digests {
        bail!("config: --resolve-image-digests is not supported yet: berth has no registry client");
    }
    let mut opts = LoadOptions::from_args(project).context("config: read the current directory")?;
    opts.no_interpolate = args.no_interpolate;
    let loaded = compose::load(&opts)?;
    let mut stderr = std::io::stderr().lock();
    for w in &loaded.warnings {
        let _ = writeln!(stderr, "warning: {w}");
    }
    if args.quiet {
        return Ok(0);
    }
    let text = render(loaded, args)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("config: write {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("config: write to stdout")?;
        }
    }
    Ok(0)
}

fn lines<I: IntoIterator<Item = String>>(items: I) -> String {
    items.into_iter().map(|s| s + "\n").collect()
}

/// The text `berth config` prints for a loaded project.
pub fn render(mut project: Project, args: &ConfigArgs) -> anyhow::Result<String> {
    if !args.services_filter.is_empty() {
        let graph = ServiceGraph::new(&project)?;
        let keep = graph.selection(&args.services_filter, false)?;
        project.services.retain(|name, _| keep.contains(name));
    }
    if args.services {
        let graph = ServiceGraph::new(&project)?;
        return Ok(lines(graph.start_order().into_iter().flatten()));
    }
    if args.volumes {
        return Ok(lines(project.volumes.keys().cloned()));
    }
    if args.networks {
        return Ok(lines(project.networks.keys().cloned()));
    }
    if args.list_profiles {
        return Ok(lines(project.all_profiles()));
    }
    if args.images {
        return Ok(lines(project.images()));
    }
    if let Some(which) = &args.hash {
        let wanted: BTreeSet<&str> = which.split(',').map(str::trim).collect();
        let mut out = Vec::new();
        for name in wanted.iter().filter(|w| **w != "*") {
            if !project.services.contains_key(*name) {
                bail!("config: --hash: no such service: `{name}`");
            }
        }
        for (name, svc) in &project.services {
            if wanted.contains("*") || wanted.contains(name.as_str()) {
                out.push(format!("{name} {}", svc.config_hash()));
            }
        }
        return Ok(lines(out));
    }
    let value = project
        .to_compose_value(!args.no_interpolate)
        .context("config: serialize the project")?;
    Ok(match args.format {
        Format::Yaml => serde_yaml::to_string(&value).context("config: render YAML")?,
        Format::Json => serde_json::to_string_pretty(&value).context("config: render JSON")? + "\n",
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::super::Cli::command().debug_assert();
    }
}
