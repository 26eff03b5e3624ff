// The reference server's upstream-mode flags as the OIDC specs (tests/e2e/oidc*.test.mjs) pass
// them: the provider of ./provider.mjs as issuer, its one confidential client, the scopes that
// get a refresh token and the API audience, and the callback registered at the provider.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { ARTIFACTS } from "../e2e/helpers/server.mjs";
import { API_SCOPE, CLIENT_ID, CLIENT_SECRET } from "./provider.mjs";

/**
 * The client secret in a file only its owner reads (`--upstream-client-secret-file`: a secret
 * never goes on a command line), under the e2e artifacts as `NAME-client-secret`; its path.
 */
export function clientSecretFile(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}-client-secret`);
  writeFileSync(path, `${CLIENT_SECRET}\n`, { mode: 0o600 });
  return path;
}

/** The flags of a server at `http://localhost:PORT` signing in through `issuer`. */
export function upstreamArgs({ issuer, port, secretFile }) {
  return [
    "--upstream-issuer", issuer,
    "--upstream-client-id", CLIENT_ID,
    "--upstream-client-secret-file", secretFile,
    "--upstream-scopes", `openid profile email offline_access ${API_SCOPE}`,
    // oidc-provider follows OpenID Connect Core §11: no refresh token without it.
    "--upstream-prompt", "consent",
    "--redirect-uri", `http://localhost:${port}/auth/callback`,
  ];
}
