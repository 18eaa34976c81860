#!/usr/bin/env bash
# berth's benchmark against its peers (issue 2, section 7), one command, as root:
#
#   bench/run.sh
#
# 1. `berth container run --rm --network none bb true`, sequentially, BENCH_RUNS times (50) after
#    BENCH_WARMUP (3) warm-up runs: median and p90 milliseconds per container, through the whole
#    CLI path (process start, unix-socket requests, engine, runtime, exit, removal). Every tool's
#    runs are spread over BENCH_ROUNDS (5) round-robin blocks so load drift hits all alike.
# 2. The same for every installed peer, in the same run: `crun run` and `runc run` of an
#    equivalent OCI bundle (busybox rootfs, `true`, fresh pid/net/ipc/uts/mount/cgroup namespaces,
#    a fresh cgroup), `docker run --rm --network none` and `podman run --rm --network none` of the
#    same busybox tarball imported as localbb:latest. Printed as berth/peer ratios.
# 3. Engine memory with BENCH_IDLE (50) idle containers (`run -d bb sleep 3600`): VmHWM, VmRSS and
#    PSS of the engine, and the number of host processes per container outside the container's
#    own cgroup (a shim would show up here).
#
# It builds berth in release mode, uses a temporary root and cleans everything up on exit. Peers
# that are not installed (or fail) are skipped and named. A docker daemon that is installed but
# not running is started for the run (without touching iptables or bridges) and stopped after.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${BENCH_RUNS:-50}
WARMUP=${BENCH_WARMUP:-3}
ROUNDS=${BENCH_ROUNDS:-5}   # the runs of every tool are spread over this many rounds
IDLE=${BENCH_IDLE:-50}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# have CMD: CMD is on PATH and executable.
have() { local p; p=$(command -v "$1") && [ -x "$p" ]; }
have jq || DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null

# --- state and cleanup -------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
root=$tmp/root
# A second root on tmpfs, where fsync costs nothing: the same berth without the disk's share.
shm=$(mktemp -d /dev/shm/berth-bench.XXXXXX)
root_tmpfs=$shm/root
bundle=$tmp/bundle
oci_ids=()          # crun/runc container ids, deleted on exit
started_dockerd=""  # pid of a dockerd this script started
docker=""

engine_pid() { cat "${1:-$root}/engine.pid" 2>/dev/null || true; }

# stop_engine [ROOT]: SIGTERM to the engine of ROOT (default: the main root), waits for it.
stop_engine() {
  local r=${1:-$root} pid
  pid=$(engine_pid "$r")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$r/engine.pid"
}

cleanup() {
  local rc=$?
  set +e
  for r in "$root" "$root_tmpfs"; do
    if [ -S "$r/berth.sock" ] && [ -x "${berth:-}" ]; then
      ids=$("$berth" --root "$r" container ls -aq 2>/dev/null)
      # shellcheck disable=SC2086
      [ -n "$ids" ] && "$berth" --root "$r" container rm -f $ids >/dev/null 2>&1
    fi
    stop_engine "$r"
  done
  for id in "${oci_ids[@]}"; do
    crun delete -f "$id" >/dev/null 2>&1
    runc delete -f "$id" >/dev/null 2>&1
  done
  if [ -n "$started_dockerd" ]; then
    kill -TERM "$started_dockerd" 2>/dev/null
    for _ in $(seq 200); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -rf "$tmp" "$shm"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- statistics ----------------------------------------------------------------------------------
# stats FILE: "median p90 min mean" in ms (one decimal) of the microsecond values in FILE.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      k = int(NR * 0.9); if (k < NR * 0.9) k++
      printf "%.1f %.1f %.1f %.1f\n", m / 1000, v[k] / 1000, v[1] / 1000, s / NR / 1000
    }'
}

# measure NAME COUNT WARM: runs run_NAME WARM + COUNT times, sequentially; the microseconds of the
# last COUNT runs are added to $tmp/NAME.us. Returns non-zero (and prints why) when a run fails.
measure() {
  local name=$1 count=$2 warm=$3 i t0 t1
  for ((i = 1; i <= warm + count; i++)); do
    t0=${EPOCHREALTIME/./}
    if ! "run_$name" "$i" >"$tmp/$name.out" 2>&1; then
      echo "  $name failed on run $i: $(tail -3 "$tmp/$name.out" | tr '\n' ' ')"
      return 1
    fi
    t1=${EPOCHREALTIME/./}
    ((i > warm)) && echo $((t1 - t0)) >> "$tmp/$name.us"
  done
  return 0
}

# --- the contenders ------------------------------------------------------------------------------
run_berth() { "$berth" --root "$root" container run --rm --network none bb true; }
run_berth_tmpfs() { "$berth" --root "$root_tmpfs" container run --rm --network none bb true; }

oci_run() {  # oci_run RUNTIME N
  local id="berth-bench-$$-$1-$2"
  oci_ids+=("$id")
  "$1" run --bundle "$bundle" "$id" </dev/null
}
run_crun() { oci_run crun "$1"; }
run_runc() { oci_run runc "$1"; }
run_docker() { "$docker" run --rm --network none localbb:latest true; }
run_podman() { podman run --rm --network none localbb:latest true; }

# write_bundle: an OCI bundle equivalent to berth's container: the same busybox rootfs (plain
# directory; berth mounts an overlayfs per container on top of that), fresh pid, net (only lo,
# like --network none), ipc, uts, mount and cgroup namespaces, a cgroup of its own, Docker's
# default capabilities, masked paths, no_new_privs, /proc, /sys ro, tmpfs /dev, pts, shm, mqueue.
write_bundle() {
  mkdir -p "$bundle/rootfs"
  tar -C "$bundle/rootfs" -xf "$tarball"
  local caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD",
    "CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]'
  cat > "$bundle/config.json" <<JSON
{
  "ociVersion": "1.0.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {"bounding": $caps, "effective": $caps, "permitted": $caps},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                   {"type": "mount"}, {"type": "cgroup"}],
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
  jq empty "$bundle/config.json"
}

# setup_docker: picks Debian's client (/usr/bin/docker; a newer one in /usr/local/bin may not
# match the daemon), starts a daemon when none answers, imports localbb:latest when missing.
setup_docker() {
  docker=/usr/bin/docker
  if [ ! -x "$docker" ]; then
    have docker || { echo "not installed"; return 1; }
    docker=$(command -v docker)
  fi
  if ! "$docker" info >/dev/null 2>&1; then
    have dockerd || { echo "client only, no daemon"; return 1; }
    setsid dockerd --iptables=false --ip6tables=false --bridge=none \
      >"$tmp/dockerd.log" 2>&1 </dev/null &
    started_dockerd=$!
    for _ in $(seq 150); do "$docker" info >/dev/null 2>&1 && break; sleep 0.2; done
    "$docker" info >/dev/null 2>&1 || { echo "dockerd did not start: $(tail -2 "$tmp/dockerd.log")"; return 1; }
  fi
  "$docker" image inspect localbb:latest >/dev/null 2>&1 \
    || "$docker" import "$tarball" localbb:latest >/dev/null
}

setup_podman() {
  have podman || { echo "not installed"; return 1; }
  podman image exists localbb:latest || podman import "$tarball" localbb:latest >/dev/null
}

# --- memory with idle containers -----------------------------------------------------------------
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "$1"; }

# memory_phase: a fresh engine, IDLE detached `sleep 3600` containers, then the engine's memory
# and the host processes that belong to berth but live outside every container's cgroup.
memory_phase() {
  stop_engine
  "$berth" --root "$root" container ls -q >/dev/null   # starts a fresh engine
  local epid t0 t1
  epid=$(engine_pid)
  local base_status base_pss
  base_status=$(kib "/proc/$epid/status" VmRSS)
  base_pss=$(kib "/proc/$epid/smaps_rollup" Pss)
  t0=${EPOCHREALTIME/./}
  for ((i = 1; i <= IDLE; i++)); do
    "$berth" --root "$root" container run -d --network none bb sleep 3600 >/dev/null
  done
  t1=${EPOCHREALTIME/./}
  sleep 1
  local hwm rss pss threads fds
  hwm=$(kib "/proc/$epid/status" VmHWM)
  rss=$(kib "/proc/$epid/status" VmRSS)
  pss=$(kib "/proc/$epid/smaps_rollup" Pss)
  threads=$(kib "/proc/$epid/status" Threads)
  fds=$(find "/proc/$epid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  # The init binary: a sealed memfd copy of berth, host memory that is not in the engine's RSS.
  local memfd_kib=0 memfd="" fd
  for fd in /proc/"$epid"/fd/*; do
    case $(readlink "$fd") in
      "/memfd:"*) memfd=$(readlink "$fd"); memfd_kib=$(( $(stat -L -c %s "$fd") / 1024 )) ;;
    esac
  done

  "$berth" --root "$root" container ls --format json > "$tmp/ls.json"
  local running
  running=$(jq '[.[] | select(.state.status == "running")] | length' "$tmp/ls.json")
  jq -r '.[].state.pid' "$tmp/ls.json" > "$tmp/inits"
  # Host processes outside every container cgroup that are berth's: children of the engine, or
  # running the berth binary or the engine's memfd copy of it, other than the engine itself.
  local outside=0 parents_ok=0 p cg exe pp
  local cgbase
  cgbase=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ || ($1 == 0 && $2 == "") { print $3; exit }' \
    "/proc/$(head -1 "$tmp/inits")/cgroup")
  cgbase=${cgbase%/*}
  : > "$tmp/outside"
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$epid" ] && continue
    cg=$(cat "/proc/$p/cgroup" 2>/dev/null) || continue
    case $cg in *"$cgbase/"*) continue ;; esac
    exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
    pp=$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null)
    if [ "$pp" = "$epid" ] || [ "$exe" = "$berth" ] || { [ -n "$memfd" ] && [ "$exe" = "$memfd" ]; }; then
      echo "pid $p, parent $pp: $(tr '\0' ' ' < "/proc/$p/cmdline" | cut -c1-100)" >> "$tmp/outside"
      outside=$((outside + 1))
    fi
  done
  # Each container's PID 1 is berth's init (inside the container's cgroup, charged to it).
  local init_rss=0 init_pss=0
  while read -r p; do
    pp=$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null)
    [ "$pp" = "$epid" ] && parents_ok=$((parents_ok + 1))
    init_rss=$((init_rss + $(kib "/proc/$p/status" VmRSS)))
    init_pss=$((init_pss + $(kib "/proc/$p/smaps_rollup" Pss)))
  done < "$tmp/inits"

  echo
  echo "== engine memory with $running idle containers (run -d bb sleep 3600 x$IDLE) =="
  printf '  %-46s %s\n' \
    "run -d x$IDLE" "$(( (t1 - t0) / 1000 )) ms total, $(( (t1 - t0) / 1000 / IDLE )) ms each" \
    "engine VmHWM (peak RSS)" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
    "engine VmRSS now" "$(awk -v k="$rss" 'BEGIN { printf "%.1f MiB", k / 1024 }') (idle engine before: $(awk -v k="$base_status" 'BEGIN { printf "%.1f MiB", k / 1024 }'))" \
    "engine PSS (smaps_rollup)" "$(awk -v k="$pss" 'BEGIN { printf "%.1f MiB", k / 1024 }') (idle engine before: $(awk -v k="$base_pss" 'BEGIN { printf "%.1f MiB", k / 1024 }'))" \
    "engine threads / open fds" "$threads / $fds" \
    "sealed init binary (memfd, not in RSS)" "$(awk -v k="$memfd_kib" 'BEGIN { printf "%.1f MiB", k / 1024 }') once, shared by every init" \
    "container inits whose parent is the engine" "$parents_ok of $running" \
    "each init (PID 1, in the container's cgroup)" "$(awk -v r="$init_rss" -v p="$init_pss" -v n="$running" 'BEGIN { printf "%.2f MiB RSS, %.2f MiB PSS on average", r / n / 1024, p / n / 1024 }')" \
    "host processes outside container cgroups" "$outside in total = $(awk -v o="$outside" -v n="$running" 'BEGIN { printf "%.2f", n ? o / n : 0 }') per container (0 = no shim)"
  [ -s "$tmp/outside" ] && sed 's/^/    outside: /' "$tmp/outside"
  local verdict=FAIL
  [ "$hwm" -lt $((30 * 1024)) ] && [ "$outside" = 0 ] && verdict=PASS
  echo "  target: engine peak under 30 MiB with no per-container host process: $verdict"

  t0=${EPOCHREALTIME/./}
  # shellcheck disable=SC2046
  "$berth" --root "$root" container rm -f $(jq -r '.[].id' "$tmp/ls.json") >/dev/null
  t1=${EPOCHREALTIME/./}
  printf '  %-46s %s\n' "rm -f of all $running" "$(( (t1 - t0) / 1000 )) ms"
}

# --- main ----------------------------------------------------------------------------------------
echo "== berth benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r) =="
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "building berth (release)..."
(cd "$repo" && cargo build --release -q -p berth)
berth=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth
[ -x "$berth" ] || { echo "bench: no binary at $berth" >&2; exit 1; }
tarball=$("$repo/tests/make-rootfs.sh")
"$berth" --root "$root" image import "$tarball" bb:latest >/dev/null
"$berth" --root "$root_tmpfs" image import "$tarball" bb:latest >/dev/null

contenders=(berth berth_tmpfs)
skipped=()
versions=("berth $("$berth" --version | awk '{ print $2 }')")
for rt in crun runc; do
  if have "$rt"; then
    [ -d "$bundle" ] || write_bundle
    contenders+=("$rt")
    versions+=("$rt $("$rt" --version | head -1 | awk '{ print $3 }')")
  else
    skipped+=("$rt (not installed)")
  fi
done
if setup_docker >"$tmp/why" 2>&1; then
  contenders+=(docker)
  versions+=("docker $("$docker" version -f '{{.Server.Version}}' 2>/dev/null)")
else
  skipped+=("docker ($(tail -1 "$tmp/why"))")
fi
if setup_podman >"$tmp/why" 2>&1; then
  contenders+=(podman)
  versions+=("podman $(podman --version | awk '{ print $3 }')")
else
  skipped+=("podman ($(tail -1 "$tmp/why"))")
fi
joined=$(printf '%s, ' "${versions[@]}")
echo "contenders: ${joined%, }"

echo
echo "== run --rm true, sequential: $WARMUP warm-up + $RUNS measured runs each, in $ROUNDS rounds =="
# Round-robin blocks: every tool runs RUNS/ROUNDS times per round, so the machine's load drift
# over the minutes of the benchmark falls on every tool alike; within a block the runs are
# back to back, and a pause between blocks lets the previous tool's background cleanup settle.
measured=("${contenders[@]}")
for c in "${measured[@]}"; do : > "$tmp/$c.us"; done
for ((round = 0; round < ROUNDS; round++)); do
  count=$(( RUNS * (round + 1) / ROUNDS - RUNS * round / ROUNDS ))
  warm=0; ((round == 0)) && warm=$WARMUP
  still=()
  for c in "${measured[@]}"; do
    sleep 0.5
    if measure "$c" "$count" "$warm"; then
      still+=("$c")
    elif [ "$c" = berth ]; then
      exit 1
    else
      skipped+=("$c (failed)")
    fi
  done
  measured=("${still[@]}")
done
read -r b_med _ <<<"$(stats "$tmp/berth.us")"
declare -A median
printf '  %-12s %9s %9s %9s %9s %11s\n' tool median p90 min mean berth/peer
for c in "${measured[@]}"; do
  read -r med p90 min mean <<<"$(stats "$tmp/$c.us")"
  ratio=$(awk -v b="$b_med" -v p="$med" 'BEGIN { printf "%.2f", b / p }')
  [ "$c" = berth ] && ratio=-
  printf '  %-12s %6s ms %6s ms %6s ms %6s ms %11s\n' "$c" "$med" "$p90" "$min" "$mean" "$ratio"
  median[$c]=$med
done
echo "  (berth_tmpfs: the same berth with its root on tmpfs, where fsync is free: shows the disk's share)"
if [ ${#skipped[@]} -gt 0 ]; then
  joined=$(printf '%s; ' "${skipped[@]}")
  echo "  skipped: ${joined%; }"
fi
echo "  berth engine VmHWM after these runs: $(awk -v k="$(kib "/proc/$(engine_pid)/status" VmHWM)" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
for target in crun docker; do
  peer=${median[$target]:-}
  if [ -z "$peer" ]; then
    echo "  target vs $target: not measured ($target skipped)"
  elif [ $target = crun ]; then
    verdict=$(awk -v b="$b_med" -v p="$peer" 'BEGIN { print (b <= p) ? "PASS" : "FAIL" }')
    echo "  target berth <= crun: $b_med ms vs $peer ms: $verdict"
  else
    verdict=$(awk -v b="$b_med" -v p="$peer" 'BEGIN { printf "%.1fx faster: %s", p / b, (p >= 10 * b) ? "PASS" : "FAIL" }')
    echo "  target berth >= 10x faster than docker run: $verdict"
  fi
done

stop_engine "$root_tmpfs"
memory_phase
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
