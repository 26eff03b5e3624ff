#!/usr/bin/env bash
# End-to-end tests (tests/e2e/*.test.mjs): the demo page and the npm package in the system
# Chromium, driven by playwright-core, against the real reference server with access tokens
# of a few seconds. Each spec starts its own server on a free port. Builds what is missing.
# Extra arguments go to `node --test` (e.g. --test-name-pattern=logout).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1me2e:\033[0m %s\n' "$*"; }

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "e2e: ${CHROMIUM:-/usr/bin/chromium} is missing: run bash scripts/bootstrap.sh --browser" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ]; then
  say "installing npm packages"
  bash scripts/bootstrap.sh
fi
if [ ! -f pkg/wasm_token_manager.js ] || [ ! -f pkg/wasm_token_manager_bg.wasm ]; then
  say "building the npm package (pkg/)"
  bash scripts/build.sh
elif newer=$(find src core/src Cargo.toml Cargo.lock -newer pkg/wasm_token_manager_bg.wasm -print -quit) && [ -n "$newer" ]; then
  # Not rebuilt here (npm test builds it just before): say so rather than test old code quietly.
  say "warning: pkg/ is older than $newer; run npm run build to test the current code"
fi
# Always: a no-op when up to date, and a stale server binary would test old code.
say "building the server"
cargo build --quiet -p token-manager-server

mkdir -p tests/e2e/artifacts
say "running tests/e2e/ (server logs and screenshots in tests/e2e/artifacts/)"
# E2E_SPECS: a space-separated list of spec files instead of the whole directory.
# shellcheck disable=SC2086
node --test --test-reporter=spec "$@" ${E2E_SPECS:-tests/e2e/}
