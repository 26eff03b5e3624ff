//! DPoP (RFC 9449, issue 15) over real HTTP: binding at login and refresh, the proof on
//! `/api/me`, the attack suite (each refusal with its own reason), replay across two
//! instances of one store, and server nonces. Runs on SQLite and, with
//! TOKEN_SERVER_TEST_STORE, on Redis.

mod common;

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use token_manager_server::dpop::{access_token_hash, jwk_thumbprint, Refusal};
use token_manager_server::{KeyEncryptionKey, ManualClock};

/// What the test client sends as `htu`: the harness always sends `Host: localhost`.
const BASE: &str = "http://localhost";

/// A client's DPoP key, and the proofs it makes.
struct Key {
    signing: p256::ecdsa::SigningKey,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_jti() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

impl Key {
    fn new() -> Self {
        let signing = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = signing.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()),
        });
        Self { signing, jwk }
    }

    fn jkt(&self) -> String {
        jwk_thumbprint(&self.jwk).unwrap()
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk })
    }

    /// Signs the two JSON texts exactly as given (so a test can send duplicate members).
    fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature: p256::ecdsa::Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    fn claims(htm: &str, path: &str, iat: u64) -> Value {
        json!({ "jti": random_jti(), "htm": htm, "htu": format!("{BASE}{path}"), "iat": iat })
    }

    /// A proof for a token endpoint at `iat`.
    fn proof(&self, htm: &str, path: &str, iat: u64) -> String {
        self.sign(&self.header(), &Self::claims(htm, path, iat))
    }

    /// A proof for `/api/me` with `ath` of `token`.
    fn me_proof(&self, token: &str, iat: u64) -> String {
        let mut claims = Self::claims("GET", "/api/me", iat);
        claims["ath"] = access_token_hash(token).into();
        self.sign(&self.header(), &claims)
    }

    fn with_nonce(&self, htm: &str, path: &str, iat: u64, nonce: &str) -> String {
        let mut claims = Self::claims(htm, path, iat);
        claims["nonce"] = nonce.into();
        self.sign(&self.header(), &claims)
    }
}

fn login_request(server: &TestServer, proof: Option<&str>) -> Request {
    let r = Request::post("/auth/login").header("Origin", &server.origin);
    let r = match proof {
        Some(p) => r.header("DPoP", p),
        None => r,
    };
    r.json(&json!({ "username": USER, "password": PASSWORD }))
}

async fn dpop_login(server: &TestServer, key: &Key) -> Session {
    let now = server.clock.now_secs();
    let r = server
        .send(login_request(
            server,
            Some(&key.proof("POST", "/auth/login", now)),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    Session::from_response(&r)
}

async fn dpop_refresh(server: &TestServer, cookie: &str, proof: &str) -> Response {
    server
        .send(server.refresh_request(cookie).header("DPoP", proof))
        .await
}

async fn me_dpop(server: &TestServer, token: &str, proof: Option<&str>) -> Response {
    let r = Request::get("/api/me").header("Authorization", &format!("DPoP {token}"));
    let r = match proof {
        Some(p) => r.header("DPoP", p),
        None => r,
    };
    server.send(r).await
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for Arc<ManualClock> {
    fn now_secs(&self) -> u64 {
        token_manager_server::Clock::now(self.as_ref())
    }
}

/// The answer refused the proof for `reason`: its code, status and fixed description.
#[track_caller]
fn assert_refused(r: &Response, status: u16, reason: Refusal) {
    assert_error(r, status, reason.error_code());
    assert_eq!(
        r.json()["error_description"],
        reason.description(),
        "expected {reason}"
    );
    if status == 401 {
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with(&format!("DPoP error=\"{}\"", reason.error_code()))
                && challenge.contains("algs=\"ES256 EdDSA\""),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn a_dpop_login_binds_the_token_to_the_key_and_me_accepts_its_proof() {
    let server = TestServer::start().await;
    let key = Key::new();
    let session = dpop_login(&server, &key).await;
    assert_eq!(claims(&session.access_token)["cnf"]["jkt"], key.jkt());

    let now = server.clock.now_secs();
    let r = me_dpop(
        &server,
        &session.access_token,
        Some(&key.me_proof(&session.access_token, now)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["cnf"]["jkt"], key.jkt());
    // Never a proof or a token in the logs.
    let logs = server.log_text();
    let signature = session.access_token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "{logs}");
}

#[tokio::test]
async fn a_login_without_a_proof_stays_a_bearer_token() {
    let server = TestServer::start().await;
    let r = server.send(login_request(&server, None)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["token_type"], "Bearer");
    let session = Session::from_response(&r);
    assert!(claims(&session.access_token).get("cnf").is_none());
    assert_eq!(server.me(&session.access_token).await.status, 200);
    // Its family is not bound: a refresh without a proof works.
    let again = server.refresh_ok(&session.cookie).await;
    assert_eq!(server.me(&again.access_token).await.status, 200);
    // An unbound token under the DPoP scheme is refused.
    let key = Key::new();
    let now = server.clock.now_secs();
    let r = me_dpop(
        &server,
        &again.access_token,
        Some(&key.me_proof(&again.access_token, now)),
    )
    .await;
    assert_error(&r, 401, "invalid_token");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("DPoP error=\"invalid_token\"")));
}

#[tokio::test]
async fn a_refresh_with_a_new_key_rebinds_and_the_old_key_no_longer_works() {
    let server = TestServer::start().await;
    let first = Key::new();
    let session = dpop_login(&server, &first).await;
    server.clock.advance(30);
    let second = Key::new();
    let now = server.clock.now_secs();
    let r = dpop_refresh(
        &server,
        &session.cookie,
        &second.proof("POST", "/auth/refresh", now),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let refreshed = Session::from_response(&r);
    assert_eq!(claims(&refreshed.access_token)["cnf"]["jkt"], second.jkt());
    let ok = me_dpop(
        &server,
        &refreshed.access_token,
        Some(&second.me_proof(&refreshed.access_token, now)),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let r = me_dpop(
        &server,
        &refreshed.access_token,
        Some(&first.me_proof(&refreshed.access_token, now)),
    )
    .await;
    assert_refused(&r, 401, Refusal::ThumbprintMismatch);
}

#[tokio::test]
async fn a_bound_family_refuses_a_refresh_without_a_proof_and_is_left_intact() {
    let server = TestServer::start().await;
    let key = Key::new();
    let session = dpop_login(&server, &key).await;
    let r = server.refresh(&session.cookie).await;
    assert_refused(&r, 400, Refusal::Missing);
    assert!(r.header("set-cookie").is_none());
    // Nothing rotated or revoked: the same cookie refreshes with a proof.
    let now = server.clock.now_secs();
    let r = dpop_refresh(
        &server,
        &session.cookie,
        &key.proof("POST", "/auth/refresh", now),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // And a bad proof is refused the same way, the family still intact.
    let next = Session::from_response(&r);
    let r = dpop_refresh(
        &server,
        &next.cookie,
        &key.proof("GET", "/auth/refresh", now),
    )
    .await;
    assert_refused(&r, 400, Refusal::WrongHtm);
    let r = dpop_refresh(
        &server,
        &next.cookie,
        &key.proof("POST", "/auth/refresh", now),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(server.log_text().contains("reason=wrong_htm"));
}

/// Each bad proof at the login, refused with its own reason before the password is checked.
#[tokio::test]
async fn the_token_endpoint_refuses_each_bad_proof_with_its_own_reason() {
    let server = TestServer::start().await;
    let key = Key::new();
    let now = server.clock.now_secs();
    let claims = || Key::claims("POST", "/auth/login", now);
    let mut cases: Vec<(&str, String, Refusal)> = vec![
        (
            "wrong htm",
            key.proof("PUT", "/auth/login", now),
            Refusal::WrongHtm,
        ),
        (
            "wrong htu",
            key.proof("POST", "/auth/refresh", now),
            Refusal::WrongHtu,
        ),
        (
            "stale iat",
            key.proof("POST", "/auth/login", now - 61),
            Refusal::StaleIat,
        ),
        (
            "future iat",
            key.proof("POST", "/auth/login", now + 61),
            Refusal::FutureIat,
        ),
    ];
    let mut private = key.header();
    private["jwk"]["d"] = b64(&key.signing.to_bytes()).into();
    cases.push((
        "private key",
        key.sign(&private, &claims()),
        Refusal::PrivateKey,
    ));
    let mut typ = key.header();
    typ["typ"] = "JWT".into();
    cases.push(("typ JWT", key.sign(&typ, &claims()), Refusal::BadTyp));
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"typ":"dpop+jwt","alg":"none","jwk":key.jwk})
            .to_string()
            .as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    cases.push(("alg none", unsigned, Refusal::AlgNone));
    let hmac = {
        use hmac::Mac as _;
        let header = json!({"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    cases.push(("HS256", hmac, Refusal::AlgHmac));
    let mut rs = key.header();
    rs["alg"] = "RS256".into();
    cases.push(("RS256", key.sign(&rs, &claims()), Refusal::UnsupportedAlg));
    let mut ed = key.header();
    ed["alg"] = "EdDSA".into();
    cases.push((
        "EdDSA with an EC key",
        key.sign(&ed, &claims()),
        Refusal::BadJwk,
    ));
    let other = Key::new();
    let mut swapped = key.header();
    swapped["jwk"] = other.jwk.clone();
    cases.push((
        "signed by another key",
        key.sign(&swapped, &claims()),
        Refusal::BadSignature,
    ));
    let mut no_jwk = key.header();
    no_jwk.as_object_mut().unwrap().remove("jwk");
    cases.push(("no jwk", key.sign(&no_jwk, &claims()), Refusal::BadJwk));

    for (what, proof, reason) in cases {
        let r = server.send(login_request(&server, Some(&proof))).await;
        assert_refused(&r, 400, reason);
        assert!(
            server
                .log_text()
                .contains(&format!("reason={}", reason.as_str())),
            "{what}"
        );
    }
    // None of them reached the password check or the throttle.
    assert!(!server.log_text().contains("login_failed"));
    // The window's edges are inside it.
    for iat in [now - 60, now + 60] {
        let r = server
            .send(login_request(
                &server,
                Some(&key.proof("POST", "/auth/login", iat)),
            ))
            .await;
        assert_eq!(r.status, 200, "iat {iat}: {}", r.text());
    }
    assert_eq!(server.send(login_request(&server, None)).await.status, 200);
}

#[tokio::test]
async fn the_resource_refuses_each_bad_proof_and_a_bound_token_sent_as_bearer() {
    let server = TestServer::start().await;
    let key = Key::new();
    let session = dpop_login(&server, &key).await;
    let token = session.access_token.clone();
    let other = dpop_login(&server, &key).await.access_token;
    let now = server.clock.now_secs();

    let r = server.me(&token).await;
    assert_error(&r, 401, "invalid_token");
    assert!(r.header("www-authenticate").is_some_and(|c| c
        .starts_with("DPoP error=\"invalid_token\"")
        && c.contains("algs=\"ES256 EdDSA\"")));

    let r = me_dpop(&server, &token, None).await;
    assert_refused(&r, 401, Refusal::Missing);

    let no_ath = key.proof("GET", "/api/me", now);
    assert_refused(
        &me_dpop(&server, &token, Some(&no_ath)).await,
        401,
        Refusal::MissingAth,
    );

    let mut wrong = Key::claims("GET", "/api/me", now);
    wrong["ath"] = b64(&[0u8; 32]).into();
    let wrong = key.sign(&key.header(), &wrong);
    assert_refused(
        &me_dpop(&server, &token, Some(&wrong)).await,
        401,
        Refusal::WrongAth,
    );

    // A valid proof with ath of another of the client's tokens.
    let for_other = key.me_proof(&other, now);
    assert_refused(
        &me_dpop(&server, &token, Some(&for_other)).await,
        401,
        Refusal::WrongAth,
    );

    // The thief's own key, with a correct ath: the token is bound to the victim's key.
    let thief = Key::new();
    assert_refused(
        &me_dpop(&server, &token, Some(&thief.me_proof(&token, now))).await,
        401,
        Refusal::ThumbprintMismatch,
    );

    let mut post = Key::claims("POST", "/api/me", now);
    post["ath"] = access_token_hash(&token).into();
    let post = key.sign(&key.header(), &post);
    assert_refused(
        &me_dpop(&server, &token, Some(&post)).await,
        401,
        Refusal::WrongHtm,
    );

    // After all that, the right proof still works.
    let r = me_dpop(&server, &token, Some(&key.me_proof(&token, now))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let server = TestServer::start().await;
    let key = Key::new();
    let session = dpop_login(&server, &key).await;
    let now = server.clock.now_secs();
    let proof = key.me_proof(&session.access_token, now);
    assert_eq!(
        me_dpop(&server, &session.access_token, Some(&proof))
            .await
            .status,
        200
    );
    let r = me_dpop(&server, &session.access_token, Some(&proof)).await;
    assert_refused(&r, 401, Refusal::ReplayedJti);
    // Later, the same proof is stale rather than replayed, and its entry is swept.
    server.clock.advance(61);
    let r = me_dpop(&server, &session.access_token, Some(&proof)).await;
    assert_refused(&r, 401, Refusal::StaleIat);
    if !on_shared_store() {
        let report = server.handle.run_maintenance().unwrap();
        assert!(report.cleanup.dpop_proofs >= 1, "{report:?}");
    }
}

/// Two instances of one store (a shared SQLite file, or the suite's Redis), one clock.
async fn two_instances(
    dir: &TempDir,
    adjust: impl Fn(&mut token_manager_server::Config),
) -> Vec<TestServer> {
    let clock = ManualClock::new(START);
    let kek = KeyEncryptionKey::generate();
    let store = test_store();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut config = test_config(&clock, &logs);
        config.issuer = Some("http://auth.test".into());
        match &store {
            Some(spec) => {
                config.store = Some(spec.clone());
                config.key_encryption_key = Some(kek.clone());
            }
            None => config.database = dir.path().join("auth.db").display().to_string(),
        }
        adjust(&mut config);
        servers.push(TestServer::start_config(config, clock.clone(), logs).await);
    }
    servers
}

#[tokio::test]
async fn a_proof_used_on_one_instance_is_a_replay_on_another() {
    let dir = TempDir::new("dpop-replay");
    let servers = two_instances(&dir, |_| {}).await;
    let key = Key::new();
    let proof = key.proof("POST", "/auth/login", servers[0].clock.now_secs());
    let r = servers[0]
        .send(login_request(&servers[0], Some(&proof)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = servers[1]
        .send(login_request(&servers[1], Some(&proof)))
        .await;
    assert_refused(&r, 400, Refusal::ReplayedJti);
}

#[tokio::test]
async fn a_nonce_handed_out_by_one_instance_is_accepted_by_another() {
    let dir = TempDir::new("dpop-nonce");
    let servers = two_instances(&dir, |c| c.dpop_nonce = true).await;
    let key = Key::new();
    let now = servers[0].clock.now_secs();
    let r = servers[0]
        .send(login_request(
            &servers[0],
            Some(&key.proof("POST", "/auth/login", now)),
        ))
        .await;
    assert_refused(&r, 400, Refusal::MissingNonce);
    let nonce = r.header("dpop-nonce").unwrap().to_owned();
    let r = servers[1]
        .send(login_request(
            &servers[1],
            Some(&key.with_nonce("POST", "/auth/login", now, &nonce)),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("dpop-nonce"), Some(nonce.as_str()));
}

#[tokio::test]
async fn an_eddsa_proof_binds_too() {
    use ed25519_dalek::Signer as _;
    let server = TestServer::start().await;
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64(signing.verifying_key().as_bytes()),
    });
    let header = json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk });
    let sign = |claims: &Value| {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!(
            "{input}.{}",
            b64(&signing.sign(input.as_bytes()).to_bytes())
        )
    };
    let now = server.clock.now_secs();
    let r = server
        .send(login_request(
            &server,
            Some(&sign(&Key::claims("POST", "/auth/login", now))),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let session = Session::from_response(&r);
    let jkt = jwk_thumbprint(&jwk).unwrap();
    assert_eq!(claims(&session.access_token)["cnf"]["jkt"], jkt);
    let mut me = Key::claims("GET", "/api/me", now);
    me["ath"] = access_token_hash(&session.access_token).into();
    let r = me_dpop(&server, &session.access_token, Some(&sign(&me))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn logout_takes_a_dpop_token_without_a_proof_and_denies_it() {
    let server = TestServer::start().await;
    let key = Key::new();
    let session = dpop_login(&server, &key).await;
    let r = server
        .send(
            server
                .logout_request()
                .header("Authorization", &format!("DPoP {}", session.access_token)),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let now = server.clock.now_secs();
    let r = me_dpop(
        &server,
        &session.access_token,
        Some(&key.me_proof(&session.access_token, now)),
    )
    .await;
    assert_error(&r, 401, "invalid_token");
    assert_eq!(r.json()["error_description"], "the token has been revoked");
}

#[tokio::test]
async fn malformed_proofs_are_refused_and_never_stop_the_server() {
    let server = TestServer::start().await;
    let key = Key::new();
    let now = server.clock.now_secs();
    let good_claims = Key::claims("POST", "/auth/login", now).to_string();
    let header = key.header().to_string();
    let dup_alg = format!(
        r#"{{"typ":"dpop+jwt","alg":"none","alg":"ES256","jwk":{}}}"#,
        key.jwk
    );
    let dup_x = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{{"kty":"EC","crv":"P-256","x":"{}","x":"{}","y":"{}"}}}}"#,
        key.jwk["x"].as_str().unwrap(),
        key.jwk["x"].as_str().unwrap(),
        key.jwk["y"].as_str().unwrap()
    );
    let dup_htu = format!(
        r#"{{"jti":"{}","htm":"POST","htu":"http://evil.test/auth/login","htu":"{BASE}/auth/login","iat":{now}}}"#,
        random_jti()
    );
    let good = key.sign_raw(&header, &good_claims);
    let cases: Vec<(&str, String, Refusal)> =
        vec![
        ("not a JWS", "hello".into(), Refusal::Malformed),
        ("two segments", "a.b".into(), Refusal::Malformed),
        ("four segments", format!("{good}.x"), Refusal::Malformed),
        ("bad base64", format!("!!{good}"), Refusal::Malformed),
        ("padded base64", good.replacen('.', "=.", 1), Refusal::Malformed),
        ("huge", format!("{}.{}.x", "a".repeat(5000), "b"), Refusal::TooLarge),
        (
            "header not JSON",
            format!("{}.{}.x", b64(b"{not json"), b64(good_claims.as_bytes())),
            Refusal::Malformed,
        ),
        ("duplicate alg", key.sign_raw(&dup_alg, &good_claims), Refusal::Malformed),
        ("duplicate jwk x", key.sign_raw(&dup_x, &good_claims), Refusal::Malformed),
        ("duplicate htu", key.sign_raw(&header, &dup_htu), Refusal::Malformed),
        (
            "claims missing iat",
            key.sign_raw(
                &header,
                &json!({"jti": random_jti(), "htm": "POST", "htu": format!("{BASE}/auth/login")})
                    .to_string(),
            ),
            Refusal::Malformed,
        ),
        (
            "a point not on the curve",
            {
                let mut h = key.header();
                h["jwk"]["y"] = b64(&[1u8; 32]).into();
                key.sign(&h, &Key::claims("POST", "/auth/login", now))
            },
            Refusal::BadJwk,
        ),
        (
            "a DER signature",
            {
                let input = format!("{}.{}", b64(header.as_bytes()), b64(good_claims.as_bytes()));
                let sig: p256::ecdsa::Signature = key.signing.sign(input.as_bytes());
                format!("{input}.{}", b64(sig.to_der().as_bytes()))
            },
            Refusal::BadSignature,
        ),
    ];
    for (what, proof, reason) in cases {
        let r = server.send(login_request(&server, Some(&proof))).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_refused(&r, 400, reason);
    }
    let two = login_request(&server, Some(&good)).header("DPoP", &good);
    assert_refused(&server.send(two).await, 400, Refusal::MultipleProofs);
    // Still serving, and the good proof (never accepted above) works once.
    let r = server.send(login_request(&server, Some(&good))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn nonces_are_required_handed_out_and_expire_after_two_rotations() {
    let server = TestServer::start_with(|c| c.dpop_nonce = true).await;
    let key = Key::new();
    let now = server.clock.now_secs();
    let r = server
        .send(login_request(
            &server,
            Some(&key.proof("POST", "/auth/login", now)),
        ))
        .await;
    assert_refused(&r, 400, Refusal::MissingNonce);
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce").to_owned();

    let r = server
        .send(login_request(
            &server,
            Some(&key.with_nonce("POST", "/auth/login", now, &nonce)),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("dpop-nonce"), Some(nonce.as_str()));
    let session = Session::from_response(&r);

    // One rotation later the old nonce still works; the answer hands out the new one.
    server.clock.advance(300);
    let now = server.clock.now_secs();
    let r = dpop_refresh(
        &server,
        &session.cookie,
        &key.with_nonce("POST", "/auth/refresh", now, &nonce),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let newer = r.header("dpop-nonce").unwrap().to_owned();
    assert_ne!(newer, nonce);
    let session = Session::from_response(&r);

    // Two rotations later it is refused, with a current nonce to retry with.
    server.clock.advance(300);
    let now = server.clock.now_secs();
    let r = dpop_refresh(
        &server,
        &session.cookie,
        &key.with_nonce("POST", "/auth/refresh", now, &nonce),
    )
    .await;
    assert_refused(&r, 400, Refusal::StaleNonce);
    let current = r.header("dpop-nonce").unwrap().to_owned();

    // On the resource: 401 with the nonce challenge.
    let mut claims = Key::claims("GET", "/api/me", now);
    claims["ath"] = access_token_hash(&session.access_token).into();
    let r = me_dpop(
        &server,
        &session.access_token,
        Some(&key.sign(&key.header(), &claims)),
    )
    .await;
    assert_refused(&r, 401, Refusal::MissingNonce);
    claims["nonce"] = current.clone().into();
    claims["jti"] = random_jti().into();
    let r = me_dpop(
        &server,
        &session.access_token,
        Some(&key.sign(&key.header(), &claims)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("dpop-nonce"), Some(current.as_str()));
}

#[tokio::test]
async fn with_public_scheme_https_the_htu_must_be_https() {
    let server = TestServer::start_with(|c| {
        c.public_scheme = "https".into();
        c.dpop_iat_window = 5;
    })
    .await;
    let key = Key::new();
    let now = server.clock.now_secs();
    let r = server
        .send(login_request(
            &server,
            Some(&key.proof("POST", "/auth/login", now)),
        ))
        .await;
    assert_refused(&r, 400, Refusal::WrongHtu);
    let mut claims = Key::claims("POST", "/auth/login", now);
    claims["htu"] = "https://LOCALHOST:443/auth/login?next=x#y".into();
    let r = server
        .send(login_request(
            &server,
            Some(&key.sign(&key.header(), &claims)),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // --dpop-iat-window 5.
    let r = server
        .send(login_request(
            &server,
            Some(&key.proof("POST", "/auth/login", now - 6)),
        ))
        .await;
    assert_refused(&r, 400, Refusal::WrongHtu);
    let mut claims = Key::claims("POST", "/auth/login", now - 6);
    claims["htu"] = "https://localhost/auth/login".into();
    let r = server
        .send(login_request(
            &server,
            Some(&key.sign(&key.header(), &claims)),
        ))
        .await;
    assert_refused(&r, 400, Refusal::StaleIat);
}

#[tokio::test]
async fn login_requires_a_proof_with_dpop_required() {
    let server = TestServer::start_with(|c| c.dpop_required = true).await;
    let r = server.send(login_request(&server, None)).await;
    assert_refused(&r, 400, Refusal::Missing);
    dpop_login(&server, &Key::new()).await;
}

#[tokio::test]
async fn cors_allows_the_dpop_header_and_exposes_the_nonce() {
    let server = TestServer::start().await;
    let r = server
        .send(
            Request::new("OPTIONS", "/api/me")
                .header("Origin", &server.origin)
                .header("Access-Control-Request-Method", "GET")
                .header("Access-Control-Request-Headers", "authorization, dpop"),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("DPoP")));
    let r = server
        .send(Request::get("/api/me").header("Origin", &server.origin))
        .await;
    assert!(r
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("DPoP-Nonce")));
}

#[test]
fn the_thumbprint_matches_rfc_7638_and_rfc_9449() {
    // RFC 7638 §3.1 (an RSA key).
    let rsa = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        jwk_thumbprint(&rsa).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
    // The P-256 key of RFC 9449's examples and its jkt (§6.1), also computed with Python's
    // hashlib over the canonical JSON.
    let ec = json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256"
    });
    assert_eq!(
        jwk_thumbprint(&ec).as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
}
