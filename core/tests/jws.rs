//! Compact JWS decoding (RFC 7515 §7.1), the base the JWT decoder is built on: the payload is
//! any bytes, kept exactly; only the segment structure and the header are strict, with the
//! same codes as for tokens, and the JSON serialization has its own.
// Host only, like the other property tests: proptest is not a wasm32 dev-dependency.
#![cfg(not(target_arch = "wasm32"))]

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use token_manager_core::dangerous::{
    decode_jws_unverified, decode_unverified, DecodeLimits, UnverifiedToken,
};
use token_manager_core::{DecodeError, Part};

const HEADER: &str = r#"{"alg":"ES256","kid":"k1","b64x":[1,{"n":null}]}"#;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jws(payload: &[u8]) -> String {
    format!("{}.{}.{}", b64(HEADER), b64(payload), b64([9u8; 64]))
}

fn decode(text: &str) -> Result<token_manager_core::dangerous::UnverifiedJws, DecodeError> {
    decode_jws_unverified(text.as_bytes(), &DecodeLimits::default())
}

#[test]
fn the_payload_is_returned_exactly_as_signed_even_empty_or_not_utf8() {
    for payload in [
        &b""[..],
        b"It\xe2\x80\x99s prose, not JSON",
        b"\xff\xfe\x00\x80 not UTF-8",
        b"{\"iss\":\"joe\",\r\n \"exp\":1}",
        b"[1,2]",
    ] {
        let text = jws(payload);
        let d = decode(&text).unwrap();
        assert_eq!(d.payload, payload);
        assert_eq!(d.signature, [9u8; 64]);
        assert_eq!(
            &text[..d.signing_input_len],
            text.rsplit_once('.').unwrap().0
        );
        assert_eq!(d.header_json, HEADER, "every header member kept");
    }
}

#[test]
fn a_jwt_is_a_jws_whose_payload_is_a_claims_set() {
    let d = decode(&jws(br#"{"sub":"u1","exp":5}"#)).unwrap();
    let t = UnverifiedToken::from_jws(d, 32).unwrap();
    assert_eq!(t.claims.sub.as_deref(), Some("u1"));
    assert_eq!(
        t,
        decode_unverified(jws(br#"{"sub":"u1","exp":5}"#)).unwrap()
    );
    for (payload, code) in [
        (&b""[..], "malformed_token"),
        (b"\xff", "not_utf8"),
        (b"prose", "bad_json"),
        (b"[1]", "not_object"),
        (br#"{"a":1,"a":2}"#, "duplicate_claim"),
        (br#"{"exp":"1"}"#, "claim_type"),
    ] {
        let d = decode(&jws(payload)).unwrap();
        assert_eq!(UnverifiedToken::from_jws(d, 32).unwrap_err().code(), code);
        assert_eq!(decode_unverified(jws(payload)).unwrap_err().code(), code);
    }
}

#[test]
fn the_json_serialization_is_not_compact() {
    let general = r#"{"payload":"e30","signatures":[{"protected":"e30","signature":"c2ln"}]}"#;
    let flattened = r#"{"payload":"e30","protected":"e30","signature":"c2ln"}"#;
    for text in [general, flattened, &format!(" \n\t{flattened}"), "{"] {
        assert_eq!(decode(text).unwrap_err(), DecodeError::NotCompact, "{text}");
        assert_eq!(decode_unverified(text).unwrap_err().code(), "not_compact");
    }
    assert!(DecodeError::NotCompact.to_string().contains("compact"));
    // The length cap still comes first.
    let huge = format!("{{{}}}", " ".repeat(2 << 20));
    assert_eq!(decode(&huge).unwrap_err().code(), "too_large");
}

#[test]
fn wrong_segment_counts_and_an_empty_header_are_malformed_token() {
    let h = b64(HEADER);
    let p = b64("payload");
    for (text, segments) in [
        (String::new(), 1),
        (h.clone(), 1),
        (format!("{h}.{p}"), 2),
        (format!("{h}.{p}.c2ln.c2ln"), 4),
        (format!("{h}.{p}.c2ln.c2ln.c2ln"), 5),
        (format!(".{p}.c2ln"), 3),
        ("..".to_owned(), 3),
    ] {
        assert_eq!(
            decode(&text).unwrap_err(),
            DecodeError::Malformed { segments },
            "{text:?}"
        );
    }
    // An empty signature decodes (the verifier refuses it as bad_signature).
    assert!(decode(&format!("{h}.{p}.")).unwrap().signature.is_empty());
}

#[test]
fn non_canonical_segments_are_bad_base64_naming_the_payload() {
    let h = b64(HEADER);
    let payload = [0xfbu8, 0xff, 0xbe, 0x01];
    let canonical = b64(payload);
    assert!(canonical.contains(['-', '_']));
    for bad in [
        URL_SAFE.encode(payload),
        canonical.replace('-', "+").replace('_', "/"),
        format!("{} ", canonical),
        format!("{}B", &canonical[..canonical.len() - 1]),
    ] {
        assert_eq!(
            decode(&format!("{h}.{bad}.c2ln")).unwrap_err(),
            DecodeError::BadBase64 {
                part: Part::Payload
            },
            "{bad}"
        );
    }
    assert_eq!(
        decode(&format!("{h}.{canonical}.c2ln=")).unwrap_err(),
        DecodeError::BadBase64 {
            part: Part::Signature
        }
    );
    assert_eq!(
        decode(&format!("{h}=.{canonical}.c2ln")).unwrap_err(),
        DecodeError::BadBase64 { part: Part::Header }
    );
}

#[test]
fn the_header_is_as_strict_as_a_tokens() {
    for (header, code) in [
        (r#"{"alg":"none"}"#, "unsupported_alg"),
        (r#"{"alg":"ES512"}"#, "unsupported_alg"),
        (r#"{"kid":"k"}"#, "bad_header"),
        (r#"{"alg":"ES256","alg":"ES256"}"#, "duplicate_claim"),
        (r#"{"alg":"ES256","kid":7}"#, "bad_header"),
        ("[]", "not_object"),
    ] {
        let text = format!("{}.{}.c2ln", b64(header), b64("x"));
        assert_eq!(decode(&text).unwrap_err().code(), code, "{header}");
    }
}

proptest! {
    /// The invariant of the `decode` fuzz target: one decoder, so a token decodes exactly as
    /// its JWS does with the payload read as claims, and fails with the JWS's error (or earlier,
    /// at an empty claims segment).
    #[test]
    fn a_token_decodes_exactly_as_its_jws_with_the_payload_read_as_claims(
        header in prop_oneof![Just(HEADER.to_owned()), "\\PC{0,40}"],
        payload in prop_oneof![Just(r#"{"sub":"u1"}"#.to_owned()), "\\PC{0,40}"],
        raw in proptest::collection::vec(any::<u8>(), 0..8),
        shape in 0u8..4,
    ) {
        let text = match shape {
            0 => format!("{}.{}.{}", b64(&header), b64(&payload), b64(&raw)),
            1 => format!("{}..{}", b64(&header), b64(&raw)),
            2 => format!("{}.{}", b64(&header), String::from_utf8_lossy(&raw)),
            _ => format!("{header}.{payload}.{}", b64(&raw)),
        };
        let token = decode_unverified(&text);
        match decode(&text) {
            Ok(jws) => prop_assert_eq!(UnverifiedToken::from_jws(jws, 32), token),
            Err(e) => {
                let t = token.unwrap_err();
                prop_assert!(t.code() == e.code() || t.code() == "malformed_token", "{:?} {:?}", t, e);
            }
        }
    }
}
