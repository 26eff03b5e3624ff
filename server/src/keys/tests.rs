//! Unit tests of the signing keys and the ring.

use super::*;

/// `StoredKey` is not `Clone` (it zeroizes its private key on drop): a copy for tests.
fn copy(k: &StoredKey, retired_at: Option<u64>) -> StoredKey {
    StoredKey {
        kid: k.kid.clone(),
        alg: k.alg.clone(),
        private_der: k.private_der.clone(),
        created_at: k.created_at,
        retired_at,
        last_exp: k.last_exp,
    }
}

#[test]
fn a_sync_from_a_snapshot_older_than_a_rotation_keeps_the_new_key_current() {
    let alg = SigningAlgorithm::ALL[0];
    let old = SigningKey::generate(alg, 100).unwrap();
    let ring = KeyRing::from_stored(std::slice::from_ref(&old), alg)
        .unwrap()
        .unwrap();
    // The store snapshot a periodic sync read before the rotation below committed.
    let stale = vec![copy(&old, None)];
    let new = SigningKey::generate(alg, 200).unwrap();
    let new_kid = new.kid.clone();
    let key = ring.preload(SigningKey::from_stored(&new).unwrap());
    ring.install(key, 200);
    ring.sync(&stale).unwrap();
    assert_eq!(
        ring.current().kid,
        new_kid,
        "the stale snapshot revived the old key"
    );
    // A snapshot that has the rotation agrees, and one from another instance's later
    // rotation still moves the ring on.
    let retired = copy(&old, Some(200));
    ring.sync(&[copy(&retired, Some(200)), copy(&new, None)])
        .unwrap();
    assert_eq!(ring.current().kid, new_kid);
    let newer = SigningKey::generate(alg, 300).unwrap();
    let new_retired = copy(&new, Some(300));
    ring.sync(&[retired, new_retired, copy(&newer, None)])
        .unwrap();
    assert_eq!(ring.current().kid, newer.kid);
}

#[test]
fn every_algorithm_generates_a_key_that_round_trips_through_storage() {
    for alg in SigningAlgorithm::ALL {
        let stored = SigningKey::generate(alg, 100).unwrap();
        let key = SigningKey::from_stored(&stored).unwrap();
        assert_eq!(key.kid, stored.kid);
        assert_eq!(key.alg, alg);
        let jwk = serde_json::to_value(&key.jwk).unwrap();
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["kid"], key.kid.as_str());
        assert_eq!(jwk["use"], "sig");
        let text = jwk.to_string();
        assert!(
            !text.contains("\"d\""),
            "private part leaked into the JWK: {text}"
        );
    }
}
