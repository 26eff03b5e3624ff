//! Checks every state-changing request passes before it is acted on: origin and site,
//! the CSRF header, content type and size, and extraction of the cookie and bearer token.
//! A request refused here has changed nothing.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use token_manager_core::protocol::{CSRF_HEADER, CSRF_VALUE, MAX_BODY_BYTES, REFRESH_COOKIE};

use crate::connections::is_body_timeout;
use crate::error::ApiError;

/// Refuses requests a browser marks as cross-site, and any `Origin` not on the allowlist.
/// A request without `Origin` (not from a browser page) passes; the CSRF header and
/// `SameSite=Strict` still stand in its way.
pub(crate) fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
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
pub(crate) fn require_csrf_header(headers: &HeaderMap) -> Result<(), ApiError> {
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

/// Every value of the refresh cookie across all `Cookie` headers.
pub(crate) fn refresh_cookies(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .collect()
}

/// The token of `Authorization: Bearer <token>`. `Ok(None)` when there is no such header;
/// `Err` when there is one that is not a bearer token.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, token) = v.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(());
    }
    Ok(Some(token))
}
