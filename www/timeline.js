// The token timeline: one lane per access token on a moving time axis (issued → expires, the
// scheduled refresh, the moment it was replaced), the four milestones with countdowns, and the
// large "expires in" counter. It reads times from the manager; it never sees the token itself.

import { $, clockTime, h, relative, seconds } from "./dom.js";

const MAX_LANES = 4;

export class Timeline {
  /** @param {HTMLElement} root the `#timeline` section; @param auth the TokenManager */
  constructor(root, auth) {
    this.root = root;
    this.auth = auth;
    /** @type {{n:number, source:string, issued:number, expires:number, replacedAt?:number, replacedBy?:string, endedAt?:number}[]} */
    this.tokens = [];
    this.count = 0;
    this.lastRefresh = null; // { at, source }
    this.lastError = null; // { at, code, retryInMs, tokenValid }
    this.lanes = $(".lanes", root);
    this.nowLine = h("div", { class: "now-line", "aria-hidden": "true" });
    this.lanes.append(this.nowLine);
    this.axis = {
      start: $(".axis-start", root),
      end: $(".axis-end", root),
    };
    this.fields = {
      issued: $("#milestone-issued", root),
      scheduled: $("#milestone-scheduled", root),
      refreshed: $("#milestone-refreshed", root),
      expires: $("#milestone-expires", root),
      countdown: $("#expires-in"),
      countdownLabel: $("#expires-in-label"),
      refreshIn: $("#refresh-in"),
      tokenNo: $("#token-number"),
    };
  }

  /** A token arrived (login, restore, refresh, another tab). */
  tokenReceived(source) {
    const expires = this.auth.expiresAt();
    if (expires == null) return;
    const now = Date.now();
    const claims = this.auth.claims() ?? {};
    // The lifetime from the token's own claims, placed on the local clock the manager uses.
    const lifetime =
      typeof claims.exp === "number" && typeof claims.iat === "number"
        ? (claims.exp - claims.iat) * 1000
        : expires - now;
    const previous = this.current();
    if (previous) {
      previous.replacedAt = now;
      previous.replacedBy = source;
    }
    this.count += 1;
    this.tokens.push({ n: this.count, source, issued: Math.min(now, expires - lifetime), expires });
    this.tokens = this.tokens.slice(-MAX_LANES * 2);
    if (source === "refresh" || source === "otherTab") this.lastRefresh = { at: now, source };
    this.lastError = null;
  }

  /** The session ended (logout, or the server rejected it). */
  sessionEnded() {
    const current = this.current();
    if (current) current.endedAt = Date.now();
  }

  failed(detail) {
    this.lastError = { at: Date.now(), ...detail };
  }

  current() {
    const last = this.tokens.at(-1);
    return last && last.replacedAt == null && last.endedAt == null ? last : null;
  }

  render(now = Date.now()) {
    const state = this.auth.state;
    const current = this.current();
    const expiresAt = this.auth.expiresAt();
    const refreshAt = this.auth.refreshAt();
    this.root.dataset.state = state;

    // Axis: one and a half lifetimes of history, a little more than one ahead.
    const lifetime = current ? current.expires - current.issued : 30_000;
    const from = now - 1.5 * lifetime;
    const to = now + 1.1 * lifetime;
    const pct = (t) => Math.min(100, Math.max(0, ((t - from) / (to - from)) * 100));
    this.axis.start.textContent = `−${seconds(now - from)}`;
    this.axis.end.textContent = `+${seconds(to - now)}`;
    this.nowLine.style.left = `calc(2.8rem + (100% - 2.8rem) * ${pct(now) / 100})`;

    const visible = this.tokens.filter((t) => t.expires > from).slice(-MAX_LANES);
    const rows = visible.map((t) => {
      const heldUntil = Math.min(now, t.replacedAt ?? Infinity, t.endedAt ?? Infinity);
      const live = t === current;
      const bar = h("div", {
        class: `bar${live ? " live" : ""}${t.endedAt ? " ended" : ""}`,
        style: `left:${pct(t.issued)}%;width:${pct(t.expires) - pct(t.issued)}%`,
        title: `token #${t.n}: issued ${clockTime(t.issued)}, expires ${clockTime(t.expires)}`,
      });
      const held = h("div", {
        class: "held",
        style: `left:${pct(t.issued)}%;width:${Math.max(0, pct(heldUntil) - pct(t.issued))}%`,
      });
      const marks = [];
      if (live && refreshAt != null) {
        marks.push(
          h("div", {
            class: "mark scheduled",
            style: `left:${pct(refreshAt)}%`,
            title: `refresh scheduled ${clockTime(refreshAt)}`,
          }),
        );
      }
      if (t.replacedAt != null) {
        marks.push(
          h("div", {
            class: `mark refreshed${t.replacedBy === "otherTab" ? " other" : ""}`,
            style: `left:${pct(t.replacedAt)}%`,
            title: `replaced ${clockTime(t.replacedAt)} (${t.replacedBy === "otherTab" ? "by another tab" : "refreshed here"})`,
          }),
        );
      }
      return h(
        "div",
        { class: "lane" },
        h("span", { class: "lane-label" }, `#${t.n}`),
        h("div", { class: "track" }, bar, held, ...marks),
      );
    });
    if (rows.length === 0) {
      rows.push(h("div", { class: "lane empty" }, h("span", { class: "lane-label" }, ""), h("div", { class: "track" }, "no token")));
    }
    this.lanes.replaceChildren(...rows, this.nowLine);

    // Milestones.
    const f = this.fields;
    f.issued.replaceChildren(...milestone(current?.issued, now, current ? sourceText(current.source) : "—"));
    if (state === "refreshing") {
      f.scheduled.replaceChildren(...milestone(null, now, "refreshing now…"));
    } else if (refreshAt != null) {
      const label = this.lastError ? `retry after ${this.lastError.code}` : "refresh scheduled";
      f.scheduled.replaceChildren(...milestone(refreshAt, now, label));
    } else {
      f.scheduled.replaceChildren(...milestone(null, now, "—"));
    }
    f.refreshed.replaceChildren(
      ...milestone(
        this.lastRefresh?.at,
        now,
        this.lastRefresh
          ? this.lastRefresh.source === "otherTab"
            ? "token from another tab"
            : "refreshed by this tab"
          : "not yet",
      ),
    );
    f.expires.replaceChildren(...milestone(expiresAt, now, expiresAt == null ? "—" : expiresAt > now ? "token valid" : "expired"));

    // The big countdown.
    if (expiresAt != null && expiresAt > now) {
      f.countdown.textContent = seconds(expiresAt - now);
      f.countdownLabel.textContent = "until this token expires";
    } else if (expiresAt != null) {
      f.countdown.textContent = "0.0 s";
      f.countdownLabel.textContent = "expired — refreshes continue";
    } else {
      f.countdown.textContent = "—";
      f.countdownLabel.textContent = "no token";
    }
    f.refreshIn.textContent =
      state === "refreshing"
        ? "refreshing now…"
        : refreshAt != null
          ? `next refresh ${relative(refreshAt, now)}`
          : "";
    f.tokenNo.textContent = current ? `token #${current.n} in this tab` : "";
  }
}

function sourceText(source) {
  return (
    {
      login: "signed in",
      restore: "restored via cookie",
      refresh: "refreshed",
      otherTab: "from another tab",
    }[source] ?? source
  );
}

function milestone(at, now, note) {
  return [
    h("span", { class: "when" }, at == null ? "—" : clockTime(at)),
    h("span", { class: "rel" }, at == null ? "" : relative(at, now)),
    h("span", { class: "note" }, note),
  ];
}
