// The reference server answers /auth and /api. Vite's dev and preview servers proxy both to it,
// so the app, its refresh cookie and its API calls share one origin: the cookie is first-party
// and `apiOrigins` can keep its default (the page's own origin). Start the server with
// `--allowed-origin` set to this app's origin (http://localhost:5173 for `npm run dev`,
// http://localhost:4173 for `npm run preview`): its CSRF check compares the browser's Origin.
import { defineConfig, type ProxyOptions } from "vite";

const target = process.env.TOKEN_SERVER ?? "http://127.0.0.1:8080";
const proxy: Record<string, ProxyOptions> = {
  "/auth": { target },
  "/api": { target },
};

// The policy an app using the package needs, and the one the reference server gives its demo:
// scripts and styles from files of this origin only (no inline code, no eval), plus
// 'wasm-unsafe-eval' so the package's .wasm can be compiled. connect-src falls back to 'self',
// which covers the proxied /auth and /api; with the auth server on another origin, name it in
// connect-src. The dev server is left without it: Vite's HMR client injects inline styles.
const headers = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "Referrer-Policy": "no-referrer",
};

export default defineConfig({
  server: { proxy },
  preview: { proxy, headers },
});
