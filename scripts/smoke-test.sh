#!/usr/bin/env bash
# Smoke test of a running deployment: health, readiness, signup, login, /auth/me, cars,
# search, then a booking and its cancellation. Stops at the first failure, naming the step.
#   scripts/smoke-test.sh https://api.example.com
# The booking needs an active car. When the fleet has none, SMOKE_ADMIN_EMAIL and
# SMOKE_ADMIN_PASSWORD (an admin account) let the test add one. The booking is a year
# ahead and cancelled at once. Needs curl and python3.
set -uo pipefail
base="${1:?usage: smoke-test.sh BASE_URL}"
base="${base%/}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step=""
fail() { echo "FAIL [$step] $*" >&2; exit 1; }
ok() { echo "ok   [$step]"; }

# call METHOD PATH [BODY] [TOKEN] -> status in $status, body in $work/body
call() {
  local method="$1" path="$2" body="${3:-}" token="${4:-}" args=()
  args=(-sS -o "$work/body" -w '%{http_code}' -X "$method" --max-time 15)
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  status="$(curl "${args[@]}" "$base$path")" || fail "no answer from $base$path"
}
expect() { [ "$status" = "$1" ] || fail "expected HTTP $1, got $status: $(head -c 300 "$work/body")"; }
# json EXPR: evaluates EXPR on the body (bound to b) with python3
json() { python3 -c "import json,sys; b=json.load(open('$work/body')); print($1)" 2>/dev/null; }

step="health"; call GET /health; expect 200; ok
step="readiness"; call GET /health/ready; expect 200; ok

email="smoke+$(date +%s)$RANDOM@example.com"
password="Smoke-$(date +%s)-Aa1"
step="signup"
call POST /auth/signup "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Smoke Test\"}"
expect 201
[ -n "$(json 'b["accessToken"]')" ] || fail "no accessToken in the signup answer"
ok

step="login"
call POST /auth/login "{\"email\":\"$email\",\"password\":\"$password\"}"
expect 200
token="$(json 'b["accessToken"]')"
[ -n "$token" ] || fail "no accessToken at the top level of the login answer"
ok

step="auth/me"; call GET /auth/me "" "$token"; expect 200
[ "$(json 'b["email"]')" = "$email" ] || fail "/auth/me is not the account just made"
ok

step="cars"; call GET "/cars?limit=1"; expect 200
car="$(json 'b["data"][0]["id"] if b["data"] else ""')"
ok

step="search"; call GET "/search?lat=48.8566&lng=2.3522&radius=50"; expect 200
[ -n "$(json 'b["total"]')" ] || fail "no total in the search answer"
ok

step="booking"
if [ -z "$car" ]; then
  [ -n "${SMOKE_ADMIN_EMAIL:-}" ] && [ -n "${SMOKE_ADMIN_PASSWORD:-}" ] \
    || fail "no active car to book (set SMOKE_ADMIN_EMAIL and SMOKE_ADMIN_PASSWORD to add one)"
  call POST /auth/login "{\"email\":\"$SMOKE_ADMIN_EMAIL\",\"password\":\"$SMOKE_ADMIN_PASSWORD\"}"
  expect 200
  admin="$(json 'b["accessToken"]')"
  call POST /cars '{"name":"Smoke Test Car","brand":"Smoke","model":"Test","year":2024,"fuelType":"electric","transmission":"automatic","seats":4,"pricePerDay":10,"images":["https://img.example.com/smoke.jpg"],"location":{"latitude":48.8566,"longitude":2.3522,"address":"1 Rue de Rivoli","city":"Paris","country":"France"}}' "$admin"
  expect 201
  car="$(json 'b["id"]')"
fi
# A year ahead plus a random hour, so that runs do not collide with one another.
read -r pickup dropoff < <(python3 -c "
import datetime, random
t = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
t += datetime.timedelta(days=365, hours=random.randrange(24 * 300))
f = '%Y-%m-%dT%H:%M:%SZ'
print(t.strftime(f), (t + datetime.timedelta(days=1)).strftime(f))")
call POST /bookings "{\"carId\":\"$car\",\"pickupTime\":\"$pickup\",\"dropoffTime\":\"$dropoff\"}" "$token"
expect 201
booking="$(json 'b["id"]')"
ok

step="cancellation"
call PATCH "/bookings/$booking" '{"status":"cancelled"}' "$token"
expect 200
[ "$(json 'b["status"]')" = "cancelled" ] || fail "the booking is not cancelled"
ok
echo "smoke test passed against $base"
