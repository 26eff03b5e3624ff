// The event log: every TokenManager event and every demo action, newest first, in words.
// Entries carry codes and timings only; the token never reaches this module.

import { clockTime, h, seconds } from "./dom.js";

const MAX_ENTRIES = 200;

export class EventLog {
  /** @param {HTMLOListElement} list */
  constructor(list) {
    this.list = list;
  }

  /** Adds a line. `kind` picks the badge colour: an event type, or "api", "server", "note". */
  add(kind, text, { tone = "", at = Date.now() } = {}) {
    const item = h(
      "li",
      { class: `entry ${tone}`, dataset: { kind } },
      h("time", { datetime: new Date(at).toISOString() }, clockTime(at)),
      h("span", { class: `tag tag-${kind}` }, kind),
      h("span", { class: "text" }, text),
    );
    this.list.prepend(item);
    while (this.list.childElementCount > MAX_ENTRIES) this.list.lastElementChild.remove();
  }

  /** A TokenManager event in words. */
  event(type, detail) {
    switch (type) {
      case "login":
        this.add("login", {
          login: "Signed in with the password.",
          restore: "Session restored through the refresh cookie.",
          otherTab: "Session adopted from another tab — no request to the server.",
        }[detail.source] ?? `Signed in (${detail.source}).`, { tone: "good" });
        break;
      case "refresh":
        this.add(
          "refresh",
          detail.source === "otherTab"
            ? "New token received from the tab that refreshed."
            : "Token refreshed silently by this tab.",
          { tone: "good" },
        );
        break;
      case "logout":
        this.add(
          "logout",
          detail.reason === "idle"
            ? "Signed out after a period without activity in any tab."
            : detail.origin === "otherTab"
              ? "Signed out in another tab."
              : "Signed out.",
        );
        break;
      case "idle":
        this.add("idle", `No activity: signing out in ${seconds(detail.inMs)} unless you press a key or click.`, {
          tone: "warn",
        });
        break;
      case "active":
        this.add("active", "Activity: the idle sign-out is cancelled.", { tone: "good" });
        break;
      case "expired":
        this.add(
          "expired",
          detail.reason === "rejected"
            ? "The server ended the session — sign in again."
            : `The token ran out while refreshes were failing${detail.retrying ? "; refreshes continue." : "."}`,
          { tone: detail.reason === "rejected" ? "bad" : "warn" },
        );
        break;
      case "error": {
        const retry = detail.retryInMs == null ? "no retry" : `retry in ${seconds(detail.retryInMs)}`;
        const valid = detail.tokenValid ? "the current token is still valid" : "no valid token";
        this.add("error", `${detail.code}: ${detail.message} — ${retry}, ${valid}.`, {
          tone: detail.tokenValid ? "warn" : "bad",
        });
        break;
      }
      case "statechange":
        this.add("state", `${detail.from} → ${detail.to}`, { tone: "muted" });
        break;
      default:
        this.add(type, JSON.stringify(detail));
    }
  }

  clear() {
    this.list.replaceChildren();
  }
}
