//! Access tokens: what they claim, how they are signed, and how `/api/me` checks them.
//!
//! Verification trusts nothing in the token header but `kid`: the key is looked up in the
//! ring, and the algorithm must be that key's own. So `alg: none`, `HS256` signed with the
//! public key, a header-embedded `jwk`/`jku`/`x5u`/`x5c` or an unknown `kid` never verify.
//! Before any of that, the token is decoded as strictly as the browser decodes it.

use std::collections::HashSet;

use jsonwebtoken::{decode, decode_header, encode, Header, Validation};
use serde::{Deserialize, Serialize};
use token_manager_core::dangerous::decode_unverified;
use token_manager_core::protocol::{ACCESS_TOKEN_TYP, MAX_BODY_BYTES};
use token_manager_core::DecodeError;

use crate::keys::{KeyRing, SigningKey};

/// The claims of every access token the server issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    /// The refresh family (session) the token was issued to; logout or a detected replay
    /// revokes the family and with it every access token of the session.
    pub(crate) sid: String,
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
    /// RFC 9449 §6: the token is bound to the DPoP key of this thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 7800, RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the key, base64url.
    pub(crate) jkt: String,
}

pub(crate) fn sign(key: &SigningKey, claims: &AccessClaims) -> Result<String, String> {
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(key.kid.clone());
    let token =
        encode(&header, claims, &key.encoding).map_err(|e| format!("signing failed: {e}"))?;
    key.record_exp(claims.exp);
    Ok(token)
}

/// Why a bearer token was refused. The description is safe to send and to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Missing,
    Malformed,
    WrongType,
    UnknownKey,
    WrongAlgorithm,
    BadSignature,
    BadClaims,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    Revoked,
}

impl Rejection {
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Missing => "no bearer token",
            Self::Malformed => "the bearer token is not a well-formed JWT",
            Self::WrongType => "the token is not an access token (typ must be at+jwt)",
            Self::UnknownKey => "the token's kid is not a key of this server",
            Self::WrongAlgorithm => "the token's alg does not match its key",
            Self::BadSignature => "the token's signature does not verify",
            Self::BadClaims => "the token's claims are missing or malformed",
            Self::WrongIssuer => "the token was issued by someone else",
            Self::WrongAudience => "the token is meant for another audience",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::Revoked => "the token has been revoked",
        }
    }
}

/// What a token must match besides its signature.
#[derive(Debug, Clone)]
pub(crate) struct Expectations {
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

/// Checks everything that needs no database: shape, `typ`, `kid`, algorithm, signature,
/// `iss`, `aud`, `exp`, `nbf`. Returns the typed claims and the full claim set.
pub(crate) fn verify(
    token: &str,
    keys: &KeyRing,
    expect: &Expectations,
    now: u64,
) -> Result<(AccessClaims, serde_json::Value), Rejection> {
    if token.is_empty() || token.len() > MAX_BODY_BYTES || token.split('.').count() != 3 {
        return Err(Rejection::Malformed);
    }
    // First the browser's strict decoding: canonical unpadded base64url, UTF-8, no member
    // named twice, typed registered claims. serde_json keeps the last of two `roles` where
    // another parser keeps the first, so a token that reads two ways is refused outright.
    decode_unverified(token).map_err(|e| match e {
        DecodeError::ClaimType { .. } => Rejection::BadClaims,
        _ => Rejection::Malformed,
    })?;
    // An unknown `alg` (including "none") fails here: jsonwebtoken has no such variant.
    let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(Rejection::WrongType);
    }
    // This server never puts these in its tokens; one that carries them was not made here,
    // and `crit` names extensions it would have to understand.
    if header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(Rejection::Malformed);
    }
    let kid = header.kid.as_deref().ok_or(Rejection::UnknownKey)?;
    let key = keys.find(kid, now).ok_or(Rejection::UnknownKey)?;
    if header.alg != key.alg.jwt() {
        return Err(Rejection::WrongAlgorithm);
    }

    let mut validation = Validation::new(key.alg.jwt());
    // Time is checked below against the injected clock; jsonwebtoken would read the OS clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    validation.required_spec_claims = ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .map(String::from)
        .collect::<HashSet<_>>();
    let data = decode::<serde_json::Value>(token, &key.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => Rejection::BadSignature,
            ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
            ErrorKind::InvalidAudience => Rejection::WrongAudience,
            ErrorKind::InvalidAlgorithm => Rejection::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::Json(_) => Rejection::BadClaims,
            _ => Rejection::Malformed,
        }
    })?;
    let claims: AccessClaims =
        serde_json::from_value(data.claims.clone()).map_err(|_| Rejection::BadClaims)?;
    if now >= claims.exp {
        return Err(Rejection::Expired);
    }
    if now < claims.nbf {
        return Err(Rejection::NotYetValid);
    }
    Ok((claims, data.claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlgorithm;

    const NOW: u64 = 1_700_000_000;

    fn ring() -> KeyRing {
        let stored = SigningKey::generate(SigningAlgorithm::Es256, NOW).unwrap();
        KeyRing::from_stored(&[stored], SigningAlgorithm::Es256)
            .unwrap()
            .unwrap()
    }

    fn expect() -> Expectations {
        Expectations {
            issuer: "http://issuer.test".into(),
            audience: "aud".into(),
        }
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "http://issuer.test".into(),
            sub: "demo".into(),
            aud: "aud".into(),
            exp: NOW + 60,
            nbf: NOW,
            iat: NOW,
            jti: "j".into(),
            sid: "s".into(),
            name: "Demo".into(),
            roles: vec![],
            cnf: None,
        }
    }

    /// Signs with the ring's own key but lets the test choose header and claims.
    fn token_with(ring: &KeyRing, typ: Option<&str>, claims: &serde_json::Value) -> String {
        let key = ring.current();
        let mut header = Header::new(key.alg.jwt());
        header.typ = typ.map(String::from);
        header.kid = Some(key.kid.clone());
        encode(&header, claims, &key.encoding).unwrap()
    }

    #[test]
    fn a_token_the_server_signed_verifies() {
        let ring = ring();
        let token = sign(&ring.current(), &claims()).unwrap();
        let (c, all) = verify(&token, &ring, &expect(), NOW).unwrap();
        assert_eq!(c.sub, "demo");
        assert_eq!(all["name"], "Demo");
    }

    #[test]
    fn typ_must_be_at_jwt() {
        let ring = ring();
        let c = serde_json::to_value(claims()).unwrap();
        for typ in [None, Some("JWT"), Some("jwt"), Some("dpop+jwt")] {
            assert_eq!(
                verify(&token_with(&ring, typ, &c), &ring, &expect(), NOW).unwrap_err(),
                Rejection::WrongType
            );
        }
        assert!(verify(
            &token_with(&ring, Some("application/at+jwt"), &c),
            &ring,
            &expect(),
            NOW
        )
        .is_ok());
    }

    #[test]
    fn issuer_audience_and_required_claims_are_checked() {
        let ring = ring();
        let mut c = serde_json::to_value(claims()).unwrap();
        c["iss"] = "http://elsewhere.test".into();
        let t = token_with(&ring, Some("at+jwt"), &c);
        assert_eq!(
            verify(&t, &ring, &expect(), NOW).unwrap_err(),
            Rejection::WrongIssuer
        );

        let mut c = serde_json::to_value(claims()).unwrap();
        c["aud"] = "another-api".into();
        let t = token_with(&ring, Some("at+jwt"), &c);
        assert_eq!(
            verify(&t, &ring, &expect(), NOW).unwrap_err(),
            Rejection::WrongAudience
        );

        for missing in ["exp", "nbf", "iss", "aud", "sub", "jti", "sid"] {
            let mut c = serde_json::to_value(claims()).unwrap();
            c.as_object_mut().unwrap().remove(missing);
            let t = token_with(&ring, Some("at+jwt"), &c);
            assert_eq!(
                verify(&t, &ring, &expect(), NOW).unwrap_err(),
                Rejection::BadClaims,
                "{missing}"
            );
        }
        let mut c = serde_json::to_value(claims()).unwrap();
        c["exp"] = "9999999999".into();
        let t = token_with(&ring, Some("at+jwt"), &c);
        assert_eq!(
            verify(&t, &ring, &expect(), NOW).unwrap_err(),
            Rejection::BadClaims
        );
    }

    #[test]
    fn expiry_and_not_before_use_the_callers_clock() {
        let ring = ring();
        let token = sign(&ring.current(), &claims()).unwrap();
        assert!(verify(&token, &ring, &expect(), NOW + 59).is_ok());
        assert_eq!(
            verify(&token, &ring, &expect(), NOW + 60).unwrap_err(),
            Rejection::Expired
        );
        assert_eq!(
            verify(&token, &ring, &expect(), NOW - 1).unwrap_err(),
            Rejection::NotYetValid
        );
    }
}
