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
