//! The server's side of DPoP around the stateless checks: what a request carries
//! ([`DpopRequest`]), the nonce and the replay cache in the store ([`check_proof`]), and
//! the `DPoP-Nonce` header on every answer of a DPoP endpoint ([`nonce_header`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::{expected_htu, proof_header, verify_proof, Proof, ProofCheck, Refusal, NONCE_HEADER};
use crate::error::ApiError;
use crate::state::AppState;

/// The proof of a request and what it must match. Never rejects: whether a missing or
/// bad proof matters is the handler's decision. `Debug` hides the proof.
pub(crate) struct DpopRequest {
    proof: Result<Option<String>, Refusal>,
    method: String,
    htu: Option<String>,
}

impl std::fmt::Debug for DpopRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopRequest")
            .field("method", &self.method)
            .field("htu", &self.htu)
            .finish_non_exhaustive()
    }
}

impl DpopRequest {
    /// `true` when the request sent a `DPoP` header (valid or not).
    pub(crate) fn present(&self) -> bool {
        !matches!(self.proof, Ok(None))
    }
}

impl FromRequestParts<Arc<AppState>> for DpopRequest {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            proof: proof_header(&parts.headers).map(|p| p.map(str::to_owned)),
            method: parts.method.as_str().to_owned(),
            htu: expected_htu(
                &state.settings.dpop.public_scheme,
                &parts.headers,
                parts.uri.path(),
            ),
        })
    }
}

/// Where a proof is checked: the answer to a refusal differs (RFC 9449 §5 and §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// Login and refresh: 400 with the JSON error.
    Token,
    /// `/api/me`: 401 with a `WWW-Authenticate: DPoP` challenge.
    Resource,
}

/// Checks the request's proof, if it has one: [`verify_proof`], the key against the
/// token's `cnf.jkt` (on a resource: `access_token` is the token and its `jkt`), the nonce
/// (with `--dpop-nonce`), and last the replay cache, so only a proof that passed everything
/// else is remembered. `Ok(None)`: no proof was sent. Blocking (the store). A refusal is
/// logged with its `reason=`, never with the proof.
pub(crate) fn check_proof(
    state: &AppState,
    request: &DpopRequest,
    access_token: Option<(&str, &str)>,
    endpoint: Endpoint,
) -> Result<Option<Proof>, ApiError> {
    let refuse = |r: Refusal| {
        tracing::warn!(reason = %r.as_str(), endpoint = ?endpoint, "dpop_refused");
        ApiError::dpop(r, endpoint == Endpoint::Resource)
    };
    let proof = match &request.proof {
        Ok(None) => return Ok(None),
        Ok(Some(p)) => p,
        Err(r) => return Err(refuse(*r)),
    };
    let htu = request
        .htu
        .as_deref()
        .ok_or_else(|| refuse(Refusal::WrongHtu))?;
    let now = state.now();
    let window = state.settings.dpop.iat_window;
    let proof = verify_proof(
        proof,
        &ProofCheck {
            method: &request.method,
            htu,
            now,
            iat_window: window,
            access_token: access_token.map(|(token, _)| token),
        },
    )
    .map_err(refuse)?;
    if access_token.is_some_and(|(_, bound)| proof.jkt != bound) {
        return Err(refuse(Refusal::ThumbprintMismatch));
    }
    if let Some(nonces) = &state.dpop_nonces {
        match proof.nonce.as_deref() {
            None => return Err(refuse(Refusal::MissingNonce)),
            Some(n) if !nonces.accepts(n, now) => return Err(refuse(Refusal::StaleNonce)),
            Some(_) => {}
        }
    }
    let first = state
        .store
        .remember_proof(&proof.replay_key(), proof.replay_expires_at(window), now)
        .map_err(|e| state.store_failed("dpop replay cache", e))?;
    if !first {
        return Err(refuse(Refusal::ReplayedJti));
    }
    Ok(Some(proof))
}

/// The resource check of a bound token: a proof is required and its key must be the
/// token's. Blocking.
pub(crate) fn check_bound_request(
    state: &AppState,
    request: &DpopRequest,
    access_token: &str,
    cnf_jkt: &str,
) -> Result<Proof, ApiError> {
    let refuse = |r: Refusal| {
        tracing::warn!(reason = %r.as_str(), endpoint = ?Endpoint::Resource, "dpop_refused");
        ApiError::dpop(r, true)
    };
    check_proof(
        state,
        request,
        Some((access_token, cnf_jkt)),
        Endpoint::Resource,
    )?
    .ok_or_else(|| refuse(Refusal::Missing))
}

/// Adds the current `DPoP-Nonce` to every answer of a DPoP endpoint, with `--dpop-nonce`.
pub(crate) async fn nonce_header(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(nonces) = &state.dpop_nonces {
        if let Ok(v) = HeaderValue::from_str(&nonces.current(state.now())) {
            response.headers_mut().insert(NONCE_HEADER, v);
        }
    }
    response
}
