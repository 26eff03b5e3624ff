// The package's entries in Node, where there is no `window`: importing each of them must not
// throw (server-side rendering and test runners import them), and rendering the React bindings
// on the server gives the loading session and touches no browser API. Runs on pkg/ as built.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { createElement, StrictMode } from "react";
import { renderToString } from "react-dom/server";

const PKG = join(resolve(dirname(fileURLToPath(import.meta.url)), "../.."), "pkg");
const entry = (path) => {
  const file = join(PKG, path);
  if (!existsSync(file)) throw new Error(`pkg/${path} is missing: run npm run build`);
  return import(file);
};

// What a server must never reach for: the globals a browser has and Node lacks (or has but a
// server render must not use), and every way to compile the wasm.
const BROWSER_GLOBALS = ["window", "self", "document", "navigator", "location", "localStorage", "sessionStorage",
  "indexedDB", "caches", "BroadcastChannel", "fetch", "addEventListener"];
const WASM_CALLS = ["instantiate", "instantiateStreaming", "compile", "compileStreaming"];

/** Runs `fn` with every browser global and wasm compile replaced by a recorder; returns the names touched. */
async function touchedDuring(fn) {
  const touched = [];
  const saved = [];
  for (const name of BROWSER_GLOBALS) {
    saved.push([globalThis, name, Object.getOwnPropertyDescriptor(globalThis, name)]);
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get: () => void touched.push(name),
      set: () => void touched.push(`${name} =`),
    });
  }
  for (const name of WASM_CALLS) {
    saved.push([WebAssembly, name, Object.getOwnPropertyDescriptor(WebAssembly, name)]);
    WebAssembly[name] = () => touched.push(`WebAssembly.${name}`);
  }
  try {
    await fn();
  } finally {
    for (const [target, name, descriptor] of saved.reverse()) {
      if (descriptor) Object.defineProperty(target, name, descriptor);
      else delete target[name];
    }
  }
  return touched;
}

test("importing wasm-token-manager in Node does not throw", async () => {
  const m = await entry("wasm_token_manager.js");
  assert.equal(typeof m.default, "function", "init");
  assert.equal(typeof m.TokenManager, "function");
  assert.equal(typeof m.decodeClaims, "function");
});

test("importing wasm-token-manager/verify in Node does not throw", async () => {
  const m = await entry("verify/wasm_token_manager.js");
  assert.equal(typeof m.TokenManager, "function");
  assert.equal(typeof m.verifyToken, "function");
});

test("importing wasm-token-manager/react in Node does not throw and touches no browser API", async () => {
  let m;
  const touched = await touchedDuring(async () => {
    m = await entry("react/index.js");
  });
  assert.deepEqual(touched, []);
  for (const name of ["TokenManagerProvider", "useSession", "useTokenManager", "useAuthFetch"]) {
    assert.equal(typeof m[name], "function", name);
  }
});

test("rendering on the server gives isLoading, no manager, and touches no browser API", async () => {
  const { TokenManagerProvider, useSession, useTokenManager, useAuthFetch } = await entry("react/index.js");
  function Probe() {
    const session = useSession();
    const manager = useTokenManager();
    const authFetch = useAuthFetch();
    return createElement("pre", null, JSON.stringify({ ...session, manager, authFetch: typeof authFetch }));
  }
  let html;
  const touched = await touchedDuring(() => {
    html = renderToString(
      createElement(StrictMode, null,
        createElement(TokenManagerProvider, { options: { apiOrigins: ["https://api.example.com"] } }, createElement(Probe))),
    );
  });
  assert.deepEqual(touched, [], "no browser global and no wasm compile during the server render");
  const rendered = JSON.parse(html.replace(/^<pre>|<\/pre>$/g, "").replaceAll("&quot;", '"'));
  assert.deepEqual(rendered, {
    isLoading: true,
    state: "signedOut",
    claims: null,
    error: null,
    manager: null,
    authFetch: "function",
  });
});

test("a hook outside <TokenManagerProvider> throws an error that names the hook", async () => {
  const { useSession } = await entry("react/index.js");
  const Probe = () => (useSession(), null);
  assert.throws(() => renderToString(createElement(Probe)), /useSession\(\) must be called inside <TokenManagerProvider>/);
});
