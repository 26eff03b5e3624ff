#!/usr/bin/env bash
# `npm start`: bootstrap, build the npm package and the reference server, and serve the demo
# on http://localhost:8080 (DEMO_PORT overrides the port) with the demo account
# demo / demo-password, 30-second access tokens and the test switches. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

port=${DEMO_PORT:-8080}

bash scripts/bootstrap.sh
bash scripts/build.sh
# Debug is enough: the dependencies (crypto, SQLite) are optimised in the dev profile.
cargo build -p token-manager-server

ready=$(mktemp "${TMPDIR:-/tmp}/wasm-token-manager-start.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -f "$ready"
}
trap cleanup EXIT
# A background job of a script ignores Ctrl-C, so the trap passes it on as SIGTERM.
trap 'exit 130' INT
trap 'exit 143' TERM

# The server logs to stderr (shown here); its only stdout line says that it listens.
# The demo account comes from the environment, not a flag: `ps` shows every flag to every
# user of the machine, while a process's environment is readable only by its owner and root.
TOKEN_SERVER_DEMO_USERS=demo:demo-password target/debug/token-manager-server \
  --listen "127.0.0.1:$port" \
  --database :memory: \
  --access-ttl 30 \
  --test-switches \
  --www www \
  --pkg pkg >"$ready" &
server=$!

for _ in $(seq 300); do
  grep -q '^listening on ' "$ready" && break
  if ! kill -0 "$server" 2>/dev/null; then
    wait "$server" || status=$?
    echo "start: the server exited (status ${status:-0}); is port $port taken? Try DEMO_PORT=8081 npm start" >&2
    server=""
    exit 1
  fi
  sleep 0.1
done
if ! grep -q '^listening on ' "$ready"; then
  echo "start: the server did not report listening within 30 s" >&2
  exit 1
fi

printf '\n\033[1mDemo: http://localhost:%s\033[0m   (demo / demo-password; Ctrl-C stops the server)\n' "$port"
printf 'Open it on localhost: the refresh cookie is a Secure __Host- cookie, which browsers accept on http://localhost.\n\n'
wait "$server"
