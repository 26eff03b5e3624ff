//! The browser layer in headless Chromium, against a fake auth server installed as the page's
//! `fetch` (tests/support/fake_server.js). The manager is driven through its JavaScript API,
//! as an application would use it. Tokens live a few seconds; no test sleeps: each waits for
//! the event it expects, with a deadline.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_token_manager::{decode_claims, TokenManager};

mod support;
use support::{call, call_async, free, json, obj, prop, track, Guard};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/tests/support/fake_server.js")]
extern "C" {
    type FakeServer;
    #[wasm_bindgen(constructor)]
    fn new(lifetime_seconds: f64) -> FakeServer;
    #[wasm_bindgen(method)]
    fn uninstall(this: &FakeServer);
    #[wasm_bindgen(method)]
    fn count(this: &FakeServer, path: &str) -> u32;
    #[wasm_bindgen(method, js_name = lastRequest)]
    fn last_request(this: &FakeServer, path: &str) -> JsValue;
    #[wasm_bindgen(method, js_name = requestsTo)]
    fn requests_to(this: &FakeServer, path: &str) -> Array;
    #[wasm_bindgen(method, js_name = latestToken)]
    fn latest_token(this: &FakeServer) -> Option<String>;
    #[wasm_bindgen(method, js_name = pushRefreshReply)]
    fn push_refresh_reply(this: &FakeServer, reply: JsValue);
    #[wasm_bindgen(method, js_name = rejectToken)]
    fn reject_token(this: &FakeServer, token: &str);
    #[wasm_bindgen(method, setter, js_name = apiAlways401)]
    fn set_api_always_401(this: &FakeServer, v: bool);
    #[wasm_bindgen(method, setter, js_name = refreshDelayMs)]
    fn set_refresh_delay_ms(this: &FakeServer, v: f64);
    #[wasm_bindgen(method, setter)]
    fn set_cookie(this: &FakeServer, v: bool);
    #[wasm_bindgen(method, setter)]
    fn set_lifetime(this: &FakeServer, v: f64);
    #[wasm_bindgen(method, setter, js_name = loginStatus)]
    fn set_login_status(this: &FakeServer, v: u16);
    #[wasm_bindgen(method, setter)]
    fn set_opaque(this: &FakeServer, v: bool);
    #[wasm_bindgen(method, setter, js_name = endSessionUrl)]
    fn set_end_session_url(this: &FakeServer, v: &str);

    #[wasm_bindgen(js_name = forgeToken)]
    fn forge_token(claims: &JsValue) -> String;
    #[wasm_bindgen(js_name = announceOnChannel)]
    fn announce_on_channel(refresh_path: &str, token: &str, received_at: f64, lifetime_ms: f64);
    #[wasm_bindgen(js_name = announceThenAsk)]
    fn announce_then_ask(
        refresh_path: &str,
        token: &str,
        received_at: f64,
        lifetime_ms: f64,
        ms: u32,
    ) -> js_sys::Promise;

    #[wasm_bindgen(js_name = postThenAsk)]
    fn post_then_ask(refresh_path: &str, messages: &Array, ms: u32) -> js_sys::Promise;

    #[wasm_bindgen(js_name = nextEvent)]
    fn next_event_promise(target: &JsValue, kind: &str, ms: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = persistedState)]
    fn persisted_state() -> js_sys::Promise;
    fn concurrently(n: u32, f: &js_sys::Function) -> js_sys::Promise;
    #[wasm_bindgen(js_name = errorCode)]
    fn error_code(e: &JsValue) -> Option<String>;
}

#[wasm_bindgen(module = "/tests/support/jose.js")]
extern "C" {
    #[wasm_bindgen(js_name = generateKey)]
    fn jose_generate_key(alg: &str, kid: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = sign)]
    fn jose_sign(key: &JsValue, header: &JsValue, claims: &JsValue) -> js_sys::Promise;
    /// A fake issuer signing real ES256 tokens (the verification tests' server).
    type SigningServer;
    #[wasm_bindgen(constructor)]
    fn new(key: &JsValue, lifetime_seconds: f64) -> SigningServer;
    #[wasm_bindgen(method, js_name = uninstall)]
    fn uninstall_signing(this: &SigningServer);
    #[wasm_bindgen(method, getter)]
    fn jwks(this: &SigningServer) -> JsValue;
}

fn manager(options: &str) -> JsValue {
    track(
        TokenManager::new(Some(json(options)))
            .expect("valid options")
            .into(),
    )
}

async fn next_event(m: &JsValue, kind: &str, ms: u32) -> JsValue {
    JsFuture::from(next_event_promise(m, kind, ms))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

async fn login(m: &JsValue) -> JsValue {
    let creds = obj(&[
        ("username", "demo".into()),
        ("password", "demo-password".into()),
    ]);
    call_async(m, "login", &[creds]).await.expect("login")
}

async fn get_json(m: &JsValue, url: &str) -> (u16, JsValue) {
    let res = call_async(m, "fetch", &[url.into()]).await.expect("fetch");
    let status = prop(&res, "status").as_f64().unwrap() as u16;
    let body = call_async(&res, "json", &[]).await.unwrap_or(JsValue::NULL);
    (status, body)
}

/// `login()` refuses credentials that are not a JSON-serializable object with
/// `invalid_argument`, before any request: nothing goes to the login endpoint and the manager
/// stays signed out; a good login afterwards works.
#[wasm_bindgen_test]
async fn login_refuses_credentials_that_are_not_a_serializable_object() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let cyclic = Object::new();
    Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    let big = obj(&[("password", js_sys::BigInt::from(1u32).into())]);
    let bad: [JsValue; 6] = [
        JsValue::NULL,
        JsValue::UNDEFINED,
        "demo:demo-password".into(),
        Array::of2(&"demo".into(), &"demo-password".into()).into(),
        cyclic.into(),
        big,
    ];
    for credentials in bad {
        let refused = call_async(&m, "login", &[credentials]).await.unwrap_err();
        assert_eq!(error_code(&refused).as_deref(), Some("invalid_argument"));
    }
    assert_eq!(server.count("/auth/login"), 0);
    assert_eq!(prop(&m, "state"), "signedOut");
    login(&m).await;
    assert_eq!(server.count("/auth/login"), 1);
}

#[wasm_bindgen_test]
async fn login_gives_claims_and_fetch_attaches_the_bearer_token() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let claims = login(&m).await;
    assert_eq!(prop(&claims, "name"), "Ada Lovelace");
    assert_eq!(prop(&claims, "sub"), "user-1");
    assert!(Object::is_frozen(&call(&m, "claims", &[]).unwrap().into()));
    assert!(call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    assert_eq!(prop(&m, "state"), "signedIn");
    let login_req = server.last_request("/auth/login");
    assert_eq!(prop(&login_req, "credentials"), "include");
    let (status, _) = get_json(&m, "/api/me").await;
    assert_eq!(status, 200);
    let api = server.last_request("/api/me");
    assert_eq!(
        prop(&api, "authorization").as_string().unwrap(),
        format!("Bearer {}", server.latest_token().unwrap())
    );
    let exp = call(&m, "expiresAt", &[]).unwrap().as_f64().unwrap();
    assert!((exp - js_sys::Date::now() - 900_000.0).abs() < 5_000.0);
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn wrong_credentials_are_invalid_credentials_and_leave_the_manager_signed_out() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let creds = obj(&[("username", "demo".into()), ("password", "nope".into())]);
    let err = call_async(&m, "login", &[creds]).await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("invalid_credentials"));
    assert!(!prop(&err, "message").as_string().unwrap().contains("nope"));
    assert_eq!(prop(&m, "state"), "signedOut");
    assert_eq!(call(&m, "claims", &[]).unwrap(), JsValue::NULL);
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn restore_uses_the_refresh_cookie_and_reports_no_session_as_false() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let errors = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counter = errors.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |_| counter.set(counter.get() + 1));
    call(
        &m,
        "addEventListener",
        &["error".into(), on_error.as_ref().clone()],
    )
    .unwrap();
    assert_eq!(call_async(&m, "restore", &[]).await.unwrap(), false);
    assert_eq!(
        errors.get(),
        0,
        "a first visit without a cookie is not an error"
    );
    server.set_cookie(true);
    assert_eq!(call_async(&m, "restore", &[]).await.unwrap(), true);
    assert_eq!(
        prop(&call(&m, "claims", &[]).unwrap(), "name"),
        "Ada Lovelace"
    );
    let refresh = server.last_request("/auth/refresh");
    assert_eq!(prop(&refresh, "method"), "POST");
    assert_eq!(prop(&refresh, "credentials"), "include");
    assert_eq!(prop(&refresh, "csrf"), "wasm-token-manager");
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn the_token_is_refreshed_silently_before_it_expires() {
    let server = FakeServer::new(2.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let first = server.latest_token().unwrap();
    let detail = next_event(&m, "refresh", 5_000).await;
    assert_eq!(prop(&detail, "source"), "refresh");
    assert_eq!(server.count("/auth/refresh"), 1);
    assert_ne!(server.latest_token().unwrap(), first);
    // The refresh happened while the first token was still valid: never a gap.
    assert!(call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn twenty_concurrent_fetches_after_a_401_share_one_refresh_and_retry_once() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    server.reject_token(&server.latest_token().unwrap());
    server.set_refresh_delay_ms(50.0);
    let m2 = m.clone();
    let f = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
        js_sys::Promise::from(call(&m2, "fetch", &["/api/data".into()]).unwrap())
    });
    let responses: Array = JsFuture::from(concurrently(20, f.as_ref().unchecked_ref()))
        .await
        .unwrap()
        .into();
    for r in responses.iter() {
        assert_eq!(prop(&r, "status"), 200);
    }
    assert_eq!(server.count("/auth/refresh"), 1, "single flight");
    assert_eq!(
        server.count("/api/data"),
        40,
        "each request sent twice, no more"
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_persistent_401_is_retried_once_and_never_loops() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    server.set_api_always_401(true);
    let body = obj(&[("method", "PUT".into()), ("body", "payload".into())]);
    let res = call_async(&m, "fetch", &["/api/data".into(), body])
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 401);
    assert_eq!(server.count("/api/data"), 2);
    assert_eq!(server.count("/auth/refresh"), 1);
    // The replayed request carried the same body.
    for r in server.requests_to("/api/data").iter() {
        assert_eq!(prop(&r, "body"), "payload");
    }
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn other_origins_never_see_the_token_and_other_options_pass_through() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let init = obj(&[("method", "PUT".into()), ("body", "x".into())]);
    let res = call_async(&m, "fetch", &["https://elsewhere.example/api".into(), init])
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 200);
    let foreign = server.last_request("/api");
    assert_eq!(prop(&foreign, "authorization"), JsValue::NULL);
    assert_eq!(prop(&foreign, "method"), "PUT");
    assert_eq!(prop(&foreign, "body"), "x");
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_missing_fetch_or_a_bad_request_is_a_coded_error() {
    let m = manager(r#"{"crossTab": false}"#);
    let global = js_sys::global();
    let saved = Reflect::get(&global, &"fetch".into()).unwrap();
    Reflect::delete_property(&global, &"fetch".into()).unwrap();
    let missing = call_async(&m, "fetch", &["https://elsewhere.example/".into()]).await;
    Reflect::set(&global, &"fetch".into(), &saved).unwrap();
    assert_eq!(
        error_code(&missing.unwrap_err()).as_deref(),
        Some("no_fetch")
    );
    // `new Request` refuses a GET with a body: so does `auth.fetch`, with its own code.
    let init = obj(&[("method", "GET".into()), ("body", "x".into())]);
    let bad = call_async(&m, "fetch", &["/api/me".into(), init]).await;
    assert_eq!(
        error_code(&bad.unwrap_err()).as_deref(),
        Some("invalid_argument")
    );
    free(m);
}

#[wasm_bindgen_test]
async fn an_allowlisted_api_origin_gets_the_token() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false, "apiOrigins": ["https://api.example"]}"#);
    login(&m).await;
    call_async(&m, "fetch", &["https://api.example/v1/me".into()])
        .await
        .unwrap();
    let req = server.last_request("/v1/me");
    assert!(prop(&req, "authorization")
        .as_string()
        .unwrap()
        .starts_with("Bearer "));
    // The page's own origin is no longer in the list.
    call_async(&m, "fetch", &["/api/me".into()]).await.unwrap();
    assert_eq!(
        prop(&server.last_request("/api/me"), "authorization"),
        JsValue::NULL
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn with_a_fresh_token_the_request_is_sent_before_fetch_returns() {
    // The fast path: no task, no hop between `auth.fetch()` and the global `fetch`.
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let promise = call(&m, "fetch", &["/api/me".into()]).unwrap();
    assert_eq!(server.count("/api/me"), 1, "sent during the call");
    let sent = server.last_request("/api/me");
    assert_eq!(
        prop(&sent, "authorization").as_string().unwrap(),
        ["Bearer ", &server.latest_token().unwrap()].concat()
    );
    let res = JsFuture::from(js_sys::Promise::from(promise))
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 200);
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn an_api_origin_matches_exactly_never_by_prefix() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false, "apiOrigins": ["https://api.example"]}"#);
    login(&m).await;
    let cases = [
        ("https://api.example.evil/a", false),
        ("https://api.example:8443/b", false),
        ("http://api.example/c", false),
        ("https://api.example:443/d", true),
        ("https://API.Example/e", true),
        ("https://api.example?f", true),
    ];
    for (url, attached) in cases {
        call_async(&m, "fetch", &[url.into()]).await.unwrap();
        let sent: JsValue = server
            .requests_to(&web_sys::Url::new(url).unwrap().pathname())
            .iter()
            .last()
            .unwrap();
        assert_eq!(prop(&sent, "authorization").is_string(), attached, "{url}");
    }
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn the_raw_token_is_hidden_unless_expose_token_is_set() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let err = call(&m, "getAccessToken", &[]).unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("token_not_exposed"));
    free(m);
    let m = manager(r#"{"crossTab": false, "exposeToken": true}"#);
    // Signed out: `undefined`, not an error.
    assert!(call(&m, "getAccessToken", &[]).unwrap().is_undefined());
    login(&m).await;
    assert_eq!(
        call(&m, "getAccessToken", &[]).unwrap().as_string(),
        server.latest_token()
    );
    call_async(&m, "logout", &[]).await.unwrap();
    assert!(call(&m, "getAccessToken", &[]).unwrap().is_undefined());
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
fn every_bad_option_is_a_coded_constructor_error() {
    let cases = [
        (r#"{"loginURL": "/auth/login"}"#, "unknown_option"),
        (r#"{"retry": {"bse": 1}}"#, "unknown_option"),
        (r#"{"refreshUrl": 5}"#, "invalid_option"),
        (
            r#"{"refreshUrl": "http://auth.example.com/refresh"}"#,
            "insecure_endpoint",
        ),
        (
            r#"{"loginUrl": "ftp://127.0.0.1/login"}"#,
            "insecure_endpoint",
        ),
        (r#"{"apiOrigins": "https://api.example"}"#, "invalid_option"),
        (
            r#"{"apiOrigins": ["https://api.example/path"]}"#,
            "invalid_option",
        ),
        (r#"{"apiOrigins": ["not a url"]}"#, "invalid_option"),
        (
            r#"{"apiOrigins": ["https://user:pw@api.example"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://user@api.example/"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://api.example/?q=1"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://api.example/#top"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://api.example?"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://api.example/#"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["https://api.example//"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["blob:https://api.example/x"]}"#,
            "invalid_option",
        ),
        (
            r#"{"apiOrigins": ["http://api.example"]}"#,
            "insecure_endpoint",
        ),
        (r#"{"refreshLeadSeconds": -1}"#, "invalid_option"),
        (r#"{"leewaySeconds": "5"}"#, "invalid_option"),
        (r#"{"requestTimeoutMs": 0}"#, "invalid_option"),
        (r#"{"crossTab": "yes"}"#, "invalid_option"),
        (r#"{"exposeToken": 1}"#, "invalid_option"),
        (
            r#"{"retry": {"base": 5000, "cap": 1000}}"#,
            "invalid_option",
        ),
        (r#"{"retry": {"budget": 0}}"#, "invalid_option"),
        (r#"{"retry": []}"#, "invalid_option"),
        (r#"[]"#, "invalid_option"),
        (r#""options""#, "invalid_option"),
    ];
    for (options, code) in cases {
        let err = TokenManager::new(Some(json(options))).unwrap_err();
        assert_eq!(error_code(&err).as_deref(), Some(code), "{options}");
        assert_eq!(prop(&err, "name"), "TokenManagerError");
    }
    // Defaults, and https endpoints anywhere, are fine.
    assert!(TokenManager::new(None).is_ok());
    assert!(TokenManager::new(Some(json(r#"{"refreshUrl": "https://auth.example.com/refresh", "apiOrigins": ["https://api.example", "http://localhost:9000"]}"#))).is_ok());
    // Bare origins in any spelling the URL parser normalizes to one are fine.
    assert!(TokenManager::new(Some(json(r#"{"apiOrigins": ["HTTPS://API.Example:443/", "https://xn--bcher-kva.example", "http://127.0.0.1:8080"]}"#))).is_ok());
}

#[wasm_bindgen_test]
async fn a_hanging_refresh_times_out_and_keeps_the_token() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false, "requestTimeoutMs": 300}"#);
    login(&m).await;
    server.reject_token(&server.latest_token().unwrap());
    server.push_refresh_reply("hang".into());
    let error = JsFuture::from(next_event_promise(&m, "error", 5_000));
    let res = call_async(&m, "fetch", &["/api/x".into()]).await.unwrap();
    assert_eq!(
        prop(&res, "status"),
        401,
        "no new token: the 401 is returned"
    );
    let detail = error.await.unwrap();
    assert_eq!(prop(&detail, "code"), "timeout");
    assert_eq!(prop(&detail, "tokenValid"), true);
    assert!(call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn rate_limits_and_server_errors_keep_the_token() {
    for (reply, code) in [
        (JsValue::from("429:30"), "rate_limited"),
        (503.into(), "server_error"),
        ("network".into(), "network_error"),
    ] {
        let server = FakeServer::new(900.0);
        let _guard = Guard::new(&server);
        let m = manager(r#"{"crossTab": false}"#);
        login(&m).await;
        server.reject_token(&server.latest_token().unwrap());
        server.push_refresh_reply(reply);
        let error = JsFuture::from(next_event_promise(&m, "error", 5_000));
        call_async(&m, "fetch", &["/api/x".into()]).await.unwrap();
        let detail = error.await.unwrap();
        assert_eq!(prop(&detail, "code"), code);
        assert_eq!(prop(&detail, "tokenValid"), true);
        if code == "rate_limited" {
            assert!(prop(&detail, "retryInMs").as_f64().unwrap() >= 30_000.0);
        }
        assert!(
            call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap(),
            "{code}"
        );
        assert_eq!(prop(&m, "state"), "signedIn");
        free(m);
        server.uninstall();
    }
}

#[wasm_bindgen_test]
async fn a_refused_refresh_emits_expired_and_clears_the_token() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    server.reject_token(&server.latest_token().unwrap());
    server.push_refresh_reply(401.into());
    let expired = JsFuture::from(next_event_promise(&m, "expired", 5_000));
    call_async(&m, "fetch", &["/api/x".into()]).await.unwrap();
    let detail = expired.await.unwrap();
    assert_eq!(prop(&detail, "reason"), "rejected");
    assert_eq!(prop(&detail, "retrying"), false);
    assert!(!call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    assert_eq!(prop(&m, "state"), "expired");
    let err = call_async(&m, "fetch", &["/api/x".into()])
        .await
        .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("not_authenticated"));
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn two_managers_on_one_channel_share_login_and_one_refresh_and_logout() {
    let server = FakeServer::new(2.0);
    let _guard = Guard::new(&server);
    let a = manager(r#"{}"#);
    let b = manager(r#"{}"#);
    let b_login = JsFuture::from(next_event_promise(&b, "login", 5_000));
    login(&a).await;
    assert_eq!(prop(&b_login.await.unwrap(), "source"), "otherTab");
    assert_eq!(
        prop(&call(&b, "claims", &[]).unwrap(), "jti"),
        prop(&call(&a, "claims", &[]).unwrap(), "jti")
    );
    let a_refresh = JsFuture::from(next_event_promise(&a, "refresh", 5_000));
    let b_refresh = JsFuture::from(next_event_promise(&b, "refresh", 5_000));
    let (ra, rb) = (a_refresh.await.unwrap(), b_refresh.await.unwrap());
    let sources = [
        prop(&ra, "source").as_string().unwrap(),
        prop(&rb, "source").as_string().unwrap(),
    ];
    assert!(
        sources.contains(&"refresh".to_string()) && sources.contains(&"otherTab".to_string()),
        "{sources:?}"
    );
    assert_eq!(
        server.count("/auth/refresh"),
        1,
        "one refresh between the two"
    );

    // A third manager restoring on "page load" asks its siblings instead of the endpoint.
    let c = manager(r#"{}"#);
    assert_eq!(call_async(&c, "restore", &[]).await.unwrap(), true);
    assert_eq!(server.count("/auth/refresh"), 1);

    let b_logout = JsFuture::from(next_event_promise(&b, "logout", 5_000));
    call_async(&a, "logout", &[]).await.unwrap();
    assert_eq!(prop(&b_logout.await.unwrap(), "origin"), "otherTab");
    assert!(!call(&b, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    let logout = server.last_request("/auth/logout");
    assert!(
        prop(&logout, "authorization")
            .as_string()
            .unwrap()
            .starts_with("Bearer "),
        "the server is told which token to deny"
    );
    for m in [a, b, c] {
        free(m);
    }
    server.uninstall();
}

#[wasm_bindgen_test]
async fn no_token_is_ever_persisted_anywhere() {
    let server = FakeServer::new(2.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{}"#);
    login(&m).await;
    next_event(&m, "refresh", 5_000).await;
    get_json(&m, "/api/me").await;
    let state = JsFuture::from(persisted_state())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    for token in server.requests_to("/api/me").iter() {
        let auth = prop(&token, "authorization").as_string().unwrap();
        let token = auth.trim_start_matches("Bearer ");
        assert!(!state.contains(token), "token found in storage");
        // Nor any of its three parts.
        for part in token.split('.') {
            assert!(!state.contains(part));
        }
    }
    call_async(&m, "logout", &[]).await.unwrap();
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn listeners_are_typed_by_event_name_and_removable() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let err = call(
        &m,
        "addEventListener",
        &["loggedin".into(), js_sys::Function::new_no_args("").into()],
    )
    .unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("invalid_argument"));
    // A type that is not a string at all is refused the same way, on both methods.
    for method in ["addEventListener", "removeEventListener"] {
        for kind in [
            JsValue::from(5),
            JsValue::NULL,
            Array::of1(&"login".into()).into(),
        ] {
            let err = call(
                &m,
                method,
                &[kind, js_sys::Function::new_no_args("").into()],
            );
            assert_eq!(
                error_code(&err.unwrap_err()).as_deref(),
                Some("invalid_argument")
            );
        }
    }
    let counter = js_sys::Function::new_with_args(
        "e",
        "globalThis.__stateChanges = (globalThis.__stateChanges || 0) + 1",
    );
    call(
        &m,
        "addEventListener",
        &["statechange".into(), counter.clone().into()],
    )
    .unwrap();
    login(&m).await;
    let seen = Reflect::get(&js_sys::global(), &"__stateChanges".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(seen >= 1.0);
    call(
        &m,
        "removeEventListener",
        &["statechange".into(), counter.into()],
    )
    .unwrap();
    call_async(&m, "logout", &[]).await.unwrap();
    let after = Reflect::get(&js_sys::global(), &"__stateChanges".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(seen, after);
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_listener_that_calls_back_sees_what_its_call_queued_before_the_rest_of_its_batch() {
    // A refresh fails (503) with the token still valid: one batch of two events, `error` then
    // the state back to `signedIn`. The `error` listener calls back into the manager (an
    // `online` event: retry now), which queues a new refresh and its `statechange` at once.
    // That nested call dispatches only what it queued, before the rest of the outer batch: the
    // order the driver has always had (`Driver::pump` takes the queued batch whole). A pump
    // popping one event at a time would show `refreshing>signedIn` first.
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let log = Array::new();
    let record = js_sys::Function::new_with_args(
        "log, m",
        "let retried = false;
         m.addEventListener('statechange', (e) => log.push(e.detail.from + '>' + e.detail.to));
         m.addEventListener('error', (e) => {
           log.push('error:' + e.detail.code);
           if (!retried) { retried = true; globalThis.dispatchEvent(new Event('online')); }
           log.push('error listener returned');
         });",
    );
    record.call2(&JsValue::NULL, &log, &m).unwrap();
    server.reject_token(&server.latest_token().unwrap());
    server.push_refresh_reply(503.into());
    let res = call_async(&m, "fetch", &["/api/x".into()]).await.unwrap();
    assert_eq!(prop(&res, "status"), 401);
    if prop(&m, "state") == "refreshing" {
        next_event(&m, "statechange", 5_000).await;
    }
    let seen: Vec<String> = log.iter().map(|v| v.as_string().unwrap()).collect();
    assert_eq!(
        seen,
        [
            "signedIn>refreshing",
            "error:server_error",
            "signedIn>refreshing",
            "error listener returned",
            "refreshing>signedIn",
            "refreshing>signedIn",
        ]
    );
    assert_eq!(prop(&m, "state"), "signedIn");
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
fn decode_claims_reads_a_token_and_names_what_is_wrong() {
    let header = "eyJhbGciOiJSUzI1NiJ9"; // {"alg":"RS256"}
    let claims = "eyJzdWIiOiJ1MSIsIm5hbWUiOiJBZGEiLCJleHAiOjk5fQ"; // {"sub":"u1","name":"Ada","exp":99}
    let v = decode_claims(format!("{header}.{claims}.c2ln").into()).unwrap();
    assert_eq!(prop(&v, "name"), "Ada");
    assert_eq!(prop(&v, "exp"), 99);
    for (token, code) in [
        (JsValue::from("a.b"), "malformed_token"),
        (
            format!("{header}.{claims}.c2ln.x").into(),
            "malformed_token",
        ),
        (format!("{header}.{claims}=.c2ln").into(), "bad_base64"),
        (format!("{header}.e3+.c2ln").into(), "bad_base64"),
        (format!("{header}.e31.c2ln").into(), "bad_base64"),
        (format!("{header}.e30.c2ln").into(), "ok"),
        (format!("{header}.W10.c2ln").into(), "not_object"),
        (
            format!("{header}.eyJleHAiOiIxMjMifQ.c2ln").into(),
            "claim_type",
        ),
        ("a".repeat(20_000).into(), "too_large"),
        (JsValue::from(5), "invalid_argument"),
    ] {
        match decode_claims(token) {
            Ok(_) => assert_eq!(code, "ok"),
            Err(e) => assert_eq!(error_code(&e).as_deref(), Some(code)),
        }
    }
}

const DAY_MS: f64 = 86_400_000.0;

fn now_secs() -> f64 {
    (js_sys::Date::now() / 1000.0).floor()
}

#[wasm_bindgen_test]
async fn a_forged_announcement_of_another_account_or_session_never_replaces_the_session() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{}"#);
    login(&m).await;
    let own = prop(&call(&m, "claims", &[]).unwrap(), "jti");
    let expires = call(&m, "expiresAt", &[]).unwrap().as_f64().unwrap();
    for (sub, sid) in [("user-2", "session-1"), ("user-1", "session-2")] {
        // A genuine-looking token, fresher than the held one, announced for 3,646 days.
        let iat = now_secs();
        let forged = forge_token(&json(&format!(
            r#"{{"sub":"{sub}","sid":"{sid}","iat":{iat},"exp":{},"jti":"forged","name":"Mallory"}}"#,
            iat + 900.0
        )));
        let answer = JsFuture::from(announce_then_ask(
            "/auth/refresh",
            &forged,
            js_sys::Date::now(),
            3646.0 * DAY_MS,
            5_000,
        ))
        .await
        .unwrap();
        // The manager answered the ask with its own token, so it has handled the forgery.
        assert_eq!(
            prop(&answer, "token").as_string(),
            server.latest_token(),
            "{sub}/{sid}"
        );
        let claims = call(&m, "claims", &[]).unwrap();
        assert_eq!(prop(&claims, "jti"), own, "{sub}/{sid}");
        assert_eq!(prop(&claims, "sub"), "user-1");
        assert_eq!(prop(&claims, "name"), "Ada Lovelace");
        let now_expires = call(&m, "expiresAt", &[]).unwrap().as_f64().unwrap();
        // (expiresAt is read through the wall clock: a millisecond either way.)
        assert!((now_expires - expires).abs() < 1_000.0, "{sub}/{sid}");
    }
    // The API still gets the session's own token.
    get_json(&m, "/api/me").await;
    assert_eq!(
        prop(&server.last_request("/api/me"), "authorization")
            .as_string()
            .unwrap(),
        format!("Bearer {}", server.latest_token().unwrap())
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn with_verification_another_accounts_genuine_token_never_replaces_the_session() {
    let key = JsFuture::from(jose_generate_key("ES256", "k1"))
        .await
        .unwrap();
    let server = SigningServer::new(&key, 900.0);
    let _guard = Guard::new(&server);
    let verify = obj(&[
        ("jwks", server.jwks()),
        ("algorithms", json(r#"["ES256"]"#)),
    ]);
    let m: JsValue = track(
        TokenManager::new(Some(obj(&[("verify", verify)])))
            .expect("valid options")
            .into(),
    );
    login(&m).await;
    let signed = |sub: &'static str, jti: &'static str| {
        let iat = now_secs();
        let claims = json(&format!(
            r#"{{"iss":"https://issuer.test","aud":"api","sub":"{sub}","iat":{iat},"nbf":{iat},"exp":{},"jti":"{jti}"}}"#,
            iat + 900.0
        ));
        let header = json(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#);
        JsFuture::from(jose_sign(&key, &header, &claims))
    };
    // Genuinely signed by the issuer, but another user's, and announced for 3,646 days.
    let other = signed("user-2", "other-account")
        .await
        .unwrap()
        .as_string()
        .unwrap();
    announce_on_channel(
        "/auth/refresh",
        &other,
        js_sys::Date::now(),
        3646.0 * DAY_MS,
    );
    // Then this session's next token, announced as a sibling would: verified after the other
    // one, it is adopted only if the other one was refused (it would not be newer otherwise).
    let refreshed = JsFuture::from(next_event_promise(&m, "refresh", 5_000));
    let own = signed("user-1", "own-next")
        .await
        .unwrap()
        .as_string()
        .unwrap();
    announce_on_channel("/auth/refresh", &own, js_sys::Date::now(), 900_000.0);
    assert_eq!(prop(&refreshed.await.unwrap(), "source"), "otherTab");
    let claims = call(&m, "claims", &[]).unwrap();
    assert_eq!(prop(&claims, "sub"), "user-1");
    assert_eq!(prop(&claims, "jti"), "own-next");
    free(m);
    server.uninstall_signing();
}

#[wasm_bindgen_test]
async fn a_signed_out_tab_adopts_an_announced_login_only_for_the_tokens_own_lifetime() {
    let m = manager(r#"{}"#);
    let login_event = JsFuture::from(next_event_promise(&m, "login", 5_000));
    let iat = now_secs();
    let token = forge_token(&json(&format!(
        r#"{{"sub":"user-1","sid":"session-1","iat":{iat},"exp":{},"jti":"t"}}"#,
        iat + 60.0
    )));
    announce_on_channel(
        "/auth/refresh",
        &token,
        js_sys::Date::now(),
        3646.0 * DAY_MS,
    );
    assert_eq!(prop(&login_event.await.unwrap(), "source"), "otherTab");
    let left = call(&m, "expiresAt", &[]).unwrap().as_f64().unwrap() - js_sys::Date::now();
    assert!(
        left <= 62_000.0,
        "adopted for {} days",
        (left / DAY_MS).round()
    );
    free(m);
}

#[wasm_bindgen_test]
fn a_loopback_lookalike_host_is_an_insecure_endpoint() {
    for options in [
        r#"{"refreshUrl": "http://127.evil.example/auth/refresh"}"#,
        r#"{"loginUrl": "http://127.0.0.1.evil.example/auth/login"}"#,
        r#"{"logoutUrl": "http://127.0.0.1.nip.io/auth/logout"}"#,
        r#"{"refreshUrl": "http://localhost.evil.example/auth/refresh"}"#,
        r#"{"apiOrigins": ["http://127.evil.example"]}"#,
    ] {
        let err = TokenManager::new(Some(json(options))).unwrap_err();
        assert_eq!(
            error_code(&err).as_deref(),
            Some("insecure_endpoint"),
            "{options}"
        );
    }
    // Loopback itself, in every spelling the URL parser turns into a loopback address.
    for options in [
        r#"{"refreshUrl": "http://127.0.0.1:8080/auth/refresh"}"#,
        r#"{"refreshUrl": "http://127.1/auth/refresh"}"#,
        r#"{"refreshUrl": "http://[::1]:8080/auth/refresh"}"#,
        r#"{"refreshUrl": "http://localhost:8080/auth/refresh"}"#,
        r#"{"apiOrigins": ["http://127.0.0.2:9000", "http://[::1]"]}"#,
    ] {
        assert!(TokenManager::new(Some(json(options))).is_ok(), "{options}");
    }
}

#[wasm_bindgen_test]
async fn a_post_refused_with_401_is_not_replayed_and_the_401_is_returned() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    let refused = server.latest_token().unwrap();
    server.reject_token(&refused);
    let refreshed = JsFuture::from(next_event_promise(&m, "refresh", 5_000));
    for method in ["POST", "PATCH"] {
        let init = obj(&[("method", method.into()), ("body", "pay 10".into())]);
        let res = call_async(&m, "fetch", &["/api/pay".into(), init])
            .await
            .unwrap();
        assert_eq!(prop(&res, "status"), 401, "{method}");
    }
    assert_eq!(
        server.count("/api/pay"),
        2,
        "each sent once, never replayed"
    );
    // The refused token is replaced in the background, so the app's own retry can succeed.
    let _ = refreshed.await;
    assert_eq!(server.count("/auth/refresh"), 1);
    let init = obj(&[("method", "POST".into()), ("body", "pay 10".into())]);
    let res = call_async(&m, "fetch", &["/api/pay".into(), init])
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 200);
    assert_ne!(
        prop(&server.last_request("/api/pay"), "authorization").as_string(),
        Some(format!("Bearer {refused}"))
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_stream_body_is_never_replayed_and_the_apps_own_authorization_is_left_alone() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    login(&m).await;
    server.reject_token(&server.latest_token().unwrap());
    // A PUT may be replayed, but not with a body that can be read only once.
    let global = js_sys::global();
    let response_class: js_sys::Function = prop(&global, "Response").unchecked_into();
    let streamed = Reflect::construct(&response_class, &Array::of1(&"chunk".into())).unwrap();
    let init = obj(&[
        ("method", "PUT".into()),
        ("body", prop(&streamed, "body")),
        ("duplex", "half".into()),
    ]);
    let res = call_async(&m, "fetch", &["/api/upload".into(), init])
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 401);
    assert_eq!(server.count("/api/upload"), 1, "sent once, never replayed");
    assert_eq!(prop(&server.last_request("/api/upload"), "body"), "chunk");
    // An Authorization header of the app's own goes out as it is, and its 401 is the app's.
    let refreshes = server.count("/auth/refresh");
    let headers = obj(&[("Authorization", "Basic YXBwOmtleQ==".into())]);
    let res = call_async(
        &m,
        "fetch",
        &["/api/own".into(), obj(&[("headers", headers)])],
    )
    .await
    .unwrap();
    assert_eq!(prop(&res, "status"), 401);
    assert_eq!(server.count("/api/own"), 1);
    assert_eq!(
        prop(&server.last_request("/api/own"), "authorization"),
        "Basic YXBwOmtleQ=="
    );
    assert_eq!(
        server.count("/auth/refresh"),
        refreshes,
        "no refresh for it"
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn replay_non_idempotent_opts_in_to_replaying_a_post_after_a_401() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false, "replayNonIdempotent": true}"#);
    login(&m).await;
    server.reject_token(&server.latest_token().unwrap());
    let init = obj(&[("method", "POST".into()), ("body", "pay 10".into())]);
    let res = call_async(&m, "fetch", &["/api/pay".into(), init])
        .await
        .unwrap();
    assert_eq!(prop(&res, "status"), 200);
    assert_eq!(server.count("/api/pay"), 2);
    for r in server.requests_to("/api/pay").iter() {
        assert_eq!(prop(&r, "body"), "pay 10");
    }
    let err = TokenManager::new(Some(json(r#"{"replayNonIdempotent": "yes"}"#))).unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("invalid_option"));
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_403_on_login_is_forbidden_not_invalid_credentials() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    server.set_login_status(403);
    let creds = obj(&[
        ("username", "demo".into()),
        ("password", "demo-password".into()),
    ]);
    let err = call_async(&m, "login", &[creds]).await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("forbidden"));
    let message = prop(&err, "message").as_string().unwrap();
    assert!(message.contains("forbidden_origin"), "{message}");
    assert!(!message.contains("demo-password"));
    assert_eq!(prop(&m, "state"), "signedOut");
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn a_403_on_restore_rejects_with_forbidden_instead_of_looking_like_a_first_visit() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    server.set_cookie(true);
    server.push_refresh_reply(403.into());
    let m = manager(r#"{"crossTab": false}"#);
    let error = JsFuture::from(next_event_promise(&m, "error", 5_000));
    let err = call_async(&m, "restore", &[]).await.unwrap_err();
    assert_eq!(error_code(&err).as_deref(), Some("forbidden"));
    let detail = error.await.unwrap();
    assert_eq!(prop(&detail, "code"), "forbidden");
    assert_eq!(prop(&detail, "retryInMs"), JsValue::NULL);
    assert_eq!(prop(&m, "state"), "signedOut");
    free(m);
    server.uninstall();
}

#[wasm_bindgen(inline_js = r#"
const KINDS = ["pointerdown", "keydown", "visibilitychange"];
export function watchPageListeners() {
  const live = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const proto = EventTarget.prototype;
  const add = proto.addEventListener;
  const remove = proto.removeEventListener;
  const page = (t) => t === globalThis || t === globalThis.document;
  proto.addEventListener = function (type, l, o) {
    if (page(this) && type in live) live[type] += 1;
    return add.call(this, type, l, o);
  };
  proto.removeEventListener = function (type, l, o) {
    if (page(this) && type in live) live[type] -= 1;
    return remove.call(this, type, l, o);
  };
  return {
    counts: () => ({ ...live }),
    uninstall() {
      proto.addEventListener = add;
      proto.removeEventListener = remove;
    },
  };
}
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
export function pressKey() {
  globalThis.dispatchEvent(new KeyboardEvent("keydown", { key: "Shift" }));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = watchPageListeners)]
    fn watch_page_listeners() -> JsValue;
    #[wasm_bindgen(js_name = pressKey)]
    fn press_key();
    fn delay(ms: u32) -> js_sys::Promise;
}

fn listener_counts(watch: &JsValue) -> String {
    let counts = call(watch, "counts", &[]).unwrap();
    JSON::stringify(&counts).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
fn activity_listeners_exist_only_with_an_idle_timeout_and_go_away_on_free() {
    let watch = watch_page_listeners();
    let plain = manager("{}");
    // The wake-up listener on visibilitychange is always there; no activity listener is.
    assert_eq!(
        listener_counts(&watch),
        r#"{"pointerdown":0,"keydown":0,"visibilitychange":1}"#
    );
    free(plain);
    let idle = manager(r#"{"idleTimeoutSeconds": 600}"#);
    assert_eq!(
        listener_counts(&watch),
        r#"{"pointerdown":1,"keydown":1,"visibilitychange":2}"#
    );
    free(idle);
    assert_eq!(
        listener_counts(&watch),
        r#"{"pointerdown":0,"keydown":0,"visibilitychange":0}"#
    );
    let _ = call(&watch, "uninstall", &[]);
}

#[wasm_bindgen_test]
fn bad_idle_options_are_coded_constructor_errors() {
    for options in [
        r#"{"idleTimeoutSeconds": 0}"#,
        r#"{"idleTimeoutSeconds": "600"}"#,
        r#"{"idleWarningSeconds": 30}"#,
        r#"{"idleTimeoutSeconds": 60, "idleWarningSeconds": 60}"#,
    ] {
        let err = TokenManager::new(Some(json(options))).unwrap_err();
        assert_eq!(
            error_code(&err).as_deref(),
            Some("invalid_option"),
            "{options}"
        );
    }
    // The warning defaults to half a short timeout.
    assert!(TokenManager::new(Some(json(r#"{"idleTimeoutSeconds": 2}"#))).is_ok());
}

#[wasm_bindgen_test]
async fn a_key_after_the_idle_warning_fires_active_then_idleness_signs_out_and_revokes() {
    let server = FakeServer::new(30.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"idleTimeoutSeconds": 2, "idleWarningSeconds": 1}"#);
    login(&m).await;
    let warning = next_event(&m, "idle", 3000).await;
    let logout_at = prop(&warning, "logoutAt").as_f64().unwrap();
    let in_ms = prop(&warning, "inMs").as_f64().unwrap();
    assert!(in_ms > 0.0 && in_ms <= 1000.0, "inMs {in_ms}");
    assert!((logout_at - js_sys::Date::now() - in_ms).abs() < 200.0);
    // Dispatched synchronously, within the key event: listen first.
    let active = next_event_promise(&m, "active", 500);
    press_key();
    JsFuture::from(active).await.expect("active");
    assert_eq!(prop(&m, "state").as_string().as_deref(), Some("signedIn"));
    let logout = next_event(&m, "logout", 3000).await;
    assert_eq!(prop(&logout, "reason").as_string().as_deref(), Some("idle"));
    assert_eq!(
        prop(&logout, "origin").as_string().as_deref(),
        Some("local")
    );
    assert_eq!(call(&m, "claims", &[]).unwrap(), JsValue::NULL);
    // The server is told, so the refresh cookie cannot bring the session back.
    wait_for_requests(&server, "/auth/logout", 1).await;
    free(m);
    server.uninstall();
}

/// Waits (up to 2 s, in 50 ms steps) until the fake server has seen `n` requests to `path`.
async fn wait_for_requests(server: &FakeServer, path: &str, n: u32) {
    for _ in 0..40 {
        if server.count(path) >= n {
            return;
        }
        JsFuture::from(delay(50)).await.unwrap();
    }
    panic!("{} requests to {path}", server.count(path));
}

#[wasm_bindgen_test]
async fn the_next_guard_cleans_up_after_a_test_that_aborted_before_its_own_ran() {
    let global = js_sys::global();
    let real_fetch = prop(&global, "fetch");
    // What a failed test leaves (a panic aborts: its guard never drops): a fake server
    // installed as `fetch` and a live manager.
    let first = FakeServer::new(900.0);
    std::mem::forget(Guard::new(&first));
    let left = manager(r#"{"crossTab": false}"#);
    assert!(call(&left, "isAuthenticated", &[]).is_ok());
    // The next test's guard frees the manager and keeps only its own server installed.
    let second = FakeServer::new(900.0);
    let guard = Guard::new(&second);
    assert!(
        call(&left, "isAuthenticated", &[]).is_err(),
        "the leftover manager was freed"
    );
    let m = manager(r#"{"crossTab": false}"#);
    let _ = call_async(&m, "restore", &[]).await;
    assert_eq!(second.count("/auth/refresh"), 1, "the new server answers");
    assert_eq!(first.count("/auth/refresh"), 0);
    drop(guard);
    assert!(
        Object::is(&prop(&global, "fetch"), &real_fetch),
        "the real fetch is back"
    );
}

#[wasm_bindgen_test]
async fn an_opaque_token_shows_the_id_token_claims_is_attached_and_shared_with_a_sibling() {
    let server = FakeServer::new(2.0);
    server.set_opaque(true);
    let _guard = Guard::new(&server);
    let a = manager(r#"{}"#);
    let b = manager(r#"{}"#);
    let b_login = JsFuture::from(next_event_promise(&b, "login", 5_000));
    let claims = login(&a).await;
    assert_eq!(prop(&claims, "name"), "Ada Lovelace (ID token)");
    assert_eq!(prop(&claims, "iss"), "https://idp.test");
    assert!(Object::is_frozen(&call(&a, "claims", &[]).unwrap().into()));
    // The expiry is `expires_in` (2 s) from now, not the ID token's `exp` (an hour).
    let left = call(&a, "expiresAt", &[]).unwrap().as_f64().unwrap() - js_sys::Date::now();
    assert!(left <= 2_000.0, "{left} ms");
    // auth.fetch attaches the opaque token as it does a JWT.
    let (status, _) = get_json(&a, "/api/me").await;
    assert_eq!(status, 200);
    let token = server.latest_token().unwrap();
    assert!(!token.contains('.'), "an opaque token");
    assert_eq!(
        prop(&server.last_request("/api/me"), "authorization"),
        ["Bearer ", &token].concat()
    );
    // The sibling adopted it with the claims the announcement carried.
    assert_eq!(prop(&b_login.await.unwrap(), "source"), "otherTab");
    assert_eq!(
        prop(&call(&b, "claims", &[]).unwrap(), "email"),
        "ada@example.test"
    );
    // One refresh between the two, and both keep showing the claims.
    let a_refresh = JsFuture::from(next_event_promise(&a, "refresh", 5_000));
    let b_refresh = JsFuture::from(next_event_promise(&b, "refresh", 5_000));
    let _ = (a_refresh.await.unwrap(), b_refresh.await.unwrap());
    assert_eq!(
        server.count("/auth/refresh"),
        1,
        "one refresh between the two"
    );
    for m in [&a, &b] {
        assert_eq!(prop(&call(m, "claims", &[]).unwrap(), "sub"), "user-1");
    }
    for m in [a, b] {
        free(m);
    }
    server.uninstall();
}

#[wasm_bindgen_test]
async fn an_announced_opaque_token_without_claims_or_of_another_user_is_refused() {
    let server = FakeServer::new(900.0);
    server.set_opaque(true);
    let _guard = Guard::new(&server);
    let m = manager(r#"{}"#);
    login(&m).await;
    let own = call(&m, "claims", &[]).unwrap();
    let now = js_sys::Date::now();
    let messages = Array::new();
    for claims in [
        None,
        Some(r#"{"sub":"user-2","sid":"session-1"}"#),
        Some(r#"{"sub":"user-1","sid":"session-1","sub":"user-2"}"#),
    ] {
        let message = obj(&[
            ("v", 1.into()),
            ("type", "token".into()),
            ("token", "forged-opaque-token".into()),
            ("receivedAt", now.into()),
            ("lifetimeMs", 3_600_000.0.into()),
        ]);
        if let Some(c) = claims {
            Reflect::set(&message, &"claims".into(), &c.into()).unwrap();
        }
        messages.push(&message);
    }
    // A sibling's `ask` is answered with the token held: still this session's own.
    let answer = JsFuture::from(post_then_ask("/auth/refresh", &messages, 5_000))
        .await
        .unwrap();
    assert_eq!(prop(&answer, "token"), server.latest_token().unwrap());
    assert_eq!(
        prop(&answer, "claims")
            .as_string()
            .map(|c| c.contains("ada@example.test")),
        Some(true),
        "the answer carries the claims"
    );
    assert!(js_sys::Object::is(&call(&m, "claims", &[]).unwrap(), &own));
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn logout_resolves_to_the_end_session_url_the_server_answered_when_it_is_safe() {
    let server = FakeServer::new(900.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{"crossTab": false}"#);
    let end_session = |r: &JsValue| prop(r, "endSessionUrl").as_string();
    // The reference server's local accounts: 204, nothing to navigate to.
    login(&m).await;
    let result = call_async(&m, "logout", &[]).await.unwrap();
    assert!(result.is_object());
    assert_eq!(end_session(&result), None);
    let url = "https://idp.test/session/end?id_token_hint=h&post_logout_redirect_uri=https%3A%2F%2Fapp.test%2F";
    for (answered, expected) in [
        (url, Some(url)),
        ("http://localhost:9/end", Some("http://localhost:9/end")),
        ("javascript:alert(1)", None),
        ("http://idp.example/end", None),
        ("", None),
        ("/session/end", None),
    ] {
        server.set_end_session_url(answered);
        login(&m).await;
        let result = call_async(&m, "logout", &[]).await.unwrap();
        assert_eq!(end_session(&result).as_deref(), expected, "{answered}");
        assert!(!call(&m, "isAuthenticated", &[]).unwrap().as_bool().unwrap());
    }
    free(m);
    server.uninstall();
}

#[wasm_bindgen(inline_js = r#"
const lockName = (p) => `wasm-token-manager:${new URL(p, location.href).href}`;
async function until(what, ms, pred) {
  const end = performance.now() + ms;
  while (!pred(await navigator.locks.query())) {
    if (performance.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
/**
 * A sibling tab refreshing under the managers' lock: takes the lock, waits until a manager
 * queues behind it, lets go, and only once the lock has passed to the manager (its grant is
 * out) posts `message` (none: the sibling died before announcing). Resolves with
 * `performance.now()` at the release.
 */
export async function releaseToQueuedThenPost(refreshPath, message, ms) {
  const name = lockName(refreshPath);
  let release;
  const holding = new Promise((r) => (release = r));
  let granted;
  const got = new Promise((r) => (granted = r));
  const done = navigator.locks.request(name, () => { granted(); return holding; });
  await got;
  await until("manager queued behind the lock", ms, (s) => s.pending.some((l) => l.name === name));
  const releasedAt = performance.now();
  release();
  await done;
  // Back to back, no timer: the message leaves as soon as the grant is out.
  while (!(await navigator.locks.query()).held.some((l) => l.name === name)) {
    if (performance.now() - releasedAt > ms) throw new Error("the manager never held the lock");
  }
  if (message) {
    const channel = new BroadcastChannel(name);
    channel.postMessage(message);
    channel.close();
  }
  return releasedAt;
}
export const nowMs = () => performance.now();
"#)]
extern "C" {
    #[wasm_bindgen(js_name = releaseToQueuedThenPost)]
    fn release_to_queued_then_post(
        refresh_path: &str,
        message: &JsValue,
        ms: u32,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = nowMs)]
    fn now_ms() -> f64;
}

/// A sibling's announcement of the session's next token, as its manager posts it.
fn sibling_announcement(lifetime_secs: f64) -> JsValue {
    let iat = now_secs();
    let token = forge_token(&json(&format!(
        r#"{{"sub":"user-1","sid":"session-1","iat":{iat},"exp":{},"jti":"sibling"}}"#,
        iat + lifetime_secs
    )));
    obj(&[
        ("v", 1.into()),
        ("type", "token".into()),
        ("token", token.into()),
        ("receivedAt", js_sys::Date::now().into()),
        ("lifetimeMs", (lifetime_secs * 1000.0).into()),
    ])
}

#[wasm_bindgen_test]
async fn a_sibling_announcement_arriving_after_the_lock_grant_is_adopted_without_a_request() {
    let server = FakeServer::new(4.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{}"#);
    login(&m).await;
    let refreshed = JsFuture::from(next_event_promise(&m, "refresh", 8_000));
    // The sibling holds the lock while it refreshes; the manager's scheduled refresh queues.
    // The sibling's token is a fresh one (a minute to live): one as old as the manager's own
    // would be within its refresh leeway by the time it is posted on a loaded machine, and
    // refused as too stale, with the manager then rightly refreshing on its own.
    JsFuture::from(release_to_queued_then_post(
        "/auth/refresh",
        &sibling_announcement(60.0),
        8_000,
    ))
    .await
    .unwrap();
    let detail = refreshed.await.unwrap();
    assert_eq!(prop(&detail, "source"), "otherTab");
    assert_eq!(prop(&call(&m, "claims", &[]).unwrap(), "jti"), "sibling");
    assert_eq!(
        server.count("/auth/refresh"),
        0,
        "the sibling's token was announced: no request of this tab's own"
    );
    free(m);
    server.uninstall();
}

#[wasm_bindgen_test]
async fn without_the_siblings_announcement_the_refresh_goes_ahead_once_after_the_handoff_wait() {
    let server = FakeServer::new(4.0);
    let _guard = Guard::new(&server);
    let m = manager(r#"{}"#);
    login(&m).await;
    let refreshed = JsFuture::from(next_event_promise(&m, "refresh", 8_000));
    // The sibling lets go of the lock without announcing anything (it failed or was closed).
    let released_at = JsFuture::from(release_to_queued_then_post(
        "/auth/refresh",
        &JsValue::NULL,
        8_000,
    ))
    .await
    .unwrap()
    .as_f64()
    .unwrap();
    let detail = refreshed.await.unwrap();
    let waited = now_ms() - released_at;
    assert_eq!(prop(&detail, "source"), "refresh");
    assert_eq!(server.count("/auth/refresh"), 1, "exactly one request");
    // The grant came after the release; the request after the 300 ms hand-off wait.
    assert!(
        waited >= 299.0,
        "the refresh went out {waited} ms after the release"
    );
    free(m);
    server.uninstall();
}
