#!/usr/bin/env bash
# Packaging checks on the tarball users install: `npm pack` of pkg/, then
#   - its file list: only the package's own files (glue, wasm, declarations, package.json,
#     README, licence), nothing else — no sources, tests, maps or stray build output;
#   - publint --strict (warnings count as errors);
#   - @arethetypeswrong/cli, profile esm-only: the package is ESM by design (wasm-bindgen
#     --target web, `"type": "module"`), so `require()` from CommonJS is not a supported way in.
# The tools are pinned in scripts/pack-check/package.json (kept out of the root install).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mpack-check:\033[0m %s\n' "$*"; }

if [ ! -f pkg/package.json ] || [ ! -f pkg/wasm_token_manager_bg.wasm ]; then
  say "building the npm package (pkg/)"
  bash scripts/build.sh
fi

tools=scripts/pack-check
if [ ! -f "$tools/node_modules/.package-lock.json" ] ||
  [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
  say "installing publint and @arethetypeswrong/cli"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarball="$tmp/$(cd pkg && npm pack --pack-destination "$tmp" --loglevel=error | tail -n 1)"
[ -f "$tarball" ] || { echo "pack-check: npm pack wrote no tarball" >&2; exit 1; }
say "packed $(basename "$tarball") ($(wc -c < "$tarball") bytes)"

# Every entry: the glue, its declarations, the wasm and the wasm's declarations; the verifying
# build has the same four files under verify/; the React bindings are one module and its
# declarations under react/.
entry_files='wasm_token_manager\.js|wasm_token_manager\.d\.ts|wasm_token_manager_bg\.wasm|wasm_token_manager_bg\.wasm\.d\.ts'
allowed="^package/((verify/)?($entry_files)|react/index\.(js|d\.ts)|package\.json|README\.md|LICEN[CS]E[^/]*)$"
required=(package.json README.md LICENSE-MIT LICENSE-APACHE
  wasm_token_manager.js wasm_token_manager.d.ts wasm_token_manager_bg.wasm
  verify/wasm_token_manager.js verify/wasm_token_manager.d.ts verify/wasm_token_manager_bg.wasm
  react/index.js react/index.d.ts)

contents=$(tar -tzf "$tarball" | sort)
unexpected=$(grep -Ev "$allowed" <<<"$contents" || true)
if [ -n "$unexpected" ]; then
  echo "pack-check: the tarball holds files that are not part of the package:" >&2
  sed 's/^/  /' <<<"$unexpected" >&2
  exit 1
fi
for file in "${required[@]}"; do
  grep -qx "package/$file" <<<"$contents" || { echo "pack-check: package/$file is missing from the tarball" >&2; exit 1; }
done
say "tarball contents ($(wc -l <<<"$contents") files): only the package's own files"

say "publint --strict"
"$tools/node_modules/.bin/publint" run --strict "$tarball"

# The two `.wasm` subpath exports are assets (for `?url` imports or a custom `init(url)`), not
# modules TypeScript resolves, so attw's "no types" would be noise for them.
say "attw (profile esm-only)"
"$tools/node_modules/.bin/attw" "$tarball" --profile esm-only --format ascii \
  --exclude-entrypoints ./wasm_token_manager_bg.wasm ./verify/wasm_token_manager_bg.wasm

say "ok"
