#!/usr/bin/env bash
# `npm test`: every suite, on a fresh machine. Bootstraps first (idempotent), then:
# formatting, clippy on the host and on wasm32, Rust unit/scenario/property/integration tests,
# the core built for wasm32, wasm-bindgen tests in headless Chromium, the npm package build and
# its packaging checks, a benchmark smoke run (nothing asserted), and the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "bootstrap"
bash scripts/bootstrap.sh --browser

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (host)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown -p wasm-token-manager -p token-manager-core --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p wasm-token-manager --features verify --all-targets -- -D warnings

step "Rust tests (host)"
cargo test --workspace

step "core builds for wasm32"
cargo build -p token-manager-core --target wasm32-unknown-unknown

step "wasm-bindgen tests in headless Chromium"
bash scripts/wasm-test.sh

step "npm package build"
bash scripts/build.sh

step "packaging checks (tarball contents, publint, attw)"
bash scripts/pack-check.sh

step "benchmark smoke run (npm run bench -- --quick; no number is asserted)"
bash scripts/bench.sh --quick > /dev/null

step "Node: every entry imports without window, React server render"; node --test tests/node/

step "end-to-end tests in Chromium"
bash scripts/e2e.sh

echo
echo "all suites passed"
