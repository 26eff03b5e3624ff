#!/usr/bin/env bash
# Idempotent bootstrap: installs what `npm start` and `npm test` need on a fresh machine and
# skips whatever is already in place. Usage: scripts/bootstrap.sh [--browser]
#   --browser  also install Chromium and ChromeDriver (the test suites need them).
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "bootstrap: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# Rust: the wasm target, the lint tools, and the standard library's source (the package build
# rebuilds std with `-Zbuild-std`, see scripts/build.sh).
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for component in clippy rustfmt rust-src; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding $component"
    rustup component add "$component"
  fi
done

# wasm-bindgen CLI at exactly the version of the wasm-bindgen crate in Cargo.lock: the two
# must match or the generated glue refuses to load.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wb_version" ]; then
  echo "bootstrap: cannot find wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb_version\$\| $wb_version "; then
  say "installing wasm-bindgen-cli $wb_version (takes a few minutes once)"
  cargo install wasm-bindgen-cli --version "=$wb_version"
fi

# Chromium and ChromeDriver from Debian, for wasm-bindgen-test and the end-to-end tests.
# No test tool is allowed to download a browser of its own.
if [ "$want_browser" = 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  say "installing chromium and chromium-driver"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# redis-server (and redis-cli) for the Redis store's tests, nginx for the multi-instance
# tests, from Debian. Installing them starts no service here: the tests start their own.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
  || { ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; }; then
  say "installing redis-server and nginx"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq redis-server nginx >/dev/null
fi

# npm packages (binaryen for wasm-opt, playwright-core to drive the system Chromium).
# `npm ci` when the lockfile changed since the last install, nothing otherwise.
stamp=node_modules/.bootstrap-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
