//! Strict JSON (RFC 8259) and base64url (RFC 4648 §5) for token segments.
//!
//! Hand-written rather than serde_json and the base64 crate for two reasons. Strictness: a
//! duplicate member name, a lone surrogate escape or a non-canonical base64 character each get
//! refused with their own error. Size: this is the only JSON the browser package links, and a
//! general-purpose deserializer with float parsing and formatting would double the `.wasm`.
//! Numbers keep their source text; the few that matter (time claims) are read exactly by
//! `numeric_date` with integer arithmetic.
//!
//! Reading is two steps: a scanner checks the text (and names the first problem), then a
//! builder that checks nothing builds the [`Value`]s. `decodeClaims` stops after the scan and
//! hands the checked text itself to `JSON.parse`.

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

/// Builds the tree of a text the [`Scanner`] accepted, so nothing is checked twice: the checks
/// and their errors live in the scan only.
struct Builder<'a> {
    s: &'a [u8],
    i: usize,
}

impl Builder<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// The byte at `self.i` and a step past it.
    fn next(&mut self) -> u8 {
        let b = self.s.get(self.i).copied().unwrap_or(b'}');
        self.i += 1;
        b
    }

    fn value(&mut self) -> Value {
        self.ws();
        match self.s.get(self.i).copied().unwrap_or(b'n') {
            b'{' => Value::Object(self.object()),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    // Items until `]` (a validated text alternates items and `,`).
                    while {
                        items.push(self.value());
                        self.ws();
                        self.next() == b','
                    } {}
                }
                Value::Array(items)
            }
            b'"' => Value::String(self.string()),
            b't' => {
                self.i += 4;
                Value::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Value::Bool(false)
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i = number_end(self.s, start).map_or(self.s.len(), |(end, _)| end);
                // Validated ASCII, so every byte is a char (and no lossy conversion is linked).
                Value::Number(
                    self.s[start..self.i]
                        .iter()
                        .map(|b| char::from(*b))
                        .collect(),
                )
            }
            _ => {
                self.i += 4;
                Value::Null
            }
        }
    }

    fn object(&mut self) -> Vec<(String, Value)> {
        self.i += 1;
        let mut members = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return members;
        }
        while {
            self.ws();
            let name = self.string();
            self.ws();
            self.i += 1; // `:`
            members.push((name, self.value()));
            self.ws();
            self.next() == b','
        } {}
        members
    }

    fn string(&mut self) -> String {
        let start = self.i;
        self.i = string_end(self.s, start).map_or(self.s.len(), |(end, _)| end);
        string_text(&self.s[start..self.i])
    }
}

/// The end (past the closing quote) of the string literal whose opening quote is at `s[i]`,
/// and whether it holds an escape; `Err(offset)` where RFC 8259 is broken: a control
/// character, an unknown escape, a bad `\u` escape or a lone surrogate, no closing quote.
#[cfg_attr(tm_fast_scan, optimize(speed))]
fn string_end(s: &[u8], mut i: usize) -> Result<(usize, bool), usize> {
    i += 1;
    let mut escaped = false;
    loop {
        // A run of bytes that need no attention is skipped whole.
        let run = s[i..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(s.len())?;
        i += run + 1;
        match s[i - 1] {
            b'"' => return Ok((i, escaped)),
            b'\\' => {
                escaped = true;
                let e = *s.get(i).ok_or(i)?;
                i += 1;
                match e {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hi = s.get(i..i + 4).and_then(hex4).ok_or(i)?;
                        i += 4;
                        match hi {
                            // A high surrogate must be followed by an escaped low one.
                            0xD800..=0xDBFF => {
                                if !s[i..].starts_with(b"\\u") {
                                    return Err(i);
                                }
                                i += 2;
                                let lo = s.get(i..i + 4).and_then(hex4).ok_or(i)?;
                                i += 4;
                                if !(0xDC00..=0xDFFF).contains(&lo) {
                                    return Err(i);
                                }
                            }
                            0xDC00..=0xDFFF => return Err(i),
                            _ => {}
                        }
                    }
                    _ => return Err(i),
                }
            }
            _ => return Err(i),
        }
    }
}

/// The end of the number at `s[i]` (`-`? int frac? exp?, no leading zeros) and whether it is
/// plain digits; `Err(offset)` where the grammar is broken.
#[cfg_attr(tm_fast_scan, optimize(speed))]
fn number_end(s: &[u8], mut i: usize) -> Result<(usize, bool), usize> {
    let digits = |i: &mut usize| {
        let start = *i;
        while let Some(b'0'..=b'9') = s.get(*i) {
            *i += 1;
        }
        *i - start
    };
    let negative = s.get(i) == Some(&b'-');
    i += usize::from(negative);
    let int_start = i;
    let int_len = digits(&mut i);
    if int_len == 0 || (int_len > 1 && s[int_start] == b'0') {
        return Err(i);
    }
    let mut plain = !negative;
    if s.get(i) == Some(&b'.') {
        i += 1;
        plain = false;
        if digits(&mut i) == 0 {
            return Err(i);
        }
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        plain = false;
        if let Some(b'+' | b'-') = s.get(i) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return Err(i);
        }
    }
    Ok((i, plain))
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

/// A top-level member of an object [`members`] checked: its name and the span of its value.
#[derive(Clone, Copy)]
struct Member {
    name: Name,
    start: usize,
    end: usize,
    kind: Kind,
}

/// The members of a checked JSON object, read from its text without building a [`Value`]:
/// what the header and the claims need (strings, arrays of strings, numbers as text, the
/// JSON text of anything else). Members are taken by name, so what is left is the rest, in
/// document order.
pub(crate) struct Members<'a> {
    s: &'a [u8],
    list: Vec<Member>,
}

/// A member's value, as far as a reader of the header, the claims or a JWKS needs it.
pub(crate) enum Field<'a> {
    /// A string, unescaped.
    String(String),
    /// An array whose items are all strings (`[]` included), unescaped.
    Strings(Vec<String>),
    /// A number as written.
    Number(&'a [u8]),
    /// Any other array, as its text (its items: [`items`]).
    Array(&'a [u8]),
    /// Anything else.
    Other,
}

impl<'a> Members<'a> {
    /// Where member `name` is (names are unique, and compared unescaped).
    fn position(&self, name: &str) -> Option<usize> {
        let mut scratch = Vec::new();
        self.list.iter().position(|m| {
            let raw = &self.s[m.name.start..m.name.end];
            if m.name.escaped {
                unescape(raw, &mut scratch);
                scratch == name.as_bytes()
            } else {
                raw == name.as_bytes()
            }
        })
    }

    /// Removes member `name` and reads its value.
    pub(crate) fn take(&mut self, name: &str) -> Option<Field<'a>> {
        let m = self.list.remove(self.position(name)?);
        Some(self.read(m))
    }

    /// Reads member `name`'s value, leaving it in place.
    pub(crate) fn get(&self, name: &str) -> Option<Field<'a>> {
        Some(self.read(self.list[self.position(name)?]))
    }

    fn read(&self, m: Member) -> Field<'a> {
        let text = &self.s[m.start..m.end];
        match m.kind {
            Kind::String => Field::String(string_text(text)),
            Kind::Array(true) => {
                // Each item of a validated array of strings, between `[` and `]`.
                let mut items = Vec::new();
                let mut at = 1;
                while let Some(q) = text[at..].iter().position(|b| *b == b'"') {
                    let (end, _) = string_end(text, at + q).unwrap_or((text.len(), false));
                    items.push(string_text(&text[at + q..end]));
                    at = end;
                }
                Field::Strings(items)
            }
            Kind::Array(false) => Field::Array(text),
            Kind::Number(_) => Field::Number(text),
            _ => Field::Other,
        }
    }

    /// Whether a member named `name` is left.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The members left, in document order: each name unescaped, each value as its JSON text.
    pub(crate) fn rest(self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.list.len());
        for m in self.list {
            out.push((
                string_text(&self.s[m.name.start - 1..m.name.end + 1]),
                text_of(&self.s[m.start..m.end]),
            ));
        }
        out
    }
}

/// The value of a validated string literal (quotes included), unescaped.
fn string_text(literal: &[u8]) -> String {
    let mut out = Vec::with_capacity(literal.len());
    unescape(
        literal
            .get(1..literal.len().saturating_sub(1))
            .unwrap_or_default(),
        &mut out,
    );
    // The scan checked the text is UTF-8 and escapes produce whole chars.
    String::from_utf8(out).unwrap_or_default()
}

/// A checked value's text (UTF-8, checked by [`members`]) as a `String`.
fn text_of(text: &[u8]) -> String {
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// Checks a segment that must be one JSON object with unique member names (at every level),
/// nested no deeper than `max_depth` — the same checks and errors as [`parse_object`] — and
/// gives its top-level members without building them.
pub(crate) fn members(
    json: &[u8],
    max_depth: usize,
    part: Part,
) -> Result<Members<'_>, DecodeError> {
    if std::str::from_utf8(json).is_err() {
        return Err(DecodeError::NotUtf8 { part: Some(part) });
    }
    let mut scan = Scanner::new(json, max_depth, part, false);
    scan.members = Some(Vec::new());
    if scan.document()? != Kind::Object {
        return Err(DecodeError::NotObject { part });
    }
    Ok(Members {
        s: json,
        list: scan.members.unwrap_or_default(),
    })
}

/// The items of an array a reader checked ([`Field::Array`]), each as its text.
pub(crate) fn items(array: &[u8]) -> Vec<&[u8]> {
    let mut scan = Scanner::new(array, usize::MAX, Part::Payload, false);
    scan.i = 1;
    let mut out = Vec::new();
    loop {
        scan.ws();
        if matches!(array.get(scan.i), None | Some(b']')) {
            return out;
        }
        let start = scan.i;
        // Checked already: nothing fails, and a failure would only end the list early.
        if scan.value(1).is_err() {
            return out;
        }
        out.push(&array[start..scan.i]);
        scan.ws();
        if array.get(scan.i) != Some(&b',') {
            return out;
        }
        scan.i += 1;
    }
}

/// Builds the value of a JSON text a reader checked (a member's text from [`Members::rest`]).
pub(crate) fn build(text: &str) -> Value {
    Builder {
        s: text.as_bytes(),
        i: 0,
    }
    .value()
}

/// A checked object built whole, for tests: [`members`], then [`build`] for each value left —
/// the readers' own path.
#[cfg(test)]
pub(crate) fn parse_object(
    json: &[u8],
    max_depth: usize,
    part: Part,
) -> Result<Vec<(String, Value)>, DecodeError> {
    let rest = members(json, max_depth, part)?.rest();
    Ok(rest.into_iter().map(|(k, v)| (k, build(&v))).collect())
}

/// Reads a JSON number as whole seconds (a NumericDate, floored), exactly and without floats.
/// `None` for a negative number or one above `max`. `b` is the text of a checked JSON number.
pub(crate) fn numeric_date(b: &[u8], max: u64) -> Option<u64> {
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

/// The value of each base64url character (RFC 4648 §5), `0xFF` for every other byte.
static BASE64URL: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Strict unpadded base64url: only `A-Z a-z 0-9 - _`, no `=`, no whitespace, and the unused
/// low bits of the last character must be zero, so every byte string has exactly one encoding.
pub(crate) fn base64url(input: &[u8], part: Part) -> Result<Vec<u8>, DecodeError> {
    // Written four characters (three bytes) at a time into a buffer of the exact length.
    let mut out = vec![0u8; input.len() * 6 / 8];
    if base64url_into(input, &mut out) {
        Ok(out)
    } else {
        Err(DecodeError::BadBase64 { part })
    }
}

/// Decodes `input` into `out` (exactly `input.len() * 6 / 8` bytes long) with a lookup
/// table; false when `input` is not strict unpadded base64url (see [`base64url`]).
fn base64url_into(input: &[u8], out: &mut [u8]) -> bool {
    let v = |c: u8| u32::from(BASE64URL[usize::from(c)]);
    let mut invalid = 0;
    let (mut i, mut o) = (0, 0);
    // Three bytes written one by one (a three-byte slice copy is a `memcpy` call at opt-level z).
    while let (Some(&[a, b, c, d]), Some([x, y, z])) = (input.get(i..i + 4), out.get_mut(o..o + 3))
    {
        let (a, b, c, d) = (v(a), v(b), v(c), v(d));
        // 0xFF has bits above the six a character carries.
        invalid |= a | b | c | d;
        let n = a << 18 | b << 12 | c << 6 | d;
        (*x, *y, *z) = ((n >> 16) as u8, (n >> 8) as u8, n as u8);
        i += 4;
        o += 3;
    }
    let (n, stray) = match input[i..] {
        [] => (0, 0),
        [a, b] => {
            let (a, b) = (v(a), v(b));
            invalid |= a | b;
            (a << 18 | b << 12, b & 0x0F)
        }
        [a, b, c] => {
            let (a, b, c) = (v(a), v(b), v(c));
            invalid |= a | b | c;
            (a << 18 | b << 12 | c << 6, c & 0x03)
        }
        _ => return false,
    };
    for (k, byte) in out[o..].iter_mut().enumerate() {
        *byte = (n >> (16 - 8 * k)) as u8;
    }
    invalid < 64 && stray == 0
}

/// True when `input` is strict unpadded base64url, decoding nothing (a signature that is
/// only checked for its form).
pub(crate) fn is_base64url(input: &[u8]) -> bool {
    let stray_mask = match input.len() % 4 {
        0 => 0,
        2 => 0x0F,
        3 => 0x03,
        _ => return false,
    };
    let mut invalid = 0;
    for c in input {
        invalid |= BASE64URL[usize::from(*c)];
    }
    let last = input.last().map_or(0, |c| BASE64URL[usize::from(*c)]);
    invalid < 64 && last & stray_mask == 0
}

/// What [`scan_claims`] found: the time claims that are numbers but not written as plain
/// integers (`1.9e1`, `1900.5`), as (start, end, whole seconds), to be written as integers.
pub(crate) type TimeSpans = Vec<(usize, usize, u64)>;

/// The kind of a scanned value, as far as the claim types need it.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    String,
    /// A number and whether it is plain digits (no sign, fraction or exponent).
    Number(bool),
    /// An array and whether every item is a string.
    Array(bool),
    Object,
    Other,
}

/// A member name seen in the current objects: its raw text (between the quotes) and whether
/// it holds an escape.
#[derive(Clone, Copy)]
struct Name {
    start: usize,
    end: usize,
    escaped: bool,
}

/// The validating scan: RFC 8259, the depth cap, unique member names at every level (escaped
/// spellings unescaped), and, for a claims set, the registered claims' types — building
/// nothing. Its errors are the strict reader's ([`parse_object`]): the first problem in
/// document order, at the offset where reading stops.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
    max_depth: usize,
    part: Part,
    /// Check the registered claims' types at depth 1 ([`scan_claims`]).
    claims: bool,
    /// Names of the objects being read, innermost last (one stack for every level).
    names: Vec<Name>,
    times: TimeSpans,
    scratch: (Vec<u8>, Vec<u8>),
    /// The top-level members, kept when a reader asks ([`members`]).
    members: Option<Vec<Member>>,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a [u8], max_depth: usize, part: Part, claims: bool) -> Self {
        Scanner {
            s,
            i: 0,
            max_depth,
            part,
            claims,
            names: Vec::with_capacity(16),
            times: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            members: None,
        }
    }

    fn bad(&self) -> DecodeError {
        DecodeError::BadJson {
            part: self.part,
            offset: self.i,
        }
    }

    /// `Err(offset)` of a string or number reader as `bad_json` at that offset.
    fn at(&mut self, offset: usize) -> DecodeError {
        self.i = offset;
        self.bad()
    }

    /// One value and nothing after it but whitespace.
    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn document(&mut self) -> Result<Kind, DecodeError> {
        let kind = self.value(0)?;
        self.ws();
        if self.i != self.s.len() {
            return Err(self.bad());
        }
        Ok(kind)
    }

    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn eat(&mut self, lit: &[u8]) -> Result<Kind, DecodeError> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(Kind::Other)
        } else {
            Err(self.bad())
        }
    }

    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn value(&mut self, depth: usize) -> Result<Kind, DecodeError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{' | b'[') if depth >= self.max_depth => Err(DecodeError::TooDeep {
                part: self.part,
                max: self.max_depth,
            }),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => {
                self.i += 1;
                let mut strings = true;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Kind::Array(true));
                }
                loop {
                    strings &= self.value(depth + 1)? == Kind::String;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Kind::Array(strings));
                        }
                        _ => return Err(self.bad()),
                    }
                }
            }
            Some(b'"') => self.string().map(|_| Kind::String),
            Some(b't') => self.eat(b"true"),
            Some(b'f') => self.eat(b"false"),
            Some(b'n') => self.eat(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let (end, plain) = number_end(self.s, self.i).map_err(|o| self.at(o))?;
                self.i = end;
                Ok(Kind::Number(plain))
            }
            _ => Err(self.bad()),
        }
    }

    /// `{...}`; in a claims set, at depth 1 the registered claims' types are checked too.
    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn object(&mut self, depth: usize) -> Result<Kind, DecodeError> {
        self.i += 1;
        let base = self.names.len();
        // One bit per unescaped name length (mod 64) seen in this object: a name whose bit is
        // clear cannot repeat an unescaped one, so most names are compared with none.
        let (mut lengths, mut any_escaped) = (0u64, false);
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Kind::Object);
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.bad());
            }
            let start = self.i + 1;
            let escaped = self.string()?;
            let name = Name {
                start,
                end: self.i - 1,
                escaped,
            };
            let bit = 1u64 << ((name.end - name.start) % 64);
            if escaped || any_escaped || lengths & bit != 0 {
                for k in base..self.names.len() {
                    if self.same(self.names[k], name) {
                        return Err(self.duplicate(name));
                    }
                }
            }
            lengths |= bit;
            any_escaped |= escaped;
            self.names.push(name);
            self.ws();
            self.eat(b":")?;
            self.ws();
            let value_start = self.i;
            let kind = self.value(depth)?;
            if depth == 1 && self.claims && !self.check_claim(name, kind, value_start) {
                // Only `scan_claims` asks, and it names no error: the full decoder does.
                return Err(self.bad());
            }
            if let (1, Some(members)) = (depth, &mut self.members) {
                members.push(Member {
                    name,
                    start: value_start,
                    end: self.i,
                    kind,
                });
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.names.truncate(base);
                    return Ok(Kind::Object);
                }
                _ => return Err(self.bad()),
            }
        }
    }

    #[cold]
    fn duplicate(&mut self, name: Name) -> DecodeError {
        // The name's literal, quotes included.
        let name = string_text(&self.s[name.start - 1..name.end + 1]);
        DecodeError::Duplicate {
            part: self.part,
            name: truncated(name, 64),
        }
    }

    /// The registered claims' types, as [`crate::claims::Claims`] requires them.
    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn check_claim(&mut self, name: Name, kind: Kind, value_start: usize) -> bool {
        let s = self.s;
        let text: &[u8] = if name.escaped {
            unescape(&s[name.start..name.end], &mut self.scratch.0);
            &self.scratch.0
        } else {
            &s[name.start..name.end]
        };
        match text {
            b"iss" | b"sub" | b"jti" => kind == Kind::String,
            b"aud" => matches!(kind, Kind::String | Kind::Array(true)),
            b"exp" | b"nbf" | b"iat" => {
                let Kind::Number(plain) = kind else {
                    return false;
                };
                let number = &s[value_start..self.i];
                let max = crate::claims::MAX_NUMERIC_DATE;
                if plain && number.len() <= 12 {
                    // Plain digits (`1800000000`): the common case, read directly.
                    let secs = number.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
                    secs <= max
                } else {
                    let Some(secs) = numeric_date(number, max) else {
                        return false;
                    };
                    if !plain {
                        self.times.push((value_start, self.i, secs));
                    }
                    true
                }
            }
            _ => true,
        }
    }

    /// Whether two member names are the same string once unescaped.
    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn same(&mut self, a: Name, b: Name) -> bool {
        let (ra, rb) = (&self.s[a.start..a.end], &self.s[b.start..b.end]);
        if !a.escaped && !b.escaped {
            return ra == rb;
        }
        let (ua, ub) = &mut self.scratch;
        unescape(ra, ua);
        unescape(rb, ub);
        ua == ub
    }

    /// A string at `self.i` (its opening quote); whether it holds an escape.
    #[cfg_attr(tm_fast_scan, optimize(speed))]
    fn string(&mut self) -> Result<bool, DecodeError> {
        let (end, escaped) = string_end(self.s, self.i).map_err(|o| self.at(o))?;
        self.i = end;
        Ok(escaped)
    }
}

/// Four hex digits as a number.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0, |v, d| Some(v * 16 + (*d as char).to_digit(16)?))
}

/// Unescapes the text of a string the scanner accepted (between its quotes) into `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let e = raw.get(i).copied().unwrap_or(b'\\');
        i += 1;
        let c = match e {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = |at: usize| raw.get(at..at + 4).and_then(hex4).unwrap_or(0);
                let mut code = unit(i);
                i += 4;
                if (0xD800..=0xDBFF).contains(&code) {
                    // The scanner checked that an escaped low surrogate follows.
                    code = 0x10000 + ((code - 0xD800) << 10) + (unit(i + 2).wrapping_sub(0xDC00));
                    i += 6;
                }
                char::from_u32(code).unwrap_or('\u{FFFD}')
            }
            other => char::from(other),
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// Checks a claims set's JSON text (UTF-8 already checked) without building it: RFC 8259,
/// one object, nesting within `max_depth`, unique names at every level, and the registered
/// claims of the types [`crate::claims::Claims`] reads. `None` when anything is wrong (the
/// full decoder then names the error); otherwise the time claims to rewrite as integers.
#[cfg_attr(tm_fast_scan, optimize(speed))]
pub(crate) fn scan_claims(json: &[u8], max_depth: usize) -> Option<TimeSpans> {
    let mut scan = Scanner::new(json, max_depth, Part::Claims, true);
    (scan.document().ok()? == Kind::Object).then_some(scan.times)
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
        let one_more = format!("{{\"a\":{}{}}}", "[".repeat(32), "]".repeat(32));
        assert_eq!(
            parse(&one_more).unwrap_err().code(),
            "too_deep",
            "32 levels are the cap"
        );
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
            assert_eq!(numeric_date(text.as_bytes(), max), want, "{text}");
        }
    }

    /// The strict reader as it was before the scan took over its checks (main before issue 16's
    /// second decoding pass), kept as the reference the scan-then-build reader must match,
    /// result and error, offsets included.
    #[cfg(not(target_arch = "wasm32"))]
    mod reference {
        use super::super::truncated;
        use crate::error::{DecodeError, Part};
        use crate::json::Value;

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
                    Some(b'{') | Some(b'[') if depth >= self.max_depth => {
                        Err(DecodeError::TooDeep {
                            part: self.part,
                            max: self.max_depth,
                        })
                    }
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

        /// Parses a segment that must be one JSON object with unique member names (at every level),
        /// nested no deeper than `max_depth`.
        pub(super) fn parse_object(
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
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Mutated texts (bytes inserted, removed, replaced) read exactly as the reference
        /// reads them, with depth caps 32 and 3.
        #[test]
        fn the_reader_matches_the_reference_on_mutated_texts(
            seed in proptest::sample::select(vec![
                r#"{"a":[1,-2.5e3,true,false,null,"x\u00e9\n\ud83d\ude00"],"b":{},"exp":1.5e3}"#,
                r#"{"s":"\"\\\/\b\f\n\r\t\u0041\uD83D\uDE00","n":-0.0e+1,"o":{"p":[{"q":"é"}]}}"#,
                r#"{"a":{"b":{"c":[[[{"d":1,"e":[2,{"f":"\u0066"}]}]]]}},"a\u0062":0,"ab":1}"#,
                r#"[1,{"x":[]},"s"]"#,
            ]),
            edits in proptest::collection::vec(
                (0..3u8, proptest::prelude::any::<proptest::sample::Index>(), proptest::sample::select(
                    b"{}[]\":,\\u0123456789abcdefABCDEF.eE+- \ttrnlsxyz\xc3\xa9\x01".to_vec())),
                1..4),
        ) {
            let mut text = seed.as_bytes().to_vec();
            for (op, at, byte) in edits {
                let i = at.index(text.len() + 1);
                match op {
                    0 if i < text.len() => {
                        text.remove(i);
                    }
                    1 => text.insert(i, byte),
                    _ if i < text.len() => text[i] = byte,
                    _ => {}
                }
            }
            for depth in [32, 3] {
                proptest::prop_assert_eq!(
                    parse_object(&text, depth, Part::Claims),
                    reference::parse_object(&text, depth, Part::Claims),
                    "{}", String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// The table decoder against the base64 crate's strict unpadded URL-safe engine, and
        /// the check without decoding against both.
        #[test]
        fn base64url_decodes_as_the_base64_crate_does(
            text in proptest::collection::vec(proptest::sample::select(
                b"AQgw_-Zz09+/= .\xff".to_vec()), 0..24),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            use base64::Engine;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let encoded = engine.encode(&raw);
            for input in [&text[..], encoded.as_bytes()] {
                let ours = base64url(input, Part::Claims).ok();
                proptest::prop_assert_eq!(&ours, &engine.decode(input).ok(), "{:?}", input);
                proptest::prop_assert_eq!(is_base64url(input), ours.is_some(), "{:?}", input);
            }
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
