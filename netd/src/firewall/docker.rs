//! Coexistence with Docker: while Docker's `DOCKER-USER` chain exists, a jump from it to our
//! chain `BERTH-<root id>` accepts traffic in and out of our bridges, so Docker's FORWARD policy
//! of DROP does not cut berth's bridged or routed traffic.
//!
//! Uses the `iptables` tool Docker itself uses (legacy or nft backend alike). Only our chain and
//! the single jump to it are ever created or removed; Docker's rules stay as they are.

use std::io;
use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tracing::debug;

/// Docker's chain for user rules, evaluated first in its FORWARD chain.
const DOCKER_USER: &str = "DOCKER-USER";

/// Errors of managing the coexistence chain.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("run {cmd}")]
    Spawn {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
}

/// Our chain in Docker's filter table.
#[derive(Debug, Clone)]
pub(crate) struct DockerUser {
    chain: String,
}

impl DockerUser {
    pub(crate) fn new(chain: String) -> Self {
        Self { chain }
    }

    pub(crate) fn chain(&self) -> &str {
        &self.chain
    }

    /// Accepts traffic of exactly `bridges`; removes our chain when `bridges` is empty or
    /// Docker's chain does not exist.
    pub(crate) async fn apply(&self, bridges: &[String]) -> Result<(), DockerError> {
        if bridges.is_empty() || !chain_exists(DOCKER_USER).await? {
            return self.remove().await;
        }
        let mut script = format!("*filter\n:{} - [0:0]\n", self.chain);
        for b in bridges {
            script.push_str(&format!("-A {} -i {b} -j ACCEPT\n", self.chain));
            script.push_str(&format!("-A {} -o {b} -j ACCEPT\n", self.chain));
        }
        script.push_str("COMMIT\n");
        restore(&script).await?;
        let jump = ["-t", "filter", "-C", DOCKER_USER, "-j", &self.chain];
        if !iptables(&jump).await?.status.success() {
            let insert = ["-t", "filter", "-I", DOCKER_USER, "-j", &self.chain];
            checked(&insert).await?;
        }
        debug!(chain = %self.chain, bridges = bridges.len(), "docker-user chain in place");
        Ok(())
    }

    /// Removes the jump and our chain; absent pieces (or no iptables at all) are fine.
    pub(crate) async fn remove(&self) -> Result<(), DockerError> {
        if !chain_exists(&self.chain).await? {
            return Ok(());
        }
        // A jump appears at most once, but a crash between insert and check could leave two.
        for _ in 0..8 {
            let del = ["-t", "filter", "-D", DOCKER_USER, "-j", &self.chain];
            if !iptables(&del).await?.status.success() {
                break;
            }
        }
        checked(&["-t", "filter", "-F", &self.chain]).await?;
        checked(&["-t", "filter", "-X", &self.chain]).await?;
        debug!(chain = %self.chain, "docker-user chain removed");
        Ok(())
    }
}

/// True when the chain exists in the filter table; false also when iptables is not installed.
pub(crate) async fn chain_exists(chain: &str) -> Result<bool, DockerError> {
    match iptables(&["-t", "filter", "-S", chain]).await {
        Ok(out) => Ok(out.status.success()),
        Err(DockerError::Spawn { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn iptables(args: &[&str]) -> Result<Output, DockerError> {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| DockerError::Spawn {
            cmd: format!("iptables {}", args.join(" ")),
            source,
        })
}

async fn checked(args: &[&str]) -> Result<(), DockerError> {
    let out = iptables(args).await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DockerError::Failed {
            cmd: format!("iptables {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

async fn restore(script: &str) -> Result<(), DockerError> {
    let cmd = "iptables-restore -w --noflush".to_string();
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DockerError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|source| DockerError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| DockerError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DockerError::Failed {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
