#!/usr/bin/env bash
# `npm run build`: the npm package in pkg/ — release wasm, wasm-bindgen glue (--target web),
# wasm-opt -Oz, and the package's own package.json. Assumes the bootstrap has run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --target wasm32-unknown-unknown -p wasm-token-manager
rm -rf pkg
wasm-bindgen --target web --out-dir pkg target/wasm32-unknown-unknown/release/wasm_token_manager.wasm
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  pkg/wasm_token_manager_bg.wasm -o pkg/wasm_token_manager_bg.wasm
# The glue is minified like any published bundle (comments and long helper names are most of
# its bytes); the readable API and its docs live in the .d.ts.
node_modules/.bin/esbuild pkg/wasm_token_manager.js --minify --format=esm --target=es2020 \
  --log-level=warning --allow-overwrite --outfile=pkg/wasm_token_manager.js
node scripts/package-json.mjs
cp README.md pkg/README.md
node scripts/size.mjs pkg
