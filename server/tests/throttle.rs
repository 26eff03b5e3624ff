//! Login throttling over real HTTP: per account and address, per account, per address;
//! exponential and capped; 429 `rate_limited` with `Retry-After`; counters in the store,
//! expired by maintenance. The virtual clock stands for the attacker's waiting.

mod common;

use common::*;

/// `Retry-After` of a 429 `rate_limited` answer.
#[track_caller]
fn retry_after(r: &Response) -> u64 {
    assert_error(r, 429, "rate_limited");
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds")
}

#[tokio::test]
async fn wrong_passwords_from_one_address_are_slowed_exponentially_and_the_right_one_waits_too() {
    let server = TestServer::start().await;
    for _ in 0..5 {
        assert_error(
            &server.login_as(USER, "guess").await,
            401,
            "invalid_credentials",
        );
    }
    // Throttled before the password is even looked at: the right one waits as well.
    assert_eq!(retry_after(&server.login_as(USER, PASSWORD).await), 1);
    let mut waits = Vec::new();
    for _ in 0..12 {
        let wait = retry_after(&server.login_as(USER, "guess").await);
        waits.push(wait);
        server.clock.advance(wait);
        assert_error(
            &server.login_as(USER, "guess").await,
            401,
            "invalid_credentials",
        );
    }
    assert_eq!(
        waits,
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300],
        "doubling, capped at --login-max-delay"
    );
    // After the wait the user gets in, and the success resets this address's count.
    server
        .clock
        .advance(retry_after(&server.login_as(USER, PASSWORD).await));
    server.login().await;
    assert_error(
        &server.login_as(USER, "typo").await,
        401,
        "invalid_credentials",
    );
    let logs = server.log_text();
    assert!(
        logs.contains("event=login_failed peer=127.0.0.1 user=\"demo\" reason=invalid_credentials"),
        "{logs}"
    );
    assert!(logs.contains("event=login_throttled peer=127.0.0.1 retry_after=1"));
    assert!(!logs.contains("guess") && !logs.contains(PASSWORD));
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_only_the_free_attempts_hashed() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = server.clone();
        tasks.push(tokio::spawn(async move { s.login_as(USER, "guess").await }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn one_address_trying_many_accounts_is_throttled_by_its_address() {
    let server = TestServer::start().await;
    for i in 0..20 {
        let r = server.login_as(&format!("user{i}"), "guess").await;
        assert_error(&r, 401, "invalid_credentials");
    }
    assert_eq!(retry_after(&server.login_as("user20", "guess").await), 1);
    // Unknown accounts are logged without their name.
    assert!(server
        .log_text()
        .contains("event=login_failed peer=127.0.0.1 user=\"-\""));
    // Another address is not affected.
    server.login_from("127.0.0.2", "user21", "guess").await;
    assert_error(
        &server.login_from("127.0.0.2", "user21", "guess").await,
        401,
        "invalid_credentials",
    );
}

#[tokio::test]
async fn guesses_from_many_addresses_cannot_lock_the_user_out_where_they_usually_sign_in() {
    let server = TestServer::start().await;
    // The user signed in from 127.0.0.1 before.
    server.login().await;
    // A stranger guesses from thirty other addresses, a few guesses each.
    for i in 0..30 {
        let r = server
            .login_from(&format!("127.0.1.{}", i + 1), USER, "guess")
            .await;
        assert!(
            r.status == 401 || r.status == 429,
            "{} {}",
            r.status,
            r.text()
        );
    }
    // The account is hot: from an address it never signed in from, a guess waits, at
    // most a minute.
    let wait = retry_after(&server.login_from("127.0.2.1", USER, "guess").await);
    assert!((1..=60).contains(&wait), "{wait}");
    // From the user's own address, no wait.
    server.login().await;
}

#[tokio::test]
async fn throttle_counters_live_in_the_store_and_maintenance_deletes_them_when_forgotten() {
    let server = TestServer::start_with(sqlite_only).await;
    for _ in 0..6 {
        server.login_as(USER, "guess").await;
    }
    assert_eq!(server.handle.row_counts().unwrap().login_throttles, 3);
    // Forgotten after 15 minutes (twice the 300 s cap would be less): attempts are free again.
    server.clock.advance(15 * 60);
    let report = server.handle.run_maintenance().unwrap();
    assert_eq!(report.cleanup.login_throttles, 3);
    assert_eq!(server.handle.row_counts().unwrap().login_throttles, 0);
    for _ in 0..5 {
        assert_error(
            &server.login_as(USER, "guess").await,
            401,
            "invalid_credentials",
        );
    }
}

#[tokio::test]
async fn a_max_delay_of_zero_turns_throttling_off() {
    let server = TestServer::start_with(|c| c.login_max_delay = 0).await;
    for _ in 0..8 {
        assert_error(
            &server.login_as(USER, "guess").await,
            401,
            "invalid_credentials",
        );
    }
    server.login().await;
    assert_eq!(server.handle.row_counts().unwrap().login_throttles, 0);
}
