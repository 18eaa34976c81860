//! `berth graph`: the project's dependency graph as Graphviz dot or Mermaid.

use clap::Args;

use super::{up, ProjectArgs};
use crate::graph::ServiceGraph;

/// Flags of `berth graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// `dot` or `mermaid`.
    #[arg(long, default_value = "dot")]
    format: String,
}

/// Runs `berth graph`.
pub fn run(project: &ProjectArgs, args: &GraphArgs) -> anyhow::Result<u8> {
    let p = up::load(project)?;
    let g = ServiceGraph::new(&p)?;
    match args.format.as_str() {
        "dot" => print!("{}", g.to_dot()),
        "mermaid" => print!("{}", g.to_mermaid()),
        f => anyhow::bail!("unknown --format {f:?}: use dot or mermaid"),
    }
    Ok(0)
}
