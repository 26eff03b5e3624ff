// A sign-in through the upstream mode over plain HTTP, as a browser would do it but without
// one: the server's /auth/authorize, the real provider's development login and consent forms
// (tests/oidc/provider.mjs), up to the callback. For the specs that need no page.

import assert from "node:assert/strict";

/** `name=value` of the first Set-Cookie named `name`, or undefined. */
export function setCookie(response, name) {
  const line = response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  return line?.split(";")[0];
}

/**
 * Starts a sign-in at `server` (whose provider is `issuer`) and goes through the provider's
 * login and consent forms as a browser would, without following the last redirect. Returns
 * the callback URL (with code and state) and the state cookie the server set.
 */
export async function signInUntilCallback(server, issuer, { returnTo = "/", account = "mallory-target" } = {}) {
  const start = await fetch(`${server.url}/auth/authorize?returnTo=${encodeURIComponent(returnTo)}`, { redirect: "manual" });
  assert.equal(start.status, 302);
  const stateCookie = setCookie(start, "__Host-oidc-state");
  const jar = new Map();
  let url = start.headers.get("location");
  let body;
  for (let step = 0; step < 20; step++) {
    const target = new URL(url);
    if (target.origin !== issuer) return { callback: target, stateCookie };
    const response = await fetch(target, {
      method: body ? "POST" : "GET",
      redirect: "manual",
      headers: {
        Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
        ...(body ? { "Content-Type": "application/x-www-form-urlencoded" } : {}),
      },
      body,
    });
    for (const c of response.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    body = undefined;
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get("location"), target).href;
      continue;
    }
    const html = await response.text();
    assert.equal(response.status, 200, html.slice(0, 300));
    // The login form, then the consent form: both post back to the interaction URL.
    body = html.includes('value="login"')
      ? new URLSearchParams({ prompt: "login", login: account, password: "x" })
      : new URLSearchParams({ prompt: "consent" });
    url = target.href;
  }
  throw new Error("the provider's interaction did not end");
}

export async function callback(server, url, cookie) {
  const response = await fetch(url, { redirect: "manual", headers: cookie ? { Cookie: cookie } : {} });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // A redirect has no JSON body.
  }
  return { status: response.status, body, response };
}
