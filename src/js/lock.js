// The cross-tab refresh lock (src/lock.rs): `navigator.locks.request` (Web Locks API), in
// JavaScript so the wasm makes one call per attempt instead of reading `navigator.locks`,
// building the options object and calling `request` a crossing at a time.
//
// The lock is held until the promise `work` returns settles. A tab first asks with
// `ifAvailable` (the callback gets `null` when another tab holds the lock) and queues only
// then, with `signal` to abort the wait, so its work learns whether the grant was contended.

/** Runs `work(contended)` under the exclusive lock `name`, or without a lock where the Web
 * Locks API is missing; resolves once the work's promise settles, and rejects when `signal`
 * aborted the wait. With `steal`, the lock is taken at once from whoever holds it (not
 * contended: its holder has stopped; the API refuses `signal` with it). */
export function withLock(name, signal, steal, work) {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== "function") return Promise.resolve(work(false));
  let contended = false;
  let started = false;
  const run = (lock) => {
    if (lock === null) {
      // `ifAvailable`, and another tab holds it.
      contended = true;
      return null;
    }
    if (started) return undefined;
    started = true;
    return work(contended);
  };
  if (steal) return locks.request(name, { steal: true }, run);
  return locks.request(name, { ifAvailable: true }, run)
    .then((held) => (held === null && !started ? locks.request(name, { signal }, run) : held));
}

/** One refresh attempt's run under the lock `name` (src/refresh.rs): `work(contended)` is
 * started at most once and its promise is what this resolves to once it settles. The lock is
 * first queued for with `wait` (the attempt's wait, which the session aborts to have the lock
 * taken over); when that wait was aborted while the attempt (`signal`) goes on, the lock is
 * stolen; when the Web Locks API refused (an opaque origin, say), the work runs without it.
 * The lock may be taken from this tab while it works: the work goes on all the same. */
export function lockedAttempt(name, wait, signal, work) {
  let running;
  const run = (contended) => (running ??= work(contended));
  // Never a synchronous throw into the wasm: a refusal is a rejection.
  const request = (steal) => {
    try {
      return withLock(name, steal ? signal : wait, steal, run);
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return request(false)
    .catch((e) => {
      if (!running && wait.aborted && !signal.aborted) return request(true);
      throw e;
    })
    .catch(() => {
      if (!running && !signal.aborted) run(false);
    })
    .then(() => running);
}
