// @supabase/auth-js: the auth client an SPA creates at start-up (no persistence, no URL detection,
// no auto refresh, so construction touches neither storage nor the network).
import { AuthClient } from "@supabase/auth-js";
export function start(origin) {
  return new AuthClient({ url: `${origin}/auth/v1`, autoRefreshToken: false, persistSession: false, detectSessionInUrl: false });
}
