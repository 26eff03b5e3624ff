//! The resource endpoints: `/api/me` (the claims of a valid, unrevoked access token) and
//! the JWKS verifiers fetch.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::no_store;
use crate::access::{self, Rejection};
use crate::dpop::check::{check_bound_request, DpopRequest};
use crate::error::ApiError;
use crate::extract::AccessToken;
use crate::state::AppState;
use crate::store::AccessState;

/// `GET /api/me`: the token's claims, if it verifies and its session is alive. A
/// DPoP-bound token (`cnf.jkt`) needs `Authorization: DPoP` and a proof of its key.
pub(super) async fn me(
    State(state): State<Arc<AppState>>,
    AccessToken { token, dpop }: AccessToken,
    proof: DpopRequest,
) -> Result<Response, ApiError> {
    state
        .blocking(move |s| {
            let verified = match access::verify(&token, &s.keys, &s.settings.expect, s.now()) {
                // Signed with a key another instance of a shared store just installed.
                Err(Rejection::UnknownKey) if s.sync_keys_on_miss() => {
                    access::verify(&token, &s.keys, &s.settings.expect, s.now())
                }
                other => other,
            };
            let (claims, all) = verified.map_err(|r| {
                if dpop {
                    ApiError::invalid_dpop_token(r.description())
                } else {
                    ApiError::invalid_token(r.description())
                }
            })?;
            match (&claims.cnf, dpop) {
                (Some(cnf), true) => {
                    check_bound_request(s, &proof, &token, &cnf.jkt)?;
                }
                (Some(_), false) => {
                    tracing::warn!(reason = %"bound_token_as_bearer", "dpop_refused");
                    return Err(ApiError::invalid_dpop_token(
                        "the token is bound to a DPoP key: send it as Authorization: DPoP with a proof",
                    ));
                }
                (None, true) => {
                    return Err(ApiError::invalid_dpop_token(
                        "the token is not bound to a DPoP key",
                    ));
                }
                (None, false) => {}
            }
            match s
                .store
                .access_state(&claims.jti, &claims.sid)
                .map_err(|e| s.store_failed("access state", e))?
            {
                AccessState::Allowed => {
                    let mut response = Json(all).into_response();
                    no_store(&mut response);
                    Ok(response)
                }
                AccessState::Denylisted
                | AccessState::SessionRevoked
                | AccessState::SessionUnknown => {
                    Err(ApiError::invalid_token(Rejection::Revoked.description()))
                }
            }
        })
        .await
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Json(state.keys.jwks(state.now())).into_response();
    // Short, so a verifier that caches the set sees a rotation within a minute; one that
    // meets an unknown kid refetches anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
