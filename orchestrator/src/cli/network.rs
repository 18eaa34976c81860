//! `berth network ...`: bridge networks, with Docker's commands and output.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Subcommand;
use hyper::Method;
use netd::{Network, NetworkSpec};

use crate::client::enc;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network: a Linux bridge with its subnet, DNS server and firewall rules.
    Create {
        /// Subnet in CIDR form (default: the next free /24 of 10.89.0.0/16).
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first address).
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// No egress and no published ports.
        #[arg(long)]
        internal: bool,
        /// Driver: only `bridge`.
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// KEY=VALUE; repeatable.
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// `json` for one JSON array.
        #[arg(long)]
        format: Option<String>,
        /// Only the ids.
        #[arg(short, long)]
        quiet: bool,
        /// Full ids.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show networks as JSON, with their containers.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while containers are attached).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every network no container is attached to.
    Prune {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

const NONE: Option<&()> = None;

/// Runs a `berth network` command.
pub async fn run(root: &Path, cmd: NetworkCmd) -> anyhow::Result<u8> {
    let client = Client::connect(root).await?;
    match cmd {
        NetworkCmd::Create {
            subnet,
            gateway,
            internal,
            driver,
            label,
            name,
        } => {
            if driver != "bridge" {
                bail!("unsupported network driver {driver:?}: berth networks are bridges");
            }
            let subnet = subnet
                .map(|s| {
                    serde_json::from_value(serde_json::Value::String(s.clone())).with_context(
                        || format!("invalid --subnet {s:?}: expected a CIDR such as 10.90.0.0/24"),
                    )
                })
                .transpose()?;
            let spec = NetworkSpec {
                name,
                subnet,
                gateway,
                internal,
                labels: labels(&label)?,
            };
            let net: Network = client
                .call(Method::POST, "/networks/create", Some(&spec))
                .await?;
            println!("{}", net.id);
            Ok(0)
        }
        NetworkCmd::Ls {
            format,
            quiet,
            no_trunc,
        } => {
            let list: Vec<Network> = client.call(Method::GET, "/networks", NONE).await?;
            match format.as_deref() {
                Some("json") => println!("{}", serde_json::to_string(&list)?),
                Some(f) => bail!("unknown --format {f:?}: use json"),
                None => print_table(&list, quiet, no_trunc),
            }
            Ok(0)
        }
        NetworkCmd::Inspect { networks } => {
            let mut out = Vec::new();
            for n in &networks {
                let net: serde_json::Value = client
                    .call(Method::GET, &format!("/networks/{}", enc(n)), NONE)
                    .await?;
                out.push(net);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        NetworkCmd::Rm { networks } => {
            let mut code = 0;
            for n in &networks {
                match client
                    .call::<serde_json::Value>(
                        Method::DELETE,
                        &format!("/networks/{}", enc(n)),
                        NONE,
                    )
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berth: {e:#}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCmd::Prune { force } => {
            if !force && !confirm()? {
                return Ok(0);
            }
            let removed: Vec<String> = client.call(Method::POST, "/networks/prune", NONE).await?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}

fn labels(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !s.is_empty() => Ok((s.clone(), String::new())),
            _ => bail!("invalid label {s:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Docker's prune prompt; anything but y/yes (or end of input) declines.
fn confirm() -> anyhow::Result<bool> {
    print!(
        "WARNING! This will remove all networks not used by at least one container.\n\
         Are you sure you want to continue? [y/N] "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

fn print_table(list: &[Network], quiet: bool, no_trunc: bool) {
    let id = |n: &Network| {
        if no_trunc {
            n.id.clone()
        } else {
            n.id.chars().take(12).collect()
        }
    };
    if quiet {
        for n in list {
            println!("{}", id(n));
        }
        return;
    }
    println!(
        "{:<12}  {:<20}  {:<8}  {:<18}  INTERNAL",
        "NETWORK ID", "NAME", "DRIVER", "SUBNET"
    );
    for n in list {
        println!(
            "{:<12}  {:<20}  {:<8}  {:<18}  {}",
            id(n),
            n.name,
            "bridge",
            n.subnet.to_string(),
            n.internal
        );
    }
}
