//! Signing keys: every algorithm works end to end, the JWKS verifies what the server signs,
//! and rotation keeps old tokens verifiable exactly until they expire.

mod common;

use common::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, DecodingKey, Validation};
use token_manager_server::SigningAlgorithm;

/// Verifies `token` the way a third-party resource server would: with the published JWKS.
fn verify_with_jwks(jwks: &serde_json::Value, token: &str) -> Result<serde_json::Value, String> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let h = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwk = set
        .find(h.kid.as_deref().unwrap_or_default())
        .ok_or("kid not in the JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(h.alg);
    v.validate_aud = false;
    v.validate_exp = false;
    decode::<serde_json::Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn every_algorithm_signs_tokens_the_jwks_verifies() {
    for (alg, kty) in [
        (SigningAlgorithm::Rs256, "RSA"),
        (SigningAlgorithm::Es256, "EC"),
        (SigningAlgorithm::EdDsa, "OKP"),
    ] {
        let server = TestServer::start_with(|c| c.algorithm = alg).await;
        let s = server.login().await;
        assert_eq!(header(&s.access_token)["alg"], alg.as_str());
        let jwks = server.jwks().await;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kty"], kty);
        assert_eq!(keys[0]["alg"], alg.as_str());
        assert_eq!(keys[0]["use"], "sig");
        assert!(
            keys[0].get("d").is_none(),
            "private key material in the JWKS"
        );
        verify_with_jwks(&jwks, &s.access_token).unwrap();
        assert_eq!(server.me(&s.access_token).await.status, 200, "{alg}");
        let next = server.refresh_ok(&s.cookie).await;
        assert_eq!(server.me(&next.access_token).await.status, 200, "{alg}");
    }
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifiable_until_they_expire_then_drops_the_key() {
    let server = TestServer::start().await;
    let old_kid = server.handle.current_kid();
    let s = server.login().await;

    server.clock.advance(100);
    let new_kid = server.handle.rotate_keys().unwrap();
    assert_ne!(new_kid, old_kid);
    let jwks = server.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [new_kid.as_str(), old_kid.as_str()],
        "current key first, retired key kept"
    );

    // The old token still verifies, locally and with the JWKS; new tokens use the new key.
    assert_eq!(server.me(&s.access_token).await.status, 200);
    verify_with_jwks(&jwks, &s.access_token).unwrap();
    let next = server.refresh_ok(&s.cookie).await;
    assert_eq!(header(&next.access_token)["kid"], new_kid.as_str());

    // Until the last token the old key signed has expired (login at START, ttl 900).
    server.clock.set(START + 899);
    server.handle.run_maintenance().unwrap();
    assert_eq!(server.jwks().await["keys"].as_array().unwrap().len(), 2);
    assert_eq!(server.me(&s.access_token).await.status, 200);

    server.clock.set(START + 900);
    let report = server.handle.run_maintenance().unwrap();
    assert_eq!(report.cleanup.signing_keys, 1);
    let jwks = server.jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], new_kid.as_str());
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    assert_eq!(server.me(&next.access_token).await.status, 200);
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_at_expiry_even_before_cleanup_runs() {
    let server = TestServer::start().await;
    server.login().await;
    server.handle.rotate_keys().unwrap();
    assert_eq!(server.jwks().await["keys"].as_array().unwrap().len(), 2);
    server.clock.advance(900);
    assert_eq!(server.jwks().await["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unused_key_is_dropped_at_once_when_rotated() {
    let server = TestServer::start().await;
    let first = server.handle.current_kid();
    server.handle.rotate_keys().unwrap();
    let jwks = server.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        !kids.contains(&first.as_str()),
        "a key that signed nothing has nothing to verify"
    );
}

#[tokio::test]
async fn scheduled_rotation_happens_when_the_period_has_passed() {
    let server = TestServer::start_with(|c| c.key_rotation = Some(3600)).await;
    let first = server.handle.current_kid();
    server.clock.advance(3599);
    assert_eq!(server.handle.run_maintenance().unwrap().rotated, None);
    server.clock.advance(1);
    let rotated = server
        .handle
        .run_maintenance()
        .unwrap()
        .rotated
        .expect("rotation due");
    assert_ne!(rotated, first);
    assert_eq!(server.handle.current_kid(), rotated);
}

#[tokio::test]
async fn the_jwks_is_cacheable_briefly_and_cors_readable() {
    let server = TestServer::start().await;
    let r = server
        .send(Request::get("/.well-known/jwks.json").header("Origin", &server.origin))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(server.origin.as_str())
    );
}

#[tokio::test]
async fn a_rotation_and_purge_in_the_middle_of_a_refresh_never_sign_with_a_purged_key() {
    let server = TestServer::start_with(|c| c.key_rotation = Some(3600)).await;
    let s = server.login().await;
    let first = server.handle.current_kid();
    // The first key's last token (login, ttl 900) has expired, and rotation is due: the
    // scheduled maintenance will retire the key and purge it at once.
    server.clock.advance(3600);
    let handle = server.handle.clone();
    let rotated = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = rotated.clone();
    // The interleaving of the race: maintenance runs after the refresh has started and
    // before its transaction records which key signs the new token.
    server
        .handle
        .set_before_refresh_transaction(Some(std::sync::Arc::new(move || {
            let mut seen = seen.lock().unwrap();
            if seen.is_none() {
                *seen = Some(handle.run_maintenance().unwrap());
            }
        })));
    let next = server.refresh_ok(&s.cookie).await;
    server.handle.set_before_refresh_transaction(None);
    let report = rotated.lock().unwrap().clone().expect("the hook ran");
    let new_kid = report.rotated.expect("rotation was due");
    assert_eq!(report.cleanup.signing_keys, 1, "the first key was purged");
    assert_ne!(new_kid, first);

    assert_eq!(header(&next.access_token)["kid"], new_kid.as_str());
    verify_with_jwks(&server.jwks().await, &next.access_token).unwrap();
    assert_eq!(server.me(&next.access_token).await.status, 200);
}
