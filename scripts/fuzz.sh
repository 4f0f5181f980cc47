#!/usr/bin/env bash
# Property-based fuzzing of the live server against its own /openapi.json: schemathesis
# (from PyPI, in a virtual environment under target/) with every check, the stateful phase
# included, a fixed seed and a bounded number of examples per operation, on SQLite and on
# PostgreSQL. Fails on any 5xx or any disagreement with the document.
#
#   scripts/fuzz.sh                 # after `cargo build`; uses target/debug/carrental
#   FUZZ_EXAMPLES=100 FUZZ_SEED=7 scripts/fuzz.sh sqlite
#
# PostgreSQL is TEST_DATABASE_URL's server (a database is created and dropped there).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN:-target/debug/carrental}
[ -x "$bin" ] || cargo build --quiet --bin carrental
backends=${*:-sqlite postgres}
examples=${FUZZ_EXAMPLES:-25}
seed=${FUZZ_SEED:-42}
venv=target/fuzz-venv
schemathesis_version=4.32.5
# Its property-based engine, pinned too, so that a new release cannot change a run.
hypothesis_version=6.170.17

installed="$("$venv/bin/schemathesis" --version 2>/dev/null || true) $("$venv/bin/pip" show hypothesis 2>/dev/null || true)"
if [[ $installed != *"$schemathesis_version"*"Version: $hypothesis_version"* ]]; then
  echo "== installing schemathesis $schemathesis_version (hypothesis $hypothesis_version) into $venv"
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: install Debian's python3-venv" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "hypothesis==$hypothesis_version"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# POSTs JSON, prints the answer's accessToken.
# The admin is made as an operator makes one (signing up never makes an admin), then logs in.
token() {
  DATABASE_URL=$2 APP_ENV=test LOG_LEVEL=error "$bin" admin create \
    --email fuzz-admin@example.com --password Secret123 >/dev/null
  python3 - "$1" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/auth/login", method="POST",
    data=json.dumps({"email": "fuzz-admin@example.com", "password": "Secret123"}).encode(),
    headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["accessToken"])
PY
}

pg_admin_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "${pg_db:-}" ] && psql -q "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

status=0
for backend in $backends; do
  case $backend in
    sqlite) url="sqlite://$work/fuzz.db" ;;
    postgres)
      pg_db="carrental_fuzz_$$"
      psql -q "$pg_admin_url" -c "CREATE DATABASE $pg_db" >/dev/null
      url="${pg_admin_url%/*}/$pg_db" ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  port=$(free_port)
  base="http://127.0.0.1:$port"
  # PostgreSQL's run takes payments with the mock provider, so its routes answer too.
  payments=none; [ "$backend" = postgres ] && payments=mock
  PAYMENT_PROVIDER=$payments APP_ENV=test LOG_LEVEL=error HOST=127.0.0.1 PORT=$port DATABASE_URL=$url \
    "$bin" serve > "$work/server-$backend.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do PORT=$port "$bin" healthcheck 2>/dev/null && break; sleep 0.1; done
  echo "== schemathesis on $backend (PAYMENT_PROVIDER=$payments): every check, seed $seed, $examples examples per operation"
  report="$work/report-$backend.txt"
  # logoutAll is left out: it would end the session of the token every other operation uses
# (the API tests cover it). One worker: CPython 3.11 keeps one AST recursion counter for all threads, and two
  # workers' Hypothesis parsing lambdas at once crashed it ("AST constructor recursion depth
  # mismatch", python/cpython#106905) before any answer was judged.
  if ! "$venv/bin/schemathesis" --config-file tests/fuzz/schemathesis.toml run "$base/openapi.json" \
      --checks all --seed "$seed" --max-examples "$examples" --workers 1 --no-color \
      --exclude-operation-id logoutAll --exclude-operation-id revokeSession \
      --header "Authorization: Bearer $(token "$base" "$url")" > "$report" 2>&1; then
    status=1
    cat "$report"
    echo "-- server log:"; tail -n 50 "$work/server-$backend.log"
  else
    tail -n 4 "$report"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true
  server=""
done
exit $status
