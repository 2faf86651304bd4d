#!/usr/bin/env bash
# Runs every check and test of upwatch on a fresh Debian machine.
#
# It installs what the tests need when it is missing, then runs formatting and lint checks
# and the whole test suite. This is the README's test command and exactly what CI runs
# (.ci/run), so what CI proves is what a new user gets.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is missing; install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

# The embedded mode needs no service: SQLite is compiled in, the bus and cache are in process.
# Loopback target sites and the Discord receiver are started by the tests themselves.

say "formatting (cargo fmt --check)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check

say "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "cargo-nextest not found; using cargo test"
  cargo test --workspace --locked --no-fail-fast
fi
