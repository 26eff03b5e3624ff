//! One proof: its parts decoded strictly, the signature checked against the key it
//! carries (ES256 or EdDSA), then `htm`, `htu`, `iat` and `ath` against what the request
//! must match.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::hashes::{access_token_hash, thumbprint};
use super::{Refusal, MAX_JTI_BYTES, MAX_PROOF_BYTES, PROOF_TYP};

/// What a proof must match besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request method (`htm`), e.g. `POST`.
    pub method: &'a str,
    /// The request URL without query and fragment (`htu`); see [`expected_htu`](super::expected_htu).
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
pub(super) fn normalize_htu(url: &str) -> Option<String> {
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
