//! The JWT attack suite against `GET /api/me`: every token is built here, and each attack is
//! refused with `401 invalid_token` and the description naming its own reason.
//!
//! Where an attack needs a *valid* signature to prove the refusal is for the attack and not
//! for the signature (bad base64 shapes, duplicate claims, wrong `iss`/`aud`/`typ`, times),
//! the token is signed with the server's own key through `AppHandle::sign_with_current_key`.
//! The attacker's key comes from `tests/fixtures/keys.json` (see `tests/fixtures/README.md`).
//! Attacks already covered in `api_me.rs` (an altered signature or payload, `alg: none`
//! without the mixed-case spelling, an unknown `kid`, HS256 with the EC public JWK as secret,
//! header `jku`/`x5u`/`crit` added to a real token) are not repeated here.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use token_manager_server::SigningAlgorithm;

const MALFORMED: &str = "the bearer token is not a well-formed JWT";
const WRONG_TYPE: &str = "the token is not an access token (typ must be at+jwt)";
const UNKNOWN_KEY: &str = "the token's kid is not a key of this server";
const WRONG_ALGORITHM: &str = "the token's alg does not match its key";
const BAD_SIGNATURE: &str = "the token's signature does not verify";
const WRONG_ISSUER: &str = "the token was issued by someone else";
const WRONG_AUDIENCE: &str = "the token is meant for another audience";
const EXPIRED: &str = "the token has expired";
const NOT_YET_VALID: &str = "the token is not valid yet";

/// Order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fixture(name: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!("../../tests/fixtures/keys.json")).unwrap();
    all[name].clone()
}

/// The server, a logged-in session, and that session's token split into its parts.
struct Target {
    server: TestServer,
    header: Value,
    claims: Value,
}

impl Target {
    async fn new() -> Self {
        Self::with_algorithm(SigningAlgorithm::Es256).await
    }

    async fn with_algorithm(algorithm: SigningAlgorithm) -> Self {
        let server = TestServer::start_with(|c| c.algorithm = algorithm).await;
        let s = server.login().await;
        // The real token works: every refusal below is the attack's doing.
        assert_eq!(server.me(&s.access_token).await.status, 200);
        Target {
            header: header(&s.access_token),
            claims: claims(&s.access_token),
            server,
        }
    }

    /// `header.claims` (segments given verbatim) signed with the server's key.
    fn sign_segments(&self, header: &str, claims: &str) -> String {
        let input = format!("{header}.{claims}");
        let sig = self
            .server
            .handle
            .sign_with_current_key(input.as_bytes())
            .unwrap();
        format!("{input}.{sig}")
    }

    /// A token with these JSON texts, validly signed by the server's key.
    fn sign_json(&self, header: &str, claims: &str) -> String {
        self.sign_segments(&b64(header), &b64(claims))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_json(&header.to_string(), &claims.to_string())
    }

    #[track_caller]
    fn assert_refused(&self, r: &Response, description: &str, what: &str) {
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "invalid_token", "{what}: {body}");
        assert_eq!(body["error_description"], description, "{what}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }

    async fn expect(&self, token: &str, description: &str, what: &str) {
        let r = self.server.me(token).await;
        self.assert_refused(&r, description, what);
    }
}

#[tokio::test]
async fn alg_none_in_every_spelling_is_malformed() {
    let t = Target::new().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let mut h = t.header.clone();
        h["alg"] = json!(alg);
        let unsigned = format!("{}.{}", b64(h.to_string()), b64(t.claims.to_string()));
        t.expect(&format!("{unsigned}."), MALFORMED, alg).await;
        // The same header with a real signature of the server's key over it.
        t.expect(&t.sign(&h, &t.claims), MALFORMED, alg).await;
    }
}

#[tokio::test]
async fn an_rs256_public_key_used_as_an_hs256_secret_is_the_wrong_algorithm() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let t = Target::with_algorithm(SigningAlgorithm::Rs256).await;
    let jwks = t.server.jwks().await;
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    let component = |name: &str| {
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap())
    };
    let public = rsa::RsaPublicKey::new(component("n"), component("e")).unwrap();
    // The forms a verifier that takes "the key" as bytes might be handed.
    let secrets = [
        public.to_public_key_pem(LineEnding::LF).unwrap(),
        public.to_pkcs1_pem(LineEnding::LF).unwrap(),
        String::from_utf8_lossy(public.to_public_key_der().unwrap().as_bytes()).into_owned(),
        jwk.to_string(),
    ];
    for secret in secrets {
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = t.header["kid"].as_str().map(String::from);
        let token =
            jsonwebtoken::encode(&h, &t.claims, &EncodingKey::from_secret(secret.as_bytes()))
                .unwrap();
        t.expect(&token, WRONG_ALGORITHM, "HS256 with the public key")
            .await;
    }
}

#[tokio::test]
async fn stripped_and_empty_signatures_and_wrong_segment_counts_are_refused() {
    let t = Target::new().await;
    let token = t.sign(&t.header, &t.claims);
    let (input, sig) = token.rsplit_once('.').unwrap();
    t.expect(input, MALFORMED, "signature stripped (2 segments)")
        .await;
    t.expect(&format!("{input}."), BAD_SIGNATURE, "empty signature")
        .await;
    t.expect(
        &format!("{input}.{sig}.{sig}"),
        MALFORMED,
        "4 segments, valid signature in the third",
    )
    .await;
    t.expect(
        &format!("{input}.{sig}."),
        MALFORMED,
        "4 segments, trailing dot",
    )
    .await;
}

#[tokio::test]
async fn a_kid_with_traversal_sql_or_nothing_is_an_unknown_key() {
    let t = Target::new().await;
    for kid in [
        "../../../../etc/passwd",
        "../keys/../current",
        "' OR '1'='1",
        "x' UNION SELECT kid FROM signing_keys --",
        "",
    ] {
        let mut h = t.header.clone();
        h["kid"] = json!(kid);
        t.expect(&t.sign(&h, &t.claims), UNKNOWN_KEY, kid).await;
    }
    // Still serving, and its keys untouched.
    assert_eq!(t.server.jwks().await["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_header_jwk_or_jku_naming_the_attackers_key_is_refused() {
    let t = Target::new().await;
    let attacker = fixture("attacker-es256");
    let key =
        EncodingKey::from_ec_pem(attacker["private_pem"].as_str().unwrap().as_bytes()).unwrap();
    let sign_as_attacker = |h: &Value| {
        let input = format!("{}.{}", b64(h.to_string()), b64(t.claims.to_string()));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        format!("{input}.{sig}")
    };
    let ours = t.header["kid"].clone();
    for kid in [ours, attacker["kid"].clone()] {
        let mut h = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        h["jwk"] = attacker["public_jwk"].clone();
        t.expect(&sign_as_attacker(&h), MALFORMED, "embedded jwk")
            .await;
        let mut h = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        h["jku"] = json!("https://attacker.example/.well-known/jwks.json");
        t.expect(&sign_as_attacker(&h), MALFORMED, "jku").await;
    }
}

#[tokio::test]
async fn ecdsa_signatures_with_zero_or_n_halves_or_in_der_are_refused() {
    let t = Target::new().await;
    let token = t.sign(&t.header, &t.claims);
    let (input, sig) = token.rsplit_once('.').unwrap();
    let good = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(good.len(), 64);
    let (r, s) = good.split_at(32);
    let zero = [0u8; 32];
    // CVE-2022-21449 ("psychic signatures"): r = 0 and s = 0 must never verify.
    for (name, r, s) in [
        ("r = s = 0", &zero[..], &zero[..]),
        ("r = 0", &zero[..], s),
        ("s = 0", r, &zero[..]),
        ("r = n", &P256_N[..], s),
        ("s = n", r, &P256_N[..]),
        ("r = s = n", &P256_N[..], &P256_N[..]),
    ] {
        let forged = format!("{input}.{}", b64([r, s].concat()));
        t.expect(&forged, BAD_SIGNATURE, name).await;
    }
    // The same valid (r, s), DER-encoded as most crypto APIs produce it.
    t.expect(&format!("{input}.{}", b64(der(r, s))), BAD_SIGNATURE, "DER")
        .await;
}

/// ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(x: &[u8]) -> Vec<u8> {
        let x: Vec<u8> = x.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if x.first().is_some_and(|b| b & 0x80 != 0) {
            vec![0]
        } else {
            vec![]
        };
        body.extend_from_slice(&x);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    }
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[tokio::test]
async fn an_unknown_crit_extension_is_refused_even_when_validly_signed() {
    let t = Target::new().await;
    for crit in [
        json!(["exp"]),
        json!(["urn:example:unknown"]),
        json!(["b64"]),
    ] {
        let mut h = t.header.clone();
        h["crit"] = crit.clone();
        h["b64"] = json!(false);
        t.expect(&t.sign(&h, &t.claims), MALFORMED, &crit.to_string())
            .await;
    }
}

/// Claims with a filler claim chosen so that their base64url has a `-` or `_` (which the
/// standard alphabet writes `+` and `/`) and a length that needs padding.
fn awkward_claims(claims: &Value) -> String {
    for i in 0.. {
        let mut c = claims.clone();
        c["filler"] = json!("?".repeat(i % 7) + &"\u{00ff}".repeat(i / 7));
        let text = c.to_string();
        let enc = b64(&text);
        if (enc.contains('-') || enc.contains('_')) && enc.len() % 4 != 0 {
            return text;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn non_canonical_base64_is_refused_even_when_validly_signed() {
    let t = Target::new().await;
    let h = b64(t.header.to_string());
    let text = awkward_claims(&t.claims);
    let c = b64(&text);
    // The canonical form of the same claims is accepted: the shapes below are the only fault.
    assert_eq!(t.server.me(&t.sign_segments(&h, &c)).await.status, 200);

    let padded = STANDARD.encode(&text).replace('+', "-").replace('/', "_");
    assert!(padded.ends_with('='));
    let plus_slash = STANDARD.encode(&text).trim_end_matches('=').to_owned();
    assert!(plus_slash.contains('+') || plus_slash.contains('/'));
    let mut spaced = c.clone();
    spaced.insert(c.len() / 2, ' ');
    let mut tabbed = c.clone();
    tabbed.insert(c.len() / 2, '\t');
    for (what, claims) in [
        ("padded", padded),
        ("+ and /", plus_slash),
        ("a space", spaced),
        ("a tab", tabbed),
        ("stray trailing bits", with_stray_trailing_bits(&c)),
    ] {
        t.expect(&t.sign_segments(&h, &claims), MALFORMED, what)
            .await;
    }
}

/// The same segment with a non-zero bit where base64 leaves unused bits at the end.
fn with_stray_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(segment.len() % 4, 0, "needs a partial final group");
    let last = *segment.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|c| *c == last).unwrap();
    let stray = ALPHABET[value | 1] as char;
    let out = format!("{}{stray}", &segment[..segment.len() - 1]);
    assert_ne!(out, segment);
    // It still decodes to the same bytes for a lenient decoder.
    out
}

#[tokio::test]
async fn invalid_utf8_and_duplicate_claims_are_refused_even_when_validly_signed() {
    let t = Target::new().await;
    let h = b64(t.header.to_string());
    let text = t.claims.to_string();
    // Invalid UTF-8 inside the claims JSON (a lone continuation byte in `name`).
    let mut bytes = text.clone().into_bytes();
    let at = text.find("Demo User").unwrap();
    bytes[at] = 0x80;
    t.expect(
        &t.sign_segments(&h, &b64(&bytes)),
        MALFORMED,
        "invalid UTF-8",
    )
    .await;
    // Invalid UTF-8 in the header.
    let header_bytes = [
        &b"{\"x\":\"\xff\","[..],
        &t.header.to_string().as_bytes()[1..],
    ]
    .concat();
    t.expect(
        &t.sign_segments(&b64(header_bytes), &b64(&text)),
        MALFORMED,
        "invalid UTF-8 in the header",
    )
    .await;

    // The same claim twice: parsers disagree on which one wins, so neither may.
    let sub_twice = text.replacen('{', "{\"sub\":\"other\",", 1);
    t.expect(
        &t.sign_json(&t.header.to_string(), &sub_twice),
        MALFORMED,
        "sub twice",
    )
    .await;
    let roles_twice = text.replacen('{', "{\"roles\":[\"superuser\"],", 1);
    t.expect(
        &t.sign_json(&t.header.to_string(), &roles_twice),
        MALFORMED,
        "roles twice",
    )
    .await;
    let header_text = t.header.to_string();
    let alg_twice = header_text.replacen('{', "{\"alg\":\"HS256\",", 1);
    t.expect(&t.sign_json(&alg_twice, &text), MALFORMED, "alg twice")
        .await;
}

#[tokio::test]
async fn validly_signed_tokens_with_wrong_claims_or_typ_are_refused_for_that_reason() {
    let t = Target::new().await;
    let now = START;
    let with = |name: &str, value: Value| {
        let mut c = t.claims.clone();
        c[name] = value;
        c
    };
    let cases = [
        ("expired", with("exp", json!(now - 1)), EXPIRED),
        ("expired now", with("exp", json!(now)), EXPIRED),
        ("not yet valid", with("nbf", json!(now + 60)), NOT_YET_VALID),
        (
            "wrong iss",
            with("iss", json!("https://attacker.example")),
            WRONG_ISSUER,
        ),
        (
            "wrong aud",
            with("aud", json!("another-api")),
            WRONG_AUDIENCE,
        ),
        (
            "aud list without ours",
            with("aud", json!(["another-api", "third"])),
            WRONG_AUDIENCE,
        ),
    ];
    for (what, claims, description) in cases {
        t.expect(&t.sign(&t.header, &claims), description, what)
            .await;
    }
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("id_token+jwt"),
        Value::Null,
    ] {
        let mut h = t.header.clone();
        if typ.is_null() {
            h.as_object_mut().unwrap().remove("typ");
        } else {
            h["typ"] = typ.clone();
        }
        t.expect(&t.sign(&h, &t.claims), WRONG_TYPE, &typ.to_string())
            .await;
    }
}

#[tokio::test]
async fn a_100_kb_token_is_refused_before_it_is_parsed() {
    let t = Target::new().await;
    let big = with_filler(&t.claims, 100 * 1024);
    let token = t.sign(&t.header, &big);
    assert!(token.len() > 100 * 1024);
    t.expect(&token, MALFORMED, "100 KB").await;
    // Still serving.
    let s = t.server.login().await;
    assert_eq!(t.server.me(&s.access_token).await.status, 200);
}

fn with_filler(claims: &Value, bytes: usize) -> Value {
    let mut c = claims.clone();
    c["filler"] = json!("A".repeat(bytes));
    c
}
