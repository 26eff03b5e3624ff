//! `GET /api/me`: only a valid, unexpired, unrevoked access token signed by one of the
//! server's keys with that key's own algorithm gets through.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use serde_json::json;

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[track_caller]
fn assert_invalid_token(r: &Response) {
    assert_error(r, 401, "invalid_token");
    let challenge = r
        .header("www-authenticate")
        .expect("a WWW-Authenticate header");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_valid_token_gets_its_claims() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let r = server.me(&s.access_token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body, claims(&s.access_token));
    assert_eq!(body["sub"], "demo");
    assert_eq!(body["roles"], json!(["user", "admin"]));
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_is_401_with_a_bearer_challenge() {
    let server = TestServer::start().await;
    assert_invalid_token(&server.send(Request::get("/api/me")).await);
    for auth in [
        "Basic ZGVtbzpkZW1v",
        "Bearer",
        "Bearer ",
        "Token abc",
        "bearer not.a.jwt",
        "Bearer a.b",
    ] {
        assert_invalid_token(
            &server
                .send(Request::get("/api/me").header("Authorization", auth))
                .await,
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_and_nbf_is_respected() {
    let server = TestServer::start().await;
    let s = server.login().await;
    server.clock.advance(899);
    assert_eq!(server.me(&s.access_token).await.status, 200);
    server.clock.advance(1);
    assert_invalid_token(&server.me(&s.access_token).await);
    // A clock set back before the token's nbf.
    server.clock.set(START - 1);
    assert_invalid_token(&server.me(&s.access_token).await);
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let parts: Vec<&str> = s.access_token.split('.').collect();
    // Flip bits in the signature.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[5] ^= 0x01;
    let forged = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_invalid_token(&server.me(&forged).await);
    // Keep the signature, change the claims (become admin of someone else).
    let mut c = claims(&s.access_token);
    c["sub"] = json!("other");
    let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_invalid_token(&server.me(&forged).await);
}

#[tokio::test]
async fn an_alg_none_token_is_refused() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let c = claims(&s.access_token);
    let kid = header(&s.access_token)["kid"].clone();
    for alg in ["none", "None", "NONE"] {
        let h = json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
        for token in [
            format!("{}.{}.", b64(&h), b64(&c)),
            format!("{}.{}", b64(&h), b64(&c)),
        ] {
            assert_invalid_token(&server.me(&token).await);
        }
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let parts: Vec<&str> = s.access_token.split('.').collect();
    let mut h = header(&s.access_token);
    h["kid"] = json!("someone-elses-key");
    let token = format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
    assert_invalid_token(&server.me(&token).await);
    h.as_object_mut().unwrap().remove("kid");
    let token = format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
    assert_invalid_token(&server.me(&token).await);
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let server = TestServer::start().await;
    let s = server.login().await;
    let jwks = server.jwks().await;
    let kid = header(&s.access_token)["kid"].as_str().unwrap().to_owned();
    let c = claims(&s.access_token);
    // Every plausible encoding of "the public key" as an HMAC secret.
    let jwk = jwks["keys"][0].clone();
    let secrets = [
        jwk.to_string(),
        jwks.to_string(),
        jwk["x"].as_str().unwrap_or_default().to_owned(),
    ];
    for secret in secrets {
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.clone());
        let token = encode(&h, &c, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        assert_invalid_token(&server.me(&token).await);
    }
}

#[tokio::test]
async fn a_token_from_another_key_with_our_kid_is_refused() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use p256::pkcs8::EncodePrivateKey;
    let server = TestServer::start().await;
    let s = server.login().await;
    let der = p256::SecretKey::random(&mut rand::rngs::OsRng)
        .to_pkcs8_der()
        .unwrap();
    let mut h = Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = header(&s.access_token)["kid"].as_str().map(String::from);
    let token = encode(
        &h,
        &claims(&s.access_token),
        &EncodingKey::from_ec_der(der.as_bytes()),
    )
    .unwrap();
    assert_invalid_token(&server.me(&token).await);
}

#[tokio::test]
async fn a_header_that_embeds_its_own_key_or_url_is_refused() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let parts: Vec<&str> = s.access_token.split('.').collect();
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("crit", json!(["exp"])),
    ] {
        let mut h = header(&s.access_token);
        h[name] = value;
        let token = format!("{}.{}.{}", b64(&h), parts[1], parts[2]);
        assert_invalid_token(&server.me(&token).await);
    }
}

#[tokio::test]
async fn garbage_tokens_never_crash_the_server() {
    let server = TestServer::start().await;
    let long = "a".repeat(20_000);
    for token in [
        "...",
        "a.b.c",
        "e30.e30.e30",
        "\u{00e9}.x.y",
        long.as_str(),
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        "eyJhbGciOjF9.e30.sig",
    ] {
        let r = server
            .send(Request::get("/api/me").header("Authorization", &format!("Bearer {token}")))
            .await;
        assert_eq!(r.status, 401, "{token}");
    }
    // Still serving.
    let s = server.login().await;
    assert_eq!(server.me(&s.access_token).await.status, 200);
}
