//! The attack suite against the pure policy, natively: the same attack tokens as
//! `tests/verify.rs` (browser) and `server/tests/attacks.rs`, run through the steps a verifier
//! takes before and after the signature arithmetic, in its order: the compact JWS
//! (`decode_jws_unverified`, `check_header`, `select_key`, `check_signature_shape`), then the
//! token (`UnverifiedToken::from_jws`, `check_claims`). Each must stop at its own step with its
//! own code, and the JWS steps alone (what `compactVerify` runs) must stop at the same one
//! unless the refusal is about the claims. The signature arithmetic itself (WebCrypto) is
//! tested in the browser suite.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use token_manager_core::dangerous::{decode_jws_unverified, DecodeLimits, UnverifiedToken};
use token_manager_core::verify::{
    check_claims, check_header, check_signature_shape, parse_jwks, select_key, Policy,
};
use token_manager_core::{Algorithm, Timestamp};

const NOW: u64 = 1_800_000_000;
const HEADER: &str = r#"{"alg":"ES256","kid":"issuer-es256","typ":"at+jwt"}"#;
const CLAIMS: &str = r#"{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"nbf":1799999990,"exp":1800000900,"name":"Ada Lovelace","roles":["user"]}"#;
/// The issuer's key set: the fixture keys the browser suite trusts (the policy checks their
/// types, curves, kids and sizes; the arithmetic is WebCrypto's).
fn jwks() -> String {
    let fixtures: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/keys.json")).unwrap();
    let keys: Vec<_> = ["issuer-es256", "issuer-rs256"]
        .iter()
        .map(|name| fixtures[name]["public_jwk"].clone())
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn policy() -> Policy {
    let mut p = Policy::new(vec![Algorithm::ES256, Algorithm::RS256]).unwrap();
    p.issuer = Some("https://issuer.test".into());
    p.audience = Some("api".into());
    p.typ = Some("at+jwt".into());
    p
}

/// A plausible ES256 signature: right length, both halves in range. Its arithmetic is not
/// checked here; only its shape is.
fn sig() -> Vec<u8> {
    [[0x11u8; 32], [0x22u8; 32]].concat()
}

fn token(header: &str, claims: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(claims), b64(signature))
}

/// Codes a token can get only after its JWS passed: the payload as claims, the claims checks.
const CLAIMS_CODES: [&str; 12] = [
    "malformed_token",
    "not_utf8",
    "bad_json",
    "too_deep",
    "not_object",
    "duplicate_claim",
    "claim_type",
    "missing_claim",
    "token_expired",
    "token_not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
];

/// Runs the policy's steps in a verifier's order: the code of the first refusal of the JWS
/// steps, and of the whole token.
fn refusals(token: &str) -> (Option<&'static str>, Option<&'static str>) {
    use token_manager_core::verify::VerifyError;
    let policy = policy();
    let keys = parse_jwks(jwks().as_bytes()).unwrap();
    let limits = DecodeLimits::default();
    let jws = || {
        let t = decode_jws_unverified(token.as_bytes(), &limits)?;
        check_header(&t, &policy)?;
        select_key(&keys, t.header.kid.as_deref(), t.header.alg)?;
        check_signature_shape(t.header.alg, &t.signature)?;
        Ok::<_, VerifyError>(t)
    };
    let whole = || {
        let t = UnverifiedToken::from_jws(jws()?, limits.max_depth)?;
        check_claims(&t.claims, &policy, Timestamp::from_secs(NOW))
    };
    (
        jws().err().map(|e| e.code()),
        whole().err().map(|e| e.code()),
    )
}

fn refusal(token: &str) -> Option<&'static str> {
    refusals(token).1
}

/// The token is refused with `code`; its JWS steps alone refuse it with the same code, or
/// pass it when the refusal is the claims'.
#[track_caller]
fn refused(token: &str, code: &str, what: &str) {
    let (jws, whole) = refusals(token);
    assert_eq!(whole, Some(code), "{what}");
    match jws {
        Some(c) => assert_eq!(c, code, "{what}: the JWS steps refuse it alike"),
        None => assert!(
            CLAIMS_CODES.contains(&code),
            "{what}: the JWS steps pass it, so {code} must be about the claims"
        ),
    }
}

fn with_member(object: &str, member: &str) -> String {
    object.replacen('{', &format!("{{{member},"), 1)
}

#[test]
fn the_unaltered_token_passes_every_step() {
    assert_eq!(refusal(&token(HEADER, CLAIMS, &sig())), None);
}

#[test]
fn alg_none_in_every_spelling_is_unsupported_alg() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","kid":"issuer-es256","typ":"at+jwt"}}"#);
        refused(&token(&header, CLAIMS, &[]), "unsupported_alg", alg);
        refused(&token(&header, CLAIMS, &sig()), "unsupported_alg", alg);
    }
}

#[test]
fn hmac_is_never_allowed_so_a_public_key_cannot_be_an_hs256_secret() {
    let header = r#"{"alg":"HS256","kid":"issuer-rs256","typ":"at+jwt"}"#;
    refused(&token(header, CLAIMS, &[7; 32]), "alg_not_allowed", "HS256");
    assert_eq!(
        Policy::new(vec![Algorithm::RS256, Algorithm::HS256])
            .unwrap_err()
            .code(),
        "invalid_option"
    );
}

#[test]
fn stripped_and_empty_signatures_and_wrong_segment_counts_are_refused() {
    let t = token(HEADER, CLAIMS, &sig());
    let (input, s) = t.rsplit_once('.').unwrap();
    refused(input, "malformed_token", "2 segments");
    refused(&format!("{input}."), "bad_signature", "empty");
    refused(&format!("{input}.{s}.{s}"), "malformed_token", "4 segments");
    refused(&format!("{input}.{s}."), "malformed_token", "4, last empty");
}

#[test]
fn a_kid_with_traversal_sql_or_nothing_is_unknown_kid() {
    for kid in ["../../../../etc/passwd", "' OR '1'='1", ""] {
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
        refused(&token(&header, CLAIMS, &sig()), "unknown_kid", kid);
    }
    // The RSA key's kid with an ES256 header: the key serves only its own algorithm.
    let header = r#"{"alg":"ES256","kid":"issuer-rs256","typ":"at+jwt"}"#;
    refused(
        &token(header, CLAIMS, &sig()),
        "key_mismatch",
        "wrong key type",
    );
}

#[test]
fn a_header_that_carries_or_names_a_key_is_untrusted_key_param() {
    for member in [
        r#""jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#,
        r#""jku":"https://attacker.example/jwks.json""#,
        r#""x5u":"https://attacker.example/cert.pem""#,
        r#""x5c":["MIIB"]"#,
    ] {
        let header = with_member(HEADER, member);
        refused(
            &token(&header, CLAIMS, &sig()),
            "untrusted_key_param",
            member,
        );
    }
}

#[test]
fn ecdsa_signatures_with_zero_or_n_halves_or_in_der_are_bad_signature() {
    let zero = [0u8; 32];
    let one = [1u8; 32];
    for (what, r, s) in [
        ("r = s = 0", zero, zero),
        ("r = 0", zero, one),
        ("s = 0", one, zero),
        ("r = n", P256_N, one),
        ("s = n", one, P256_N),
    ] {
        refused(
            &token(HEADER, CLAIMS, &[r, s].concat()),
            "bad_signature",
            what,
        );
    }
    // DER: SEQUENCE { INTEGER r, INTEGER s } of 32-byte halves, 70 bytes.
    let der = [
        &[0x30, 68, 0x02, 32][..],
        &one,
        &[0x02, 32][..],
        &[0x22; 32][..],
    ]
    .concat();
    refused(&token(HEADER, CLAIMS, &der), "bad_signature", "DER");
}

#[test]
fn an_unknown_crit_extension_is_crit_unsupported() {
    for member in [r#""crit":["exp"]"#, r#""crit":["b64"],"b64":false"#] {
        refused(
            &token(&with_member(HEADER, member), CLAIMS, &sig()),
            "crit_unsupported",
            member,
        );
    }
}

#[test]
fn non_canonical_base64_is_bad_base64() {
    // A filler chosen so the claims' base64url has `-` or `_` and a partial final group.
    let claims = (0..)
        .map(|i| {
            with_member(
                CLAIMS,
                &format!(r#""filler":"{}""#, "?~>".repeat(i % 5) + &"ÿ".repeat(i / 5)),
            )
        })
        .find(|c| {
            let e = b64(c);
            e.len() % 4 != 0 && e.contains(['-', '_'])
        })
        .unwrap();
    let canonical = b64(&claims);
    let h = b64(HEADER);
    let s = b64(sig());
    assert_eq!(refusal(&format!("{h}.{canonical}.{s}")), None);
    let last = canonical.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let stray = alphabet.as_bytes()[alphabet.find(last).unwrap() | 1] as char;
    let mut spaced = canonical.clone();
    spaced.insert(8, ' ');
    for (what, c) in [
        ("padded", URL_SAFE.encode(&claims)),
        (
            "+ and /",
            STANDARD.encode(&claims).trim_end_matches('=').to_owned(),
        ),
        ("a space", spaced),
        (
            "stray trailing bits",
            format!("{}{stray}", &canonical[..canonical.len() - 1]),
        ),
    ] {
        refused(&format!("{h}.{c}.{s}"), "bad_base64", what);
    }
}

#[test]
fn invalid_utf8_is_not_utf8_and_names_given_twice_are_duplicate_claim() {
    let mut bytes = CLAIMS.as_bytes().to_vec();
    bytes[CLAIMS.find("Ada").unwrap()] = 0xff;
    let t = format!("{}.{}.{}", b64(HEADER), b64(&bytes), b64(sig()));
    refused(&t, "not_utf8", "claims");
    for (what, header, claims) in [
        (
            "sub",
            HEADER.to_owned(),
            with_member(CLAIMS, r#""sub":"admin""#),
        ),
        (
            "roles",
            HEADER.to_owned(),
            with_member(CLAIMS, r#""roles":["x"]"#),
        ),
        (
            "alg",
            with_member(HEADER, r#""alg":"none""#),
            CLAIMS.to_owned(),
        ),
    ] {
        refused(&token(&header, &claims, &sig()), "duplicate_claim", what);
    }
}

#[test]
fn wrong_times_issuer_audience_and_typ_have_their_own_codes() {
    let c = |exp: u64, nbf: u64, iss: &str, aud: &str| {
        format!(r#"{{"iss":"{iss}","aud":{aud},"iat":{nbf},"nbf":{nbf},"exp":{exp}}}"#)
    };
    let iss = "https://issuer.test";
    for (what, claims, code) in [
        (
            "expired",
            c(NOW - 61, NOW - 900, iss, r#""api""#),
            "token_expired",
        ),
        (
            "not yet valid",
            c(NOW + 900, NOW + 61, iss, r#""api""#),
            "token_not_yet_valid",
        ),
        (
            "iss",
            c(NOW + 900, NOW, "https://attacker.example", r#""api""#),
            "wrong_issuer",
        ),
        (
            "aud",
            c(NOW + 900, NOW, iss, r#"["a","b"]"#),
            "wrong_audience",
        ),
    ] {
        refused(&token(HEADER, &claims, &sig()), code, what);
    }
    let header = r#"{"alg":"ES256","kid":"issuer-es256","typ":"JWT"}"#;
    refused(&token(header, CLAIMS, &sig()), "wrong_typ", "typ");
}

#[test]
fn a_100_kb_token_is_too_large_before_anything_is_parsed() {
    let claims = with_member(CLAIMS, &format!(r#""filler":"{}""#, "A".repeat(100 * 1024)));
    refused(&token(HEADER, &claims, &sig()), "too_large", "100 KB");
    // Too large wins even over garbage: nothing is parsed first.
    refused(&"\u{ff}.".repeat(40_000), "too_large", "garbage");
}
