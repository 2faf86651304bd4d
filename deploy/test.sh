#!/usr/bin/env bash
# Runs every check and test of upwatch on a fresh Debian machine.
#
# It makes sure what the tests need is there, installing and starting what is missing:
# the C build tools of rdkafka, PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and the
# Kafka-protocol broker nisshi 0.8.1 (on a free loopback port; installed with `cargo install`
# when missing, a one-time build of about 35 minutes). It stops what it started when done.
# UPWATCH_TEST_KAFKA_BROKERS, when set, names a broker to use instead of starting nisshi.
#
# The broker must keep Kafka's consumer-group contract: a member killed without leaving loses
# its partitions to the survivors once its session expires (the distributed tests check it).
# nisshi 0.8.1 does; tansu 0.6.0, the broker used before, does not (the dead member's
# partitions are orphaned), so it must not be used.
# Then it runs the formatting and lint checks, the whole test suite, the browser tests of
# the web pages (Debian's chromium driven by Playwright; chromium is installed with apt and the
# test's npm packages with `npm ci` when missing), and the fuzzing of the API from its OpenAPI
# document (deploy/fuzz.sh: Schemathesis and openapi-spec-validator from PyPI, installed into
# a virtual environment under target/ when missing; as root, for its loopback-only network
# namespace).
#
# This is the README's test command and exactly what CI runs (.ci/run), so what CI proves is
# what a new user gets.
set -euo pipefail
cd "$(dirname "$0")/.."

. deploy/common.sh
# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 120); do port_open "$port" && return 0; sleep 0.5; done
  echo "error: $what did not start listening on 127.0.0.1:$port within 60 s" >&2
  return 1
}

require_cargo
ensure_build_tools

started_pids=()
stop_redis=0
cleanup() {
  # nisshi does not always exit on SIGTERM: give each process 5 s, then SIGKILL.
  local pid i
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$stop_redis" = 1 ]; then redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "PostgreSQL on 127.0.0.1:5432"
if port_open 5432; then
  echo "already running"
else
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$version" ]; then echo "error: no PostgreSQL cluster found after installing postgresql" >&2; exit 1; fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_port 5432 PostgreSQL
  # Test databases are throwaway: give the postgres user the password the tests use.
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
fi
export UPWATCH_TEST_DATABASE_URL="${UPWATCH_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"

say "Redis on 127.0.0.1:6379"
if port_open 6379; then
  echo "already running"
else
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  stop_redis=1
  wait_port 6379 Redis
fi
export UPWATCH_TEST_REDIS_URL="${UPWATCH_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

say "Kafka-protocol broker (nisshi)"
if [ -n "${UPWATCH_TEST_KAFKA_BROKERS:-}" ]; then
  echo "using $UPWATCH_TEST_KAFKA_BROKERS (UPWATCH_TEST_KAFKA_BROKERS)"
else
  if ! command -v nisshi >/dev/null 2>&1; then
    echo "installing nisshi 0.8.1 (a one-time build of about 35 minutes)"
    cargo install nisshi --locked --version 0.8.1 --no-default-features --features dynostore --ignore-rust-version
  fi
  port=$(( 20000 + RANDOM % 20000 ))
  while port_open "$port"; do port=$(( 20000 + RANDOM % 20000 )); done
  mkdir -p target
  nisshi broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://nisshi/ >target/nisshi.log 2>&1 &
  started_pids+=($!)
  wait_port "$port" nisshi
  export UPWATCH_TEST_KAFKA_BROKERS="127.0.0.1:$port"
  echo "started $(nisshi --version 2>/dev/null || echo nisshi) on $UPWATCH_TEST_KAFKA_BROKERS (log: target/nisshi.log)"
fi

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

say "embedded-only build (no librdkafka, so no cmake or C++ compiler needed)"
cargo build -p upwatch --locked --no-default-features --features embedded
embedded_bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/upwatch"
if grep -q rd_kafka_new "$embedded_bin"; then
  echo "error: the embedded-only binary contains librdkafka" >&2
  exit 1
fi
# A distributed setting is a clear start-up error there, naming the feature.
refusal=$(DATABASE_URL="sqlite://$PWD/target/embedded-only.db" KAFKA_BROKERS=127.0.0.1:9 \
  "$embedded_bin" serve --listen 127.0.0.1:0 2>&1 || true)
rm -f target/embedded-only.db*
if ! grep -q "without the \`distributed\` feature" <<<"$refusal"; then
  echo "error: KAFKA_BROKERS on the embedded-only binary did not name the missing feature:" >&2
  echo "$refusal" >&2
  exit 1
fi
echo "built without librdkafka; KAFKA_BROKERS is refused, naming the feature"

say "browser tests of the web pages (headless chromium)"
command -v chromium >/dev/null 2>&1 || apt_install chromium
if ! command -v npm >/dev/null 2>&1; then
  echo "error: the browser tests need Node.js 18 or later with npm (apt-get install nodejs npm)" >&2
  exit 1
fi
if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
cargo build -p upwatch --locked
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/upwatch"
(cd tests/browser && UPWATCH_BIN="$bin" node --test --test-concurrency=1 .)
echo "screenshots: target/browser-artifacts/"

say "API fuzzing from the OpenAPI document (Schemathesis, loopback-only network namespace)"
bash deploy/fuzz.sh "$bin"
