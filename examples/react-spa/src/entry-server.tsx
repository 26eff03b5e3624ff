// The server entry (`vite build --ssr src/entry-server.tsx`): the app rendered in Node, where
// wasm-token-manager/react gives the loading session and creates no manager.
import { StrictMode } from "react";
import { renderToString } from "react-dom/server";

import { Root } from "./App";

export function render(): string {
  return renderToString(
    <StrictMode>
      <Root />
    </StrictMode>,
  );
}
