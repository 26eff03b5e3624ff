//! Data retention: the maintenance run deletes expired rows, and never a row something
//! still valid depends on.

mod common;

use common::*;
use token_manager_server::RowCounts;

fn counts(server: &TestServer) -> RowCounts {
    server.handle.row_counts().unwrap()
}

#[tokio::test]
async fn cleanup_deletes_expired_refresh_tokens_and_families_but_nothing_live() {
    let server = TestServer::start_with(|c| {
        sqlite_only(c);
        c.refresh_ttl = 3600
    })
    .await;
    let s = server.login().await;
    server.clock.advance(60);
    let next = server.refresh_ok(&s.cookie).await;
    assert_eq!(counts(&server).refresh_tokens, 2);
    assert_eq!(counts(&server).families, 1);

    // Before anything expires, nothing goes.
    let report = server.handle.run_maintenance().unwrap();
    assert_eq!(report.cleanup, Default::default());

    // The first token expires at START + 3600; the second at START + 60 + 3600.
    server.clock.set(START + 3600);
    let report = server.handle.run_maintenance().unwrap();
    assert_eq!(report.cleanup.refresh_tokens, 1);
    assert_eq!(report.cleanup.families, 0);
    server.refresh_ok(&next.cookie).await;

    // Idle past the refresh lifetime: the whole family goes.
    server.clock.advance(3600 + 900);
    let report = server.handle.run_maintenance().unwrap();
    assert_eq!(report.cleanup.families, 1);
    let c = counts(&server);
    assert_eq!((c.families, c.refresh_tokens), (0, 0));
}

#[tokio::test]
async fn a_revoked_family_is_kept_until_its_access_tokens_have_expired() {
    let server = TestServer::start_with(sqlite_only).await;
    let s = server.login().await;
    let r = server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", s.cookie)),
        )
        .await;
    assert_eq!(r.status, 204);
    // Still needed: the family row is what makes /api/me refuse the session's tokens.
    server.clock.advance(899);
    assert_eq!(server.handle.run_maintenance().unwrap().cleanup.families, 0);
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    server.clock.advance(1);
    assert_eq!(server.handle.run_maintenance().unwrap().cleanup.families, 1);
    assert_eq!(counts(&server).refresh_tokens, 0, "its tokens go with it");
}

#[tokio::test]
async fn denylist_rows_are_deleted_once_their_token_has_expired() {
    let server = TestServer::start_with(sqlite_only).await;
    let s = server.login().await;
    let r = server
        .send(
            server
                .logout_request()
                .header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(counts(&server).denied_jtis, 1);
    server.clock.advance(899);
    assert_eq!(
        server.handle.run_maintenance().unwrap().cleanup.denied_jtis,
        0
    );
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
    server.clock.advance(1);
    assert_eq!(
        server.handle.run_maintenance().unwrap().cleanup.denied_jtis,
        1
    );
    assert_eq!(counts(&server).denied_jtis, 0);
    // Expired anyway: deleting the row re-enabled nothing.
    assert_error(&server.me(&s.access_token).await, 401, "invalid_token");
}

#[tokio::test]
async fn an_active_session_survives_every_cleanup() {
    let server = TestServer::start_with(|c| {
        sqlite_only(c);
        c.refresh_ttl = 1000
    })
    .await;
    let mut s = server.login().await;
    for _ in 0..10 {
        server.clock.advance(500);
        server.handle.run_maintenance().unwrap();
        s = server.refresh_ok(&s.cookie).await;
        assert_eq!(server.me(&s.access_token).await.status, 200);
    }
    // Only the rows still inside their lifetime remain.
    assert!(counts(&server).refresh_tokens <= 3, "{:?}", counts(&server));
}
