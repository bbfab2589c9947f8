#!/usr/bin/env bash
# The whole stack in the foreground: infrastructure, then every service as its
# own process (Procfile, via honcho). Ctrl-C or SIGTERM stops every process it
# started, infrastructure included if this run started it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DATA="${CRM_DATA_DIR:-$ROOT/.data}"
mkdir -p "$DATA"

rabbit_was_up=0; ferret_was_up=0
scripts/infra.sh rabbit-up && rabbit_was_up=1 || true
scripts/infra.sh ferret-up && ferret_was_up=1 || true
scripts/infra.sh up

# A development secret, generated once and kept under .data/: never a default.
if [ -z "${CRM_JWT_SECRET:-}" ]; then
  [ -s "$DATA/jwt_secret" ] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$DATA/jwt_secret")
  CRM_JWT_SECRET="$(cat "$DATA/jwt_secret")"
  export CRM_JWT_SECRET
fi
export PYTHONUNBUFFERED=1
# eventlet announces its deprecation on every start; nameko 3 still needs it.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"

honcho_pid=""
stop() {
  trap - INT TERM
  if [ -n "$honcho_pid" ]; then kill -TERM "$honcho_pid" 2>/dev/null || true; wait "$honcho_pid" 2>/dev/null || true; fi
  [ "${CRM_KEEP_INFRA:-0}" = 1 ] && exit 0
  [ "$ferret_was_up" = 1 ] || scripts/infra.sh stop-ferret || true
  [ "$rabbit_was_up" = 1 ] || scripts/infra.sh stop-rabbit || true
  exit 0
}
trap stop INT TERM

.venv/bin/honcho -f "${CRM_PROCFILE:-Procfile}" start &
honcho_pid=$!
wait "$honcho_pid" || true
honcho_pid=""
stop
