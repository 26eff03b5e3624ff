#!/usr/bin/env bash
# Builds the release server (--profile server-release) and measures slow-client exhaustion
# with bench/server/slow-clients.mjs: 300 connections trickling bodies, a file descriptor
# limit of 256, and one JWKS request. Prints a Markdown table. Extra arguments go to the script
# (e.g. --slow 500, or -- --max-connections 100 for server flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --profile server-release -p token-manager-server
exec node bench/server/slow-clients.mjs "$@"
