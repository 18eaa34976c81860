//! Benchmark: load a 200-service project with interpolation and an override file.
//!
//! Target: under 20 ms per load. Run with `cargo bench -p berth --bench load`; it prints the
//! minimum and median of 50 loads (files in memory, so only the loader is measured).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use orchestrator::compose::{load_with, LoadOptions, MemoryFiles};

fn base(services: usize) -> String {
    let mut y = String::from("name: bench\nx-common: &common\n  restart: unless-stopped\n  labels: {team: bench}\nservices:\n");
    for i in 0..services {
        let dep = if i > 0 {
            format!(
                "\n    depends_on:\n      svc{}:\n        condition: service_started",
                i - 1
            )
        } else {
            String::new()
        };
        let _ = write!(
            y,
            "  svc{i}:\n    <<: *common\n    image: \"registry.local/app{i}:${{TAG:-latest}}\"\n    command: [\"serve\", \"--port\", \"${{PORT_{i}:-8080}}\"]\n    environment:\n      - SERVICE=svc{i}\n      - DB_URL=postgres://${{DB_USER}}:${{DB_PASS:-secret}}@db/app{i}\n      - LOG_LEVEL=${{LOG_LEVEL:-info}}\n    ports:\n      - \"{}:8080\"\n    volumes:\n      - ./data/svc{i}:/data\n      - cache{i}:/cache\n    networks: [front, back]\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8080/health\"]\n      interval: 30s\n      timeout: 5s\n      retries: 3\n    deploy:\n      resources:\n        limits: {{cpus: '0.5', memory: 256m}}{dep}\n",
            10000 + i
        );
    }
    y.push_str("networks:\n  front:\n  back:\n    internal: true\nvolumes:\n");
    for i in 0..services {
        let _ = writeln!(y, "  cache{i}:");
    }
    y
}

fn override_file(services: usize) -> String {
    let mut y = String::from("services:\n");
    for i in (0..services).step_by(2) {
        let _ = write!(
            y,
            "  svc{i}:\n    environment:\n      LOG_LEVEL: debug\n      EXTRA: \"${{EXTRA:-on}}\"\n    ports:\n      - \"{}:9229\"\n",
            20000 + i
        );
    }
    y
}

fn main() {
    let n = 200;
    let mut fs = MemoryFiles::new();
    fs.insert("/bench/compose.yaml", base(n));
    fs.insert("/bench/compose.override.yaml", override_file(n));
    fs.insert("/bench/.env", "TAG=1.0\nDB_USER=app\n");
    let mut opts = LoadOptions::new("/bench");
    opts.environment.insert("HOME".into(), "/root".into());
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let project = match load_with(&opts, &fs) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("load failed: {e}");
                std::process::exit(1);
            }
        };
        times.push(start.elapsed());
        assert_eq!(project.services.len(), n);
    }
    times.sort();
    println!(
        "load {n} services + override: min {:.2} ms, median {:.2} ms (target < 20 ms)",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3
    );
}
