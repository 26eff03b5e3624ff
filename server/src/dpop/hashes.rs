//! The two SHA-256 hashes a binding rests on: the RFC 7638 thumbprint of a key (`jkt`,
//! what a bound token's `cnf` names) and the hash of an access token (`ath`, what a proof
//! sent with it carries).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

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

pub(super) fn thumbprint(members: &[(&str, &str)]) -> String {
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
