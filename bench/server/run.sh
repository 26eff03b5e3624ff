#!/usr/bin/env bash
# Runs the reference server benchmark with optimisations and prints a Markdown table.
#   bench/server/run.sh           full run (about 2 minutes)
#   bench/server/run.sh --quick   short run (well under 30 s once built)
#   bench/server/run.sh --aborted-logins   150 logins abandoned by their clients: peak
#                                          threads, RSS, hashes at once (own process)
#   bench/server/run.sh --login-throttle   password guesses an attacker gets checked,
#                                          throttle off and on [--quick]
#   bench/server/run.sh --stores [--quick] the refresh and /api/me cells on SQLite, on a
#                                          redis-server and on a 3-master Redis Cluster
#                                          (started here on free loopback ports, stopped by PID),
#                                          then on both with 3 instances behind nginx
#   bench/server/run.sh --stores --single --alg EdDSA --alg RS256 --endpoint refresh
#                                          only SQLite and one redis-server, one instance,
#                                          only those rows (--alg and --endpoint go to every run)
set -euo pipefail
cd "$(dirname "$0")/../.."
# The workspace's release profile is tuned for the smallest wasm (opt-level "z", fat LTO,
# panics abort); the server's own profile is what a deployment runs: speed, unwinding panics,
# and a build that does not take minutes.
if [ "${1:-}" = "--stores" ]; then
  shift
  single_only=no
  args=()
  for a in "$@"; do
    if [ "$a" = "--single" ]; then single_only=yes; else args+=("$a"); fi
  done
  set -- "${args[@]}"
  # Below 55000: a cluster node also binds its bus on port + 10000.
  free_port() {
    python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p < 55000: print(p); break'
  }
  dir=$(mktemp -d)
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
  start() { # port [extra args]
    local port=$1; shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --dir "$dir" "$@" >/dev/null &
    pids+=($!)
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  }
  single=$(free_port); start "$single"
  bench() { cargo bench --profile server-release -p token-manager-server --bench server -- "$@"; }
  if [ "$single_only" = yes ]; then
    bench "$@"
    bench "$@" --no-header --store "redis://127.0.0.1:$single"
    exit 0
  fi
  nodes=()
  for _ in 1 2 3; do
    p=$(free_port)
    start "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf"
    nodes+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  until redis-cli -p "${nodes[0]##*:}" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
  cluster=$(IFS=,; echo "${nodes[*]}")
  bench "$@"
  bench "$@" --no-header --store "redis://127.0.0.1:$single"
  bench "$@" --no-header --store "redis+cluster://$cluster"
  # Each run generates its own key-encryption key: the keys the runs above sealed must go.
  redis-cli -p "$single" flushall >/dev/null
  for n in "${nodes[@]}"; do redis-cli -p "${n##*:}" flushall >/dev/null; done
  bench "$@" --no-header --store "redis://127.0.0.1:$single" --instances 3
  bench "$@" --no-header --store "redis+cluster://$cluster" --instances 3
  exit 0
fi
exec cargo bench --profile server-release -p token-manager-server --bench server -- "$@"
