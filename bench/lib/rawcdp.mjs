// The system Chromium driven over a bare DevTools pipe (`--remote-debugging-pipe`), with no
// domain enabled but what a step needs: no `Network` domain, which playwright-core enables on
// every page. With it on, the browser captures the JavaScript stack of every request it sends
// (the initiator shown in DevTools), and the cost of that grows with the stack: a `fetch` called
// under a wasm frame takes about 0.1 ms longer than the same `fetch` from a shallow JavaScript
// function (README "Benchmarks", `auth.fetch`). A real page has no DevTools attached, so the
// `auth.fetch` section measures here too.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHROMIUM_ARGS } from "./browser.mjs";

/** Chromium with one page on `origin`/ (cross-origin isolated when `isolated`), and `evaluate`. */
export async function openRawPage(origin, { isolated = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "wtm-bench-raw-"));
  const proc = spawn(
    process.env.CHROMIUM ?? "/usr/bin/chromium",
    [...CHROMIUM_ARGS, "--remote-debugging-pipe", `--user-data-dir=${profile}`, "about:blank"],
    { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] },
  );
  const [, , , toBrowser, fromBrowser] = proc.stdio;
  const pending = new Map();
  const listeners = [];
  let buffered = "";
  let next = 0;
  fromBrowser.setEncoding("utf8");
  fromBrowser.on("data", (chunk) => {
    buffered += chunk;
    for (let end; (end = buffered.indexOf("\0")) >= 0; buffered = buffered.slice(end + 1)) {
      const message = JSON.parse(buffered.slice(0, end));
      const waiter = pending.get(message.id);
      if (waiter) {
        pending.delete(message.id);
        if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
        else waiter.resolve(message.result);
      } else if (message.method) for (const l of listeners) l(message);
    }
  });
  const send = (method, params = {}, sessionId = undefined) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject, method });
      toBrowser.write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    });
  const close = async () => {
    await send("Browser.close").catch(() => {});
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    const page = (method, params) => send(method, params, sessionId);
    const url = `${origin}/`;
    if (isolated) {
      // COOP/COEP on the document only (5 µs timers), through the Fetch domain, turned off
      // again before anything is measured.
      const paused = new Promise((resolve) => listeners.push((m) => m.method === "Fetch.requestPaused" && resolve(m.params)));
      await page("Fetch.enable", { patterns: [{ urlPattern: url, requestStage: "Response" }] });
      const navigated = page("Page.navigate", { url });
      const { requestId, responseStatusCode, responseHeaders } = await paused;
      const { body } = await page("Fetch.getResponseBody", { requestId });
      await page("Fetch.fulfillRequest", {
        requestId,
        responseCode: responseStatusCode,
        responseHeaders: [
          ...responseHeaders,
          { name: "Cross-Origin-Opener-Policy", value: "same-origin" },
          { name: "Cross-Origin-Embedder-Policy", value: "require-corp" },
        ],
        body,
      });
      await navigated;
    } else {
      await page("Page.navigate", { url });
    }
    const evaluate = async (fn, arg) => {
      const { result, exceptionDetails } = await page("Runtime.evaluate", {
        expression: `(${fn})(${JSON.stringify(arg)})`,
        awaitPromise: true,
        returnByValue: true,
      });
      if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
      return result.value;
    };
    while ((await evaluate(() => document.readyState)) !== "complete") await new Promise((r) => setTimeout(r, 20));
    if (isolated) await page("Fetch.disable");
    return {
      evaluate,
      /** Empties the cookie jar (HttpOnly cookies too). */
      clearCookies: () => send("Storage.clearCookies"),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
