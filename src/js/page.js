// A manager's ties to the page (src/page.rs): the lifecycle listeners that wake the session,
// the activity listeners of the idle timeout, the cross-tab BroadcastChannel and the one timer.
// All of them reach the wasm through one callback, `(kind, value)`; what each means to the
// session is decided there. Before, each listener and the timer was a closure of its own
// with its registration, removal and message reading done a crossing at a time (README
// "Size", eighth pass).
//
// The kinds the callback is called with (src/page.rs, `Kind`):
//   0 online, 1 pageshow, 2 focus, 3 the page became visible    (wake the session)
//   4 user activity (pointerdown, keydown, visible; idle timeout only)
//   5 a sibling's logout (value: true when it was an idle logout)
//   6 a sibling's activity (value: when, the sender's clock in ms)
//   7 a sibling asks for the token
//   8 a sibling's token (value: [token, receivedAt, lifetimeMs, claims or undefined,
//     DPoP key or undefined])
//   9 the timer fired
// Channel messages are small plain objects with a version (`v: 1`); anything else on the
// channel is ignored.

const VERSION = 1;

/** Whether the page is known to be hidden (no `document` in a worker: never hidden). */
function hidden() {
  const state = globalThis.document && globalThis.document.visibilityState;
  return typeof state === "string" && state !== "visible";
}

const count = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** A sibling's message as `[kind, value]`, or undefined for anything else. */
function parse(m) {
  if (typeof m !== "object" || m === null || m.v !== VERSION) return undefined;
  switch (m.type) {
    // A logout without a reason (or an unknown one) is the user's: the stricter reading would
    // keep a session another tab ended.
    case "logout":
      return [5, m.reason === "idle"];
    case "activity":
      return count(m.at) ? [6, m.at] : undefined;
    case "ask":
      return [7];
    case "token":
      if (typeof m.token !== "string" || !count(m.receivedAt) || !count(m.lifetimeMs) || m.lifetimeMs === 0) {
        return undefined;
      }
      return [8, [
        m.token,
        m.receivedAt,
        m.lifetimeMs,
        // An opaque token's claims (JSON text): the other tabs cannot read them off the token.
        typeof m.claims === "string" ? m.claims : undefined,
        typeof m.dpop === "object" && m.dpop !== null ? m.dpop : undefined,
      ]];
    default:
      return undefined;
  }
}

export class Page {
  /** Listens to the page (and, with `activity`, for user activity in the capture phase, so a
   * page handler that stops propagation cannot hide it); opens the channel `channel` unless it
   * is undefined or the environment has no `BroadcastChannel`. */
  constructor(callback, channel, activity) {
    this.callback = callback;
    this.off = [];
    this.timer = undefined;
    this.channel = undefined;
    const global = globalThis;
    const document = global.document;
    // A target that is missing (`document` in a worker) or refuses the listener is skipped.
    const on = (target, type, listener, capture) => {
      try {
        target.addEventListener(type, listener, capture);
        this.off.push(() => target.removeEventListener(type, listener, capture));
      } catch {
        // not listened to
      }
    };
    on(global, "online", () => callback(0));
    on(global, "pageshow", () => callback(1));
    on(global, "focus", () => callback(2));
    on(document, "visibilitychange", () => hidden() || callback(3), false);
    if (activity) {
      const active = (event) => (event.type === "visibilitychange" && hidden()) || callback(4);
      on(global, "pointerdown", active, true);
      on(global, "keydown", active, true);
      on(document, "visibilitychange", active, true);
    }
    if (channel !== undefined && typeof BroadcastChannel === "function") {
      try {
        this.channel = new BroadcastChannel(channel);
        this.channel.addEventListener("message", (event) => {
          const m = parse(event.data);
          if (m) callback(m[0], m[1]);
        });
      } catch {
        this.channel = undefined;
      }
    }
  }

  /** Posts `message` to the siblings (best effort: a closed channel or a value that cannot be
   * cloned is dropped). */
  post(message) {
    message.v = VERSION;
    try {
      if (this.channel) this.channel.postMessage(message);
    } catch {
      // not announced
    }
  }

  /** Announces a token; `dpop`: the `CryptoKey` (structured-cloned, still non-extractable)
   * and public half of a DPoP-bound one; `claims`: an opaque token's claims. */
  announce(token, receivedAt, lifetimeMs, claims, dpop) {
    const m = { type: "token", token, receivedAt, lifetimeMs };
    if (dpop !== undefined) m.dpop = dpop;
    if (claims !== undefined) m.claims = claims;
    this.post(m);
  }

  logout(reason) {
    this.post({ type: "logout", reason });
  }

  activity(at) {
    this.post({ type: "activity", at });
  }

  ask() {
    this.post({ type: "ask" });
  }

  /** The one timer: fires kind 9 after `ms`, replacing any armed before. */
  arm(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.callback(9);
    }, ms);
  }

  disarm() {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `free()`: every listener removed, the timer cleared, the channel closed. The callback is
   * never called after this. */
  close() {
    for (const off of this.off) {
      try {
        off();
      } catch {
        // the target is gone
      }
    }
    this.off = [];
    this.disarm();
    if (this.channel) this.channel.close();
    this.channel = undefined;
  }
}
