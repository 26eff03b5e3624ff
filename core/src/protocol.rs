//! The wire contract between the browser package and an auth server.
//!
//! Defined once here and used by both `src/` (the browser layer) and `server/` (the reference
//! server), so the two halves of the protocol cannot drift apart. README "Server contract"
//! documents the same shapes for people writing their own backend.

use serde::{Deserialize, Serialize};

/// Header every refresh and logout request carries. A custom header cannot be sent
/// cross-origin without a CORS preflight, so a server that requires it is not open to
/// form-based or `no-cors` CSRF.
pub const CSRF_HEADER: &str = "X-Requested-With";

/// The fixed value of [`CSRF_HEADER`].
pub const CSRF_VALUE: &str = "wasm-token-manager";

/// Name of the refresh cookie. The `__Host-` prefix makes the browser refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`, so no sibling subdomain can set or shadow it.
pub const REFRESH_COOKIE: &str = "__Host-refresh";

/// `token_type` of every token response.
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// `typ` header of access tokens issued by the reference server (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Largest request body the reference server accepts, and the largest token response the
/// browser layer will parse.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Stable `error` codes of [`ErrorBody`].
pub mod error_code {
    /// The refresh cookie is missing, unknown, expired, revoked, or was replayed.
    pub const INVALID_GRANT: &str = "invalid_grant";
    /// The request is malformed: bad JSON, wrong content type, missing CSRF header, body too large.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// Wrong username or password.
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// The request came from an origin or site the server does not accept.
    pub const FORBIDDEN_ORIGIN: &str = "forbidden_origin";
    /// Too many requests; see the `Retry-After` header.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The bearer access token is missing, malformed, forged, expired or revoked.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// The server failed; retrying later may succeed.
    pub const SERVER_ERROR: &str = "server_error";
    /// The server is temporarily unable to answer.
    pub const TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";
    /// No such endpoint or file, or a `/test/*` endpoint on a server started without
    /// `--test-switches`.
    pub const NOT_FOUND: &str = "not_found";
    /// The endpoint exists but not for this HTTP method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
}

/// Whether a request with this method may be sent again after a 401: the methods RFC 9110
/// §9.2.2 defines as idempotent (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`), whose
/// effect is the same however often they arrive. A `POST` or `PATCH` replayed after a 401 the
/// API answered *after* acting on it (a payment, say) would act twice. Method names are
/// case-sensitive, but `fetch` uppercases these six whatever their spelling, so the match is
/// ASCII case-insensitive.
pub fn idempotent_method(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// Successful answer of `POST /auth/login` and `POST /auth/refresh`.
///
/// The refresh token is never part of it: it travels only in the `HttpOnly` cookie.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token: a JWT (the reference server's own), or a provider's token, which
    /// may be opaque (upstream mode, whose answer then also carries `id_token_claims`).
    pub access_token: String,
    /// `"Bearer"`, or `"DPoP"` when the token is bound to the key of the login or refresh's DPoP proof.
    pub token_type: String,
    /// Lifetime of the access token in seconds, counted from when the response is received.
    /// Clients use it instead of `exp` so that a skewed client clock does not matter.
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Body of every error answer: `{"error": "...", "error_description": "..."}` (RFC 6749 §5.2 shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code from [`error_code`].
    pub error: String,
    /// A readable explanation. Never contains a token, cookie or password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorBody {
    /// An error body with a description.
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            error_description: Some(description.into()),
        }
    }
}

/// Body of `POST /auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The account name.
    pub username: String,
    /// The password; never logged, never echoed.
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_debug_never_shows_the_token() {
        let r = TokenResponse {
            access_token: "eyJsecret".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("eyJsecret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn login_request_debug_never_shows_the_password() {
        let r = LoginRequest {
            username: "demo".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn only_rfc_9110_idempotent_methods_may_be_replayed() {
        for m in [
            "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "get", "Delete",
        ] {
            assert!(idempotent_method(m), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "post", "PROPFIND", ""] {
            assert!(!idempotent_method(m), "{m}");
        }
    }

    #[test]
    fn error_body_omits_missing_description() {
        let body = ErrorBody {
            error: error_code::INVALID_GRANT.into(),
            error_description: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_grant"}"#
        );
    }
}
