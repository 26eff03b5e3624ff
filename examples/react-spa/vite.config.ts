// The reference server answers /auth and /api. Vite's dev and preview servers proxy both to it,
// so the app, its refresh cookie and its API calls share one origin (see ../vite-spa). The
// preview serves the production build under the Content-Security-Policy the demo uses: no
// inline script or style, and `'wasm-unsafe-eval'` only for compiling the package's wasm.
import { defineConfig, type ProxyOptions } from "vite";

const target = process.env.TOKEN_SERVER ?? "http://127.0.0.1:8080";
const proxy: Record<string, ProxyOptions> = {
  "/auth": { target },
  "/api": { target },
};
const headers = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
};

export default defineConfig({
  server: { proxy },
  preview: { proxy, headers },
  // `vite build --ssr src/entry-server.tsx` bundles React and the package into one module, so
  // the render runs from any directory (the end-to-end test renders ssr.html with it).
  ssr: { noExternal: true },
});
