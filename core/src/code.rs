//! The registry of every stable error code, of the core and of the browser layer: one enum,
//! each code documented once, here.
//!
//! The strings are the public contract: they are the `code` of every `TokenManagerError`, and
//! applications switch on them. The TypeScript unions `DecodeErrorCode`, `VerifyErrorCode` and
//! `ErrorCode` in the package's `.d.ts` are generated from this list
//! ([`ErrorCode::TYPESCRIPT`]), and the README's list is checked against [`ErrorCode::ALL`] by
//! a test (`core/tests/codes.rs`), so neither can drift from this file.

/// Which TypeScript union a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeGroup {
    /// Malformed input: tokens, and JWS for `compactVerify` (`DecodeErrorCode`).
    Decode,
    /// Signature verification (`VerifyErrorCode`).
    Verify,
    /// Everything else: options, the endpoints, the session (only in `ErrorCode`).
    Manager,
}

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $code:literal in $group:ident,)+) => {
        /// A stable error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order of this registry.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code's string, e.g. `"malformed_token"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// The TypeScript union the code belongs to.
            pub const fn group(self) -> CodeGroup {
                match self {
                    $(ErrorCode::$variant => CodeGroup::$group,)+
                }
            }

            /// The package's TypeScript unions of codes, `DecodeErrorCode`, `VerifyErrorCode` and
            /// `ErrorCode`, generated from this registry: the browser layer puts this text in
            /// the `.d.ts` (`typescript_custom_section` in `src/lib.rs`), so the types cannot
            /// drift from the codes.
            pub const TYPESCRIPT: &'static str = concat!(
                "/** Codes of malformed input (tokens, and JWS for `compactVerify`). */\n",
                "export type DecodeErrorCode =",
                $(ts_member!(Decode, $group, $code),)+
                ";\n\n",
                "/** Codes of `verifyToken`, `compactVerify` and the manager's `verify`, ",
                "besides the decoding codes. */\n",
                "export type VerifyErrorCode =",
                $(ts_member!(Verify, $group, $code),)+
                ";\n\n",
                "/** Every `code` a `TokenManagerError` can carry (generated from the registry ",
                "of codes, `core/src/code.rs`). */\n",
                "export type ErrorCode =\n  | DecodeErrorCode | VerifyErrorCode",
                $(ts_member!(Manager, $group, $code),)+
                ";\n",
            );
        }
    };
}

/// One member of a TypeScript union, `\n  | "code"`, when the code's group is the union's;
/// nothing otherwise.
macro_rules! ts_member {
    (Decode, Decode, $code:literal) => {
        concat!("\n  | \"", $code, "\"")
    };
    (Verify, Verify, $code:literal) => {
        concat!("\n  | \"", $code, "\"")
    };
    (Manager, Manager, $code:literal) => {
        concat!("\n  | \"", $code, "\"")
    };
    ($union:ident, $group:ident, $code:literal) => {
        ""
    };
}

codes! {
    /// The token (or JWS) is longer than the decoding limit.
    TooLarge = "too_large" in Decode,
    /// Not three dot-separated segments with a non-empty header and claims.
    MalformedToken = "malformed_token" in Decode,
    /// A JWS in the JSON serialization: only the compact one is accepted.
    NotCompact = "not_compact" in Decode,
    /// The token, or a decoded segment, is not UTF-8.
    NotUtf8 = "not_utf8" in Decode,
    /// A segment is not strict unpadded base64url (padding, `+`, `/`, whitespace, stray bits).
    BadBase64 = "bad_base64" in Decode,
    /// A segment is not valid JSON.
    BadJson = "bad_json" in Decode,
    /// A segment nests JSON deeper than the limit.
    TooDeep = "too_deep" in Decode,
    /// A segment is JSON but not an object.
    NotObject = "not_object" in Decode,
    /// A member name appears twice in the header or the claims.
    DuplicateClaim = "duplicate_claim" in Decode,
    /// A registered claim has the wrong type or an out-of-range value.
    ClaimType = "claim_type" in Decode,
    /// A header parameter has the wrong type, or `alg` is missing.
    BadHeader = "bad_header" in Decode,
    /// `alg` is not a supported signature algorithm (`none` in any spelling is always this).
    UnsupportedAlg = "unsupported_alg" in Decode,

    /// The algorithm is outside the application's allowlist.
    AlgNotAllowed = "alg_not_allowed" in Verify,
    /// The header carries or points at a key (`jwk`, `jku`, `x5u`, `x5c`).
    UntrustedKeyParam = "untrusted_key_param" in Verify,
    /// A `crit` extension, which is never supported.
    CritUnsupported = "crit_unsupported" in Verify,
    /// `typ` differs from the required one.
    WrongTyp = "wrong_typ" in Verify,
    /// No key of the key set has the token's `kid` (or, without one, not exactly one fits).
    UnknownKid = "unknown_kid" in Verify,
    /// The key with this `kid` is not for this algorithm or not for verification.
    KeyMismatch = "key_mismatch" in Verify,
    /// Two keys with this `kid` both fit the algorithm.
    AmbiguousKid = "ambiguous_kid" in Verify,
    /// A key too weak to trust (an RSA modulus below 2048 bits, an exponent below 3).
    WeakKey = "weak_key" in Verify,
    /// A key with out-of-range values, or one WebCrypto refuses to import.
    InvalidKey = "invalid_key" in Verify,
    /// The signature is malformed or does not verify.
    BadSignature = "bad_signature" in Verify,
    /// A claim the policy requires (`exp`) is missing.
    MissingClaim = "missing_claim" in Verify,
    /// `exp` is past, beyond the leeway.
    TokenExpired = "token_expired" in Verify,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    TokenNotYetValid = "token_not_yet_valid" in Verify,
    /// `iss` is not the expected issuer.
    WrongIssuer = "wrong_issuer" in Verify,
    /// `aud` does not contain the expected audience.
    WrongAudience = "wrong_audience" in Verify,
    /// A fetched key set is not a JWKS.
    BadJwks = "bad_jwks" in Verify,
    /// The key set could not be fetched while no key was known.
    JwksUnavailable = "jwks_unavailable" in Verify,

    /// An option has a bad value (or the options are not an object).
    InvalidOption = "invalid_option" in Manager,
    /// An option name the library does not know (a typo would otherwise be ignored).
    UnknownOption = "unknown_option" in Manager,
    /// An endpoint that is neither `https:` nor a loopback `http:` URL.
    InsecureEndpoint = "insecure_endpoint" in Manager,
    /// A method was called with arguments of the wrong kind.
    InvalidArgument = "invalid_argument" in Manager,
    /// The login endpoint refused the credentials (401).
    InvalidCredentials = "invalid_credentials" in Manager,
    /// A 403 on login or refresh: the server refused the page (origin, site, CSRF header),
    /// not the session or the password.
    Forbidden = "forbidden" in Manager,
    /// Too many attempts (429, or 503 with `Retry-After`); try again later.
    RateLimited = "rate_limited" in Manager,
    /// The login endpoint gave another unexpected answer.
    LoginFailed = "login_failed" in Manager,
    /// A request failed to reach the server.
    NetworkError = "network_error" in Manager,
    /// The refresh endpoint answered with a server error (5xx, or another unexpected status).
    ServerError = "server_error" in Manager,
    /// A refresh request took longer than `requestTimeoutMs`.
    Timeout = "timeout" in Manager,
    /// A 200 whose body is not a usable token answer.
    InvalidResponse = "invalid_response" in Manager,
    /// The server refused the refresh cookie: the session is over, sign in again.
    InvalidGrant = "invalid_grant" in Manager,
    /// The refresh budget is spent; the next refresh waits for the window to move.
    RefreshBudgetExhausted = "refresh_budget_exhausted" in Manager,
    /// `auth.fetch` to an allowlisted origin without a usable token.
    NotAuthenticated = "not_authenticated" in Manager,
    /// `getAccessToken()` without the option `exposeToken: true`.
    TokenNotExposed = "token_not_exposed" in Manager,
    /// The logout request did not reach the server or was refused (signed out locally anyway).
    LogoutFailed = "logout_failed" in Manager,
    /// The environment has no global `fetch`.
    NoFetch = "no_fetch" in Manager,
    /// The option `verify` in the default build: it needs `wasm-token-manager/verify`.
    VerifyUnavailable = "verify_unavailable" in Manager,
    /// A received token has no usable lifetime (neither `expires_in` nor `exp` and `iat`).
    NoExpiry = "no_expiry" in Manager,
    /// Another tab announced a token of another user or session (refused, not reported).
    OtherSession = "other_session" in Manager,
    /// The option `dpop` in the default build: it needs `wasm-token-manager/verify`.
    DpopUnavailable = "dpop_unavailable" in Manager,
    /// A DPoP proof could not be made: no WebCrypto (`crypto.subtle`, an insecure context),
    /// or generating the key or signing failed.
    DpopFailed = "dpop_failed" in Manager,
}
