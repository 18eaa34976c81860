//! The `berth` command line: global flags, the command tree and dispatch; one file per command.

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// berth: compose-style multi-container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    /// State root: a fully separate engine and state per root.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that select a compose project (Docker Compose's global flags).
#[derive(Debug, Clone, Default, Args)]
pub struct ProjectArgs {
    /// Compose file(s); repeatable. Default: compose.yaml etc. in the working directory.
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Profiles to enable; repeatable.
    #[arg(long = "profile", global = true)]
    pub profiles: Vec<String>,
    /// Alternative environment file(s).
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// Project directory (default: the first compose file's directory).
    #[arg(long = "project-directory", global = true)]
    pub project_directory: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format.
    Config(config::ConfigArgs),
}

/// Parses the command line, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Config(args) => config::run(&cli.project, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(1)
        }
    }
}
