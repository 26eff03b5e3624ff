// `npm run bench` (through scripts/bench.sh): this package side by side with the JavaScript
// auth libraries, measured in one run, on this machine. Prints a Markdown report and writes it
// to bench/RESULTS.md (`--quick`: bench/results-raw/RESULTS-quick.md, so a smoke run never
// replaces the committed results). Raw samples go to bench/results-raw/.
//
//   node bench/run.mjs [--quick] [--only size,decode,verify,startup,fetch,refresh,memory]
//                      [--verify-baseline DIR]  (a `pkg/verify` of another build, measured in
//                      the verify section as one more contestant: before and after in one run)
//
// No number is asserted: the exit status is non-zero only when a section could not run.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { BENCH, DIST, RAW_DIR, ROOT, WWW } from "./lib/paths.mjs";
import { launchChromium } from "./lib/browser.mjs";
import { startServer } from "./lib/server.mjs";
import { claimCount, decodeTokens, verifyFixtures } from "./lib/tokens.mjs";
import { int, median, num, quantile, ratio, signed, table } from "./lib/stats.mjs";
import { sizeSection } from "./sections/size.mjs";
import { decodeSection, medianRatio, openMicroPage, verifySection } from "./sections/micro.mjs";
import { startupSection } from "./sections/startup.mjs";
import { fetchSection } from "./sections/fetch.mjs";
import { refreshSection } from "./sections/refresh.mjs";
import { memorySection } from "./sections/memory.mjs";

const SECTIONS = ["size", "decode", "verify", "startup", "fetch", "refresh", "memory"];
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const onlyArg = args.find((a) => a.startsWith("--only"));
const only = onlyArg ? (onlyArg.includes("=") ? onlyArg.split("=")[1] : args[args.indexOf(onlyArg) + 1]).split(",") : SECTIONS;
for (const a of only) if (!SECTIONS.includes(a)) throw new Error(`unknown section ${a}; known: ${SECTIONS.join(", ")}`);
const baselineArg = args.indexOf("--verify-baseline");
const verifyBaseline = baselineArg >= 0 ? args[baselineArg + 1] : undefined;

/** Iterations per mode: quick runs the same code paths, shorter. */
const P = quick
  ? { rounds: 5, decodeMs: 25, verifyMs: 25, startupSamples: 2, fetchPairs: 100, tabTtl: 4, lifetimes: 2, wakeTtl: 3, wakeSamples: 1, memDecodes: 2000, memCycles: 200 }
  : { rounds: 9, decodeMs: 300, verifyMs: 300, startupSamples: 15, fetchPairs: 1000, tabTtl: 20, lifetimes: 3, wakeTtl: 5, wakeSamples: 5, memDecodes: 10000, memCycles: 1000 };

const log = (...m) => console.error(`[bench ${((performance.now()) / 1000).toFixed(1)}s]`, ...m);

const ANCHORS = ["jwt-decode", "jose", "oidc-client-ts", "@supabase/auth-js", "@okta/okta-auth-js", "@auth0/auth0-spa-js", "@azure/msal-browser", "esbuild"];

function installedVersions() {
  const v = {};
  for (const p of ANCHORS) v[p] = JSON.parse(readFileSync(join(BENCH, "node_modules", p, "package.json"), "utf8")).version;
  const rootRequire = createRequire(join(ROOT, "package.json"));
  v["playwright-core"] = JSON.parse(readFileSync(rootRequire.resolve("playwright-core/package.json"), "utf8")).version;
  return v;
}

function git(...a) {
  try {
    return execFileSync("git", ["-C", ROOT, ...a], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

function bundleMicroPage() {
  mkdirSync(DIST, { recursive: true });
  execFileSync(join(BENCH, "node_modules/.bin/esbuild"), [
    join(WWW, "micro.js"), "--bundle", "--minify", "--format=esm", "--platform=browser",
    "--external:/pkg/*", `--outfile=${join(DIST, "micro.js")}`, "--log-level=warning",
  ], { cwd: BENCH, stdio: ["ignore", "inherit", "inherit"] });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  mkdirSync(RAW_DIR, { recursive: true });
  const started = new Date();
  const versions = installedVersions();
  const load0 = os.loadavg()[0];
  const results = {};
  const failures = [];
  const run = async (name, fn) => {
    if (!only.includes(name)) return;
    const t0 = performance.now();
    log(`${name}…`);
    try {
      results[name] = await withTimeout(fn(), quick ? 180_000 : 900_000, name);
      log(`${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      failures.push(name);
      results[name] = { md: `**Not measured**: ${String(e.message ?? e).split("\n")[0]}`, error: String(e.stack ?? e) };
      log(`${name} FAILED:`, e);
    }
  };

  bundleMicroPage();
  const server = await startServer({ name: "main", accessTtl: 3600, www: WWW });
  const browser = await launchChromium();
  const chromiumVersion = browser.version();
  let micro;
  try {
    await run("size", () => sizeSection({ versions }));
    const decodeInput = await decodeTokens();
    const verifyInput = await verifyFixtures();
    const tokenLabels = {
      small: `${decodeInput.small[0].length} B HS256, ${claimCount(decodeInput.small[0])} claims`,
      large: `${decodeInput.large[0].length} B RS256, ${claimCount(decodeInput.large[0])} claims`,
    };
    if (only.includes("decode") || only.includes("verify")) {
      try {
        let baseline;
        if (verifyBaseline) {
          // Served with the bench pages, next to the bundle.
          cpSync(verifyBaseline, join(DIST, "verify-baseline"), { recursive: true });
          baseline = "/dist/verify-baseline/wasm_token_manager.js";
        }
        micro = await openMicroPage(browser, server.origin, { decode: decodeInput, verify: verifyInput, baseline });
      } catch (e) {
        micro = { error: e };
      }
    }
    const needMicro = () => { if (micro.error) throw micro.error; return micro; };
    await run("decode", () => decodeSection({ ...needMicro(), rounds: P.rounds, ms: P.decodeMs, tokenLabels }));
    await run("verify", () => verifySection({ ...needMicro(), rounds: P.rounds, ms: P.verifyMs }));
    if (micro?.context) await micro.context.close();
    await run("startup", () => startupSection({ browser, origin: server.origin, samples: P.startupSamples, versions }));
    await run("fetch", () => fetchSection({ browser, origin: server.origin, pairs: P.fetchPairs }));
    await run("refresh", () => refreshSection({ browser, tabTtl: P.tabTtl, lifetimes: P.lifetimes, wakeTtl: P.wakeTtl, wakeSamples: P.wakeSamples }));
    await run("memory", () => memorySection({ browser, origin: server.origin, tokens: decodeInput.large, decodes: P.memDecodes, cycles: P.memCycles }));
  } finally {
    await browser.close();
    await server.stop();
  }

  const elapsed = (Date.now() - started.getTime()) / 1000;
  const md = report({ started, elapsed, versions, chromiumVersion, load0, results });
  const out = quick ? join(RAW_DIR, "RESULTS-quick.md") : join(BENCH, "RESULTS.md");
  writeFileSync(out, md);
  writeFileSync(join(RAW_DIR, quick ? "quick.json" : "full.json"), JSON.stringify({ started, params: P, versions, chromiumVersion, results }, null, 1));
  console.log(md);
  log(`wrote ${out.slice(ROOT.length + 1)} in ${elapsed.toFixed(0)} s${failures.length ? `; not measured: ${failures.join(", ")}` : ""}`);
  return failures.length ? 1 : 0;
}

function summary(results) {
  const rows = [];
  const s = results.size;
  if (s?.rows) {
    const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
    const label = { "jose-decode": "jose `decodeJwt`", "jose-verify": "jose `jwtVerify`" };
    const anchors = s.rows.slice(2).map((r) => `${label[r.key] ?? r.name.split(" ")[0]} ${kb(r.gzip)} (${ratio(r.gzip / s.ours.gzip)})`);
    rows.push(["Size, gzip -9 (what the SPA downloads)", `${kb(s.ours.gzip)}; verify entry ${kb(s.oursVerify.gzip)}`, anchors.join(" · ")]);
  }
  const d = results.decode?.ops;
  if (d) {
    for (const [g, label] of [["large", "Decode, 1.2 KB RS256 token, ops/s"], ["small", "Decode, 300 B HS256 token, ops/s"]]) {
      const o = d[g];
      rows.push([label, int(median(o.decodeClaims)),
        `jwt-decode ${int(median(o.jwtDecode))} (${ratio(medianRatio(o, "jwtDecode", "decodeClaims"))}) · jose ${int(median(o.decodeJwt))} (${ratio(medianRatio(o, "decodeJwt", "decodeClaims"))}) · floor ${int(median(o.floor))} (${ratio(medianRatio(o, "floor", "decodeClaims"))})`]);
    }
  }
  const v = results.verify?.ops;
  if (v) {
    for (const alg of ["RS256", "ES256", "EdDSA"]) {
      const o = v[alg];
      rows.push([`Verify ${alg}, ops/s`, int(median(o.verifyToken)),
        `jose (local JWKS) ${int(median(o["jwtVerify (local JWKS)"]))} (${ratio(medianRatio(o, "jwtVerify (local JWKS)", "verifyToken"))}) · floor ${int(median(o.floor))} (${ratio(medianRatio(o, "floor", "verifyToken"))})${o["verifyToken (baseline)"] ? ` · baseline build ${int(median(o["verifyToken (baseline)"]))} (${ratio(medianRatio(o, "verifyToken (baseline)", "verifyToken"))})` : ""}`]);
    }
  }
  const st = results.startup?.results;
  if (st) {
    const ours = st["wasm-token-manager"];
    const others = Object.entries(st).filter(([k]) => !k.startsWith("wasm-token-manager"))
      .map(([k, xs]) => `${k.split(" ")[0]} ${num(median(xs.map((x) => x.totalMs)), 1)}`);
    const preloaded = st["wasm-token-manager, wasm preloaded"];
    rows.push(["Start-up, ms (fresh page)", `\`init()\` → \`TokenManager\` ${num(median(ours.map((x) => x.initMs)), 1)}; from \`import()\` ${num(median(ours.map((x) => x.totalMs)), 1)}${preloaded ? `; with the \`.wasm\` preloaded ${num(median(preloaded.map((x) => x.totalMs)), 1)}` : ""}`, `\`import()\` → client: ${others.join(" · ")}`]);
  }
  const f = results.fetch;
  if (f?.bare) {
    const ms = (xs, q) => num(quantile(xs, q) / 1000, 2);
    rows.push([
      "`auth.fetch` per request (loopback `/api/me`)",
      `median ${ms(f.wrapped, 0.5)} ms, p99 ${ms(f.wrapped, 0.99)} ms; overhead ${signed(f.overheadUs)} µs (median of paired differences)`,
      `bare \`fetch\`: median ${ms(f.bare, 0.5)} ms, p99 ${ms(f.bare, 0.99)} ms; the same steps in JS: ${signed(f.jsOverheadUs)} µs`,
    ]);
    rows.push([
      "`auth.fetch` − the same steps in JS (median of paired differences)",
      `${signed(f.noDevtoolsVsJsUs)} µs with no DevTools attached (as a real page)`,
      `${signed(f.vsJsUs)} µs in the playwright-core page (DevTools \`Network\` on: it records each request's stack, dearer under a wasm frame)`,
    ]);
  }
  const r = results.refresh;
  if (r?.cases) {
    rows.push(["Refresh requests per token lifetime, 1 / 2 / 5 tabs", `${r.perLifetime.map((x) => num(x, 2)).join(" / ")}; token age at replacement ${r.meanAges.map((x) => num(x, 2)).join(" / ")} s`, "counted by the server; with short test lifetimes the manager refreshes at half-life"]);
    rows.push(["Wake (tab visible again, token expired) → fresh token", `${num(r.wakeMedianMs, 0)} ms median`, "loopback server"]);
  }
  const mem = results.memory?.cases;
  if (mem) {
    const pct = (a, b) => `${b >= a ? "+" : "−"}${num((Math.abs(b - a) / a) * 100, 1)} %`;
    const [decodes, refresh, control] = mem;
    rows.push([
      "Memory growth, after all ÷ after the first 100 (wasm memory / JS heap)",
      `${int(decodes.n)} decodes: ${pct(decodes.first.wasmBytes, decodes.last.wasmBytes)} / ${pct(decodes.first.heapBytes, decodes.last.heapBytes)}; ${int(refresh.n)} refresh cycles: ${pct(refresh.first.wasmBytes, refresh.last.wasmBytes)} / ${pct(refresh.first.heapBytes, refresh.last.heapBytes)}, then ${pct(refresh.last.heapBytes, refresh.later.heapBytes)} JS heap over ${int(refresh.n * 2)} more`,
      `target: within 10 %; the harness alone (no package, same cycles): JS heap ${pct(control.first.heapBytes, control.last.heapBytes)}, then ${pct(control.last.heapBytes, control.later.heapBytes)}`,
    ]);
  }
  return table(["measure", "wasm-token-manager", "anchors, same run (anchor ÷ ours)"], "lll", rows);
}

function report({ started, elapsed, versions, chromiumVersion, load0, results }) {
  const cpus = os.cpus();
  const commit = git("rev-parse", "--short", "HEAD");
  const dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "core", "Cargo.toml", "Cargo.lock") ? " with uncommitted changes to the package sources" : "";
  const pkgBuilt = statSync(join(ROOT, "pkg/wasm_token_manager_bg.wasm")).mtime.toISOString().slice(0, 16).replace("T", " ");
  const sec = (n, title, body) => `## ${n}. ${title}\n\n${body ?? "Not run (`--only`)."}\n`;
  return [
    `# wasm-token-manager side by side with the JavaScript auth libraries${quick ? " (quick run: fewer, shorter iterations — not for quoting)" : ""}`,
    "",
    `Measured ${started.toISOString().slice(0, 16).replace("T", " ")} UTC in ${Math.round(elapsed)} s by \`npm run bench${quick ? " -- --quick" : ""}\`.`,
    `Machine: ${cpus.length} × ${cpus[0]?.model?.trim() ?? "CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; load average ${load0.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end (the cores are shared: ratios are taken within each round for that reason).`,
    `Node ${process.version}, Chromium ${chromiumVersion} (headless, system package), playwright-core ${versions["playwright-core"]}.`,
    `This package: commit ${commit}${dirty}, \`pkg/\` built ${pkgBuilt} UTC (release, \`wasm-opt -Oz\`); the reference server is the debug build (\`target/debug/token-manager-server\`, dependencies optimised).`,
    `Anchors (pinned in \`bench/package-lock.json\`): ${ANCHORS.map((p) => `${p} ${versions[p]}`).join(", ")}.`,
    "",
    "Ratios are always **anchor ÷ this package**: above 1× the anchor is bigger (size), faster (ops/s) or slower (ms).",
    "",
    "## Summary",
    "",
    summary(results),
    "",
    sec(1, "Size", results.size?.md),
    sec(2, "Decode (unverified), headless Chromium, one page", results.decode?.md && `Pools of 32 distinct tokens of each kind (only \`jti\` differs), decoded round-robin; each contestant runs for ${P.decodeMs} ms per round, ${P.rounds} rounds after one warm-up, the order rotating every round. \`decodeClaims\` is the strict decoder (caps, duplicate-claim and claim-type checks, a frozen result); jwt-decode and jose check less (see bench/README.md).\n\n${results.decode.md}`),
    sec(3, "Verify (signature + `iss`, `aud`, `exp`, `nbf`), headless Chromium, same page", results.verify?.md && `Each call awaited before the next (the latency an app sees), pools of 32 tokens shaped like the reference server's; ${P.verifyMs} ms per contestant per round, ${P.rounds} rounds. \`verifyToken\` gets the inline JWKS and a fixed \`currentTime\` each call (it caches the imported key per options); jose gets \`createLocalJWKSet(jwks)\` (created once, it caches imported keys) or a \`CryptoKey\` imported once. The floor is \`crypto.subtle.verify\` with an imported key and no claim checks. Every contestant is first checked to refuse a forged signature.\n\n${results.verify.md}`),
    sec(4, "Start-up", results.startup?.md && `A fresh browser context per sample (empty HTTP and code caches), files from the loopback server, ${P.startupSamples} samples per contestant, interleaved. The anchors are the bundles of section 1.\n\n${results.startup.md}`),
    sec(5, "`auth.fetch` overhead", results.fetch?.md),
    sec(6, "Refresh requests per token lifetime, and wake", results.refresh?.md),
    sec(7, "Memory growth", results.memory?.md),
  ].join("\n");
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
