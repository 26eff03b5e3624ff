// oidc-client-ts: the UserManager an SPA creates at start-up.
import { UserManager } from "oidc-client-ts";
export function start(origin) {
  return new UserManager({ authority: origin, client_id: "bench", redirect_uri: `${origin}/` });
}
