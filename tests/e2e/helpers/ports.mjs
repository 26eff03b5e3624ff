// A free loopback port for a server a test starts (the specs and the shared-store harness).

import { createServer } from "node:net";

/** A port nobody listens on now, on 127.0.0.1, below 55000 (like the Rust tests: clear of the
 * ephemeral range the test's own outgoing connections use). */
export async function freePort() {
  for (;;) {
    const port = await new Promise((done, fail) => {
      const s = createServer();
      s.once("error", fail);
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => done(port));
      });
    });
    if (port < 55000) return port;
  }
}
