//! The `berth` command line: global flags, the command tree and dispatch; one file per command.

mod attach;
mod build;
mod config;
mod container;
mod convert;
mod cp;
mod down;
mod engine;
mod events;
mod exec;
mod graph;
mod image;
mod image_transfer;
mod lifecycle;
mod logs;
mod meta;
mod network;
mod port;
mod progress;
mod ps;
mod query;
mod registry;
mod run;
mod stats;
mod units;
mod up;
mod volume;

pub use units::parse_bytes;

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
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Profiles to enable; repeatable.
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// Alternative environment file(s).
    #[arg(long = "env-file")]
    pub env_files: Vec<PathBuf>,
    /// Project directory (default: the first compose file's directory).
    #[arg(long = "project-directory")]
    pub project_directory: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format.
    Config(config::ConfigArgs),
    /// Convert the project to Kubernetes manifests.
    Convert(convert::ConvertArgs),
    /// Manage single containers.
    #[command(subcommand)]
    Container(container::ContainerCmd),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Create and start the project's containers, converging to the compose file.
    Up(up::UpArgs),
    /// Stop and remove the project's containers and networks (and volumes with -v).
    Down(down::DownArgs),
    /// Set the number of replicas of services.
    Scale(up::ScaleArgs),
    /// List the project's containers.
    Ps(ps::PsArgs),
    /// Show the project's output.
    Logs(logs::LogsArgs),
    /// List projects.
    Ls(ps::LsArgs),
    /// Run a command in a running replica of a service.
    Exec(exec::ExecArgs),
    /// Print the service dependency graph.
    Graph(graph::GraphArgs),
    /// Stream the project's container events (create, start, die, health, restart...).
    Events(events::EventsArgs),
    /// Show the CPU, memory, network and pids usage of the project's containers.
    Stats(stats::StatsArgs),
    /// Copy files between a service's container and the host.
    Cp(cp::CpArgs),
    /// Build the images of services with `build:`.
    Build(build::BuildArgs),
    /// Run the engine of a root in the foreground (the CLI starts it on demand).
    Engine,
    /// Run a one-off command in a new container of a service.
    Run(run::RunArgs),
    /// Create the services' containers without starting them.
    Create(lifecycle::CreateArgs),
    /// Start the services' existing containers.
    Start(lifecycle::PlainArgs),
    /// Stop the services' containers (kept until `rm` or `down`).
    Stop(lifecycle::StopArgs),
    /// Restart the services' containers in dependency order.
    Restart(lifecycle::StopArgs),
    /// Freeze the services' running containers.
    Pause(lifecycle::PlainArgs),
    /// Thaw the services' paused containers.
    Unpause(lifecycle::PlainArgs),
    /// Send a signal to the services' running containers.
    Kill(lifecycle::KillArgs),
    /// Remove the services' stopped containers.
    Rm(lifecycle::RmArgs),
    /// Show the processes of the services' containers.
    Top(query::TopArgs),
    /// Print the host address a replica's port is published on.
    Port(query::PortArgs),
    /// List the images the project's containers use.
    Images(query::ImagesArgs),
    /// Pull the services' images.
    Pull(registry::TransferArgs),
    /// Push the services' images.
    Push(registry::TransferArgs),
    /// Wait for the services' containers to exit; exit with the last one's code.
    Wait(query::WaitArgs),
    /// Show the berth version.
    Version(meta::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(meta::CompletionArgs),
}

/// Parses the command line, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("__init" | "__exec")) {
        let code = runtime::init::main(&args);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let root = cli.root.clone();
    let result = match cli.command {
        Command::Config(args) => config::run(&cli.project, &args),
        Command::Convert(args) => convert::run(&cli.project, &args),
        Command::Engine => engine::run(&root),
        Command::Container(cmd) => block_on(container::run(&root, cmd)),
        Command::Image(cmd) => block_on(image::run(&root, cmd)),
        Command::Network(cmd) => block_on(network::run(&root, cmd)),
        Command::Volume(cmd) => block_on(volume::run(&root, cmd)),
        Command::Up(args) => block_on(up::run(&root, &cli.project, args)),
        Command::Down(args) => block_on(down::run(&root, &cli.project, args)),
        Command::Scale(args) => block_on(up::scale(&root, &cli.project, args)),
        Command::Ps(args) => block_on(ps::run(&root, &cli.project, args)),
        Command::Logs(args) => block_on(logs::run(&root, &cli.project, args)),
        Command::Ls(args) => block_on(ps::ls(&root, args)),
        Command::Exec(args) => block_on(exec::run(&root, &cli.project, args)),
        Command::Graph(args) => graph::run(&cli.project, &args),
        Command::Events(args) => block_on(events::run(&root, &cli.project, args)),
        Command::Stats(args) => block_on(stats::run(&root, &cli.project, args)),
        Command::Cp(args) => block_on(cp::run(&root, &cli.project, args)),
        Command::Run(args) => block_on(run::run(&root, &cli.project, args)),
        Command::Create(args) => block_on(lifecycle::create(&root, &cli.project, args)),
        Command::Start(args) => block_on(lifecycle::plain(&root, &cli.project, "start", args)),
        Command::Stop(args) => block_on(lifecycle::stop(&root, &cli.project, "stop", args)),
        Command::Restart(args) => block_on(lifecycle::stop(&root, &cli.project, "restart", args)),
        Command::Pause(args) => block_on(lifecycle::plain(&root, &cli.project, "pause", args)),
        Command::Unpause(args) => block_on(lifecycle::plain(&root, &cli.project, "unpause", args)),
        Command::Kill(args) => block_on(lifecycle::kill(&root, &cli.project, args)),
        Command::Rm(args) => block_on(lifecycle::rm(&root, &cli.project, args)),
        Command::Top(args) => block_on(query::top(&root, &cli.project, args)),
        Command::Port(args) => block_on(query::port(&root, &cli.project, args)),
        Command::Images(args) => block_on(query::images(&root, &cli.project, args)),
        Command::Pull(args) => block_on(registry::run(&root, &cli.project, false, args)),
        Command::Push(args) => block_on(registry::run(&root, &cli.project, true, args)),
        Command::Wait(args) => block_on(query::wait(&root, &cli.project, args)),
        Command::Version(args) => meta::version(&args),
        Command::Completion(args) => meta::completion(&args),
        Command::Build(args) => block_on(build::run(&root, &cli.project, args)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<u8>>>(f: F) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("start the async runtime: {e}"))?
        .block_on(f)
}
