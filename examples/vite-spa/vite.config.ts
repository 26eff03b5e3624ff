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

export default defineConfig({
  server: { proxy },
  preview: { proxy },
});
