//! Strict JSON (RFC 8259) and base64url (RFC 4648 §5) for token segments.
//!
//! Hand-written rather than serde_json and the base64 crate for two reasons. Strictness: a
//! duplicate member name, a lone surrogate escape or a non-canonical base64 character each get
//! refused with their own error. Size: this is the only JSON the browser package links, and a
//! general-purpose deserializer with float parsing and formatting would double the `.wasm`.
//! Numbers keep their source text; the few that matter (time claims) are read exactly by
//! `numeric_date` with integer arithmetic.

use crate::error::{DecodeError, Part};

/// A JSON value from a token. Numbers are kept as their (validated) source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written (`1700000000`, `1.5e3`).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in document order (names are unique).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Member `name`, if this is an object that has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Appends this value as compact JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => write_string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                write_object(members.iter().map(|(k, v)| (k.as_str(), v)), out)
            }
        }
    }
}

/// Appends `{"k":v,...}`.
pub(crate) fn write_object<'a>(
    members: impl Iterator<Item = (&'a str, &'a Value)>,
    out: &mut String,
) {
    out.push('{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        v.write_json(out);
    }
    out.push('}');
}

/// Appends a JSON string literal. Runs of characters that need no escape are copied whole
/// (one `push_str` each, not one `push` per character: decoding writes every claim back).
pub(crate) fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "\\u00",
            _ => continue,
        };
        // `b` is ASCII, so `plain..i` and `i + 1..` are on char boundaries.
        out.push_str(&s[plain..i]);
        out.push_str(escape);
        if escape == "\\u00" {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    max_depth: usize,
    part: Part,
}

impl Parser<'_> {
    fn bad(&self) -> DecodeError {
        DecodeError::BadJson {
            part: self.part,
            offset: self.i,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> Result<(), DecodeError> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.bad())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') | Some(b'[') if depth >= self.max_depth => Err(DecodeError::TooDeep {
                part: self.part,
                max: self.max_depth,
            }),
            Some(b'{') => self.object(depth + 1).map(Value::Object),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.bad()),
                    }
                }
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.eat(b"true").map(|_| Value::Bool(true)),
            Some(b'f') => self.eat(b"false").map(|_| Value::Bool(false)),
            Some(b'n') => self.eat(b"null").map(|_| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.bad()),
        }
    }

    /// Parses `{...}` at `self.i`; refuses a member name seen before in the same object.
    fn object(&mut self, depth: usize) -> Result<Vec<(String, Value)>, DecodeError> {
        self.i += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(members);
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.bad());
            }
            let name = self.string()?;
            if members.iter().any(|(k, _)| *k == name) {
                return Err(DecodeError::Duplicate {
                    part: self.part,
                    name: truncated(name, 64),
                });
            }
            self.ws();
            self.eat(b":")?;
            let value = self.value(depth)?;
            members.push((name, value));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(members);
                }
                _ => return Err(self.bad()),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let digits = self.s.get(self.i..self.i + 4).ok_or_else(|| self.bad())?;
        let mut v = 0;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or_else(|| self.bad())?;
            v = v * 16 + n;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            // A run of bytes that need no unescaping is copied whole.
            let run = self.s[self.i..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.s.len() - self.i);
            out.extend_from_slice(&self.s[self.i..self.i + run]);
            self.i += run;
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.bad());
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.bad());
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = match hi {
                                0xD800..=0xDBFF => {
                                    // A high surrogate must be followed by an escaped low one.
                                    self.eat(b"\\u")?;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return Err(self.bad());
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                }
                                0xDC00..=0xDFFF => return Err(self.bad()),
                                c => c,
                            };
                            char::from_u32(code).ok_or_else(|| self.bad())?
                        }
                        _ => return Err(self.bad()),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.bad()),
                b => out.push(b),
            }
        }
        // The input was checked to be UTF-8 and escapes produce whole chars, so this holds;
        // refuse rather than panic if it ever does not.
        String::from_utf8(out).map_err(|_| DecodeError::NotUtf8 {
            part: Some(self.part),
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.s.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, DecodeError> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let int_len = self.digits();
        if int_len == 0 || (int_len > 1 && self.s[int_start] == b'0') {
            return Err(self.bad());
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.bad());
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.bad());
            }
        }
        // Validated ASCII.
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        Ok(Value::Number(text))
    }
}

fn truncated(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Parses a segment that must be one JSON object with unique member names (at every level),
/// nested no deeper than `max_depth`.
pub(crate) fn parse_object(
    json: &[u8],
    max_depth: usize,
    part: Part,
) -> Result<Vec<(String, Value)>, DecodeError> {
    if std::str::from_utf8(json).is_err() {
        return Err(DecodeError::NotUtf8 { part: Some(part) });
    }
    let mut p = Parser {
        s: json,
        i: 0,
        max_depth,
        part,
    };
    let value = p.value(0)?;
    p.ws();
    if p.i != json.len() {
        return Err(p.bad());
    }
    match value {
        Value::Object(members) => Ok(members),
        _ => Err(DecodeError::NotObject { part }),
    }
}

/// Reads a JSON number as whole seconds (a NumericDate, floored), exactly and without floats.
/// `None` for a negative number or one above `max`. `text` is a number [`Value::Number`] holds.
pub(crate) fn numeric_date(text: &str, max: u64) -> Option<u64> {
    let b = text.as_bytes();
    if b.first() == Some(&b'-') {
        return None;
    }
    let mantissa_end = b
        .iter()
        .position(|c| matches!(c, b'e' | b'E'))
        .unwrap_or(b.len());
    let (mantissa, exponent) = (&b[..mantissa_end], b.get(mantissa_end + 1..).unwrap_or(&[]));
    let exponent = match exponent.first() {
        None => 0,
        Some(b'-') => -saturating_digits(&exponent[1..]),
        Some(b'+') => saturating_digits(&exponent[1..]),
        Some(_) => saturating_digits(exponent),
    };
    let frac_len = mantissa
        .iter()
        .position(|c| *c == b'.')
        .map_or(0, |dot| mantissa.len() - dot - 1);
    // value = digits × 10^scale, with digits = the mantissa's digits, leading zeros dropped.
    let digits = mantissa
        .iter()
        .filter(|c| c.is_ascii_digit())
        .skip_while(|c| **c == b'0');
    let significant = digits.clone().count() as i64;
    if significant == 0 {
        return Some(0);
    }
    let whole_digits = significant.saturating_add(exponent.saturating_sub(frac_len as i64));
    if whole_digits <= 0 {
        return Some(0);
    }
    // More than 20 digits cannot fit a u64, let alone `max`.
    if whole_digits > 20 {
        return None;
    }
    let mut value: u64 = 0;
    let mut digits = digits.map(|c| u64::from(c - b'0'));
    for _ in 0..whole_digits {
        value = value
            .checked_mul(10)?
            .checked_add(digits.next().unwrap_or(0))?;
    }
    (value <= max).then_some(value)
}

/// A run of ASCII digits as a number, saturating (at `i64::MAX / 2`, so callers can add).
pub(crate) fn saturating_digits(digits: &[u8]) -> i64 {
    digits.iter().fold(0i64, |acc, d| {
        (acc * 10 + i64::from(d.wrapping_sub(b'0') % 10)).min(i64::MAX / 20)
    })
}

/// Strict unpadded base64url: only `A-Z a-z 0-9 - _`, no `=`, no whitespace, and the unused
/// low bits of the last character must be zero, so every byte string has exactly one encoding.
pub(crate) fn base64url(input: &[u8], part: Part) -> Result<Vec<u8>, DecodeError> {
    let bad = DecodeError::BadBase64 { part };
    if input.len() % 4 == 1 {
        return Err(bad);
    }
    // Written by index into a buffer of the exact length, not pushed byte by byte.
    let mut out = vec![0u8; input.len() * 6 / 8];
    let mut n = 0;
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(bad),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if let Some(byte) = out.get_mut(n) {
                *byte = (acc >> bits) as u8;
            }
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(bad);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<(String, Value)>, DecodeError> {
        parse_object(s.as_bytes(), 32, Part::Claims)
    }

    #[test]
    fn parses_every_kind_of_value() {
        let m = parse(
            r#" { "a" : [1, -2.5e3, true, false, null, "x\u00e9\n\ud83d\ude00"], "b": {} } "#,
        )
        .unwrap();
        assert_eq!(
            m[0].1,
            Value::Array(vec![
                Value::Number("1".into()),
                Value::Number("-2.5e3".into()),
                Value::Bool(true),
                Value::Bool(false),
                Value::Null,
                Value::String("xé\n😀".into()),
            ])
        );
        assert_eq!(m[1].1, Value::Object(vec![]));
    }

    #[test]
    fn refuses_what_rfc_8259_refuses() {
        for bad in [
            "",
            "{",
            "{]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{'a':1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":+1}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{} {}",
            "{\"a\":NaN}",
            "{\"a\":[1,]}",
            "{\"a\" 1}",
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), "bad_json", "{bad:?}");
        }
    }

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(
            parse(r#"{"a":1,"a":2}"#).unwrap_err().code(),
            "duplicate_claim"
        );
        assert_eq!(
            parse(r#"{"a":{"b":1,"b":2}}"#).unwrap_err().code(),
            "duplicate_claim"
        );
        // An escaped spelling of the same name is the same name.
        assert_eq!(
            parse(r#"{"sub":1,"\u0073ub":2}"#).unwrap_err().code(),
            "duplicate_claim"
        );
    }

    #[test]
    fn depth_is_capped_without_deep_recursion() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            parse_object(deep.as_bytes(), 32, Part::Claims),
            Err(DecodeError::TooDeep {
                part: Part::Claims,
                max: 32
            })
        );
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn writing_round_trips() {
        let src = r#"{"a":[1,-2.5e3,true,null,"q\"\\\n\u0001é"],"b":{"c":"d"}}"#;
        let m = parse(src).unwrap();
        let mut out = String::new();
        write_object(m.iter().map(|(k, v)| (k.as_str(), v)), &mut out);
        assert_eq!(parse(&out).unwrap(), m);
    }

    #[test]
    fn numeric_dates_are_read_exactly() {
        let max = 253_402_300_799;
        for (text, want) in [
            ("0", Some(0)),
            ("1700000000", Some(1_700_000_000)),
            ("1700000000.999", Some(1_700_000_000)),
            ("1.7e9", Some(1_700_000_000)),
            ("17E8", Some(1_700_000_000)),
            ("1.5e-3", Some(0)),
            ("0.000", Some(0)),
            ("253402300799", Some(max)),
            ("253402300800", None),
            ("1e400", None),
            ("-1", None),
            ("-0.5", None),
            ("123456789012345678901234567890", None),
            ("1e-400", Some(0)),
            ("1e99999999999999999999", None),
            ("1e-99999999999999999999", Some(0)),
            ("25340230079.99e1", Some(253_402_300_799)),
        ] {
            assert_eq!(numeric_date(text, max), want, "{text}");
        }
    }

    #[test]
    fn base64url_is_strict_and_canonical() {
        assert_eq!(base64url(b"e30", Part::Claims).unwrap(), b"{}");
        assert_eq!(base64url(b"", Part::Claims).unwrap(), b"");
        assert_eq!(base64url(b"YQ", Part::Claims).unwrap(), b"a");
        assert_eq!(base64url(b"_-8", Part::Claims).unwrap(), [0xff, 0xef]);
        for bad in [&b"YR"[..], b"YQ==", b"Y", b"e3+", b"e3/", b"e3 0", b"e30\n"] {
            assert!(base64url(bad, Part::Claims).is_err(), "{bad:?}");
        }
    }
}
