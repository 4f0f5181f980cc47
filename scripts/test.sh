#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, single-feature builds, and every
# test on SQLite and on PostgreSQL. Starts PostgreSQL and Redis (installing them from
# Debian's packages if need be) when none answers on TEST_DATABASE_URL or TEST_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Each phase says how long the run has taken so far, so a slow one shows.
say() { echo "== $* [${SECONDS} s]"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_answers() {
  local hostport host port
  hostport="$(sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#' <<<"$TEST_DATABASE_URL")"
  host="${hostport%:*}"; port="${hostport##*:}"
  [ "$port" = "$hostport" ] && port=5432
  timeout 2 bash -c "exec 3<>/dev/tcp/${host:-127.0.0.1}/$port" 2>/dev/null
}

ensure_postgres() {
  if pg_answers; then return; fi
  say "no PostgreSQL answers at $TEST_DATABASE_URL: starting one"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_answers && break; sleep 1; done
  pg_answers || { echo "PostgreSQL did not start" >&2; exit 1; }
  # Debian's cluster asks TCP clients for a password: give the superuser one for the tests.
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  export TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
}

export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"

redis_answers() {
  local hostport host port
  hostport="$(sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#' <<<"$TEST_REDIS_URL")"
  host="${hostport%:*}"; port="${hostport##*:}"
  [ "$port" = "$hostport" ] && port=6379
  timeout 2 bash -c "exec 3<>/dev/tcp/${host:-127.0.0.1}/$port" 2>/dev/null
}

# The rate-limit tests count in a real Redis (shared counters across replicas).
ensure_redis() {
  if redis_answers; then return; fi
  say "no Redis answers at $TEST_REDIS_URL: starting one"
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/carrental-test-redis.log
  for _ in $(seq 1 30); do redis_answers && break; sleep 0.5; done
  redis_answers || { echo "Redis did not start" >&2; exit 1; }
  export TEST_REDIS_URL="redis://127.0.0.1:6379"
}

# Fakes of outside services, each from PyPI in a virtual environment under target/, started
# on a free port for the run and stopped with it.
background_pids=()
trap 'kill "${background_pids[@]}" 2>/dev/null || true' EXIT

# venv_with DIR PACKAGE==VERSION...: DIR holds exactly these versions (installed if not).
venv_with() {
  local venv=$1 spec; shift
  for spec in "$@"; do
    # grep reads all of pip's output (no -q): a pip cut off by SIGPIPE fails the pipe.
    "$venv/bin/pip" show "${spec%%[[=]*}" 2>/dev/null | grep -x "Version: ${spec##*==}" >/dev/null \
      && continue
    say "installing $* into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    return
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME LOG CURL-ARGS...: until the service answers (10 s), or the run stops.
wait_for() {
  local name=$1 log=$2; shift 2
  for _ in $(seq 1 50); do curl -fsS -o /dev/null "$@" 2>/dev/null && return; sleep 0.2; done
  curl -fsS -o /dev/null "$@" || { echo "$name did not start ($log)" >&2; exit 1; }
}

# The stripe provider's tests talk to localstripe (a stateful fake of Stripe's API), with
# Stripe's own Python library beside it (which checks the tests' Stripe stub).
ensure_localstripe() {
  local venv=target/stripe-venv port
  if [ -n "${TEST_STRIPE_URL:-}" ]; then return; fi
  venv_with "$venv" localstripe==1.15.10 stripe==16.1.0
  port=$(free_port)
  "$venv/bin/python" tests/stripe/run_localstripe.py --port "$port" >target/localstripe.log 2>&1 &
  background_pids+=($!)
  wait_for localstripe target/localstripe.log -u sk_test_ping: "http://127.0.0.1:$port/v1/balance"
  export TEST_STRIPE_URL="http://127.0.0.1:$port"
  export TEST_STRIPE_PYTHON="$PWD/$venv/bin/python"
}

# The s3 storage provider's tests talk to moto's S3 server, with botocore beside it: its
# SigV4 signer checks the presigned URLs the server makes (moto accepts any signature).
ensure_moto() {
  local venv=target/s3-venv port
  if [ -n "${TEST_S3_URL:-}" ]; then return; fi
  venv_with "$venv" "moto[server]==5.2.6" botocore==1.44.18
  port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
  background_pids+=($!)
  wait_for moto target/moto.log "http://127.0.0.1:$port/moto-api/"
  export TEST_S3_URL="http://127.0.0.1:$port"
  export TEST_S3_PYTHON="$PWD/$venv/bin/python"
}

# The channels' tests check Web Push against a browser played with http_ece (which decrypts)
# and pywebpush (which checks that browser), and the Twilio stub with Twilio's own library.
ensure_channels() {
  local venv=target/channels-venv
  if [ -n "${TEST_CHANNELS_PYTHON:-}" ]; then return; fi
  venv_with "$venv" twilio==9.13.0 http_ece==1.2.1 pywebpush==2.5.0 py-vapid==1.9.6 cryptography==51.0.1
  export TEST_CHANNELS_PYTHON="$PWD/$venv/bin/python"
}

# The docs-page test drives Debian's Chromium; the smoke test needs curl; the fuzz run needs a Python virtual
# environment and psql (to make its PostgreSQL database).
ensure_test_tools() {
  local missing=()
  [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] || missing+=(chromium)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v curl >/dev/null || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    apt_install "${missing[@]}"
  fi
}

# AUTH_PROVIDER=oidc is tested against node-oidc-provider, a certified OpenID Provider: the
# tests start it themselves (they restart it with new keys to rotate them).
ensure_oidc_provider() {
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  if ! [ -d tests/oidc/node_modules/oidc-provider ]; then
    say "installing oidc-provider into tests/oidc (npm ci)"
    npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >/dev/null
  fi
  export TEST_OIDC_PROVIDER="$PWD/tests/oidc/provider.mjs"
}

ensure_build_tools() {
  # libpq and OpenSSL are built from source (no system libraries needed at run time).
  local missing=()
  for tool in cc make perl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ "${#missing[@]}" -gt 0 ]; then apt_install build-essential perl; fi
}

ensure_build_tools
ensure_postgres
ensure_redis
ensure_test_tools
ensure_localstripe
ensure_moto
ensure_channels
ensure_oidc_provider

say "cargo fmt --check"
cargo fmt --check
say "no import circles in src/"
python3 scripts/check-imports.py
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
say "one binary per module"
# Each module compiles (and passes clippy) alone; the bookings one is also run below.
mkdir -p target/modules
for feature in auth cars search bookings notifications; do
  say "cargo clippy --no-default-features --features $feature"
  cargo clippy --quiet --no-default-features --features "$feature" --bin carrental -- -D warnings
done
cargo build --quiet --no-default-features --features bookings --bin carrental
cp target/debug/carrental target/modules/carrental-bookings
say "the bookings binary serves bookings alone and documents the whole API"
smoke_module_binary() {
  local bin=target/modules/carrental-bookings port=18181 pid answer
  answer=$("$bin" openapi)
  grep -q '"/auth/login"' <<<"$answer" || { echo "the document lacks /auth/login" >&2; return 1; }
  rm -f target/modules/smoke.db*
  APP_ENV=test HOST=127.0.0.1 PORT=$port DATABASE_URL=sqlite://target/modules/smoke.db \
    "$bin" serve & pid=$!
  for _ in $(seq 100); do PORT=$port "$bin" healthcheck 2>/dev/null && break; sleep 0.1; done
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /health HTTP/1.0\r\n\r\n' >&3
  answer=$(cat <&3)
  exec 3<&-
  kill "$pid"; wait "$pid" || true
  grep -q '"modules":\["bookings"\]' <<<"$answer" || { echo "unexpected: $answer" >&2; return 1; }
}
smoke_module_binary

say "tests on SQLite, on PostgreSQL and through a split deployment"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi

say "fuzzing against the live /openapi.json, on SQLite and PostgreSQL"
cargo build --quiet --bin carrental
scripts/fuzz.sh sqlite postgres

say "the smoke test and the deployment linters against a fresh server"
smoke_and_lint() {
  local bin=target/debug/carrental port=18182 pid status=0 db
  db="$(mktemp -d)"
  APP_ENV=test HOST=127.0.0.1 PORT=$port DATABASE_URL="sqlite://$db/smoke.db" \
    "$bin" serve >"$db/server.log" 2>&1 & pid=$!
  for _ in $(seq 100); do PORT=$port "$bin" healthcheck 2>/dev/null && break; sleep 0.1; done
  # As README's first session does: the operator makes the admin on the command line.
  APP_ENV=test DATABASE_URL="sqlite://$db/smoke.db" "$bin" admin create \
    --email smoke-admin@example.com --password Smoke-Admin-1 --name Smoke >/dev/null || status=1
  SMOKE_ADMIN_EMAIL=smoke-admin@example.com SMOKE_ADMIN_PASSWORD=Smoke-Admin-1 \
    scripts/smoke-test.sh "http://127.0.0.1:$port" || status=1
  scripts/check-deploy.sh "http://127.0.0.1:$port" || status=1
  kill "$pid"; wait "$pid" || true
  [ "$status" = 0 ] || tail -n 20 "$db/server.log" >&2
  rm -rf "$db"
  return "$status"
}
smoke_and_lint
