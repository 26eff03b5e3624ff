//! DPoP (RFC 9449) in headless Chromium: the proofs a `TokenManager` with `dpop: true` sends
//! to a fake DPoP-aware server (tests/support/dpop_server.js) are verified with WebCrypto
//! against the `jwk` of their own header, and every member of the wire contract
//! (/work/briefs/dpop-contract.md, README "Server contract") is compared: `typ`, `alg`, a public
//! `jwk` only, `htm`, `htu` without query and fragment, `iat`, `jti`, `ath` on API requests
//! only, the nonce after a `use_dpop_nonce` challenge (one retry). The key is non-extractable,
//! travels with the token to a sibling (one refresh serves both) and is dropped on logout.
#![cfg(all(target_arch = "wasm32", feature = "dpop"))]

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_token_manager::TokenManager;

mod support;
use support::{call, call_async, json, prop, track, Guard};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/dpop_server.js")]
extern "C" {
    type DpopServer;
    #[wasm_bindgen(constructor)]
    fn new(lifetime_seconds: f64, options: &JsValue) -> DpopServer;
    #[wasm_bindgen(method, js_name = requestsTo)]
    fn requests_to(this: &DpopServer, path: &str) -> Array;
    #[wasm_bindgen(method, js_name = latestToken)]
    fn latest_token(this: &DpopServer) -> Option<String>;
    #[wasm_bindgen(method, js_name = pushRefreshReply)]
    fn push_refresh_reply(this: &DpopServer, reply: &str);
    #[wasm_bindgen(method, setter)]
    fn set_nonce(this: &DpopServer, nonce: &str);
    #[wasm_bindgen(method, setter, js_name = rotateEveryRequest)]
    fn set_rotate_every_request(this: &DpopServer, on: bool);

    #[wasm_bindgen(js_name = checkProof)]
    fn check_proof_js(proof: &JsValue, expected: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = proofPayload)]
    fn proof_payload(proof: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = nextAnnouncedKey)]
    fn next_announced_key(channel: &str) -> Promise;
    #[wasm_bindgen(js_name = exportRefused)]
    fn export_refused(key: &JsValue) -> Promise;
}

#[wasm_bindgen(module = "/tests/support/jose.js")]
extern "C" {
    #[wasm_bindgen(js_name = nextEvent)]
    fn next_event_promise(target: &JsValue, kind: &str, ms: u32) -> Promise;
}

fn origin() -> String {
    js_sys::eval("location.origin")
        .unwrap()
        .as_string()
        .unwrap()
}

fn server(lifetime: f64, options: &str) -> (DpopServer, Guard) {
    let s = DpopServer::new(lifetime, &json(options));
    let guard = Guard::new(&s);
    (s, guard)
}

fn manager(options: &str) -> JsValue {
    track(
        TokenManager::new(Some(json(options)))
            .expect("valid options")
            .into(),
    )
}

async fn login(m: &JsValue) {
    call_async(
        m,
        "login",
        &[json(r#"{"username":"demo","password":"demo-password"}"#)],
    )
    .await
    .expect("login");
}

async fn fetch_status(m: &JsValue, path: &str) -> u16 {
    let response = call_async(m, "fetch", &[path.into()]).await.expect("fetch");
    prop(&response, "status").as_f64().unwrap() as u16
}

/// What is wrong with `proof` (empty: it is a valid proof for `htm htu`, with the `ath` of
/// `token` and `nonce` when given).
async fn problems(
    proof: &JsValue,
    htm: &str,
    htu: &str,
    token: Option<&str>,
    nonce: Option<&str>,
) -> Vec<String> {
    let expected = json(&format!(
        r#"{{"htm":"{htm}","htu":"{htu}","token":{},"nonce":{}}}"#,
        token.map_or("null".into(), |t| format!("\"{t}\"")),
        nonce.map_or("null".into(), |n| format!("\"{n}\"")),
    ));
    let list = JsFuture::from(check_proof_js(proof, &expected))
        .await
        .unwrap();
    Array::from(&list)
        .iter()
        .map(|p| p.as_string().unwrap())
        .collect()
}

fn nth(list: &Array, i: u32) -> JsValue {
    list.get(i)
}

fn jwk_x(proof: &JsValue) -> String {
    let header = proof.as_string().unwrap();
    let header = header.split('.').next().unwrap().to_owned();
    // The header's jwk.x, read through the checker's decoder.
    let decoded = js_sys::eval(&format!(
        "JSON.parse(atob('{}'.replace(/-/g,'+').replace(/_/g,'/'))).jwk.x",
        header
    ))
    .unwrap();
    decoded.as_string().unwrap()
}

#[wasm_bindgen_test]
async fn login_and_fetch_send_proofs_that_verify_against_their_own_key() {
    let (server, _guard) = server(600.0, r#"{}"#);
    let m = manager(r#"{"dpop": true, "crossTab": false, "exposeToken": true}"#);
    login(&m).await;
    let o = origin();
    let logins = server.requests_to("/auth/login");
    assert_eq!(logins.length(), 1);
    let login_proof = prop(&nth(&logins, 0), "proof");
    let wrong = problems(&login_proof, "POST", &format!("{o}/auth/login"), None, None).await;
    assert!(wrong.is_empty(), "login proof: {wrong:?}");

    assert_eq!(fetch_status(&m, "/api/me?page=2#top").await, 200);
    let calls = server.requests_to("/api/me");
    let api = nth(&calls, 0);
    let token = server.latest_token().unwrap();
    assert_eq!(
        prop(&api, "authorization").as_string().unwrap(),
        format!("DPoP {token}"),
        "a DPoP token goes as Authorization: DPoP"
    );
    let api_proof = prop(&api, "proof");
    let wrong = problems(
        &api_proof,
        "GET",
        &format!("{o}/api/me"),
        Some(&token),
        None,
    )
    .await;
    assert!(wrong.is_empty(), "API proof: {wrong:?}");
    assert_eq!(
        jwk_x(&api_proof),
        jwk_x(&login_proof),
        "one key signs the session's proofs"
    );
    // A POST says so in its proof; every proof has its own jti.
    let init = json(r#"{"method":"POST","body":"{}"}"#);
    call_async(&m, "fetch", &["/api/items".into(), init])
        .await
        .unwrap();
    let post = nth(&server.requests_to("/api/items"), 0);
    let wrong = problems(
        &prop(&post, "proof"),
        "POST",
        &format!("{o}/api/items"),
        Some(&token),
        None,
    )
    .await;
    assert!(wrong.is_empty(), "POST proof: {wrong:?}");
    assert_ne!(
        prop(&proof_payload(&prop(&post, "proof")), "jti"),
        prop(&proof_payload(&api_proof), "jti")
    );
    // The token response's type is kept: the token is the server's, exposed as it is.
    assert_eq!(
        call(&m, "getAccessToken", &[]).unwrap().as_string(),
        Some(token)
    );
}

#[wasm_bindgen_test]
async fn the_key_is_not_extractable_and_travels_with_the_token_to_a_sibling() {
    let (server, _guard) = server(600.0, r#"{}"#);
    let channel = format!("wasm-token-manager:{}/auth/refresh", origin());
    let announced = JsFuture::from(next_announced_key(&channel));
    let a = manager(r#"{"dpop": true}"#);
    let b = manager(r#"{"dpop": true}"#);
    let b_login = JsFuture::from(next_event_promise(&b, "login", 5_000));
    login(&a).await;
    let key = announced.await.unwrap();
    assert!(key.is_object(), "a DPoP token is announced with its key");
    let private = prop(&key, "privateKey");
    assert_eq!(prop(&private, "type"), "private");
    assert_eq!(prop(&private, "extractable"), false);
    let refused = JsFuture::from(export_refused(&private)).await.unwrap();
    assert_eq!(refused, true, "exportKey must reject for every format");
    b_login.await.unwrap();
    // The sibling signs with the same key: its proofs match the token's binding.
    assert_eq!(fetch_status(&b, "/api/me").await, 200);
    let login_proof = prop(&nth(&server.requests_to("/auth/login"), 0), "proof");
    let b_proof = prop(&nth(&server.requests_to("/api/me"), 0), "proof");
    assert_eq!(jwk_x(&b_proof), jwk_x(&login_proof));
    assert_eq!(
        prop(&key, "x").as_string().unwrap(),
        jwk_x(&login_proof),
        "the announced public half is the key's"
    );
}

#[wasm_bindgen_test]
async fn one_refresh_serves_both_tabs_with_a_token_bound_to_the_shared_key() {
    let (server, _guard) = server(2.0, r#"{}"#);
    let a = manager(r#"{"dpop": true}"#);
    let b = manager(r#"{"dpop": true}"#);
    let b_login = JsFuture::from(next_event_promise(&b, "login", 5_000));
    login(&a).await;
    b_login.await.unwrap();
    let a_refresh = JsFuture::from(next_event_promise(&a, "refresh", 5_000));
    let b_refresh = JsFuture::from(next_event_promise(&b, "refresh", 5_000));
    a_refresh.await.unwrap();
    b_refresh.await.unwrap();
    let refreshes = server.requests_to("/auth/refresh");
    assert_eq!(refreshes.length(), 1, "one refresh for both tabs");
    let o = origin();
    let refresh_proof = prop(&nth(&refreshes, 0), "proof");
    let wrong = problems(
        &refresh_proof,
        "POST",
        &format!("{o}/auth/refresh"),
        None,
        None,
    )
    .await;
    assert!(wrong.is_empty(), "refresh proof: {wrong:?}");
    let login_proof = prop(&nth(&server.requests_to("/auth/login"), 0), "proof");
    assert_eq!(jwk_x(&refresh_proof), jwk_x(&login_proof));
    let token = server.latest_token().unwrap();
    for m in [&a, &b] {
        assert_eq!(fetch_status(m, "/api/me").await, 200);
    }
    let calls = server.requests_to("/api/me");
    for i in 0..2 {
        let call = nth(&calls, i);
        assert_eq!(
            prop(&call, "authorization").as_string().unwrap(),
            format!("DPoP {token}")
        );
        let wrong = problems(
            &prop(&call, "proof"),
            "GET",
            &format!("{o}/api/me"),
            Some(&token),
            None,
        )
        .await;
        assert!(wrong.is_empty(), "tab {i}: {wrong:?}");
        assert_eq!(jwk_x(&prop(&call, "proof")), jwk_x(&login_proof));
    }
}

#[wasm_bindgen_test]
async fn a_nonce_challenge_gets_one_retry_on_the_token_endpoint_and_on_the_api() {
    let (server, _guard) = server(600.0, r#"{"nonce":"n-1"}"#);
    let m = manager(r#"{"dpop": true, "crossTab": false}"#);
    login(&m).await;
    let o = origin();
    let logins = server.requests_to("/auth/login");
    assert_eq!(logins.length(), 2, "the challenge, then one retry");
    assert_eq!(
        prop(&proof_payload(&prop(&nth(&logins, 0), "proof")), "nonce"),
        JsValue::UNDEFINED
    );
    let wrong = problems(
        &prop(&nth(&logins, 1), "proof"),
        "POST",
        &format!("{o}/auth/login"),
        None,
        Some("n-1"),
    )
    .await;
    assert!(wrong.is_empty(), "retried login proof: {wrong:?}");
    // The nonce was remembered: the API gets it at once.
    assert_eq!(fetch_status(&m, "/api/me").await, 200);
    assert_eq!(server.requests_to("/api/me").length(), 1);
    // The server rotates it: a 401 challenge, one retry with the new one.
    server.set_nonce("n-2");
    assert_eq!(fetch_status(&m, "/api/me").await, 200);
    let calls = server.requests_to("/api/me");
    assert_eq!(calls.length(), 3);
    let token = server.latest_token().unwrap();
    let wrong = problems(
        &prop(&nth(&calls, 2), "proof"),
        "GET",
        &format!("{o}/api/me"),
        Some(&token),
        Some("n-2"),
    )
    .await;
    assert!(wrong.is_empty(), "retried API proof: {wrong:?}");
    // A server that challenges every proof (a new nonce each time) gets one retry, and the
    // app its 401: never a loop.
    server.set_rotate_every_request(true);
    assert_eq!(fetch_status(&m, "/api/me").await, 401);
    assert_eq!(server.requests_to("/api/me").length(), 5);
    // The 401 made the manager refresh, and the refresh was challenged twice too: a nonce
    // problem is not a verdict on the session, so the valid token is kept.
    assert!(server.requests_to("/auth/refresh").length() >= 2);
    assert_eq!(call(&m, "isAuthenticated", &[]).unwrap(), true);
}

#[wasm_bindgen_test]
async fn a_bearer_answer_stays_a_bearer_token_with_dpop_on() {
    let (server, _guard) = server(600.0, r#"{"tokenType":"Bearer"}"#);
    let m = manager(r#"{"dpop": true, "crossTab": false}"#);
    login(&m).await;
    assert_eq!(fetch_status(&m, "/api/me").await, 200);
    let api = nth(&server.requests_to("/api/me"), 0);
    let token = server.latest_token().unwrap();
    assert_eq!(
        prop(&api, "authorization").as_string().unwrap(),
        format!("Bearer {token}")
    );
    assert_eq!(
        prop(&api, "proof"),
        JsValue::NULL,
        "no proof with a bearer token"
    );
}

#[wasm_bindgen_test]
async fn a_refused_proof_keeps_the_valid_token_and_reports_dpop_failed() {
    let (server, _guard) = server(2.0, r#"{}"#);
    let m = manager(r#"{"dpop": true, "crossTab": false, "retry": {"base": 100, "cap": 200}}"#);
    login(&m).await;
    server.push_refresh_reply("bad-proof");
    let error = JsFuture::from(next_event_promise(&m, "error", 5_000))
        .await
        .unwrap();
    assert_eq!(prop(&error, "code"), "dpop_failed");
    assert_eq!(prop(&error, "tokenValid"), true);
    assert_eq!(call(&m, "isAuthenticated", &[]).unwrap(), true);
    // The retry succeeds: the session goes on.
    JsFuture::from(next_event_promise(&m, "refresh", 5_000))
        .await
        .unwrap();
    assert_eq!(fetch_status(&m, "/api/me").await, 200);
}

#[wasm_bindgen_test]
async fn logout_sends_a_proof_and_drops_the_key_so_the_next_login_has_a_new_one() {
    let (server, _guard) = server(600.0, r#"{}"#);
    let m = manager(r#"{"dpop": true, "crossTab": false}"#);
    login(&m).await;
    let token = server.latest_token().unwrap();
    call_async(&m, "logout", &[]).await.unwrap();
    let logout = nth(&server.requests_to("/auth/logout"), 0);
    assert_eq!(
        prop(&logout, "authorization").as_string().unwrap(),
        format!("DPoP {token}")
    );
    let o = origin();
    let wrong = problems(
        &prop(&logout, "proof"),
        "POST",
        &format!("{o}/auth/logout"),
        Some(&token),
        None,
    )
    .await;
    assert!(wrong.is_empty(), "logout proof: {wrong:?}");
    login(&m).await;
    let logins = server.requests_to("/auth/login");
    assert_ne!(
        jwk_x(&prop(&nth(&logins, 0), "proof")),
        jwk_x(&prop(&nth(&logins, 1), "proof")),
        "a new session, a new key"
    );
}

#[wasm_bindgen_test]
async fn proofs_carry_the_issuers_time_when_the_local_clock_is_three_hours_behind() {
    const SKEW: i64 = 3 * 3600;
    let (server, _guard) = server(600.0, &format!(r#"{{"clockSkew":{SKEW}}}"#));
    let m = manager(r#"{"dpop": true, "crossTab": false}"#);
    login(&m).await;
    // The login's answer carried the server's `Date`: from then on `iat` is the issuer's time.
    assert_eq!(fetch_status(&m, "/api/me").await, 200);
    let api = nth(&server.requests_to("/api/me"), 0);
    let token = server.latest_token().unwrap();
    let expected = json(&format!(
        r#"{{"htm":"GET","htu":"{}/api/me","token":"{token}","clockSkew":{SKEW}}}"#,
        origin()
    ));
    let list = JsFuture::from(check_proof_js(&prop(&api, "proof"), &expected))
        .await
        .unwrap();
    let wrong: Vec<String> = Array::from(&list)
        .iter()
        .map(|p| p.as_string().unwrap())
        .collect();
    assert!(wrong.is_empty(), "iat on the issuer's clock: {wrong:?}");
}
