//! `berth version` and `berth completion bash|zsh|fish`.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Flags of `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the version number.
    #[arg(long)]
    short: bool,
    /// `pretty` or `json`.
    #[arg(short, long, default_value = "pretty")]
    format: String,
}

/// Flags of `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh or fish (also elvish, powershell).
    shell: Shell,
}

/// Runs `berth version`.
pub fn version(args: &VersionArgs) -> anyhow::Result<u8> {
    let v = env!("CARGO_PKG_VERSION");
    match (args.short, args.format.as_str()) {
        (true, _) => println!("{v}"),
        (false, "json") => println!("{}", serde_json::json!({ "version": v })),
        (false, "pretty") => println!("berth version v{v}"),
        (false, f) => anyhow::bail!("unknown --format {f:?}: use pretty or json"),
    }
    Ok(0)
}

/// Runs `berth completion SHELL`: the completion script on stdout.
pub fn completion(args: &CompletionArgs) -> anyhow::Result<u8> {
    let mut cmd = super::Cli::command();
    // Into a buffer first: writing into a closed pipe is not a panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "berth", &mut script);
    let _ = std::io::stdout().write_all(&script);
    Ok(0)
}
