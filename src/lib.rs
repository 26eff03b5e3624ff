//! wasm-token-manager: the browser layer.
//!
//! The only crate that touches JavaScript. It owns the clock, the one timer, `fetch`, the Web
//! Locks API, the BroadcastChannel and the page lifecycle events, feeds what happens into the
//! sans-IO session of `token-manager-core`, and carries out what the session decides.
//! One module per browser facility or concern: `manager` is the JS API, `driver` feeds the
//! session and acts, `refresh`, `events`, `tabs`, `lifecycle`, `login` and
//! `authorized_fetch` are what it does; `verify` (the `Verifier`), `verify_api`
//! (`verifyToken`, `compactVerify`), `dpop` and `webcrypto` (their WebCrypto calls) are the
//! opt-in features.

#![deny(missing_docs, missing_debug_implementations)]

mod authorized_fetch;
mod clock;
mod decode;
/// DPoP proofs; without the `dpop` feature, a stub that refuses the option.
#[cfg_attr(not(feature = "dpop"), path = "dpop_stub.rs")]
mod dpop;
mod driver;
mod error;
mod events;
mod http;
mod lock;
mod login;
mod manager;
mod options;
mod page;
mod pending;
mod redirect;
mod refresh;
mod tabs;
#[cfg(feature = "verify")]
mod verify;
#[cfg(feature = "verify")]
mod verify_api;
/// WebCrypto calls, shared by verification and DPoP.
#[cfg(any(feature = "verify", feature = "dpop"))]
mod webcrypto;
/// Without the `verify` feature: a verifier that cannot exist, so every verification path is
/// compiled out and the default package stays small.
#[cfg(not(feature = "verify"))]
mod verify {
    use token_manager_core::dangerous::UnverifiedToken;
    use token_manager_core::verify::VerifyError;
    use token_manager_core::Timestamp;
    use wasm_bindgen::JsValue;

    #[derive(Debug)]
    pub(crate) enum Verifier {}

    impl Verifier {
        pub(crate) fn from_options(_: &JsValue, _: bool) -> Result<Self, JsValue> {
            Err(crate::error::coded(
                token_manager_core::ErrorCode::VerifyUnavailable,
                "option `verify` needs the verifying build: import from \"wasm-token-manager/verify\"",
            ))
        }

        pub(crate) async fn verify(
            &self,
            _: &str,
            _: Timestamp,
        ) -> Result<UnverifiedToken, VerifyError> {
            match *self {}
        }
    }
}

pub use decode::{decode_claims, page_split};

/// `future_to_promise` over one boxed future type: the promise plumbing (the task, the
/// resolve/reject closures) is compiled once instead of once per `async` export, about 2 KB of
/// wasm each. The cost is one allocation and a virtual call per promise.
pub(crate) fn promise(
    future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
    let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>> =
        Box::pin(future);
    wasm_bindgen_futures::future_to_promise(boxed)
}
pub use manager::TokenManager;
#[cfg(feature = "verify")]
pub use verify_api::{compact_verify, verify_token};

use wasm_bindgen::prelude::*;

/// Talc instead of the standard library's dlmalloc: the same job in a fifth of the bytes.
/// The wasm build is single-threaded (no `atomics`), which is what `TalcSyncCell` is for.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Runs once when the module is instantiated: panics (which the core is built never to raise)
/// are reported on the console instead of surfacing as a bare `unreachable` trap. The message is
/// static: formatting the `PanicHookInfo` would link `core::fmt`'s panic paths into every build.
/// The package build (`-Cpanic=immediate-abort`, scripts/build.sh) never runs a hook: there a
/// panic is the `unreachable` trap, a `RuntimeError` thrown to the caller, so it has none.
#[cfg(not(panic = "immediate-abort"))]
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|_| {
        web_sys::console::error_1(
            &"wasm-token-manager: internal error (a bug: please report it)".into(),
        );
    }));
}

/// The unions of error codes (`DecodeErrorCode`, `VerifyErrorCode`, `ErrorCode`), generated from
/// the core's registry of codes: one source for the codes and their types.
#[wasm_bindgen(typescript_custom_section)]
const ERROR_CODE_TYPES: &'static str = token_manager_core::ErrorCode::TYPESCRIPT;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** What `auth.logout()` resolves to. */
export interface LogoutResult {
  /** The identity provider's end-session URL (RP-initiated logout), when the server's upstream
   * mode answered one: an `https:` (or loopback `http:`) URL the server built, with its
   * `id_token_hint` and `post_logout_redirect_uri`. Navigate there (`location.assign`) to end
   * the provider's session too; otherwise the next sign-in may not ask for credentials. */
  endSessionUrl?: string;
}

/** Options of `new TokenManager(options)`. Every option is optional. */
/** Options of `auth.loginWithRedirect(options)`. */
export interface LoginWithRedirectOptions {
  /** Where the server sends the browser back after the sign-in (it must be on the server's
   * `--post-login-redirect` allowlist). Default: this page's path and query. */
  returnTo?: string;
}

export interface TokenManagerOptions {
  /** Login endpoint. Default `"/auth/login"`. Must be https: or a loopback http: URL. */
  loginUrl?: string;
  /** Refresh endpoint (cookie-based). Default `"/auth/refresh"`. */
  refreshUrl?: string;
  /** Logout endpoint. Default `"/auth/logout"`. */
  logoutUrl?: string;
  /** Where `loginWithRedirect()` sends the browser: the server's authorize endpoint (its
   * upstream mode signs in at an OpenID Connect provider). Default `"/auth/authorize"`. */
  authorizeUrl?: string;
  /** Origins `auth.fetch` may send the token to. Default: the page's own origin only. */
  apiOrigins?: string[];
  /** Minimum refresh lead before expiry, seconds. Default 60 (or 20% of the lifetime if larger, at most half of it). */
  refreshLeadSeconds?: number;
  /** The token is not used this close to expiry, seconds. Default 5 (at most 10% of the lifetime). */
  leewaySeconds?: number;
  /** Refresh request timeout, milliseconds. Default 10000. A tab waiting longer than this plus 1 s
   * for the cross-tab refresh lock takes it over (`steal`): its holder has stopped. */
  requestTimeoutMs?: number;
  /** Sign out (in every tab, logout reason `"idle"`) after this long without user activity
   * (pointer, keys, the page becoming visible) in any tab of the origin. Refreshes and
   * `auth.fetch` are not activity. Default: off. */
  idleTimeoutSeconds?: number;
  /** The `idle` event fires this long before an idle logout. Needs `idleTimeoutSeconds`, and must
   * be less. Default 60, or half of `idleTimeoutSeconds` if that is less. */
  idleWarningSeconds?: number;
  /** Share one refresh between the tabs of this origin (Web Locks + BroadcastChannel). Default true. */
  crossTab?: boolean;
  /** Enable `getAccessToken()`. Default false: only `auth.fetch` sees the token. This hides the
   * token from the app's own code only: with `crossTab` on, any script of the origin can still
   * read it on the BroadcastChannel (tabs share it there and answer a sibling's `ask` with it). */
  exposeToken?: boolean;
  /** Let `auth.fetch` replay a request whose method is not idempotent (POST, PATCH…) after a 401.
   * Default false: only GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110) are replayed; any
   * other request that gets a 401 is returned to the app as that 401 Response, while the token
   * is refreshed in the background. Set it only when the API never acts on a request it answers
   * 401 (or dedupes, e.g. with an idempotency key). */
  replayNonIdempotent?: boolean;
  /** Verify every token (login, refresh, other tabs) before it is used. Off by default; needs the
   * verifying build (`import init, { TokenManager } from "wasm-token-manager/verify"`), else the
   * constructor throws `verify_unavailable`. */
  verify?: VerifyPolicyOptions;
  /** Sender-constrained tokens (DPoP, RFC 9449). Default false. Login and refresh send a proof
   * signed by a non-extractable P-256 key held only in memory (shared with sibling tabs over the
   * BroadcastChannel); `auth.fetch` sends `Authorization: DPoP` and a proof with `ath` when the
   * token was issued as `token_type: "DPoP"`. Needs the server's support and the verifying build
   * (`"wasm-token-manager/verify"`), else the constructor throws `dpop_unavailable`. */
  dpop?: boolean;
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

/** Signature algorithms `verify` accepts. HMAC is never accepted: a browser cannot keep a secret. */
export type VerifyAlgorithm = "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA";

/** A public key of a key set (RFC 7517). Private members, if any, are never used. */
export interface PublicJwk {
  kty: "RSA" | "EC" | "OKP" | (string & {});
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
  [member: string]: unknown;
}

/** A JWK Set (RFC 7517 §5). Keys of other types (`oct`, unknown `kty`) are skipped. */
export interface JsonWebKeySet {
  keys: PublicJwk[];
}

/** How tokens are verified: keys from the issuer's JWKS, checked with WebCrypto. */
export interface VerifyPolicyOptions {
  /** The issuer's JWKS URL (https: or loopback). Exactly one of `jwksUrl` and `jwks`. */
  jwksUrl?: string;
  /** An inline key set `{ keys: [...] }` the app already holds, checked when the options are read. */
  jwks?: JsonWebKeySet;
  /** The allowlist; the token's own `alg` never widens it. */
  algorithms: VerifyAlgorithm[];
  /** Required `iss`. */
  issuer?: string;
  /** Required member of `aud`. */
  audience?: string;
  /** Required `typ`, e.g. `"at+jwt"`. */
  typ?: string;
  /** Clock tolerance for `exp`, `nbf`, `iat`, seconds. Default 60. */
  leewaySeconds?: number;
  /** An unknown `kid` refetches the JWKS at most this often, ms. Default 60000. */
  jwksCooldownMs?: number;
}

/** Options of `verifyToken`: a policy, plus the time to check against (ms; default now). */
export interface VerifyOptions extends VerifyPolicyOptions {
  currentTime?: number;
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
  code: ErrorCode;
}

export interface LoginEventDetail { source: "login" | "restore" | "otherTab"; }
export interface RefreshEventDetail { source: "refresh" | "otherTab"; }
export interface LogoutEventDetail {
  /** Which tab signed out. */
  origin: "local" | "otherTab";
  /** `user`: `logout()` was called (here or in the other tab). `idle`: the idle timeout. */
  reason: "user" | "idle";
}
/** The idle warning: the session ends at `logoutAt` unless the user is active in some tab. */
export interface IdleEventDetail {
  /** When the idle logout happens, ms since the epoch (like `Date.now()`). */
  logoutAt: number;
  /** From now. */
  inMs: number;
}
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
  idle: CustomEvent<IdleEventDetail>;
  /** Activity after an `idle` warning: the idle logout is cancelled (hide the warning). */
  active: CustomEvent<Record<string, never>>;
}

export interface TokenManager {
  addEventListener<K extends keyof TokenManagerEventMap>(type: K, listener: (event: TokenManagerEventMap[K]) => void): void;
  removeEventListener<K extends keyof TokenManagerEventMap>(type: K, listener: (event: TokenManagerEventMap[K]) => void): void;
}
"#;
