#!/usr/bin/env bash
# berth's Dockerfile build benchmark (issue 3, "Performance"), one command, as root:
#
#   bench/build.sh
#
# Builds a 10-step Dockerfile (FROM busybox, then ENV, WORKDIR, COPY, three RUNs, COPY, LABEL,
# EXPOSE, CMD) once, then times BENCH_BUILD_REPS (10) rebuilds with nothing changed, end to end
# (`berth image build` from process start to exit, engine already running), and prints the
# median. Target: under 300 ms. With a working `docker` (the daemon answers `docker info`), the
# same Dockerfile is built by `docker build` on the same busybox rootfs (`docker import`), and
# the median of its cached rebuilds and the ratio are printed; without one the peer is skipped.
#
# It builds berth in release mode (BERTH_BIN skips that), uses a temporary root and removes
# everything on exit: berth's engine and root, and the docker images it made.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
REPS=${BENCH_BUILD_REPS:-10}
work=$(mktemp -d /tmp/berth-bench-build-XXXXXX)
root=$work/root
berth=""
docker_tag="berth-bench-build-$$"
docker_used=0

cleanup() {
  if [ -n "$berth" ] && [ -f "$root/engine.pid" ]; then
    pid=$(cat "$root/engine.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -q engine "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  if [ "$docker_used" = 1 ]; then
    docker image rm -f "$docker_tag:built" "$docker_tag-bb:latest" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

write_context() { # $1: base image name
  mkdir -p "$work/ctx/src"
  for i in 1 2 3 4 5; do echo "file $i" > "$work/ctx/src/f$i.txt"; done
  echo "config" > "$work/ctx/app.conf"
  cat > "$work/ctx/Dockerfile" <<EOF
FROM $1
ENV APP_HOME=/app
WORKDIR /app
COPY src/ ./src/
RUN cat src/*.txt > all.txt
RUN mkdir -p /var/lib/app && echo ready > /var/lib/app/state
RUN rm src/f1.txt
COPY app.conf /etc/app.conf
LABEL bench=build
EXPOSE 8080
CMD ["sh", "-c", "cat /app/all.txt"]
EOF
}

# times REPS runs of "$@" (ms each), prints the median
time_reps() {
  for _ in $(seq "$REPS"); do
    t0=$(now_ms)
    "$@" >/dev/null
    echo $(( $(now_ms) - t0 ))
  done | median
}

echo "== berth build benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r) =="
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BERTH_BIN:-}" ]; then
  berth=$BERTH_BIN
else
  echo "building berth (release)..."
  (cd "$repo" && cargo build --release -q -p berth)
  target_dir=${CARGO_TARGET_DIR:-$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
  berth=$target_dir/release/berth
fi
[ -x "$berth" ] || { echo "bench: no binary at $berth" >&2; exit 1; }
tarball=$("$repo/tests/make-rootfs.sh")
"$berth" --root "$root" image import "$tarball" benchbb:latest >/dev/null
write_context benchbb

t0=$(now_ms)
"$berth" --root "$root" image build -t bench:built "$work/ctx" >/dev/null
echo "berth: first build (3 RUN containers): $(( $(now_ms) - t0 )) ms"
out=$("$berth" --root "$root" image build -t bench:built "$work/ctx")
echo "$out" | grep -q "(10 steps, 10 cached)" \
  || { echo "bench: the rebuild was not fully cached:" >&2; echo "$out" >&2; exit 1; }
berth_ms=$(time_reps "$berth" --root "$root" image build -t bench:built "$work/ctx")
verdict=$([ "$berth_ms" -lt 300 ] && echo "under" || echo "OVER")
echo "berth: unchanged 10-step rebuild: median ${berth_ms} ms of $REPS ($verdict the 300 ms target)"

if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
  docker_used=1
  docker import "$tarball" "$docker_tag-bb:latest" >/dev/null
  rm -rf "$work/ctx"
  write_context "$docker_tag-bb:latest"
  docker build -q -t "$docker_tag:built" "$work/ctx" >/dev/null
  docker_ms=$(time_reps docker build -q -t "$docker_tag:built" "$work/ctx")
  echo "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'): unchanged 10-step rebuild: median ${docker_ms} ms of $REPS"
  awk -v b="$berth_ms" -v d="$docker_ms" 'BEGIN { if (b > 0) printf "ratio docker/berth: %.1fx\n", d / b }'
else
  echo "docker: skipped (no docker CLI, or its daemon does not answer \`docker info\`)"
fi
