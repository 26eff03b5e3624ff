//! The `/test/*` switches: absent without the flag, and doing exactly what the demo page and
//! the end-to-end tests rely on with it.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;
use token_manager_server::RefreshTokenStatus;

const SWITCHES: [(&str, &str); 7] = [
    ("POST", "/test/fail-refresh"),
    ("POST", "/test/delay"),
    ("POST", "/test/drop-next-refresh"),
    ("POST", "/test/rotate-keys"),
    ("GET", "/test/stats"),
    ("POST", "/test/reset"),
    ("POST", "/test/panic"),
];

#[tokio::test]
async fn switches_answer_404_when_not_enabled() {
    let server = TestServer::start().await;
    let kid = server.handle.current_kid();
    for (method, path) in SWITCHES {
        let r = server
            .send(Request::new(method, path).json(&json!({"count": 1, "status": 500, "ms": 1})))
            .await;
        assert_error(&r, 404, "not_found");
    }
    assert_error(
        &server.send(Request::get("/test/anything")).await,
        404,
        "not_found",
    );
    assert_eq!(server.handle.current_kid(), kid, "rotate-keys did nothing");
    let s = server.login().await;
    server.refresh_ok(&s.cookie).await;
}

async fn enabled() -> TestServer {
    TestServer::start_with(|c| c.test_switches = true).await
}

#[tokio::test]
async fn fail_refresh_fails_the_next_n_refreshes_with_429_and_retry_after_then_recovers() {
    let server = enabled().await;
    let s = server.login().await;
    let r = server
        .send(
            server
                .switch_request("/test/fail-refresh")
                .json(&json!({"count": 2, "status": 429, "retry_after": 7})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for _ in 0..2 {
        let r = server.refresh(&s.cookie).await;
        assert_error(&r, 429, "rate_limited");
        assert_eq!(r.header("retry-after"), Some("7"));
    }
    // The failures touched nothing: the original cookie is still current.
    assert_eq!(
        server.handle.refresh_token_status(&s.cookie).unwrap(),
        RefreshTokenStatus::Current
    );
    server.refresh_ok(&s.cookie).await;
}

#[tokio::test]
async fn fail_refresh_supports_503_with_retry_after_and_500() {
    let server = enabled().await;
    let s = server.login().await;
    server
        .send(
            server
                .switch_request("/test/fail-refresh")
                .json(&json!({"count": 1, "status": 503})),
        )
        .await;
    let r = server.refresh(&s.cookie).await;
    assert_error(&r, 503, "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());
    server
        .send(
            server
                .switch_request("/test/fail-refresh")
                .json(&json!({"count": 1, "status": 500})),
        )
        .await;
    assert_error(&server.refresh(&s.cookie).await, 500, "server_error");
    server.refresh_ok(&s.cookie).await;
    let r = server
        .send(
            server
                .switch_request("/test/fail-refresh")
                .json(&json!({"count": 1, "status": 200})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn delay_holds_refresh_responses_back() {
    let server = enabled().await;
    let s = server.login().await;
    let r = server
        .send(
            server
                .switch_request("/test/delay")
                .json(&json!({"ms": 300})),
        )
        .await;
    assert_eq!(r.json()["delay_ms"], 300);
    let started = Instant::now();
    server.refresh_ok(&s.cookie).await;
    // Only a lower bound: a loaded machine may be slower, never faster.
    assert!(started.elapsed().as_millis() >= 300);
    server
        .send(server.switch_request("/test/delay").json(&json!({"ms": 0})))
        .await;
}

#[tokio::test]
async fn drop_next_refresh_commits_the_rotation_then_closes_the_connection_unanswered() {
    let server = enabled().await;
    let s = server.login().await;
    let r = server
        .send(server.switch_request("/test/drop-next-refresh"))
        .await;
    assert_eq!(r.json()["drop_next_refresh"], true);
    let lost = server.try_send(server.refresh_request(&s.cookie)).await;
    assert!(lost.is_err(), "expected a closed connection, got {lost:?}");
    assert!(matches!(
        server.handle.refresh_token_status(&s.cookie).unwrap(),
        RefreshTokenStatus::Rotated { .. }
    ));
    // The browser still holds the old cookie; within the grace window it recovers.
    let retry = server.refresh_ok(&s.cookie).await;
    assert_eq!(
        server.handle.refresh_token_status(&retry.cookie).unwrap(),
        RefreshTokenStatus::Current
    );
    server.clock.advance(3600);
    server.refresh_ok(&retry.cookie).await;
    assert!(server.log_text().contains("dropped=true"));
}

#[tokio::test]
async fn rotate_keys_answers_the_new_kid() {
    let server = enabled().await;
    let before = server.handle.current_kid();
    let r = server
        .send(server.switch_request("/test/rotate-keys"))
        .await;
    assert_eq!(r.status, 200);
    let kid = r.json()["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid, before);
    assert_eq!(server.handle.current_kid(), kid);
}

#[tokio::test]
async fn stats_count_and_reset_clears_counters_and_switches() {
    let server = enabled().await;
    let s = server.login().await;
    server.login_as(USER, "nope").await;
    let next = server.refresh_ok(&s.cookie).await;
    server.refresh_ok(&s.cookie).await;
    server.refresh("A".repeat(43).as_str()).await;
    server.me(&next.access_token).await;
    server.send(server.logout_request()).await;
    let stats = server.send(Request::get("/test/stats")).await.json();
    assert_eq!(
        stats,
        json!({
            "login": 1, "login_failed": 1, "refresh_requests": 3, "refresh_ok": 2,
            "refresh_failed": 1, "rotations": 1, "grace_replays": 1, "reuse_detected": 0,
            "logout": 1, "api_me": 1
        })
    );
    server
        .send(
            server
                .switch_request("/test/fail-refresh")
                .json(&json!({"count": 5, "status": 500})),
        )
        .await;
    server
        .send(
            server
                .switch_request("/test/delay")
                .json(&json!({"ms": 10})),
        )
        .await;
    let r = server.send(server.switch_request("/test/reset")).await;
    assert_eq!(
        r.json(),
        json!({"fail_refresh": null, "delay_ms": 0, "drop_next_refresh": false})
    );
    let stats = server.send(Request::get("/test/stats")).await.json();
    assert_eq!(stats["refresh_requests"], 0);
    server.refresh_ok(&next.cookie).await;
}

/// Every `/test/*` route that changes something, with a body that would change it.
const POST_SWITCHES: [(&str, &str); 6] = [
    ("/test/fail-refresh", "count=5&status=500"),
    ("/test/delay", "ms=5000"),
    ("/test/drop-next-refresh", ""),
    ("/test/rotate-keys", ""),
    ("/test/reset", ""),
    ("/test/panic", ""),
];

#[tokio::test]
async fn cross_site_form_posts_to_every_switch_are_refused_and_change_nothing() {
    let server = enabled().await;
    let s = server.login().await;
    let kid = server.handle.current_kid();
    let stats_before = server.send(Request::get("/test/stats")).await.json();
    for (path, form) in POST_SWITCHES {
        // What a form on another site submits: a foreign Origin, cross-site, a form type,
        // and no custom header (a form cannot send one).
        let cross_site = Request::post(path)
            .header("Origin", "http://evil.example")
            .header("Sec-Fetch-Site", "cross-site")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
        assert_error(&server.send(cross_site).await, 403, "forbidden_origin");
        // The same without Origin/Sec-Fetch-Site (an old browser, a non-browser client):
        // the missing CSRF header refuses it.
        let no_header = Request::post(path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
        assert_error(&server.send(no_header).await, 400, "invalid_request");
        // With the header, a form body is still refused: JSON only.
        let form_type = server
            .switch_request(path)
            .header("Content-Type", "text/plain")
            .body(form);
        assert_error(&server.send(form_type).await, 415, "invalid_request");
    }
    assert_eq!(server.handle.current_kid(), kid, "rotate-keys did nothing");
    let stats_after = server.send(Request::get("/test/stats")).await.json();
    assert_eq!(stats_after, stats_before, "reset did nothing");
    // No failure, delay or dropped response was armed: the next refresh is ordinary.
    let started = Instant::now();
    let r = server.refresh(&s.cookie).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed().as_millis() < 5000, "no delay was set");
    assert!(!server.log_text().contains("handler panicked"));
}
