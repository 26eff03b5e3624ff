//! `ClaimsJsonDecoder` and `claims_json_unverified` (behind `decodeClaims`) hand `JSON.parse`
//! the token's own claims text: they accept and refuse exactly what `decode_unverified` does,
//! with the same errors, and the text holds the same claims `Claims::to_json` writes, in the
//! token's member order.
#![cfg(not(target_arch = "wasm32"))]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use token_manager_core::dangerous::{
    claims_from_json_unverified, claims_json_unverified, decode_unverified, ClaimsJsonDecoder,
    DecodeLimits,
};

const HEADER: &str = r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#;

fn token(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode("sig")
    )
}

/// The two decoders agree on `token`: the same error, or texts that read as the same claims.
/// Returns the fast text when both accept.
fn agree(token: &[u8]) -> Option<String> {
    let fast = ClaimsJsonDecoder::new().decode(token);
    // The decoder without a fast path gives the same, error or text.
    assert_eq!(
        claims_json_unverified(token),
        fast,
        "{}",
        String::from_utf8_lossy(token)
    );
    let full = decode_unverified(token);
    match (fast, full) {
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{}", String::from_utf8_lossy(token));
            None
        }
        (Ok(json), Ok(full)) => {
            let read = claims_from_json_unverified(json.as_bytes(), &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("{json}: {e:?}"));
            assert_eq!(read, full.claims, "{json}");
            // And the text the UI used to get reads the same.
            let written = full.claims.to_json();
            let reread =
                claims_from_json_unverified(written.as_bytes(), &DecodeLimits::default()).unwrap();
            assert_eq!(read, reread, "{json} vs {written}");
            Some(json)
        }
        (fast, full) => panic!(
            "{}: claims_json_unverified {fast:?}, decode_unverified {full:?}",
            String::from_utf8_lossy(token)
        ),
    }
}

/// Claims texts that pass every check, with plain integer time claims: the text `JSON.parse`
/// gets is the token's own, byte for byte — escapes, unicode, big and odd numbers,
/// `__proto__`, nested objects, registered claims in any order, escaped registered names.
const ACCEPTED: &[&str] = &[
    r#"{}"#,
    r#"{"sub":"u1","name":"Ada","exp":99}"#,
    r#"{"name":"a\"b\\c\u0001d\te\n\u00e9f😀\/","jti":"j","aud":["x","y"],"iat":7,"nbf":6,"exp":19,"sub":"u","iss":"i","e":[],"o":{"k":null}}"#,
    r#" { "exp" : 1800000000 , "aud" : [ ] , "n" : -0.0e-0 , "big" : 123456789012345678901234567890 , "huge" : 1e400 , "tiny" : -1E-400 } "#,
    r#"{"__proto__":{"admin":true},"constructor":1,"toString":"x","1":"one","0":"zero","":""}"#,
    r#"{"\u0073ub":"escaped name","\u0065xp":5,"a\ud83d\ude00":"pair","é":"é","\u00e9x":"\u00E9"}"#,
    r#"{"o":{"p":{"q":[{"r":[[],{}]}]}},"s":"\u0000\u001f\u2028\u2029","t":[true,false,null]}"#,
    r#"{"iss":"","sub":"","aud":"","exp":0,"nbf":0,"iat":253402300799,"jti":""}"#,
    "{\"ws\":\t\r\n1}",
];

#[test]
fn accepted_claims_are_handed_over_as_the_tokens_own_text() {
    for claims in ACCEPTED {
        let t = token(HEADER, claims);
        assert_eq!(agree(t.as_bytes()).as_deref(), Some(*claims), "{claims}");
    }
}

#[test]
fn time_claims_not_written_as_integers_are_written_as_their_whole_seconds() {
    for (claims, want) in [
        (r#"{"exp":1.9e1,"a":1.5}"#, r#"{"exp":19,"a":1.5}"#),
        (
            r#"{"x":0,"iat":1500.9,"nbf":15E2, "exp" :1.8e9 }"#,
            r#"{"x":0,"iat":1500,"nbf":1500, "exp" :1800000000 }"#,
        ),
        (r#"{"\u0065xp":0.5}"#, r#"{"\u0065xp":0}"#),
    ] {
        assert_eq!(
            agree(token(HEADER, claims).as_bytes()).as_deref(),
            Some(want)
        );
    }
}

/// Every refusal of the full decoder is kept, with its error: each check of the scan and of
/// the token around it.
#[test]
fn refused_tokens_get_the_full_decoders_error() {
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
    let at_cap = format!("{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31));
    let over_cap = format!("{{\"a\":{}{}}}", "[".repeat(32), "]".repeat(32));
    let claims: &[&str] = &[
        &deep,
        &at_cap,
        &over_cap,
        r#"{"a":1,"a":2}"#,
        r#"{"sub":"x","\u0073ub":"y"}"#,
        r#"{"o":{"b":1,"b":2}}"#,
        r#"{"o":{"b":1},"p":{"b":1}}"#,
        r#"{"\u00e9":1,"é":2}"#,
        r#"{"a\ud83d\ude00":1,"a😀":2}"#,
        r#"{"exp":"1"}"#,
        r#"{"exp":null}"#,
        r#"{"exp":-1}"#,
        r#"{"exp":1e400}"#,
        r#"{"exp":253402300800}"#,
        r#"{"\u0065xp":[]}"#,
        r#"{"iat":true}"#,
        r#"{"nbf":{}}"#,
        r#"{"sub":1}"#,
        r#"{"iss":null}"#,
        r#"{"jti":["j"]}"#,
        r#"{"aud":["a",1]}"#,
        r#"{"aud":[["a"]]}"#,
        r#"{"aud":{}}"#,
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":"\x"}"#,
        "{\"a\":\"\t\"}",
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"a":tru}"#,
        r#"{} {}"#,
        r#"[]"#,
        r#""x""#,
        r#"1"#,
        "",
        " ",
        "\u{feff}{}",
    ];
    for c in claims {
        agree(token(HEADER, c).as_bytes());
    }
    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"u"}"#);
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let too_large = format!("{header}.{}.", "a".repeat(20_000));
    let tokens: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"a.b".to_vec(),
        b"..".to_vec(),
        format!("{header}..").into_bytes(),
        format!(".{claims}.").into_bytes(),
        format!("{header}.{claims}").into_bytes(),
        format!("{header}.{claims}.").into_bytes(),
        format!("{header}.{claims}.c2ln.x").into_bytes(),
        format!("{header}.{claims}=.c2ln").into_bytes(),
        format!("{header}.{claims}.c2ln=").into_bytes(),
        format!("{header}.{claims}.c2l").into_bytes(),
        format!("{header}.{claims}.c2k").into_bytes(),
        format!("{header}.{claims}.c").into_bytes(),
        format!("{header}.{claims}.c2+n").into_bytes(),
        format!("{header}.e31.c2ln").into_bytes(),
        format!("{header}.e3+.c2ln").into_bytes(),
        format!(" {header}.{claims}.c2ln").into_bytes(),
        format!("{{{header}.{claims}.c2ln").into_bytes(),
        format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)).into_bytes(),
        format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#)).into_bytes(),
        format!(
            "{}.{claims}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"RS256"}"#)
        )
        .into_bytes(),
        format!(
            "{}.{claims}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":1}"#)
        )
        .into_bytes(),
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(b"{\"a\":\"\xff\"}")).into_bytes(),
        format!(
            "{}.{claims}.",
            URL_SAFE_NO_PAD.encode(b"{\"alg\":\"\xff\"}")
        )
        .into_bytes(),
        b"\xff.e30.".to_vec(),
        too_large.into_bytes(),
    ];
    for t in tokens {
        agree(&t);
    }
}

#[test]
fn the_fuzz_seeds_decode_alike() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        agree(bytes.trim_ascii_end());
        agree(&bytes);
        n += 1;
    }
    assert!(n >= 4);
}

/// JSON values biased towards what the checks look at: registered names (also escaped),
/// repeated names, every kind of value, numbers in every form, strings with escapes.
fn value(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        prop::sample::select(vec![
            "0",
            "7",
            "-1",
            "1.5",
            "1.9e1",
            "15E2",
            "1e400",
            "-0",
            "01",
            "1.",
            "253402300799",
            "253402300800",
            "1800000000",
            "123456789012345678901234567890",
            "0.000",
            "1e-400",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            r#""""#,
            r#""a""#,
            r#""\"\\\/\b\f\n\r\t""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""é😀""#,
            r#""\ud800""#,
            r#""\x""#,
            "\"\t\"",
            r#""\u0000""#,
            r#""api""#,
        ])
        .prop_map(String::from),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec(value(depth - 1), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
        1 => object(depth - 1),
    ]
    .boxed()
}

fn object(depth: u32) -> BoxedStrategy<String> {
    let name = prop::sample::select(vec![
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "\\u0065xp",
        "\\u0061ud",
        "a",
        "b",
        "\\u0061",
        "__proto__",
        "é",
        "\\u00e9",
        "1",
    ]);
    prop::collection::vec((name, value(depth), any::<bool>()), 0..6)
        .prop_map(|members| {
            let body: Vec<String> = members
                .iter()
                .map(|(n, v, spaced)| {
                    if *spaced {
                        format!(" \"{n}\" : {v} ")
                    } else {
                        format!("\"{n}\":{v}")
                    }
                })
                .collect();
            format!("{{{}}}", body.join(","))
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn generated_claims_decode_alike(claims in object(3)) {
        let t = token(HEADER, &claims);
        if let Some(json) = agree(t.as_bytes()) {
            // Only a time claim that is not a plain integer is ever rewritten.
            let time_rewritten = ["1.5", "1.9e1", "15E2", "0.000", "1e-400"]
                .iter()
                .any(|n| claims.contains(n));
            prop_assert!(json == claims || time_rewritten, "{claims} -> {json}");
        }
    }

    #[test]
    fn arbitrary_bytes_decode_alike(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        agree(&bytes);
    }

    #[test]
    fn arbitrary_payloads_decode_alike(payload in proptest::collection::vec(any::<u8>(), 0..128)) {
        let t = format!("{}.{}.", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(&payload));
        agree(t.as_bytes());
    }
}
