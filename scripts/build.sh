#!/usr/bin/env bash
# `npm run build`: the npm package in pkg/ — release wasm, wasm-bindgen glue (--target web),
# wasm-opt -Oz, a minified glue (imports renamed short), and the package's own package.json. Two entries:
#   pkg/            `wasm-token-manager`         (no signature verification)
#   pkg/verify/     `wasm-token-manager/verify`  (with the `verify` feature)
#   pkg/react/      `wasm-token-manager/react`   (src/js/react.js over the default entry)
# Assumes the bootstrap has run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

wasm_opt_features="--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue"

# The standard library is rebuilt with the package (`-Zbuild-std`, needs the rust-src component)
# so that panics abort on the spot (`-Cpanic=immediate-abort`): no panic message, location or
# `core::fmt` panic machinery in the wasm, about 3.4 KB gzip. These are unstable flags, enabled on
# the stable toolchain with RUSTC_BOOTSTRAP=1 for this build only (README "Decisions").
# `optimize_for_size` picks core's smaller algorithms. `-Zfmt-debug=none` empties every `Debug`
# impl (nothing outside tests formats with `{:?}`) and `-Zlocation-detail=none` drops the source
# paths `#[track_caller]` would embed. `--cfg tm_fast_scan` compiles the core's claims scan
# (`decodeClaims`' hot loop, core/src/json.rs) with `#[optimize(speed)]`: 3 % faster and, at
# this crate's opt-level z, 150 B gzip smaller (README "Size"). Its own target dir keeps these flags from invalidating the
# ordinary builds and test builds.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=target/pkg-build
export RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none --cfg tm_fast_scan"
build_std="-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size"

# wasm-opt beyond -Oz, each flag measured on its own (README "Size"): a function with one caller
# is inlined only when small (by default any size is: the larger bodies compress worse, about
# 1.3 KB gzip per entry), and the producers and target-features sections are not shipped.
wasm_opt_size="--one-caller-inline-max-function-size=25 --strip-producers --strip-target-features"

# build_entry OUT_DIR [CARGO_FEATURES]
build_entry() {
  local out=$1 features=${2:-}
  # Only this crate differs between the entries, so they share the dependency build.
  # shellcheck disable=SC2086
  cargo build --release --target wasm32-unknown-unknown -p wasm-token-manager $build_std \
    ${features:+--features "$features"}
  wasm-bindgen --target web --out-dir "$out" \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wasm_token_manager.wasm"
  # shellcheck disable=SC2086
  node_modules/.bin/wasm-opt -Oz $wasm_opt_size $wasm_opt_features \
    "$out/wasm_token_manager_bg.wasm" -o "$out/wasm_token_manager_bg.wasm"
  # The glue is minified like any published bundle (comments and long helper names are most
  # of its bytes); the readable API and its docs live in the .d.ts. Bundled: the JS the crate
  # imports itself (src/js/fetch.js, which wasm-bindgen copies to snippets/) goes inline, so
  # the package stays one module and one wasm per entry.
  node_modules/.bin/esbuild "$out/wasm_token_manager.js" --bundle --minify --format=esm \
    --target=es2020 --log-level=warning --allow-overwrite --outfile="$out/wasm_token_manager.js"
  rm -rf "$out/snippets"
  # Short names for the imports the glue hands the wasm (README "Size"); checked, not guessed.
  node scripts/minify-imports.mjs "$out"
  # … and the closure-invoke exports only the glue calls (their names carry mangled types and
  # crate hashes, up to 334 bytes each; README "Size", fifth pass).
  node scripts/minify-exports.mjs "$out"
  # The declarations use `Symbol.dispose` (wasm-bindgen's `[Symbol.dispose](): void`), which
  # TypeScript only knows with the esnext.disposable lib: without this reference an app with the
  # usual `lib: ["ES2022", "DOM"]` and `skipLibCheck: false` fails to type-check (TS2550).
  sed -i '1i /// <reference lib="esnext.disposable" />' "$out/wasm_token_manager.d.ts"
  # The unions of error codes are generated from the core's registry (ErrorCode::TYPESCRIPT);
  # a wasm-bindgen that dropped the section would ship `code: ErrorCode` undefined.
  for union in DecodeErrorCode VerifyErrorCode ErrorCode; do
    grep -q "^export type $union =" "$out/wasm_token_manager.d.ts" ||
      { echo "build: $union is missing from $out/wasm_token_manager.d.ts" >&2; exit 1; }
  done
}

rm -rf pkg
build_entry pkg
build_entry pkg/verify verify,dpop
# The React bindings are hand-written JS (no JSX, no bundling: `react` and the default entry
# stay imports, so the app shares its React and the wasm); only minified.
mkdir -p pkg/react
node_modules/.bin/esbuild src/js/react.js --minify --format=esm --target=es2020 \
  --log-level=warning --outfile=pkg/react/index.js
cp src/js/react.d.ts pkg/react/index.d.ts
node scripts/package-json.mjs
cp README.md LICENSE-MIT LICENSE-APACHE pkg/
echo "wasm-token-manager:"
node scripts/size.mjs pkg
echo "wasm-token-manager/verify:"
node scripts/size.mjs pkg/verify
echo "wasm-token-manager/react (on top of the default entry):"
node scripts/size.mjs pkg/react index.js
