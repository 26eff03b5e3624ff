// The whole integration in one file: initialise the package, resume the session through the
// refresh cookie, sign in, show the user's name from the claims, call the API with the token
// attached, sign out. The raw token never reaches this code (exposeToken stays off).
import init, { TokenManager, type Claims, type SessionState, type TokenManagerError } from "wasm-token-manager";

/** The element with this id, checked against the type the code expects of it. */
function element<T extends HTMLElement>(id: string, type: { new (): T; readonly name: string }): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`#${id} is missing or is not a ${type.name}`);
  return found;
}

const ui = {
  state: element("state", HTMLElement),
  loginForm: element("login-form", HTMLFormElement),
  session: element("session", HTMLElement),
  userName: element("user-name", HTMLElement),
  userRoles: element("user-roles", HTMLElement),
  expiresAt: element("expires-at", HTMLElement),
  refreshCount: element("refresh-count", HTMLElement),
  callApi: element("call-api", HTMLButtonElement),
  apiResult: element("api-result", HTMLPreElement),
  logout: element("logout", HTMLButtonElement),
  error: element("error", HTMLElement),
};

const STATE_TEXT: Record<SessionState, string> = {
  signedOut: "signed out",
  signedIn: "signed in",
  refreshing: "refreshing",
  expired: "expired",
};

function isTokenManagerError(error: unknown): error is TokenManagerError {
  return error instanceof Error && error.name === "TokenManagerError" && "code" in error && typeof error.code === "string";
}

function showError(error: unknown): void {
  ui.error.textContent = isTokenManagerError(error) ? `${error.code}: ${error.message}` : String(error);
}

let refreshes = 0;

/** Draws the page from the manager's state: the login form, or the user's claims. */
function render(auth: TokenManager): void {
  const claims: Claims | null = auth.claims();
  document.body.dataset.state = auth.state;
  ui.state.textContent = STATE_TEXT[auth.state];
  ui.loginForm.hidden = claims !== null;
  ui.session.hidden = claims === null;
  if (claims === null) {
    ui.apiResult.textContent = "";
    return;
  }
  // Claims are decoded, not verified: fine for display, never for an authorization decision.
  ui.userName.textContent = claims.name ?? claims.sub ?? "(no name)";
  ui.userRoles.textContent = claims.roles?.join(", ") ?? "none";
  const expiresAt = auth.expiresAt();
  ui.expiresAt.textContent = expiresAt === undefined ? "—" : new Date(expiresAt).toLocaleTimeString();
  ui.refreshCount.textContent = String(refreshes);
}

await init(); // fetches and compiles wasm_token_manager_bg.wasm (Vite emits it as a hashed asset)

// The defaults, spelled out: same-origin endpoints (proxied to the auth server by Vite), and the
// token only ever sent to this page's own origin.
const auth = new TokenManager({
  loginUrl: "/auth/login",
  refreshUrl: "/auth/refresh",
  logoutUrl: "/auth/logout",
  apiOrigins: [location.origin],
});

auth.addEventListener("statechange", () => render(auth));
auth.addEventListener("login", () => render(auth));
auth.addEventListener("refresh", () => {
  refreshes += 1;
  render(auth);
});
auth.addEventListener("logout", () => render(auth));
auth.addEventListener("expired", (event) => {
  if (event.detail.reason === "rejected") ui.error.textContent = "Your session ended: sign in again.";
  render(auth);
});
auth.addEventListener("error", (event) => {
  const { code, message, tokenValid } = event.detail;
  if (!tokenValid) ui.error.textContent = `${code}: ${message}`;
});

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(ui.loginForm);
  const username = form.get("username");
  const password = form.get("password");
  if (typeof username !== "string" || typeof password !== "string") return;
  ui.error.textContent = "";
  auth.login({ username, password }).then(
    () => {
      ui.loginForm.reset();
      render(auth);
    },
    showError,
  );
});

ui.callApi.addEventListener("click", async () => {
  ui.error.textContent = "";
  try {
    // Authorization: Bearer is attached here (same origin), refreshed first if about to expire.
    const response = await auth.fetch("/api/me", { headers: { Accept: "application/json" } });
    const body: unknown = await response.json();
    ui.apiResult.textContent = `${response.status} ${JSON.stringify(body, null, 2)}`;
  } catch (error) {
    showError(error);
  }
});

ui.logout.addEventListener("click", async () => {
  ui.error.textContent = "";
  try {
    await auth.logout();
  } catch (error) {
    showError(error); // logout_failed: signed out here all the same, the server was not told
  }
  render(auth);
});

try {
  await auth.restore(); // page load: resume the session through the refresh cookie, if any
} catch (error) {
  showError(error); // transient failure: retries go on, a later success fires `login`
}
render(auth);
document.body.dataset.ready = "true";
