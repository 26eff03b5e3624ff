//! Every error answer: a status, `{"error","error_description"}` from core's codes, and
//! `Cache-Control: no-store`. Descriptions are fixed strings or built from safe values only.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use token_manager_core::protocol::{error_code, ErrorBody};

#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) description: Cow<'static, str>,
    pub(crate) retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3).
    pub(crate) bearer_challenge: bool,
    /// Adds `WWW-Authenticate: DPoP error="<code>", algs="ES256 EdDSA"` (RFC 9449 §7.1)
    /// instead of the bearer challenge.
    pub(crate) dpop_challenge: bool,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            bearer_challenge: false,
            dpop_challenge: false,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error_code::INVALID_REQUEST,
            description,
        )
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_code::INVALID_REQUEST,
            "the body must be application/json",
        )
    }

    pub(crate) fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_code::INVALID_REQUEST,
            "the body is larger than 16 KiB",
        )
    }

    /// The body did not arrive within `--body-timeout`; the connection is closed after it.
    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            error_code::INVALID_REQUEST,
            "the request body did not arrive in time",
        )
    }

    pub(crate) fn forbidden_origin(description: &'static str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            error_code::FORBIDDEN_ORIGIN,
            description,
        )
    }

    pub(crate) fn invalid_grant(description: &'static str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            error_code::INVALID_GRANT,
            description,
        )
    }

    pub(crate) fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            error_code::INVALID_CREDENTIALS,
            "wrong username or password",
        )
    }

    pub(crate) fn invalid_token(description: &'static str) -> Self {
        Self {
            bearer_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                error_code::INVALID_TOKEN,
                description,
            )
        }
    }

    /// A refused DPoP proof: 400 on a token endpoint, 401 with the DPoP challenge on a
    /// resource. `invalid_dpop_proof`, or `use_dpop_nonce` for the nonce refusals.
    pub(crate) fn dpop(refusal: crate::dpop::Refusal, resource: bool) -> Self {
        let status = if resource {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            dpop_challenge: resource,
            ..Self::new(status, refusal.error_code(), refusal.description())
        }
    }

    /// 401 `invalid_token` with the DPoP challenge: a token sent under the DPoP scheme, or
    /// a DPoP-bound token sent as a bearer token.
    pub(crate) fn invalid_dpop_token(description: &'static str) -> Self {
        Self {
            dpop_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                error_code::INVALID_TOKEN,
                description,
            )
        }
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub(crate) fn rate_limited(retry_after: u64, description: &'static str) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                error_code::RATE_LIMITED,
                description,
            )
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After: 1`: a bounded resource is full.
    pub(crate) fn busy(description: &'static str) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                error_code::TEMPORARILY_UNAVAILABLE,
                description,
            )
        }
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::SERVER_ERROR,
            "the server failed; try again later",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            error_code::NOT_FOUND,
            "no such resource",
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            error_code::METHOD_NOT_ALLOWED,
            "this endpoint does not accept that method",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.description.clone());
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.dpop_challenge {
            let challenge = format!(
                "DPoP error=\"{}\", error_description=\"{}\", algs=\"{}\"",
                self.code,
                self.description.replace(['"', '\\'], "'"),
                crate::dpop::ALGS
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        } else if self.bearer_challenge {
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                self.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}
