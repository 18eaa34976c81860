#!/usr/bin/env bash
# Where the time of one `berth container run --rm --network none bb true` goes, as root:
#
#   bench/profile.sh [RUNS]        (default 30; PROFILE_DIR=/dev/shm puts the root on tmpfs)
#
# Part 1 (phases): runs an engine at BERTH_LOG=debug, times RUNS sequential runs from the shell
# and splits each one by the engine's log timestamps (same realtime clock) into phases; prints
# the median of each phase.
# Part 2 (syscalls): strace -f -c -w on the engine and every child (inits, main processes) over
# 10 runs: wall time per container spent in the syscalls that matter (fsync, cgroup writes,
# clone3, mounts, ...). strace slows everything down; read these as relative costs.
# Part 3 (kernel floor): what creating and tearing down the namespaces alone costs here
# (`unshare` of the same namespaces, minus `unshare` without any).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${1:-30}
[ "$(id -u)" = 0 ] || { echo "profile: run as root" >&2; exit 1; }
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null

tmp=$(mktemp -d "${PROFILE_DIR:-/tmp}/berth-profile.XXXXXX")
root=$tmp/root
engine=""
tracer=""
cleanup() {
  set +e
  [ -n "$tracer" ] && kill -INT "$tracer" 2>/dev/null && wait "$tracer" 2>/dev/null
  if [ -n "$engine" ]; then
    kill -TERM "$engine" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$engine" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== berth profile: $(date -u +%FT%TZ), root on $(df --output=fstype "$tmp" | tail -1), load average $(cut -d' ' -f1-3 /proc/loadavg) =="
(cd "$repo" && cargo build --release -q -p berth)
berth=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth
tarball=$("$repo/tests/make-rootfs.sh")
mkdir -p "$root"
BERTH_LOG=debug setsid "$berth" --root "$root" engine >"$tmp/engine.log" 2>&1 </dev/null &
engine=$!
for _ in $(seq 200); do [ -S "$root/berth.sock" ] && break; sleep 0.02; done
"$berth" --root "$root" image import "$tarball" bb:latest >/dev/null
run() { "$berth" --root "$root" container run --rm --network none bb true; }
for _ in 1 2 3; do run; done
sleep 0.5

# --- part 0: the CLI alone ---------------------------------------------------------------------
: > "$tmp/ls"
for _ in $(seq 21); do
  t0=${EPOCHREALTIME/./}; "$berth" --root "$root" container ls -q >/dev/null; t1=${EPOCHREALTIME/./}
  echo $((t1 - t0)) >> "$tmp/ls"
done
cli_ms=$(sort -n "$tmp/ls" | sed -n 11p | awk '{ printf "%.1f", $1 / 1000 }')

# --- part 1: phases from the log ---------------------------------------------------------------
: > "$tmp/cli"
for ((i = 0; i < RUNS; i++)); do
  t0=$EPOCHREALTIME
  run
  t1=$EPOCHREALTIME
  echo "cli $t0 $t1" >> "$tmp/cli"
done
sleep 0.5
# Log lines: "2026-11-26T13:28:10.351623Z LEVEL span...: target: message fields". Times become
# seconds of the UTC day, like the shell's timestamps (mod 86400).
awk '
  function sod(ts,  h, m, s) { h = substr(ts, 12, 2); m = substr(ts, 15, 2); s = substr(ts, 18, 9)
                               return h * 3600 + m * 60 + s }
  FNR == NR { start[NR] = $2 % 86400; end[NR] = $3 % 86400; n = NR; next }
  {
    if (!match($0, /container=[0-9a-f]+/)) next
    id = substr($0, RSTART + 10, RLENGTH - 10); t = sod($1)
    if ($0 ~ /: created container=/)        { created[id] = t; order[++k] = id }
    else if ($0 ~ /cgroup created/)         cg[id] = t
    else if ($0 ~ /init cloned/)            cloned[id] = t
    else if ($0 ~ /: started container=/)   started[id] = t
    else if ($0 ~ /: exited container=/)    exited[id] = t
    else if ($0 ~ /: removed container=/)   removed[id] = t
  }
  END {
    first = k - n  # the last n containers are the timed runs
    for (i = 1; i <= n; i++) {
      id = order[first + i]
      print (created[id] - start[i]) * 1000, (cg[id] - created[id]) * 1000,
            (cloned[id] - cg[id]) * 1000, (started[id] - cloned[id]) * 1000,
            (exited[id] - started[id]) * 1000, (end[i] - exited[id]) * 1000,
            (end[i] - start[i]) * 1000, (removed[id] - exited[id]) * 1000
    }
  }' "$tmp/cli" "$tmp/engine.log" > "$tmp/phases"
median_col() { awk -v c="$1" '{ print $c }' "$tmp/phases" | sort -n | awk '{ v[NR] = $1 }
  END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "== phases of run --rm true: medians of $RUNS runs (ms) =="
labels=(
  "CLI exec + connect + POST create (image lookup, dirs, spec.json and state.json: write+fsync+rename+dir fsync)"
  "create answer -> POST start -> 7 cgroup mkdirs + devices rules"
  "clone3 into new pid/mnt/uts/ipc/net namespaces"
  "join 7 cgroups, init exec + mounts + pivot_root + fork/exec main, 'ok', state.json running (2 fsyncs)"
  "main runs and exits, init exits, namespace teardown, pidfd, cgroup release, state.json exited (2 fsyncs)"
  "exit frame to the CLI, CLI exit"
  "total, as the shell sees it"
  "(after the exit frame, in the background) auto-remove: cgroup, directory"
)
for c in 1 2 3 4 5 6 7 8; do
  printf '  %7s  %s\n' "$(median_col $c)" "${labels[$((c - 1))]}"
done
printf '  %7s  %s\n' "$cli_ms" "for scale: one whole CLI call with a trivial request (container ls -q), median of 21"

# --- part 2: syscalls ----------------------------------------------------------------------------
strace -f -c -w -o "$tmp/strace" -p "$engine" 2>/dev/null &
tracer=$!
sleep 1
for _ in $(seq 10); do run; done
sleep 0.5
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
tracer=""
echo
echo "== syscalls of the engine and its children over 10 runs (strace -f -c -w; ms per container) =="
echo "   (waits on sockets, futexes and epoll left out; strace inflates everything)"
awk '$1 ~ /^[0-9.]+$/ && NF >= 5 {
       name = $NF; if (name ~ /^(total|restart_syscall|epoll_wait|futex|poll|ppoll|read|recvfrom|wait4|waitid|accept4|rt_sigsuspend|pause|nanosleep|clock_nanosleep|sched_yield)$/) next
       printf "  %7.2f ms  %6.1f calls  %s\n", $2 * 1000 / 10, $4 / 10, name
     }' "$tmp/strace" | sort -rn | head -20

# --- part 3: the kernel floor --------------------------------------------------------------------
t() { local s=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1; local e=${EPOCHREALTIME/./}; echo $((e - s)); }
# The minimum of 31 runs: on a loaded machine the median mostly measures the other tenants.
med() { for _ in $(seq 31); do t "$@"; done | sort -n | head -1; }
echo
echo "== kernel floor: unshare of namespaces, create + teardown (minimum of 31, ms) =="
base=$(med unshare /bin/true)
for ns in "-n" "-m" "-i -u" "-C" "-p -f" "-m -p -f -n -i -u -C"; do
  # shellcheck disable=SC2086
  v=$(med unshare $ns /bin/true)
  printf '  %7.1f  unshare %s (minus plain unshare)\n' "$(awk -v a="$v" -v b="$base" 'BEGIN { print (a - b) / 1000 }')" "$ns"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
