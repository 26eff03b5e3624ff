//! `POST /auth/refresh`: rotation, concurrent use of one cookie, the grace window, reuse
//! detection, and refusals that must leave the session untouched.

mod common;

use common::*;
use token_manager_server::RefreshTokenStatus;

#[tokio::test]
async fn refresh_rotates_the_cookie_and_marks_the_old_one_rotated() {
    let server = TestServer::start().await;
    let login = server.login().await;
    server.clock.advance(60);
    let next = server.refresh_ok(&login.cookie).await;
    assert_ne!(next.cookie, login.cookie);
    assert_eq!(
        server.handle.refresh_token_status(&login.cookie).unwrap(),
        RefreshTokenStatus::Rotated { at: START + 60 }
    );
    assert_eq!(
        server.handle.refresh_token_status(&next.cookie).unwrap(),
        RefreshTokenStatus::Current
    );
    // A new access token for the same session, with a fresh lifetime.
    let (a, b) = (claims(&login.access_token), claims(&next.access_token));
    assert_eq!(a["sid"], b["sid"]);
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(b["exp"], START + 60 + 900);
    assert_eq!(next.expires_in, 900);
    assert!(next
        .set_cookie
        .ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=604800"));
    assert_eq!(server.me(&next.access_token).await.status, 200);
    let stats = server.handle.stats();
    assert_eq!(
        (stats.refresh_requests, stats.refresh_ok, stats.rotations),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_chain_of_refreshes_keeps_working_far_beyond_the_grace_window() {
    let server = TestServer::start().await;
    let mut session = server.login().await;
    for _ in 0..5 {
        server.clock.advance(800);
        session = server.refresh_ok(&session.cookie).await;
        assert_eq!(server.me(&session.access_token).await.status, 200);
    }
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_cookie_both_succeed_and_agree_on_the_next_cookie() {
    let server = TestServer::start().await;
    let login = server.login().await;
    let (a, b) = tokio::join!(server.refresh(&login.cookie), server.refresh(&login.cookie));
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{} / {}",
        a.text(),
        b.text()
    );
    let (a, b) = (Session::from_response(&a), Session::from_response(&b));
    // Both answers carry the same successor, so whichever the browser stores last is current.
    assert_eq!(a.cookie, b.cookie);
    assert_ne!(a.access_token, b.access_token);
    assert_eq!(server.handle.stats().rotations, 1);
    assert_eq!(server.handle.stats().grace_replays, 1);
    // Long after the grace window, the stored cookie still works.
    server.clock.advance(600);
    server.refresh_ok(&a.cookie).await;
}

#[tokio::test]
async fn many_tabs_refreshing_at_once_all_succeed() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let login = server.login().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (server, cookie) = (server.clone(), login.cookie.clone());
        tasks.push(tokio::spawn(async move {
            server.refresh_ok(&cookie).await.cookie
        }));
    }
    let mut cookies = Vec::new();
    for t in tasks {
        cookies.push(t.await.unwrap());
    }
    cookies.dedup();
    assert_eq!(cookies.len(), 1, "every tab got the same next cookie");
}

#[tokio::test]
async fn replay_after_the_grace_window_revokes_the_family_and_the_newest_cookie_stops_working() {
    let server = TestServer::start().await;
    let login = server.login().await;
    let next = server.refresh_ok(&login.cookie).await;
    server.clock.advance(11);
    let r = server.refresh(&login.cookie).await;
    assert_error(&r, 401, "invalid_grant");
    assert!(r.header("set-cookie").is_none());
    assert_eq!(server.handle.stats().reuse_detected, 1);
    // The thief's or the victim's newest cookie: both dead now.
    assert_error(&server.refresh(&next.cookie).await, 401, "invalid_grant");
    assert_eq!(
        server.handle.refresh_token_status(&next.cookie).unwrap(),
        RefreshTokenStatus::Revoked
    );
    // And the session's access tokens with it.
    assert_error(&server.me(&next.access_token).await, 401, "invalid_token");
    assert!(server.log_text().contains("event=reuse_detected"));
}

#[tokio::test]
async fn replay_exactly_at_the_end_of_the_grace_window_still_succeeds() {
    let server = TestServer::start().await;
    let login = server.login().await;
    let next = server.refresh_ok(&login.cookie).await;
    server.clock.advance(10);
    let replay = server.refresh_ok(&login.cookie).await;
    assert_eq!(replay.cookie, next.cookie);
}

#[tokio::test]
async fn a_lost_response_is_survived_within_the_grace_window() {
    let server = TestServer::start().await;
    let login = server.login().await;
    // The server rotates, but the answer never reaches the browser, which keeps `login.cookie`.
    server.refresh_ok(&login.cookie).await;
    server.clock.advance(5);
    let retry = server.refresh_ok(&login.cookie).await;
    assert_eq!(server.me(&retry.access_token).await.status, 200);
    // The cookie from the retry keeps working next time, well after the grace window.
    server.clock.advance(800);
    let later = server.refresh_ok(&retry.cookie).await;
    assert_eq!(server.me(&later.access_token).await.status, 200);
}

#[tokio::test]
async fn a_replay_within_grace_follows_the_chain_to_the_current_cookie() {
    let server = TestServer::start().await;
    let first = server.login().await;
    let second = server.refresh_ok(&first.cookie).await;
    server.clock.advance(2);
    let third = server.refresh_ok(&second.cookie).await;
    server.clock.advance(2);
    let replay = server.refresh_ok(&first.cookie).await;
    assert_eq!(replay.cookie, third.cookie);
}

#[tokio::test]
async fn a_refresh_cookie_expires_after_its_lifetime() {
    let server = TestServer::start_with(|c| c.refresh_ttl = 3600).await;
    let login = server.login().await;
    assert!(login.set_cookie.ends_with("Max-Age=3600"));
    server.clock.advance(3600);
    assert_error(&server.refresh(&login.cookie).await, 401, "invalid_grant");
}

#[tokio::test]
async fn missing_malformed_tampered_and_unknown_cookies_get_401_and_change_nothing() {
    let server = TestServer::start().await;
    let login = server.login().await;
    let before = server.handle.row_counts().unwrap();
    let mut tampered = login.cookie.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = "A".repeat(43);
    let too_long = format!("{}A", login.cookie);

    let no_cookie = server.refresh_request("x");
    let no_cookie = common::Request {
        headers: no_cookie
            .headers
            .into_iter()
            .filter(|(n, _)| n != "Cookie")
            .collect(),
        ..no_cookie
    };
    assert_error(&server.send(no_cookie).await, 401, "invalid_grant");
    for bad in [
        tampered.as_str(),
        unknown.as_str(),
        too_long.as_str(),
        "",
        "%00",
        "not-base64!!",
    ] {
        let r = server.refresh(bad).await;
        assert_error(&r, 401, "invalid_grant");
        assert!(
            r.header("set-cookie").is_none(),
            "a refused refresh never touches the cookie"
        );
    }
    assert_eq!(server.handle.row_counts().unwrap(), before);
    assert_eq!(
        server.handle.refresh_token_status(&login.cookie).unwrap(),
        RefreshTokenStatus::Current
    );
    server.refresh_ok(&login.cookie).await;
}

#[tokio::test]
async fn reuse_in_one_family_leaves_other_families_alone() {
    let server = TestServer::start().await;
    let mine = server.login().await;
    let other_login = server.login_as("other", "other-password").await;
    let other = Session::from_response(&other_login);
    server.refresh_ok(&mine.cookie).await;
    server.clock.advance(30);
    assert_error(&server.refresh(&mine.cookie).await, 401, "invalid_grant");
    server.refresh_ok(&other.cookie).await;
    assert_eq!(server.me(&other.access_token).await.status, 200);
}
