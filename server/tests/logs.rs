//! The log of a full session contains no token, cookie, `Authorization` value or password.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn logs_of_a_full_session_contain_no_secrets() {
    let server = TestServer::start_with(|c| c.test_switches = true).await;
    let mut secrets = vec![PASSWORD.to_owned(), "wrong-password-123".to_owned()];

    let bad = server.login_as(USER, "wrong-password-123").await;
    assert_eq!(bad.status, 401);
    let s = server.login().await;
    secrets.extend([s.access_token.clone(), s.cookie.clone()]);
    assert_eq!(server.me(&s.access_token).await.status, 200);
    let next = server.refresh_ok(&s.cookie).await;
    secrets.extend([next.access_token.clone(), next.cookie.clone()]);
    // A grace replay, a tampered cookie, a forged token, a replay after grace.
    let replay = server.refresh_ok(&s.cookie).await;
    secrets.push(replay.access_token.clone());
    let tampered = format!("{}x", &next.cookie[..42]);
    server.refresh(&tampered).await;
    secrets.push(tampered);
    let forged = format!("{}x", next.access_token);
    server.me(&forged).await;
    secrets.push(forged);
    server
        .send(
            server
                .switch_request("/test/drop-next-refresh")
                .json(&json!({})),
        )
        .await;
    let _ = server.try_send(server.refresh_request(&next.cookie)).await;
    let third = server.refresh_ok(&next.cookie).await;
    secrets.extend([third.access_token.clone(), third.cookie.clone()]);
    server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", third.cookie))
                .header("Authorization", &format!("Bearer {}", third.access_token)),
        )
        .await;
    server.clock.advance(60);
    server.refresh(&s.cookie).await;

    let logs = server.log_text();
    assert!(logs.contains("event=login"), "{logs}");
    assert!(logs.contains("event=refresh"), "{logs}");
    assert!(logs.contains("event=logout"), "{logs}");
    assert!(logs.contains("path=\"/auth/refresh\" status=200"), "{logs}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs:\n{logs}"
        );
        // Not even a recognisable piece of one.
        if secret.len() > 20 {
            assert!(
                !logs.contains(&secret[secret.len() - 20..]),
                "a piece of a secret leaked:\n{logs}"
            );
        }
    }
    for word in [
        "Bearer",
        "__Host-refresh",
        "Cookie",
        "Authorization",
        "password=",
    ] {
        assert!(!logs.contains(word), "{word} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn the_query_string_is_never_logged() {
    let server = TestServer::start().await;
    server
        .send(Request::get("/api/me?access_token=SECRETVALUE"))
        .await;
    let logs = server.log_text();
    assert!(logs.contains("path=\"/api/me\""), "{logs}");
    assert!(!logs.contains("SECRETVALUE"), "{logs}");
}
