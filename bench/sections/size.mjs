// 1. Size: this package's wasm + glue (both entries) against each anchor bundled from a minimal
// entry (bench/entries/*.js) with esbuild, as an SPA's build would.
import { readFileSync, readdirSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { BENCH, DIST, ROOT } from "../lib/paths.mjs";
import { int, ratio, table } from "../lib/stats.mjs";

export const ANCHOR_ENTRIES = {
  "jwt-decode": { pkg: "jwt-decode", what: "`jwtDecode`" },
  "jose-decode": { pkg: "jose", what: "`decodeJwt`" },
  "jose-verify": { pkg: "jose", what: "`jwtVerify` + `createRemoteJWKSet`" },
  "oidc-client-ts": { pkg: "oidc-client-ts", what: "`UserManager`", client: true },
  "supabase-auth-js": { pkg: "@supabase/auth-js", what: "`AuthClient`", client: true },
  "okta-auth-js": { pkg: "@okta/okta-auth-js", what: "`OktaAuth`", client: true },
  "auth0-spa-js": { pkg: "@auth0/auth0-spa-js", what: "`Auth0Client`", client: true },
  "msal-browser": { pkg: "@azure/msal-browser", what: "`PublicClientApplication`", client: true },
};

function measure(buffers) {
  const sum = (f) => buffers.reduce((t, b) => t + f(b), 0);
  return {
    raw: sum((b) => b.length),
    // Each file is compressed on its own: the wasm and the glue are separate responses.
    gzip: sum((b) => gzipSync(b, { level: 9 }).length),
    brotli: sum((b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: b.length } }).length),
  };
}

/** Bundles every anchor entry into dist/anchors/ (also what the start-up section loads). */
export function bundleAnchors() {
  const out = join(DIST, "anchors");
  mkdirSync(out, { recursive: true });
  const esbuild = join(BENCH, "node_modules/.bin/esbuild");
  for (const name of Object.keys(ANCHOR_ENTRIES)) {
    execFileSync(esbuild, [
      join(BENCH, "entries", `${name}.js`), "--bundle", "--minify", "--format=esm",
      "--platform=browser", `--outfile=${join(out, `${name}.js`)}`, "--log-level=warning",
    ], { cwd: BENCH, stdio: ["ignore", "inherit", "inherit"] });
  }
  return out;
}

export async function sizeSection({ versions }) {
  const anchorsDir = bundleAnchors();
  const files = (dir) => ["wasm_token_manager_bg.wasm", "wasm_token_manager.js"].map((f) => readFileSync(join(ROOT, dir, f)));
  const ours = measure(files("pkg"));
  const oursVerify = measure(files("pkg/verify"));
  const rows = [
    { name: "**wasm-token-manager**", what: "`TokenManager`, `decodeClaims` (wasm + glue)", ...ours },
    { name: "**wasm-token-manager/verify**", what: "+ `verifyToken`, `verify` option (wasm + glue)", ...oursVerify },
  ];
  for (const [name, { pkg, what }] of Object.entries(ANCHOR_ENTRIES)) {
    const size = measure([readFileSync(join(anchorsDir, `${name}.js`))]);
    rows.push({ name: `${pkg} ${versions[pkg]}`, what, ...size, key: name });
  }
  const md = table(
    ["package", "entry (what the SPA imports)", "raw B", "gzip -9 B", "brotli B", "gzip ÷ ours", "brotli ÷ ours"],
    "llrrrrr",
    rows.map((r) => [r.name, r.what, int(r.raw), int(r.gzip), int(r.brotli), ratio(r.gzip / ours.gzip), ratio(r.brotli / ours.brotli)]),
  );
  return {
    md: [
      "Bytes an SPA downloads. This package: `pkg/wasm_token_manager_bg.wasm` + `pkg/wasm_token_manager.js` (each compressed on its own, as served), and the same for `pkg/verify/`. Anchors: `esbuild --bundle --minify --format=esm --platform=browser` of a minimal entry (`bench/entries/*.js`). Ratios are to the default entry; below 1× the anchor is smaller.",
      "",
      md,
    ].join("\n"),
    raw: rows,
    ours,
    oursVerify,
    rows,
  };
}
