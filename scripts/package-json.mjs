// Writes pkg/package.json: the published package's metadata (ESM only, types first, no
// runtime dependencies, no side effects on import). React is an optional peer dependency: only
// the `./react` entry imports it.
import { readFileSync, writeFileSync } from "node:fs";

const cargo = readFileSync(new URL("../Cargo.toml", import.meta.url), "utf8");
const version = /^\[workspace\.package\][\s\S]*?^version = "([^"]+)"/m.exec(cargo)[1];
const description = /^description = "([^"]+)"/m.exec(cargo.split("[package]")[1])[1];

const pkg = {
  name: "wasm-token-manager",
  version,
  description,
  license: "MIT OR Apache-2.0",
  type: "module",
  main: "./wasm_token_manager.js",
  types: "./wasm_token_manager.d.ts",
  exports: {
    ".": {
      types: "./wasm_token_manager.d.ts",
      default: "./wasm_token_manager.js",
    },
    "./verify": {
      types: "./verify/wasm_token_manager.d.ts",
      default: "./verify/wasm_token_manager.js",
    },
    "./react": {
      types: "./react/index.d.ts",
      default: "./react/index.js",
    },
    "./wasm_token_manager_bg.wasm": "./wasm_token_manager_bg.wasm",
    "./verify/wasm_token_manager_bg.wasm": "./verify/wasm_token_manager_bg.wasm",
    "./package.json": "./package.json",
  },
  files: [
    "wasm_token_manager.js",
    "wasm_token_manager.d.ts",
    "wasm_token_manager_bg.wasm",
    "wasm_token_manager_bg.wasm.d.ts",
    "verify/wasm_token_manager.js",
    "verify/wasm_token_manager.d.ts",
    "verify/wasm_token_manager_bg.wasm",
    "verify/wasm_token_manager_bg.wasm.d.ts",
    "react/index.js",
    "react/index.d.ts",
    "README.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
  ],
  peerDependencies: { react: ">=18" },
  peerDependenciesMeta: { react: { optional: true } },
  sideEffects: false,
  keywords: ["jwt", "access-token", "refresh-token", "spa", "oauth", "wasm", "session"],
};
writeFileSync(new URL("../pkg/package.json", import.meta.url), JSON.stringify(pkg, null, 2) + "\n");
