// jose, decoding only: `decodeJwt` (unverified), as an SPA that shows claims imports it.
import { decodeJwt } from "jose";
export { decodeJwt };
