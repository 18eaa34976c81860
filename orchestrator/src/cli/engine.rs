//! `berth engine`: runs the daemon of one root in the foreground (the CLI starts it on demand).

use std::path::Path;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use crate::client::socket_path;
use crate::engine::{server, Engine};

/// Runs the engine until SIGTERM or SIGINT.
pub fn run(root: &Path) -> anyhow::Result<u8> {
    // Leave the caller's session so a closing terminal does not take the engine down.
    let _ = nix::unistd::setsid();
    std::fs::create_dir_all(root).with_context(|| format!("create the root {}", root.display()))?;
    let lock_path = root.join("engine.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    let _lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err(_) => {
            eprintln!("berth: an engine already runs for {}", root.display());
            return Ok(0);
        }
    };
    let _ = std::fs::write(root.join("engine.pid"), std::process::id().to_string());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let sock = socket_path(root);
        let _ = std::fs::remove_file(&sock);
        let engine = Engine::open(root).await.context("open the engine state")?;
        let listener =
            UnixListener::bind(&sock).with_context(|| format!("listen on {}", sock.display()))?;
        tracing::info!(root = %root.display(), "engine ready");
        let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        let restarter = tokio::spawn(crate::engine::restart::run(engine.clone()));
        server::run(listener, engine.clone(), shutdown).await;
        restarter.abort();
        engine.shutdown().await;
        let running = engine.all().iter().any(|c| {
            matches!(
                c.status(),
                crate::api::Status::Running | crate::api::Status::Paused
            )
        });
        if !running {
            if let Err(e) = engine.runtime.remove_cgroup_base() {
                tracing::warn!(error = %e, "cgroup cleanup at shutdown");
            }
        }
        let _ = std::fs::remove_file(&sock);
        anyhow::Ok(())
    })?;
    Ok(0)
}
