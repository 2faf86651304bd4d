#!/usr/bin/env bash
# Runs upwatch in the embedded mode (`upwatch serve`) on a fresh Debian machine: installs the
# build tools when missing, builds the release binary and starts it. Extra arguments go to
# `upwatch serve` (for example `--listen 0.0.0.0:8080`). This is the README's run command.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/common.sh
require_cargo
ensure_build_tools
say "building and starting upwatch (API on http://127.0.0.1:8080 unless --listen says otherwise)"
exec cargo run --release --locked -p upwatch -- serve "$@"
