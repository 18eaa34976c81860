#!/usr/bin/env bash
# The main job end to end on a fresh Debian machine, as root: builds berth, makes a busybox
# image, brings up the example web stack (examples/webstack), talks to it through its published
# port, scales the API and watches the requests spread, then takes everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p berth
berth=$PWD/target/release/berth
root=$(mktemp -d /tmp/berth-demo-XXXXXX)
compose=examples/webstack/compose.yaml
b() { echo "+ berth $*" >&2; "$berth" --root "$root" "$@"; }
cleanup() {
  "$berth" --root "$root" -f "$compose" down -v -t 1 >/dev/null 2>&1 || true
  [ -f "$root/engine.pid" ] && kill "$(cat "$root/engine.pid")" 2>/dev/null || true
  sleep 0.3
  rm -rf "$root"
}
trap cleanup EXIT
b image import "$(./tests/make-rootfs.sh)" bb:latest >/dev/null
b container run --rm --network none bb sh -c 'echo "a single container: PID 1 is $(tr "\0" " " < /proc/1/cmdline)"'
b -f "$compose" up -d --wait
b -f "$compose" ps
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | busybox nc -w 2 127.0.0.1 8080 | tr -d '\r' | sed '1,/^$/d'; }
echo "front: $(get /)"
echo "requests to /cgi-bin/api spread over the replicas:"
for _ in $(seq 1 9); do get /cgi-bin/api; done | sort | uniq -c
b -f "$compose" scale api=5
for _ in $(seq 1 15); do get /cgi-bin/api; done | sort | uniq -c
b -f "$compose" exec data cat /content/index.html
b -f "$compose" down -v
echo "demo finished"
