#!/usr/bin/env bash
# Deploys an image to one environment's overlay and waits for the rollout, or rolls back.
#   scripts/deploy-k8s.sh staging|production IMAGE     e.g. ghcr.io/acme/carrental:3f2c1e0
#   scripts/deploy-k8s.sh rollback staging|production
# Needs kubectl. KUBECONFIG_DATA, when set, is the kubeconfig itself (CI); otherwise the
# usual KUBECONFIG applies.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${KUBECONFIG_DATA:-}" ]; then
  KUBECONFIG="$(mktemp)"
  export KUBECONFIG
  trap 'rm -f "$KUBECONFIG"' EXIT
  printf '%s' "$KUBECONFIG_DATA" > "$KUBECONFIG"
fi

namespace_of() {
  case "$1" in
    staging) echo carrental-staging ;;
    production) echo carrental ;;
    *) echo "unknown environment: $1 (staging or production)" >&2; exit 2 ;;
  esac
}

if [ "${1:-}" = rollback ]; then
  ns="$(namespace_of "${2:?which environment}")"
  echo "== rolling back deployment/carrental in $ns"
  kubectl -n "$ns" rollout undo deployment/carrental
  kubectl -n "$ns" rollout status deployment/carrental --timeout=5m
  exit 0
fi

env="${1:?staging or production}"
image="${2:?the image to deploy}"
ns="$(namespace_of "$env")"
echo "== applying deploy/k8s/overlays/$env"
kubectl apply -k "deploy/k8s/overlays/$env"
echo "== deploying $image to $ns"
kubectl -n "$ns" set image deployment/carrental migrate="$image" carrental="$image"
kubectl -n "$ns" set image cronjob/carrental-backup tools="$image"
if ! kubectl -n "$ns" rollout status deployment/carrental --timeout=10m; then
  echo "== the rollout did not finish: rolling back" >&2
  kubectl -n "$ns" rollout undo deployment/carrental
  kubectl -n "$ns" rollout status deployment/carrental --timeout=5m
  exit 1
fi
