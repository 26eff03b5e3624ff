// The whole integration: <TokenManagerProvider> creates the manager and restores the session,
// useSession() renders from it, useAuthFetch() calls the API with the token attached (and ky
// and axios do through it, src/recipes.ts). Under <StrictMode> (main.tsx): in development React
// mounts every component twice, and the provider still makes one manager and one restore request.
// The same tree renders in the browser (main.tsx) and on the server (entry-server.tsx).
import { useEffect, useMemo, useState, type FormEvent } from "react";
import type { TokenManagerError } from "wasm-token-manager";
import { TokenManagerProvider, useAuthFetch, useSession, useTokenManager } from "wasm-token-manager/react";

import { axiosWith, kyWith } from "./recipes";

function isTokenManagerError(error: unknown): error is TokenManagerError {
  return error instanceof Error && error.name === "TokenManagerError" && "code" in error && typeof error.code === "string";
}

function describe(error: unknown): string {
  return isTokenManagerError(error) ? `${error.code}: ${error.message}` : String(error);
}

function LoginForm({ onError }: { onError: (error: unknown) => void }) {
  const auth = useTokenManager();
  const [username, setUsername] = useState("demo");
  const [password, setPassword] = useState("");
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    onError(null);
    // useSession() re-renders on the `login` event: nothing to do with the claims here.
    auth?.login({ username, password }).then(() => setPassword(""), onError);
  };
  return (
    <form id="login-form" onSubmit={submit}>
      <label>
        Username <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />
      </label>
      <label>
        Password{" "}
        <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
      </label>
      <button type="submit" disabled={auth === null}>Sign in</button>
    </form>
  );
}

function Profile({ onError }: { onError: (error: unknown) => void }) {
  const { claims } = useSession();
  const auth = useTokenManager();
  const authFetch = useAuthFetch();
  const api = useMemo(() => ({ ky: kyWith(authFetch), axios: axiosWith(authFetch) }), [authFetch]);
  const [result, setResult] = useState("");

  const call = (how: "fetch" | "ky" | "axios") => async () => {
    onError(null);
    try {
      if (how === "axios") {
        const response = await api.axios.get<unknown>("/api/me", { headers: { Accept: "application/json" } });
        setResult(`${how} ${response.status} ${JSON.stringify(response.data)}`);
        return;
      }
      const response = how === "ky" ? await api.ky.get("/api/me") : await authFetch("/api/me", { headers: { Accept: "application/json" } });
      setResult(`${how} ${response.status} ${JSON.stringify(await response.json())}`);
    } catch (error) {
      onError(error);
    }
  };
  const logout = () => {
    onError(null);
    auth?.logout().catch(onError); // logout_failed: signed out here all the same
  };

  if (claims === null) return null;
  // Claims are decoded, not verified: fine for display, never for an authorization decision.
  return (
    <section id="session">
      <p>
        Signed in as <strong id="user-name">{claims.name ?? claims.sub ?? "(no name)"}</strong> · roles{" "}
        <span id="user-roles">{claims.roles?.join(", ") ?? "none"}</span>
      </p>
      <p>
        Token expires at <span id="expires-at" data-exp={claims.exp}>{claims.exp === undefined ? "—" : new Date(claims.exp * 1000).toLocaleTimeString()}</span>
      </p>
      <button id="call-api" type="button" onClick={call("fetch")}>Call /api/me (useAuthFetch)</button>
      <button id="call-ky" type="button" onClick={call("ky")}>… with ky</button>
      <button id="call-axios" type="button" onClick={call("axios")}>… with axios</button>
      <pre id="api-result">{result}</pre>
      <button id="logout" type="button" onClick={logout}>Sign out</button>
    </section>
  );
}

// Data loaded on mount, as apps do: useAuthFetch() waits for restore() to settle, so on a reload
// this request carries the restored token instead of failing with not_authenticated.
function OnLoad() {
  const authFetch = useAuthFetch();
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    authFetch("/api/me", { headers: { Accept: "application/json" } }).then(
      async (response) => {
        const body: unknown = response.ok ? await response.json() : null;
        const name = typeof body === "object" && body !== null && "name" in body ? String(body.name) : `status ${response.status}`;
        if (live) setText(`welcome back, ${name}`);
      },
      (error: unknown) => live && setText(describe(error)),
    );
    return () => {
      live = false;
    };
  }, [authFetch]);
  return text === null ? null : <p id="on-load">On load: {text}</p>;
}

function App() {
  const session = useSession();
  const [error, setError] = useState<unknown>(null);
  const shown = error ?? session.error;

  // For the end-to-end test: the state and readiness as attributes, and how many times React
  // mounted this component (2 under StrictMode in development).
  useEffect(() => {
    document.body.dataset.mounts = String(Number(document.body.dataset.mounts ?? 0) + 1);
  }, []);
  useEffect(() => {
    document.body.dataset.state = session.state;
    document.body.dataset.ready = String(!session.isLoading);
  }, [session]);

  return (
    <>
      {session.isLoading ? (
        <p>Session: loading…</p>
      ) : (
        <>
          <h1>wasm-token-manager · React</h1>
          <p>
            Session: <strong id="state">{session.state}</strong>
          </p>
          {session.claims === null ? <LoginForm onError={setError} /> : <Profile onError={setError} />}
          <p id="error" className="error" role="alert">
            {shown === null ? "" : describe(shown)}
          </p>
        </>
      )}
      <OnLoad />
    </>
  );
}

// The defaults, spelled out: same-origin endpoints (proxied to the auth server by Vite), and
// `apiOrigins` left to its default, the page's own origin (no `location` here: this module
// also renders on the server).
const OPTIONS = { loginUrl: "/auth/login", refreshUrl: "/auth/refresh", logoutUrl: "/auth/logout" };

export function Root() {
  return (
    <TokenManagerProvider options={OPTIONS}>
      <App />
    </TokenManagerProvider>
  );
}
