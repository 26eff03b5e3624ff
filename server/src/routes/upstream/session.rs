//! The upstream halves of `/auth/refresh` and `/auth/logout`: the provider's tokens of a
//! family, refreshed upstream near their expiry under the family's lock, revoked at the
//! provider on logout and on reuse.

use super::*;

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
pub(in crate::routes) async fn refresh(
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
    let answer = state
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
            let issued = match outcome {
                Ok(issued) => issued,
                Err(refused) => {
                    // After a reuse, the provider's tokens go out again: to be revoked.
                    let reuse = matches!(refused, Refused::ReuseDetected { .. });
                    let error = crate::routes::auth::refused_error(s, refused);
                    return Ok(Err((error, reuse.then_some(tokens))));
                }
            };
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
            Ok(Ok(response))
        })
        .await?;
    answer.map_err(|(error, reused)| {
        if let Some(tokens) = reused {
            revoke_after_reuse(state, up, family_id, tokens);
        }
        error
    })
}

/// Our reuse detection has just revoked the family: a thief may hold a cookie of it, so
/// the provider's refresh token goes too (RFC 7009, if advertised). In the background:
/// best effort, and the 401 never waits for the provider.
fn revoke_after_reuse(
    state: &Arc<AppState>,
    up: Arc<Upstream>,
    family_id: String,
    tokens: UpstreamTokens,
) {
    let (state, dispatch) = (state.clone(), state.log.dispatch());
    let revocation = async move {
        // The latest the store holds: another request may have refreshed upstream (and the
        // provider rotated the refresh token) since these were read.
        let tokens = load_tokens(&state, &up, &family_id).await.unwrap_or(tokens);
        match up.revoke(&tokens).await {
            Ok(revoked) => {
                tracing::info!(sid = %family_id, revoked, reason = %"reuse", "upstream_revocation")
            }
            Err(detail) => {
                let _ = state.internal("upstream revocation after reuse", detail);
            }
        }
    };
    // The server's own subscriber: a spawned task does not inherit the request's.
    tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(
        revocation, dispatch,
    ));
}

/// The upstream half of `POST /auth/logout`, before the family is revoked: revokes the
/// provider's refresh token (RFC 7009, if advertised; a failure is logged, the logout goes
/// on) and returns the provider's end-session URL for RP-initiated logout.
pub(in crate::routes) async fn logout(
    state: &Arc<AppState>,
    cookie: Option<TokenHash>,
) -> Option<String> {
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
pub(in crate::routes) fn logout_answer(end_session_url: Option<String>) -> Response {
    #[derive(Serialize)]
    struct LogoutAnswer {
        end_session_url: Option<String>,
    }
    Json(LogoutAnswer { end_session_url }).into_response()
}
