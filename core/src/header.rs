//! The JOSE header of a token, read strictly.
//!
//! Only the parameters the library acts on are typed. The ones that would let a token choose
//! its own verification key (`jwk`, `jku`, `x5u`, `x5c`) are recorded as present so a
//! verification policy can refuse them, and are never used.

use jsonwebtoken::Algorithm;

use crate::error::DecodeError;
use crate::json::{Field, Members};
use crate::verify::algorithm_name;

/// Header parameters that carry or point at a key chosen by whoever made the token.
pub const KEY_CARRYING_PARAMS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// The decoded JOSE header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Signature algorithm. `none` never decodes (see [`DecodeError::UnsupportedAlgorithm`]).
    pub alg: Algorithm,
    /// Media type, `at+jwt` for access tokens of RFC 9068.
    pub typ: Option<String>,
    /// Key identifier.
    pub kid: Option<String>,
    /// Content type.
    pub cty: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11).
    pub crit: Option<Vec<String>>,
    /// Which of [`KEY_CARRYING_PARAMS`] the header contains.
    pub key_params: Vec<&'static str>,
}

impl AsRef<Header> for Header {
    fn as_ref(&self) -> &Header {
        self
    }
}

/// Every algorithm `alg` may name (those of `Algorithm::from_str`).
const ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

impl Header {
    pub(crate) fn from_members(mut map: Members<'_>) -> Result<Self, DecodeError> {
        let alg = match map.take("alg") {
            Some(Field::String(s)) => {
                // By the names `algorithm_name` gives, the ones `Algorithm::from_str` accepts:
                // its error type (with an `Arc<serde_json::Error>` to drop) is not linked.
                ALGORITHMS
                    .into_iter()
                    .find(|a| algorithm_name(*a) == s)
                    .ok_or(DecodeError::UnsupportedAlgorithm)?
            }
            _ => return Err(DecodeError::BadHeader { field: "alg" }),
        };
        let crit = match map.take("crit") {
            None => None,
            Some(Field::Strings(names)) if !names.is_empty() => Some(names),
            Some(_) => return Err(DecodeError::BadHeader { field: "crit" }),
        };
        let typ = take_string(&mut map, "typ")?;
        let kid = take_string(&mut map, "kid")?;
        let cty = take_string(&mut map, "cty")?;
        // A plain loop, not `filter` and `collect` (three generic items, about 500 bytes).
        let mut key_params = Vec::new();
        for p in KEY_CARRYING_PARAMS {
            if map.has(p) {
                key_params.push(p);
            }
        }
        Ok(Header {
            alg,
            typ,
            kid,
            cty,
            crit,
            key_params,
        })
    }
}

fn take_string(map: &mut Members<'_>, field: &'static str) -> Result<Option<String>, DecodeError> {
    match map.take(field) {
        None => Ok(None),
        Some(Field::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::BadHeader { field }),
    }
}
