#!/usr/bin/env bash
# The wasm-bindgen-test suites (tests/*.rs) in headless Chromium via the system ChromeDriver.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=120
# ChromeDriver starts Chromium itself; these flags keep it headless, sandbox-free (root) and off
# the network this machine does not have.
cat > target/webdriver.json <<'JSON'
{ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"] } }
JSON
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/target/webdriver.json"
# The verifying build is a superset of the default one: its suites cover both.
cargo test --target wasm32-unknown-unknown -p wasm-token-manager --features verify,dpop "$@"
