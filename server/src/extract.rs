//! The extractors of the handlers, and the checks behind them: origin and site, the CSRF
//! header, the JSON body (content type, size, shape), the refresh cookie and the bearer
//! token. Each rejects with an [`ApiError`]; a request refused here has changed nothing.
//! Axum runs them in argument order, the body last, which is the order of the checks.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use token_manager_core::protocol::{CSRF_HEADER, CSRF_VALUE, MAX_BODY_BYTES, REFRESH_COOKIE};

use crate::access::Rejection;
use crate::connections::is_body_timeout;
use crate::error::ApiError;
use crate::refresh::{RefreshToken, TokenHash};
use crate::state::AppState;

/// The request is not cross-site and its `Origin`, if any, is allowed ([`check_origin`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllowedOrigin;

impl FromRequestParts<Arc<AppState>> for AllowedOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        check_origin(&parts.headers, &state.settings.allowed_origins)?;
        Ok(Self)
    }
}

/// [`AllowedOrigin`], and the CSRF header that no HTML form can send: what every
/// state-changing endpoint but the login requires.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CsrfChecked;

impl FromRequestParts<Arc<AppState>> for CsrfChecked {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        AllowedOrigin::from_request_parts(parts, state).await?;
        require_csrf_header(&parts.headers)?;
        Ok(Self)
    }
}

/// A required JSON object body, deserialized into `T` ([`read_json`] with `required`).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        match read_json(&parts.headers, body, true).await? {
            Some(value) => Ok(Self(value)),
            None => Err(ApiError::invalid_request(
                "the body is empty; expected JSON",
            )),
        }
    }
}

/// An optional body: empty, or a JSON object sent as `application/json`. The endpoints
/// without parameters take it, so a form post is still refused.
#[derive(Debug)]
pub(crate) struct OptionalJsonBody;

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        read_json::<serde_json::Value>(&parts.headers, body, false).await?;
        Ok(Self)
    }
}

/// The refresh cookie to rotate: the first one sent, which must parse. Taken as
/// `Result<RefreshCookie, ApiError>` by the refresh handler, which answers a test switch's
/// injected failure before it looks at the cookie.
#[derive(Debug)]
pub(crate) struct RefreshCookie(pub(crate) RefreshToken);

impl<S: Send + Sync> FromRequestParts<S> for RefreshCookie {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let cookies = refresh_cookies(&parts.headers);
        let Some(first) = cookies.first() else {
            return Err(ApiError::invalid_grant("no refresh cookie"));
        };
        RefreshToken::parse(first)
            .map(Self)
            .ok_or_else(|| ApiError::invalid_grant("the refresh cookie is malformed"))
    }
}

/// The hashes of every well-formed refresh cookie sent (the sessions a login or a logout
/// ends). Never rejects: a malformed cookie names no session.
#[derive(Debug)]
pub(crate) struct RefreshCookieHashes(pub(crate) Vec<TokenHash>);

impl<S: Send + Sync> FromRequestParts<S> for RefreshCookieHashes {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(
            refresh_cookies(&parts.headers)
                .into_iter()
                .filter_map(RefreshToken::parse)
                .map(|t| t.hash())
                .collect(),
        ))
    }
}

/// The token of `Authorization: Bearer <token>` or `Authorization: DPoP <token>`,
/// required: 401 `invalid_token` (with the RFC 6750 challenge) when it is missing or is
/// neither. `Debug` is redacted.
pub(crate) struct AccessToken {
    pub(crate) token: String,
    /// Sent under the `DPoP` scheme (RFC 9449 §7.1): the token must be bound and come
    /// with a proof.
    pub(crate) dpop: bool,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("dpop", &self.dpop)
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match authorization_token(&parts.headers) {
            Ok(Some((token, dpop))) => Ok(Self {
                token: token.to_owned(),
                dpop,
            }),
            Ok(None) => Err(ApiError::invalid_token(Rejection::Missing.description())),
            Err(()) => Err(ApiError::invalid_token(Rejection::Malformed.description())),
        }
    }
}

/// The bearer (or DPoP-scheme) token if one was sent well-formed; never rejects (the logout
/// takes it as a hint of the session to end, and only if it verifies; no proof is needed
/// to end a session). `Debug` is redacted.
pub(crate) struct OptionalBearer(pub(crate) Option<String>);

impl fmt::Debug for OptionalBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.as_ref().map(|_| "[redacted]");
        f.debug_tuple("OptionalBearer").field(&shown).finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(
            authorization_token(&parts.headers)
                .ok()
                .flatten()
                .map(|(token, _)| token.to_owned()),
        ))
    }
}

/// Refuses requests a browser marks as cross-site, and any `Origin` not on the allowlist.
/// A request without `Origin` (not from a browser page) passes; the CSRF header and
/// `SameSite=Strict` still stand in its way.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if site.as_bytes().eq_ignore_ascii_case(b"cross-site") {
            return Err(ApiError::forbidden_origin(
                "cross-site requests are refused",
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(origin.as_bytes(), allowed) {
            return Err(ApiError::forbidden_origin("this origin is not allowed"));
        }
    }
    Ok(())
}

pub(crate) fn origin_allowed(origin: &[u8], allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
}

/// The custom header cannot be sent cross-origin without a CORS preflight, which only
/// allowed origins pass; an HTML form cannot send it at all.
fn require_csrf_header(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(CSRF_HEADER) {
        Some(v) if v.as_bytes() == CSRF_VALUE.as_bytes() => Ok(()),
        _ => Err(ApiError::invalid_request(
            "missing header X-Requested-With: wasm-token-manager",
        )),
    }
}

fn content_type_is_json(headers: &HeaderMap) -> Option<bool> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let essence = v
        .to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .unwrap_or("");
    Some(essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body (at most 16 KiB) and parses it as JSON.
///
/// With `required`, the body must be present and JSON. Without, an empty body is fine
/// (`Ok(None)`), and a non-empty one must be a JSON object sent as `application/json`.
/// Any `Content-Type` other than JSON is refused even on an empty body: browsers only
/// send one when a body was given, and a form post is exactly what CSRF looks like.
pub(crate) async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    required: bool,
) -> Result<Option<T>, ApiError> {
    let is_json = content_type_is_json(headers);
    if is_json == Some(false) || (required && is_json.is_none()) {
        return Err(ApiError::unsupported_media_type());
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::payload_too_large());
    }
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::payload_too_large())
        }
        Err(e) if is_body_timeout(e.as_ref()) => return Err(ApiError::request_timeout()),
        Err(_) => return Err(ApiError::invalid_request("the body could not be read")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::invalid_request(
                "the body is empty; expected JSON",
            ))
        } else {
            Ok(None)
        };
    }
    if is_json.is_none() {
        return Err(ApiError::unsupported_media_type());
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::invalid_request("the body is not valid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map(Some).map_err(|_| {
        ApiError::invalid_request("the body is missing a field or has one of the wrong type")
    })
}

/// Every value of the cookie `name` across all `Cookie` headers, trimmed, in order.
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// Every value of the refresh cookie across all `Cookie` headers.
fn refresh_cookies(headers: &HeaderMap) -> Vec<&str> {
    cookie_values(headers, REFRESH_COOKIE)
        .map(|value| value.trim_matches('"'))
        .collect()
}

/// The token of `Authorization: Bearer <token>` or `DPoP <token>`, and whether it was
/// DPoP. `Ok(None)` when there is no such header; `Err` when there is one of another scheme.
fn authorization_token(headers: &HeaderMap) -> Result<Option<(&str, bool)>, ()> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, token) = v.split_once(' ').ok_or(())?;
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(());
    }
    Ok(Some((token, dpop)))
}
