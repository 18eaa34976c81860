//! Restart policies: a loop that wakes when a container exits (and every 250 ms) and starts
//! again the exited containers whose policy says so, after an exponential backoff capped at
//! 5 s; a run that lasted 10 s resets the backoff, so a crash loop never burns CPU.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::{containers, Engine};
use crate::api::{ContainerState, Status};

const BASE: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(5);
const STABLE: Duration = Duration::from_secs(10);

/// Backoff before restart number `count` (0-based).
pub fn backoff(count: u32) -> Duration {
    BASE.saturating_mul(1u32 << count.min(16)).min(CAP)
}

fn time(s: &Option<String>) -> Option<SystemTime> {
    s.as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
}

/// Whether the policy wants an exited container back, and the restart count to continue from.
pub fn wants_restart(st: &ContainerState) -> Option<u32> {
    if st.status != Status::Exited || st.stopped_by_user || st.auto_remove {
        return None;
    }
    let ran = match (time(&st.started_at), time(&st.finished_at)) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let count = if ran >= STABLE { 0 } else { st.restart_count };
    let code = st.exit_code.unwrap_or(0);
    let policy = st.restart.as_str();
    let yes = match policy {
        "always" | "unless-stopped" => true,
        p if p.starts_with("on-failure") => {
            code != 0
                && match p.split_once(':').and_then(|(_, n)| n.parse::<u32>().ok()) {
                    Some(max) => st.restart_count < max,
                    None => true,
                }
        }
        _ => false,
    };
    yes.then_some(count)
}

/// Runs the restart loop until the engine's shutdown.
pub async fn run(engine: Arc<Engine>) {
    loop {
        tokio::select! {
            _ = engine.exited.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let now = SystemTime::now();
        for c in engine.all() {
            let st = c.state();
            let Some(count) = wants_restart(&st) else {
                continue;
            };
            let due = time(&st.finished_at)
                .map(|f| f + backoff(count))
                .unwrap_or(now);
            if now < due {
                continue;
            }
            let _ = c.update(|s| s.restart_count = count + 1);
            match containers::start(&engine, &c).await {
                Ok(()) => {
                    info!(container = %c.id, restarts = count + 1, "restarted by policy {}", st.restart);
                    engine.events.emit(
                        &c,
                        "restart",
                        &[
                            ("restartCount", (count + 1).to_string()),
                            ("policy", st.restart.clone()),
                        ],
                    );
                }
                Err(e) => warn!(container = %c.id, error = %e, "restart by policy failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(policy: &str, code: i32, count: u32, ran_secs: u64) -> ContainerState {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        ContainerState {
            status: Status::Exited,
            pid: None,
            pid_start_time: None,
            exit_code: Some(code),
            oom_killed: false,
            created_at: String::new(),
            started_at: Some(humantime::format_rfc3339_nanos(start).to_string()),
            finished_at: Some(
                humantime::format_rfc3339_nanos(start + Duration::from_secs(ran_secs)).to_string(),
            ),
            auto_remove: false,
            restart_count: count,
            restart: policy.into(),
            healthcheck: None,
            health: None,
            stopped_by_user: false,
        }
    }

    #[test]
    fn policies_and_backoff() {
        assert_eq!(wants_restart(&exited("no", 1, 0, 1)), None);
        assert_eq!(wants_restart(&exited("always", 0, 3, 1)), Some(3));
        assert_eq!(
            wants_restart(&exited("always", 0, 3, 60)),
            Some(0),
            "a stable run resets the backoff"
        );
        assert_eq!(wants_restart(&exited("on-failure", 0, 0, 1)), None);
        assert_eq!(wants_restart(&exited("on-failure", 2, 7, 1)), Some(7));
        assert_eq!(wants_restart(&exited("on-failure:2", 2, 2, 1)), None);
        assert_eq!(wants_restart(&exited("on-failure:2", 2, 1, 1)), Some(1));
        let mut st = exited("always", 0, 0, 1);
        st.stopped_by_user = true;
        assert_eq!(wants_restart(&st), None, "a user stop is respected");
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), CAP);
        assert_eq!(backoff(40), CAP);
    }
}
