//! The key policy of RFC 7518 on the pure side: which key of a set may verify which algorithm.
//! RSA keys below 2048 bits and RSA exponents below 3 are `weak_key`; even or oversized
//! exponents and coordinates of the wrong length are `invalid_key`; keys sharing a `kid` are
//! resolved by what fits the algorithm, and a `kid` two fitting keys share is `ambiguous_kid`.
//! (Whether an EC point is on its curve is WebCrypto's import check: tests/verify.rs.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use token_manager_core::verify::{parse_jwks, select_key, Jwk};
use token_manager_core::Algorithm;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A modulus of exactly `bits` bits (top bit set), big-endian, with `zeros` leading zero bytes.
fn modulus(bits: usize, zeros: usize) -> String {
    let mut n = vec![0u8; zeros + bits.div_ceil(8)];
    n[zeros] = 1 << ((bits - 1) % 8);
    *n.last_mut().unwrap() |= 1;
    b64(n)
}

fn rsa(kid: &str, n: &str, e: &str) -> String {
    format!(r#"{{"kty":"RSA","kid":"{kid}","n":"{n}","e":"{e}"}}"#)
}

fn ec(kid: &str, crv: &str, len: usize) -> String {
    let c = b64(vec![7u8; len]);
    format!(r#"{{"kty":"EC","kid":"{kid}","crv":"{crv}","x":"{c}","y":"{c}"}}"#)
}

fn keys(members: &[String]) -> Vec<Jwk> {
    parse_jwks(format!(r#"{{"keys":[{}]}}"#, members.join(",")).as_bytes()).unwrap()
}

fn code(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> &'static str {
    match select_key(keys, kid, alg) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn rsa_keys_below_2048_bits_are_weak_key() {
    for (bits, zeros, expect) in [
        (512, 0, "weak_key"),
        (1024, 0, "weak_key"),
        (2047, 0, "weak_key"),
        (2047, 1, "weak_key"),
        (2048, 0, "ok"),
        (2048, 2, "ok"),
        (4096, 0, "ok"),
    ] {
        let set = keys(&[rsa("k", &modulus(bits, zeros), "AQAB")]);
        for alg in [Algorithm::RS256, Algorithm::PS512] {
            assert_eq!(code(&set, Some("k"), alg), expect, "{bits} bits");
            assert_eq!(code(&set, None, alg), expect, "{bits} bits, no kid");
        }
    }
}

#[test]
fn rsa_public_exponents_must_be_odd_from_3_to_32_bits() {
    let n = modulus(2048, 0);
    for (e, expect) in [
        (vec![1u8, 0, 1], "ok"),
        (vec![3], "ok"),
        (vec![0, 0, 3], "ok"),
        (vec![0xff, 0xff, 0xff, 0xff], "ok"),
        (vec![1], "weak_key"),
        (vec![0], "weak_key"),
        (vec![], "weak_key"),
        (vec![2], "weak_key"),
        (vec![4], "invalid_key"),
        (vec![1, 0, 0], "invalid_key"),
        (vec![1, 0, 0, 0, 1], "invalid_key"),
    ] {
        let set = keys(&[rsa("k", &n, &b64(&e))]);
        assert_eq!(code(&set, Some("k"), Algorithm::RS256), expect, "e = {e:?}");
    }
    let set = keys(&[rsa("k", &n, "AQAB="), rsa("m", "n+/", "AQAB")]);
    assert_eq!(code(&set, Some("k"), Algorithm::RS256), "invalid_key");
    assert_eq!(code(&set, Some("m"), Algorithm::RS256), "invalid_key");
}

#[test]
fn curve_coordinates_of_the_wrong_length_are_invalid_key() {
    for (key, alg, expect) in [
        (ec("k", "P-256", 32), Algorithm::ES256, "ok"),
        (ec("k", "P-256", 31), Algorithm::ES256, "invalid_key"),
        (ec("k", "P-256", 33), Algorithm::ES256, "invalid_key"),
        (ec("k", "P-256", 48), Algorithm::ES256, "invalid_key"),
        (ec("k", "P-384", 48), Algorithm::ES384, "ok"),
        (ec("k", "P-384", 32), Algorithm::ES384, "invalid_key"),
        (
            format!(
                r#"{{"kty":"OKP","kid":"k","crv":"Ed25519","x":"{}"}}"#,
                b64([1; 32])
            ),
            Algorithm::EdDSA,
            "ok",
        ),
        (
            format!(
                r#"{{"kty":"OKP","kid":"k","crv":"Ed25519","x":"{}"}}"#,
                b64([1; 31])
            ),
            Algorithm::EdDSA,
            "invalid_key",
        ),
    ] {
        assert_eq!(
            code(&keys(std::slice::from_ref(&key)), Some("k"), alg),
            expect,
            "{key}"
        );
    }
}

#[test]
fn a_kid_shared_by_keys_of_different_types_selects_the_key_that_fits() {
    let rsa_key = rsa("dup", &modulus(2048, 0), "AQAB");
    let ec_key = ec("dup", "P-256", 32);
    for set in [
        keys(&[rsa_key.clone(), ec_key.clone()]),
        keys(&[ec_key.clone(), rsa_key.clone()]),
    ] {
        assert_eq!(
            select_key(&set, Some("dup"), Algorithm::RS256).unwrap().kty,
            "RSA"
        );
        assert_eq!(
            select_key(&set, Some("dup"), Algorithm::ES256).unwrap().kty,
            "EC"
        );
        assert_eq!(code(&set, Some("dup"), Algorithm::ES384), "key_mismatch");
    }
}

#[test]
fn a_kid_shared_by_two_fitting_keys_is_ambiguous_kid_in_either_order() {
    let a = rsa("dup", &modulus(2048, 0), "AQAB");
    let b = rsa("dup", &modulus(3072, 0), "AQAB");
    for set in [
        keys(&[a.clone(), b.clone()]),
        keys(&[b.clone(), a.clone()]),
        keys(&[a.clone(), a.clone()]),
    ] {
        assert_eq!(code(&set, Some("dup"), Algorithm::RS256), "ambiguous_kid");
    }
    // Pinning each to its own algorithm resolves it.
    let a = a.replacen('{', r#"{"alg":"RS256","#, 1);
    let b = b.replacen('{', r#"{"alg":"PS256","#, 1);
    let set = keys(&[a, b]);
    assert_eq!(
        select_key(&set, Some("dup"), Algorithm::RS256)
            .unwrap()
            .alg
            .as_deref(),
        Some("RS256")
    );
    assert_eq!(
        select_key(&set, Some("dup"), Algorithm::PS256)
            .unwrap()
            .alg
            .as_deref(),
        Some("PS256")
    );
}

#[test]
fn a_weak_key_sharing_a_kid_with_a_strong_one_is_never_selected() {
    let weak = rsa("dup", &modulus(1024, 0), "AQAB");
    let strong_n = modulus(2048, 0);
    let strong = rsa("dup", &strong_n, "AQAB");
    for set in [
        keys(&[weak.clone(), strong.clone()]),
        keys(&[strong.clone(), weak.clone()]),
    ] {
        for kid in [Some("dup"), None] {
            let key = select_key(&set, kid, Algorithm::RS256).unwrap();
            assert!(key.public_json.contains(&strong_n), "{kid:?}");
        }
    }
}

#[test]
fn a_bad_key_set_says_which_key_and_what_without_any_value() {
    let secret = "c2VjcmV0LXByaXZhdGUtZXhwb25lbnQ";
    for (doc, says) in [
        ("[]".to_owned(), "not a JSON object"),
        (r#"{"keys":{}}"#.to_owned(), "`keys`"),
        (
            format!(r#"{{"keys":[{},7]}}"#, ec("a", "P-256", 32)),
            "key 1: not a JSON object",
        ),
        (
            format!(r#"{{"keys":[{{"kty":"RSA","n":"{secret}","d":"{secret}"}}]}}"#),
            "key 0: a public key member",
        ),
        (
            format!(r#"{{"keys":[{{"kty":7,"d":"{secret}"}}]}}"#),
            "key 0",
        ),
    ] {
        let e = parse_jwks(doc.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "bad_jwks");
        let message = e.to_string();
        assert!(message.contains(says), "{message}");
        assert!(!message.contains(secret), "{message}");
    }
}

#[test]
fn key_ops_are_read_as_strings_and_a_key_without_verify_is_never_selected() {
    let with_ops = |kid: &str, ops: &str| {
        let c = b64(vec![7u8; 32]);
        format!(r#"{{"kty":"EC","kid":"{kid}","crv":"P-256","x":"{c}","y":"{c}","key_ops":{ops}}}"#)
    };
    let set = keys(&[
        with_ops("v", r#"["verify"]"#),
        with_ops("s", r#"["sign"]"#),
        with_ops("none", "[]"),
    ]);
    assert_eq!(set[0].key_ops.as_deref(), Some(&["verify".to_owned()][..]));
    assert_eq!(code(&set, Some("v"), Algorithm::ES256), "ok");
    assert_ne!(code(&set, Some("s"), Algorithm::ES256), "ok");
    assert_ne!(code(&set, Some("none"), Algorithm::ES256), "ok");
    for ops in [r#"["verify",1]"#, r#""verify""#, r#"[null]"#] {
        let doc = format!(r#"{{"keys":[{}]}}"#, with_ops("v", ops));
        let e = parse_jwks(doc.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "bad_jwks", "{ops}");
        assert!(e.to_string().contains("key 0: `key_ops`"), "{ops}: {e}");
    }
}
