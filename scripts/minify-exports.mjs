// Renames the wasm's closure-invoke exports (wasm-bindgen names each
// `wasm_bindgen_<16 hex digits>___convert__closures_____invoke___<its types, mangled>`, 72 to
// 334 bytes) to `$c0`, `$c1` … in the .wasm's export section, in the glue (which calls them as
// `<exports>.<name>`) and in the .d.ts's `InitOutput` (which lists them), so all three agree.
// Only the glue calls them; the API's exports (`tokenmanager_*`, `decodeClaims`, …) and
// wasm-bindgen's runtime exports keep their names.
// Usage: node scripts/minify-exports.mjs DIR   (DIR holds wasm_token_manager_bg.wasm, .js, .d.ts)
// Fails, leaving the files as they were, unless each renamed name occurs in the glue only as a
// member access and exactly once in the .d.ts.
import { readFileSync, writeFileSync } from "node:fs";
import { encLeb, encStr, leb, readName, rewriteSection } from "./wasm-sections.mjs";

const dir = process.argv[2];
const wasmPath = `${dir}/wasm_token_manager_bg.wasm`;
const jsPath = `${dir}/wasm_token_manager.js`;
const dtsPath = `${dir}/wasm_token_manager.d.ts`;
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");
let dts = readFileSync(dtsPath, "utf8");
const CLOSURE = /^wasm_bindgen_[0-9a-f]{16}___convert__closures_/;

const renames = [];
const rewritten = rewriteSection(wasm, 7, (start, end) => {
  let p = start, count;
  [count, p] = leb(wasm, p);
  const entries = [encLeb(count)];
  for (let i = 0; i < count; i++) {
    let name;
    [name, p] = readName(wasm, p);
    const descStart = p;
    p++; // kind
    [, p] = leb(wasm, p); // index
    let newName = name;
    if (CLOSURE.test(name)) {
      newName = `$c${renames.length.toString(36)}`;
      renames.push([name, newName]);
    }
    entries.push(encStr(newName), wasm.subarray(descStart, p));
  }
  if (p !== end) throw new Error("minify-exports: export section not fully read");
  return Buffer.concat(entries);
});
const escape = (s) => s.replace(/[$]/g, "\\$");
for (const [from, to] of renames) {
  if (js.includes(to) || dts.includes(to)) throw new Error(`minify-exports: ${to} is already used`);
  const anywhere = new RegExp(`(?<![\\w$])${escape(from)}(?![\\w$])`, "g");
  const member = new RegExp(`\\.${escape(from)}(?![\\w$])`, "g");
  const inJs = js.split(from).length - 1;
  const asMember = js.match(member)?.length ?? 0;
  if (inJs === 0 || asMember !== inJs || (js.match(anywhere)?.length ?? 0) !== inJs) {
    throw new Error(`minify-exports: ${from} is in the glue ${inJs} times (${asMember} as a member)`);
  }
  js = js.replace(member, `.${to}`);
  const declared = new RegExp(`(?<=readonly )${escape(from)}(?=: )`, "g");
  if ((dts.match(declared)?.length ?? 0) !== 1 || dts.split(from).length !== 2) {
    throw new Error(`minify-exports: ${from} is not declared exactly once in the .d.ts`);
  }
  dts = dts.replace(declared, to);
}
writeFileSync(wasmPath, rewritten);
writeFileSync(jsPath, js);
writeFileSync(dtsPath, dts);
console.log(`minify-exports: ${renames.length} closure exports renamed in ${dir}`);
