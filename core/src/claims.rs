//! Typed claims of an access token: the registered claims of RFC 7519 §4.1 with strict types,
//! and every other claim kept as JSON for the UI.

use crate::error::DecodeError;
use crate::json::{build, numeric_date, write_string, Field, Members, Value};
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
/// together), which is what the UI receives. The other claims are kept as their JSON text
/// (checked when the claims were read), not as a tree: [`Claims::get`] builds one on demand.
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
    /// Every other claim (`name`, `roles`, `email` …), in document order: its name and its
    /// value's JSON text as the token wrote it.
    pub(crate) other: Vec<(String, String)>,
}

impl Claims {
    /// Splits a checked claims object into typed registered claims and the rest.
    pub(crate) fn from_members(mut map: Members<'_>) -> Result<Self, DecodeError> {
        Ok(Claims {
            iss: take_string(&mut map, "iss")?,
            sub: take_string(&mut map, "sub")?,
            aud: take_audience(&mut map)?,
            exp: take_numeric_date(&mut map, "exp")?,
            nbf: take_numeric_date(&mut map, "nbf")?,
            iat: take_numeric_date(&mut map, "iat")?,
            jti: take_string(&mut map, "jti")?,
            other: map.rest(),
        })
    }

    /// Another claim by name, built from its text.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.get_json(name).map(build)
    }

    /// Another claim by name, as its JSON text (as the token wrote it: whitespace and escapes
    /// kept).
    pub fn get_json(&self, name: &str) -> Option<&str> {
        self.other
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The other claims' names, in document order.
    pub fn other_names(&self) -> impl Iterator<Item = &str> {
        self.other.iter().map(|(k, _)| k.as_str())
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
            out.push_str(value);
        }
        if first {
            out.push('{');
        }
        out.push('}');
        out
    }
}

fn take_string(map: &mut Members<'_>, claim: &'static str) -> Result<Option<String>, DecodeError> {
    match map.take(claim) {
        None => Ok(None),
        Some(Field::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::ClaimType {
            claim,
            expected: "a string",
        }),
    }
}

fn take_audience(map: &mut Members<'_>) -> Result<Option<Audience>, DecodeError> {
    match map.take("aud") {
        None => Ok(None),
        Some(Field::String(s)) => Ok(Some(Audience::Single(s))),
        Some(Field::Strings(list)) => Ok(Some(Audience::Many(list))),
        Some(_) => Err(DecodeError::ClaimType {
            claim: "aud",
            expected: "a string or an array of strings",
        }),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional, which we floor.
/// Present but not a finite number in `0..=MAX_NUMERIC_DATE` is an error, never "absent".
fn take_numeric_date(
    map: &mut Members<'_>,
    claim: &'static str,
) -> Result<Option<u64>, DecodeError> {
    let err = DecodeError::ClaimType {
        claim,
        expected: "a non-negative number of seconds no later than year 9999",
    };
    match map.take(claim) {
        None => Ok(None),
        Some(Field::Number(n)) => numeric_date(n, MAX_NUMERIC_DATE).map(Some).ok_or(err),
        Some(_) => Err(err),
    }
}
