// The demo page: one TokenManager, restored on load, with the session, the token's timeline,
// its claims, the server's test switches, what the page's storage holds, and an event log.
// Plain ES modules, no framework, no bundler. The raw token is never displayed or logged:
// the manager runs with `exposeToken` off, so this page could not read it if it wanted to.

import init, { TokenManager } from "/pkg/wasm_token_manager.js";
import { $, clockTime, h } from "./dom.js";
import { EventLog } from "./event-log.js";
import { Presence } from "./presence.js";
import {
  SwitchesUnavailable,
  clearSwitches,
  describeSwitches,
  dropNextRefresh,
  failNextRefreshes,
  serverStats,
} from "./server-panel.js";
import { StoragePanel } from "./storage-panel.js";
import { Timeline } from "./timeline.js";

const EVENT_TYPES = ["login", "refresh", "logout", "expired", "error", "statechange", "idle", "active"];
const STATE_TEXT = {
  loading: "loading…",
  signedOut: "signed out",
  signedIn: "signed in",
  refreshing: "refreshing",
  expired: "expired",
};

/** TokenManager options from the query string; numbers only, everything else is ignored. */
function optionsFromQuery(search) {
  const params = new URLSearchParams(search);
  const number = (name) => {
    const raw = params.get(name);
    if (raw == null || raw.trim() === "") return undefined;
    const value = Number(raw);
    return Number.isFinite(value) ? value : undefined;
  };
  const options = {};
  for (const name of ["refreshLeadSeconds", "leewaySeconds", "requestTimeoutMs", "idleTimeoutSeconds", "idleWarningSeconds"]) {
    const value = number(name);
    if (value !== undefined) options[name] = value;
  }
  const retry = {};
  for (const [param, key] of [
    ["retryBase", "base"],
    ["retryCap", "cap"],
    ["retryBudget", "budget"],
  ]) {
    const value = number(param);
    if (value !== undefined) retry[key] = value;
  }
  if (Object.keys(retry).length) options.retry = retry;
  return options;
}

const log = new EventLog($("#event-log"));
const storage = new StoragePanel($("#storage-table tbody"), $("#storage-verdict"));
const options = optionsFromQuery(location.search);
$("#options-json").textContent = `new TokenManager(${JSON.stringify(options, null, 2)})`;

// A handle for the console and the end-to-end tests: the manager and what it reported.
// It holds no token (exposeToken is off).
const demo = { auth: null, events: [], ready: false, restored: null, apiCalls: [] };
window.demo = demo;

await init();
let auth;
try {
  auth = new TokenManager(options);
} catch (e) {
  log.add("error", `new TokenManager(): ${e.code ?? e.name}: ${e.message}`, { tone: "bad" });
  $("#state-badge").textContent = "error";
  throw e;
}
demo.auth = auth;
const timeline = new Timeline($("#timeline"), auth);
let lastExpired = null;
let restoring = true;

for (const type of EVENT_TYPES) {
  auth.addEventListener(type, (event) => {
    const detail = { ...event.detail };
    demo.events.push({ type, detail, at: Date.now(), jti: auth.claims()?.jti ?? null });
    log.event(type, detail);
    if (type === "login" || type === "refresh") {
      timeline.tokenReceived(detail.source);
      lastExpired = null;
    } else if (type === "logout") {
      timeline.sessionEnded();
      lastExpired = null;
    } else if (type === "expired") {
      lastExpired = detail;
      if (detail.reason === "rejected") timeline.sessionEnded();
    } else if (type === "error") {
      timeline.failed(detail);
    }
    render();
    if (type !== "statechange") {
      storage.refresh();
      updateServer();
    }
  });
}

// ----- rendering --------------------------------------------------------------------------

function render() {
  const state = restoring && auth.state === "signedOut" ? "loading" : auth.state;
  const badge = $("#state-badge");
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] ?? state;
  document.body.dataset.state = state;

  // An expired token whose refreshes continue keeps the session view: it comes back by itself.
  const signedIn =
    state === "signedIn" ||
    state === "refreshing" ||
    (state === "expired" && lastExpired?.reason !== "rejected");
  $("#signin").hidden = signedIn;
  $("#session").hidden = !signedIn;
  $("#signin-note").textContent = restoring
    ? "Restoring the session through the refresh cookie…"
    : lastExpired?.reason === "rejected"
      ? "The server ended the session. Sign in again."
      : "No session. Sign in with the demo account.";
  for (const id of ["#call-api", "#logout"]) $(id).disabled = !signedIn;
  renderClaims();
  timeline.render();
}

let renderedClaims;
function renderClaims() {
  const claims = auth.claims();
  if (claims === renderedClaims) return; // the same frozen object until the token changes
  renderedClaims = claims;
  const body = $("#claims-table tbody");
  if (!claims) {
    body.replaceChildren(h("tr", { class: "placeholder" }, h("td", { colspan: 2 }, "Sign in to see the claims.")));
    $("#user-name").textContent = "…";
    $("#user-sub").textContent = "";
    $("#user-roles").replaceChildren();
    return;
  }
  body.replaceChildren(
    ...Object.entries(claims).map(([name, value]) =>
      h("tr", { dataset: { claim: name } }, h("th", { scope: "row" }, h("code", {}, name)), h("td", {}, ...claimValue(name, value))),
    ),
  );
  $("#user-name").textContent = claims.name ?? claims.sub ?? "you";
  $("#user-sub").textContent = claims.sub ? `sub ${claims.sub}` : "";
  $("#user-roles").replaceChildren(...(Array.isArray(claims.roles) ? claims.roles : []).map((r) => h("span", { class: "chip" }, r)));
}

function claimValue(name, value) {
  if (["exp", "iat", "nbf", "auth_time"].includes(name) && typeof value === "number") {
    const date = new Date(value * 1000);
    return [h("span", { class: "mono" }, String(value)), " ", h("span", { class: "muted" }, `${date.toLocaleDateString()} ${clockTime(date.getTime())}`)];
  }
  if (Array.isArray(value)) return value.map((v) => h("span", { class: "chip" }, String(v)));
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return [h("span", { class: "mono" }, text)];
}

setInterval(() => timeline.render(), 100);
setInterval(() => document.visibilityState === "visible" && storage.refresh(), 2000);

// ----- tabs ---------------------------------------------------------------------------------

new Presence((count) => {
  $("#tab-count").textContent = `${count} tab${count === 1 ? "" : "s"}`;
});

// ----- the server's counters and switches ---------------------------------------------------

let switchesAvailable = true;
let serverBusy = false;
async function updateServer() {
  if (!switchesAvailable || serverBusy) return;
  serverBusy = true;
  try {
    const stats = await serverStats();
    for (const dd of document.querySelectorAll("#server-stats [data-stat]")) {
      dd.textContent = String(stats[dd.dataset.stat] ?? "–");
    }
  } catch (e) {
    if (e instanceof SwitchesUnavailable) {
      switchesAvailable = false;
      $("#switches").hidden = true;
      $("#switches-off").hidden = false;
    }
  } finally {
    serverBusy = false;
  }
}
setInterval(() => document.visibilityState === "visible" && updateServer(), 1500);

async function arm(button, action) {
  button.disabled = true;
  try {
    const state = await action();
    log.add("server", `Test switch: ${describeSwitches(state)}.`, { tone: "warn" });
    await updateServer();
  } catch (e) {
    log.add("server", `Test switch failed: ${e.message}`, { tone: "bad" });
  } finally {
    button.disabled = false;
  }
}

const failCount = () => Number($("#fail-count").value);
$("#fail-5xx").addEventListener("click", (e) => arm(e.currentTarget, () => failNextRefreshes(failCount(), 500)));
$("#fail-429").addEventListener("click", (e) => arm(e.currentTarget, () => failNextRefreshes(failCount(), 429, 2)));
$("#drop-next").addEventListener("click", (e) => arm(e.currentTarget, dropNextRefresh));
$("#clear-switches").addEventListener("click", (e) => arm(e.currentTarget, clearSwitches));

// ----- sign in, API call, other tab, log out -------------------------------------------------

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#login-button");
  const error = $("#login-error");
  button.disabled = true;
  error.hidden = true;
  try {
    await auth.login({ username: $("#username").value, password: $("#password").value });
  } catch (e) {
    error.textContent = `${e.code ?? e.name}: ${e.message}`;
    error.hidden = false;
    log.add("error", `login failed: ${e.code ?? e.name}`, { tone: "bad" });
  } finally {
    button.disabled = false;
  }
});

$("#call-api").addEventListener("click", async () => {
  const started = performance.now();
  const result = $("#api-result");
  result.hidden = false;
  try {
    const response = await auth.fetch("/api/me");
    const ms = Math.round(performance.now() - started);
    const body = await response.json().catch(() => null);
    demo.apiCalls.push({ status: response.status, at: Date.now() });
    $("#api-status").textContent = String(response.status);
    $("#api-status").dataset.ok = String(response.ok);
    $("#api-meta").textContent = `GET /api/me · ${ms} ms · Authorization attached by auth.fetch`;
    $("#api-body").textContent = JSON.stringify(body, null, 2);
    log.add("api", `GET /api/me → ${response.status} in ${ms} ms`, { tone: response.ok ? "good" : "bad" });
  } catch (e) {
    demo.apiCalls.push({ error: e.code ?? e.name, at: Date.now() });
    $("#api-status").textContent = e.code ?? e.name;
    $("#api-status").dataset.ok = "false";
    $("#api-meta").textContent = e.message;
    $("#api-body").textContent = "";
    log.add("api", `GET /api/me failed: ${e.code ?? e.name}: ${e.message}`, { tone: "bad" });
  }
  updateServer();
});

$("#open-tab").addEventListener("click", () => {
  window.open(location.href, "_blank", "noopener");
  log.add("note", "Opened another tab: it asks this one for the token instead of calling the server.");
});

$("#logout").addEventListener("click", async () => {
  try {
    await auth.logout();
  } catch (e) {
    log.add("error", `logout: ${e.code ?? e.name}: ${e.message}`, { tone: "bad" });
  }
});

$("#clear-log").addEventListener("click", () => log.clear());

// ----- page load: restore ---------------------------------------------------------------------

render();
storage.refresh();
updateServer();
try {
  demo.restored = await auth.restore();
  // A first visit (no refresh cookie, the server answers 401) is not an error event.
  if (!demo.restored) log.add("note", "No session to restore (no refresh cookie the server accepts): sign in.");
} catch (e) {
  demo.restored = false;
  log.add("error", `restore: ${e.code}: ${e.message} — retrying in the background.`, { tone: "warn" });
}
restoring = false;
demo.ready = true;
render();
