// The cross-tab refresh lock (src/lock.rs): `navigator.locks.request` (Web Locks API), in
// JavaScript so the wasm makes one call per attempt instead of reading `navigator.locks`,
// building the options object and calling `request` a crossing at a time.
//
// The lock is held until the promise `work` returns settles. A tab first asks with
// `ifAvailable` (the callback gets `null` when another tab holds the lock) and queues only
// then, with a signal to abort the wait, so its work learns whether the grant was contended.

/** One refresh attempt's run under the exclusive lock `name` (src/refresh.rs): `work(contended)`
 * is started at most once, and its promise is what this resolves to once it settles. The lock
 * is first asked for with `ifAvailable`, then queued for with `wait` (the attempt's wait, which
 * the session aborts to have the lock taken over); when that wait was aborted while the attempt
 * (`signal`) goes on, the lock is stolen (not contended: its holder has stopped; the API refuses
 * a signal with `steal`); when the Web Locks API is missing or refused (an opaque origin, say),
 * the work runs without it. The lock may be taken from this tab while it works: the work goes
 * on all the same. */
export function lockedAttempt(name, wait, signal, work) {
  let running;
  let contended = false;
  const start = () => (running ??= work(contended));
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!locks || typeof locks.request !== "function") return start();
  const run = (lock) => {
    if (lock !== null) return start();
    // `ifAvailable`, and another tab holds it.
    contended = true;
    return null;
  };
  // Never a synchronous throw into the wasm: a refusal is a rejection.
  const request = (options) => {
    try {
      return locks.request(name, options, run);
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return request({ ifAvailable: true })
    .then(() => (running ? undefined : request({ signal: wait })))
    .catch((e) => {
      if (running || !wait.aborted || signal.aborted) throw e;
      contended = false;
      return request({ steal: true });
    })
    .catch(() => {
      if (running || signal.aborted) return;
      contended = false;
      start();
    })
    .then(() => running);
}
