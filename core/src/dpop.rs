//! DPoP (RFC 9449): the pure parts of the proofs the browser layer signs.
//!
//! The browser holds the key and signs with WebCrypto; this module decides what is signed
//! (the proof's header and payload, exactly as the wire contract says), what the `htu` of a
//! request is, which nonce goes to which origin, and whether an answer asks for a nonce.
//! No clock and no randomness here: `iat` and `jti` are passed in.

use crate::json::write_string;

/// `typ` of every proof.
pub const PROOF_TYP: &str = "dpop+jwt";

/// Name of the proof header, and of the nonce header servers answer with.
pub const PROOF_HEADER: &str = "DPoP";

/// Header in which a server hands out its current nonce.
pub const NONCE_HEADER: &str = "DPoP-Nonce";

/// The `error` (JSON body, or `WWW-Authenticate` parameter) of an answer that asks for a
/// proof with the server's nonce.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Origins whose nonce is remembered at most; the oldest is forgotten first.
pub const MAX_NONCE_ORIGINS: usize = 8;

/// Longest nonce kept (a server's nonce is a few dozen characters; anything longer is not
/// worth carrying on every request).
pub const MAX_NONCE_LEN: usize = 256;

/// Unpadded base64url (RFC 4648 §5), as JWS segments use it.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The `htu` of a request URL: the absolute URL without its query and fragment
/// (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The origin (`scheme://host[:port]`) of an absolute URL as `Request.url` gives it, or the
/// whole string if it has no path.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// The public half of a P-256 key: the `x` and `y` members of its JWK (base64url).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// `x`
    pub x: String,
    /// `y`
    pub y: String,
}

impl PublicKey {
    /// The key as the proof header's `jwk`: `kty`, `crv`, `x`, `y` only, never a private member.
    pub fn jwk_json(&self) -> String {
        let mut out = String::from(r#"{"kty":"EC","crv":"P-256","x":"#);
        write_string(&self.x, &mut out);
        out.push_str(r#","y":"#);
        write_string(&self.y, &mut out);
        out.push('}');
        out
    }

    /// The JSON whose SHA-256 is the key's RFC 7638 thumbprint (`cnf.jkt`): the required
    /// members in lexicographic order, no whitespace.
    pub fn thumbprint_input(&self) -> String {
        let mut out = String::from(r#"{"crv":"P-256","kty":"EC","x":"#);
        write_string(&self.x, &mut out);
        out.push_str(r#","y":"#);
        write_string(&self.y, &mut out);
        out.push('}');
        out
    }
}

/// What one proof says about its request.
#[derive(Clone, Copy, Debug)]
pub struct ProofClaims<'a> {
    /// A unique identifier (base64url of 16 or more random bytes).
    pub jti: &'a str,
    /// The request method.
    pub htm: &'a str,
    /// The request URL; its query and fragment are dropped here.
    pub url: &'a str,
    /// Seconds since the epoch on the issuer's (estimated) clock.
    pub iat: u64,
    /// base64url SHA-256 of the access token, on resource requests only.
    pub ath: Option<&'a str>,
    /// The server's nonce for this origin, when it handed one.
    pub nonce: Option<&'a str>,
}

/// The JWS signing input of a proof: `base64url(header) "." base64url(payload)`. Sign it with
/// ES256 and pass the raw `r || s` signature to [`compact_proof`].
pub fn signing_input(key: &PublicKey, claims: &ProofClaims<'_>) -> String {
    let mut header = String::from(r#"{"typ":"dpop+jwt","alg":"ES256","jwk":"#);
    header.push_str(&key.jwk_json());
    header.push('}');
    let mut payload = String::from(r#"{"jti":"#);
    write_string(claims.jti, &mut payload);
    payload.push_str(r#","htm":"#);
    write_string(claims.htm, &mut payload);
    payload.push_str(r#","htu":"#);
    write_string(htu(claims.url), &mut payload);
    payload.push_str(r#","iat":"#);
    crate::message::push_decimal(&mut payload, claims.iat);
    for (name, value) in [("ath", claims.ath), ("nonce", claims.nonce)] {
        if let Some(value) = value {
            payload.push_str(",\"");
            payload.push_str(name);
            payload.push_str("\":");
            write_string(value, &mut payload);
        }
    }
    payload.push('}');
    let mut out = base64url(header.as_bytes());
    out.push('.');
    out.push_str(&base64url(payload.as_bytes()));
    out
}

/// The compact proof: the signing input, `"."`, and the base64url signature.
pub fn compact_proof(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    signing_input.push_str(&base64url(signature));
    signing_input
}

/// The `error` parameter of the `DPoP` challenge in a `WWW-Authenticate` header
/// (`DPoP error="use_dpop_nonce", algs="ES256"`), if it has one. Other schemes' challenges
/// in the same header are skipped.
pub fn challenge_error(www_authenticate: &str) -> Option<&str> {
    let mut in_dpop = false;
    let mut rest = www_authenticate;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = rest[name_end..].trim_start_matches([' ', '\t']);
        if let Some(value) = after.strip_prefix('=') {
            // auth-param: name=token or name="quoted"
            let value = value.trim_start_matches([' ', '\t']);
            let (v, tail) = if let Some(q) = value.strip_prefix('"') {
                let mut end = None;
                let mut escaped = false;
                for (i, c) in q.char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end?;
                (&q[..end], &q[end + 1..])
            } else {
                let end = value.find([',', ' ', '\t']).unwrap_or(value.len());
                (&value[..end], &value[end..])
            };
            if in_dpop && name.eq_ignore_ascii_case("error") {
                return Some(v);
            }
            rest = tail;
        } else {
            // A new challenge's scheme.
            in_dpop = name.eq_ignore_ascii_case("DPoP");
            rest = after;
        }
    }
}

/// Whether an answer asks for a new proof with the server's nonce: a 400 (token endpoints) or
/// 401 (resource servers) whose JSON `error` or `WWW-Authenticate` DPoP `error` is
/// `use_dpop_nonce`, carrying a `DPoP-Nonce` to use (RFC 9449 §8, §9).
pub fn asks_for_nonce(
    status: u16,
    has_nonce: bool,
    www_authenticate: Option<&str>,
    json_error: Option<&str>,
) -> bool {
    (status == 400 || status == 401)
        && has_nonce
        && (json_error == Some(USE_DPOP_NONCE)
            || www_authenticate.and_then(challenge_error) == Some(USE_DPOP_NONCE))
}

/// The nonce each origin handed out last (RFC 9449 §8: a nonce is per server).
#[derive(Clone, Debug, Default)]
pub struct Nonces {
    by_origin: Vec<(String, String)>,
}

impl Nonces {
    /// The nonce to put in the next proof for `origin`.
    pub fn get(&self, origin: &str) -> Option<&str> {
        self.by_origin
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, n)| n.as_str())
    }

    /// Notes the `DPoP-Nonce` of any answer from `origin`. An empty, oversized or non-printable
    /// value is ignored (it could not go into a proof); at most [`MAX_NONCE_ORIGINS`] origins
    /// are remembered.
    pub fn observe(&mut self, origin: &str, nonce: Option<&str>) {
        let Some(nonce) = nonce.map(str::trim) else {
            return;
        };
        if nonce.is_empty()
            || nonce.len() > MAX_NONCE_LEN
            || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return;
        }
        self.by_origin.retain(|(o, _)| o != origin);
        if self.by_origin.len() >= MAX_NONCE_ORIGINS {
            self.by_origin.remove(0);
        }
        self.by_origin.push((origin.to_owned(), nonce.to_owned()));
    }

    /// Forgets every nonce (logout).
    pub fn clear(&mut self) {
        self.by_origin.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{base64url as decode, parse_object};
    use crate::{Part, Value};

    fn key() -> PublicKey {
        PublicKey {
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
        }
    }

    fn segment(s: &str, part: Part) -> Vec<(String, Value)> {
        let bytes = decode(s.as_bytes(), part).unwrap();
        parse_object(&bytes, 8, part).unwrap()
    }

    #[test]
    fn base64url_matches_rfc4648_vectors_without_padding() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), out);
        }
        assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
        // The strict decoder reads back whatever is encoded.
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(
            decode(base64url(&bytes).as_bytes(), Part::Signature).unwrap(),
            bytes
        );
    }

    #[test]
    fn htu_drops_the_query_and_the_fragment_only() {
        assert_eq!(
            htu("http://localhost:8080/api/me?x=1#frag"),
            "http://localhost:8080/api/me"
        );
        assert_eq!(htu("https://a.example/p#f?q"), "https://a.example/p");
        assert_eq!(htu("https://a.example/p/"), "https://a.example/p/");
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        assert_eq!(
            origin("http://localhost:8080/auth/refresh?x"),
            "http://localhost:8080"
        );
        assert_eq!(origin("https://api.example"), "https://api.example");
        assert_eq!(origin("https://api.example?q"), "https://api.example");
    }

    #[test]
    fn a_proof_has_the_contracts_header_and_payload() {
        let claims = ProofClaims {
            jti: "abc",
            htm: "POST",
            url: "http://localhost:8080/auth/refresh?next=%2F#top",
            iat: 1_772_539_200,
            ath: None,
            nonce: None,
        };
        let input = signing_input(&key(), &claims);
        let (h, p) = input.split_once('.').unwrap();
        let header = segment(h, Part::Header);
        assert_eq!(
            header.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["typ", "alg", "jwk"]
        );
        assert_eq!(header[0].1.as_str(), Some("dpop+jwt"));
        assert_eq!(header[1].1.as_str(), Some("ES256"));
        let jwk = &header[2].1;
        assert_eq!(jwk.get("kty").and_then(Value::as_str), Some("EC"));
        assert_eq!(jwk.get("crv").and_then(Value::as_str), Some("P-256"));
        assert_eq!(jwk.get("x").and_then(Value::as_str), Some(key().x.as_str()));
        assert_eq!(jwk.get("y").and_then(Value::as_str), Some(key().y.as_str()));
        let Value::Object(members) = jwk else {
            panic!("jwk is an object")
        };
        assert_eq!(members.len(), 4, "only the public members");
        let payload = segment(p, Part::Claims);
        let get = |n: &str| payload.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("jti"), Some(Value::String("abc".into())));
        assert_eq!(get("htm"), Some(Value::String("POST".into())));
        assert_eq!(
            get("htu"),
            Some(Value::String("http://localhost:8080/auth/refresh".into()))
        );
        assert_eq!(get("iat"), Some(Value::Number("1772539200".into())));
        assert_eq!(get("ath"), None, "no ath on the token endpoints");
        assert_eq!(get("nonce"), None);
    }

    #[test]
    fn a_resource_proof_carries_ath_and_the_nonce() {
        let claims = ProofClaims {
            jti: "j",
            htm: "GET",
            url: "https://api.example/me",
            iat: 5,
            ath: Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"),
            nonce: Some("n-\"1"),
        };
        let input = signing_input(&key(), &claims);
        let payload = segment(input.split_once('.').unwrap().1, Part::Claims);
        let get = |n: &str| payload.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(
            get("ath"),
            Some(Value::String(
                "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo".into()
            ))
        );
        assert_eq!(get("nonce"), Some(Value::String("n-\"1".into())));
        let proof = compact_proof(input.clone(), &[1, 2, 3]);
        assert_eq!(proof, format!("{input}.AQID"));
    }

    #[test]
    fn the_thumbprint_input_is_rfc7638_canonical_json() {
        assert_eq!(
            key().thumbprint_input(),
            r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#
        );
    }

    #[test]
    fn the_dpop_challenge_error_is_found_among_other_challenges() {
        assert_eq!(
            challenge_error(r#"DPoP error="use_dpop_nonce", algs="ES256 EdDSA""#),
            Some("use_dpop_nonce")
        );
        assert_eq!(
            challenge_error(
                r#"Bearer realm="x", error="invalid_token", DPoP algs="ES256", error=use_dpop_nonce"#
            ),
            Some("use_dpop_nonce")
        );
        assert_eq!(
            challenge_error(r#"Bearer error="use_dpop_nonce""#),
            None,
            "only the DPoP challenge counts"
        );
        assert_eq!(
            challenge_error(r#"DPoP algs="ES\"256", error="invalid_dpop_proof""#),
            Some("invalid_dpop_proof")
        );
        assert_eq!(challenge_error(r#"DPoP error="unterminated"#), None);
        assert_eq!(challenge_error(""), None);
        assert_eq!(challenge_error("DPoP"), None);
    }

    #[test]
    fn a_nonce_is_asked_for_only_with_the_error_and_a_nonce() {
        let www = Some(r#"DPoP error="use_dpop_nonce""#);
        assert!(asks_for_nonce(401, true, www, None));
        assert!(asks_for_nonce(400, true, None, Some("use_dpop_nonce")));
        assert!(!asks_for_nonce(401, false, www, None), "no nonce to use");
        assert!(!asks_for_nonce(403, true, www, None));
        assert!(!asks_for_nonce(
            401,
            true,
            Some(r#"DPoP error="invalid_dpop_proof""#),
            None
        ));
        assert!(!asks_for_nonce(400, true, None, Some("invalid_dpop_proof")));
    }

    #[test]
    fn nonces_are_remembered_per_origin_and_replaced() {
        let mut n = Nonces::default();
        n.observe("https://a", Some("one"));
        n.observe("https://b", Some(" two "));
        n.observe("https://a", Some("three"));
        assert_eq!(n.get("https://a"), Some("three"));
        assert_eq!(n.get("https://b"), Some("two"));
        assert_eq!(n.get("https://c"), None);
        for bad in ["", "with space", "é", &"x".repeat(MAX_NONCE_LEN + 1)] {
            n.observe("https://a", Some(bad));
        }
        n.observe("https://a", None);
        assert_eq!(n.get("https://a"), Some("three"), "unusable values ignored");
        for i in 0..MAX_NONCE_ORIGINS {
            n.observe(&format!("https://o{i}"), Some("x"));
        }
        assert_eq!(n.get("https://a"), None, "the oldest origin forgotten");
        assert_eq!(n.get("https://o0"), Some("x"));
        n.clear();
        assert_eq!(n.get("https://o0"), None);
    }
}
