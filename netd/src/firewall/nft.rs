//! Loading rulesets with the `nft` tool (`nft -f -`): one transaction per call.

use std::io;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Errors of running `nft`.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("run nft -f - (is the nftables package installed?)")]
    Spawn(#[source] io::Error),
    #[error("feed ruleset to nft")]
    Io(#[source] io::Error),
    #[error("nft rejected the ruleset: {stderr}")]
    Rejected { stderr: String },
}

/// Loads `script` with `nft -f -`.
pub(crate) async fn run(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(NftError::Io)?;
        // Dropping stdin closes it so nft sees the end of the script.
    }
    let out = child.wait_with_output().await.map_err(NftError::Io)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Rejected {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
