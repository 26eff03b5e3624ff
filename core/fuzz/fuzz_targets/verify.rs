//! The verification policy on fuzzed tokens and fuzzed key sets: no step panics, and what a
//! step lets through really has the property the step exists to enforce.
//!
//! Input: `policy bits (4 bytes) | now (8 bytes) | token | 0x00 | JWKS document`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use token_manager_core::dangerous::decode_unverified;
use token_manager_core::verify::{
    check_claims, check_header, check_signature_shape, key_fits, parse_jwks, select_key, Policy,
};
use token_manager_core::{Algorithm, Timestamp};

const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const PRIVATE_MEMBERS: [&str; 7] = [
    "\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\"", "\"k\"",
];

fn policy(bits: [u8; 4]) -> Policy {
    let mask = u16::from_le_bytes([bits[0], bits[1]]);
    let mut algorithms: Vec<Algorithm> = ALGORITHMS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, a)| *a)
        .collect();
    if algorithms.is_empty() {
        algorithms.push(Algorithm::ES256);
    }
    let mut policy = Policy::new(algorithms).expect("asymmetric, non-empty allowlists are valid");
    let choice = bits[2];
    if choice & 1 != 0 {
        policy.issuer = Some("https://issuer.test".into());
    }
    if choice & 2 != 0 {
        policy.audience = Some("api".into());
    }
    if choice & 4 != 0 {
        policy.typ = Some("at+jwt".into());
    }
    policy.leeway = Duration::from_secs(u64::from(bits[3]) * 4);
    policy
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let policy = policy([data[0], data[1], data[2], data[3]]);
    // Seconds since the epoch, kept below year 10000 like the decoder's time claims.
    let now_secs = u64::from_le_bytes(data[4..12].try_into().unwrap()) % 253_402_300_800;
    let now = Timestamp::from_secs(now_secs);
    let rest = &data[12..];
    let (token, jwks) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    // Key sets: only public material, re-parsing a kept key gives the same key.
    let keys = match parse_jwks(jwks) {
        Ok(keys) => {
            for key in &keys {
                assert!(matches!(key.kty.as_str(), "RSA" | "EC" | "OKP"));
                for private in PRIVATE_MEMBERS {
                    assert!(!key.public_json.contains(private), "{}", key.public_json);
                }
                let again = parse_jwks(format!("{{\"keys\":[{}]}}", key.public_json).as_bytes())
                    .expect("a kept key re-parses");
                assert_eq!(again.len(), 1);
                assert_eq!(again[0].public_json, key.public_json);
            }
            keys
        }
        Err(e) => {
            assert_eq!(e.code(), "bad_jwks");
            Vec::new()
        }
    };

    let Ok(decoded) = decode_unverified(token) else {
        return;
    };
    let header = &decoded.header;
    if let Err(e) = check_header(&decoded, &policy) {
        assert!(!e.code().is_empty() && !e.to_string().is_empty());
        return;
    }
    // What passed the header check: an allowed, asymmetric algorithm; no key of its own.
    assert!(policy.algorithms().contains(&header.alg));
    assert!(header.key_params.is_empty());
    assert!(header.crit.is_none());
    if policy.typ.is_some() {
        assert!(header.typ.is_some());
    }

    match select_key(&keys, header.kid.as_deref(), header.alg) {
        Ok(key) => {
            assert!(key_fits(key, header.alg));
            match header.kid.as_deref() {
                Some(kid) => {
                    assert!(!kid.is_empty());
                    assert_eq!(key.kid.as_deref(), Some(kid));
                    let same_kid = |k: &&token_manager_core::verify::Jwk| {
                        k.kid.as_deref() == Some(kid) && key_fits(k, header.alg)
                    };
                    assert_eq!(keys.iter().filter(same_kid).count(), 1);
                }
                None => assert_eq!(keys.iter().filter(|k| key_fits(k, header.alg)).count(), 1),
            }
        }
        Err(e) => assert!(matches!(
            e.code(),
            "unknown_kid" | "key_mismatch" | "ambiguous_kid" | "weak_key" | "invalid_key"
        )),
    }

    match check_signature_shape(header.alg, &decoded.signature) {
        Ok(()) => {
            let sig = &decoded.signature;
            assert!(!sig.is_empty());
            match header.alg {
                Algorithm::ES256 | Algorithm::EdDSA => assert_eq!(sig.len(), 64),
                Algorithm::ES384 => assert_eq!(sig.len(), 96),
                _ => {}
            }
            if matches!(header.alg, Algorithm::ES256 | Algorithm::ES384) {
                let (r, s) = sig.split_at(sig.len() / 2);
                assert!(r.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0));
            }
        }
        Err(e) => assert_eq!(e.code(), "bad_signature"),
    }

    let claims = &decoded.claims;
    if check_claims(claims, &policy, now).is_ok() {
        let leeway = policy.leeway.as_secs();
        let exp = claims.exp.expect("a trusted token has exp");
        assert!(now_secs < exp.saturating_add(leeway));
        for t in [claims.nbf, claims.iat].into_iter().flatten() {
            assert!(t <= now_secs.saturating_add(leeway));
        }
        if let Some(iss) = &policy.issuer {
            assert_eq!(claims.iss.as_deref(), Some(iss.as_str()));
        }
        if let Some(aud) = &policy.audience {
            assert!(claims.aud.as_ref().is_some_and(|a| a.contains(aud)));
        }
    }
});
