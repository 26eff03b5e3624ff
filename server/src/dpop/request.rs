//! The request side: the one `DPoP` header of a request, the `htu` it must carry, and the
//! whole resource-server check of a request with a DPoP-bound access token.

use axum::http::HeaderMap;

use super::{verify_proof, Proof, ProofCheck, Refusal, DPOP_HEADER, MAX_PROOF_BYTES};

/// The resource-server check of one request carrying `Authorization: DPoP <access_token>`:
/// exactly one `DPoP` header, a proof that verifies for this method and URL with `ath` of
/// the token, made with the key of the token's `cnf.jkt`. Verify the access token itself
/// first (its signature gives `cnf.jkt`), and remember [`Proof::replay_key`] afterwards.
///
/// ```
/// use token_manager_server::dpop::{check_resource_request, Refusal};
/// # let headers = axum::http::HeaderMap::new();
/// # let (token, cnf_jkt, now) = ("t", "k", 0);
/// // htu as the client addressed this API: see `expected_htu`.
/// let htu = "https://api.example/orders";
/// match check_resource_request(&headers, "GET", htu, token, cnf_jkt, now, 60) {
///     Ok(proof) => { /* refuse if proof.replay_key() was seen; else remember it */ }
///     Err(r) => assert_eq!(r, Refusal::Missing), // 401, WWW-Authenticate: DPoP error=…
/// }
/// ```
pub fn check_resource_request(
    headers: &HeaderMap,
    method: &str,
    htu: &str,
    access_token: &str,
    cnf_jkt: &str,
    now: u64,
    iat_window: u64,
) -> Result<Proof, Refusal> {
    let proof = proof_header(headers)?.ok_or(Refusal::Missing)?;
    let proof = verify_proof(
        proof,
        &ProofCheck {
            method,
            htu,
            now,
            iat_window,
            access_token: Some(access_token),
        },
    )?;
    if proof.jkt != cnf_jkt {
        return Err(Refusal::ThumbprintMismatch);
    }
    Ok(proof)
}

/// The one `DPoP` header of a request: `Ok(None)` without one, refused when there are
/// several, or it is not visible ASCII, or too large.
pub fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut all = headers.get_all(DPOP_HEADER).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(Refusal::MultipleProofs);
    }
    if first.len() > MAX_PROOF_BYTES {
        return Err(Refusal::TooLarge);
    }
    first.to_str().map(Some).map_err(|_| Refusal::Malformed)
}

/// The `htu` a proof for this request must carry: `scheme://Host` and the path (query and
/// fragment are never part of it). `None` without a usable `Host` header. `scheme` is how
/// the clients reach the server (`--public-scheme`: the server cannot see a TLS proxy).
pub fn expected_htu(scheme: &str, headers: &HeaderMap, path: &str) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{host}{path}"))
}
