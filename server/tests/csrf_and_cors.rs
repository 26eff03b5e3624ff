//! CSRF defences of refresh and logout, and CORS that answers allowed origins only.
//! Every refusal must leave the session exactly as it was.

mod common;

use common::*;
use token_manager_server::RefreshTokenStatus;

/// A refresh request with one header removed or replaced.
fn without(request: Request, name: &str) -> Request {
    Request {
        headers: request
            .headers
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect(),
        ..request
    }
}

async fn assert_untouched(server: &TestServer, session: &Session) {
    assert_eq!(
        server.handle.refresh_token_status(&session.cookie).unwrap(),
        RefreshTokenStatus::Current,
        "a refused request changed the session"
    );
}

#[tokio::test]
async fn refresh_without_the_csrf_header_is_400_invalid_request() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let r = server
        .send(without(
            server.refresh_request(&s.cookie),
            "X-Requested-With",
        ))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = server
        .send(
            without(server.refresh_request(&s.cookie), "X-Requested-With")
                .header("X-Requested-With", "XMLHttpRequest"),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_untouched(&server, &s).await;
}

#[tokio::test]
async fn refresh_marked_cross_site_is_403_forbidden_origin() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let r = server
        .send(
            without(server.refresh_request(&s.cookie), "Sec-Fetch-Site")
                .header("Sec-Fetch-Site", "cross-site"),
        )
        .await;
    assert_error(&r, 403, "forbidden_origin");
    assert_untouched(&server, &s).await;
    // same-site and none are not cross-site.
    for site in ["same-site", "none"] {
        let r = server
            .send(
                without(server.refresh_request(&s.cookie), "Sec-Fetch-Site")
                    .header("Sec-Fetch-Site", site),
            )
            .await;
        assert_eq!(r.status, 200, "{site}: {}", r.text());
        let next = Session::from_response(&r);
        assert_eq!(
            server.handle.refresh_token_status(&next.cookie).unwrap(),
            RefreshTokenStatus::Current
        );
    }
}

#[tokio::test]
async fn refresh_from_an_origin_not_on_the_allowlist_is_403_forbidden_origin() {
    let server = TestServer::start().await;
    let s = server.login().await;
    for origin in [
        "https://evil.example",
        "null",
        &format!("http://localhost:{}0", server.addr.port()),
    ] {
        let r = server
            .send(without(server.refresh_request(&s.cookie), "Origin").header("Origin", origin))
            .await;
        assert_error(&r, 403, "forbidden_origin");
    }
    assert_untouched(&server, &s).await;
    // Both default origins of the bound port are allowed; so is a request with no Origin.
    let other = format!("http://127.0.0.1:{}", server.addr.port());
    let r = server
        .send(without(server.refresh_request(&s.cookie), "Origin").header("Origin", &other))
        .await;
    assert_eq!(r.status, 200);
    let s = Session::from_response(&r);
    let r = server
        .send(without(server.refresh_request(&s.cookie), "Origin"))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn refresh_with_a_body_that_is_not_json_is_refused() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let base = || server.refresh_request(&s.cookie);
    let cases = [
        (base().header("Content-Type", "text/plain").body("{}"), 415),
        (
            base()
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("a=b"),
            415,
        ),
        (
            base().header("Content-Type", "multipart/form-data; boundary=x"),
            415,
        ),
        (base().body("{}"), 415),
        (
            base().header("Content-Type", "application/json").body("{"),
            400,
        ),
        (
            base()
                .header("Content-Type", "application/json")
                .body("\"string\""),
            400,
        ),
        (
            base()
                .header("Content-Type", "application/json")
                .body(vec![b' '; 17 * 1024]),
            413,
        ),
    ];
    for (request, status) in cases {
        let r = server.send(request).await;
        assert_error(&r, status, "invalid_request");
    }
    assert_untouched(&server, &s).await;
    // An empty body and `{}` are both fine.
    let r = server
        .send(base().header("Content-Type", "application/json").body("{}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn logout_applies_the_same_csrf_checks_and_refusals_keep_the_session() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let cookie = format!("__Host-refresh={}", s.cookie);
    let logout = || server.logout_request().header("Cookie", &cookie);
    let cases = [
        (
            without(logout(), "X-Requested-With"),
            400,
            "invalid_request",
        ),
        (
            logout().header("Sec-Fetch-Site", "cross-site"),
            403,
            "forbidden_origin",
        ),
        (
            without(logout(), "Origin").header("Origin", "https://evil.example"),
            403,
            "forbidden_origin",
        ),
        (
            logout().header("Content-Type", "text/plain").body("x"),
            415,
            "invalid_request",
        ),
        (
            logout()
                .header("Content-Type", "application/json")
                .body("{oops"),
            400,
            "invalid_request",
        ),
        (
            logout()
                .header("Content-Type", "application/json")
                .body(vec![b'1'; 20_000]),
            413,
            "invalid_request",
        ),
    ];
    for (request, status, code) in cases {
        let r = server.send(request).await;
        assert_error(&r, status, code);
        assert!(
            r.header("set-cookie").is_none(),
            "a refused logout must not clear the cookie"
        );
    }
    assert_untouched(&server, &s).await;
    assert_eq!(server.me(&s.access_token).await.status, 200);
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_gets_credentials_and_the_csrf_header() {
    let server = TestServer::start().await;
    let r = server
        .send(
            Request::new("OPTIONS", "/auth/refresh")
                .header("Origin", &server.origin)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "x-requested-with, content-type",
                ),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(server.origin.as_str())
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["x-requested-with", "content-type", "authorization"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(r.header("vary").unwrap().contains("Origin"));
}

#[tokio::test]
async fn preflight_and_responses_for_other_origins_carry_no_cors_headers() {
    let server = TestServer::start().await;
    let r = server
        .send(
            Request::new("OPTIONS", "/auth/refresh")
                .header("Origin", "https://evil.example")
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
    assert_error(&r, 403, "forbidden_origin");
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(r.header("access-control-allow-credentials").is_none());

    let r = server
        .send(Request::get("/.well-known/jwks.json").header("Origin", "https://evil.example"))
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn responses_to_allowed_origins_expose_retry_after_www_authenticate_and_date() {
    let server = TestServer::start().await;
    let r = server
        .send(Request::get("/api/me").header("Origin", &server.origin))
        .await;
    assert_error(&r, 401, "invalid_token");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(server.origin.as_str())
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let exposed = r.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("Retry-After") && exposed.contains("WWW-Authenticate"));
    // The browser layer estimates the issuer's clock from `Date`; cross-origin it must be exposed.
    assert!(exposed.contains("Date"), "{exposed}");
}

#[tokio::test]
async fn configured_origins_replace_the_loopback_defaults() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example/".into()]).await;
    let r = server
        .send(
            Request::new("OPTIONS", "/auth/login")
                .header("Origin", "https://app.example")
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = server
        .send(
            Request::new("OPTIONS", "/auth/login")
                .header("Origin", &server.origin)
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
    assert_eq!(r.status, 403);
}
