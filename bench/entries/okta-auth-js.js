// @okta/okta-auth-js: the OktaAuth an SPA creates at start-up (loopback issuer: HTTPS check off).
import { OktaAuth } from "@okta/okta-auth-js";
export function start(origin) {
  return new OktaAuth({ issuer: `${origin}/oauth2/default`, clientId: "bench", redirectUri: `${origin}/`, testing: { disableHttpsCheck: true } });
}
