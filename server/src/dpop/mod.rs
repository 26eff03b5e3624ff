//! DPoP (RFC 9449): proofs of possession that bind an access token to a key the client
//! holds, so a stolen token is worthless without the key.
//!
//! This module is the stateless part, public so that a separate API can check the proofs of
//! the tokens this server issues: [`verify_proof`] checks one proof (shape, `typ`, `alg`,
//! `jwk`, signature, `htm`, `htu`, `iat`, `ath`), [`check_resource_request`] is the whole
//! resource-server check of one request (the `DPoP` header, `ath` of the token, the key
//! against the token's `cnf.jkt`). What needs state is the caller's: remember
//! [`Proof::replay_key`] until [`Proof::replay_expires_at`] and refuse a key seen before
//! (the server keeps it in its store, so a replay is refused across instances), and nonces
//! (`nonce.rs`, private to the server).
//!
//! Every refusal is a [`Refusal`]: a stable word for logs ([`Refusal::as_str`]) and a fixed
//! description that is safe to send ([`Refusal::description`]). No input panics.

pub(crate) mod check;
pub(crate) mod nonce;

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "DPoP";
/// The response header carrying the nonce the next proof must contain.
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// `token_type` of a token response whose access token is bound to the proof's key.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";
/// `typ` of every proof.
pub const PROOF_TYP: &str = "dpop+jwt";
/// The `algs` of the `WWW-Authenticate: DPoP` challenge: what [`verify_proof`] accepts.
pub const ALGS: &str = "ES256 EdDSA";
/// Longest proof accepted, in bytes. An ES256 proof with `ath` and a nonce is about 700.
pub const MAX_PROOF_BYTES: usize = 4096;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;
/// `error` of an answer to an invalid proof.
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// `error` of an answer to a proof without the current nonce (the `DPoP-Nonce` header
/// of the answer has it).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No `DPoP` header where one is required.
    Missing,
    /// More than one `DPoP` header.
    MultipleProofs,
    /// Longer than [`MAX_PROOF_BYTES`].
    TooLarge,
    /// Not a compact JWS of strict base64url and JSON with the required members.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    BadTyp,
    /// `alg: none`.
    AlgNone,
    /// An HMAC `alg` (`HS256`…): a symmetric key cannot be public.
    AlgHmac,
    /// Any other `alg` than ES256 and EdDSA.
    UnsupportedAlg,
    /// `jwk` is missing, not a key of the `alg`, or not a valid public key.
    BadJwk,
    /// `jwk` carries private key members.
    PrivateKey,
    /// The signature does not verify with the embedded key.
    BadSignature,
    /// `htm` is not the request's method.
    WrongHtm,
    /// `htu` is not the request's URL.
    WrongHtu,
    /// `iat` is older than the window.
    StaleIat,
    /// `iat` is further ahead than the window.
    FutureIat,
    /// A resource request's proof has no `ath`.
    MissingAth,
    /// `ath` is not the hash of the presented access token.
    WrongAth,
    /// The proof's key is not the one the access token is bound to.
    ThumbprintMismatch,
    /// This key and `jti` were seen within the window.
    ReplayedJti,
    /// Nonces are required and the proof has none.
    MissingNonce,
    /// The proof's nonce is not a current one.
    StaleNonce,
}

impl Refusal {
    /// The stable word logged as `reason=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::MultipleProofs => "multiple_proofs",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::BadTyp => "bad_typ",
            Self::AlgNone => "alg_none",
            Self::AlgHmac => "alg_hmac",
            Self::UnsupportedAlg => "unsupported_alg",
            Self::BadJwk => "bad_jwk",
            Self::PrivateKey => "private_key",
            Self::BadSignature => "bad_signature",
            Self::WrongHtm => "wrong_htm",
            Self::WrongHtu => "wrong_htu",
            Self::StaleIat => "stale_iat",
            Self::FutureIat => "future_iat",
            Self::MissingAth => "missing_ath",
            Self::WrongAth => "wrong_ath",
            Self::ThumbprintMismatch => "thumbprint_mismatch",
            Self::ReplayedJti => "replayed_jti",
            Self::MissingNonce => "missing_nonce",
            Self::StaleNonce => "stale_nonce",
        }
    }

    /// The fixed `error_description`, one per reason.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "a DPoP proof is required",
            Self::MultipleProofs => "more than one DPoP header",
            Self::TooLarge => "the DPoP proof is too large",
            Self::Malformed => "the DPoP proof is not a well-formed JWS",
            Self::BadTyp => "the DPoP proof's typ must be dpop+jwt",
            Self::AlgNone => "the DPoP proof is unsigned (alg none)",
            Self::AlgHmac => "the DPoP proof uses a symmetric alg",
            Self::UnsupportedAlg => "the DPoP proof's alg must be ES256 or EdDSA",
            Self::BadJwk => "the DPoP proof's jwk is not a public key of its alg",
            Self::PrivateKey => "the DPoP proof's jwk contains private key members",
            Self::BadSignature => "the DPoP proof's signature does not verify",
            Self::WrongHtm => "the DPoP proof's htm is not the request method",
            Self::WrongHtu => "the DPoP proof's htu is not the request URL",
            Self::StaleIat => "the DPoP proof's iat is too old",
            Self::FutureIat => "the DPoP proof's iat is in the future",
            Self::MissingAth => "the DPoP proof has no ath for the access token",
            Self::WrongAth => "the DPoP proof's ath does not match the access token",
            Self::ThumbprintMismatch => "the DPoP proof's key is not the key the token is bound to",
            Self::ReplayedJti => "the DPoP proof was already used (jti replayed)",
            Self::MissingNonce => "the DPoP proof must contain the server's nonce",
            Self::StaleNonce => "the DPoP proof's nonce is not current",
        }
    }

    /// The `error` code of the answer: [`USE_DPOP_NONCE`] for the nonce refusals (the
    /// client retries with the nonce of the answer), [`INVALID_DPOP_PROOF`] otherwise.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::MissingNonce | Self::StaleNonce => USE_DPOP_NONCE,
            _ => INVALID_DPOP_PROOF,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Refusal {}

/// What a proof must match besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request method (`htm`), e.g. `POST`.
    pub method: &'a str,
    /// The request URL without query and fragment (`htu`); see [`expected_htu`].
    pub htu: &'a str,
    /// The verifier's clock, Unix seconds.
    pub now: u64,
    /// Seconds `iat` may be off the clock, each side (the server's `--dpop-iat-window`,
    /// default 60).
    pub iat_window: u64,
    /// The access token presented with the proof: `ath` is then required and checked.
    /// `None` on the token endpoints.
    pub access_token: Option<&'a str>,
}

/// A proof that verified.
#[derive(Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the `cnf.jkt` of a token
    /// bound to it.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: u64,
    /// The proof's `nonce`, if any.
    pub nonce: Option<String>,
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("jkt", &self.jkt)
            .field("iat", &self.iat)
            .finish_non_exhaustive()
    }
}

impl Proof {
    /// What a replay cache remembers: hex SHA-256 of the thumbprint and the `jti`, so one
    /// client cannot block another's `jti` and no proof value is stored.
    pub fn replay_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.jkt.as_bytes());
        h.update(b".");
        h.update(self.jti.as_bytes());
        hex(&h.finalize())
    }

    /// Until when (Unix seconds, exclusive) the replay cache must remember this proof:
    /// after it, the proof's `iat` is out of the window anyway.
    pub fn replay_expires_at(&self, iat_window: u64) -> u64 {
        self.iat.saturating_add(iat_window).saturating_add(1)
    }
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Jwk>,
}

/// The members of a JWK this module reads. serde refuses a member named twice, so a key
/// cannot read two ways; `Option<IgnoredAny>` notes a private member without keeping it.
#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Verifies one proof against `check`. Replay and nonce are the caller's (module docs).
pub fn verify_proof(proof: &str, check: &ProofCheck<'_>) -> Result<Proof, Refusal> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(Refusal::TooLarge);
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| Refusal::Malformed);
    let header_json = decode(h64)?;
    let claims_json = decode(p64)?;
    let signature = decode(s64)?;
    let header: ProofHeader =
        serde_json::from_slice(&header_json).map_err(|_| Refusal::Malformed)?;

    if header.typ.as_deref() != Some(PROOF_TYP) {
        return Err(Refusal::BadTyp);
    }
    let alg = match header.alg.as_deref() {
        None => return Err(Refusal::Malformed),
        Some(a) if a.eq_ignore_ascii_case("none") => return Err(Refusal::AlgNone),
        Some(a) if a.starts_with("HS") => return Err(Refusal::AlgHmac),
        Some("ES256") => Alg::Es256,
        Some("EdDSA") => Alg::EdDsa,
        Some(_) => return Err(Refusal::UnsupportedAlg),
    };
    let jwk = header.jwk.ok_or(Refusal::BadJwk)?;
    if jwk.d.is_some()
        || jwk.p.is_some()
        || jwk.q.is_some()
        || jwk.dp.is_some()
        || jwk.dq.is_some()
        || jwk.qi.is_some()
        || jwk.k.is_some()
    {
        return Err(Refusal::PrivateKey);
    }
    let signing_input = &proof.as_bytes()[..h64.len() + 1 + p64.len()];
    let jkt = match alg {
        Alg::Es256 => verify_es256(&jwk, signing_input, &signature)?,
        Alg::EdDsa => verify_eddsa(&jwk, signing_input, &signature)?,
    };

    let claims: ProofClaims =
        serde_json::from_slice(&claims_json).map_err(|_| Refusal::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
        return Err(Refusal::Malformed);
    }
    if claims.htm != check.method {
        return Err(Refusal::WrongHtm);
    }
    match (normalize_htu(&claims.htu), normalize_htu(check.htu)) {
        (Some(got), Some(want)) if got == want => {}
        _ => return Err(Refusal::WrongHtu),
    }
    if claims.iat.saturating_add(check.iat_window) < check.now {
        return Err(Refusal::StaleIat);
    }
    if claims.iat > check.now.saturating_add(check.iat_window) {
        return Err(Refusal::FutureIat);
    }
    if let Some(token) = check.access_token {
        let Some(ath) = claims.ath.as_deref() else {
            return Err(Refusal::MissingAth);
        };
        if ath != access_token_hash(token) {
            return Err(Refusal::WrongAth);
        }
    }
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

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

/// Base64url SHA-256 of the access token: the `ath` of a proof sent with it.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// RFC 7638 SHA-256 thumbprint (base64url) of a public JWK: the required members of its
/// `kty` (EC: crv, kty, x, y; OKP: crv, kty, x; RSA: e, kty, n), in that order, as JSON
/// without whitespace. `None` for another `kty` or a missing or non-string member.
pub fn jwk_thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let member = |name: &str| jwk.get(name)?.as_str();
    let names: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut members = Vec::with_capacity(names.len());
    for name in names {
        members.push((*name, member(name)?));
    }
    Some(thumbprint(&members))
}

fn thumbprint(members: &[(&str, &str)]) -> String {
    let mut json = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        // Serializing a &str cannot fail.
        json.push_str(&serde_json::to_string(name).unwrap_or_default());
        json.push(':');
        json.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    json.push('}');
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

enum Alg {
    Es256,
    EdDsa,
}

/// A 32-byte base64url coordinate of a key.
fn coordinate(value: Option<&str>) -> Result<[u8; 32], Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(value.ok_or(Refusal::BadJwk)?)
        .map_err(|_| Refusal::BadJwk)?;
    bytes.try_into().map_err(|_| Refusal::BadJwk)
}

fn verify_es256(jwk: &Jwk, input: &[u8], signature: &[u8]) -> Result<String, Refusal> {
    use p256::ecdsa::signature::Verifier as _;
    if jwk.kty.as_deref() != Some("EC") || jwk.crv.as_deref() != Some("P-256") {
        return Err(Refusal::BadJwk);
    }
    let (x, y) = (coordinate(jwk.x.as_deref())?, coordinate(jwk.y.as_deref())?);
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|_| Refusal::BadJwk)?;
    // JWS ES256 is r||s, 64 bytes, never DER.
    let signature =
        p256::ecdsa::Signature::from_slice(signature).map_err(|_| Refusal::BadSignature)?;
    key.verify(input, &signature)
        .map_err(|_| Refusal::BadSignature)?;
    Ok(thumbprint(&[
        ("crv", "P-256"),
        ("kty", "EC"),
        ("x", jwk.x.as_deref().unwrap_or_default()),
        ("y", jwk.y.as_deref().unwrap_or_default()),
    ]))
}

fn verify_eddsa(jwk: &Jwk, input: &[u8], signature: &[u8]) -> Result<String, Refusal> {
    if jwk.kty.as_deref() != Some("OKP") || jwk.crv.as_deref() != Some("Ed25519") {
        return Err(Refusal::BadJwk);
    }
    let x = coordinate(jwk.x.as_deref())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| Refusal::BadJwk)?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| Refusal::BadSignature)?;
    key.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| Refusal::BadSignature)?;
    Ok(thumbprint(&[
        ("crv", "Ed25519"),
        ("kty", "OKP"),
        ("x", jwk.x.as_deref().unwrap_or_default()),
    ]))
}

/// An `http(s)` URL without query and fragment, scheme and host lowercased, the default
/// port dropped and an empty path made `/` (RFC 9449 §4.3, RFC 3986 §6.2.2–6.2.3).
/// `None` for anything else, including user info.
fn normalize_htu(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}{path}"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests;
