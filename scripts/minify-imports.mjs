// Renames the wasm's imports from the glue (`__wbg_<name>_<16 hex digits>` and the like) to
// short names, and their module (`./wasm_token_manager_bg.js`) to `a`, in the .wasm's import
// section and in the glue's import object alike. The hashes
// do not compress; both files carry them. Exports, the API and the .d.ts are untouched.
// Usage: node scripts/minify-imports.mjs DIR   (DIR holds wasm_token_manager_bg.wasm and .js)
// Fails, leaving the files as they were, unless every import is found exactly once in the glue.
import { readFileSync, writeFileSync } from "node:fs";
import { encLeb, encStr, leb, readName, rewriteSection } from "./wasm-sections.mjs";

const dir = process.argv[2];
const wasmPath = `${dir}/wasm_token_manager_bg.wasm`;
const jsPath = `${dir}/wasm_token_manager.js`;
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");

// The one module every import comes from (the glue), renamed `a` too.
const GLUE = "./wasm_token_manager_bg.js";
const glueKey = `${JSON.stringify(GLUE)}:`;
if (js.split(glueKey).length !== 2 || js.split(GLUE).length !== 2) {
  throw new Error(`minify-imports: the glue's import object key ${glueKey} is not there exactly once`);
}
js = js.replace(glueKey, "a:");

const renames = [];
const rewritten = rewriteSection(wasm, 2, (start, end) => {
  let p = start, count;
  [count, p] = leb(wasm, p);
  const entries = [encLeb(count)];
  for (let i = 0; i < count; i++) {
    let module, name;
    [module, p] = readName(wasm, p);
    [name, p] = readName(wasm, p);
    const descStart = p, kind = wasm[p++];
    const limits = () => { const flags = wasm[p++]; [, p] = leb(wasm, p); if (flags & 1) [, p] = leb(wasm, p); };
    if (kind === 0) [, p] = leb(wasm, p);
    else if (kind === 1) { p++; limits(); }
    else if (kind === 2) limits();
    else if (kind === 3) p += 2;
    else if (kind === 4) { p++; [, p] = leb(wasm, p); }
    else throw new Error(`minify-imports: unknown import kind ${kind}`);
    let newName = name;
    if (module !== GLUE) throw new Error(`minify-imports: an import from ${module}, not the glue`);
    if (kind === 0) {
      newName = `$${renames.length.toString(36)}`;
      renames.push([name, newName]);
    }
    entries.push(encStr("a"), encStr(newName), wasm.subarray(descStart, p));
  }
  if (p !== end) throw new Error("minify-imports: import section not fully read");
  return Buffer.concat(entries);
});
for (const [from, to] of renames) {
  const key = new RegExp(`(?<![\\w$])${from.replace(/\$/g, "\\$")}:`, "g");
  const found = js.match(key)?.length ?? 0;
  const anywhere = js.split(from).length - 1;
  if (found !== 1 || anywhere !== 1) {
    throw new Error(`minify-imports: ${from} is in the glue ${anywhere} times (${found} as a key), not once`);
  }
  js = js.replace(key, `${to}:`);
}
writeFileSync(wasmPath, rewritten);
writeFileSync(jsPath, js);
console.log(`minify-imports: ${renames.length} imports renamed in ${dir}`);
