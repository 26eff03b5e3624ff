#!/usr/bin/env bash
# The wasm-bindgen-test suites (tests/*.rs) in headless Chromium, through scripts/wasm-runner.mjs
# (playwright-core and /usr/bin/chromium; the runner's own WebDriver mode stalls on a loaded
# machine, see that script).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="node $PWD/scripts/wasm-runner.mjs"
# The harness's own bound on one async test (wasm-bindgen-test reads it).
export WASM_BINDGEN_TEST_TIMEOUT=120
# The verifying build is a superset of the default one: its suites cover both.
cargo test --target wasm32-unknown-unknown -p wasm-token-manager --features verify,dpop "$@"
