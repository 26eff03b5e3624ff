#!/usr/bin/env bash
# Runs the reference server benchmark with optimisations and prints a Markdown table.
#   bench/server/run.sh           full run (about 2 minutes)
#   bench/server/run.sh --quick   short run (well under 30 s once built)
#   bench/server/run.sh --aborted-logins   150 logins abandoned by their clients: peak
#                                          threads, RSS, hashes at once (own process)
#   bench/server/run.sh --login-throttle   password guesses an attacker gets checked,
#                                          throttle off and on [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
# The workspace's release profile is tuned for the smallest wasm (opt-level "z", fat LTO,
# panics abort); the server's own profile is what a deployment runs: speed, unwinding panics,
# and a build that does not take minutes.
exec cargo bench --profile server-release -p token-manager-server --bench server -- "$@"
