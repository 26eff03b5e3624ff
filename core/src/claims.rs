//! Typed claims of an access token: the registered claims of RFC 7519 §4.1 with strict types,
//! and every other claim kept as JSON for the UI.

use crate::error::DecodeError;
use crate::json::{numeric_date, write_string, Value};
use crate::message::push_decimal;

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

/// The claims of a token. Time claims are whole seconds since the Unix epoch.
///
/// [`Claims::to_json`] writes them back as one flat JSON object (registered and other claims
/// together), which is what the UI receives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    /// Issuer.
    pub iss: Option<String>,
    /// Subject: the user.
    pub sub: Option<String>,
    /// Audience.
    pub aud: Option<Audience>,
    /// Expiration time.
    pub exp: Option<u64>,
    /// Not before.
    pub nbf: Option<u64>,
    /// Issued at.
    pub iat: Option<u64>,
    /// Token identifier.
    pub jti: Option<String>,
    /// Every other claim (`name`, `roles`, `email` …), untouched, in document order.
    pub other: Vec<(String, Value)>,
}

impl Claims {
    /// Splits a parsed claims object into typed registered claims and the rest.
    pub(crate) fn from_object(mut map: Vec<(String, Value)>) -> Result<Self, DecodeError> {
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

    /// Another claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.other.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// All claims as one JSON object, for the UI: the registered claims first, then the
    /// others in document order. Written straight from the fields (no copy of any value).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        let mut first = true;
        let mut member = |out: &mut String, name: &str| {
            out.push(if first { '{' } else { ',' });
            first = false;
            write_string(name, out);
            out.push(':');
        };
        for (name, value) in [("iss", &self.iss), ("sub", &self.sub)] {
            if let Some(s) = value {
                member(&mut out, name);
                write_string(s, &mut out);
            }
        }
        match &self.aud {
            None => {}
            Some(Audience::Single(a)) => {
                member(&mut out, "aud");
                write_string(a, &mut out);
            }
            Some(Audience::Many(list)) => {
                member(&mut out, "aud");
                for (i, a) in list.iter().enumerate() {
                    out.push(if i == 0 { '[' } else { ',' });
                    write_string(a, &mut out);
                }
                if list.is_empty() {
                    out.push('[');
                }
                out.push(']');
            }
        }
        for (name, value) in [("exp", self.exp), ("nbf", self.nbf), ("iat", self.iat)] {
            if let Some(n) = value {
                member(&mut out, name);
                push_decimal(&mut out, n);
            }
        }
        if let Some(s) = &self.jti {
            member(&mut out, "jti");
            write_string(s, &mut out);
        }
        for (name, value) in &self.other {
            member(&mut out, name);
            value.write_json(&mut out);
        }
        if first {
            out.push('{');
        }
        out.push('}');
        out
    }
}

/// Removes member `name` from a parsed object.
pub(crate) fn take(map: &mut Vec<(String, Value)>, name: &str) -> Option<Value> {
    let i = map.iter().position(|(k, _)| k == name)?;
    Some(map.remove(i).1)
}

fn take_string(
    map: &mut Vec<(String, Value)>,
    claim: &'static str,
) -> Result<Option<String>, DecodeError> {
    match take(map, claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::ClaimType {
            claim,
            expected: "a string",
        }),
    }
}

fn take_audience(map: &mut Vec<(String, Value)>) -> Result<Option<Audience>, DecodeError> {
    const EXPECTED: &str = "a string or an array of strings";
    let err = DecodeError::ClaimType {
        claim: "aud",
        expected: EXPECTED,
    };
    match take(map, "aud") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Audience::Single(s))),
        // A plain loop: `collect::<Result<Vec<_>, _>>()` compiles to an in-place-collect
        // `try_fold` several times its size (README "Size", sixth pass).
        Some(Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for v in items {
                match v {
                    Value::String(s) => list.push(s),
                    _ => return Err(err),
                }
            }
            Ok(Some(Audience::Many(list)))
        }
        Some(_) => Err(err),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional, which we floor.
/// Present but not a finite number in `0..=MAX_NUMERIC_DATE` is an error, never "absent".
fn take_numeric_date(
    map: &mut Vec<(String, Value)>,
    claim: &'static str,
) -> Result<Option<u64>, DecodeError> {
    let err = DecodeError::ClaimType {
        claim,
        expected: "a non-negative number of seconds no later than year 9999",
    };
    match take(map, claim) {
        None => Ok(None),
        Some(Value::Number(n)) => numeric_date(&n, MAX_NUMERIC_DATE).map(Some).ok_or(err),
        Some(_) => Err(err),
    }
}
