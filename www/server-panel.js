// The reference server's test switches (`--test-switches`): make the next refreshes fail, lose
// a response, and read the server's counters — the number of refresh requests is what shows
// that several tabs share one refresh. Without the flag these endpoints answer 404 and the
// panel says how to enable them.

async function call(path, body) {
  const init =
    body === undefined
      ? { method: "GET" }
      : {
          method: "POST",
          // The server refuses switch calls without the CSRF header, as it does refresh and
          // logout, so another site cannot flip them with a form post.
          headers: { "Content-Type": "application/json", "X-Requested-With": "wasm-token-manager" },
          body: JSON.stringify(body),
        };
  const response = await fetch(path, { ...init, cache: "no-store" });
  if (response.status === 404) throw new SwitchesUnavailable();
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`${path} answered ${response.status} ${json?.error ?? ""}`.trim());
  }
  return json;
}

export class SwitchesUnavailable extends Error {
  constructor() {
    super("the server runs without --test-switches");
    this.name = "SwitchesUnavailable";
  }
}

/** The next `count` refreshes fail with `status` (429, 500, 502, 503, 504). */
export function failNextRefreshes(count, status, retryAfter) {
  return call("/test/fail-refresh", {
    count,
    status,
    ...(retryAfter == null ? {} : { retry_after: retryAfter }),
  });
}

/** The next refresh is committed by the server and its response never arrives. */
export function dropNextRefresh() {
  return call("/test/drop-next-refresh", {});
}

/** Cancels every switch (counters are kept: `/test/reset` would clear them for all tabs). */
export async function clearSwitches() {
  await call("/test/delay", { ms: 0 });
  return call("/test/fail-refresh", { count: 0, status: 503 });
}

/** The server's counters: login, refresh_requests, rotations, grace_replays, refresh_failed … */
export function serverStats() {
  return call("/test/stats");
}

/** A sentence for the switch state the server answers with. */
export function describeSwitches(state) {
  const parts = [];
  const f = state?.fail_refresh;
  if (f) {
    parts.push(
      `next ${f.count} refresh${f.count === 1 ? "" : "es"} fail with ${f.status}` +
        (f.retry_after != null ? ` (Retry-After ${f.retry_after} s)` : ""),
    );
  }
  if (state?.drop_next_refresh) parts.push("the next refresh response will be lost");
  if (state?.delay_ms) parts.push(`refreshes delayed ${state.delay_ms} ms`);
  return parts.length ? parts.join("; ") : "no failure armed";
}
