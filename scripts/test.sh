#!/usr/bin/env bash
# `npm test`: every suite, on a fresh machine. Bootstraps first (idempotent), then:
# formatting, clippy on the host and on wasm32, rustdoc with warnings denied, Rust unit/scenario/property/integration tests
# (the server's integration suite on SQLite, on one Redis and on a Redis Cluster),
# the release server binary under hostile input,
# the core built for wasm32, wasm-bindgen tests in headless Chromium, the npm package build and
# its packaging checks, a benchmark smoke run (nothing asserted), the conformance kit against the
# reference server (and against a deliberately broken deployment), and the end-to-end tests.
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
# The default entry alone: its core has no `verify-messages` (with the core selected too, cargo
# unifies the core's default features in).
cargo clippy --target wasm32-unknown-unknown -p wasm-token-manager --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p wasm-token-manager --features verify,dpop --all-targets -- -D warnings

step "cargo doc (warnings denied: broken or private intra-doc links fail the run)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

step "Rust tests (host)"
cargo test --workspace
# The core as the browser package's default entry builds it (no `verify-messages`).
cargo test -p token-manager-core --no-default-features --lib

step "the server's integration suite once more, on Redis (issue 14)"
# The same tests, another store: tests/common reads TOKEN_SERVER_TEST_STORE. The
# redis-server runs on a free loopback port for this step only and is stopped by its PID.
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --databases 4096 >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
TOKEN_SERVER_TEST_STORE="redis://127.0.0.1:$redis_port" cargo test -p token-manager-server --tests
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
trap - EXIT

step "the server's integration suite once more, on a 3-master Redis Cluster (issue 14)"
# The same tests on the cluster code path (redis+cluster://). A cluster has one database, so
# the tests run one at a time and tests/common empties every node before each. Ports below
# 55000: a node also binds its cluster bus on port + 10000.
cluster_dir=$(mktemp -d)
cluster_pids=()
trap 'kill "${cluster_pids[@]}" 2>/dev/null || true; rm -rf "$cluster_dir"' EXIT
cluster_nodes=()
for _ in 1 2 3; do
  port=$(python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p < 55000: print(p); break')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --dir "$cluster_dir" >/dev/null &
  cluster_pids+=($!)
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  cluster_nodes+=("127.0.0.1:$port")
done
redis-cli --cluster create "${cluster_nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
until redis-cli -p "${cluster_nodes[0]##*:}" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
TOKEN_SERVER_TEST_STORE="redis+cluster://$(IFS=,; echo "${cluster_nodes[*]}")" \
  cargo test -p token-manager-server --tests -- --test-threads=1
kill "${cluster_pids[@]}"; wait "${cluster_pids[@]}" 2>/dev/null || true
rm -rf "$cluster_dir"
trap - EXIT

step "release server binary (--profile server-release) under hostile request data"
# The deployed shape: optimised, panics unwinding into the server's 500 layer. The same test
# file ran above against the debug binary; here it runs against the release one.
cargo build --profile server-release -p token-manager-server
TOKEN_SERVER_BIN="$PWD/target/server-release/token-manager-server" \
  cargo test -p token-manager-server --test release_binary

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

step "conformance kit against the reference server and a broken deployment"
bash scripts/conformance.sh

step "Node: every entry imports without window, React server render"
node --test tests/node/

step "end-to-end tests in Chromium"
bash scripts/e2e.sh

step "end-to-end tests through nginx: 3 server instances on one Redis (issue 14)"
# tests/e2e/helpers/shared.mjs starts a redis-server (append-only file), 3 instances and nginx
# round robin for each spec: multiple tabs, lost responses, logout, and an instance killed
# and Redis restarted under live tabs.
TOKEN_SERVER_E2E_SHARED=1 E2E_SPECS="tests/e2e/tabs.test.mjs tests/e2e/failures.test.mjs \
  tests/e2e/session.test.mjs tests/e2e/shared-store.test.mjs" bash scripts/e2e.sh

step "end-to-end tests of the upstream mode on Redis: 2 server instances behind nginx (issue 19)"
# The same spec as in the step above, the provider's tokens and the upstream-refresh lock in
# Redis: sign-in, rotation, logout, provider down, and tabs on both instances making one
# upstream refresh per token. About 50 s.
TOKEN_SERVER_E2E_SHARED=1 E2E_SPECS="tests/e2e/oidc.test.mjs" bash scripts/e2e.sh

echo
echo "all suites passed"
