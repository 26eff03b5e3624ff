//! Decoding must never panic, whatever decodes must re-serialize its claims, a JWT decodes
//! exactly when its compact JWS does and its payload is a claims set, and `decodeClaims`'
//! decoder (the scan that hands the token's own text to `JSON.parse`) agrees with the full one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_manager_core::dangerous::{
    claims_from_json_unverified, claims_json_unverified, decode_jws_unverified,
    decode_unverified_with, DecodeLimits, UnverifiedToken,
};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    let token = decode_unverified_with(data, &limits);
    if let Ok(token) = &token {
        let json = token.claims.to_json();
        assert!(json.starts_with('{'));
        assert!(token.signing_input_len < data.len());
    }
    // The same error, or a text that reads back as the same claims.
    match (claims_json_unverified(data), &token) {
        (Ok(json), Ok(t)) => assert_eq!(
            claims_from_json_unverified(json.as_bytes(), &limits).as_ref(),
            Ok(&t.claims)
        ),
        (Err(e), Err(f)) => assert_eq!(&e, f),
        (fast, full) => panic!("{fast:?} {full:?}"),
    }
    // The same compact decoder: a JWT is its JWS with the payload read as claims.
    match decode_jws_unverified(data, &limits) {
        Ok(jws) => {
            assert_eq!(
                jws.signing_input_len,
                data.iter().rposition(|b| *b == b'.').unwrap()
            );
            assert_eq!(UnverifiedToken::from_jws(jws, limits.max_depth), token);
        }
        // The JWT decoder may stop earlier, at an empty claims segment.
        Err(e) => {
            let t = token.unwrap_err();
            assert!(
                t.code() == e.code() || t.code() == "malformed_token",
                "{t:?} {e:?}"
            );
        }
    }
});
