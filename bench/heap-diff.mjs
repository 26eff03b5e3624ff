// Where the JS heap growth of the memory section (bench/sections/memory.mjs, refresh cycles)
// goes: two heap snapshots of the same page, after the first 100 refresh cycles and after
// 1,000, each after a forced GC, compared by node type and name. Not part of `npm run bench`
// (a snapshot takes seconds and perturbs the timing sections); run it by hand:
//
//   node bench/heap-diff.mjs            the package's refresh page (as in section 7)
//   node bench/heap-diff.mjs control    the control page: the same harness, no package
//
// Needs pkg/ built and the reference server built (npm run bench builds both). Prints the
// total per node type (`code` is V8's compiled code: bytecode, optimized code and its
// metadata; `object`, `closure`, `string`, `array` are what a leak would be) and the 20
// largest differences. Native (Blink) nodes are listed but are not in the section's figure:
// most are DevTools' own record of each request, kept because a CDP session is attached.
import { launchChromium, openPage } from "./lib/browser.mjs";
import { startServer } from "./lib/server.mjs";
import { WWW } from "./lib/paths.mjs";
import { TTL, prepareRefreshPage, refreshCycles } from "./sections/memory.mjs";

const control = process.argv[2] === "control";

async function snapshot(cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  const chunks = [];
  const take = (e) => chunks.push(e.chunk);
  cdp.on("HeapProfiler.addHeapSnapshotChunk", take);
  await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  cdp.off("HeapProfiler.addHeapSnapshotChunk", take);
  const s = JSON.parse(chunks.join(""));
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [ti, ni, si] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const sizes = new Map();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + ti]];
    const name = type.includes("string") ? "(strings)" : s.strings[s.nodes[i + ni]].slice(0, 70);
    const key = `${type}\t${name}`;
    const v = sizes.get(key) ?? [0, 0];
    v[0] += s.nodes[i + si];
    v[1] += 1;
    sizes.set(key, v);
  }
  return sizes;
}

const browser = await launchChromium();
const server = await startServer({ name: "heap-diff", accessTtl: TTL, www: WWW });
try {
  const { context, page } = await openPage(browser, server.origin, { beforeLoad: (p) => p.clock.install() });
  const cdp = await context.newCDPSession(page);
  await prepareRefreshPage(page, control);
  const cycle = (n) => refreshCycles(page, n);
  await cycle(100);
  const first = await snapshot(cdp);
  await cycle(900);
  const last = await snapshot(cdp);
  const rows = [...new Set([...first.keys(), ...last.keys()])].map((key) => {
    const [a, an] = first.get(key) ?? [0, 0];
    const [b, bn] = last.get(key) ?? [0, 0];
    return [b - a, bn - an, ...key.split("\t")];
  });
  const byType = new Map();
  for (const [bytes, , type] of rows) byType.set(type, (byType.get(type) ?? 0) + bytes);
  console.log(`${control ? "control page" : "the package's refresh page"}: cycles 100 → 1,000`);
  console.log("\n| node type | bytes more |\n| --- | ---: |");
  for (const [type, bytes] of [...byType].sort((p, q) => q[1] - p[1])) console.log(`| ${type} | ${bytes} |`);
  console.log("\n| bytes more | nodes more | type | name |\n| ---: | ---: | --- | --- |");
  for (const [bytes, nodes, type, name] of rows.sort((p, q) => q[0] - p[0]).slice(0, 20)) {
    console.log(`| ${bytes} | ${nodes} | ${type} | ${name} |`);
  }
  await context.close();
} finally {
  await server.stop();
  await browser.close();
}
