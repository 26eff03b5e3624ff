// @azure/msal-browser: the PublicClientApplication an SPA creates and initializes at start-up.
import { PublicClientApplication } from "@azure/msal-browser";
export async function start(origin) {
  const app = new PublicClientApplication({ auth: { clientId: "00000000-0000-0000-0000-000000000000", redirectUri: `${origin}/` } });
  await app.initialize();
  return app;
}
