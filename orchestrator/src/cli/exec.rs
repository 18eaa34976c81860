//! `berth exec SERVICE CMD...`: run a command in a running replica of a service (`--index N`,
//! default 1), exit code passed through.

use std::io::Write;
use std::path::Path;

use clap::Args;
use hyper::Method;

use super::{ps, ProjectArgs};
use crate::api::{self, ContainerInfo, ExecOptions};
use crate::client::Client;
use crate::engine::translate::{NUMBER, SERVICE};

const NONE: Option<&()> = None;

/// Flags of `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Replica number.
    #[arg(long, default_value_t = 1)]
    index: u32,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short, long = "workdir")]
    workdir: Option<String>,
    /// Accepted for compatibility: berth's exec never allocates a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

/// Runs `berth exec`.
pub async fn run(root: &Path, project: &ProjectArgs, args: ExecArgs) -> anyhow::Result<u8> {
    let name = ps::project_name(project)?;
    let client = Client::connect(root).await?;
    let list: Vec<ContainerInfo> = client
        .call(Method::GET, &format!("/projects/{name}/ps"), NONE)
        .await?;
    let label = |c: &ContainerInfo, k: &str| c.config.labels.get(k).cloned().unwrap_or_default();
    let Some(target) = list
        .iter()
        .find(|c| label(c, SERVICE) == args.service && label(c, NUMBER) == args.index.to_string())
    else {
        let mut services: Vec<String> = list.iter().map(|c| label(c, SERVICE)).collect();
        services.dedup();
        if services.contains(&args.service) {
            anyhow::bail!(
                "service {:?} has no replica {} (see `berth ps`)",
                args.service,
                args.index
            );
        }
        anyhow::bail!(
            "no such service: {:?}; the services of project {name} are: {}",
            args.service,
            services.join(", ")
        );
    };
    let opts = ExecOptions {
        cmd: args.cmd,
        env: args.env,
        working_dir: args.workdir,
        user: args.user,
    };
    let code = client
        .stream(
            Method::POST,
            &format!("/containers/{}/exec", target.id),
            Some(&opts),
            |s, d| {
                if s == api::STDERR {
                    let _ = std::io::stderr().write_all(d);
                } else {
                    let _ = std::io::stdout().write_all(d);
                }
            },
        )
        .await?;
    Ok(code.unwrap_or(255).clamp(0, 255) as u8)
}
