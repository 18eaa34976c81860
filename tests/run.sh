#!/usr/bin/env bash
# The whole test suite, as root on a fresh Debian machine: installs what it needs (idempotently),
# builds, checks formatting and lints, and runs every test (unit, privileged, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests create namespaces, cgroups and bridges" >&2; exit 1; }
./tests/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
