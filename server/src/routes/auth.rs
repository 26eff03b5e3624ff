//! The four auth endpoints: login, refresh, logout. Each takes its checks as extractors,
//! hands database and crypto work to the blocking pool, and shapes the answer; the
//! decisions live in `store` and `refresh`, the counting in `counting`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use token_manager_core::protocol::{error_code, LoginRequest, TokenResponse, TOKEN_TYPE_BEARER};
use zeroize::Zeroize;

use super::login_throttle::{throttle_admit, throttle_settle};
use super::{no_store, AbortConnection};
use crate::access::{self, AccessClaims, Confirmation};
use crate::dpop::check::{check_proof, DpopRequest, Endpoint as DpopEndpoint};
use crate::dpop::{Refusal, TOKEN_TYPE_DPOP};
use crate::error::ApiError;
use crate::extract::{
    AllowedOrigin, CsrfChecked, JsonBody, OptionalBearer, OptionalJsonBody, RefreshCookie,
    RefreshCookieHashes,
};
use crate::keys::SigningKey;
use crate::refresh;
use crate::state::AppState;
use crate::store::{AccessGrant, GrantRequest, Issued, Refused, Step};
use crate::switches::Counters;
use crate::throttle::{Outcome, Policy};

/// Longest username accepted; anything longer is a malformed request, not a login attempt.
const MAX_USERNAME: usize = 256;
/// Longest password accepted, so one request cannot make argon2 hash megabytes.
const MAX_PASSWORD: usize = 1024;

/// Runs `f` with the step about to issue an access token (DPoP-bound with `dpop`). The
/// store chooses the signing key and records its use inside the same transaction as the
/// refresh token, and `pin` keeps that key published in memory until the token expires.
fn with_step<T>(state: &AppState, now: u64, dpop: bool, f: impl FnOnce(&Step<'_>) -> T) -> T {
    // A shared store may name a key another instance installed a moment ago.
    let pin = |kid: &str, exp: u64| {
        state.keys.pin(kid, exp) || (state.sync_keys_on_miss() && state.keys.pin(kid, exp))
    };
    f(&Step {
        now,
        rules: &state.settings.limits.session,
        grant: GrantRequest {
            exp: now + state.settings.access_ttl,
            pin: &pin,
        },
        dpop,
    })
}

/// The key the store chose for `grant`; pinned, so the ring still holds it.
fn grant_key(state: &AppState, grant: &AccessGrant) -> Result<Arc<SigningKey>, ApiError> {
    state
        .keys
        .get(&grant.kid)
        .ok_or_else(|| state.internal("signing key", "the chosen key is not loaded"))
}

/// Signs the access token for `issued` and builds the 200 answer with the cookie. With
/// `jkt` (a valid DPoP proof came with the request) the token is bound to that key (the
/// store bound the family in the step that issued the cookie).
fn token_response(
    state: &AppState,
    issued: &Issued,
    now: u64,
    jkt: Option<String>,
) -> Result<Response, ApiError> {
    let token_type = if jkt.is_some() {
        TOKEN_TYPE_DPOP
    } else {
        TOKEN_TYPE_BEARER
    };
    let grant = &issued.grant;
    let key = grant_key(state, grant)?;
    let claims = AccessClaims {
        iss: state.settings.expect.issuer.clone(),
        sub: issued.user.username.clone(),
        aud: state.settings.expect.audience.clone(),
        exp: grant.exp,
        nbf: now,
        iat: now,
        jti: refresh::random_id(),
        sid: issued.family_id.clone(),
        name: issued.user.name.clone(),
        roles: issued.user.roles.clone(),
        cnf: jkt.map(|jkt| Confirmation { jkt }),
    };
    let access_token =
        access::sign(&key, &claims).map_err(|e| state.internal("sign access token", e))?;
    let body = TokenResponse {
        access_token,
        token_type: token_type.to_owned(),
        expires_in: state.settings.access_ttl,
    };
    let mut response = Json(body).into_response();
    let cookie = refresh::set_cookie(&issued.token, issued.expires_at.saturating_sub(now));
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| state.internal("cookie header", e))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    no_store(&mut response);
    Ok(response)
}

/// `POST /auth/login`. Any refresh cookie the browser already holds names a session that
/// ends with this login (session fixation).
pub(super) async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    _: AllowedOrigin,
    RefreshCookieHashes(previous): RefreshCookieHashes,
    proof: DpopRequest,
    JsonBody(mut request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let peer = peer.ip();
    if request.username.len() > MAX_USERNAME || request.password.len() > MAX_PASSWORD {
        request.password.zeroize();
        return Err(ApiError::invalid_request("username or password too long"));
    }
    // The proof before anything else: a bad one costs no hash and no throttle charge.
    if state.settings.dpop.required && !proof.present() {
        request.password.zeroize();
        tracing::warn!(reason = %Refusal::Missing.as_str(), endpoint = ?DpopEndpoint::Token, "dpop_refused");
        return Err(ApiError::dpop(Refusal::Missing, false));
    }
    let jkt = if proof.present() {
        match state
            .blocking(move |s| check_proof(s, &proof, None, DpopEndpoint::Token))
            .await
        {
            Ok(p) => p.map(|p| p.jkt),
            Err(e) => {
                request.password.zeroize();
                return Err(e);
            }
        }
    } else {
        None
    };
    // Throttled before any hashing: a refused guess costs the server one small
    // transaction, and the attacker a wait.
    let keys = Policy::keys(&request.username, peer);
    match throttle_admit(&state, &keys).await {
        Ok(None) => {}
        Ok(Some(wait)) => {
            request.password.zeroize();
            tracing::warn!(peer = %peer, retry_after = wait, "login_throttled");
            return Err(ApiError::rate_limited(
                wait,
                "too many failed logins; try again later",
            ));
        }
        Err(e) => {
            request.password.zeroize();
            return Err(e);
        }
    }
    let Some(permit) = state.passwords.admit().await else {
        request.password.zeroize();
        let s = state.clone();
        let _ = state
            .blocking(move |_| {
                throttle_settle(&s, &keys, Outcome::NotChecked);
                Ok(())
            })
            .await;
        return Err(ApiError::busy("too many logins at once; try again shortly"));
    };
    state
        .blocking(move |s| {
            // Owned by the job, not the request: the hash runs to its end even if the
            // client leaves, and so does the permit.
            let _permit = permit;
            let user = s
                .store
                .find_user(&request.username)
                .map_err(|e| s.store_failed("find user", e))?;
            let ok = s.passwords.verify(
                &request.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            );
            request.password.zeroize();
            let user = match (ok, user) {
                (true, Some(user)) => user,
                (_, user) => {
                    // The peer, and the account only if it exists: a name that matches no
                    // account is often a password typed into the wrong field.
                    tracing::warn!(
                        peer = %peer,
                        user = user.as_ref().map_or("-", |u| u.username.as_str()),
                        reason = %"invalid_credentials",
                        "login_failed"
                    );
                    return Err(ApiError::invalid_credentials());
                }
            };
            throttle_settle(s, &keys, Outcome::Succeeded);
            let now = s.now();
            let (issued, revoked) = with_step(s, now, jkt.is_some(), |step| {
                s.store.login(user, &previous, step)
            })
            .map_err(|e| s.store_failed("login", e))?;
            tracing::info!(
                user = issued.user.username,
                sid = %issued.family_id,
                revoked_sessions = revoked.len(),
                peer = %peer,
                "login"
            );
            token_response(s, &issued, now, jkt)
        })
        .await
}

/// `POST /auth/refresh`. The cookie is looked at after the test switches' delay and
/// injected failure, so those answer whatever the client sent.
pub(super) async fn refresh(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    cookie: Result<RefreshCookie, ApiError>,
    proof: DpopRequest,
    _: OptionalJsonBody,
) -> Result<Response, ApiError> {
    let plan = state.switches.plan_refresh();
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    if let Some((status, retry_after)) = plan.fail {
        return Err(injected_failure(status, retry_after));
    }

    let RefreshCookie(presented) = cookie?;
    if state.upstream.is_some() {
        let mut response = super::upstream::refresh(&state, presented).await?;
        if plan.drop_response {
            response.extensions_mut().insert(AbortConnection);
        }
        return Ok(response);
    }
    let mut response = state
        .blocking(move |s| {
            // Checked before the rotation: a refused proof leaves the family as it was. A
            // missing one is refused by the rotation itself if the family is bound.
            let jkt = check_proof(s, &proof, None, DpopEndpoint::Token)?.map(|p| p.jkt);
            let now = s.now();
            s.switches.run_before_refresh_transaction();
            let outcome = with_step(s, now, jkt.is_some(), |step| {
                s.store.refresh(&presented, step)
            })
            .map_err(|e| s.store_failed("refresh", e))?;
            match outcome {
                Ok(issued) => {
                    if issued.grace_replay {
                        Counters::bump(&s.counters.grace_replays);
                    } else {
                        Counters::bump(&s.counters.rotations);
                    }
                    let outcome = if issued.grace_replay {
                        "grace_replay"
                    } else {
                        "rotated"
                    };
                    tracing::info!(sid = %issued.family_id, outcome = %outcome, dpop = jkt.is_some(), "refresh");
                    token_response(s, &issued, now, jkt)
                }
                Err(refused) => Err(refused_error(s, refused)),
            }
        })
        .await?;
    if plan.drop_response {
        // The rotation is committed; the client will never see its result.
        response.extensions_mut().insert(AbortConnection);
    }
    Ok(response)
}

pub(super) fn refused_error(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::ProofMissing => {
            tracing::warn!(reason = %Refusal::Missing.as_str(), endpoint = ?DpopEndpoint::Token, "dpop_refused");
            ApiError::dpop(Refusal::Missing, false)
        }
        Refused::Unknown => ApiError::invalid_grant("unknown refresh token"),
        Refused::Expired => ApiError::invalid_grant("the refresh token has expired"),
        Refused::Revoked => ApiError::invalid_grant("the session has been revoked"),
        Refused::SessionEnded => {
            ApiError::invalid_grant("the session has reached its maximum age; sign in again")
        }
        Refused::ReuseDetected { family_id } => {
            Counters::bump(&state.counters.reuse_detected);
            tracing::warn!(sid = %family_id, action = %"revoked", "reuse_detected");
            ApiError::invalid_grant("refresh token reuse detected; the session has been revoked")
        }
    }
}

fn injected_failure(status: u16, retry_after: Option<u64>) -> ApiError {
    let (status, code, retry_after) = match status {
        429 => (
            StatusCode::TOO_MANY_REQUESTS,
            error_code::RATE_LIMITED,
            Some(retry_after.unwrap_or(1)),
        ),
        503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::TEMPORARILY_UNAVAILABLE,
            Some(retry_after.unwrap_or(1)),
        ),
        other => (
            StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_code::SERVER_ERROR,
            retry_after,
        ),
    };
    ApiError {
        retry_after,
        ..ApiError::new(status, code, "injected failure (test switch)")
    }
}

/// `POST /auth/logout`: 204 and a cleared cookie; the session of the cookie, or of a bearer
/// token that verifies, is revoked.
pub(super) async fn logout(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    OptionalBearer(bearer): OptionalBearer,
    RefreshCookieHashes(cookies): RefreshCookieHashes,
    _: OptionalJsonBody,
) -> Result<Response, ApiError> {
    let now = state.now();
    // Only a token that verifies is denied, and only its `sid` is trusted to name the
    // session to end: anything else is not ours, or already dead.
    let deny = bearer.and_then(|token| {
        access::verify(&token, &state.keys, &state.settings.expect, now)
            .ok()
            .map(|(claims, _)| (claims.jti, claims.exp, claims.sid))
    });
    let cookie = cookies.into_iter().next();
    let end_session = super::upstream::logout(&state, cookie).await;
    state
        .blocking(move |s| {
            let denied = deny.is_some();
            let family = s
                .store
                .logout(
                    cookie.as_ref(),
                    deny.as_ref()
                        .map(|(jti, exp, sid)| (jti.as_str(), *exp, sid.as_str())),
                    now,
                )
                .map_err(|e| s.store_failed("logout", e))?;
            tracing::info!(
                sid = %family.as_deref().unwrap_or("-"),
                denied_access_token = denied,
                "logout"
            );
            Ok(())
        })
        .await?;
    let mut response = match state.upstream {
        Some(_) => super::upstream::logout_answer(end_session),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&refresh::clear_cookie())
            .map_err(|e| state.internal("cookie header", e))?,
    );
    no_store(&mut response);
    Ok(response)
}
