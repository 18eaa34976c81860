#!/usr/bin/env bash
# berth's image benchmark (issue 3, "Performance"), one command, as root:
#
#   bench/image.sh
#
# 1. Pull: a 5-layer image (busybox plus BENCH_IMAGE_LAYER_MB (20) MB of random data per RUN
#    layer) is built by berth, pushed to a docker-registry started on a loopback port, and pulled
#    into an empty root BENCH_IMAGE_REPS (3) times; prints the median time and MB/s over the
#    compressed bytes that crossed the wire, download and unpack included.
# 2. Create cost against image size: `container create` of a 10 MB and a BENCH_IMAGE_BIG_MB
#    (500) MB image, BENCH_IMAGE_CREATE_REPS (10) creates each, median. Layers are shared
#    read-only (overlay lower dirs), so both should cost the same.
#
# It builds berth in release mode (BERTH_BIN skips that), uses temporary roots and a temporary
# registry, and removes everything on exit (engines, roots, registry), also after a failure.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
LAYER_MB=${BENCH_IMAGE_LAYER_MB:-20}
BIG_MB=${BENCH_IMAGE_BIG_MB:-500}
REPS=${BENCH_IMAGE_REPS:-3}
CREATE_REPS=${BENCH_IMAGE_CREATE_REPS:-10}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "bench: apt-get install docker-registry" >&2; exit 1; }
work=$(mktemp -d /tmp/berth-bench-image-XXXXXX)
roots=()
registry_pid=""

stop_engine() {
  local pid
  pid=$(cat "$1/engine.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -q engine "/proc/$pid/cmdline" 2>/dev/null; then
    "$berth" --root "$1" container rm -f $("$berth" --root "$1" container ls -aq 2>/dev/null) >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
cleanup() {
  for r in "${roots[@]}"; do stop_engine "$r"; done
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
new_root() { root=$work/root$1; roots+=("$root"); }  # sets $root (no subshell: roots grows)

if [ -n "${BERTH_BIN:-}" ]; then
  berth=$BERTH_BIN
else
  echo "building berth (release)..."
  (cd "$repo" && cargo build --release -q -p berth)
  berth=${CARGO_TARGET_DIR:-$repo/target}/release/berth
fi
rootfs=$("$repo/tests/make-rootfs.sh")

# --- a registry on loopback -----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port, secret: berth-bench}
EOF
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# --- images: 5 data layers, and a small and a big one ---------------------------------------
new_root src
src=$root
"$berth" --root "$src" image import "$rootfs" bb:latest >/dev/null
mkdir -p "$work/ctx5" "$work/ctx-small" "$work/ctx-big"
{
  echo "FROM bb:latest"
  for i in 1 2 3 4 5; do echo "RUN head -c ${LAYER_MB}m /dev/urandom > /data$i"; done
  echo 'CMD ["sleep", "3600"]'
} > "$work/ctx5/Dockerfile"
printf 'FROM bb:latest\nRUN head -c 9m /dev/urandom > /data\nCMD ["sleep", "3600"]\n' > "$work/ctx-small/Dockerfile"
printf 'FROM bb:latest\nRUN head -c %sm /dev/urandom > /data\nCMD ["sleep", "3600"]\n' "$BIG_MB" > "$work/ctx-big/Dockerfile"
image=127.0.0.1:$port/bench/five:latest
echo "building the images (5 x $LAYER_MB MB layers, 10 MB, $BIG_MB MB)..."
"$berth" --root "$src" image build -t "$image" "$work/ctx5" >/dev/null
"$berth" --root "$src" image push "$image" >/dev/null
"$berth" --root "$src" image build -t small:latest "$work/ctx-small" >/dev/null
"$berth" --root "$src" image build -t big:latest "$work/ctx-big" >/dev/null
wire=$(du -sb "$work/registry/docker/registry/v2/blobs" | cut -f1)

# --- 1. pull into an empty root ---------------------------------------------------------------
times=()
for i in $(seq "$REPS"); do
  new_root "pull$i"
  r=$root
  "$berth" --root "$r" image ls >/dev/null   # engine up before timing
  t0=$(now_ms)
  "$berth" --root "$r" image pull "$image" >/dev/null
  times+=($(( $(now_ms) - t0 )))
  stop_engine "$r"
done
pull_ms=$(printf '%s\n' "${times[@]}" | median)
echo
echo "== pull of a 5-layer image from a loopback registry into an empty root (median of $REPS) =="
printf '  %-44s %s\n' "bytes in the registry (compressed blobs)" "$((wire / 1048576)) MiB"
printf '  %-44s %s ms\n' "pull + unpack" "$pull_ms"
awk -v b="$wire" -v t="$pull_ms" 'BEGIN {printf "  %-44s %.1f MB/s\n", "throughput", b / 1e6 / (t / 1000)}'

# --- 2. create cost against image size ---------------------------------------------------------
create_median() {
  local img=$1 ts=() t0 id
  for _ in $(seq "$CREATE_REPS"); do
    t0=$(now_ms)
    id=$("$berth" --root "$src" container create --network none "$img")
    ts+=($(( $(now_ms) - t0 )))
    "$berth" --root "$src" container rm "$id" >/dev/null
  done
  printf '%s\n' "${ts[@]}" | median
}
small_ms=$(create_median small:latest)
big_ms=$(create_median big:latest)
echo
echo "== container create against image size (median of $CREATE_REPS, same root) =="
printf '  %-44s %s ms\n' "10 MB image" "$small_ms"
printf '  %-44s %s ms\n' "$BIG_MB MB image" "$big_ms"
echo "  (layers are overlay lower dirs shared read-only: nothing is copied per container)"
