#!/usr/bin/env bash
# The web app (web/): installed from its lock file, its API types generated
# from the gateway's OpenAPI document, built into web/dist. Each step runs
# only when its inputs changed, so `make run` on an unchanged tree costs a
# second.
#   scripts/web.sh build   install (npm ci), types, build
#   scripts/web.sh check   component tests (vitest) and the type check
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WEB="$ROOT/web"
PY="$ROOT/.venv/bin/python"
log() { printf '[web] %s\n' "$*" >&2; }

need_node() {
  if ! command -v node >/dev/null 2>&1; then
    log "Node.js is missing: install Node.js 20.19+ (with npm) and run make again"; exit 1
  fi
  local v; v=$(node -p 'process.versions.node')
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
    || { log "Node.js $v is too old: Vite needs 20.19 or newer"; exit 1; }
}

install() {
  need_node
  local want have
  want=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$WEB/node_modules/.crm-lock" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    log "npm ci (package-lock.json changed or first install)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$WEB/node_modules/.crm-lock"
  fi
}

types() {
  # The document is rewritten only when it changed; the types follow it.
  PYTHONWARNINGS=ignore "$PY" -m gateway.openapi "$WEB/.openapi.json"
  if [ ! -f "$WEB/src/api/schema.d.ts" ] || [ "$WEB/.openapi.json" -nt "$WEB/src/api/schema.d.ts" ]; then
    log "generating API types from the OpenAPI document"
    (cd "$WEB" && npx --no-install openapi-typescript .openapi.json -o src/api/schema.d.ts \
      --default-non-nullable false --silent)
  fi
}

inputs_hash() {
  (cd "$WEB" && find src public index.html vite.config.ts tsconfig.json package-lock.json \
      -type f ! -name '*.test.ts' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

build() {
  install
  types
  local want
  want=$(inputs_hash)
  if [ "$(cat "$WEB/dist/.crm-build" 2>/dev/null || true)" != "$want" ]; then
    log "building the web app"
    (cd "$WEB" && npx --no-install vite build --logLevel warn)
    echo "$want" >"$WEB/dist/.crm-build"
  fi
}

check() {
  install
  types
  (cd "$WEB" && npx --no-install vitest run --reporter=dot && npx --no-install vue-tsc --noEmit -p tsconfig.json)
}

case "${1:-build}" in
  build) build ;;
  check) check ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
