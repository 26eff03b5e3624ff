//! The upstream mode's endpoints (issue 19): `GET /auth/authorize` and `GET /auth/callback`,
//! and the upstream halves of `/auth/refresh` and `/auth/logout`, which `auth.rs` hands an
//! upstream server's requests to. The cookie rotation is the usual one (same store call,
//! same policy); only the access token differs: the provider's, cached per family and
//! refreshed upstream near its expiry, by one request at a time across instances.

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
use crate::store::{GrantRequest, RefreshTokenStatus, Step};
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

/// `GET /auth/authorize?returnTo=…`: 302 to the provider, the sign-in state in a sealed
/// cookie. A `returnTo` off the allowlist is refused here, before the user signs in.
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let up = upstream(&state)?;
    let return_to = up
        .return_to
        .check(query(&uri, "returnTo").as_deref())
        .ok_or_else(|| {
            ApiError::invalid_request("returnTo is not an allowed place (--post-login-redirect)")
        })?;
    let auth = up.authorize();
    let sign_in = SignInState {
        state: auth.state.clone(),
        nonce: auth.nonce.clone(),
        pkce_verifier: auth.pkce_verifier.clone(),
        return_to,
        expires_at: state.now().saturating_add(STATE_TTL),
    };
    let cookie = sign_in
        .set_cookie(&up.kek)
        .map_err(|e| state.internal("seal sign-in state", e))?;
    let mut response = StatusCode::FOUND.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, header_value(&state, &auth.url)?);
    h.insert(header::SET_COOKIE, header_value(&state, &cookie)?);
    no_store(&mut response);
    tracing::info!(outcome = %"redirected", "authorize");
    Ok(response)
}

/// A callback refusal: the error, and the state cookie cleared (a sign-in state is used
/// once, whatever the outcome).
fn callback_error(error: ApiError) -> Response {
    let mut response = error.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_state_cookie()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /auth/callback?code=…&state=…`: checks the state against the cookie, exchanges the
/// code (with the PKCE verifier), validates the ID token, starts a family for its subject
/// with the provider's tokens sealed beside it, sets the refresh cookie and 303s to
/// `returnTo`.
pub(super) async fn callback(
    State(state): State<Arc<AppState>>,
    RefreshCookieHashes(previous): RefreshCookieHashes,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let state_cookie = cookie(&headers, STATE_COOKIE).map(str::to_owned);
    match callback_inner(&state, previous, &uri, state_cookie).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(reason = %error.code, "callback_refused");
            callback_error(error)
        }
    }
}

async fn callback_inner(
    state: &Arc<AppState>,
    previous: Vec<TokenHash>,
    uri: &Uri,
    state_cookie: Option<String>,
) -> Result<Response, ApiError> {
    let up = upstream(state)?.clone();
    let param = |name: &str| query(uri, name);
    let sign_in = SignInState::check(
        &up.kek,
        state_cookie.as_deref(),
        param("state").as_deref(),
        state.now(),
    )
    .map_err(|refused| {
        let description = match refused {
            StateRefused::Missing => {
                "the sign-in state cookie is missing: start the sign-in again from the app"
            }
            StateRefused::Invalid => "the sign-in state cookie is invalid or has expired",
            StateRefused::Mismatch => "the state parameter does not match this sign-in",
        };
        ApiError::new(StatusCode::BAD_REQUEST, INVALID_STATE, description)
    })?;
    if param("error").is_some() {
        // The provider's own error code and text are not repeated: they are its input.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            UPSTREAM_ERROR,
            "the identity provider did not sign the user in",
        ));
    }
    let code = param("code").ok_or_else(|| ApiError::invalid_request("no code parameter"))?;
    let (subject, tokens) = up
        .exchange_code(
            code,
            sign_in.pkce_verifier.clone(),
            &sign_in.nonce,
            state.now(),
        )
        .await
        .map_err(|e| match e {
            ProviderError::InvalidGrant => {
                ApiError::invalid_grant("the provider refused the authorization code")
            }
            ProviderError::InvalidIdToken(detail) => {
                let _ = state.internal("ID token validation", detail);
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    INVALID_ID_TOKEN,
                    "the provider's ID token failed validation",
                )
            }
            ProviderError::Unavailable(detail) => {
                let _ = state.internal("code exchange", detail);
                provider_unavailable()
            }
        })?;
    let return_to = sign_in.return_to.clone();
    let name = tokens
        .id_token_claims
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or(&subject)
        .to_owned();
    let up2 = up.clone();
    state
        .blocking(move |s| {
            // Local accounts cannot be named `oidc:…` (a demo user's name has no ':'),
            // and the empty hash never verifies: these users cannot log in by password.
            let username = format!("oidc:{subject}");
            s.store
                .upsert_user(&username, "", &name, &[])
                .map_err(|e| s.store_failed("upstream user", e))?;
            let user = s
                .store
                .find_user(&username)
                .map_err(|e| s.store_failed("upstream user", e))?
                .ok_or_else(|| s.internal("upstream user", "the user just stored is missing"))?;
            let now = s.now();
            let pin = |_: &str, _: u64| true;
            // No access token of ours is signed in this mode: the grant names no lifetime.
            let step = Step {
                now,
                rules: &s.settings.limits.session,
                grant: GrantRequest {
                    exp: now,
                    pin: &pin,
                },
                dpop: false,
            };
            let (issued, revoked) = s
                .store
                .login(user, &previous, &step)
                .map_err(|e| s.store_failed("login", e))?;
            let sealed = tokens
                .seal(&up2.kek, &issued.family_id)
                .map_err(|e| s.store_failed("seal upstream tokens", e))?;
            s.store
                .upstream_save(&issued.family_id, &sealed, tokens.access_exp)
                .map_err(|e| s.store_failed("upstream tokens", e))?;
            tracing::info!(
                user = issued.user.username,
                sid = %issued.family_id,
                revoked_sessions = revoked.len(),
                "login"
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            let h = response.headers_mut();
            h.insert(header::LOCATION, header_value(s, &return_to)?);
            let cookie = refresh::set_cookie(&issued.token, issued.expires_at.saturating_sub(now));
            h.append(header::SET_COOKIE, header_value(s, &cookie)?);
            h.append(header::SET_COOKIE, header_value(s, &clear_state_cookie())?);
            no_store(&mut response);
            Ok(response)
        })
        .await
}

/// The refresh answer of an upstream family: the provider's access token and the ID
/// token's claims (for the UI when the access token is not a JWT).
#[derive(Serialize)]
struct UpstreamTokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    id_token_claims: &'a serde_json::Value,
}

/// The provider tokens of `family_id`, refreshed upstream first if the cached access token
/// is near its expiry. One refresh per family at a time: the store's lock; a request that
/// finds it taken waits for the holder's result.
async fn current_tokens(
    state: &Arc<AppState>,
    up: &Arc<Upstream>,
    family_id: &str,
    presented: &TokenHash,
) -> Result<UpstreamTokens, ApiError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let owner = refresh::random_id();
    loop {
        let tokens = load_tokens(state, up, family_id).await?;
        let now = state.now();
        if !tokens.near_expiry(now) {
            return Ok(tokens);
        }
        let (f, o) = (family_id.to_owned(), owner.clone());
        let locked = state
            .blocking(move |s| {
                let now = s.now();
                s.store
                    .upstream_lock(&f, &o, now, now + LOCK_SECS)
                    .map_err(|e| s.store_failed("upstream lock", e))
            })
            .await?;
        if !locked {
            if Instant::now() >= deadline {
                return Err(provider_unavailable());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        // Read again under the lock: the previous holder may have just stored new tokens.
        let result = async {
            let tokens = load_tokens(state, up, family_id).await?;
            if !tokens.near_expiry(state.now()) {
                return Ok(tokens);
            }
            match up.refresh(&tokens, state.now()).await {
                Ok(fresh) => {
                    let sealed = fresh
                        .seal(&up.kek, family_id)
                        .map_err(|e| state.store_failed("seal upstream tokens", e))?;
                    let (f, exp) = (family_id.to_owned(), fresh.access_exp);
                    state
                        .blocking(move |s| {
                            s.store
                                .upstream_save(&f, &sealed, exp)
                                .map_err(|e| s.store_failed("upstream tokens", e))
                        })
                        .await?;
                    tracing::info!(sid = %family_id, outcome = %"refreshed", "upstream_refresh");
                    Ok(fresh)
                }
                Err(ProviderError::InvalidGrant) => {
                    // Revoked upstream (or expired there): this session is over too.
                    let hash = *presented;
                    state
                        .blocking(move |s| {
                            s.store
                                .logout(Some(&hash), None, s.now())
                                .map_err(|e| s.store_failed("revoke family", e))
                        })
                        .await?;
                    tracing::warn!(sid = %family_id, outcome = %"invalid_grant", action = %"revoked", "upstream_refresh");
                    Err(ApiError::invalid_grant(
                        "the identity provider refused the session; sign in again",
                    ))
                }
                Err(ProviderError::Unavailable(detail) | ProviderError::InvalidIdToken(detail)) => {
                    let _ = state.internal("upstream refresh", detail);
                    Err(provider_unavailable())
                }
            }
        }
        .await;
        let (f, o) = (family_id.to_owned(), owner.clone());
        let _ = state
            .blocking(move |s| {
                s.store
                    .upstream_unlock(&f, &o)
                    .map_err(|e| s.store_failed("upstream unlock", e))
            })
            .await;
        return result;
    }
}

async fn load_tokens(
    state: &Arc<AppState>,
    up: &Arc<Upstream>,
    family_id: &str,
) -> Result<UpstreamTokens, ApiError> {
    let f = family_id.to_owned();
    let sealed = state
        .blocking(move |s| {
            s.store
                .upstream_load(&f)
                .map_err(|e| s.store_failed("upstream tokens", e))
        })
        .await?
        .ok_or_else(|| ApiError::invalid_grant("the session has no provider tokens"))?;
    UpstreamTokens::open(&up.kek, family_id, &sealed)
        .map_err(|e| state.store_failed("open upstream tokens", e))
}

/// `POST /auth/refresh` of an upstream server, after the CSRF checks and test switches.
pub(super) async fn refresh(
    state: &Arc<AppState>,
    presented: RefreshToken,
) -> Result<Response, ApiError> {
    let up = upstream(state)?.clone();
    let hash = presented.hash();
    let family = state
        .blocking(move |s| {
            let status = s
                .store
                .token_status(&hash)
                .map_err(|e| s.store_failed("refresh", e))?;
            match status {
                RefreshTokenStatus::Unknown => Ok(None),
                RefreshTokenStatus::Revoked => {
                    Err(ApiError::invalid_grant("the session has been revoked"))
                }
                _ => s
                    .store
                    .upstream_family(&hash)
                    .map_err(|e| s.store_failed("refresh", e)),
            }
        })
        .await?;
    let Some(family_id) = family else {
        return Err(ApiError::invalid_grant("unknown refresh token"));
    };
    // Upstream first, the rotation after: a provider that is down leaves the cookie as it
    // was, so the family survives an outage of any length.
    let tokens = current_tokens(state, &up, &family_id, &hash).await?;
    state
        .blocking(move |s| {
            let now = s.now();
            s.switches.run_before_refresh_transaction();
            let pin = |_: &str, _: u64| true;
            let step = Step {
                now,
                rules: &s.settings.limits.session,
                grant: GrantRequest { exp: now, pin: &pin },
                dpop: false,
            };
            let outcome = s
                .store
                .refresh(&presented, &step)
                .map_err(|e| s.store_failed("refresh", e))?;
            let issued = outcome.map_err(|refused| super::auth::refused_error(s, refused))?;
            if issued.grace_replay {
                Counters::bump(&s.counters.grace_replays);
            } else {
                Counters::bump(&s.counters.rotations);
            }
            let body = UpstreamTokenResponse {
                access_token: &tokens.access_token,
                token_type: TOKEN_TYPE_BEARER,
                expires_in: tokens.access_exp.saturating_sub(now).max(1),
                id_token_claims: &tokens.id_token_claims,
            };
            let mut response = Json(body).into_response();
            let cookie = refresh::set_cookie(&issued.token, issued.expires_at.saturating_sub(now));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, header_value(s, &cookie)?);
            no_store(&mut response);
            tracing::info!(sid = %issued.family_id, outcome = %if issued.grace_replay { "grace_replay" } else { "rotated" }, "refresh");
            Ok(response)
        })
        .await
}

/// The upstream half of `POST /auth/logout`, before the family is revoked: revokes the
/// provider's refresh token (RFC 7009, if advertised; a failure is logged, the logout goes
/// on) and returns the provider's end-session URL for RP-initiated logout.
pub(super) async fn logout(state: &Arc<AppState>, cookie: Option<TokenHash>) -> Option<String> {
    let up = state.upstream.as_ref()?.clone();
    let hash = cookie?;
    let family = state
        .blocking(move |s| {
            s.store
                .upstream_family(&hash)
                .map_err(|e| s.store_failed("logout", e))
        })
        .await
        .ok()??;
    let tokens = load_tokens(state, &up, &family).await.ok()?;
    match up.revoke(&tokens).await {
        Ok(revoked) => tracing::info!(sid = %family, revoked, "upstream_revocation"),
        Err(detail) => {
            let _ = state.internal("upstream revocation", detail);
        }
    }
    up.end_session_url(&tokens)
}

/// The answer of an upstream server's logout: 200 with the provider's end-session URL
/// (`null` when it has none), so the app can end the provider's session too.
pub(super) fn logout_answer(end_session_url: Option<String>) -> Response {
    #[derive(Serialize)]
    struct LogoutAnswer {
        end_session_url: Option<String>,
    }
    Json(LogoutAnswer { end_session_url }).into_response()
}
