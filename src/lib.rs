//! wasm-token-manager: the browser layer.
//!
//! The only crate that touches JavaScript. It owns the clock, the one timer, `fetch`, the Web
//! Locks API, the BroadcastChannel and the page lifecycle events, feeds what happens into the
//! sans-IO session of `token-manager-core`, and carries out what the session decides.
//! One module per browser facility; `manager` ties them together.

#![deny(missing_debug_implementations)]

mod channel;
mod clock;
mod decode;
mod error;
mod http;
mod listener;
mod lock;
mod manager;
mod options;

pub use decode::decode_claims;
pub use manager::TokenManager;

use wasm_bindgen::prelude::*;

/// Runs once when the module is instantiated: panics (which the core is built never to raise)
/// are reported on the console instead of surfacing as a bare `unreachable` trap.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("wasm-token-manager: internal error: {info}").into());
    }));
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `new TokenManager(options)`. Every option is optional. */
export interface TokenManagerOptions {
  /** Login endpoint. Default `"/auth/login"`. Must be https: or a loopback http: URL. */
  loginUrl?: string;
  /** Refresh endpoint (cookie-based). Default `"/auth/refresh"`. */
  refreshUrl?: string;
  /** Logout endpoint. Default `"/auth/logout"`. */
  logoutUrl?: string;
  /** Origins `auth.fetch` may send the token to. Default: the page's own origin only. */
  apiOrigins?: string[];
  /** Minimum refresh lead before expiry, seconds. Default 60 (or 20% of the lifetime if larger, at most half of it). */
  refreshLeadSeconds?: number;
  /** The token is not used this close to expiry, seconds. Default 5 (at most 10% of the lifetime). */
  leewaySeconds?: number;
  /** Refresh request timeout, milliseconds. Default 10000. */
  requestTimeoutMs?: number;
  /** Share one refresh between the tabs of this origin (Web Locks + BroadcastChannel). Default true. */
  crossTab?: boolean;
  /** Enable `getAccessToken()`. Default false: only `auth.fetch` sees the token. */
  exposeToken?: boolean;
  /** Backoff after transient failures and the refresh budget. */
  retry?: {
    /** First backoff ceiling, ms. Default 1000. */
    base?: number;
    /** Largest backoff ceiling, ms. Default 120000. */
    cap?: number;
    /** Most refresh requests per minute. Default 12. */
    budget?: number;
  };
}

/** The JSON body sent to the login endpoint; the reference server expects username and password. */
export interface LoginCredentials {
  username?: string;
  password?: string;
  [field: string]: unknown;
}

/** Decoded (unverified) claims: the registered claims typed, every other claim kept. */
export interface Claims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  /** Seconds since the epoch. */
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  name?: string;
  roles?: string[];
  [claim: string]: unknown;
}

export type SessionState = "signedOut" | "signedIn" | "refreshing" | "expired";

/** Every error thrown or rejected by this package: an `Error` with a stable `code`. */
export interface TokenManagerError extends Error {
  name: "TokenManagerError";
  code: string;
}

export interface LoginEventDetail { source: "login" | "restore" | "otherTab"; }
export interface RefreshEventDetail { source: "refresh" | "otherTab"; }
export interface LogoutEventDetail { origin: "local" | "otherTab"; }
export interface ExpiredEventDetail {
  /** `rejected`: the server ended the session, sign in again. `lifetime`: the token ran out while refreshes failed; they continue. */
  reason: "rejected" | "lifetime";
  retrying: boolean;
}
export interface ErrorEventDetail {
  code: string;
  message: string;
  /** When the next attempt starts, or null when none will. */
  retryInMs: number | null;
  /** Whether the current token is still usable. */
  tokenValid: boolean;
}
export interface StateChangeEventDetail { from: SessionState; to: SessionState; }

export interface TokenManagerEventMap {
  login: CustomEvent<LoginEventDetail>;
  refresh: CustomEvent<RefreshEventDetail>;
  logout: CustomEvent<LogoutEventDetail>;
  expired: CustomEvent<ExpiredEventDetail>;
  error: CustomEvent<ErrorEventDetail>;
  statechange: CustomEvent<StateChangeEventDetail>;
}

export interface TokenManager {
  addEventListener<K extends keyof TokenManagerEventMap>(type: K, listener: (event: TokenManagerEventMap[K]) => void): void;
  removeEventListener<K extends keyof TokenManagerEventMap>(type: K, listener: (event: TokenManagerEventMap[K]) => void): void;
}
"#;
