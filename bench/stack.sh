#!/usr/bin/env bash
# berth's compose benchmark against its peers (issue 6, "Performance"), one command, as root:
#
#   bench/stack.sh
#
# 1. The 10-service reference stack (a depends_on chain of 5 levels, one network, one named
#    volume, `init: true` everywhere): `up -d` and `down -v`, median of BENCH_REF_REPS (5).
# 2. The scale stack (one httpd service): `up -d --scale web=N` and `down -v` for every N in
#    BENCH_SCALES ("10 50"), median of BENCH_SCALE_REPS (3).
# 3. The reference stack without its `init: true` lines: `down` (busybox as PID 1 ignores
#    SIGTERM, so a runtime without an init of its own waits out the stop timeout), median of
#    BENCH_NOINIT_REPS (3) for berth and BENCH_PEER_NOINIT_REPS (1) for docker-compose (about
#    50 s per run).
# 4. Engine memory with BENCH_MEM_SCALE (100) replicas running (`up -d --scale web=100` on a
#    fresh engine): VmHWM and PSS of the engine; with BENCH_MEM_DOCKER=1 (opt-in, not verified yet) the same
#    replicas under docker-compose and the memory of dockerd, containerd and the shims.
#
# Every tool runs the same compose files in the same run, in alternating rounds (berth,
# docker-compose, podman-compose, then the next round) so the machine's load drift falls on all
# of them alike. podman-compose sleeps 1 s per container on `up`, so its runs are capped at
# BENCH_PODMAN_REPS (1) per test and its no-init `down` (about 100 s) only runs with
# BENCH_PODMAN_NOINIT=1. BENCH_PEERS ("docker-compose podman-compose") selects the peers.
#
# It builds berth in release mode, uses a temporary root and cleans everything up on exit, also
# after a failure or Ctrl-C: the projects of every tool (containers, networks, volumes), berth's
# engine, and a docker daemon it started (with the FORWARD policy, docker's iptables chains and
# docker0 put back as they were before).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
REF_REPS=${BENCH_REF_REPS:-5}
SCALE_REPS=${BENCH_SCALE_REPS:-3}
SCALES=${BENCH_SCALES:-"10 50"}
NOINIT_REPS=${BENCH_NOINIT_REPS:-3}
PEER_NOINIT_REPS=${BENCH_PEER_NOINIT_REPS:-1}
PODMAN_REPS=${BENCH_PODMAN_REPS:-1}
PODMAN_NOINIT=${BENCH_PODMAN_NOINIT:-0}
MEM_SCALE=${BENCH_MEM_SCALE:-100}
MEM_DOCKER=${BENCH_MEM_DOCKER:-0}
PEERS=${BENCH_PEERS:-"docker-compose podman-compose"}
PROJECT=stackbench$$
[ "$(id -u)" = 0 ] || { echo "bench: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
# /usr/bin before /usr/local/bin: Debian's docker client matches its daemon, a newer one may not.
export PATH="$HOME/.cargo/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
have() { local p; p=$(command -v "$1") && [ -x "$p" ]; }

# --- state and cleanup -------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/berth-stack.XXXXXX)
root=$tmp/root
berth=""
docker=/usr/bin/docker
tools=()            # berth and the peers that work
started_dockerd=""  # pid of a dockerd this script started
fwd_before=""       # FORWARD policy before that dockerd
docker_chains_before=0
docker0_before=0

engine_pid() { cat "$root/engine.pid" 2>/dev/null || true; }

stop_engine() {
  local pid
  pid=$(engine_pid)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$root/engine.pid"
}

# compose TOOL FILE ARGS...: one compose command of TOOL on FILE, project $PROJECT.
compose() {
  local tool=$1 file=$2
  shift 2
  case $tool in
    berth) "$berth" --root "$root" -f "$file" -p "$PROJECT" "$@" ;;
    docker-compose) docker-compose -p "$PROJECT" -f "$file" "$@" ;;
    podman-compose) podman-compose -p "$PROJECT" -f "$file" "$@" ;;
  esac
}

# running TOOL FILE: how many of the project's containers run.
running() {
  case $1 in
    berth) compose berth "$2" ps -q | wc -l ;;
    docker-compose) "$docker" ps -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l ;;
    podman-compose) podman ps -q --filter "label=io.podman.compose.project=$PROJECT" | wc -l ;;
  esac
}

# teardown TOOL: best effort, removes the project of TOOL on every stack file.
teardown() {
  local tool=$1 f
  for f in "$tmp"/stacks/*.yaml; do
    compose "$tool" "$f" down -v -t 1 >/dev/null 2>&1 || true
  done
}

# stop_dockerd: stops the daemon this script started and puts back what it changed on the host.
stop_dockerd() {
  [ -n "$started_dockerd" ] || return 0
  kill -TERM "$started_dockerd" 2>/dev/null
  for _ in $(seq 400); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.05; done
  started_dockerd=""
  local now t rule chain
  now=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')
  if [ -n "$fwd_before" ] && [ "$now" != "$fwd_before" ]; then
    iptables -P FORWARD "$fwd_before"
    echo "  restored the FORWARD policy: $now -> $fwd_before"
  fi
  if [ "$docker_chains_before" = 0 ]; then
    for t in filter nat; do
      iptables -t "$t" -S 2>/dev/null | grep -E -- '^-A .*(DOCKER|docker0)' | while read -r rule; do
        eval "iptables -t $t -D ${rule#-A }" 2>/dev/null || true
      done
      for chain in $(iptables -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }'); do
        iptables -t "$t" -F "$chain" 2>/dev/null || true
        iptables -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  fi
  [ "$docker0_before" = 1 ] || ip link del docker0 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  for tool in "${tools[@]}"; do teardown "$tool"; done
  if [ -S "$root/berth.sock" ] && [ -x "$berth" ]; then
    ids=$("$berth" --root "$root" container ls -aq 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && "$berth" --root "$root" container rm -f $ids >/dev/null 2>&1
    "$berth" --root "$root" network prune -f >/dev/null 2>&1
    "$berth" --root "$root" volume prune -f >/dev/null 2>&1
  fi
  stop_engine
  podman pod rm -f "pod_$PROJECT" >/dev/null 2>&1
  stop_dockerd
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the stacks (copies of ../shared/bench/{reference,scale}-stack/compose.yaml) ------------------
write_stacks() {
  mkdir -p "$tmp/stacks"
  {
    echo 'services:'
    local s cmd deps
    for s in db cache api web proxy worker1 worker2 worker3 worker4 worker5; do
      case $s in
        cache | worker1 | worker2 | worker4) cmd='["sleep", "3600"]' ;;
        *) cmd='["httpd", "-f", "-p", "8080", "-h", "/var/www"]' ;;
      esac
      case $s in cache) deps=db ;; api) deps=cache ;; web) deps=api ;; proxy) deps=web ;; *) deps="" ;; esac
      printf '  %s:\n    image: localbb:latest\n    init: true\n    command: %s\n    networks: [appnet]\n' "$s" "$cmd"
      case $s in db | api) echo '    volumes: ["shared:/data"]' ;; esac
      [ -z "$deps" ] || echo "    depends_on: [$deps]"
    done
    printf 'networks:\n  appnet:\n    driver: bridge\nvolumes:\n  shared: {}\n'
  } > "$tmp/stacks/reference.yaml"
  sed '/^ *init: true *$/d' "$tmp/stacks/reference.yaml" > "$tmp/stacks/noinit.yaml"
  cat > "$tmp/stacks/scale.yaml" <<'YAML'
services:
  web:
    image: localbb:latest
    init: true
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
YAML
}

# --- peers ---------------------------------------------------------------------------------------
# setup_docker: a daemon that answers (started for the run when none does) and localbb:latest.
setup_docker() {
  have docker-compose || { echo "docker-compose not installed"; return 1; }
  [ -x "$docker" ] || docker=$(command -v docker) || { echo "docker not installed"; return 1; }
  if ! "$docker" info >/dev/null 2>&1; then
    have dockerd || { echo "client only, no daemon"; return 1; }
    fwd_before=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')
    docker_chains_before=$(iptables -S 2>/dev/null | grep -c -- '^-N DOCKER' || true)
    ip link show docker0 >/dev/null 2>&1 && docker0_before=1
    # Docker's defaults (its own iptables rules, docker0), as a user runs it and as the peers'
    # reference figures in ../shared/bench were taken; stop_dockerd undoes them.
    setsid dockerd >"$tmp/dockerd.log" 2>&1 </dev/null &
    started_dockerd=$!
    for _ in $(seq 150); do "$docker" info >/dev/null 2>&1 && break; sleep 0.2; done
    "$docker" info >/dev/null 2>&1 || { echo "dockerd did not start: $(tail -2 "$tmp/dockerd.log")"; return 1; }
  fi
  "$docker" image inspect localbb:latest >/dev/null 2>&1 \
    || "$docker" import "$tarball" localbb:latest >/dev/null
}

setup_podman() {
  if ! have podman-compose || ! have podman; then echo "not installed"; return 1; fi
  podman image exists localbb:latest || podman import "$tarball" localbb:latest >/dev/null
}

# --- measuring -----------------------------------------------------------------------------------
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# reps TOOL TEST: how many measured runs TOOL gets in TEST.
reps() {
  local base
  case $2 in ref) base=$REF_REPS ;; noinit) base=$NOINIT_REPS ;; *) base=$SCALE_REPS ;; esac
  case $1 in
    berth) echo "$base" ;;
    docker-compose) [ "$2" = noinit ] && base=$PEER_NOINIT_REPS; echo "$base" ;;
    podman-compose)
      if [ "$2" = noinit ]; then
        [ "$PODMAN_NOINIT" = 1 ] && base=$PEER_NOINIT_REPS || base=0
      fi
      echo $((base < PODMAN_REPS ? base : PODMAN_REPS)) ;;
  esac
}

# timed TOOL KEY FILE ARGS...: runs the command, appends its milliseconds to $tmp/TOOL.KEY.
timed() {
  local tool=$1 key=$2 t0 t1
  shift 2
  t0=${EPOCHREALTIME/./}
  compose "$tool" "$@" >"$tmp/last.out" 2>&1 || return 1
  t1=${EPOCHREALTIME/./}
  echo $(((t1 - t0) / 1000)) >> "$tmp/$tool.$key"
}

failed() {  # failed TOOL WHAT: reports, cleans up; berth failing ends the benchmark
  echo "  $1: $2 failed: $(tail -3 "$tmp/last.out" | tr '\n' ' ')"
  teardown "$1"
  [ "$1" != berth ] || exit 1
  local t keep=()
  for t in "${tools[@]}"; do [ "$t" = "$1" ] || keep+=("$t"); done
  tools=("${keep[@]}")
  skipped+=("$1 (failed in $test)")
}

# run_test TEST FILE EXPECT UPARGS...: rounds of up (timed) / check / down -v (timed), the tools
# alternating within each round.
run_test() {
  local test=$1 file=$2 expect=$3 round max=0 tool n
  shift 3
  for tool in "${tools[@]}"; do
    n=$(reps "$tool" "$test")
    ((n > max)) && max=$n
  done
  for ((round = 1; round <= max; round++)); do
    for tool in "${tools[@]}"; do
      ((round <= $(reps "$tool" "$test"))) || continue
      sleep 0.5
      timed "$tool" "$test-up" "$file" "$@" || { failed "$tool" "$test up"; continue; }
      if ((round == 1)); then
        n=$(running "$tool" "$file")
        [ "$n" = "$expect" ] || { echo "only $n of $expect running" > "$tmp/last.out"; failed "$tool" "$test up"; continue; }
      fi
      timed "$tool" "$test-down" "$file" down -v || { failed "$tool" "$test down"; continue; }
    done
  done
}

# --- memory with many replicas -------------------------------------------------------------------
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# pss PID...: summed PSS in KiB.
pss() { local p s=0; for p in "$@"; do s=$((s + $(kib "/proc/$p/smaps_rollup" Pss 2>/dev/null || echo 0))); done; echo $s; }
rss() { local p s=0; for p in "$@"; do s=$((s + $(kib "/proc/$p/status" VmRSS 2>/dev/null || echo 0))); done; echo $s; }

memory_phase() {
  local f=$tmp/stacks/scale.yaml n=$MEM_SCALE epid base_rss base_pss t0 t1 t2 up_ms down_ms test=memory
  stop_engine
  "$berth" --root "$root" container ls -q >/dev/null   # a fresh engine
  epid=$(engine_pid)
  base_rss=$(kib "/proc/$epid/status" VmRSS)
  base_pss=$(pss "$epid")
  t0=${EPOCHREALTIME/./}
  compose berth "$f" up -d --scale "web=$n" >"$tmp/last.out" 2>&1 || { failed berth "memory up"; return; }
  t1=${EPOCHREALTIME/./}
  sleep 1
  local up hwm now_rss now_pss threads fds inits init_pss
  up=$(running berth "$f")
  hwm=$(kib "/proc/$epid/status" VmHWM)
  now_rss=$(kib "/proc/$epid/status" VmRSS)
  now_pss=$(pss "$epid")
  threads=$(kib "/proc/$epid/status" Threads)
  fds=$(find "/proc/$epid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  inits=$(pgrep -P "$epid" | tr '\n' ' ')
  # shellcheck disable=SC2086
  init_pss=$(pss $inits)
  t2=${EPOCHREALTIME/./}
  compose berth "$f" down -v >"$tmp/last.out" 2>&1 || { failed berth "memory down"; return; }
  up_ms=$(((t1 - t0) / 1000))
  down_ms=$(((${EPOCHREALTIME/./} - t2) / 1000))
  local hwm_after
  hwm_after=$(kib "/proc/$epid/status" VmHWM)
  echo
  echo "== berth engine memory with $up of $n replicas running (up -d --scale web=$n on a fresh engine) =="
  printf '  %-44s %s\n' \
    "up -d --scale web=$n / down -v" "$up_ms ms / $down_ms ms" \
    "engine VmHWM (peak RSS) with $n running" "$(mib "$hwm") (after the down: $(mib "$hwm_after"))" \
    "engine VmRSS / PSS with $n running" "$(mib "$now_rss") / $(mib "$now_pss") (idle engine: $(mib "$base_rss") / $(mib "$base_pss"))" \
    "engine threads / open fds" "$threads / $fds" \
    "berth inits (container PID 1s) PSS, summed" "$(mib "$init_pss") for $(wc -w <<<"$inits") inits (charged to the containers)"
  local peak=$((hwm > hwm_after ? hwm : hwm_after))
  echo "  target engine peak < 50 MiB: $(mib "$peak"): $([ "$peak" -lt $((50 * 1024)) ] && echo PASS || echo FAIL)"
}

# docker_memory: the same replicas under docker-compose; dockerd, containerd and shims.
docker_memory() {
  local f=$tmp/stacks/scale.yaml n=$MEM_SCALE t0 t1 t2 test=memory
  echo
  echo "== the same $n replicas under docker-compose =="
  t0=${EPOCHREALTIME/./}
  compose docker-compose "$f" up -d --scale "web=$n" >"$tmp/last.out" 2>&1 || { failed docker-compose "memory up"; return; }
  t1=${EPOCHREALTIME/./}
  sleep 1
  local d c shims up
  up=$(running docker-compose "$f")
  d=$(pgrep -x dockerd | head -1)
  c=$(pgrep -x containerd | tr '\n' ' ')
  shims=$(pgrep -f containerd-shim | tr '\n' ' ')
  # shellcheck disable=SC2086
  printf '  %-44s %s\n' \
    "docker-compose up -d --scale web=$n" "$(((t1 - t0) / 1000)) ms ($up running)" \
    "dockerd RSS / PSS" "$(mib "$(rss $d)") / $(mib "$(pss $d)")" \
    "containerd RSS / PSS" "$(mib "$(rss $c)") / $(mib "$(pss $c)")" \
    "$(wc -w <<<"$shims") containerd-shims RSS / PSS, summed" "$(mib "$(rss $shims)") / $(mib "$(pss $shims)")"
  t2=${EPOCHREALTIME/./}
  compose docker-compose "$f" down -v >"$tmp/last.out" 2>&1 || { failed docker-compose "memory down"; return; }
  echo "  (docker-compose down -v of the $n: $(((${EPOCHREALTIME/./} - t2) / 1000)) ms)"
}

# --- main ----------------------------------------------------------------------------------------
t_start=$SECONDS
echo "== berth compose benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r) =="
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "building berth (release)..."
(cd "$repo" && cargo build --release -q -p berth)
target_dir=${CARGO_TARGET_DIR:-$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
berth=$target_dir/release/berth
[ -x "$berth" ] || { echo "bench: no binary at $berth" >&2; exit 1; }
tarball=$("$repo/tests/make-rootfs.sh")
"$berth" --root "$root" image import "$tarball" localbb:latest >/dev/null
write_stacks
tools=(berth)
skipped=()
versions=("berth $("$berth" --version | awk '{ print $2 }')")
for peer in $PEERS; do
  case $peer in
    docker-compose) setup=setup_docker ;;
    podman-compose) setup=setup_podman ;;
    *) skipped+=("$peer (unknown)"); continue ;;
  esac
  if "$setup" >"$tmp/why" 2>&1; then
    tools+=("$peer")
    # awk reads all of it (an early exit would break the pipe and fail the pipeline)
    versions+=("$peer $("$peer" version 2>/dev/null | awk '/compose/ && !v && match($0, /[0-9]+\.[0-9.]*[0-9]/) {
      v = substr($0, RSTART, RLENGTH) } END { print v }')")
  else
    skipped+=("$peer ($(tail -1 "$tmp/why"))")
  fi
done
joined=$(printf '%s, ' "${versions[@]}")
echo "tools: ${joined%, }${started_dockerd:+ (dockerd started for the run)}"
for tool in "${tools[@]}"; do teardown "$tool"; done   # leftovers of an interrupted run

# Warm-up: one unmeasured reference up/down per tool (page cache, berth's engine start).
test=warmup
for tool in "${tools[@]}"; do
  compose "$tool" "$tmp/stacks/reference.yaml" up -d >"$tmp/last.out" 2>&1 || { failed "$tool" "warm-up up"; continue; }
  compose "$tool" "$tmp/stacks/reference.yaml" down -v >"$tmp/last.out" 2>&1 || failed "$tool" "warm-up down"
done

declare -A name=([ref-up]="reference up -d" [ref-down]="reference down -v"
  [noinit-down]="no-init reference down -v")
tests=(ref)
run_test ref "$tmp/stacks/reference.yaml" 10 up -d
for n in $SCALES; do
  tests+=("scale$n")
  name[scale$n-up]="scale 0 -> $n up -d"
  name[scale$n-down]="scale $n -> 0 down -v"
  run_test "scale$n" "$tmp/stacks/scale.yaml" "$n" up -d --scale "web=$n"
done
if [ "$NOINIT_REPS" -gt 0 ]; then
  tests+=(noinit)
  run_test noinit "$tmp/stacks/noinit.yaml" 10 up -d
fi

echo
echo "== medians in ms (runs: reference $REF_REPS, scale $SCALE_REPS, no-init berth $NOINIT_REPS / docker-compose $PEER_NOINIT_REPS; podman-compose at most $PODMAN_REPS) =="
hdr="  $(printf '%-28s %8s' test berth)"
for tool in "${tools[@]:1}"; do hdr+=$(printf ' %15s %7s' "$tool" 'x'); done
echo "$hdr"
declare -A ratio
for t in "${tests[@]}"; do
  for op in up down; do
    key=$t-$op
    [ -n "${name[$key]:-}" ] || continue   # the no-init up is the reference up again
    b=$(median "$tmp/berth.$key" 2>/dev/null || true)
    [ -n "$b" ] || continue
    line="  $(printf '%-28s %8s' "${name[$key]}" "$b")"
    for tool in "${tools[@]:1}"; do
      p=$(median "$tmp/$tool.$key" 2>/dev/null || true)
      if [ -n "$p" ]; then
        r=$(awk -v b="$b" -v p="$p" 'BEGIN { printf "%.1f", p / (b > 0 ? b : 1) }')
        ratio[$tool.$key]=$r
        line+=$(printf ' %15s %6sx' "$p" "$r")
      else
        line+=$(printf ' %15s %7s' - -)
      fi
    done
    echo "$line"
  done
done
echo "  (x = peer median / berth median: how many times faster berth is)"
if [ ${#skipped[@]} -gt 0 ]; then
  joined=$(printf '%s; ' "${skipped[@]}")
  echo "  skipped: ${joined%; }"
fi
echo
echo "targets: berth >= 10x faster than docker-compose (aim 20x)"
for t in "${tests[@]}"; do
  for op in up down; do
    key=$t-$op
    [ -n "${name[$key]:-}" ] || continue
    r=${ratio[docker-compose.$key]:-}
    if [ -z "$r" ]; then
      printf '  %-28s not measured (docker-compose skipped)\n' "${name[$key]}"
    else
      printf '  %-28s %6sx: %s\n' "${name[$key]}" "$r" \
        "$(awk -v r="$r" 'BEGIN { print (r >= 20) ? "PASS (aim met)" : (r >= 10) ? "PASS (below the 20x aim)" : "FAIL" }')"
    fi
  done
done

[ "$MEM_SCALE" -gt 0 ] && memory_phase
if [ "$MEM_SCALE" -gt 0 ] && [ "$MEM_DOCKER" = 1 ] && [[ " ${tools[*]} " == *" docker-compose "* ]]; then
  docker_memory
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); total $((SECONDS - t_start)) s"
