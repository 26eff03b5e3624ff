#!/usr/bin/env bash
# `npm run bench`: this package side by side with jwt-decode, jose, oidc-client-ts, supabase
# auth-js, okta-auth-js, auth0-spa-js and msal-browser, measured in one run in headless
# Chromium. Prints a Markdown report on stdout and writes it to bench/RESULTS.md.
#   npm run bench                       full run (about 5 minutes)
#   npm run bench -- --quick            same code paths, fewer and shorter iterations (under a
#                                       minute once built); writes bench/results-raw/RESULTS-quick.md
#   npm run bench -- --only size,decode sections: size, decode, verify, startup, fetch, refresh, memory
# The anchors live in bench/package.json, never in the product. No number is asserted: the
# exit status is non-zero only when a section could not run at all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1mbench:\033[0m %s\n' "$*" >&2; }

# Root npm packages (playwright-core), the wasm toolchain, and Chromium from Debian's packages
# when missing. Idempotent; its messages go to stderr so stdout stays the report.
bash scripts/bootstrap.sh --browser >&2

# The benchmark's own packages, pinned by bench/package-lock.json; reinstalled only when the
# lockfile changed.
stamp=bench/node_modules/.bench-lock
if [ ! -f "$stamp" ] || ! cmp -s bench/package-lock.json "$stamp"; then
  say "installing the benchmark's npm packages (npm ci --prefix bench)"
  npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
  cp bench/package-lock.json "$stamp"
fi

if [ ! -f pkg/wasm_token_manager_bg.wasm ] || [ ! -f pkg/verify/wasm_token_manager_bg.wasm ]; then
  say "pkg/ is missing: building the package (npm run build)"
  bash scripts/build.sh >&2
fi

# Up to date in a second when nothing changed.
say "building the reference server (debug)"
cargo build -p token-manager-server --quiet

exec node bench/run.mjs "$@"
