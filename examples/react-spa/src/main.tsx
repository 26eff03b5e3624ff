// The browser entry: hydrates the server-rendered markup when there is some (ssr.html, made by
// the end-to-end test from entry-server.tsx), renders from scratch otherwise (index.html).
// <StrictMode> wraps the root element itself: React 19 double-invokes the effects of a newly
// mounted tree only when StrictMode is at (or above) the root's first placement.
import { StrictMode } from "react";
import { createRoot, hydrateRoot } from "react-dom/client";

import "./app.css";
import { Root } from "./App";

const root = document.getElementById("root");
if (root === null) throw new Error("#root is missing");
const app = (
  <StrictMode>
    <Root />
  </StrictMode>
);
if (root.hasChildNodes()) hydrateRoot(root, app);
else createRoot(root).render(app);
