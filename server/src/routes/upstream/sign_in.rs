//! `GET /auth/authorize` and `GET /auth/callback`: the sign-in at the provider, the code
//! exchange and the ID token's validation, and the family it starts.

use super::*;

/// `GET /auth/authorize?returnTo=…`: 302 to the provider, the sign-in state in a sealed
/// cookie. A `returnTo` off the allowlist is refused here, before the user signs in.
pub(in crate::routes) async fn authorize(
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
pub(in crate::routes) async fn callback(
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
