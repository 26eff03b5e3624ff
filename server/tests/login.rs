//! `POST /auth/login`: the token response, the refresh cookie's exact attributes, bad
//! credentials, and session fixation.

mod common;

use common::*;
use serde_json::json;
use token_manager_server::RefreshTokenStatus;

#[tokio::test]
async fn login_sets_a_host_prefixed_httponly_secure_strict_cookie_with_no_domain() {
    let server = TestServer::start().await;
    let r = server.login_as(USER, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookies = r.headers_named("set-cookie");
    assert_eq!(cookies.len(), 1, "exactly one cookie: {cookies:?}");
    let set_cookie = cookies[0];
    let mut parts = set_cookie.split("; ");
    let (name, value) = parts.next().unwrap().split_once('=').unwrap();
    assert_eq!(name, "__Host-refresh");
    assert_eq!(value.len(), 43, "256 bits, base64url without padding");
    assert!(value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let attributes: Vec<&str> = parts.collect();
    assert_eq!(
        attributes,
        [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=604800"
        ],
        "{set_cookie}"
    );
    assert!(!set_cookie.to_ascii_lowercase().contains("domain"));
}

#[tokio::test]
async fn login_answers_a_bearer_token_response_that_is_never_cached() {
    let server = TestServer::start().await;
    let r = server.login_as(USER, PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body.get("refresh_token").is_none(),
        "the refresh token travels only in the cookie"
    );
    let token = body["access_token"].as_str().unwrap();

    let h = header(token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], server.handle.current_kid().as_str());

    let c = claims(token);
    assert_eq!(c["iss"], format!("http://localhost:{}", server.addr.port()));
    assert_eq!(c["aud"], "wasm-token-manager-demo");
    assert_eq!(c["sub"], "demo");
    assert_eq!(c["name"], "Demo User");
    assert_eq!(c["roles"], json!(["user", "admin"]));
    assert_eq!(c["iat"], START);
    assert_eq!(c["nbf"], START);
    assert_eq!(c["exp"], START + 900);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(c["sid"].is_string());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_both_get_401_invalid_credentials_and_change_nothing() {
    let server = TestServer::start().await;
    let before = server.handle.row_counts().unwrap();
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD), ("", ""), (USER, "")] {
        let r = server.login_as(user, password).await;
        assert_error(&r, 401, "invalid_credentials");
        assert!(r.header("set-cookie").is_none());
    }
    // Nothing but the login throttle's counters (tests/throttle.rs) records a failure.
    let after = server.handle.row_counts().unwrap();
    assert!(after.login_throttles > 0);
    assert_eq!(
        token_manager_server::RowCounts {
            login_throttles: 0,
            ..after
        },
        before
    );
    assert_eq!(server.handle.stats().login_failed, 4);
}

#[tokio::test]
async fn login_revokes_the_family_whose_cookie_it_was_sent_with() {
    let server = TestServer::start().await;
    let first = server.login().await;
    let r = server
        .send(
            Request::post("/auth/login")
                .header("Cookie", &format!("__Host-refresh={}", first.cookie))
                .json(&json!({ "username": USER, "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 200);
    let second = Session::from_response(&r);
    assert_ne!(
        second.cookie, first.cookie,
        "a login always starts a new family"
    );
    assert_eq!(
        server.handle.refresh_token_status(&first.cookie).unwrap(),
        RefreshTokenStatus::Revoked
    );
    assert_error(&server.refresh(&first.cookie).await, 401, "invalid_grant");
    // The fixed session's access token dies with its family.
    assert_error(&server.me(&first.access_token).await, 401, "invalid_token");
    server.refresh_ok(&second.cookie).await;
}

#[tokio::test]
async fn a_failed_login_keeps_the_session_it_was_sent_with() {
    let server = TestServer::start().await;
    let session = server.login().await;
    let r = server
        .send(
            Request::post("/auth/login")
                .header("Cookie", &format!("__Host-refresh={}", session.cookie))
                .json(&json!({ "username": USER, "password": "wrong" })),
        )
        .await;
    assert_error(&r, 401, "invalid_credentials");
    server.refresh_ok(&session.cookie).await;
}

#[tokio::test]
async fn login_refuses_bodies_that_are_not_small_well_formed_json() {
    let server = TestServer::start().await;
    let before = server.handle.row_counts().unwrap();
    let login = || Request::post("/auth/login");
    let cases = [
        (
            login()
                .header("Content-Type", "text/plain")
                .body(r#"{"username":"demo","password":"demo-password"}"#),
            415,
        ),
        (
            login().body(r#"{"username":"demo","password":"demo-password"}"#),
            415,
        ),
        (
            login()
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("username=demo&password=demo-password"),
            415,
        ),
        (
            login()
                .header("Content-Type", "application/json")
                .body("{\"username\": "),
            400,
        ),
        (
            login()
                .header("Content-Type", "application/json")
                .body("[1,2]"),
            400,
        ),
        (
            login()
                .header("Content-Type", "application/json")
                .body(r#"{"username":"demo"}"#),
            400,
        ),
        (
            login()
                .header("Content-Type", "application/json")
                .body(r#"{"username":1,"password":2}"#),
            400,
        ),
        (login().header("Content-Type", "application/json"), 400),
        (
            login()
                .header("Content-Type", "application/json")
                .body(format!(
                    r#"{{"username":"demo","password":"{}"}}"#,
                    "x".repeat(17 * 1024)
                )),
            413,
        ),
    ];
    for (request, status) in cases {
        let r = server.send(request.clone()).await;
        assert_error(&r, status, "invalid_request");
        assert!(r.header("set-cookie").is_none());
    }
    assert_eq!(server.handle.row_counts().unwrap(), before);
}

#[tokio::test]
async fn login_from_a_foreign_origin_or_site_is_refused() {
    let server = TestServer::start().await;
    let body = json!({ "username": USER, "password": PASSWORD });
    let r = server
        .send(
            Request::post("/auth/login")
                .header("Origin", "https://evil.example")
                .json(&body),
        )
        .await;
    assert_error(&r, 403, "forbidden_origin");
    let r = server
        .send(
            Request::post("/auth/login")
                .header("Sec-Fetch-Site", "cross-site")
                .json(&body),
        )
        .await;
    assert_error(&r, 403, "forbidden_origin");
}
