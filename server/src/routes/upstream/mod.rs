//! The upstream mode's endpoints (issue 19): `GET /auth/authorize` and `GET /auth/callback`,
//! and the upstream halves of `/auth/refresh` and `/auth/logout`, which `auth.rs` hands an
//! upstream server's requests to. The cookie rotation is the usual one (same store call,
//! same policy); only the access token differs: the provider's, cached per family and
//! refreshed upstream near its expiry, by one request at a time across instances.
//!
//! The sign-in is in [`sign_in`], the session's refresh and logout in [`session`]; this file
//! holds what both use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openidconnect::url::form_urlencoded;
use serde::Serialize;
use token_manager_core::protocol::{error_code, TOKEN_TYPE_BEARER};

use super::no_store;
use crate::error::ApiError;
use crate::extract::RefreshCookieHashes;
use crate::refresh::{self, RefreshToken, TokenHash};
use crate::state::AppState;
use crate::store::{GrantRequest, RefreshTokenStatus, Refused, Step};
use crate::switches::Counters;
use crate::upstream::flow::{
    clear_state_cookie, SignInState, StateRefused, STATE_COOKIE, STATE_TTL,
};
use crate::upstream::tokens::UpstreamTokens;
use crate::upstream::{ProviderError, Upstream};

/// The sign-in state is missing, altered, expired or does not match (`/auth/callback`).
pub(crate) const INVALID_STATE: &str = "invalid_state";
/// The provider's ID token failed validation.
pub(crate) const INVALID_ID_TOKEN: &str = "invalid_id_token";
/// The provider answered the sign-in with an error (`?error=` on the callback).
pub(crate) const UPSTREAM_ERROR: &str = "upstream_error";

/// Longest an upstream refresh may hold the family's lock; a crashed holder's lock lapses.
const LOCK_SECS: u64 = 15;
/// Longest a request waits for another one's upstream refresh before it answers 503.
const LOCK_WAIT: Duration = Duration::from_secs(8);
/// `Retry-After` when the provider is down.
const PROVIDER_RETRY_AFTER: u64 = 2;

fn upstream(state: &AppState) -> Result<&Arc<Upstream>, ApiError> {
    state.upstream.as_ref().ok_or_else(ApiError::not_found)
}

/// The first value of query parameter `name`.
fn query(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &'a str) -> Option<&'a str> {
    crate::extract::cookie_values(headers, name).next()
}

fn provider_unavailable() -> ApiError {
    ApiError {
        retry_after: Some(PROVIDER_RETRY_AFTER),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::TEMPORARILY_UNAVAILABLE,
            "the identity provider is unreachable; try again shortly",
        )
    }
}

fn header_value(state: &AppState, value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|e| state.internal("header", e))
}

mod session;
mod sign_in;

pub(super) use session::{logout, logout_answer, refresh};
pub(super) use sign_in::{authorize, callback};
