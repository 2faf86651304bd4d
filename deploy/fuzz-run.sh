#!/usr/bin/env bash
# The inside of deploy/fuzz.sh, in a loopback-only network namespace: starts `upwatch serve`
# and runs Schemathesis against it, once without and once with an API token.
set -euo pipefail
bin=$1 venv=$2 work=$3 root=$4
ip link set lo up

SEED=20261127
EXAMPLES=${UPWATCH_FUZZ_EXAMPLES:-30}
port=18080
status=0

serve() { # serve NAME [TOKEN]
  local dir="$work/$1"
  mkdir -p "$dir"
  env -i PATH="$PATH" HOME="$dir" \
    DATABASE_URL="sqlite://$dir/upwatch.db" \
    UPWATCH_LISTEN="127.0.0.1:$port" \
    UPWATCH_LOG=warn \
    ${2:+UPWATCH_API_TOKEN="$2"} \
    "$bin" serve >"$dir/upwatch.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "error: upwatch serve did not become ready; its log:" >&2
  cat "$dir/upwatch.log" >&2
  return 1
}

fuzz() { # fuzz NAME [TOKEN]
  local name=$1 token=${2:-}
  echo "== Schemathesis, $name (seed $SEED, $EXAMPLES examples per operation)"
  serve "$name" "$token"
  local auth=()
  [ -n "$token" ] && auth=(--header "Authorization: Bearer $token")
  set +e
  "$venv/bin/schemathesis" --config-file "$root/deploy/schemathesis.toml" \
    run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed "$SEED" \
    --max-examples "$EXAMPLES" \
    --workers 1 \
    --no-color \
    --report junit --report-dir "$work/$name-report" \
    "${auth[@]}"
  local rc=$?
  set -e
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "error: Schemathesis found problems ($name); the server's log:" >&2
    tail -n 50 "$work/$name/upwatch.log" >&2
    status=1
  fi
}

fuzz open
fuzz token "fuzz-token-$SEED"
exit $status
