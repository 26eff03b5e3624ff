//! `POST /auth/logout`: the cookie is cleared, the family revoked, and the access token's
//! `jti` denied until it expires.

mod common;

use common::*;
use token_manager_server::RefreshTokenStatus;

#[tokio::test]
async fn logout_clears_the_cookie_revokes_the_family_and_denies_the_access_token() {
    let server = TestServer::start().await;
    let s = server.login().await;
    assert_eq!(server.me(&s.access_token).await.status, 200);
    let r = server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", s.cookie))
                .header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("set-cookie"),
        Some("__Host-refresh=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    assert_error(&server.refresh(&s.cookie).await, 401, "invalid_grant");
    assert_eq!(
        server.handle.refresh_token_status(&s.cookie).unwrap(),
        RefreshTokenStatus::Revoked
    );
    assert_eq!(server.handle.row_counts().unwrap().denied_jtis, 1);
    assert_eq!(server.handle.stats().logout, 1);
}

#[tokio::test]
async fn logout_with_only_the_access_token_ends_its_session_and_denies_the_token() {
    let server = TestServer::start().await;
    let s = server.login().await;
    // No cookie (a client that lost it, or an API-only logout): the token's `sid` names
    // the session, and a token that verifies is enough to end it.
    let r = server
        .send(
            server
                .logout_request()
                .header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    assert_error(&server.refresh(&s.cookie).await, 401, "invalid_grant");
    assert_eq!(
        server.handle.refresh_token_status(&s.cookie).unwrap(),
        RefreshTokenStatus::Revoked
    );
    assert_eq!(server.handle.row_counts().unwrap().denied_jtis, 1);
    assert!(server.log_text().contains("event=logout sid="));
}

#[tokio::test]
async fn a_bearer_token_that_does_not_verify_ends_no_session() {
    let server = TestServer::start().await;
    let s = server.login().await;
    // Same claims, broken signature: its `sid` must not be trusted.
    let forged = format!("{}x", s.access_token);
    let r = server
        .send(
            server
                .logout_request()
                .header("Authorization", &format!("Bearer {forged}")),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(server.me(&s.access_token).await.status, 200);
    server.refresh_ok(&s.cookie).await;
}

#[tokio::test]
async fn logging_out_one_tab_ends_the_access_tokens_of_the_whole_session() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let next = server.refresh_ok(&s.cookie).await;
    let r = server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", next.cookie)),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    assert_error(&server.me(&next.access_token).await, 401, "invalid_token");
}

#[tokio::test]
async fn logout_without_a_session_still_answers_204_and_clears_the_cookie() {
    let server = TestServer::start().await;
    for request in [
        server.logout_request(),
        server
            .logout_request()
            .header("Cookie", "__Host-refresh=garbage"),
        server
            .logout_request()
            .header("Authorization", "Bearer not.a.token"),
        server
            .logout_request()
            .header("Content-Type", "application/json")
            .body("{}"),
    ] {
        let r = server.send(request).await;
        assert_eq!(r.status, 204);
        assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    }
    assert_eq!(server.handle.row_counts().unwrap().denied_jtis, 0);
}

#[tokio::test]
async fn logout_does_not_revoke_other_sessions() {
    let server = TestServer::start().await;
    let a = server.login().await;
    let b = server.login().await;
    let r = server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", a.cookie)),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(server.me(&b.access_token).await.status, 200);
    server.refresh_ok(&b.cookie).await;
}
