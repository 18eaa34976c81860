#!/usr/bin/env bash
# Stateless replicas under load, end to end on a fresh Debian machine, as root: brings up
# examples/replicas (N `api` replicas behind the name `api`, a load client printing every second
# how its requests spread and how many failed), scales to 6, kills a replica by hand and watches
# the engine bring it back and the spread recover, scales to 2, takes everything down.
# tests/replicas.rs runs the same walk-through as a test.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p berth
berth=$PWD/target/release/berth
root=$(mktemp -d /tmp/berth-replicas-XXXXXX)
compose=examples/replicas/compose.yaml
logs=
b() { echo "+ berth $*" >&2; "$berth" --root "$root" -f "$compose" "$@"; }
cleanup() {
  [ -n "$logs" ] && kill "$logs" 2>/dev/null || true
  "$berth" --root "$root" -f "$compose" down -t 1 >/dev/null 2>&1 || true
  [ -f "$root/engine.pid" ] && kill "$(cat "$root/engine.pid")" 2>/dev/null || true
  sleep 0.3
  rm -rf "$root"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*" >&2; }
"$berth" --root "$root" image import "$(./tests/make-rootfs.sh)" bb:latest >/dev/null

step "3 replicas of api, and the load client"
b up -d --wait
# The load client's report, live, for the whole walk-through.
"$berth" --root "$root" -f "$compose" logs -f load &
logs=$!
sleep 4

step "scale api to 6: the spread widens to every new replica"
b scale api=6
sleep 4

step "kill a replica by hand: restart: always brings it back, the spread recovers"
b ps
b container kill replicas-api-2
sleep 4
echo "replicas-api-2 restarts: $("$berth" --root "$root" container inspect replicas-api-2 | grep -o '"restart_count": [0-9]*')" >&2

step "scale api to 2"
b scale api=2
sleep 4

step "down"
kill "$logs" 2>/dev/null || true
logs=
b down
echo "replicas walk-through finished"
