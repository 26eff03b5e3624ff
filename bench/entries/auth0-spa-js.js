// @auth0/auth0-spa-js: the Auth0Client an SPA creates at start-up (the constructor, not
// createAuth0Client, which would also call the tenant).
import { Auth0Client } from "@auth0/auth0-spa-js";
export function start(origin) {
  return new Auth0Client({ domain: new URL(origin).host, clientId: "bench", authorizationParams: { redirect_uri: `${origin}/` } });
}
