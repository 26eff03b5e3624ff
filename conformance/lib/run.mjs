// Runs the selected checks against one backend and turns the outcome into a report: each
// check passes, fails, warns (a recommended check that did not hold) or is skipped with a
// reason. A skip is never a pass; only failures (and warnings with `strict`) fail the run.

import { Backend, NetworkError, Secrets } from "./http.mjs";
import { CHECKS, Context } from "./checks.mjs";
import { Skip, Trial } from "./expect.mjs";

/**
 * @param {object} config see bin/wasm-token-manager-conformance.mjs for every field
 * @param {{username: string, password: string}} credentials
 * @param {(result: object) => void} [onResult] called as each check finishes
 */
export async function runConformance(config, credentials, onResult = () => {}) {
  const secrets = new Secrets();
  secrets.password(credentials.password);
  const backend = new Backend({
    baseUrl: config.baseUrl,
    origin: config.origin,
    timeoutMs: config.timeoutMs,
    secrets,
    cookieName: config.cookieName,
  });
  const ctx = new Context({ backend, config, secrets, credentials });
  const selected = CHECKS.filter((c) => !config.only || config.only.some((p) => c.id === p || c.id.startsWith(`${p}.`)));

  // Checks that must wait out the grace window start first, so the wait overlaps the others.
  const prepared = new Map();
  for (const c of selected) {
    if (c.prepare) prepared.set(c, await c.prepare(ctx).catch((e) => e));
  }

  const results = [];
  for (const c of selected) {
    const t = new Trial();
    const started = Date.now();
    let status;
    let reason;
    try {
      const state = prepared.get(c);
      if (state instanceof Error) throw state;
      await c.run(t, ctx, state);
      status = t.ok ? "pass" : c.level === "recommended" && !config.strict ? "warn" : "fail";
    } catch (e) {
      if (e instanceof Skip) {
        status = "skip";
        reason = e.message;
      } else {
        status = "fail";
        reason = e instanceof NetworkError ? `network: ${e.message}` : `${e?.name ?? "Error"}: ${e?.message ?? e}`;
      }
    }
    const result = {
      id: c.id,
      title: c.title,
      level: c.level,
      status,
      ...(reason ? { reason: secrets.scrub(reason) } : {}),
      ms: Date.now() - started,
      expectations: t.expectations.map((x) => ({ ...x, expected: secrets.scrub(x.expected), saw: secrets.scrub(x.saw) })),
    };
    results.push(result);
    onResult(result);
  }
  const count = (s) => results.filter((r) => r.status === s).length;
  return {
    backend: config.baseUrl.href,
    origin: config.origin,
    summary: { passed: count("pass"), failed: count("fail"), warned: count("warn"), skipped: count("skip"), total: results.length },
    checks: results,
  };
}

const MARK = { pass: "PASS", fail: "FAIL", warn: "WARN", skip: "SKIP" };

/** The human-readable lines of one check: its verdict, then what it expected and saw. */
export function formatResult(r, { verbose = true } = {}) {
  const lines = [`${MARK[r.status]}  ${r.id}${r.level === "recommended" ? " (recommended)" : ""}: ${r.title}`];
  if (r.reason) lines.push(`      ${r.status === "skip" ? "skipped" : "error"}: ${r.reason}`);
  const show = verbose || r.status === "fail" || r.status === "warn" ? r.expectations : [];
  for (const x of show) {
    lines.push(`      ${x.ok ? "ok " : "NO "} ${x.what}`);
    lines.push(`          expected: ${x.expected}`);
    lines.push(`          saw:      ${x.saw}`);
  }
  return lines.join("\n");
}

export function formatSummary(report) {
  const s = report.summary;
  return `${s.total} checks: ${s.passed} passed, ${s.failed} failed, ${s.warned} warned, ${s.skipped} skipped`;
}
