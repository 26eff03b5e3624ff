//! The cross-tab hand-off, on the virtual clock: a tab granted the lock after waiting for
//! another tab (a contended grant) may get the grant before that tab's announcement, which
//! travels by another path. It waits `lock_handoff_wait` for it before calling the endpoint;
//! an uncontended grant never waits.

mod harness;

use std::time::Duration;

use harness::{secs, token_with_claims, World, T0};
use token_manager_core::schedule::Config;
use token_manager_core::session::{
    Action, Announcement, Event, ReceivedToken, RefreshId, TokenSource,
};
use token_manager_core::{AccessToken, Session, Timestamp};

const HANDOFF: Duration = Duration::from_millis(300);

fn config() -> Config {
    Config {
        request_timeout: secs(10),
        lock_timeout: Some(secs(11)),
        ..Config::default()
    }
}

/// A JWT of user `u` issued at `iat` (seconds) for 60 s.
fn token(iat: u64) -> String {
    token_with_claims(&format!(
        r#"{{"sub":"u","iat":{iat},"exp":{},"jti":"t{iat}"}}"#,
        iat + 60
    ))
}

/// A session signed in at `T0` with a 60 s token, run to its scheduled refresh: the attempt
/// waiting for the cross-tab lock, and the instant it started.
fn refresh_waiting_for_the_lock() -> (Session, RefreshId, Timestamp) {
    waiting_with(config())
}

fn waiting_with(config: Config) -> (Session, RefreshId, Timestamp) {
    let mut s = Session::new(config, 5).unwrap();
    let t0 = Timestamp::from_millis(T0);
    s.handle_login(
        t0,
        ReceivedToken {
            token: AccessToken::new(token(T0 / 1000)),
            expires_in: Some(secs(60)),
            id_token_claims: None,
        },
    )
    .unwrap();
    let due = s.refresh_due().expect("a refresh is scheduled");
    s.handle_timeout(due);
    let id = std::iter::from_fn(|| s.poll_action())
        .find_map(|a| match a {
            Action::StartRefresh(id) => Some(id),
            _ => None,
        })
        .expect("StartRefresh");
    while s.poll_event().is_some() {}
    (s, id, due)
}

#[test]
fn an_announcement_arriving_after_a_contended_grant_ends_the_attempt_without_a_request() {
    let (mut s, id, due) = refresh_waiting_for_the_lock();
    // The previous holder refreshed and let go; its grant reaches this tab first.
    let granted = due + Duration::from_millis(120);
    s.handle_lock_granted(granted, id, true);
    assert!(s.handoff_pending(id), "waits for the holder's announcement");
    assert!(!s.is_settled());
    assert_eq!(s.poll_timeout(), Some(granted + HANDOFF));

    // Then its announcement.
    let arrived = granted + Duration::from_millis(5);
    let fresh = token(arrived.as_millis() / 1000);
    let adopted = s.handle_announcement(
        arrived,
        Announcement {
            token: AccessToken::new(fresh.clone()),
            received_at: granted,
            lifetime: secs(60),
            claims: None,
        },
        arrived,
    );
    assert_eq!(adopted, Ok(true));
    assert!(!s.handoff_pending(id));
    assert!(!s.refresh_still_needed(arrived, id), "no request");
    assert!(s.is_settled(), "the attempt ended at once, as a lost race");
    assert_eq!(s.token(arrived).unwrap().expose_secret(), fresh);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events.contains(&Event::Refreshed {
            source: TokenSource::OtherTab
        }),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RefreshFailed { .. })),
        "{events:?}"
    );
    // The next refresh is the adopted token's, not a retry.
    assert!(s.refresh_due().unwrap() > arrived + secs(20));
}

#[test]
fn without_an_announcement_the_refresh_goes_ahead_exactly_at_the_handoff_deadline() {
    let (mut s, id, due) = refresh_waiting_for_the_lock();
    let granted = due + Duration::from_millis(120);
    s.handle_lock_granted(granted, id, true);
    assert_eq!(s.poll_timeout(), Some(granted + HANDOFF));
    s.handle_timeout(granted + HANDOFF - Duration::from_millis(1));
    assert!(s.handoff_pending(id), "not a millisecond early");
    // The holder failed, crashed or was closed: nothing comes.
    s.handle_timeout(granted + HANDOFF);
    assert!(!s.handoff_pending(id));
    assert!(
        s.refresh_still_needed(granted + HANDOFF, id),
        "the request goes out"
    );
    // The request timeout still counts from the grant: the wait is part of the attempt.
    assert_eq!(s.poll_timeout(), Some(granted + secs(10)));
    assert!(s.poll_action().is_none());
}

#[test]
fn an_uncontended_or_taken_over_grant_never_waits() {
    let (mut s, id, due) = refresh_waiting_for_the_lock();
    s.handle_lock_granted(due, id, false);
    assert!(!s.handoff_pending(id));
    assert!(s.refresh_still_needed(due, id));
    assert_eq!(s.poll_timeout(), Some(due + secs(10)));
}

#[test]
fn a_contended_grant_of_a_refresh_already_moot_does_not_wait() {
    let (mut s, id, due) = refresh_waiting_for_the_lock();
    let arrived = due + Duration::from_millis(50);
    let _ = s.handle_announcement(
        arrived,
        Announcement {
            token: AccessToken::new(token(arrived.as_millis() / 1000)),
            received_at: arrived,
            lifetime: secs(60),
            claims: None,
        },
        arrived,
    );
    s.handle_lock_granted(arrived + Duration::from_millis(1), id, true);
    assert!(!s.handoff_pending(id));
    assert!(!s.refresh_still_needed(arrived, id));
}

#[test]
fn the_handoff_wait_is_at_most_a_minute_and_half_the_request_timeout_and_zero_turns_it_off() {
    let bad = Config {
        lock_handoff_wait: secs(61),
        ..config()
    };
    assert_eq!(Session::new(bad, 0).unwrap_err().field, "lock_handoff_wait");
    // A short request timeout (a test's 300 ms, say) keeps half of it for the request.
    let (mut s, id, due) = waiting_with(Config {
        request_timeout: Duration::from_millis(300),
        ..config()
    });
    s.handle_lock_granted(due, id, true);
    assert_eq!(s.poll_timeout(), Some(due + Duration::from_millis(150)));
    // Zero turns the wait off.
    let (mut s, id, due) = waiting_with(Config {
        lock_handoff_wait: Duration::ZERO,
        ..config()
    });
    s.handle_lock_granted(due, id, true);
    assert!(!s.handoff_pending(id));
    assert!(s.refresh_still_needed(due, id));
}

/// Five tabs due at the same instant queue behind one refresh of 2 s, and each hears of its
/// grant before the winner's announcement (`tabs.test.mjs`'s flake, on the virtual clock).
fn five_tabs_granted_before_the_announcement(handoff: Duration) -> usize {
    let config = Config {
        refresh_jitter_fraction: 0.0,
        lock_handoff_wait: handoff,
        ..Config::default()
    };
    let mut w = World::new(secs(15 * 60));
    for i in 0..5 {
        w.add_tab(config, i, 0);
    }
    w.login(0);
    w.server.latency = secs(2);
    w.grant_before_announcement = true;
    w.run_for(secs(13 * 60));
    for i in 0..5 {
        assert!(w.tabs[i].session.token(w.local(i)).is_some(), "tab {i}");
    }
    w.server.requests.len()
}

#[test]
fn tabs_granted_the_lock_before_the_announcement_still_make_one_request() {
    assert_eq!(five_tabs_granted_before_the_announcement(HANDOFF), 1);
    // Without the wait (the code before it), the second tab in the queue refreshes again.
    assert!(five_tabs_granted_before_the_announcement(Duration::ZERO) > 1);
}
