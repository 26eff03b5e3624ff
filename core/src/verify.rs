//! The verification policy: everything that must hold for a token to be trusted, except the
//! signature arithmetic itself (which the browser delegates to WebCrypto).
//!
//! Pure and natively tested. The steps, in order: [`check_header`] before any key is looked
//! up (the algorithm is chosen by the application, never by the token; `none`, HMAC, `crit`
//! extensions and header-supplied keys are refused), [`select_key`] from the issuer's JWKS (a
//! key is only ever used with its own type, curve and algorithm), [`check_signature_shape`]
//! before the signature reaches the crypto (raw ECDSA `R‖S` of the right length with
//! `0 < r, s < n`, which also stops CVE-2022-21449 "psychic signatures"), and after the
//! signature verified, [`check_claims`] (`exp`, `nbf`, `iat`, `iss`, `aud` with leeway).

use crate::message::{display_as_message, Message};
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use crate::claims::Claims;
use crate::code::ErrorCode;
use crate::error::{DecodeError, Part};
use crate::header::Header;
use crate::json::{self, members, Field};
use crate::time::Timestamp;

/// Why a token was not trusted. Each kind has a stable [`VerifyError::code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token did not decode.
    Decode(DecodeError),
    /// The policy itself is unusable (no algorithm, or an HMAC algorithm).
    InvalidPolicy(&'static str),
    /// `alg` is not in the application's allowlist.
    AlgorithmNotAllowed,
    /// The header carries or points at a key (`jwk`, `jku`, `x5u`, `x5c`): never trusted.
    UntrustedKeyParameter(&'static str),
    /// The header lists `crit` extensions; none are supported.
    UnsupportedCritical,
    /// `typ` differs from the one required.
    WrongType,
    /// No key of the issuer's JWKS has this `kid` (or, without `kid`, no single key fits).
    UnknownKid,
    /// The key with this `kid` is of another type, curve, algorithm or use.
    KeyMismatch,
    /// Two keys of the key set have this `kid` and both fit the algorithm: which one is meant
    /// cannot be told, so neither is used.
    AmbiguousKid,
    /// The key is weaker than RFC 7518 allows: an RSA modulus below 2048 bits (§3.3), or an RSA
    /// public exponent below 3.
    WeakKey(&'static str),
    /// The key is not a valid public key for its type: a coordinate of the wrong length, a point
    /// not on its curve (WebCrypto refuses to import it), an even or oversized RSA exponent.
    InvalidKey(&'static str),
    /// The signature is empty, malformed or does not verify.
    BadSignature,
    /// A required claim is missing.
    MissingClaim(&'static str),
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` differs from the expected issuer.
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    WrongAudience,
    /// The JWKS document is not a valid key set.
    BadJwks {
        /// Index of the offending key in `keys`, when one key is the problem.
        key: Option<usize>,
        /// What is wrong (names members, never their values).
        problem: &'static str,
    },
    /// The issuer's key set could not be fetched (and no key was known yet).
    KeysUnavailable,
}

impl VerifyError {
    /// The stable code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            VerifyError::Decode(e) => e.error_code(),
            VerifyError::InvalidPolicy(_) => ErrorCode::InvalidOption,
            VerifyError::AlgorithmNotAllowed => ErrorCode::AlgNotAllowed,
            VerifyError::UntrustedKeyParameter(_) => ErrorCode::UntrustedKeyParam,
            VerifyError::UnsupportedCritical => ErrorCode::CritUnsupported,
            VerifyError::WrongType => ErrorCode::WrongTyp,
            VerifyError::UnknownKid => ErrorCode::UnknownKid,
            VerifyError::KeyMismatch => ErrorCode::KeyMismatch,
            VerifyError::AmbiguousKid => ErrorCode::AmbiguousKid,
            VerifyError::WeakKey(_) => ErrorCode::WeakKey,
            VerifyError::InvalidKey(_) => ErrorCode::InvalidKey,
            VerifyError::BadSignature => ErrorCode::BadSignature,
            VerifyError::MissingClaim(_) => ErrorCode::MissingClaim,
            VerifyError::Expired => ErrorCode::TokenExpired,
            VerifyError::NotYetValid => ErrorCode::TokenNotYetValid,
            VerifyError::WrongIssuer => ErrorCode::WrongIssuer,
            VerifyError::WrongAudience => ErrorCode::WrongAudience,
            VerifyError::BadJwks { .. } => ErrorCode::BadJwks,
            VerifyError::KeysUnavailable => ErrorCode::JwksUnavailable,
        }
    }

    /// The code's string, e.g. `"bad_signature"`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

impl Message for VerifyError {
    /// In words with the `verify-messages` feature (on by default); without it, which only
    /// the browser package's default entry does (it has no verifier, so never makes a
    /// `VerifyError`), the code in a sentence, and none of these strings linked.
    #[cfg(not(feature = "verify-messages"))]
    fn write_message(&self, out: &mut String) {
        if let VerifyError::Decode(e) = self {
            return e.write_message(out);
        }
        out.push_str("the token failed verification (");
        out.push_str(self.code());
        out.push(')');
    }

    #[cfg(feature = "verify-messages")]
    fn write_message(&self, out: &mut String) {
        let text = match self {
            VerifyError::Decode(e) => return e.write_message(out),
            VerifyError::InvalidPolicy(why) => why,
            VerifyError::AlgorithmNotAllowed => "the token's algorithm is not in the allowlist",
            VerifyError::UntrustedKeyParameter(p) => {
                out.push_str("the token header carries its own key (`");
                out.push_str(p);
                "`), which is never trusted"
            }
            VerifyError::UnsupportedCritical => {
                "the token header lists critical extensions (`crit`) that are not supported"
            }
            VerifyError::WrongType => "the token's `typ` is not the one required",
            VerifyError::UnknownKid => "no key of the issuer's key set matches the token's `kid`",
            VerifyError::KeyMismatch => "the key with this `kid` is not for this algorithm",
            VerifyError::AmbiguousKid => {
                "two keys of the key set have this `kid` and fit this algorithm"
            }
            VerifyError::WeakKey(why) => {
                out.push_str("the key is too weak: ");
                why
            }
            VerifyError::InvalidKey(why) => {
                out.push_str("the key is not valid: ");
                why
            }
            VerifyError::BadSignature => "the signature does not verify",
            VerifyError::MissingClaim(c) => {
                out.push_str("the token has no `");
                out.push_str(c);
                "` claim"
            }
            VerifyError::Expired => "the token has expired",
            VerifyError::NotYetValid => "the token is not valid yet",
            VerifyError::WrongIssuer => "the token was issued by another issuer",
            VerifyError::WrongAudience => "the token is meant for another audience",
            VerifyError::BadJwks { key, problem } => {
                out.push_str("the key set is not a valid JWKS: ");
                if let Some(i) = key {
                    out.push_str("key ");
                    crate::message::push_decimal(out, *i as u64);
                    out.push_str(": ");
                }
                problem
            }
            VerifyError::KeysUnavailable => "the issuer's key set could not be fetched",
        };
        out.push_str(text);
    }
}

display_as_message!(VerifyError);

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for VerifyError {
    fn from(e: DecodeError) -> Self {
        VerifyError::Decode(e)
    }
}

/// What a trusted token must satisfy. The algorithm allowlist is the application's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    algorithms: Vec<Algorithm>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required member of `aud`, if any.
    pub audience: Option<String>,
    /// Required `typ` (compared case-insensitively, with or without `application/`), if any.
    pub typ: Option<String>,
    /// Clock tolerance for `exp`, `nbf` and `iat`. Defaults to 60 s.
    pub leeway: Duration,
}

impl Policy {
    /// A policy accepting `algorithms`. Refuses an empty list and any HMAC algorithm: a
    /// browser cannot keep a shared secret, and an HMAC allowlist is what lets an attacker use
    /// a public RSA key as the "secret".
    pub fn new(algorithms: Vec<Algorithm>) -> Result<Self, VerifyError> {
        if algorithms.is_empty() {
            return Err(VerifyError::InvalidPolicy(
                "at least one algorithm must be allowed",
            ));
        }
        if algorithms
            .iter()
            .any(|a| a.family() == AlgorithmFamily::Hmac)
        {
            return Err(VerifyError::InvalidPolicy(
                "HMAC algorithms (HS256/384/512) cannot be verified by a public client",
            ));
        }
        Ok(Self {
            algorithms,
            issuer: None,
            audience: None,
            typ: None,
            leeway: Duration::from_secs(60),
        })
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
}

fn typ_matches(actual: &str, expected: &str) -> bool {
    let strip = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(actual) == strip(expected)
}

/// Step 1, before any key is looked up. Takes a decoded token, a decoded JWS or a header.
pub fn check_header(token: &impl AsRef<Header>, policy: &Policy) -> Result<(), VerifyError> {
    let header = token.as_ref();
    if !policy.algorithms.contains(&header.alg) {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    if let Some(p) = header.key_params.first() {
        return Err(VerifyError::UntrustedKeyParameter(p));
    }
    if header.crit.is_some() {
        return Err(VerifyError::UnsupportedCritical);
    }
    if let Some(expected) = &policy.typ {
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| typ_matches(t, expected))
        {
            return Err(VerifyError::WrongType);
        }
    }
    Ok(())
}

/// One key of a JWKS, as far as the policy needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    /// `kty`: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// `kid`, if any.
    pub kid: Option<String>,
    /// `alg`, if the key is pinned to one.
    pub alg: Option<String>,
    /// `crv` for EC and OKP keys.
    pub crv: Option<String>,
    /// `use`, if given (only `sig` keys are used).
    pub use_: Option<String>,
    /// `key_ops`, if given (must include `verify`).
    pub key_ops: Option<Vec<String>>,
    /// Only the public key material (`n`, `e` / `crv`, `x`, `y`), as JSON for
    /// `crypto.subtle.importKey("jwk", …)`. Private members are never copied.
    pub public_json: String,
    /// Why the key must not be used, if it must not (RFC 7517 §5: keys with values out of the
    /// supported ranges are ignored). Found when the set is parsed; reported when it is selected.
    pub defect: Option<KeyDefect>,
}

/// What makes a key of a JWKS unusable although its set is well-formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDefect {
    /// Below what RFC 7518 allows (`weak_key`).
    Weak(&'static str),
    /// Not a valid public key of its type (`invalid_key`).
    Invalid(&'static str),
}

impl From<KeyDefect> for VerifyError {
    fn from(d: KeyDefect) -> Self {
        match d {
            KeyDefect::Weak(why) => VerifyError::WeakKey(why),
            KeyDefect::Invalid(why) => VerifyError::InvalidKey(why),
        }
    }
}

/// A base64urlUInt (RFC 7518 §2) as its big-endian bytes without leading zeros.
fn unsigned(text: &str) -> Option<Vec<u8>> {
    let bytes = crate::json::base64url(text.as_bytes(), Part::Payload).ok()?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[first..].to_vec())
}

/// RFC 7518 §3.3 and §6.3.1: a modulus of at least 2048 bits, and a public exponent that is
/// odd, at least 3 and at most 32 bits (what WebCrypto implementations accept).
fn rsa_defect(n: &str, e: &str) -> Option<KeyDefect> {
    let Some(n) = unsigned(n) else {
        return Some(KeyDefect::Invalid("`n` is not base64url"));
    };
    let bits = n
        .first()
        .map_or(0, |b| 8 * n.len() - b.leading_zeros() as usize);
    if bits < 2048 {
        return Some(KeyDefect::Weak(
            "an RSA modulus below 2048 bits (RFC 7518 §3.3)",
        ));
    }
    let Some(e) = unsigned(e) else {
        return Some(KeyDefect::Invalid("`e` is not base64url"));
    };
    if e.len() > 4 {
        return Some(KeyDefect::Invalid("an RSA public exponent above 2^32"));
    }
    let e = e.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    if e < 3 {
        return Some(KeyDefect::Weak("an RSA public exponent below 3"));
    }
    if e % 2 == 0 {
        return Some(KeyDefect::Invalid("an even RSA public exponent"));
    }
    None
}

/// RFC 7518 §6.2.1.2 and RFC 8037 §2: coordinates are exactly the curve's field size. Whether
/// the point is on the curve is WebCrypto's import check.
fn curve_defect(crv: &str, coordinates: &[&str]) -> Option<KeyDefect> {
    let len = match crv {
        "P-256" | "Ed25519" => 32,
        "P-384" => 48,
        "P-521" => 66,
        _ => return None, // no supported algorithm uses it: never selected
    };
    for c in coordinates {
        match crate::json::base64url(c.as_bytes(), Part::Payload) {
            Ok(bytes) if bytes.len() == len => {}
            Ok(_) => {
                return Some(KeyDefect::Invalid(
                    "a coordinate of the wrong length for its curve",
                ))
            }
            Err(_) => return Some(KeyDefect::Invalid("a coordinate that is not base64url")),
        }
    }
    None
}

/// Parses a JWKS document (`{"keys": [...]}`), keeping the keys this library can use and
/// skipping others (unknown `kty`, symmetric keys). At most 64 KiB. A key whose values are out
/// of range (a short RSA modulus, a coordinate of the wrong length) is kept with its
/// [`Jwk::defect`], so selecting it says why it cannot be used.
pub fn parse_jwks(text: &[u8]) -> Result<Vec<Jwk>, VerifyError> {
    let bad = |key: Option<usize>, problem| VerifyError::BadJwks { key, problem };
    if text.len() > 64 * 1024 {
        return Err(bad(None, "larger than 64 KiB"));
    }
    let mut doc = members(text, 8, Part::Claims).map_err(|_| bad(None, "not a JSON object"))?;
    let keys = match doc.take("keys") {
        Some(Field::Array(items)) => json::items(items),
        Some(Field::Strings(names)) if names.is_empty() => Vec::new(),
        // An array of strings: its first key is not an object.
        Some(Field::Strings(_)) => return Err(bad(Some(0), "not a JSON object")),
        _ => return Err(bad(None, "`keys` is missing or not an array")),
    };
    let mut out = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        // The document was checked whole, with its depth cap: `members` only splits the key.
        let Ok(key) = members(key, 8, Part::Claims) else {
            return Err(bad(Some(i), "not a JSON object"));
        };
        let text = |name: &'static str| -> Result<Option<String>, VerifyError> {
            match key.get(name) {
                None => Ok(None),
                Some(Field::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(Some(i), "a member that must be a string is not")),
            }
        };
        let Some(kty) = text("kty")? else {
            return Err(bad(Some(i), "`kty` is missing"));
        };
        let public: &[&str] = match kty.as_str() {
            "RSA" => &["kty", "n", "e"],
            "EC" => &["kty", "crv", "x", "y"],
            "OKP" => &["kty", "crv", "x"],
            _ => continue,
        };
        let mut material = Vec::new();
        for name in public {
            let value = text(name)?.ok_or(bad(
                Some(i),
                "a public key member (`n`, `e`, `crv`, `x`, `y`) is missing",
            ))?;
            material.push((*name, value));
        }
        let member = |name: &str| {
            material
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        let defect = match kty.as_str() {
            "RSA" => rsa_defect(member("n"), member("e")),
            "EC" => curve_defect(member("crv"), &[member("x"), member("y")]),
            _ => curve_defect(member("crv"), &[member("x")]),
        };
        // `{"kty":…,"n":…,"e":…}`: the public members only, in that order.
        let mut public_json = String::new();
        for (k, (name, value)) in material.iter().enumerate() {
            public_json.push(if k == 0 { '{' } else { ',' });
            json::write_string(name, &mut public_json);
            public_json.push(':');
            json::write_string(value, &mut public_json);
        }
        public_json.push('}');
        let key_ops = match key.get("key_ops") {
            None => None,
            Some(Field::Strings(ops)) => Some(ops),
            Some(_) => return Err(bad(Some(i), "`key_ops` is not an array of strings")),
        };
        out.push(Jwk {
            kid: text("kid")?,
            alg: text("alg")?,
            crv: text("crv")?,
            use_: text("use")?,
            key_ops,
            kty,
            public_json,
            defect,
        });
    }
    Ok(out)
}

/// The JOSE name of an algorithm.
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// Whether `key` may verify `alg`: its type and curve are the algorithm's, its own `alg` (if
/// pinned) is this one, its `use`/`key_ops` (if given) allow verification, and it has no
/// [`KeyDefect`].
pub fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    kind_fits(key, alg) && key.defect.is_none()
}

/// [`key_fits`] without the defect: the key is meant for `alg`, usable or not.
fn kind_fits(key: &Jwk, alg: Algorithm) -> bool {
    let kind = match alg.family() {
        AlgorithmFamily::Rsa => key.kty == "RSA",
        AlgorithmFamily::Ec => {
            let curve = if alg == Algorithm::ES256 {
                "P-256"
            } else {
                "P-384"
            };
            key.kty == "EC" && key.crv.as_deref() == Some(curve)
        }
        AlgorithmFamily::Ed => key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"),
        AlgorithmFamily::Hmac => false,
    };
    kind && key.alg.as_deref().is_none_or(|a| a == algorithm_name(alg))
        && key.use_.as_deref().is_none_or(|u| u == "sig")
        && key
            .key_ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|o| o == "verify"))
}

/// Step 2: the key that may verify the token. With a `kid`, among the keys with exactly that
/// `kid`; without one, among all keys. Of those, the keys that fit the algorithm
/// ([`key_fits`]) count, so a `kid` shared by an RSA and an EC key still selects one:
///
/// - exactly one: that key, whatever the order of the set;
/// - several: `ambiguous_kid` with a `kid` (which one signed cannot be told, and trying each
///   would let one `kid` cost many signature checks), `unknown_kid` without;
/// - none: the [`KeyDefect`] of the first key meant for the algorithm (`weak_key`,
///   `invalid_key`), else `key_mismatch` with a `kid` and `unknown_kid` without.
pub fn select_key<'a>(
    keys: &'a [Jwk],
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'a Jwk, VerifyError> {
    let named = |k: &&Jwk| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid));
    if kid.is_some_and(|kid| kid.is_empty() || !keys.iter().any(|k| named(&k))) {
        return Err(VerifyError::UnknownKid);
    }
    let mut usable = keys.iter().filter(named).filter(|k| key_fits(k, alg));
    match usable.next() {
        Some(first) if usable.next().is_none() => Ok(first),
        Some(_) if kid.is_some() => Err(VerifyError::AmbiguousKid),
        Some(_) => Err(VerifyError::UnknownKid),
        None => match keys.iter().filter(named).find(|k| kind_fits(k, alg)) {
            Some(Jwk {
                defect: Some(d), ..
            }) => Err((*d).into()),
            _ if kid.is_some() => Err(VerifyError::KeyMismatch),
            _ => Err(VerifyError::UnknownKid),
        },
    }
}

/// Order of the P-256 group (big-endian).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Order of the P-384 group (big-endian).
const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// `0 < x < n` for big-endian numbers of equal length.
fn in_scalar_range(x: &[u8], n: &[u8]) -> bool {
    x.iter().any(|b| *b != 0) && x < n
}

/// Step 3: the signature has the shape its algorithm requires before any crypto sees it.
/// ECDSA must be raw `R‖S` (JWS, RFC 7518 §3.4) of exactly twice the scalar size — a DER
/// signature is refused — with both halves in `1..n`; Ed25519 is 64 bytes.
pub fn check_signature_shape(alg: Algorithm, signature: &[u8]) -> Result<(), VerifyError> {
    let ok = match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let n: &[u8] = if alg == Algorithm::ES256 {
                &P256_N
            } else {
                &P384_N
            };
            signature.len() == 2 * n.len() && {
                let (r, s) = signature.split_at(n.len());
                in_scalar_range(r, n) && in_scalar_range(s, n)
            }
        }
        Algorithm::EdDSA => signature.len() == 64,
        _ => !signature.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// Step 4, after the signature verified: the claims, at `now` (the issuer's time as best
/// known: the caller corrects its clock with the server's `Date` when it can).
pub fn check_claims(claims: &Claims, policy: &Policy, now: Timestamp) -> Result<(), VerifyError> {
    let now = now.as_secs();
    let leeway = policy.leeway.as_secs();
    let exp = claims.exp.ok_or(VerifyError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(leeway));
    if future(claims.nbf) || future(claims.iat) {
        return Err(VerifyError::NotYetValid);
    }
    if let Some(iss) = &policy.issuer {
        if claims.iss.as_deref() != Some(iss) {
            return Err(VerifyError::WrongIssuer);
        }
    }
    if let Some(aud) = &policy.audience {
        if !claims.aud.as_ref().is_some_and(|a| a.contains(aud)) {
            return Err(VerifyError::WrongAudience);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;
    use crate::dangerous::{decode_unverified, UnverifiedToken};

    fn b64(s: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    fn token(header: &str) -> UnverifiedToken {
        decode_unverified(format!("{}.{}.c2ln", b64(header), b64("{}"))).unwrap()
    }

    fn policy() -> Policy {
        Policy::new(vec![Algorithm::RS256, Algorithm::ES256]).unwrap()
    }

    #[test]
    fn hmac_and_empty_allowlists_are_refused() {
        assert_eq!(Policy::new(vec![]).unwrap_err().code(), "invalid_option");
        assert_eq!(
            Policy::new(vec![Algorithm::RS256, Algorithm::HS256])
                .unwrap_err()
                .code(),
            "invalid_option"
        );
    }

    #[test]
    fn the_algorithm_comes_from_the_allowlist_not_the_token() {
        assert_eq!(
            check_header(&token(r#"{"alg":"PS256"}"#), &policy()),
            Err(VerifyError::AlgorithmNotAllowed)
        );
        assert_eq!(
            check_header(&token(r#"{"alg":"HS256"}"#), &policy()),
            Err(VerifyError::AlgorithmNotAllowed)
        );
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256"}"#), &policy()),
            Ok(())
        );
    }

    #[test]
    fn header_keys_and_crit_are_refused() {
        for p in ["jwk", "jku", "x5u", "x5c"] {
            let h = format!(r#"{{"alg":"RS256","{p}":"x"}}"#);
            assert_eq!(
                check_header(&token(&h), &policy()).unwrap_err().code(),
                "untrusted_key_param"
            );
        }
        let h = r#"{"alg":"RS256","crit":["b64"],"b64":false}"#;
        assert_eq!(
            check_header(&token(h), &policy()),
            Err(VerifyError::UnsupportedCritical)
        );
    }

    #[test]
    fn typ_is_compared_as_a_media_type() {
        let mut p = policy();
        p.typ = Some("at+jwt".into());
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256","typ":"AT+JWT"}"#), &p),
            Ok(())
        );
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256","typ":"application/at+jwt"}"#), &p),
            Ok(())
        );
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256","typ":"JWT"}"#), &p),
            Err(VerifyError::WrongType)
        );
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256"}"#), &p),
            Err(VerifyError::WrongType)
        );
    }

    /// Well-formed key material: a 2048-bit modulus, 32-byte coordinates.
    fn jwks() -> String {
        let n = format!("{}{}", "w", "A".repeat(341)); // 0xc0 then zeros: 2048 bits
        let c = "A".repeat(43); // 32 zero bytes
        format!(
            r#"{{"keys":[
        {{"kty":"RSA","kid":"r1","n":"{n}","e":"AQAB","alg":"RS256","use":"sig","d":"SECRET"}},
        {{"kty":"EC","kid":"e1","crv":"P-256","x":"{c}","y":"{c}"}},
        {{"kty":"OKP","kid":"o1","crv":"Ed25519","x":"{c}"}},
        {{"kty":"oct","kid":"h1","k":"c2VjcmV0"}},
        {{"kty":"RSA","kid":"enc","n":"{n}","e":"AQAB","use":"enc"}}
    ]}}"#
        )
    }

    #[test]
    fn jwks_keeps_only_public_material_and_usable_key_types() {
        let keys = parse_jwks(jwks().as_bytes()).unwrap();
        assert_eq!(keys.len(), 4, "the oct key is skipped");
        assert_eq!(
            keys[0].public_json,
            format!(r#"{{"kty":"RSA","n":"w{}","e":"AQAB"}}"#, "A".repeat(341))
        );
        assert!(!keys.iter().any(|k| k.public_json.contains("SECRET")));
        for bad in [
            "",
            "{}",
            r#"{"keys":{}}"#,
            r#"{"keys":[1]}"#,
            r#"{"keys":[{"kty":"RSA","n":"x"}]}"#,
            r#"{"keys":[{"kty":5}]}"#,
        ] {
            assert_eq!(
                parse_jwks(bad.as_bytes()).unwrap_err().code(),
                "bad_jwks",
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_serve_only_their_own_algorithm() {
        let keys = parse_jwks(jwks().as_bytes()).unwrap();
        assert_eq!(
            select_key(&keys, Some("r1"), Algorithm::RS256)
                .unwrap()
                .kid
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            select_key(&keys, Some("r1"), Algorithm::PS256),
            Err(VerifyError::KeyMismatch),
            "pinned to RS256"
        );
        assert_eq!(
            select_key(&keys, Some("e1"), Algorithm::RS256),
            Err(VerifyError::KeyMismatch)
        );
        assert_eq!(
            select_key(&keys, Some("e1"), Algorithm::ES384),
            Err(VerifyError::KeyMismatch),
            "wrong curve"
        );
        assert_eq!(
            select_key(&keys, Some("o1"), Algorithm::EdDSA).unwrap().kty,
            "OKP"
        );
        assert_eq!(
            select_key(&keys, Some("h1"), Algorithm::RS256),
            Err(VerifyError::UnknownKid)
        );
        assert_eq!(
            select_key(&keys, Some("enc"), Algorithm::RS256),
            Err(VerifyError::KeyMismatch),
            "use: enc"
        );
        for kid in ["", "../../etc/passwd", "' OR 1=1 --", "R1"] {
            assert_eq!(
                select_key(&keys, Some(kid), Algorithm::RS256),
                Err(VerifyError::UnknownKid),
                "{kid:?}"
            );
        }
        // Without kid: only when exactly one key fits.
        assert_eq!(
            select_key(&keys, None, Algorithm::ES256)
                .unwrap()
                .kid
                .as_deref(),
            Some("e1")
        );
        let two = [keys[0].clone(), keys[0].clone()];
        assert_eq!(
            select_key(&two, None, Algorithm::RS256),
            Err(VerifyError::UnknownKid)
        );
    }

    #[test]
    fn ecdsa_signatures_must_be_raw_and_in_range() {
        let mut good = vec![1u8; 64];
        assert_eq!(check_signature_shape(Algorithm::ES256, &good), Ok(()));
        // CVE-2022-21449: r = 0 or s = 0 must never reach the verifier.
        for (r, s) in [(0u8, 1u8), (1, 0), (0, 0)] {
            let sig: Vec<u8> = std::iter::repeat_n(r, 32)
                .chain(std::iter::repeat_n(s, 32))
                .collect();
            assert_eq!(
                check_signature_shape(Algorithm::ES256, &sig),
                Err(VerifyError::BadSignature)
            );
        }
        // r = n and s = n.
        good[..32].copy_from_slice(&P256_N);
        assert_eq!(
            check_signature_shape(Algorithm::ES256, &good),
            Err(VerifyError::BadSignature)
        );
        let mut s_n = vec![1u8; 32];
        s_n.extend_from_slice(&P256_N);
        assert_eq!(
            check_signature_shape(Algorithm::ES256, &s_n),
            Err(VerifyError::BadSignature)
        );
        // n - 1 is fine.
        let mut n_minus_1 = P256_N;
        n_minus_1[31] -= 1;
        let sig: Vec<u8> = n_minus_1.iter().chain(n_minus_1.iter()).copied().collect();
        assert_eq!(check_signature_shape(Algorithm::ES256, &sig), Ok(()));
        // A DER signature (0x30 …, 70-72 bytes) and wrong lengths are refused.
        assert!(check_signature_shape(Algorithm::ES256, &[0x30; 71]).is_err());
        assert!(check_signature_shape(Algorithm::ES384, &[1; 64]).is_err());
        assert_eq!(check_signature_shape(Algorithm::ES384, &[1; 96]), Ok(()));
        assert!(check_signature_shape(Algorithm::EdDSA, &[1; 63]).is_err());
        assert!(check_signature_shape(Algorithm::RS256, &[]).is_err());
    }

    fn claims(exp: Option<u64>, nbf: Option<u64>, iat: Option<u64>) -> Claims {
        Claims {
            iss: Some("https://issuer".into()),
            aud: Some(Audience::Many(vec!["api".into(), "web".into()])),
            exp,
            nbf,
            iat,
            ..Claims::default()
        }
    }

    #[test]
    fn time_claims_are_checked_with_leeway() {
        let p = policy();
        let now = Timestamp::from_secs(10_000);
        assert_eq!(
            check_claims(&claims(Some(10_100), Some(9_000), Some(9_000)), &p, now),
            Ok(())
        );
        assert_eq!(
            check_claims(&claims(None, None, None), &p, now),
            Err(VerifyError::MissingClaim("exp"))
        );
        assert_eq!(
            check_claims(&claims(Some(9_950), None, None), &p, now),
            Ok(()),
            "within leeway"
        );
        assert_eq!(
            check_claims(&claims(Some(9_940), None, None), &p, now),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            check_claims(&claims(Some(20_000), Some(10_061), None), &p, now),
            Err(VerifyError::NotYetValid)
        );
        assert_eq!(
            check_claims(&claims(Some(20_000), None, Some(10_061)), &p, now),
            Err(VerifyError::NotYetValid)
        );
        assert_eq!(
            check_claims(&claims(Some(20_000), Some(10_060), None), &p, now),
            Ok(())
        );
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let mut p = policy();
        let now = Timestamp::from_secs(0);
        p.issuer = Some("https://issuer".into());
        p.audience = Some("web".into());
        assert_eq!(
            check_claims(&claims(Some(100), None, None), &p, now),
            Ok(())
        );
        p.issuer = Some("https://evil".into());
        assert_eq!(
            check_claims(&claims(Some(100), None, None), &p, now),
            Err(VerifyError::WrongIssuer)
        );
        p.issuer = None;
        p.audience = Some("admin".into());
        assert_eq!(
            check_claims(&claims(Some(100), None, None), &p, now),
            Err(VerifyError::WrongAudience)
        );
    }
}
