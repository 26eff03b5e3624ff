// `loginWithRedirect()`'s page work (src/redirect.rs): `returnTo` read and encoded, and the
// navigation, in JavaScript; the authorize URL is joined in the wasm.

import { coded } from "./error.js";

/** `returnTo` of the options (default: this page's path and query), encoded for a query. */
export function returnTo(options) {
  let target = typeof options === "object" && options !== null ? options.returnTo : undefined;
  if (target === undefined) {
    const location = globalThis.location;
    target = location.pathname + location.search;
  } else if (typeof target !== "string") {
    throw coded("invalid_option", "option `returnTo` must be a string");
  }
  return encodeURIComponent(target);
}

/** Sends the browser to `url` (the page unloads). */
export function navigate(url) {
  globalThis.location.assign(url);
}
