//! `decodeClaims` in headless Chromium: the object it returns is the one `JSON.parse` gives the
//! token's claims (what jose's `decodeJwt` returns), frozen, holding the same claims as the
//! object parsed from `Claims::to_json` (the text it used to parse); every refusal keeps the
//! core's error code, whichever way the token came in: split and decoded by the page
//! (src/js/decode.js, once its header is known) or copied whole into the wasm.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, JsString, Object, Reflect, JSON};
use token_manager_core::dangerous::{decode_jws_unverified, decode_unverified, DecodeLimits};
use token_manager_core::dpop::base64url;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use wasm_token_manager::{decode_claims, page_split};

wasm_bindgen_test_configure!(run_in_browser);

const HEADER: &str = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#;

fn token(claims: &str) -> String {
    format!(
        "{}.{}.{}",
        base64url(HEADER.as_bytes()),
        base64url(claims.as_bytes()),
        base64url(b"sig")
    )
}

/// Deep equality of two JSON-parsed values: the same prototypes, the same own keys (in the same
/// order when `ordered`), and `Object.is` on everything else (so `-0`, `Infinity` and `NaN`
/// count).
fn same(a: &JsValue, b: &JsValue, ordered: bool) -> bool {
    if !(a.is_object() && b.is_object()) {
        return Object::is(a, b);
    }
    if Array::is_array(a) || Array::is_array(b) {
        let (a, b) = (a.unchecked_ref::<Array>(), b.unchecked_ref::<Array>());
        return Array::is_array(a)
            && Array::is_array(b)
            && a.length() == b.length()
            && (0..a.length()).all(|i| same(&a.get(i), &b.get(i), ordered));
    }
    let (a, b) = (a.unchecked_ref::<Object>(), b.unchecked_ref::<Object>());
    if Object::get_prototype_of(a) != Object::get_prototype_of(b) {
        return false;
    }
    let (ka, kb) = (Object::keys(a), Object::keys(b));
    if !ordered {
        ka.sort();
        kb.sort();
    }
    ka.length() == kb.length()
        && (0..ka.length()).all(|i| {
            let k = ka.get(i);
            k == kb.get(i)
                && same(
                    &Reflect::get(a, &k).unwrap(),
                    &Reflect::get(b, &k).unwrap(),
                    ordered,
                )
        })
}

fn code(e: &JsValue) -> Option<String> {
    Reflect::get(e, &"code".into()).ok()?.as_string()
}

/// Claims that pass every check: escapes, unicode, big and odd numbers, `__proto__`, integer-
/// like names (which `JSON.parse` orders first), nested objects, registered claims anywhere.
const ACCEPTED: &[&str] = &[
    r#"{}"#,
    r#"{"sub":"u1","name":"Ada","exp":99}"#,
    r#"{"name":"a\"b\\c\u0001d\te\n\u00e9f😀\/","jti":"j","aud":["x","y"],"iat":7,"nbf":6,"exp":19,"sub":"u","iss":"i","e":[],"o":{"k":null}}"#,
    r#" { "exp" : 1800000000 , "aud" : [ ] , "n" : -0.0e-0 , "big" : 123456789012345678901234567890 , "huge" : 1e400 , "tiny" : -1E-400 , "pi": 3.14159265358979323846264338327950288 } "#,
    r#"{"__proto__":{"admin":true},"constructor":1,"toString":"x","1":"one","0":"zero","":""}"#,
    r#"{"\u0073ub":"escaped name","\u0065xp":5,"a\ud83d\ude00":"pair","é":"é","\u00e9x":"\u00E9"}"#,
    r#"{"o":{"p":{"q":[{"r":[[],{}]}]}},"s":"\u0000\u001f\u2028\u2029\ud800\udc00","t":[true,false,null]}"#,
    r#"{"iss":"","sub":"","aud":"","exp":0,"nbf":0,"iat":253402300799,"jti":""}"#,
];

#[wasm_bindgen_test]
fn decode_claims_returns_what_json_parse_gives_the_tokens_claims_frozen() {
    for claims in ACCEPTED {
        let t = token(claims);
        let got = decode_claims(t.clone().into()).unwrap();
        assert!(Object::is_frozen(got.unchecked_ref::<Object>()), "{claims}");
        // Exactly what `JSON.parse` of the payload (jose's `decodeJwt`) gives, key order too.
        let payload = JSON::parse(claims).unwrap();
        assert!(same(&got, &payload, true), "{claims}");
        // The same claims as the object parsed from the text the core writes back.
        let written = decode_unverified(&t).unwrap().claims.to_json();
        assert!(
            same(&got, &JSON::parse(&written).unwrap(), false),
            "{claims}"
        );
    }
}

#[wasm_bindgen_test]
fn time_claims_that_are_not_plain_integers_read_as_their_whole_seconds() {
    for claims in [
        r#"{"exp":1.9e1,"a":1.5}"#,
        r#"{"x":0,"iat":1500.9,"nbf":15E2,"exp":1.8e9}"#,
    ] {
        let t = token(claims);
        let got = decode_claims(t.clone().into()).unwrap();
        let written = decode_unverified(&t).unwrap().claims.to_json();
        assert!(
            same(&got, &JSON::parse(&written).unwrap(), false),
            "{claims}"
        );
    }
    let got = decode_claims(token(r#"{"exp":1900.9}"#).into()).unwrap();
    assert_eq!(Reflect::get(&got, &"exp".into()).unwrap(), 1900);
}

#[wasm_bindgen_test]
fn refusals_keep_the_core_error_codes_for_any_string() {
    let header = base64url(HEADER.as_bytes());
    let claims = base64url(br#"{"sub":"u"}"#);
    let unicode_claims = format!("{header}.{}.", base64url("{\"a\":\"é\"}".as_bytes()));
    let cases: Vec<String> = vec![
        "a.b".into(),
        format!("{header}.{claims}.c2ln.x"),
        format!("{header}.{claims}=.c2ln"),
        format!("{header}.{claims}.c2l"),
        format!("{header}.{}.", base64url(br#"{"a":1,"a":2}"#)),
        format!("{header}.{}.", base64url(br#"{"exp":"1"}"#)),
        format!("{header}.{}.", base64url(br#"{"aud":["a",1]}"#)),
        format!("{}.{claims}.", base64url(br#"{"alg":"none"}"#)),
        // Not ASCII: read through the ordinary string copy, same errors.
        format!("é{header}.{claims}."),
        format!("{header}.{claims}.é"),
        format!("{header}.{claims}.😀"),
        // Too long for the fast copy.
        format!("{header}.{}.", "a".repeat(20_000)),
        "é".repeat(9_000),
    ];
    for t in cases {
        let want = decode_unverified(&t).unwrap_err().code();
        let e = decode_claims(t.clone().into()).unwrap_err();
        assert_eq!(code(&e).as_deref(), Some(want), "{t:.60}");
    }
    // A string the fast copy takes decodes like the one the ordinary copy takes.
    let got = decode_claims(unicode_claims.clone().into()).unwrap();
    assert_eq!(Reflect::get(&got, &"a".into()).unwrap(), "é");
    // A lone surrogate (not UTF-8 at all) and a non-string.
    let lone: JsValue = JsString::from_char_code1(0xD800).into();
    assert_eq!(
        code(&decode_claims(lone).unwrap_err()).as_deref(),
        Some("malformed_token")
    );
    assert_eq!(
        code(&decode_claims(JsValue::from(5)).unwrap_err()).as_deref(),
        Some("invalid_argument")
    );
}

/// The outcome the core gives `t`: its claims as `JSON.parse` of the text it writes, or its
/// error code.
/// The page's split on its own (with HEADER remembered by a decode before): whatever it
/// decodes is the claims segment exactly as the core decodes it, and it takes every token the
/// core accepts (so the tests saw its answers, not only the core's).
fn page_split_agrees(cases: &[String]) {
    for t in cases {
        match page_split(&t.into()) {
            Some(bytes) => {
                let jws = decode_jws_unverified(t.as_bytes(), &DecodeLimits::default())
                    .unwrap_or_else(|e| panic!("{t:.80}: the page took it, the core says {e:?}"));
                assert_eq!(bytes, jws.payload, "{t:.80}");
            }
            None => assert!(
                decode_unverified(t).is_err(),
                "{t:.80}: the page refused a good token"
            ),
        }
    }
}

fn core_outcome(t: &str) -> Result<JsValue, String> {
    decode_unverified(t)
        .map(|d| JSON::parse(&d.claims.to_json()).unwrap())
        .map_err(|e| e.code().to_string())
}

/// Asserts `decodeClaims(t)` agrees with the core on `t`: the same claims or the same code.
fn agrees(t: &str) {
    match (decode_claims(t.into()), core_outcome(t)) {
        (Ok(got), Ok(want)) => assert!(same(&got, &want, false), "{t:.80}"),
        (Err(e), Err(want)) => assert_eq!(code(&e).as_deref(), Some(&*want), "{t:.80}"),
        (got, want) => panic!("{t:.80}: decodeClaims {got:?}, core {want:?}"),
    }
}

#[wasm_bindgen_test]
fn once_a_header_is_known_the_page_side_split_refuses_what_the_core_refuses() {
    // After this, tokens with HEADER take the page's split and native base64 (src/js/decode.js).
    decode_claims(token(r#"{"sub":"u"}"#).into()).unwrap();
    let cases = split_cases();
    for t in &cases {
        agrees(t);
    }
    page_split_agrees(&cases);
}

#[wasm_bindgen_test]
fn without_set_from_base64_the_page_side_split_decodes_with_atob_and_refuses_the_same() {
    // A browser before `Uint8Array.prototype.setFromBase64` (Safari 18.2, Chromium 140).
    let proto: JsValue = Object::get_prototype_of(&js_sys::Uint8Array::new_with_length(0)).into();
    let name: JsValue = "setFromBase64".into();
    let native = Reflect::get(&proto, &name).unwrap();
    assert!(native.is_function(), "this Chromium has setFromBase64");
    assert!(Reflect::delete_property(proto.unchecked_ref::<Object>(), &name).unwrap());
    decode_claims(token(r#"{"sub":"u"}"#).into()).unwrap();
    let cases = split_cases();
    for t in &cases {
        agrees(t);
    }
    page_split_agrees(&cases);
    Reflect::set(&proto, &name, &native).unwrap();
    let good = cases
        .iter()
        .filter(|t| decode_unverified(t).is_ok())
        .count();
    assert!(good > 100, "{good} of {} cases decode", cases.len());
}

/// Tokens with HEADER that the page's split looks at: valid ones and every kind of malformed
/// segment after the header.
fn split_cases() -> Vec<String> {
    let header = base64url(HEADER.as_bytes());
    let claims = base64url(br#"{"sub":"u","exp":1800000000}"#);
    let sig = base64url(b"signature!");
    let mut cases = vec![
        format!("{header}.{claims}.{sig}"),
        format!("{header}.{claims}."),
        format!("{header}.{claims}"),
        format!("{header}..{sig}"),
        format!("{header}.{claims}.{sig}.x"),
        format!("{header}.{claims}.{sig}="),
        format!("{header}.{claims}=.{sig}"),
        format!("{header}.{claims}==.{sig}"),
        format!("{header}. {claims}.{sig}"),
        format!("{header}.{claims} .{sig}"),
        format!("{header}.{claims}\n.{sig}"),
        format!("{header}.{claims}.{sig}\n"),
        format!("{header}.{claims}.si g"),
        format!("{header}.{}.{sig}", claims.replace('i', "+")),
        format!("{header}.{}.{sig}", claims.replace('i', "/")),
        format!("{header}.{claims}x.{sig}"),
        format!("{header}.{claims}.{sig}x"),
        format!("{header}.{}.", "a".repeat(16_384)),
        format!(
            "{header}.{}.",
            base64url(&[b'{', b'"', b'a', b'"', b':', b'"', 0xC3, b'"', b'}'])
        ),
        format!("{header}.{}.", base64url(br#"{"a":1,"a":2}"#)),
        format!("{header}.{}.", base64url(br#"{"exp":1.9e1}"#)),
        format!("{header}.{}.", base64url(br#"{"a":"\t"}"#)),
        format!("{header}.{}.", base64url(b"[]")),
        format!("{header}.{}.", base64url("{\"n\":\"é😀\"}".as_bytes())),
        format!("{header}x.{claims}."),
        format!("{}.{claims}.", &header[..header.len() - 1]),
    ];
    // Every last character of segments that end in a partial group (2 and 3 characters):
    // only 4 of the 64 (or 16) are canonical there.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let partial = [
        (base64url(br#"{"sub":"u123"}"#), base64url(b"sig1")),
        (base64url(br#"{"sub":"u12"}"#), base64url(b"sig12")),
    ];
    for (claims, sig) in &partial {
        for last in alphabet.chars() {
            cases.push(format!(
                "{header}.{}{last}.{sig}",
                &claims[..claims.len() - 1]
            ));
            cases.push(format!("{header}.{claims}.{}{last}", &sig[..sig.len() - 1]));
        }
    }
    // One character replaced anywhere past the header, from a set that holds each kind of
    // trouble, with a fixed-seed generator so a failure repeats.
    let base = format!("{header}.{claims}.{sig}");
    let pool: Vec<char> = "AQgwz09_-+/= \t\n.é\u{0}".chars().collect();
    let mut seed = 0x2545_f491_u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize
    };
    for _ in 0..1500 {
        let at = header.len() + next() % (base.len() - header.len());
        let with: String = pool[next() % pool.len()].into();
        let mut t = base.clone();
        t.replace_range(at..at + 1, &with);
        cases.push(t);
    }
    cases
}
