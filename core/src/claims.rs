//! Typed claims of an access token: the registered claims of RFC 7519 §4.1 with strict types,
//! and every other claim kept as JSON for the UI.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::DecodeError;

/// Latest NumericDate accepted: 9999-12-31T23:59:59Z. Anything later is an overflow attempt.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `"aud": "api"`
    Single(String),
    /// `"aud": ["api", "web"]`
    Many(Vec<String>),
}

impl Audience {
    /// True when `name` is (one of) the audience(s).
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Audience::Single(a) => a == name,
            Audience::Many(list) => list.iter().any(|a| a == name),
        }
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Audience::Single(a) => a.serialize(s),
            Audience::Many(list) => list.serialize(s),
        }
    }
}

/// The claims of a token. Time claims are whole seconds since the Unix epoch.
///
/// Serializes back to one flat JSON object (registered and other claims together), which is
/// what the UI receives.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Claims {
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject: the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiration time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Token identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Every other claim (`name`, `roles`, `email` …), untouched.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Claims {
    /// Splits a parsed claims object into typed registered claims and the rest.
    pub(crate) fn from_object(mut map: Map<String, Value>) -> Result<Self, DecodeError> {
        Ok(Claims {
            iss: take_string(&mut map, "iss")?,
            sub: take_string(&mut map, "sub")?,
            aud: take_audience(&mut map)?,
            exp: take_numeric_date(&mut map, "exp")?,
            nbf: take_numeric_date(&mut map, "nbf")?,
            iat: take_numeric_date(&mut map, "iat")?,
            jti: take_string(&mut map, "jti")?,
            other: map,
        })
    }

    /// All claims as one JSON object, for the UI.
    pub fn to_json(&self) -> String {
        // Serializing a tree of Strings and Values cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

fn take_string(
    map: &mut Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, DecodeError> {
    match map.remove(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::ClaimType {
            claim,
            expected: "a string",
        }),
    }
}

fn take_audience(map: &mut Map<String, Value>) -> Result<Option<Audience>, DecodeError> {
    const EXPECTED: &str = "a string or an array of strings";
    let err = DecodeError::ClaimType {
        claim: "aud",
        expected: EXPECTED,
    };
    match map.remove("aud") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Audience::Single(s))),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(err.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|list| Some(Audience::Many(list))),
        Some(_) => Err(err),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional, which we floor.
/// Present but not a finite number in `0..=MAX_NUMERIC_DATE` is an error, never "absent".
fn take_numeric_date(
    map: &mut Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, DecodeError> {
    let err = DecodeError::ClaimType {
        claim,
        expected: "a non-negative number of seconds no later than year 9999",
    };
    let Some(value) = map.remove(claim) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(err);
    };
    let secs = if let Some(u) = n.as_u64() {
        u
    } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
        if f > MAX_NUMERIC_DATE as f64 {
            return Err(err);
        }
        f.floor() as u64
    } else {
        return Err(err);
    };
    if secs > MAX_NUMERIC_DATE {
        return Err(err);
    }
    Ok(Some(secs))
}
