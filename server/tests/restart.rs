//! A restart with a file database keeps sessions and keeps issued access tokens verifiable.

mod common;

use common::*;

/// Tests get a new port per run, and the default issuer names the port; a deployment
/// keeps its issuer across restarts, so these tests pin it.
const ISSUER: &str = "http://auth.test";

#[tokio::test]
async fn restart_with_a_file_database_keeps_refresh_cookies_and_access_tokens_valid() {
    let dir = TempDir::new("restart");
    let db = dir
        .path()
        .join("auth.sqlite")
        .to_string_lossy()
        .into_owned();
    let config = |c: &mut token_manager_server::Config| {
        c.database = db.clone();
        c.issuer = Some(ISSUER.into());
    };

    let first = TestServer::start_with(config).await;
    let kid = first.handle.current_kid();
    let login = first.login().await;
    let s = first.refresh_ok(&login.cookie).await;
    first.stop().await;

    let second = TestServer::start_with(config).await;
    assert_eq!(second.handle.current_kid(), kid, "the signing key was kept");
    assert_eq!(
        second.me(&s.access_token).await.status,
        200,
        "old access token still verifies"
    );
    let next = second.refresh_ok(&s.cookie).await;
    assert_eq!(second.me(&next.access_token).await.status, 200);
    // Reuse detection survives the restart too.
    second.clock.advance(60);
    assert_error(&second.refresh(&login.cookie).await, 401, "invalid_grant");
    assert_error(&second.refresh(&next.cookie).await, 401, "invalid_grant");
    second.stop().await;
}

#[tokio::test]
async fn a_database_file_from_before_session_limits_is_migrated_and_its_sessions_survive() {
    let dir = TempDir::new("migrate");
    let path = dir.path().join("auth.sqlite");
    let db = path.to_string_lossy().into_owned();
    let config = |c: &mut token_manager_server::Config| {
        c.database = db.clone();
        c.issuer = Some(ISSUER.into());
        c.session_max_age = 3600;
        c.grace_replays = 1;
    };
    let first = TestServer::start_with(config).await;
    let login = first.login().await;
    let s = first.refresh_ok(&login.cookie).await;
    first.stop().await;

    // Rewrite the file into the first schema: no session end, no replay count, version 0.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE families DROP COLUMN session_expires_at;
             ALTER TABLE refresh_tokens DROP COLUMN grace_replays;
             PRAGMA user_version = 0;",
        )
        .unwrap();
    }

    let second = TestServer::start_with(config).await;
    // The old session keeps working, and the new limits apply to it: its end is counted
    // from its login, and the rotated cookie gets one grace replay.
    let next = second.refresh_ok(&s.cookie).await;
    assert_eq!(second.me(&next.access_token).await.status, 200);
    assert!(
        next.set_cookie.ends_with(&format!("Max-Age={}", 3600)),
        "{}",
        next.set_cookie
    );
    second.refresh_ok(&s.cookie).await;
    assert_error(&second.refresh(&s.cookie).await, 401, "invalid_grant");
    second.stop().await;

    // A third start finds the file migrated and changes nothing.
    let third = TestServer::start_with(config).await;
    third.login().await;
    third.stop().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // The latest version (4: DPoP's tables, then the upstream mode's), counted from the migrations.
    assert_eq!(version, 4);
}

#[tokio::test]
async fn changing_the_algorithm_on_restart_retires_the_old_key_but_keeps_it_verifying() {
    let dir = TempDir::new("realg");
    let db = dir
        .path()
        .join("auth.sqlite")
        .to_string_lossy()
        .into_owned();
    let issuer = Some(ISSUER.to_owned());
    let a = TestServer::start_with(|c| {
        c.database = db.clone();
        c.issuer = issuer.clone();
        c.algorithm = token_manager_server::SigningAlgorithm::Es256;
    })
    .await;
    let s = a.login().await;
    a.stop().await;
    let b = TestServer::start_with(|c| {
        c.database = db.clone();
        c.issuer = issuer.clone();
        c.algorithm = token_manager_server::SigningAlgorithm::EdDsa;
    })
    .await;
    assert_eq!(b.jwks().await["keys"].as_array().unwrap().len(), 2);
    assert_eq!(b.me(&s.access_token).await.status, 200);
    let next = b.refresh_ok(&s.cookie).await;
    assert_eq!(header(&next.access_token)["alg"], "EdDSA");
    b.stop().await;
}

#[tokio::test]
async fn the_database_file_is_readable_by_its_owner_only() {
    let dir = TempDir::new("perms");
    let db = dir.path().join("auth.sqlite");
    let server = TestServer::start_with(|c| c.database = db.to_string_lossy().into_owned()).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
    server.stop().await;
}
