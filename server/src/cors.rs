//! CORS for the allowlisted origins only, with credentials.
//!
//! A preflight from an allowed origin is answered 204 with what the browser layer needs
//! (the CSRF header, `Content-Type`, `Authorization`, `DPoP`); from any other origin it is
//! refused 403 without CORS headers, so the browser never sends the real request. Responses
//! to allowed origins expose `Retry-After`, `WWW-Authenticate`, `Date` (the browser layer
//! estimates the issuer's clock from it) and `DPoP-Nonce` so the client can read them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::origin_allowed;
use crate::state::AppState;

const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, Authorization, X-Requested-With, DPoP";
const EXPOSE_HEADERS: &str = "Retry-After, WWW-Authenticate, Date, DPoP-Nonce";
const PREFLIGHT_MAX_AGE: &str = "600";

pub(crate) async fn cors(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .is_some_and(|o| origin_allowed(o.as_bytes(), &state.settings.allowed_origins));
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    let mut response = if preflight {
        if !allowed {
            let mut r = ApiError::forbidden_origin("this origin is not allowed").into_response();
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            return r;
        }
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        r
    } else {
        next.run(request).await
    };

    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if !preflight {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    response
}
