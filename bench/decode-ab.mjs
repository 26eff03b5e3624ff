// Two builds of `decodeClaims` interleaved in one headless Chromium page, next to jose's
// `decodeJwt` and the `atob` + `JSON.parse` floor, on the bench's own tokens
// (bench/lib/tokens.mjs). Prints a Markdown table: ops/s medians and per-round ratios.
// Optionally writes a CPU profile of one contestant and prints its self time by function.
//
//   node bench/decode-ab.mjs --old DIR [--new DIR] [--rounds 15] [--ms 200]
//                            [--profile NAME --profile-ms 3000 --profile-out FILE]
// DIR is a built package (`bash scripts/build.sh` output, e.g. a copy of pkg/ made before a
// change); --new defaults to pkg/.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import { join, normalize } from "node:path";
import { BENCH, ROOT } from "./lib/paths.mjs";
import { launchChromium, openPage } from "./lib/browser.mjs";
import { decodeTokens, claimCount } from "./lib/tokens.mjs";
import { int, max, median, min, table } from "./lib/stats.mjs";

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : args[i + 1];
};
const oldDir = arg("old");
if (!oldDir) throw new Error("--old DIR (a built package) is required");
const newDir = arg("new", join(ROOT, "pkg"));
const rounds = Number(arg("rounds", 15));
const ms = Number(arg("ms", 200));
const profile = arg("profile");

const dist = join(BENCH, "www", "dist");
mkdirSync(dist, { recursive: true });
execFileSync(join(BENCH, "node_modules/.bin/esbuild"), [
  join(BENCH, "ab", "decode-page.js"), "--bundle", "--minify", "--format=esm", "--platform=browser", "--external:/old/*", "--external:/new/*",
  `--outfile=${join(dist, "decode-ab.js")}`, "--log-level=warning",
], { cwd: BENCH, stdio: ["ignore", "inherit", "inherit"] });

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };
const roots = { "/old/": oldDir, "/new/": newDir, "/dist/": dist };
const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  const headers = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
  if (path === "/") {
    res.writeHead(200, { ...headers, "content-type": "text/html" });
    return res.end("<!doctype html><title>decode A/B</title>");
  }
  const prefix = Object.keys(roots).find((p) => path.startsWith(p));
  const rel = prefix && normalize(path.slice(prefix.length));
  if (!rel || rel.startsWith("..")) {
    res.writeHead(404);
    return res.end();
  }
  try {
    const body = readFileSync(join(roots[prefix], rel));
    res.writeHead(200, { ...headers, "content-type": TYPES[rel.slice(rel.lastIndexOf("."))] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await launchChromium();
try {
  const { page } = await openPage(browser, origin);
  await page.evaluate(() => import("/dist/decode-ab.js"));
  const tokens = await decodeTokens();
  const names = await page.evaluate((t) => window.ab.setup(t), tokens);
  const label = (g) => `${tokens[g][0].length} B, ${claimCount(tokens[g][0])} claims`;

  if (profile) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
    const group = arg("group", "large");
    await page.evaluate(([c, g]) => window.ab.decode(c, g, 300), [profile, group]);
    await cdp.send("Profiler.start");
    await page.evaluate(([c, g, t]) => window.ab.decode(c, g, t), [profile, group, Number(arg("profile-ms", 3000))]);
    const { profile: p } = await cdp.send("Profiler.stop");
    const out = arg("profile-out");
    if (out) writeFileSync(out, JSON.stringify(p));
    const self = new Map();
    const dt = p.timeDeltas;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const hits = new Map();
    p.samples.forEach((id, i) => hits.set(id, (hits.get(id) ?? 0) + (dt[i + 1] ?? 0)));
    let total = 0;
    for (const [id, us] of hits) {
      const f = byId.get(id).callFrame;
      const kind = f.url.startsWith("wasm://") ? "wasm" : f.url ? "js" : "native";
      const key = `${kind} ${f.functionName || "(anonymous)"}${kind === "js" ? ` ${f.url.split("/").pop()}:${f.lineNumber}:${f.columnNumber}` : ""}`;
      self.set(key, (self.get(key) ?? 0) + us);
      total += us;
    }
    const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(arg("top", 30)));
    console.log(`\nCPU profile of \`${profile}\` on the ${label(group)} token, self time (${(total / 1000).toFixed(0)} ms sampled):\n`);
    console.log(table(["function", "self ms", "share"], "lrr", rows.map(([k, us]) => [`\`${k}\``, (us / 1000).toFixed(1), `${((us / total) * 100).toFixed(1)} %`])));
  }

  const ops = {};
  for (const g of Object.keys(tokens)) {
    ops[g] = Object.fromEntries(names.map((c) => [c, []]));
    for (const c of names) await page.evaluate(([c, g]) => window.ab.decode(c, g, 50), [c, g]);
  }
  for (let r = 0; r < rounds; r++) {
    for (const g of Object.keys(tokens)) {
      const order = names.map((_, i) => names[(i + r) % names.length]);
      for (const c of order) ops[g][c].push(await page.evaluate(([c, g, t]) => window.ab.decode(c, g, t), [c, g, ms]));
    }
  }
  const rows = [];
  for (const [g, by] of Object.entries(ops)) {
    for (const c of names) {
      const ratio = (base) => {
        const r = by[c].map((x, i) => x / by[base][i]);
        return `${median(r).toFixed(2)}× [${min(r).toFixed(2)}–${max(r).toFixed(2)}]`;
      };
      rows.push([label(g), c, int(median(by[c])), `${int(min(by[c]))}–${int(max(by[c]))}`, ratio("new"), ratio("jose")]);
    }
  }
  console.log(`\n${rounds} rounds of ${ms} ms per contestant, order rotated each round; old = ${oldDir}, new = ${newDir}\n`);
  console.log(table(["token", "decoder", "ops/s (median)", "ops/s range", "÷ new, per round", "÷ jose, per round"], "llrrrr", rows));
} finally {
  await browser.close();
  server.close();
}
