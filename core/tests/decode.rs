//! Every class of bad token input gets its own stable code, and nothing panics.
#![cfg(not(target_arch = "wasm32"))]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use token_manager_core::dangerous::{decode_unverified, decode_unverified_with, DecodeLimits};
use token_manager_core::{Algorithm, Audience, DecodeError, Part, Value};

fn b64(s: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

const HEADER: &str = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#;

fn token(header: &str, claims: &str) -> String {
    format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
}

fn code_of(token: impl AsRef<[u8]>) -> &'static str {
    decode_unverified(token).unwrap_err().code()
}

fn claims_code(claims: &str) -> &'static str {
    code_of(token(HEADER, claims))
}

#[test]
fn a_well_formed_token_decodes_header_registered_and_other_claims() {
    let t = token(
        HEADER,
        r#"{"iss":"https://issuer","sub":"u1","aud":["api","web"],"exp":1900,"nbf":1000,"iat":1000,"jti":"j","name":"Ada","roles":["admin"]}"#,
    );
    let d = decode_unverified(&t).unwrap();
    assert_eq!(d.header.alg, Algorithm::RS256);
    assert_eq!(d.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(d.header.kid.as_deref(), Some("k1"));
    assert_eq!(d.claims.sub.as_deref(), Some("u1"));
    assert_eq!(d.claims.iss.as_deref(), Some("https://issuer"));
    assert_eq!(
        d.claims.aud,
        Some(Audience::Many(vec!["api".into(), "web".into()]))
    );
    assert_eq!(
        (d.claims.exp, d.claims.nbf, d.claims.iat),
        (Some(1900), Some(1000), Some(1000))
    );
    assert_eq!(d.claims.get("name"), Some(Value::String("Ada".into())));
    assert_eq!(
        d.claims.get("roles"),
        Some(Value::Array(vec![Value::String("admin".into())]))
    );
    assert_eq!(d.signature, b"sig");
    assert_eq!(&t[..d.signing_input_len], t.rsplit_once('.').unwrap().0);
}

#[test]
fn audience_may_be_a_single_string() {
    let d = decode_unverified(token(HEADER, r#"{"aud":"api"}"#)).unwrap();
    assert_eq!(d.claims.aud, Some(Audience::Single("api".into())));
    assert!(d.claims.aud.unwrap().contains("api"));
}

#[test]
fn claims_serialize_back_to_one_flat_object_for_the_ui() {
    let d = decode_unverified(token(HEADER, r#"{"sub":"u1","exp":5,"name":"Ada"}"#)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&d.claims.to_json()).unwrap();
    assert_eq!(v, serde_json::json!({"sub":"u1","exp":5,"name":"Ada"}));
}

/// The exact text the UI's object is parsed from: registered claims first (in RFC 7519's
/// order), written from their fields (strings escaped as RFC 8259 requires, runs of plain
/// characters and escapes mixed, the registered names unescaped), then the others as they
/// came: each name written the same way, each value the token's own text (escapes and
/// whitespace kept), and every segment's base64url length (0, 2 or 3 left over) decoded.
#[test]
fn claims_json_is_written_exactly_with_escapes_between_plain_runs() {
    let claims = r#"{"name":"a\"b\\c\u0001d\te\n\u00e9f😀","jti":"j\u00e9\n","aud":["x","\u0079"],"iat":7,"nbf":6,"exp":1.9e1,"sub":"u","iss":"i","e":[],"\u006f":{ "k" : null },"n":[1, 2.5e3]}"#;
    let expected = r#"{"iss":"i","sub":"u","aud":["x","y"],"exp":19,"nbf":6,"iat":7,"jti":"jé\n","name":"a\"b\\c\u0001d\te\n\u00e9f😀","e":[],"o":{ "k" : null },"n":[1, 2.5e3]}"#;
    for pad in ["", "x", "xy"] {
        let claims = claims.replacen("{", &format!("{{\"p\":\"{pad}\","), 1);
        let expected = expected.replacen(
            r#""jti":"jé\n","#,
            &format!(r#""jti":"jé\n","p":"{pad}","#),
            1,
        );
        let d = decode_unverified(token(HEADER, &claims)).unwrap();
        assert_eq!(d.claims.to_json(), expected);
    }
    let d = decode_unverified(token(HEADER, r#"{"aud":[]}"#)).unwrap();
    assert_eq!(d.claims.to_json(), r#"{"aud":[]}"#);
    let d = decode_unverified(token(HEADER, "{}")).unwrap();
    assert_eq!(d.claims.to_json(), "{}");
}

#[test]
fn fractional_numeric_dates_are_floored() {
    let d = decode_unverified(token(HEADER, r#"{"exp":1900.9,"iat":1.5e3}"#)).unwrap();
    assert_eq!((d.claims.exp, d.claims.iat), (Some(1900), Some(1500)));
}

#[test]
fn too_large_is_checked_before_parsing() {
    let huge = format!("{}.{}.{}", b64(HEADER), "A".repeat(100 * 1024), b64("s"));
    assert_eq!(code_of(&huge), "too_large");
    // Even garbage that would fail every other check is reported as too large first.
    assert_eq!(code_of(vec![0xffu8; 20_000]), "too_large");
    let limits = DecodeLimits {
        max_len: 10,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        decode_unverified_with(token(HEADER, "{}").as_bytes(), &limits),
        Err(DecodeError::TooLarge { max: 10, .. })
    ));
}

#[test]
fn wrong_segment_counts_are_malformed() {
    let h = b64(HEADER);
    let c = b64("{}");
    for (bad, segments) in [
        (String::new(), 1),
        ("abc".to_string(), 1),
        (format!("{h}.{c}"), 2),
        (format!("{h}.{c}.c2ln.c2ln"), 4),
        (format!("{h}.{c}.c2ln."), 4),
        (format!(".{c}.c2ln"), 3),
        (format!("{h}..c2ln"), 3),
    ] {
        assert_eq!(
            decode_unverified(&bad).unwrap_err(),
            DecodeError::Malformed { segments },
            "{bad:?}"
        );
    }
}

#[test]
fn non_utf8_bytes_in_the_token_or_in_a_segment_are_not_utf8() {
    let mut raw = token(HEADER, "{}").into_bytes();
    raw.push(0xff);
    assert_eq!(code_of(&raw), "not_utf8");
    let t = format!(
        "{}.{}.{}",
        b64(HEADER),
        b64([b'{', 0xff, 0xfe, b'}']),
        b64("s")
    );
    assert_eq!(
        decode_unverified(&t).unwrap_err(),
        DecodeError::NotUtf8 {
            part: Some(Part::Claims)
        }
    );
}

#[test]
fn anything_but_strict_unpadded_base64url_is_bad_base64() {
    let h = b64(HEADER);
    let padded = URL_SAFE_NO_PAD.encode("{\"a\":1}") + "=";
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode("{\"a\":\"??>>\"}");
    assert!(standard.contains('/') || standard.contains('+'));
    for claims in [
        padded,
        standard,
        format!("{} ", b64("{}")),
        format!("{}\n", b64("{}")),
        "e30*".to_string(),
        // "e30" is "{}"; "e31" has non-zero trailing bits: a second spelling of the same bytes.
        "e31".to_string(),
    ] {
        assert_eq!(
            code_of(format!("{h}.{claims}.c2ln")),
            "bad_base64",
            "{claims:?}"
        );
    }
    assert_eq!(
        decode_unverified(format!("{h}.e30.c2l=")).unwrap_err(),
        DecodeError::BadBase64 {
            part: Part::Signature
        }
    );
}

#[test]
fn invalid_json_is_bad_json() {
    for claims in ["{", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{} {}"] {
        assert_eq!(claims_code(claims), "bad_json", "{claims}");
    }
    assert_eq!(code_of(token("{", "{}")), "bad_json");
}

#[test]
fn json_nested_ten_thousand_deep_is_too_deep_without_recursion() {
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    // Within the default length cap the size check fires first; lift it to reach the depth check.
    assert_eq!(claims_code(&deep), "too_large");
    let roomy = DecodeLimits {
        max_len: 1 << 20,
        ..DecodeLimits::default()
    };
    assert_eq!(
        decode_unverified_with(token(HEADER, &deep).as_bytes(), &roomy)
            .unwrap_err()
            .code(),
        "too_deep"
    );
    let header = format!(
        r#"{{"alg":"RS256","x":{}{}}}"#,
        "{\"a\":".repeat(40),
        "}".repeat(40)
    );
    assert_eq!(
        decode_unverified(token(&header, "{}")).unwrap_err(),
        DecodeError::TooDeep {
            part: Part::Header,
            max: 32
        }
    );
}

#[test]
fn json_that_is_not_an_object_is_not_object() {
    for claims in ["[1]", "\"sub\"", "123", "null", "true"] {
        assert_eq!(claims_code(claims), "not_object", "{claims}");
    }
}

#[test]
fn duplicate_names_are_refused_in_claims_and_header() {
    assert_eq!(claims_code(r#"{"sub":"a","sub":"b"}"#), "duplicate_claim");
    assert_eq!(
        claims_code(r#"{"exp":1,"exp":99999999999}"#),
        "duplicate_claim"
    );
    assert_eq!(
        code_of(token(r#"{"alg":"RS256","alg":"none"}"#, "{}")),
        "duplicate_claim"
    );
}

#[test]
fn time_claims_of_the_wrong_type_are_errors_never_absent() {
    for claim in ["exp", "nbf", "iat"] {
        for value in [
            "\"123\"",
            "null",
            "[]",
            "{}",
            "true",
            "-1",
            "-0.5",
            "1e20",
            "253402300800",
        ] {
            let claims = format!("{{\"{claim}\":{value}}}");
            assert_eq!(
                decode_unverified(token(HEADER, &claims)).unwrap_err(),
                DecodeError::ClaimType {
                    claim: match claim {
                        "exp" => "exp",
                        "nbf" => "nbf",
                        _ => "iat",
                    },
                    expected: "a non-negative number of seconds no later than year 9999",
                },
                "{claims}"
            );
        }
    }
}

#[test]
fn string_and_audience_claims_of_the_wrong_type_are_claim_type() {
    for claims in [
        r#"{"iss":5}"#,
        r#"{"sub":null}"#,
        r#"{"jti":[]}"#,
        r#"{"aud":5}"#,
        r#"{"aud":["a",1]}"#,
        r#"{"aud":{"a":1}}"#,
    ] {
        assert_eq!(claims_code(claims), "claim_type", "{claims}");
    }
}

#[test]
fn header_parameters_of_the_wrong_type_are_bad_header() {
    for header in [
        r#"{"typ":"JWT"}"#,
        r#"{"alg":5}"#,
        r#"{"alg":"RS256","kid":5}"#,
        r#"{"alg":"RS256","typ":null}"#,
        r#"{"alg":"RS256","crit":"exp"}"#,
        r#"{"alg":"RS256","crit":[]}"#,
        r#"{"alg":"RS256","crit":[1]}"#,
    ] {
        assert_eq!(code_of(token(header, "{}")), "bad_header", "{header}");
    }
}

#[test]
fn none_in_any_spelling_and_unknown_algorithms_are_unsupported() {
    for alg in ["none", "None", "NONE", "nOnE", "", "HS1", "RS256 ", "rs256"] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        assert_eq!(code_of(token(&header, "{}")), "unsupported_alg", "{alg:?}");
    }
}

/// `alg` is read by the names of `verify::algorithm_name` (README "Size", sixth pass): the
/// same names `jsonwebtoken`'s `Algorithm::from_str` accepts, each to the same algorithm.
#[test]
fn alg_accepts_exactly_the_names_jsonwebtoken_parses() {
    use std::str::FromStr;
    let names = [
        "HS256",
        "HS384",
        "HS512",
        "ES256",
        "ES384",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
        "EDDSA",
        "eddsa",
        "ES512",
        "ES256K",
        "Ed25519",
        r"HS256\u0000",
        "none",
    ];
    for alg in names {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let decoded = decode_unverified(token(&header, "{}")).map(|d| d.header.alg);
        let unescaped = alg.replace("\\u0000", "\0");
        match Algorithm::from_str(&unescaped) {
            Ok(expected) => assert_eq!(decoded, Ok(expected), "{alg}"),
            Err(_) => assert_eq!(
                decoded.map_err(|e| e.code()),
                Err("unsupported_alg"),
                "{alg}"
            ),
        }
    }
}

#[test]
fn key_carrying_header_parameters_are_recorded_for_the_policy() {
    let header = r#"{"alg":"RS256","jku":"https://evil/jwks","x5c":["AA"]}"#;
    let d = decode_unverified(token(header, "{}")).unwrap();
    assert_eq!(d.header.key_params, vec!["jku", "x5c"]);
}

#[test]
fn every_error_has_a_distinct_stable_code_and_a_message_without_token_content() {
    let secret_claims = r#"{"sub":"SECRET-SUBJECT","exp":"SECRET-EXP"}"#;
    let err = decode_unverified(token(HEADER, secret_claims)).unwrap_err();
    assert_eq!(err.code(), "claim_type");
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_unverified(&bytes);
    }

    #[test]
    fn arbitrary_segments_never_panic(
        header in "\\PC{0,64}",
        claims in "\\PC{0,128}",
        sig in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let t = format!("{}.{}.{}", b64(&header), b64(&claims), b64(&sig));
        let _ = decode_unverified(&t);
    }

    #[test]
    fn any_integer_exp_in_range_round_trips(exp in 0u64..=253_402_300_799) {
        let d = decode_unverified(token(HEADER, &format!("{{\"exp\":{exp}}}"))).unwrap();
        prop_assert_eq!(d.claims.exp, Some(exp));
    }
}

/// The header and the claims are read from the checked text itself (no tree is built): member
/// names are matched unescaped wherever they are looked up — the registered claims, `alg`,
/// `crit` and its items, the key-carrying parameters — and an array of strings is read item by
/// item, escapes and whitespace included.
#[test]
fn escaped_names_and_items_are_read_unescaped_from_the_checked_text() {
    let header = r#"{ "\u0061lg" : "ES256", "crit" : [ "\u0065xp" , "b" ], "\u006a\u006bu" : "x", "t\u0079p": "at+jwt" }"#;
    let claims = r#"{ "\u0073ub" : "u\u00e9", "aud" : [ "a" , "\u0062" ], "e\u0078p": 1900 , "name" : { "k" : [ 1 , "v" ] } }"#;
    let d = decode_unverified(token(header, claims)).unwrap();
    assert_eq!(d.header.alg, Algorithm::ES256);
    assert_eq!(d.header.crit, Some(vec!["exp".into(), "b".into()]));
    assert_eq!(d.header.key_params, vec!["jku"]);
    assert_eq!(d.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(d.claims.sub.as_deref(), Some("ué"));
    assert_eq!(
        d.claims.aud,
        Some(Audience::Many(vec!["a".into(), "b".into()]))
    );
    assert_eq!(d.claims.exp, Some(1900));
    // The other claims: their text as written, and a tree on demand.
    assert_eq!(d.claims.get_json("name"), Some(r#"{ "k" : [ 1 , "v" ] }"#));
    assert_eq!(
        d.claims.get("name"),
        Some(Value::Object(vec![(
            "k".into(),
            Value::Array(vec![Value::Number("1".into()), Value::String("v".into())])
        )]))
    );
    assert_eq!(d.claims.other_names().collect::<Vec<_>>(), ["name"]);
    assert_eq!(
        d.claims.get("sub"),
        None,
        "registered claims are typed fields"
    );
}
