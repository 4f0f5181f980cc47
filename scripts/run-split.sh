#!/usr/bin/env bash
# Runs the split topology on this machine from the release binary: a gateway on BASE_PORT
# (default 3000) and one process per module on the next five ports, all on one database.
# Ctrl-C stops them all.
#
#   scripts/run-split.sh                               # SQLite file data/split.db
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/carrental scripts/run-split.sh
#
# Any other setting (JWT_SECRET, LOG_LEVEL, ...) passes through to every process.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN:-target/release/carrental}
[ -x "$bin" ] || cargo build --release --locked
export DATABASE_URL=${DATABASE_URL:-sqlite://data/split.db}
export INTERNAL_TOKEN=${INTERNAL_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export HOST=${HOST:-127.0.0.1}
base=${BASE_PORT:-3000}
modules=(auth cars search bookings notifications)
vars=(AUTH_SERVICE_URL CAR_SERVICE_URL SEARCH_SERVICE_URL BOOKING_SERVICE_URL NOTIFICATION_SERVICE_URL)
for i in "${!modules[@]}"; do
  export "${vars[$i]}=http://127.0.0.1:$((base + i + 1))"
done

# Once, before any process starts (they then skip it).
"$bin" migrate run
export APP__DATABASE__MIGRATE_ON_START=false

pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap stop EXIT INT TERM
for i in "${!modules[@]}"; do
  MODULES=${modules[$i]} PORT=$((base + i + 1)) "$bin" serve & pids+=($!)
done
MODULES=gateway PORT=$base "$bin" serve & pids+=($!)

for port in $(seq "$base" $((base + 5))); do
  for _ in $(seq 100); do
    PORT=$port "$bin" healthcheck 2>/dev/null && break
    sleep 0.1
  done
done
echo "split topology up: gateway http://127.0.0.1:$base, modules on $((base + 1))-$((base + 5))"
wait
