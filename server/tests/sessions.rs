//! Session limits: an absolute lifetime that refreshes cannot extend, and a cap on the
//! grace-window replays of one rotated cookie.

mod common;

use common::*;
use token_manager_server::RefreshTokenStatus;

const DAY: u64 = 24 * 3600;

fn max_age(set_cookie: &str) -> u64 {
    set_cookie
        .rsplit("Max-Age=")
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a Max-Age")
}

#[tokio::test]
async fn a_session_refreshed_every_six_days_ends_thirty_days_after_its_login() {
    let server = TestServer::start().await;
    let mut s = server.login().await;
    assert_eq!(max_age(&s.set_cookie), 7 * DAY, "the idle timeout");
    for day in [6, 12, 18, 24] {
        server.clock.set(START + day * DAY);
        s = server.refresh_ok(&s.cookie).await;
        // The cookie never outlives the session: 7 days, or what is left of the 30.
        assert_eq!(
            max_age(&s.set_cookie),
            (7 * DAY).min((30 - day) * DAY),
            "day {day}"
        );
        assert_eq!(server.me(&s.access_token).await.status, 200);
    }
    server.clock.set(START + 30 * DAY - 1);
    s = server.refresh_ok(&s.cookie).await;
    assert_eq!(max_age(&s.set_cookie), 1);
    server.clock.set(START + 30 * DAY);
    let r = server.refresh(&s.cookie).await;
    assert_error(&r, 401, "invalid_grant");
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("maximum age"));
    // Ended, not stolen: nothing was revoked, and a new login starts a new session.
    assert_eq!(server.handle.stats().reuse_detected, 0);
    server.login().await;
}

#[tokio::test]
async fn the_session_max_age_flag_shortens_sessions() {
    let server = TestServer::start_with(|c| {
        c.session_max_age = 3600;
        c.refresh_ttl = 1000;
    })
    .await;
    let mut s = server.login().await;
    assert_eq!(max_age(&s.set_cookie), 1000);
    for _ in 0..3 {
        server.clock.advance(900);
        s = server.refresh_ok(&s.cookie).await;
    }
    assert_eq!(max_age(&s.set_cookie), 3600 - 2700);
    server.clock.set(START + 3600);
    assert_error(&server.refresh(&s.cookie).await, 401, "invalid_grant");
}

#[tokio::test]
async fn grace_replays_of_one_rotated_cookie_beyond_the_cap_revoke_the_family() {
    let server = TestServer::start().await;
    let login = server.login().await;
    let next = server.refresh_ok(&login.cookie).await;
    // The default cap: ten answers within the grace window, each the same current cookie.
    for _ in 0..10 {
        let replay = server.refresh_ok(&login.cookie).await;
        assert_eq!(replay.cookie, next.cookie);
    }
    assert_eq!(server.handle.stats().grace_replays, 10);
    let r = server.refresh(&login.cookie).await;
    assert_error(&r, 401, "invalid_grant");
    assert_eq!(server.handle.stats().reuse_detected, 1);
    assert_eq!(
        server.handle.refresh_token_status(&next.cookie).unwrap(),
        RefreshTokenStatus::Revoked
    );
    assert_error(&server.refresh(&next.cookie).await, 401, "invalid_grant");
    assert_error(&server.me(&next.access_token).await, 401, "invalid_token");
}

#[tokio::test]
async fn the_grace_replays_flag_sets_the_cap_per_rotated_cookie() {
    let server = TestServer::start_with(|c| c.grace_replays = 2).await;
    let login = server.login().await;
    let next = server.refresh_ok(&login.cookie).await;
    server.refresh_ok(&login.cookie).await;
    server.refresh_ok(&login.cookie).await;
    // The current cookie rotates normally; its own replays have their own count.
    let third = server.refresh_ok(&next.cookie).await;
    server.refresh_ok(&next.cookie).await;
    assert_error(&server.refresh(&login.cookie).await, 401, "invalid_grant");
    assert_error(&server.refresh(&third.cookie).await, 401, "invalid_grant");
}
