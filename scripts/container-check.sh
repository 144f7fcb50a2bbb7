#!/usr/bin/env bash
# Builds the image and checks it, then the compose file, with Docker or Podman.
#
#   bash scripts/container-check.sh              # image, then compose: a model survives down/up
#   COMPOSE_PROFILES=dask TRAINING_BACKEND=dask bash scripts/container-check.sh
#                                                # the same with the Dask cluster's profile
#   COMPOSE_PROFILES=replicas bash scripts/container-check.sh
#                                                # and two replicas behind HAProxy on :8080
#
# ENGINE (docker or podman) and COMPOSE (the compose command) are found by themselves; set
# them to choose. Everything listens on 127.0.0.1 only; what it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-$(command -v docker >/dev/null && echo docker || echo podman)}
if [ -z "${COMPOSE:-}" ]; then
  if $ENGINE compose version >/dev/null 2>&1; then COMPOSE="$ENGINE compose"
  elif command -v docker-compose >/dev/null; then COMPOSE=docker-compose
  else echo "no compose command found: set COMPOSE" >&2; exit 1; fi
fi
export COMPOSE="$COMPOSE -p model-server-check"
IMAGE=model-server:latest
PORT=${CHECK_PORT:-18765}
NAME=model-server-check-$$

cleanup() { $ENGINE rm -f "$NAME" >/dev/null 2>&1 || true; $COMPOSE down >/dev/null 2>&1 || true; }
trap cleanup EXIT

wait_for() {  # URL: until it answers, at most a minute
  for _ in $(seq 1 120); do curl -fsS -m 2 "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "no answer from $1" >&2; return 1
}

echo "== image ($ENGINE)"
$ENGINE build -t "$IMAGE" .
$ENGINE run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
wait_for "http://127.0.0.1:$PORT/health" || { $ENGINE logs "$NAME" >&2; exit 1; }
$ENGINE image ls "$IMAGE"
$ENGINE rm -f "$NAME" >/dev/null

echo "== compose ($COMPOSE, profiles: ${COMPOSE_PROFILES:-none})"
$COMPOSE up -d --build
wait_for http://127.0.0.1:8000/health
if [ "${TRAINING_BACKEND:-local}" = dask ]; then
  bash scripts/check-compose-dask.sh
else
  bash scripts/check-compose-persistence.sh
fi
case ",${COMPOSE_PROFILES:-}," in
  *,replicas,*) "${PYTHON:-.venv/bin/python}" -m devtools.replicas_smoke ;;
esac
echo "container check: OK"
