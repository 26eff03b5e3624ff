//! Decoding must never panic, and whatever decodes must re-serialize its claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_manager_core::dangerous::{decode_unverified_with, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(token) = decode_unverified_with(data, &limits) {
        let json = token.claims.to_json();
        assert!(json.starts_with('{'));
        assert!(token.signing_input_len < data.len());
    }
});
