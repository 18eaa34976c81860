//! `berth config` output loads back to the same model; config hashes are stable.

use orchestrator::compose::Project;

use super::{load, load_files};

const RICH: &str = "name: shop
services:
  web:
    build:
      context: ./web
      args: [VERSION=1]
    command: npm start
    depends_on:
      db: {condition: service_healthy, restart: true}
      cache:
        condition: service_started
        required: false
    environment: [NODE_ENV=production, EMPTY]
    env_file: []
    ports: ['8080-8081:80', '127.0.0.1::9229/udp', '3000-3001']
    volumes: ['./web/src:/app/src:ro', 'node_modules:/app/node_modules', '/tmp/anon']
    networks:
      front: {aliases: [www]}
      back:
    healthcheck:
      test: curl -f http://localhost
      interval: 1m30s
    deploy:
      replicas: 2
      resources: {limits: {cpus: '0.5', memory: 512m, pids: 64}}
      restart_policy: {condition: on-failure, max_attempts: 3, delay: 2s}
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    extra_hosts: ['db.local:10.0.0.2']
    labels: {tier: web}
    secrets: [api-key]
    configs: [{source: nginx, target: /etc/nginx.conf, mode: 0440}]
    stop_grace_period: 30s
    x-owner: team-a
  db:
    image: postgres:16
    healthcheck:
      test: [CMD, pg_isready]
    tmpfs: [/run]
    networks: [back]
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1g}
  cache:
    image: redis
    network_mode: service:db
networks:
  front:
  back: {internal: true, ipam: {config: [{subnet: 10.9.0.0/24, gateway: 10.9.0.1}]}}
volumes:
  node_modules:
secrets:
  api-key: {environment: API_KEY}
configs:
  nginx: {content: 'events {}'}
x-meta: {version: 1}
";

fn reload(p: &Project) -> Project {
    let text = serde_yaml::to_string(&p.to_compose_value(true).unwrap()).unwrap();
    match load_files(&[("compose.yaml", &text)], &[("HOME", "/home/u")]) {
        Ok(p) => p,
        Err(e) => panic!("config output does not load back:\n{e}\n---\n{text}"),
    }
}

fn strip(mut p: Project) -> Project {
    p.warnings.clear();
    p.files.clear();
    p
}

#[test]
fn config_output_loads_back_to_the_same_model() {
    let first = load(RICH);
    let second = reload(&first);
    assert_eq!(strip(first.clone()), strip(second.clone()));
    let third = reload(&second);
    assert_eq!(strip(second), strip(third));
}

#[test]
fn the_model_round_trips_through_json() {
    let p = strip(load(RICH));
    let json = serde_json::to_string(&p).unwrap();
    let back: Project = serde_json::from_str(&json).unwrap();
    assert_eq!(p, back);
}

#[test]
fn hashes_are_stable_and_follow_the_configuration() {
    let a = load(RICH);
    let b = load(RICH);
    assert_eq!(
        a.services["web"].config_hash(),
        b.services["web"].config_hash()
    );
    let scaled = load(&RICH.replace("replicas: 2", "replicas: 5"));
    assert_eq!(
        a.services["web"].config_hash(),
        scaled.services["web"].config_hash(),
        "replicas do not change the hash"
    );
    let changed = load(&RICH.replace("NODE_ENV=production", "NODE_ENV=staging"));
    assert_ne!(
        a.services["web"].config_hash(),
        changed.services["web"].config_hash()
    );
    assert_eq!(
        a.services["db"].config_hash(),
        changed.services["db"].config_hash()
    );
}
