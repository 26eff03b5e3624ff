// jose, verifying: `jwtVerify` with keys from the issuer's JWKS URL (the counterpart of
// `wasm-token-manager/verify`).
import { createRemoteJWKSet, jwtVerify } from "jose";
export { createRemoteJWKSet, jwtVerify };
