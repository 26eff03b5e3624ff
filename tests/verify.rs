//! Signature verification in headless Chromium: tokens signed by the tests themselves with
//! WebCrypto (tests/support/jose.js) and the fixture keys (tests/fixtures/, see its README),
//! checked by `verifyToken`, by `compactVerify` and by a `TokenManager` with the `verify` option.
//!
//! The attack suite: each attack token is built here and must be refused with its own code.
//! Where the refusal must not be a mere signature failure (base64 shapes, duplicate claims,
//! times, `iss`, `aud`, `typ`), the attack token carries a valid signature of the issuer's key.
//! Every attack token also goes through `compactVerify`, which must agree with `verifyToken`
//! on the signature: the same refusal, or a verified signature when `verifyToken`'s refusal
//! is about the claims. Then the key policy of RFC 7518 (weak RSA keys, exponents, EC points
//! off their curve, duplicate `kid`s), JWS payloads that are empty or not UTF-8, and the
//! RFC 7515 Appendix A and RFC 7520 §4 examples. No test sleeps: `currentTime` freezes the
//! clock of `verifyToken`, and manager tests wait for the event they expect.
#![cfg(all(target_arch = "wasm32", feature = "verify"))]

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_token_manager::{compact_verify, verify_token, TokenManager};

mod support;
use support::{call, call_async, free, json, prop, set, track, Guard};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/jose.js")]
extern "C" {
    /// Generates a key pair: resolves `{ privateKey, jwk }` (jwk: the public JWK with kid/alg).
    #[wasm_bindgen(js_name = generateKey)]
    fn generate_key(alg: &str, kid: &str) -> js_sys::Promise;
    /// Signs `claims` (an object) with `header` (an object) using the key pair from generateKey.
    fn sign(key: &JsValue, header: &JsValue, claims: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = generateRsaKey)]
    fn generate_rsa_key(alg: &str, kid: &str, bits: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = importFixture)]
    fn import_fixture(entry: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = signSegments)]
    fn sign_segments_js(key: &JsValue, header: &str, claims: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = signHmacSegments)]
    fn sign_hmac_segments(secret: &[u8], header: &str, claims: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = errorCode)]
    fn error_code(e: &JsValue) -> Option<String>;
    fn announce(channel: &str, token: &str, lifetime_ms: f64);
    #[wasm_bindgen(js_name = nextEvent)]
    fn next_event_promise(target: &JsValue, kind: &str, ms: u32) -> js_sys::Promise;

    type SigningServer;
    #[wasm_bindgen(constructor)]
    fn new(key: &JsValue, lifetime_seconds: f64) -> SigningServer;
    #[wasm_bindgen(method)]
    fn uninstall(this: &SigningServer);
    #[wasm_bindgen(method)]
    fn push(this: &SigningServer, token: &str);
    #[wasm_bindgen(method, js_name = addKey)]
    fn add_key(this: &SigningServer, jwk: &JsValue);
    #[wasm_bindgen(method)]
    fn mint(this: &SigningServer) -> js_sys::Promise;
    #[wasm_bindgen(method, js_name = lastIssued)]
    fn last_issued(this: &SigningServer) -> Option<String>;
    #[wasm_bindgen(method, js_name = lastApiAuthorization)]
    fn last_api_authorization(this: &SigningServer) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = jwksRequests)]
    fn jwks_requests(this: &SigningServer) -> u32;
    #[wasm_bindgen(method, setter, js_name = jwksFail)]
    fn set_jwks_fail(this: &SigningServer, v: bool);
    #[wasm_bindgen(method, setter)]
    fn set_api401(this: &SigningServer, v: u32);
}

async fn key(alg: &str, kid: &str) -> JsValue {
    JsFuture::from(generate_key(alg, kid)).await.unwrap()
}

async fn signed(key: &JsValue, header: &str, claims: &str) -> String {
    JsFuture::from(sign(key, &json(header), &json(claims)))
        .await
        .unwrap()
        .as_string()
        .unwrap()
}

/// `header.claims` segments, given verbatim, signed with `key`.
async fn sign_segments(key: &JsValue, header: &str, claims: &str) -> String {
    JsFuture::from(sign_segments_js(key, header, claims))
        .await
        .unwrap()
        .as_string()
        .unwrap()
}

fn options(key: &JsValue, algs: &str) -> JsValue {
    let o: JsValue = Object::new().into();
    let jwks = Object::new();
    set(
        &jwks,
        "keys",
        js_sys::Array::of1(&Reflect::get(key, &"jwk".into()).unwrap()).into(),
    );
    set(&o, "jwks", jwks.into());
    set(&o, "algorithms", json(algs));
    set(&o, "issuer", "https://issuer.test".into());
    set(&o, "audience", "api".into());
    set(&o, "currentTime", 1_800_000_000_000f64.into());
    o
}

const GOOD: &str =
    r#"{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"exp":1800000900}"#;

async fn verify(token: &str, options: &JsValue) -> Result<JsValue, String> {
    JsFuture::from(verify_token(token.into(), options.clone()))
        .await
        .map_err(|e| error_code(&e).unwrap_or_else(|| format!("{e:?}")))
}

/// `compactVerify`: the payload bytes and the protected header, or the error code.
async fn compact(jws: impl Into<JsValue>, options: &JsValue) -> Result<(Vec<u8>, JsValue), String> {
    let result = JsFuture::from(compact_verify(jws.into(), options.clone()))
        .await
        .map_err(|e| error_code(&e).unwrap_or_else(|| format!("{e:?}")))?;
    let payload: js_sys::Uint8Array = prop(&result, "payload").dyn_into().unwrap();
    Ok((payload.to_vec(), prop(&result, "protectedHeader")))
}

/// The same options without those that check claims: what `compactVerify` takes.
fn without_claims_options(options: &JsValue) -> JsValue {
    let o = Object::assign(&Object::new(), &Object::from(options.clone()));
    for name in ["issuer", "audience", "leewaySeconds", "currentTime"] {
        Reflect::delete_property(&o, &name.into()).unwrap();
    }
    o.into()
}

/// What `verifyToken` can refuse a token for once its signature verified: the token length
/// cap (16 KiB, below `compactVerify`'s 1 MiB), the payload read as claims, the claims checks.
const AFTER_THE_SIGNATURE: [&str; 13] = [
    "too_large",
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

/// `compactVerify` agrees with `verifyToken`'s verdict (`None`: it verified) on the signature:
/// when it refuses, `verifyToken` refused with the same code; when it verifies, it returns
/// exactly the signed payload and `verifyToken`'s refusal, if any, is about the claims.
async fn agree(token: &str, verified: Option<&str>, compact_options: &JsValue, what: &str) {
    match compact(token, compact_options).await {
        Err(code) => assert_eq!(
            verified,
            Some(code.as_str()),
            "{what}: compactVerify refused it with {code}, verifyToken with {verified:?}"
        ),
        Ok((payload, header)) => {
            let segments: Vec<&str> = token.split('.').collect();
            assert_eq!(payload, unb64(segments[1]), "{what}: the payload as signed");
            assert_eq!(
                JSON::stringify(&header).unwrap().as_string().unwrap(),
                JSON::stringify(
                    &JSON::parse(&String::from_utf8(unb64(segments[0])).unwrap()).unwrap()
                )
                .unwrap()
                .as_string()
                .unwrap(),
                "{what}: the protected header as signed"
            );
            if let Some(code) = verified {
                assert!(
                    AFTER_THE_SIGNATURE.contains(&code),
                    "{what}: the signature verified, yet verifyToken refused it with {code}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// base64url, written out here so the attack shapes are exactly what the tests say.

const URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode(bytes: &[u8], alphabet: &[u8], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    encode(bytes.as_ref(), URL_ALPHABET, false)
}

fn unb64(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = URL_ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("base64url") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The attack suite's issuer: fixture keys, a policy and a valid token to start from.

fn fixture(name: &str) -> JsValue {
    prop(&json(include_str!("fixtures/keys.json")), name)
}

async fn fixture_key(name: &str) -> JsValue {
    JsFuture::from(import_fixture(&fixture(name)))
        .await
        .unwrap()
}

const NOW_MS: f64 = 1_800_000_000_000.0;
const HEADER: &str = r#"{"alg":"ES256","kid":"issuer-es256","typ":"at+jwt"}"#;
const CLAIMS: &str = r#"{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"nbf":1799999990,"exp":1800000900,"name":"Ada Lovelace","roles":["user"]}"#;

/// What the application trusts: the two issuer keys inline, ES256 and RS256, `iss`, `aud`
/// and `typ` required, the clock frozen at `NOW_MS`.
fn issuer_options() -> JsValue {
    let jwks = json(r#"{"keys":[]}"#);
    let keys: js_sys::Array = prop(&jwks, "keys").into();
    keys.push(&prop(&fixture("issuer-es256"), "public_jwk"));
    keys.push(&prop(&fixture("issuer-rs256"), "public_jwk"));
    let o = json(
        r#"{"algorithms":["ES256","RS256"],"issuer":"https://issuer.test","audience":"api","typ":"at+jwt"}"#,
    );
    set(&o, "jwks", jwks);
    set(&o, "currentTime", NOW_MS.into());
    o
}

struct Issuer {
    key: JsValue,
    attacker: JsValue,
    options: JsValue,
    compact_options: JsValue,
}

impl Issuer {
    async fn new() -> Self {
        let issuer = Issuer {
            key: fixture_key("issuer-es256").await,
            attacker: fixture_key("attacker-es256").await,
            options: issuer_options(),
            compact_options: without_claims_options(&issuer_options()),
        };
        // The unaltered token verifies: every refusal below is the attack's doing.
        let token = issuer.sign(HEADER, CLAIMS).await;
        let claims = verify(&token, &issuer.options).await.unwrap();
        assert_eq!(prop(&claims, "sub"), "u1");
        agree(&token, None, &issuer.compact_options, "unaltered").await;
        issuer
    }

    /// A token with these JSON texts, validly signed by the issuer.
    async fn sign(&self, header: &str, claims: &str) -> String {
        sign_segments(&self.key, &b64(header), &b64(claims)).await
    }

    /// `verifyToken` refuses `token` with `code`, and `compactVerify` agrees on the signature.
    async fn expect(&self, token: &str, code: &str, what: &str) {
        let got = verify(token, &self.options).await;
        assert_eq!(got.err().as_deref(), Some(code), "{what}");
        agree(token, Some(code), &self.compact_options, what).await;
    }
}

fn with_member(object: &str, member: &str) -> String {
    object.replacen('{', &format!("{{{member},"), 1)
}

// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn tokens_signed_with_each_supported_algorithm_verify() {
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let k = key(alg, "k1").await;
        let header = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"at+jwt"}}"#);
        let token = signed(&k, &header, GOOD).await;
        let o = options(&k, &format!(r#"["{alg}"]"#));
        let claims = verify(&token, &o)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(Reflect::get(&claims, &"sub".into()).unwrap(), "u1", "{alg}");
        let (payload, header) = compact(token.as_str(), &without_claims_options(&o))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(payload, GOOD.as_bytes(), "{alg}");
        assert_eq!(prop(&header, "alg"), alg);
        assert_eq!(prop(&header, "kid"), "k1");
        assert_eq!(prop(&header, "typ"), "at+jwt");
        assert!(Object::is_frozen(header.unchecked_ref::<Object>()), "{alg}");
    }
}

#[wasm_bindgen_test]
async fn an_altered_payload_fails_the_signature() {
    let k = key("ES256", "k1").await;
    let token = signed(&k, r#"{"alg":"ES256","kid":"k1"}"#, GOOD).await;
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(GOOD.replace("u1", "admin")),
        parts[2]
    );
    let o = options(&k, r#"["ES256"]"#);
    assert_eq!(verify(&forged, &o).await.unwrap_err(), "bad_signature");
    agree(
        &forged,
        Some("bad_signature"),
        &without_claims_options(&o),
        "altered",
    )
    .await;
}

#[wasm_bindgen_test]
async fn alg_none_in_every_spelling_is_unsupported_alg() {
    let t = Issuer::new().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","kid":"issuer-es256","typ":"at+jwt"}}"#);
        let unsigned = format!("{}.{}.", b64(&header), b64(CLAIMS));
        t.expect(&unsigned, "unsupported_alg", alg).await;
        t.expect(&t.sign(&header, CLAIMS).await, "unsupported_alg", alg)
            .await;
    }
}

#[wasm_bindgen_test]
async fn an_rs256_public_key_used_as_an_hs256_secret_is_alg_not_allowed() {
    let t = Issuer::new().await;
    let rsa = fixture("issuer-rs256");
    let header = r#"{"alg":"HS256","kid":"issuer-rs256","typ":"at+jwt"}"#;
    let pem = prop(&rsa, "public_pem").as_string().unwrap();
    let jwk = JSON::stringify(&prop(&rsa, "public_jwk"))
        .unwrap()
        .as_string()
        .unwrap();
    let n = unb64(&prop(&prop(&rsa, "public_jwk"), "n").as_string().unwrap());
    for (what, secret) in [
        ("PEM", pem.into_bytes()),
        ("JWK", jwk.into_bytes()),
        ("modulus", n),
    ] {
        let token = JsFuture::from(sign_hmac_segments(&secret, &b64(header), &b64(CLAIMS)))
            .await
            .unwrap()
            .as_string()
            .unwrap();
        t.expect(&token, "alg_not_allowed", what).await;
    }
    // And no application can allow HMAC in the first place.
    let o = issuer_options();
    set(&o, "algorithms", json(r#"["RS256","HS256"]"#));
    assert_eq!(
        verify(&t.sign(HEADER, CLAIMS).await, &o).await.unwrap_err(),
        "invalid_option"
    );
    let token = t.sign(HEADER, CLAIMS).await;
    assert_eq!(
        compact(token.as_str(), &without_claims_options(&o))
            .await
            .unwrap_err(),
        "invalid_option"
    );
}

#[wasm_bindgen_test]
async fn stripped_empty_and_altered_signatures_and_wrong_segment_counts_are_refused() {
    let t = Issuer::new().await;
    let token = t.sign(HEADER, CLAIMS).await;
    let (input, sig) = token.rsplit_once('.').unwrap();
    t.expect(input, "malformed_token", "stripped (2 segments)")
        .await;
    t.expect(&format!("{input}."), "bad_signature", "empty")
        .await;
    let mut altered = unb64(sig);
    altered[10] ^= 0x01;
    t.expect(
        &format!("{input}.{}", b64(&altered)),
        "bad_signature",
        "altered",
    )
    .await;
    t.expect(
        &format!("{input}.{sig}.{sig}"),
        "malformed_token",
        "4 segments",
    )
    .await;
    t.expect(
        &format!("{input}.{sig}."),
        "malformed_token",
        "4 segments, last empty",
    )
    .await;
}

#[wasm_bindgen_test]
async fn a_kid_with_traversal_sql_or_nothing_is_unknown_kid() {
    let t = Issuer::new().await;
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "issuer-es256' --",
        "",
    ] {
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
        t.expect(&t.sign(&header, CLAIMS).await, "unknown_kid", kid)
            .await;
    }
    // The attacker's own key claiming the issuer's kid: the issuer's key does not verify it.
    let forged = sign_segments(&t.attacker, &b64(HEADER), &b64(CLAIMS)).await;
    t.expect(&forged, "bad_signature", "attacker key, issuer kid")
        .await;
}

#[wasm_bindgen_test]
async fn a_header_jwk_or_jku_naming_the_attackers_key_is_untrusted_key_param() {
    let t = Issuer::new().await;
    let jwk = JSON::stringify(&prop(&fixture("attacker-es256"), "public_jwk"))
        .unwrap()
        .as_string()
        .unwrap();
    for kid in ["issuer-es256", "attacker-es256"] {
        let base = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
        for member in [
            format!(r#""jwk":{jwk}"#),
            r#""jku":"https://attacker.example/jwks.json""#.to_owned(),
            r#""x5u":"https://attacker.example/cert.pem""#.to_owned(),
            r#""x5c":["MIIB"]"#.to_owned(),
        ] {
            let header = with_member(&base, &member);
            let token = sign_segments(&t.attacker, &b64(&header), &b64(CLAIMS)).await;
            t.expect(&token, "untrusted_key_param", &member).await;
        }
    }
}

/// Order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

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
        [vec![0x02, body.len() as u8], body].concat()
    }
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[wasm_bindgen_test]
async fn ecdsa_signatures_with_zero_or_n_halves_or_in_der_are_bad_signature() {
    let t = Issuer::new().await;
    let token = t.sign(HEADER, CLAIMS).await;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let good = unb64(sig);
    let (r, s) = good.split_at(32);
    let zero = [0u8; 32];
    // CVE-2022-21449 ("psychic signatures"): r = 0 and s = 0 never reach WebCrypto.
    for (what, r, s) in [
        ("r = s = 0", &zero[..], &zero[..]),
        ("r = 0", &zero[..], s),
        ("s = 0", r, &zero[..]),
        ("r = n", &P256_N[..], s),
        ("s = n", r, &P256_N[..]),
    ] {
        let forged = format!("{input}.{}", b64([r, s].concat()));
        t.expect(&forged, "bad_signature", what).await;
    }
    t.expect(
        &format!("{input}.{}", b64(der(r, s))),
        "bad_signature",
        "DER",
    )
    .await;
}

#[wasm_bindgen_test]
async fn an_unknown_crit_extension_is_crit_unsupported() {
    let t = Issuer::new().await;
    for member in [
        r#""crit":["exp"]"#,
        r#""crit":["b64"],"b64":false"#,
        r#""crit":["urn:x"]"#,
    ] {
        let header = with_member(HEADER, member);
        t.expect(&t.sign(&header, CLAIMS).await, "crit_unsupported", member)
            .await;
    }
}

/// Claims with a filler chosen so their base64url has a `-` or `_` (`+` or `/` in the standard
/// alphabet) and a partial final group (padding, and unused trailing bits).
fn awkward_claims() -> String {
    (0..)
        .map(|i| {
            with_member(
                CLAIMS,
                &format!(
                    r#""filler":"{}""#,
                    "?~>".repeat(i % 5) + &"\u{ff}".repeat(i / 5)
                ),
            )
        })
        .find(|c| {
            let e = b64(c);
            (e.contains('-') || e.contains('_')) && e.len() % 4 != 0
        })
        .unwrap()
}

/// The same segment with a non-zero bit where base64 leaves unused bits at the end.
fn with_stray_trailing_bits(segment: &str) -> String {
    let last = *segment.as_bytes().last().unwrap();
    let value = URL_ALPHABET.iter().position(|c| *c == last).unwrap();
    let out = format!(
        "{}{}",
        &segment[..segment.len() - 1],
        URL_ALPHABET[value | 1] as char
    );
    assert_ne!(out, segment);
    out
}

#[wasm_bindgen_test]
async fn non_canonical_base64_is_bad_base64_even_when_validly_signed() {
    let t = Issuer::new().await;
    let text = awkward_claims();
    let h = b64(HEADER);
    let canonical = b64(&text);
    assert!(
        verify(&sign_segments(&t.key, &h, &canonical).await, &t.options)
            .await
            .is_ok()
    );
    let padded = encode(text.as_bytes(), URL_ALPHABET, true);
    let plus_slash = encode(text.as_bytes(), STD_ALPHABET, false);
    let mut spaced = canonical.clone();
    spaced.insert(canonical.len() / 2, ' ');
    let mut newline = canonical.clone();
    newline.insert(canonical.len() / 2, '\n');
    for (what, claims) in [
        ("padded", padded),
        ("+ and /", plus_slash),
        ("a space", spaced),
        ("a line break", newline),
        ("stray trailing bits", with_stray_trailing_bits(&canonical)),
    ] {
        t.expect(
            &sign_segments(&t.key, &h, &claims).await,
            "bad_base64",
            what,
        )
        .await;
    }
    // The same shapes in the signature (ECDSA is randomized: sign until it has a `-` or `_`).
    let mut token = t.sign(HEADER, CLAIMS).await;
    while !token.rsplit_once('.').unwrap().1.contains(['-', '_']) {
        token = t.sign(HEADER, CLAIMS).await;
    }
    let (input, sig) = token.rsplit_once('.').unwrap();
    t.expect(
        &format!("{input}.{sig}=="),
        "bad_base64",
        "padded signature",
    )
    .await;
    t.expect(
        &format!("{input}.{}", encode(&unb64(sig), STD_ALPHABET, false)),
        "bad_base64",
        "+/ signature",
    )
    .await;
}

#[wasm_bindgen_test]
async fn invalid_utf8_is_not_utf8_and_duplicate_names_are_duplicate_claim() {
    let t = Issuer::new().await;
    let mut bytes = CLAIMS.as_bytes().to_vec();
    let at = CLAIMS.find("Ada").unwrap();
    bytes[at] = 0xff;
    let token = sign_segments(&t.key, &b64(HEADER), &b64(&bytes)).await;
    t.expect(&token, "not_utf8", "claims").await;
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes[HEADER.find("at+jwt").unwrap()] = 0xc0;
    let token = sign_segments(&t.key, &b64(&bytes), &b64(CLAIMS)).await;
    t.expect(&token, "not_utf8", "header").await;

    for (what, header, claims) in [
        (
            "sub twice",
            HEADER.to_owned(),
            with_member(CLAIMS, r#""sub":"admin""#),
        ),
        (
            "roles twice",
            HEADER.to_owned(),
            with_member(CLAIMS, r#""roles":["superuser"]"#),
        ),
        (
            "exp twice",
            HEADER.to_owned(),
            with_member(CLAIMS, r#""exp":4000000000"#),
        ),
        (
            "alg twice",
            with_member(HEADER, r#""alg":"none""#),
            CLAIMS.to_owned(),
        ),
        (
            "kid twice",
            with_member(HEADER, r#""kid":"attacker-es256""#),
            CLAIMS.to_owned(),
        ),
    ] {
        t.expect(&t.sign(&header, &claims).await, "duplicate_claim", what)
            .await;
    }
}

#[wasm_bindgen_test]
async fn validly_signed_tokens_with_wrong_times_issuer_audience_or_typ_are_refused_with_their_code()
{
    let t = Issuer::new().await;
    let now = (NOW_MS / 1000.0) as u64;
    let claims = |exp: u64, nbf: u64, iss: &str, aud: &str| {
        format!(r#"{{"iss":"{iss}","aud":{aud},"sub":"u1","iat":{nbf},"nbf":{nbf},"exp":{exp}}}"#)
    };
    let iss = "https://issuer.test";
    for (what, c, code) in [
        (
            "expired past the leeway",
            claims(now - 61, now - 900, iss, r#""api""#),
            "token_expired",
        ),
        (
            "not yet valid past the leeway",
            claims(now + 900, now + 61, iss, r#""api""#),
            "token_not_yet_valid",
        ),
        (
            "wrong iss",
            claims(now + 900, now, "https://attacker.example", r#""api""#),
            "wrong_issuer",
        ),
        (
            "wrong aud",
            claims(now + 900, now, iss, r#""other-api""#),
            "wrong_audience",
        ),
        (
            "aud list without ours",
            claims(now + 900, now, iss, r#"["a","b"]"#),
            "wrong_audience",
        ),
        (
            "no exp",
            format!(r#"{{"iss":"{iss}","aud":"api"}}"#),
            "missing_claim",
        ),
    ] {
        t.expect(&t.sign(HEADER, &c).await, code, what).await;
    }
    // Within the 60 s leeway both still pass: the codes above are about the time, not the shape.
    let c = claims(now - 59, now - 900, iss, r#""api""#);
    assert!(verify(&t.sign(HEADER, &c).await, &t.options).await.is_ok());
    for typ in [
        r#""typ":"JWT""#,
        r#""typ":"id_token+jwt""#,
        r#""cty":"JWT""#,
    ] {
        let header = with_member(r#"{"alg":"ES256","kid":"issuer-es256"}"#, typ);
        t.expect(&t.sign(&header, CLAIMS).await, "wrong_typ", typ)
            .await;
    }
}

#[wasm_bindgen_test]
async fn a_100_kb_token_is_too_large() {
    let t = Issuer::new().await;
    let claims = with_member(CLAIMS, &format!(r#""filler":"{}""#, "A".repeat(100 * 1024)));
    let token = t.sign(HEADER, &claims).await;
    assert!(token.len() > 100 * 1024);
    t.expect(&token, "too_large", "100 KB").await;
}

// ---------------------------------------------------------------------------------------------
// The TokenManager with `verify`: login, refresh, other tabs, key rotation.

const MANAGER_VERIFY: &str = r#"{"jwksUrl":"/.well-known/jwks.json","algorithms":["ES256"],"issuer":"https://issuer.test","audience":"api","typ":"at+jwt"}"#;

fn verifying_manager(cross_tab: bool, cooldown_ms: Option<u32>) -> JsValue {
    let verify = json(MANAGER_VERIFY);
    if let Some(ms) = cooldown_ms {
        set(&verify, "jwksCooldownMs", ms.into());
    }
    let o = json(&format!(r#"{{"crossTab":{cross_tab}}}"#));
    set(&o, "verify", verify);
    track(TokenManager::new(Some(o)).expect("valid options").into())
}

fn credentials() -> JsValue {
    json(r#"{"username":"demo","password":"demo-password"}"#)
}

fn is_authenticated(m: &JsValue) -> bool {
    call(m, "isAuthenticated", &[]).unwrap().as_bool().unwrap()
}

fn event(m: &JsValue, kind: &str) -> JsFuture {
    JsFuture::from(next_event_promise(m, kind, 5_000))
}

fn channel_name() -> String {
    let location = prop(&js_sys::global(), "location");
    let origin = prop(&location, "origin").as_string().unwrap();
    format!("wasm-token-manager:{origin}/auth/refresh")
}

/// Claims valid now (real time: the manager reads the wall clock), for `jti`.
fn live_claims(jti: &str) -> String {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    format!(
        r#"{{"iss":"https://issuer.test","aud":"api","sub":"user-1","iat":{now},"nbf":{now},"exp":{},"jti":"{jti}"}}"#,
        now + 900
    )
}

/// A live token signed by `key` with `kid` in its header.
async fn live_token(key: &JsValue, kid: &str, jti: &str) -> String {
    let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
    sign_segments(key, &b64(header), &b64(live_claims(jti))).await
}

struct Stage {
    server: SigningServer,
    issuer: JsValue,
    attacker: JsValue,
    _guard: Guard,
}

impl Stage {
    async fn new() -> Self {
        let issuer = fixture_key("issuer-es256").await;
        let server = SigningServer::new(&issuer, 900.0);
        Stage {
            _guard: Guard::new(&server),
            server,
            attacker: fixture_key("attacker-es256").await,
            issuer,
        }
    }

    /// Signed by the attacker, claiming the issuer's kid.
    async fn forged(&self, jti: &str) -> String {
        live_token(&self.attacker, "issuer-es256", jti).await
    }
}

#[wasm_bindgen_test]
async fn a_login_answer_that_fails_verification_is_refused_and_nothing_is_kept() {
    let stage = Stage::new().await;
    let m = verifying_manager(false, None);
    stage.server.push(&stage.forged("forged-login").await);
    let err = call_async(&m, "login", &[credentials()]).await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("bad_signature"));
    assert!(!is_authenticated(&m));
    assert!(call(&m, "claims", &[]).unwrap().is_null());
    assert_eq!(prop(&m, "state"), "signedOut");
    let err = call_async(&m, "fetch", &["/api/me".into()])
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("not_authenticated"));
    // A valid answer is then accepted.
    call_async(&m, "login", &[credentials()]).await.unwrap();
    assert!(is_authenticated(&m));
    free(m);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn a_manager_with_an_inline_key_set_verifies_without_fetching_one() {
    let stage = Stage::new().await;
    let verify = json(
        r#"{"algorithms":["ES256"],"issuer":"https://issuer.test","audience":"api","typ":"at+jwt"}"#,
    );
    set(
        &verify,
        "jwks",
        json(&format!(
            r#"{{"keys":[{}]}}"#,
            JSON::stringify(&prop(&fixture("issuer-es256"), "public_jwk"))
                .unwrap()
                .as_string()
                .unwrap()
        )),
    );
    let o = json(r#"{"crossTab":false}"#);
    set(&o, "verify", verify);
    let m: JsValue = track(TokenManager::new(Some(o)).expect("valid options").into());
    stage.server.push(&stage.forged("forged-inline").await);
    let err = call_async(&m, "login", &[credentials()]).await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("bad_signature"));
    assert!(!is_authenticated(&m));
    call_async(&m, "login", &[credentials()]).await.unwrap();
    assert!(is_authenticated(&m));
    assert_eq!(
        stage.server.jwks_requests(),
        0,
        "the inline set is the only key source"
    );
    free(m);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn a_refresh_answer_that_fails_verification_keeps_the_previous_token() {
    let stage = Stage::new().await;
    for (forged, code) in [
        (stage.forged("forged-refresh").await, "bad_signature"),
        (
            live_token(&stage.attacker, "attacker-es256", "unknown-kid").await,
            "unknown_kid",
        ),
        (
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(live_claims("none"))),
            "unsupported_alg",
        ),
    ] {
        let m = verifying_manager(false, None);
        call_async(&m, "login", &[credentials()]).await.unwrap();
        let first = stage.server.last_issued().unwrap();
        let jti = prop(&call(&m, "claims", &[]).unwrap(), "jti");
        stage.server.push(&forged);
        stage.server.set_api401(1);
        let error = event(&m, "error");
        call_async(&m, "fetch", &["/api/x".into()]).await.unwrap();
        let detail = error.await.unwrap();
        assert_eq!(prop(&detail, "code"), code);
        assert_eq!(prop(&detail, "tokenValid"), true);
        assert_eq!(
            stage.server.last_issued(),
            Some(forged),
            "{code}: it was served"
        );
        assert!(is_authenticated(&m), "{code}");
        assert_eq!(
            prop(&call(&m, "claims", &[]).unwrap(), "jti"),
            jti,
            "{code}"
        );
        call_async(&m, "fetch", &["/api/y".into()]).await.unwrap();
        assert_eq!(
            stage.server.last_api_authorization(),
            Some(format!("Bearer {first}")),
            "{code}: the forged token is never sent"
        );
        free(m);
    }
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn a_forged_token_announced_by_another_tab_is_not_adopted() {
    let stage = Stage::new().await;
    let m = verifying_manager(true, None);
    // A valid announcement is adopted (the listener works), ...
    let login = event(&m, "login");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "tab-1").await,
        900_000.0,
    );
    assert_eq!(prop(&login.await.unwrap(), "source"), "otherTab");
    assert_eq!(prop(&call(&m, "claims", &[]).unwrap(), "jti"), "tab-1");
    // ... forged ones are refused with their code and change nothing.
    for (token, code) in [
        (stage.forged("tab-forged").await, "bad_signature"),
        (
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none"}"#),
                b64(live_claims("tab-none"))
            ),
            "unsupported_alg",
        ),
        (
            live_token(&stage.attacker, "attacker-es256", "tab-kid").await,
            "unknown_kid",
        ),
    ] {
        let error = event(&m, "error");
        announce(&channel_name(), &token, 900_000.0);
        let detail = error.await.unwrap();
        assert_eq!(prop(&detail, "code"), code);
        assert_eq!(prop(&detail, "tokenValid"), true);
        assert_eq!(
            prop(&call(&m, "claims", &[]).unwrap(), "jti"),
            "tab-1",
            "{code}"
        );
    }
    // A signed-out manager is not signed in by a forged announcement either.
    let fresh = verifying_manager(true, None);
    let error = event(&fresh, "error");
    announce(
        &channel_name(),
        &stage.forged("tab-forged-2").await,
        900_000.0,
    );
    let detail = error.await.unwrap();
    assert_eq!(prop(&detail, "code"), "bad_signature");
    assert_eq!(prop(&detail, "tokenValid"), false);
    assert!(!is_authenticated(&fresh));
    free(fresh);
    free(m);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_cooldown() {
    let stage = Stage::new().await;
    // Cooldown 0: every unknown kid refetches, exactly once, never twice.
    let eager = verifying_manager(true, Some(0));
    let login = event(&eager, "login");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "k-0").await,
        900_000.0,
    );
    login.await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 1);
    for i in 1..=3 {
        let error = event(&eager, "error");
        let token = live_token(&stage.attacker, "rotated", &format!("k-{i}")).await;
        announce(&channel_name(), &token, 900_000.0);
        assert_eq!(prop(&error.await.unwrap(), "code"), "unknown_kid");
        assert_eq!(stage.server.jwks_requests(), 1 + i);
    }
    // The issuer rotates: the new key is found by the one refetch.
    let rotated_jwk = prop(&fixture("attacker-es256"), "public_jwk");
    set(&rotated_jwk, "kid", "rotated".into());
    stage.server.add_key(&rotated_jwk);
    let refresh = event(&eager, "refresh");
    announce(
        &channel_name(),
        &live_token(&stage.attacker, "rotated", "k-4").await,
        900_000.0,
    );
    assert_eq!(prop(&refresh.await.unwrap(), "source"), "otherTab");
    assert_eq!(stage.server.jwks_requests(), 5);
    free(eager);

    // Default cooldown (60 s): after the first fetch, unknown kids fetch nothing more.
    let calm = verifying_manager(true, None);
    let before = stage.server.jwks_requests();
    let login = event(&calm, "login");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "c-0").await,
        900_000.0,
    );
    login.await.unwrap();
    assert_eq!(stage.server.jwks_requests(), before + 1);
    for i in 1..=3 {
        let error = event(&calm, "error");
        let token = live_token(&stage.attacker, "unknown", &format!("c-{i}")).await;
        announce(&channel_name(), &token, 900_000.0);
        assert_eq!(prop(&error.await.unwrap(), "code"), "unknown_kid");
    }
    assert_eq!(
        stage.server.jwks_requests(),
        before + 1,
        "no refetch within the cooldown"
    );
    free(calm);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn a_failing_jwks_endpoint_keeps_the_cached_keys() {
    let stage = Stage::new().await;
    let m = verifying_manager(true, Some(0));
    let login = event(&m, "login");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "f-0").await,
        900_000.0,
    );
    login.await.unwrap();
    stage.server.set_jwks_fail(true);
    // An unknown kid refetches, the fetch fails, the known keys stay: unknown_kid, not an outage.
    let error = event(&m, "error");
    announce(
        &channel_name(),
        &live_token(&stage.attacker, "rotated", "f-1").await,
        900_000.0,
    );
    assert_eq!(prop(&error.await.unwrap(), "code"), "unknown_kid");
    assert_eq!(stage.server.jwks_requests(), 2);
    // Tokens of the cached key still verify while the endpoint is down.
    let refresh = event(&m, "refresh");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "f-2").await,
        900_000.0,
    );
    refresh.await.unwrap();
    assert_eq!(prop(&call(&m, "claims", &[]).unwrap(), "jti"), "f-2");
    free(m);

    // With nothing cached, the failure is reported as such.
    let fresh = verifying_manager(true, Some(0));
    let error = event(&fresh, "error");
    announce(
        &channel_name(),
        &live_token(&stage.issuer, "issuer-es256", "f-3").await,
        900_000.0,
    );
    assert_eq!(prop(&error.await.unwrap(), "code"), "jwks_unavailable");
    assert!(!is_authenticated(&fresh));
    free(fresh);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn verify_token_honours_the_jwks_cooldown_on_its_frozen_clock() {
    let stage = Stage::new().await;
    let o = json(MANAGER_VERIFY);
    // Its own URL, so no verifier cached by another test is reused.
    set(&o, "jwksUrl", "/.well-known/jwks.json?cooldown-test".into());
    let at = |offset_s: f64| {
        let o = JSON::parse(&JSON::stringify(&o).unwrap().as_string().unwrap()).unwrap();
        set(&o, "currentTime", (NOW_MS + offset_s * 1000.0).into());
        o
    };
    let valid = stage.server_token(&stage.issuer, "issuer-es256").await;
    let unknown = stage.server_token(&stage.attacker, "rotated").await;
    verify(&valid, &at(0.0)).await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 1);
    for (offset, fetches) in [
        (1.0, 1),
        (59.9, 1),
        (60.0, 2),
        (61.0, 2),
        (119.9, 2),
        (120.0, 3),
    ] {
        assert_eq!(
            verify(&unknown, &at(offset)).await.unwrap_err(),
            "unknown_kid"
        );
        assert_eq!(stage.server.jwks_requests(), fetches, "at +{offset} s");
    }
    // Known kids never refetch, whatever the clock says.
    verify(&valid, &at(500.0)).await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 3);
    stage.server.uninstall();
}

/// `verifyToken`'s options against the stage's JWKS URL (made unique by `tag`, so no verifier
/// cached by another test is reused), the clock frozen at `NOW_MS`, `jwksCooldownMs` as given.
fn remote_options(tag: &str, cooldown_ms: Option<u32>) -> JsValue {
    let o = json(MANAGER_VERIFY);
    set(
        &o,
        "jwksUrl",
        format!("/.well-known/jwks.json?{tag}").into(),
    );
    if let Some(ms) = cooldown_ms {
        set(&o, "jwksCooldownMs", ms.into());
    }
    set(&o, "currentTime", NOW_MS.into());
    o
}

/// The fixture `name`'s public JWK under another `kid`.
fn public_jwk_as(name: &str, kid: &str) -> JsValue {
    let jwk = prop(&fixture(name), "public_jwk");
    set(&jwk, "kid", kid.into());
    jwk
}

#[wasm_bindgen_test]
async fn an_imported_key_is_never_used_after_a_refetched_jwks_dropped_or_replaced_it() {
    let stage = Stage::new().await;
    // Cooldown 0: every unknown kid refetches.
    let o = remote_options("rotation-test", Some(0));
    let old = stage.server_token(&stage.issuer, "issuer-es256").await;
    // Imported once, then verified from the cache without a fetch (the path with no future).
    for _ in 0..3 {
        verify(&old, &o).await.unwrap();
    }
    assert_eq!(stage.server.jwks_requests(), 1);

    // The issuer rotates: its key leaves the set, a new one comes as `rotated`.
    let keys = js_sys::Array::of1(&public_jwk_as("attacker-es256", "rotated"));
    set(stage.server.as_ref(), "jwks", json("{}"));
    set(&prop(stage.server.as_ref(), "jwks"), "keys", keys.into());
    let new = stage.server_token(&stage.attacker, "rotated").await;
    verify(&new, &o).await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 2, "the unknown kid refetched");
    assert_eq!(
        verify(&old, &o).await.unwrap_err(),
        "unknown_kid",
        "the dropped key's import is not used"
    );
    assert_eq!(stage.server.jwks_requests(), 3);

    // The old kid comes back, naming another key: the old key's signature does not verify.
    let keys = js_sys::Array::of1(&public_jwk_as("attacker-es256", "issuer-es256"));
    set(&prop(stage.server.as_ref(), "jwks"), "keys", keys.into());
    assert_eq!(verify(&old, &o).await.unwrap_err(), "bad_signature");
    assert_eq!(stage.server.jwks_requests(), 4);
    let reissued = stage.server_token(&stage.attacker, "issuer-es256").await;
    verify(&reissued, &o).await.unwrap();
    assert_eq!(verify(&old, &o).await.unwrap_err(), "bad_signature");
    assert_eq!(stage.server.jwks_requests(), 4, "known kids never refetch");
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn verify_token_follows_options_changed_on_the_same_object_whatever_current_time_says() {
    let stage = Stage::new().await;
    let o = remote_options("options-test", None);
    let token = stage.server_token(&stage.issuer, "issuer-es256").await;
    verify(&token, &o).await.unwrap();
    // `currentTime` first instead of last, and another value: still the same verifier (the
    // JWKS is not fetched again).
    let first = json(&format!(r#"{{"currentTime":{}}}"#, NOW_MS + 5_000.0));
    let first = Object::assign(&Object::from(first), &Object::from(o.clone()));
    set(&first, "currentTime", (NOW_MS + 5_000.0).into());
    verify(&token, &first).await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 1);

    // The same object, changed between calls: each change takes effect.
    set(&o, "issuer", "https://other.test".into());
    assert_eq!(verify(&token, &o).await.unwrap_err(), "wrong_issuer");
    set(&o, "issuer", "https://issuer.test".into());
    verify(&token, &o).await.unwrap();
    set(&o, "algorithms", json(r#"["RS256"]"#));
    assert_eq!(verify(&token, &o).await.unwrap_err(), "alg_not_allowed");
    set(&o, "algorithms", json(r#"["ES256"]"#));
    set(&o, "currentTime", (NOW_MS + 3_600_000.0).into());
    assert_eq!(verify(&token, &o).await.unwrap_err(), "token_expired");
    // Back to the first options: the first verifier again, no fetch; the changed issuer's
    // verifier fetched its own copy of the set.
    set(&o, "currentTime", NOW_MS.into());
    verify(&token, &o).await.unwrap();
    assert_eq!(stage.server.jwks_requests(), 2);
    stage.server.uninstall();
}

#[wasm_bindgen_test]
async fn concurrent_verifications_each_settle_with_their_own_verdict() {
    let issuer = Issuer::new().await;
    let claims = |jti: usize, exp: u64| {
        format!(
            r#"{{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"exp":{exp},"jti":"c{jti}"}}"#
        )
    };
    let mut inputs = Vec::new();
    for i in 0..16 {
        let valid = issuer.sign(HEADER, &claims(i, 1_800_000_900)).await;
        inputs.push(match i % 4 {
            0 => (valid, format!("c{i}")),
            1 => (
                with_flipped_signature_byte(&valid),
                "bad_signature".to_owned(),
            ),
            2 => (
                issuer.sign(HEADER, &claims(i, 1_799_990_000)).await,
                "token_expired".to_owned(),
            ),
            _ => (valid, claims(i, 1_800_000_900)),
        });
    }
    // Sixteen calls in flight at once (the key is imported: each waits on its own WebCrypto
    // promise): valid tokens, altered signatures, expired claims and compactVerify calls.
    let calls: Vec<_> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, (token, want))| {
            let promise = if i % 4 == 3 {
                compact_verify(token.into(), issuer.compact_options.clone())
            } else {
                verify_token(token.into(), issuer.options.clone())
            };
            (promise, want)
        })
        .collect();
    for (i, (promise, want)) in calls.into_iter().enumerate() {
        let got = match JsFuture::from(promise).await {
            Ok(v) if i % 4 == 3 => {
                let payload: js_sys::Uint8Array = prop(&v, "payload").dyn_into().unwrap();
                String::from_utf8(payload.to_vec()).unwrap()
            }
            Ok(v) => prop(&v, "jti").as_string().unwrap(),
            Err(e) => error_code(&e).unwrap(),
        };
        assert_eq!(got, want, "call {i}");
    }
}

impl Stage {
    /// A token valid around `NOW_MS` (the frozen clock of `verifyToken`).
    async fn server_token(&self, key: &JsValue, kid: &str) -> String {
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
        let claims = r#"{"iss":"https://issuer.test","aud":"api","sub":"u1","iat":1799999990,"exp":1800000900}"#;
        sign_segments(key, &b64(header), &b64(claims)).await
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 7515 Appendix A and RFC 7520 §4 (tests/fixtures/rfc-jws-vectors.json).

fn vectors() -> JsValue {
    json(include_str!("fixtures/rfc-jws-vectors.json"))
}

fn with_flipped_signature_byte(jws: &str) -> String {
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let mut bytes = unb64(sig);
    bytes[7] ^= 0x40;
    format!("{input}.{}", b64(bytes))
}

const EVERY_ALGORITHM: &str =
    r#"["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","EdDSA"]"#;

#[wasm_bindgen_test]
async fn the_rfc_jws_examples_verify_with_their_exact_payload_where_supported_and_are_refused_with_a_code_otherwise(
) {
    let doc = vectors();
    let keys = prop(&doc, "keys");
    let list: js_sys::Array = prop(&doc, "vectors").into();
    let mut checked = Vec::new();
    for v in list.iter() {
        let id = prop(&v, "id").as_string().unwrap();
        let alg = prop(&v, "alg").as_string().unwrap();
        let jws = prop(&v, "jws").as_string().unwrap();
        let payload = prop(&v, "payload").as_string().unwrap();
        let compact_expect = prop(&v, "compact").as_string().unwrap();
        let token_expect = prop(&v, "expect").as_string().unwrap();
        // The example's own key; for HMAC and `none` (no key a public client may hold) the
        // RFC 7520 RSA key, so the set is usable and the refusal is the algorithm's.
        let key = prop(&v, "key")
            .as_string()
            .map(|k| prop(&keys, &k))
            .filter(|k| prop(k, "kty") != "oct")
            .unwrap_or_else(|| prop(&keys, "rfc7520-rsa"));
        let jwks = json(r#"{"keys":[]}"#);
        prop(&jwks, "keys")
            .unchecked_into::<js_sys::Array>()
            .push(&key);
        let o = json(&format!(r#"{{"algorithms":{EVERY_ALGORITHM}}}"#));
        set(&o, "jwks", jwks);

        // compactVerify: the payload bytes exactly as the RFC prints them.
        match compact_expect.as_str() {
            "verify" => {
                let (bytes, header) = compact(jws.as_str(), &o)
                    .await
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(bytes, payload.as_bytes(), "{id}");
                assert_eq!(prop(&header, "alg"), alg.as_str(), "{id}");
                assert_eq!(
                    compact(with_flipped_signature_byte(&jws), &o)
                        .await
                        .unwrap_err(),
                    "bad_signature",
                    "{id}"
                );
            }
            code => assert_eq!(compact(jws.as_str(), &o).await.unwrap_err(), code, "{id}"),
        }

        // verifyToken: the same, then the payload as claims (A.2 and A.3 expire in 2011).
        let o = Object::assign(&Object::new(), &Object::from(o)).into();
        set(&o, "currentTime", 1_300_819_379_000f64.into());
        set(&o, "issuer", "joe".into());
        match token_expect.as_str() {
            "verify" => {
                let claims = verify(&jws, &o)
                    .await
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(prop(&claims, "http://example.com/is_root"), true, "{id}");
            }
            code => assert_eq!(verify(&jws, &o).await.unwrap_err(), code, "{id}"),
        }
        if compact_expect == "verify" {
            // The signature is checked before the payload is read as claims.
            assert_eq!(
                verify(&with_flipped_signature_byte(&jws), &o)
                    .await
                    .unwrap_err(),
                "bad_signature",
                "{id}"
            );
        }
        checked.push(id);
    }
    assert_eq!(checked.len(), 9, "{checked:?}");
}

// ---------------------------------------------------------------------------------------------
// compactVerify on its own: payloads, serializations, options; the key policy of RFC 7518.

/// Options trusting `keys` (public JWKs) for every supported algorithm.
fn trusting(keys: &[JsValue]) -> JsValue {
    let o = json(&format!(
        r#"{{"algorithms":{EVERY_ALGORITHM},"jwks":{{"keys":[]}}}}"#
    ));
    let list: js_sys::Array = prop(&prop(&o, "jwks"), "keys").into();
    for k in keys {
        list.push(k);
    }
    o
}

fn jwk_of(key: &JsValue) -> JsValue {
    prop(key, "jwk")
}

/// A copy of a JWK with `member` set to `value`.
fn with_jwk_member(jwk: &JsValue, member: &str, value: &str) -> JsValue {
    let copy: JsValue = Object::assign(&Object::new(), &Object::from(jwk.clone())).into();
    set(&copy, member, value.into());
    copy
}

#[wasm_bindgen_test]
async fn compact_verify_returns_an_empty_or_non_utf8_payload_exactly_as_signed() {
    let t = Issuer::new().await;
    let h = b64(r#"{"alg":"ES256","kid":"issuer-es256","typ":"at+jwt"}"#);
    let o = &t.compact_options;
    for payload in [
        &b""[..],
        b"\xff\xfe\x00\x80\xc0 not UTF-8",
        b"\xef\xbb\xbfa BOM, then text",
        b"  {\"not\": \"parsed\"} ",
    ] {
        let jws = sign_segments(&t.key, &h, &b64(payload)).await;
        let (bytes, header) = compact(jws.as_str(), o).await.unwrap();
        assert_eq!(bytes, payload, "{payload:?}");
        assert_eq!(prop(&header, "kid"), "issuer-es256");
    }
    // As a token, an empty payload is no claims set, and bytes that are not UTF-8 are not JSON.
    let empty = sign_segments(&t.key, &h, "").await;
    assert_eq!(
        verify(&empty, &t.options).await.unwrap_err(),
        "malformed_token"
    );
    let binary = sign_segments(&t.key, &h, &b64(b"\xff\xfe")).await;
    assert_eq!(verify(&binary, &t.options).await.unwrap_err(), "not_utf8");
    // The signature still covers the payload: an empty payload cannot be swapped for another.
    let (input, sig) = empty.rsplit_once('.').unwrap();
    let swapped = format!("{}{}.{sig}", input, b64("x"));
    assert_eq!(
        compact(swapped.as_str(), o).await.unwrap_err(),
        "bad_signature"
    );
}

#[wasm_bindgen_test]
async fn the_json_serialization_is_not_compact() {
    let t = Issuer::new().await;
    let jws = t.sign(HEADER, CLAIMS).await;
    let parts: Vec<&str> = jws.split('.').collect();
    let flattened = format!(
        r#"{{"protected":"{}","payload":"{}","signature":"{}"}}"#,
        parts[0], parts[1], parts[2]
    );
    let general = format!(
        r#"{{"payload":"{}","signatures":[{{"protected":"{}","signature":"{}"}}]}}"#,
        parts[1], parts[0], parts[2]
    );
    for text in [flattened.clone(), general, format!("\n  {flattened}")] {
        assert_eq!(
            compact(text.as_str(), &t.compact_options)
                .await
                .unwrap_err(),
            "not_compact"
        );
        assert_eq!(verify(&text, &t.options).await.unwrap_err(), "not_compact");
    }
    // The JSON serialization passed as an object.
    assert_eq!(
        compact(json(&flattened), &t.compact_options)
            .await
            .unwrap_err(),
        "not_compact"
    );
    assert_eq!(
        compact(JsValue::from(7), &t.compact_options)
            .await
            .unwrap_err(),
        "invalid_argument"
    );
}

#[wasm_bindgen_test]
async fn compact_verify_gives_each_malformed_shape_its_own_code() {
    let t = Issuer::new().await;
    let jws = t.sign(HEADER, "any payload \u{1F600}").await;
    let parts: Vec<&str> = jws.split('.').collect();
    let (h, p, sig) = (parts[0], parts[1], parts[2]);
    let padded = encode("any payload \u{1F600}".as_bytes(), URL_ALPHABET, true);
    assert!(padded.ends_with('='));
    for (what, text, code) in [
        ("2 segments", format!("{h}.{p}"), "malformed_token"),
        (
            "4 segments",
            format!("{h}.{p}.{sig}.{sig}"),
            "malformed_token",
        ),
        (
            "5 segments (a JWE)",
            format!("{h}.{p}.{sig}.{sig}.{sig}"),
            "malformed_token",
        ),
        ("empty header", format!(".{p}.{sig}"), "malformed_token"),
        ("empty signature", format!("{h}.{p}."), "bad_signature"),
        (
            "padded payload",
            format!("{h}.{padded}.{sig}"),
            "bad_base64",
        ),
        (
            "payload with a space",
            format!("{h}.{} {}.{sig}", &p[..4], &p[4..]),
            "bad_base64",
        ),
        (
            "header not JSON",
            format!("{}.{p}.{sig}", b64("alg=ES256")),
            "bad_json",
        ),
        (
            "header not UTF-8",
            format!("{}.{p}.{sig}", b64([0x7b, 0xff, 0x7d])),
            "not_utf8",
        ),
    ] {
        assert_eq!(
            compact(text.as_str(), &t.compact_options)
                .await
                .unwrap_err(),
            code,
            "{what}"
        );
    }
}

#[wasm_bindgen_test]
async fn a_jws_above_1_mib_is_too_large_and_a_100_kb_one_verifies() {
    let t = Issuer::new().await;
    let h = b64(HEADER);
    let big = sign_segments(&t.key, &h, &b64(vec![b'a'; 100 * 1024])).await;
    assert_eq!(
        compact(big.as_str(), &t.compact_options)
            .await
            .unwrap()
            .0
            .len(),
        100 * 1024
    );
    let huge = sign_segments(&t.key, &h, &b64(vec![b'a'; 1 << 20])).await;
    assert_eq!(
        compact(huge.as_str(), &t.compact_options)
            .await
            .unwrap_err(),
        "too_large"
    );
}

#[wasm_bindgen_test]
async fn rsa_keys_below_2048_bits_are_weak_key_even_when_the_signature_is_valid() {
    for (alg, bits, expect) in [
        ("RS256", 1024, Err("weak_key")),
        ("PS256", 1024, Err("weak_key")),
        ("RS256", 2040, Err("weak_key")),
        ("RS256", 2048, Ok(())),
    ] {
        let k = JsFuture::from(generate_rsa_key(alg, "k1", bits))
            .await
            .unwrap();
        let header = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"at+jwt"}}"#);
        let token = signed(&k, &header, GOOD).await;
        let o = options(&k, &format!(r#"["{alg}"]"#));
        let got = compact(token.as_str(), &without_claims_options(&o)).await;
        assert_eq!(
            got.map(|_| ()),
            expect.map_err(str::to_owned),
            "{alg} {bits}"
        );
        assert_eq!(
            verify(&token, &o).await.map(|_| ()),
            expect.map_err(str::to_owned),
            "{alg} {bits}"
        );
    }
}

#[wasm_bindgen_test]
async fn rsa_public_exponents_below_3_or_even_are_refused_before_webcrypto() {
    let t = Issuer::new().await;
    let rsa = fixture_key("issuer-rs256").await;
    let header = r#"{"alg":"RS256","kid":"issuer-rs256","typ":"at+jwt"}"#;
    let token = sign_segments(&rsa, &b64(header), &b64(CLAIMS)).await;
    let good = trusting(&[jwk_of(&rsa)]);
    assert!(compact(token.as_str(), &good).await.is_ok());
    // e = 1 makes every "signature" its own message: never imported, never used.
    for (e, code) in [
        ("AQ", "weak_key"),
        ("Ag", "weak_key"),
        ("AQAA", "invalid_key"),
    ] {
        let o = trusting(&[with_jwk_member(&jwk_of(&rsa), "e", e)]);
        assert_eq!(
            compact(token.as_str(), &o).await.unwrap_err(),
            code,
            "e = {e}"
        );
    }
    drop(t);
}

#[wasm_bindgen_test]
async fn an_ec_point_off_its_curve_is_refused_by_the_import_as_invalid_key() {
    let t = Issuer::new().await;
    let token = t.sign(HEADER, CLAIMS).await;
    let jwk = prop(&fixture("issuer-es256"), "public_jwk");
    let mut y = unb64(&prop(&jwk, "y").as_string().unwrap());
    y[31] ^= 0x01;
    let off_curve = with_jwk_member(&jwk, "y", &b64(&y));
    let o = trusting(&[off_curve]);
    assert_eq!(
        compact(token.as_str(), &o).await.unwrap_err(),
        "invalid_key"
    );
    set(&o, "issuer", "https://issuer.test".into());
    set(&o, "currentTime", NOW_MS.into());
    assert_eq!(verify(&token, &o).await.unwrap_err(), "invalid_key");
    // A coordinate of the wrong length never reaches WebCrypto.
    let short = with_jwk_member(&jwk, "x", &b64([1u8; 31]));
    assert_eq!(
        compact(token.as_str(), &trusting(&[short]))
            .await
            .unwrap_err(),
        "invalid_key"
    );
}

#[wasm_bindgen_test]
async fn a_key_set_with_duplicate_kids_selects_by_fit_or_refuses_as_ambiguous_kid() {
    let t = Issuer::new().await;
    let rsa = fixture_key("issuer-rs256").await;
    let es_jwk = with_jwk_member(&jwk_of(&t.key), "kid", "dup");
    let rs_jwk = with_jwk_member(&jwk_of(&rsa), "kid", "dup");
    let attacker_jwk = with_jwk_member(&jwk_of(&t.attacker), "kid", "dup");
    let es_token = t.sign(r#"{"alg":"ES256","kid":"dup"}"#, CLAIMS).await;
    let rs_token = sign_segments(&rsa, &b64(r#"{"alg":"RS256","kid":"dup"}"#), &b64(CLAIMS)).await;
    // An RSA and an EC key with one kid: each token finds its own key, in either order.
    for order in [[&es_jwk, &rs_jwk], [&rs_jwk, &es_jwk]] {
        let o = trusting(&[order[0].clone(), order[1].clone()]);
        assert!(compact(es_token.as_str(), &o).await.is_ok());
        assert!(compact(rs_token.as_str(), &o).await.is_ok());
    }
    // Two P-256 keys with one kid: neither is tried, whichever signed, in either order.
    let forged = sign_segments(
        &t.attacker,
        &b64(r#"{"alg":"ES256","kid":"dup"}"#),
        &b64(CLAIMS),
    )
    .await;
    for order in [[&es_jwk, &attacker_jwk], [&attacker_jwk, &es_jwk]] {
        let o = trusting(&[order[0].clone(), order[1].clone()]);
        for token in [&es_token, &forged] {
            assert_eq!(
                compact(token.as_str(), &o).await.unwrap_err(),
                "ambiguous_kid"
            );
        }
        // The RSA token is not ambiguous: only one key with this kid fits RS256.
        let o = trusting(&[order[0].clone(), order[1].clone(), rs_jwk.clone()]);
        assert!(compact(rs_token.as_str(), &o).await.is_ok());
    }
}

#[wasm_bindgen_test]
async fn verify_options_are_checked_when_read_with_messages_that_name_the_problem() {
    let t = Issuer::new().await;
    let token = t.sign(HEADER, CLAIMS).await;
    let message = |e: &JsValue| prop(e, "message").as_string().unwrap_or_default();
    let compact_error = |o: JsValue| {
        let token = token.clone();
        async move {
            JsFuture::from(compact_verify(token.into(), o))
                .await
                .unwrap_err()
        }
    };
    // Claims options are named as such.
    for name in ["issuer", "audience", "leewaySeconds", "currentTime"] {
        let o = without_claims_options(&t.options);
        set(&o, name, "x".into());
        let e = compact_error(o).await;
        assert_eq!(error_code(&e).as_deref(), Some("unknown_option"), "{name}");
        assert!(
            message(&e).contains(&format!("compactVerify.{name}")),
            "{}",
            message(&e)
        );
        assert!(message(&e).contains("verifyToken"), "{}", message(&e));
    }
    // Broken inline key sets: which key, what is wrong, and never a value.
    let secret_d = prop(&prop(&fixture("issuer-es256"), "private_jwk"), "d")
        .as_string()
        .unwrap();
    for (jwks, says) in [
        (json(r#"[]"#), "jwks"),
        (JsValue::from("{\"keys\":[]}"), "jwks"),
        (json(r#"{"keys":{}}"#), "`keys`"),
        (json(r#"{"keys":[]}"#), "no RSA, EC or OKP key"),
        (
            json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
            "no RSA, EC or OKP key",
        ),
        (
            json(&format!(
                r#"{{"keys":[{},{{"kty":"EC","crv":"P-256","d":"{secret_d}"}}]}}"#,
                JSON::stringify(&jwk_of(&t.key))
                    .unwrap()
                    .as_string()
                    .unwrap()
            )),
            "key 1: a public key member",
        ),
    ] {
        for (caller, o) in [
            ("compactVerify", without_claims_options(&t.options)),
            ("verify", t.options.clone()),
        ] {
            set(&o, "jwks", jwks.clone());
            let e = if caller == "verify" {
                JsFuture::from(verify_token(token.clone().into(), o))
                    .await
                    .unwrap_err()
            } else {
                compact_error(o).await
            };
            assert_eq!(error_code(&e).as_deref(), Some("invalid_option"), "{says}");
            assert!(
                message(&e).contains(&format!("{caller}.jwks")),
                "{}",
                message(&e)
            );
            assert!(message(&e).contains(says), "{}", message(&e));
            assert!(!message(&e).contains(&secret_d), "{}", message(&e));
        }
    }
    // The manager's `verify` option reads the same way, in its constructor.
    let o = json(r#"{"verify":{"algorithms":["ES256"],"jwks":{"keys":[{"kty":"RSA"}]}}}"#);
    let e = TokenManager::new(Some(o)).unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("invalid_option"));
    assert!(message(&e).contains("`verify.jwks`: "), "{}", message(&e));
    // Exactly one key source.
    let both = without_claims_options(&t.options);
    set(&both, "jwksUrl", "https://issuer.test/jwks".into());
    assert_eq!(
        error_code(&compact_error(both).await).as_deref(),
        Some("invalid_option")
    );
}

#[wasm_bindgen_test]
async fn compact_verify_fetches_a_remote_key_set_through_jwks_url() {
    let stage = Stage::new().await;
    let o = json(r#"{"jwksUrl":"/.well-known/jwks.json","algorithms":["ES256"]}"#);
    let jws = sign_segments(
        &stage.issuer,
        &b64(r#"{"alg":"ES256","kid":"issuer-es256"}"#),
        &b64("a signed document"),
    )
    .await;
    let (payload, _) = compact(jws.as_str(), &o).await.unwrap();
    assert_eq!(payload, b"a signed document");
    assert_eq!(stage.server.jwks_requests(), 1);
    let forged = sign_segments(
        &stage.attacker,
        &b64(r#"{"alg":"ES256","kid":"issuer-es256"}"#),
        &b64("a signed document"),
    )
    .await;
    assert_eq!(
        compact(forged.as_str(), &o).await.unwrap_err(),
        "bad_signature"
    );
    assert_eq!(stage.server.jwks_requests(), 1, "the cached keys are used");
    stage.server.uninstall();
}
