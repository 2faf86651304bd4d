#!/usr/bin/env bash
# Fuzzes the REST API from its OpenAPI document with Schemathesis, against a real
# `upwatch serve`, twice: without an API token and with one (so that the bearer scheme is
# exercised). Any finding fails the script. Called by deploy/test.sh; can be run alone:
#
#   bash deploy/fuzz.sh target/debug/upwatch
#
# - Schemathesis and openapi-spec-validator (PyPI) are installed into a virtual environment
#   under the target directory when missing.
# - The server and Schemathesis run in a network namespace of their own with loopback only
#   (`unshare --net`, as root), so that the monitors and webhooks the fuzzer creates can never
#   reach anything but 127.0.0.1: every check of a generated URL fails at once.
# - Every check Schemathesis has, all operations, every phase (examples, coverage, fuzzing,
#   stateful: create, then read, change and delete what was created, following the
#   document's links and `Location` headers), with a fixed seed and example budget.
set -euo pipefail

bin=${1:?usage: deploy/fuzz.sh path/to/upwatch}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/fuzz-venv"
SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" ||
  ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -q "^Version: $VALIDATOR_VERSION"; then
  echo "installing Schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator $VALIDATOR_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$VALIDATOR_VERSION"
fi

# The committed document is valid OpenAPI (the API's tests check it is the one the code makes).
"$venv/bin/openapi-spec-validator" "$root/docs/openapi.json"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
  isolate=(unshare --net)
else
  echo "error: fuzzing needs a loopback-only network namespace (unshare --net, as root)," \
    "so that generated URLs are never fetched" >&2
  exit 1
fi
"${isolate[@]}" bash "$root/deploy/fuzz-run.sh" "$bin" "$venv" "$work" "$root"
