// The session's events as `CustomEvent`s on the manager's `EventTarget` (src/events.rs): the
// wasm says which event and passes its values, one call; the detail object is built here.

import { coded } from "./error.js";

// By the index src/events.rs passes: the event type, then the detail's members in the order
// of the values.
const EVENTS = [
  ["statechange", "from", "to"],
  ["login", "source"],
  ["refresh", "source"],
  ["logout", "origin", "reason"],
  ["idle", "logoutAt", "inMs"],
  ["active"],
  ["expired", "reason", "retrying"],
  ["error", "code", "message", "retryInMs", "tokenValid"],
];

/** Dispatches event `index` with up to four values. A listener's exception is the browser's
 * to report: it does not reach the wasm. */
export function emit(target, index, a, b, c, d) {
  const [type, ...keys] = EVENTS[index];
  const values = [a, b, c, d];
  const detail = {};
  keys.forEach((key, i) => (detail[key] = values[i]));
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

/** `addEventListener` (`add`) or `removeEventListener` on the manager's target, for one of
 * its event types only (`invalid_argument` otherwise: a misspelt type would never fire). */
export function listen(target, type, listener, add) {
  if (!EVENTS.some((e) => e[0] === type)) {
    throw coded(
      "invalid_argument",
      "event type must be login, refresh, logout, expired, error, statechange, idle or active",
    );
  }
  if (add) target.addEventListener(type, listener);
  else target.removeEventListener(type, listener);
}
