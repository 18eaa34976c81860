#!/usr/bin/env bash
# The main job end to end on a fresh Debian machine, as root: builds berth, makes a busybox
# image, and runs containers in it (isolation, limits, logs, exec, stop), then cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p berth
berth=target/release/berth
root=$(mktemp -d /tmp/berth-demo-XXXXXX)
cleanup() {
  $berth --root "$root" container rm -f demo-web >/dev/null 2>&1 || true
  [ -f "$root/engine.pid" ] && kill "$(cat "$root/engine.pid")" 2>/dev/null || true
  sleep 0.2; rm -rf "$root"
}
trap cleanup EXIT
b() { echo "+ berth $*" >&2; $berth --root "$root" "$@"; }
tar=$(./tests/make-rootfs.sh)
b image import "$tar" bb:latest
b container run --rm --hostname demo bb sh -c 'echo "hello from $(hostname), PID 1 is: $(cat /proc/1/cmdline | tr "\0" " ")"'
b container run -d --name demo-web --memory 64m --cpus 0.5 bb httpd -f -v -p 8080 -h /var/www
b container ls
b container exec demo-web sh -c 'echo "inside: $(ls /proc | grep -c "^[0-9]") processes visible"'
b container stop demo-web
b container ls -a
b container rm demo-web
echo "demo finished"
