//! Health checks: while a container with a check runs, its test runs inside the container's
//! namespaces and cgroup (as `exec` does) on its interval (`start_interval` during the start
//! period). Failures during the start period do not count; `retries` failures in a row make it
//! unhealthy, one success healthy. Only healthy replicas are served by DNS.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::record::Container;
use super::{containers, Engine};
use crate::api::{ExecOptions, Health, HealthConfig, Status};

/// Longest check output kept.
const MAX_OUTPUT: usize = 4096;

/// Starts the health monitor of a container that has just started.
pub fn spawn(engine: Arc<Engine>, c: Arc<Container>) {
    let Some(cfg) = c.state().healthcheck.clone() else {
        return;
    };
    let started_at = c.state().started_at.clone();
    tokio::spawn(async move {
        let _ = c.update(|s| {
            s.health = Some(Health {
                status: "starting".into(),
                ..Health::default()
            })
        });
        set_dns(&engine, &c, false).await;
        let begin = Instant::now();
        loop {
            let in_start = begin.elapsed() < Duration::from_millis(cfg.start_period_ms);
            let wait = if in_start {
                cfg.start_interval_ms
            } else {
                cfg.interval_ms
            };
            tokio::time::sleep(Duration::from_millis(wait.max(10))).await;
            let st = c.state();
            if st.started_at != started_at || !matches!(st.status, Status::Running | Status::Paused)
            {
                return;
            }
            if st.status == Status::Paused {
                continue;
            }
            let (code, output) = check(&engine, &c, &cfg).await;
            let before = st.health.clone().unwrap_or_default().status;
            let mut after = before.clone();
            let _ = c.update(|s| {
                let h = s.health.get_or_insert_with(Health::default);
                h.last_output = output;
                h.last_exit_code = Some(code);
                if code == 0 {
                    h.failing_streak = 0;
                    h.status = "healthy".into();
                } else if !in_start || h.status == "healthy" {
                    h.failing_streak += 1;
                    if h.failing_streak >= cfg.retries.max(1) {
                        h.status = "unhealthy".into();
                    }
                }
                after = h.status.clone();
            });
            if after != before {
                info!(container = %c.id, from = %before, to = %after, "health changed");
                engine
                    .events
                    .emit(&c, "health_status", &[("health_status", after.clone())]);
                set_dns(&engine, &c, after == "healthy").await;
            }
        }
    });
}

async fn set_dns(engine: &Engine, c: &Container, on: bool) {
    if let Ok(netd) = engine.net.get().await {
        if let Err(e) = netd.set_dns_enabled(&c.id, on).await {
            warn!(container = %c.id, error = %e, "update DNS for health");
        }
    }
}

/// Runs the test once; returns its exit code (-1 on timeout or failure to run) and output.
async fn check(engine: &Arc<Engine>, c: &Arc<Container>, cfg: &HealthConfig) -> (i32, String) {
    let opts = ExecOptions {
        cmd: cfg.test.clone(),
        ..ExecOptions::default()
    };
    let p = match containers::exec(engine, c, opts).await {
        Ok(p) => p,
        Err(e) => return (-1, e.to_string()),
    };
    let mut files = [p.stdout, p.stderr];
    let reader = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for f in files.iter_mut() {
            let mut buf = Vec::new();
            let _ = f.by_ref().take(MAX_OUTPUT as u64).read_to_end(&mut buf);
            out.extend(buf);
        }
        String::from_utf8_lossy(&out[..out.len().min(MAX_OUTPUT)]).into_owned()
    });
    let Ok(fd) = crate::sys::watch_fd(p.pidfd) else {
        return (-1, "watch the check process".into());
    };
    let wait = async {
        loop {
            let Ok(mut g) = fd.readable().await else {
                break -1;
            };
            match runtime::sys::waitid_pidfd(fd.get_ref().as_raw_fd()) {
                Ok(Some(st)) => break st.code(),
                Ok(None) => g.clear_ready(),
                Err(_) => break -1,
            }
        }
    };
    match tokio::time::timeout(Duration::from_millis(cfg.timeout_ms.max(10)), wait).await {
        Ok(code) => {
            let out = tokio::time::timeout(Duration::from_secs(1), reader)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            (code, out)
        }
        Err(_) => {
            let _ = runtime::container::signal(fd.get_ref(), libc::SIGKILL);
            let _ = runtime::sys::waitid_pidfd(fd.get_ref().as_raw_fd());
            (
                -1,
                format!("health check timed out after {}ms", cfg.timeout_ms),
            )
        }
    }
}
