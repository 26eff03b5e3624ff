//! Scenario tests of the session against a virtual clock: each proves one promise the
//! library makes to an application. No test sleeps; hours pass in microseconds.

mod harness;

use harness::{secs, token_with_claims, Reply, World, T0};
use token_manager_core::retry_after::RetryAfter;
use token_manager_core::schedule::{self, Config};
use token_manager_core::session::{
    Action, Announcement, Event, ExpiryReason, LogoutOrigin, LogoutReason, ReceivedToken,
    RefreshError, RefreshOutcome, Renewal, SessionState, TokenError, TokenSource, TransientKind,
    Wake,
};
use token_manager_core::{AccessToken, Session, Timestamp};

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

fn at(s: u64) -> Timestamp {
    Timestamp::from_millis(T0) + secs(s)
}

fn offset_secs(t: Timestamp) -> f64 {
    (t.as_millis() as f64 - T0 as f64) / 1000.0
}

fn single_tab(lifetime: u64, config: Config, seed: u64) -> World {
    let mut w = World::new(secs(lifetime));
    w.add_tab(config, seed, 0);
    w.login(0);
    w
}

#[test]
fn fifteen_minute_token_refreshes_inside_the_lead_window_with_jitter_in_bounds() {
    let mut first_refreshes = Vec::new();
    for seed in 0..40 {
        let mut w = single_tab(15 * MIN, Config::default(), seed);
        w.run_for(secs(HOUR));
        let first = offset_secs(w.server.requests[0]);
        // Lead 180 s (20% of 900), jitter up to 25% of it: refresh between 675 s and 720 s.
        assert!((675.0..=720.0).contains(&first), "seed {seed}: {first}");
        // An hour is four lifetimes; each token is refreshed once, before it expires.
        assert!(
            (5..=6).contains(&w.server.requests.len()),
            "{:?}",
            w.server.requests
        );
        assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedIn);
        first_refreshes.push(first);
    }
    let spread = first_refreshes.iter().cloned().fold(f64::MIN, f64::max)
        - first_refreshes.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 20.0,
        "jitter should spread tabs apart, spread {spread}"
    );
}

#[test]
fn refresh_survives_client_clock_three_hours_fast_or_slow() {
    for skew in [3 * HOUR as i64 * 1000, -(3 * HOUR as i64) * 1000] {
        let mut w = World::new(secs(15 * MIN));
        w.add_tab(Config::default(), 7, skew);
        w.login(0);
        w.run_for(secs(2 * HOUR));
        let first = offset_secs(w.server.requests[0]);
        assert!((675.0..=720.0).contains(&first), "skew {skew}: {first}");
        assert!(w.tabs[0].session.token(w.local(0)).is_some());
    }
}

#[test]
fn refresh_survives_server_clock_three_hours_off() {
    for skew in [3 * HOUR as i64 * 1000, -(3 * HOUR as i64) * 1000] {
        let mut w = World::new(secs(15 * MIN));
        w.server.skew_ms = skew;
        w.add_tab(Config::default(), 7, 0);
        w.login(0);
        w.run_for(secs(2 * HOUR));
        let first = offset_secs(w.server.requests[0]);
        assert!(
            (675.0..=720.0).contains(&first),
            "server skew {skew}: {first}"
        );
    }
}

#[test]
fn two_hours_of_sleep_refreshes_at_once_on_wake_and_never_offers_the_expired_token() {
    let mut w = single_tab(15 * MIN, Config::default(), 3);
    w.run_for(secs(5 * MIN));
    assert!(w.server.requests.is_empty());
    w.sleep(secs(2 * HOUR));
    // Before the driver has noticed anything, the expired token is already not offered.
    assert!(w.tabs[0].session.token(w.local(0)).is_none());
    w.wake(0, Wake::Visible);
    assert_eq!(
        w.server.requests,
        vec![w.now],
        "refresh starts at the wake-up check"
    );
    assert!(w.events(0).contains(&Event::Expired {
        reason: ExpiryReason::LifetimeElapsed,
        retrying: true
    }));
    w.run_for(secs(1));
    assert!(w.tabs[0].session.token(w.local(0)).is_some());
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedIn);
}

#[test]
fn a_late_timer_after_sleep_acts_like_a_wake() {
    let mut w = single_tab(15 * MIN, Config::default(), 3);
    w.sleep(secs(2 * HOUR));
    // The throttled timer finally fires, hours late.
    w.spurious_timeout(0);
    assert_eq!(w.server.requests, vec![w.now]);
}

#[test]
fn network_errors_back_off_with_growing_jittered_delays_up_to_the_cap_keeping_the_token() {
    let config = Config {
        retry_base: secs(1),
        retry_cap: secs(30),
        ..Config::default()
    };
    let (mut early, mut late) = (0.0, 0.0);
    for seed in 0..30 {
        let mut w = single_tab(HOUR, config, seed);
        w.server.default_reply = if seed % 2 == 0 {
            Reply::Network
        } else {
            Reply::Status(503)
        };
        let refresh_at = w.tabs[0].session.refresh_due().unwrap();
        w.run_until(refresh_at + secs(60));
        let expiry = w.tabs[0].session.expires_at().unwrap();
        // Still well before expiry: every failure kept the token.
        assert!(w.tabs[0].session.token(w.local(0)).is_some());
        for (_, e) in &w.tabs[0].events {
            if let Event::RefreshFailed { token_valid, .. } = e {
                assert!(token_valid);
            }
        }
        let r = &w.server.requests;
        let gaps: Vec<f64> = r
            .windows(2)
            .map(|p| p[1].saturating_since(p[0]).as_secs_f64() - 0.08)
            .collect();
        for (n, gap) in gaps.iter().enumerate() {
            let ceiling = schedule::backoff_ceiling(n as u32 + 1, &config).as_secs_f64();
            assert!(*gap <= ceiling + 0.001, "attempt {n}: {gap} > {ceiling}");
        }
        early += gaps[..3].iter().sum::<f64>() / 3.0;
        late += gaps[4..6].iter().sum::<f64>() / 2.0;
        assert!(expiry > w.now);
    }
    assert!(
        late > 2.0 * early,
        "backoff must grow: early {early} late {late}"
    );
}

#[test]
fn retries_continue_past_expiry_and_the_session_recovers_without_login() {
    let config = Config {
        retry_cap: secs(20),
        ..Config::default()
    };
    let mut w = single_tab(2 * MIN, config, 11);
    w.server.default_reply = Reply::Status(500);
    w.run_for(secs(10 * MIN));
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::Expired);
    assert!(w.events(0).contains(&Event::Expired {
        reason: ExpiryReason::LifetimeElapsed,
        retrying: true
    }));
    w.server.default_reply = Reply::Ok;
    w.run_for(secs(30));
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedIn);
    // The recovery is one refresh out of the expired state (no login), reported once.
    let events = w.events(0);
    let last_failure = events
        .iter()
        .rposition(|e| matches!(e, Event::RefreshFailed { .. }))
        .unwrap();
    assert_eq!(
        events[last_failure + 1..],
        [
            Event::StateChanged {
                from: SessionState::Refreshing,
                to: SessionState::Expired
            },
            Event::StateChanged {
                from: SessionState::Expired,
                to: SessionState::Refreshing
            },
            Event::Refreshed {
                source: TokenSource::Refresh
            },
            Event::StateChanged {
                from: SessionState::Refreshing,
                to: SessionState::SignedIn
            },
        ],
        "{events:?}"
    );
    assert_eq!(
        w.count_events(0, |e| matches!(e, Event::SignedIn { .. })),
        1,
        "only the first login signs in"
    );
}

#[test]
fn an_announcement_from_a_tab_with_another_test_skew_keeps_its_true_lifetime() {
    // The harness translates a sibling's `received_at` between the tabs' skews: an
    // announcement from a tab an hour slow must not arrive in an unskewed tab an hour old.
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    w.add_tab(Config::default(), 2, -(HOUR as i64) * 1000);
    w.login(1);
    let local = w.local(0);
    assert!(w.tabs[0].session.token(local).is_some());
    let expires = w.tabs[0].session.expires_at().unwrap();
    assert_eq!(expires.saturating_since(local), secs(15 * MIN));
}

#[test]
fn rate_limit_with_retry_after_seconds_waits_for_it() {
    let mut w = single_tab(HOUR, Config::default(), 5);
    w.server
        .script
        .push_back(Reply::RateLimited(Some(secs(30))));
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(120));
    let r = &w.server.requests;
    let gap = r[1].saturating_since(r[0]).as_secs_f64();
    assert!(gap >= 30.08, "retried after {gap}s");
    assert!(gap <= 31.1, "waited too long: {gap}s");
}

#[test]
fn rate_limit_with_an_http_date_waits_for_it_measured_on_the_server_clock() {
    // The server's Date says 12:00:00, Retry-After says 12:00:45; the client clock is hours off.
    let ra = RetryAfter::parse("Tue, 03 Mar 2026 12:00:45 GMT").unwrap();
    let wait = ra.delay(
        Some("Tue, 03 Mar 2026 12:00:00 GMT"),
        Timestamp::from_secs(1),
    );
    assert_eq!(wait, secs(45));
    let mut w = single_tab(HOUR, Config::default(), 5);
    w.server.script.push_back(Reply::RateLimited(Some(wait)));
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(120));
    let r = &w.server.requests;
    assert!(r[1].saturating_since(r[0]) >= secs(45));
}

#[test]
fn retry_after_is_capped() {
    let config = Config {
        retry_after_cap: secs(600),
        ..Config::default()
    };
    let mut w = single_tab(4 * HOUR, config, 5);
    w.server
        .script
        .push_back(Reply::RateLimited(Some(secs(10 * DAY))));
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(HOUR));
    let gap = w.server.requests[1].saturating_since(w.server.requests[0]);
    assert!(gap >= secs(600) && gap <= secs(602), "{gap:?}");
}

#[test]
fn going_online_retries_at_once_but_still_honours_retry_after() {
    let config = Config {
        retry_base: secs(60),
        retry_cap: secs(600),
        ..Config::default()
    };
    let mut w = single_tab(HOUR, config, 9);
    w.server.script.extend([Reply::Network, Reply::Network]);
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(1));
    let n = w.server.requests.len();
    w.wake(0, Wake::Online);
    assert_eq!(w.server.requests.len(), n + 1, "online retried immediately");

    let mut w = single_tab(HOUR, config, 9);
    w.server
        .script
        .push_back(Reply::RateLimited(Some(secs(120))));
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(1));
    w.wake(0, Wake::Online);
    assert_eq!(w.server.requests.len(), 1, "Retry-After still holds");
}

#[test]
fn invalid_grant_clears_the_token_emits_expired_and_stops() {
    let mut w = single_tab(15 * MIN, Config::default(), 2);
    w.server.default_reply = Reply::Status(401);
    w.run_for(secs(10 * HOUR));
    assert_eq!(w.server.requests.len(), 1, "no further attempts");
    assert!(w.tabs[0].session.token(w.local(0)).is_none());
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::Expired);
    assert!(w.events(0).contains(&Event::Expired {
        reason: ExpiryReason::Rejected,
        retrying: false
    }));
    assert_eq!(
        w.tabs[0].session.poll_timeout(),
        None,
        "nothing left to wake up for"
    );
}

#[test]
fn a_hanging_refresh_times_out_and_keeps_the_token() {
    let mut w = single_tab(HOUR, Config::default(), 2);
    w.server.script.push_back(Reply::Hang);
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(11));
    assert!(w.events(0).iter().any(|e| matches!(
        e,
        Event::RefreshFailed {
            error: RefreshError::Transient(TransientKind::Timeout),
            token_valid: true,
            ..
        }
    )));
    assert!(w.tabs[0].session.token(w.local(0)).is_some());
    w.run_for(secs(60));
    assert!(w.server.requests.len() >= 2, "retried after the timeout");
}

#[test]
fn a_refused_dpop_proof_is_a_failure_that_keeps_the_valid_token_and_retries() {
    let mut w = single_tab(HOUR, Config::default(), 2);
    w.server.script.push_back(Reply::DpopRefused);
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(1));
    let failed = w.events(0).into_iter().find_map(|e| match e {
        Event::RefreshFailed {
            error, token_valid, ..
        } => Some((error.code(), token_valid)),
        _ => None,
    });
    assert_eq!(failed, Some(("dpop_failed", true)));
    assert!(w.tabs[0].session.token(w.local(0)).is_some());
    w.run_for(secs(60));
    assert!(w.server.requests.len() >= 2, "retried with backoff");
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedIn);
}

#[test]
fn an_unusable_token_in_a_200_is_a_failure_that_keeps_the_old_token() {
    let mut w = single_tab(HOUR, Config::default(), 2);
    w.server.script.push_back(Reply::Garbage);
    let due = w.tabs[0].session.refresh_due().unwrap();
    w.run_until(due + secs(1));
    assert!(w.events(0).iter().any(|e| matches!(
        e,
        Event::RefreshFailed {
            error: RefreshError::BadToken(_),
            token_valid: true,
            ..
        }
    )));
    assert!(w.tabs[0].session.token(w.local(0)).is_some());
}

fn session_with_token(lifetime: u64) -> (Session, Timestamp) {
    let mut s = Session::new(Config::default(), 1).unwrap();
    let now = at(0);
    let t = token_with_claims(&format!(
        r#"{{"sub":"u","iat":{},"exp":{}}}"#,
        now.as_secs(),
        now.as_secs() + lifetime
    ));
    s.handle_login(
        now,
        ReceivedToken {
            token: AccessToken::new(t),
            expires_in: Some(secs(lifetime)),
            id_token_claims: None,
        },
    )
    .unwrap();
    while s.poll_action().is_some() {}
    while s.poll_event().is_some() {}
    (s, now)
}

#[test]
fn a_newer_token_from_another_tab_during_a_refresh_is_adopted_without_a_second_refresh() {
    let (mut s, _) = session_with_token(15 * MIN);
    let due = s.refresh_due().unwrap();
    s.handle_timeout(due);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!("refresh expected")
    };
    // While this tab waits for the cross-tab lock, the other tab's fresh token arrives.
    let fresh = token_with_claims(&format!(
        r#"{{"sub":"u","iat":{},"exp":{}}}"#,
        due.as_secs(),
        due.as_secs() + 900
    ));
    let adopted = s
        .handle_announcement(
            due + secs(1),
            Announcement {
                token: AccessToken::new(fresh.clone()),
                received_at: due,
                lifetime: secs(900),
                claims: None,
            },
            due + secs(1),
        )
        .unwrap();
    assert!(adopted);
    assert_eq!(s.token(due + secs(1)).unwrap().expose_secret(), fresh);
    assert!(
        !s.refresh_still_needed(due + secs(1), id),
        "the lock holder must not call the endpoint"
    );
    s.handle_refresh_outcome(due + secs(1), id, RefreshOutcome::LostRace);
    assert!(s.poll_action().is_none(), "no second refresh");
    assert!(s.refresh_due().unwrap() > due + secs(600));
}

#[test]
fn an_older_announcement_is_ignored() {
    let (mut s, now) = session_with_token(15 * MIN);
    let old = token_with_claims(r#"{"sub":"u","exp":1}"#);
    let adopted = s
        .handle_announcement(
            now + secs(5),
            Announcement {
                token: AccessToken::new(old),
                received_at: now - secs(60),
                lifetime: secs(900),
                claims: None,
            },
            now + secs(5),
        )
        .unwrap();
    assert!(!adopted);
}

#[test]
fn two_and_five_tabs_make_one_refresh_per_lifetime_between_them() {
    for tabs in [2usize, 5] {
        let mut w = World::new(secs(15 * MIN));
        for i in 0..tabs {
            w.add_tab(Config::default(), 100 + i as u64, 0);
        }
        w.login(0);
        // The other tabs adopted the login through the channel.
        for i in 1..tabs {
            assert!(w.tabs[i].session.token(w.local(i)).is_some(), "tab {i}");
        }
        w.run_for(secs(4 * HOUR));
        // 4 hours of 15-minute tokens refreshed ~12 minutes in: about 20 refreshes in all.
        let n = w.server.requests.len();
        assert!(
            (18..=22).contains(&n),
            "{tabs} tabs made {n} refresh requests"
        );
        for i in 0..tabs {
            assert!(w.tabs[i].session.token(w.local(i)).is_some());
        }
    }
}

#[test]
fn extra_tabs_add_no_refresh_requests_the_fetching_tab_refreshes_and_the_others_stand_by() {
    let run = |tabs: usize| {
        let mut w = World::new(secs(15 * MIN));
        for i in 0..tabs {
            w.add_tab(Config::default(), 100 + i as u64, 0);
        }
        w.login(0);
        w.run_for(secs(4 * HOUR));
        for i in 1..tabs {
            assert!(
                w.tabs[i].started.is_empty(),
                "{tabs} tabs: tab {i} refreshed although the fetching tab was alive"
            );
            assert!(w.tabs[i].session.token(w.local(i)).is_some());
        }
        w.server.requests.clone()
    };
    let alone = run(1);
    assert!(alone.len() >= 18, "{} refreshes in 4 h", alone.len());
    // Same seed for the fetching tab: the very same requests at the very same times.
    assert_eq!(run(2), alone);
    assert_eq!(run(5), alone);
}

#[test]
fn when_the_fetching_tab_is_gone_a_standing_by_tab_refreshes_before_expiry() {
    let mut w = World::new(secs(15 * MIN));
    for i in 0..3 {
        w.add_tab(Config::default(), 200 + i as u64, 0);
    }
    w.login(0);
    w.run_for(secs(MIN));
    w.tabs[0].closed = true;
    w.run_for(secs(2 * HOUR));
    let takers = (1..3).filter(|i| !w.tabs[*i].started.is_empty()).count();
    assert!(takers >= 1, "nobody took over");
    // The token of the login expires at 15 min; it was replaced before that, and every
    // token since by one of the survivors (check_invariants: none ever offered expired).
    let first = w.server.requests[0];
    assert!(
        first < Timestamp::from_millis(T0) + secs(15 * MIN) - secs(60),
        "first takeover at {first:?}"
    );
    assert!(
        w.server.requests.len() >= 9,
        "{} refreshes",
        w.server.requests.len()
    );
    for i in 1..3 {
        assert!(w.tabs[i].session.token(w.local(i)).is_some(), "tab {i}");
    }
}

#[test]
fn simultaneous_tabs_behind_the_lock_make_one_request() {
    // Zero jitter: every tab wants to refresh at the same instant.
    let config = Config {
        refresh_jitter_fraction: 0.0,
        ..Config::default()
    };
    let mut w = World::new(secs(15 * MIN));
    for i in 0..5 {
        w.add_tab(config, i, 0);
    }
    w.login(0);
    w.server.latency = secs(2);
    w.run_for(secs(13 * MIN));
    assert_eq!(w.server.requests.len(), 1);
}

#[test]
fn a_new_tab_asks_its_siblings_before_calling_the_endpoint() {
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    w.login(0);
    w.run_for(secs(MIN));
    w.add_tab(Config::default(), 2, 0);
    w.restore(1);
    w.run_for(secs(1));
    assert!(w.server.requests.is_empty());
    assert!(w.events(1).contains(&Event::SignedIn {
        source: TokenSource::OtherTab
    }));
}

#[test]
fn a_lone_tab_restores_through_the_cookie_after_the_sibling_wait() {
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    w.restore(0);
    assert!(w.server.requests.is_empty(), "waits for siblings first");
    w.run_for(secs(1));
    assert_eq!(w.server.requests.len(), 1);
    assert!(offset_secs(w.server.requests[0]) >= 0.1);
    assert!(w.events(0).contains(&Event::SignedIn {
        source: TokenSource::Restore
    }));
}

#[test]
fn a_restore_without_a_session_signs_out_quietly() {
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    w.server.default_reply = Reply::Status(401);
    w.restore(0);
    w.run_for(secs(HOUR));
    assert_eq!(w.server.requests.len(), 1);
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedOut);
    assert_eq!(w.count_events(0, |e| matches!(e, Event::Expired { .. })), 0);
    assert_eq!(
        w.count_events(0, |e| matches!(e, Event::RefreshFailed { .. })),
        0,
        "a first visit is not an error"
    );
}

#[test]
fn a_restore_refused_with_403_is_reported_as_forbidden_not_as_a_first_visit() {
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    w.server.default_reply = Reply::Status(403);
    w.restore(0);
    w.run_for(secs(HOUR));
    assert_eq!(w.server.requests.len(), 1);
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::SignedOut);
    assert_eq!(
        w.count_events(0, |e| matches!(
            e,
            Event::RefreshFailed {
                error: RefreshError::Forbidden,
                token_valid: false,
                ..
            }
        )),
        1
    );
    assert_eq!(RefreshError::Forbidden.code(), "forbidden");
}

#[test]
fn logout_in_one_tab_signs_out_all_and_a_late_refresh_answer_is_ignored() {
    let mut w = World::new(secs(15 * MIN));
    for i in 0..3 {
        w.add_tab(Config::default(), i, 0);
    }
    w.login(0);
    w.server.latency = secs(5);
    let due = w
        .tabs
        .iter()
        .filter_map(|t| t.session.refresh_due())
        .min()
        .unwrap();
    w.run_until(due + secs(1));
    // A refresh is in flight in some tab; tab 2 logs out now.
    assert!(w
        .tabs
        .iter()
        .any(|t| t.session.state(w.local(0)) == SessionState::Refreshing));
    w.logout(2);
    w.run_for(secs(HOUR));
    for i in 0..3 {
        assert_eq!(
            w.tabs[i].session.state(w.local(i)),
            SessionState::SignedOut,
            "tab {i}"
        );
        assert!(w.tabs[i].session.token(w.local(i)).is_none());
    }
    assert!(w.events(0).contains(&Event::SignedOut {
        origin: LogoutOrigin::OtherTab,
        reason: LogoutReason::User,
    }));
    assert!(w.events(2).contains(&Event::SignedOut {
        origin: LogoutOrigin::Local,
        reason: LogoutReason::User,
    }));
}

#[test]
fn a_sixty_day_token_never_arms_a_delay_past_the_timer_limit_and_refreshes_on_time() {
    let mut w = single_tab(60 * DAY, Config::default(), 4);
    w.run_for(secs(70 * DAY));
    assert!(w.max_armed_delay.as_millis() < (1 << 31) - 1);
    assert!(
        w.max_armed_delay > secs(20 * DAY),
        "long waits are re-armed, not skipped"
    );
    // Lead: 20% of 60 days = 12 days, jitter up to 3 more.
    let first = offset_secs(w.server.requests[0]) / DAY as f64;
    assert!((45.0..=48.0).contains(&first), "refreshed on day {first}");
}

#[test]
fn duplicate_early_and_late_timeouts_change_nothing() {
    let run = |noise: bool| {
        let mut w = single_tab(15 * MIN, Config::default(), 42);
        w.server.script.extend([Reply::Network, Reply::Status(502)]);
        for _ in 0..(3 * HOUR / 7) {
            w.run_for(secs(7));
            if noise {
                w.spurious_timeout(0);
                w.spurious_timeout(0);
            }
        }
        (w.server.requests.clone(), w.events(0))
    };
    assert_eq!(run(false), run(true));
}

#[test]
fn a_server_answering_expires_in_one_cannot_exceed_the_refresh_budget() {
    let config = Config::default();
    let mut w = single_tab(1, config, 8);
    w.run_for(secs(10 * MIN));
    let r = &w.server.requests;
    assert!(
        r.len() <= 11 * config.refresh_budget as usize,
        "{} refreshes",
        r.len()
    );
    for (i, start) in r.iter().enumerate() {
        let in_window = r[i..]
            .iter()
            .take_while(|t| t.saturating_since(*start) < config.refresh_budget_window)
            .count();
        assert!(in_window <= config.refresh_budget as usize);
    }
    assert!(w.events(0).iter().any(|e| matches!(
        e,
        Event::RefreshFailed {
            error: RefreshError::BudgetExhausted,
            ..
        }
    )));
}

#[test]
fn renew_on_read_refreshes_inside_the_lead_window_only() {
    let (mut s, now) = session_with_token(15 * MIN);
    assert_eq!(s.renew_on_read(now + secs(60)), Renewal::Fresh);
    assert!(s.poll_action().is_none());
    // 12 minutes in: inside the 3-minute lead even if the jittered timer has not fired yet.
    assert_eq!(s.renew_on_read(now + secs(12 * MIN + 30)), Renewal::Pending);
    assert!(matches!(s.poll_action(), Some(Action::StartRefresh(_))));
    // Twenty concurrent readers share the one refresh.
    for _ in 0..20 {
        assert_eq!(s.renew_on_read(now + secs(12 * MIN + 31)), Renewal::Pending);
    }
    assert!(s.poll_action().is_none());
}

#[test]
fn force_refresh_after_a_401_starts_one_refresh_and_respects_backoff() {
    let (mut s, now) = session_with_token(15 * MIN);
    assert_eq!(s.force_refresh(now + secs(10)), Renewal::Pending);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!()
    };
    s.handle_refresh_outcome(
        now + secs(11),
        id,
        RefreshOutcome::Transient(TransientKind::Network),
    );
    assert_eq!(
        s.force_refresh(now + secs(11)),
        Renewal::Unavailable,
        "backing off"
    );
    assert!(s.token(now + secs(11)).is_some(), "token kept");
}

#[test]
fn signed_out_sessions_never_refresh() {
    let mut s = Session::new(Config::default(), 1).unwrap();
    assert_eq!(s.renew_on_read(at(0)), Renewal::Unavailable);
    assert_eq!(s.force_refresh(at(0)), Renewal::Unavailable);
    s.handle_wake(at(1), Wake::Online);
    assert!(s.poll_action().is_none());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn the_wall_clock_set_back_an_hour_does_not_extend_the_token() {
    // The session never runs backwards: it saw 5 minutes pass, then the clock set back.
    let mut w = single_tab(15 * MIN, Config::default(), 6);
    w.run_for(secs(5 * MIN));
    w.spurious_timeout(0);
    w.tabs[0].skew_ms = -(HOUR as i64) * 1000;
    w.spurious_timeout(0);
    w.run_for(secs(2 * HOUR));
    // The harness asserts after every step that no expired token was offered.
    let first = offset_secs(w.server.requests[0]);
    assert!((675.0..=720.0).contains(&first), "{first}");
}

#[test]
fn the_hybrid_clock_keeps_time_through_a_wall_clock_set_back_unobserved() {
    // Here the session hears nothing between login and the jump: only the monotonic clock
    // knows five minutes passed, and `Clock` carries that into the session.
    use token_manager_core::Clock;
    let mut clock = Clock::new();
    let wall0 = T0;
    let mut s = Session::new(Config::default(), 1).unwrap();
    let now = clock.now(wall0, 0);
    let t = token_with_claims(r#"{"sub":"u","iat":1,"exp":901}"#);
    s.handle_login(
        now,
        ReceivedToken {
            token: AccessToken::new(t),
            expires_in: Some(secs(900)),
            id_token_claims: None,
        },
    )
    .unwrap();
    let read = |clock: &mut Clock, true_secs: u64| {
        let wall = wall0 + true_secs * 1000 - if true_secs >= 300 { HOUR * 1000 } else { 0 };
        clock.now(wall, true_secs * 1000)
    };
    let before = read(&mut clock, 600);
    assert!(s.token(before).is_some());
    // 5 s leeway: from 895 s of real time on, the token is not offered.
    let late = read(&mut clock, 896);
    assert!(
        s.token(late).is_none(),
        "token offered past its real expiry"
    );
}

#[test]
fn the_wall_clock_set_forward_refreshes_early_rather_than_late() {
    let mut w = single_tab(15 * MIN, Config::default(), 6);
    w.run_for(secs(MIN));
    w.tabs[0].skew_ms = (HOUR as i64) * 1000;
    w.spurious_timeout(0);
    assert_eq!(w.server.requests, vec![w.now]);
}

#[test]
fn login_supersedes_a_refresh_in_flight() {
    let (mut s, now) = session_with_token(15 * MIN);
    assert_eq!(s.force_refresh(now), Renewal::Pending);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!()
    };
    let t = token_with_claims(r#"{"sub":"other","iat":1,"exp":901}"#);
    s.handle_login(
        now + secs(1),
        ReceivedToken {
            token: AccessToken::new(t),
            expires_in: Some(secs(900)),
            id_token_claims: None,
        },
    )
    .unwrap();
    let actions: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::AbortRefresh(a) if *a == id)));
    // The late answer of the superseded attempt changes nothing.
    s.handle_refresh_outcome(now + secs(2), id, RefreshOutcome::Rejected { status: 401 });
    assert_eq!(s.claims().unwrap().sub.as_deref(), Some("other"));
    assert_eq!(s.state(now + secs(2)), SessionState::SignedIn);
}

#[test]
fn a_token_without_any_lifetime_is_refused_and_changes_nothing() {
    let mut s = Session::new(Config::default(), 1).unwrap();
    let t = token_with_claims(r#"{"sub":"u"}"#);
    let err = s
        .handle_login(
            at(0),
            ReceivedToken {
                token: AccessToken::new(t),
                expires_in: None,
                id_token_claims: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "no_expiry");
    assert_eq!(s.state(at(0)), SessionState::SignedOut);
    let err = s
        .handle_login(
            at(0),
            ReceivedToken {
                token: AccessToken::new("x.y".into()),
                expires_in: Some(secs(60)),
                id_token_claims: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "malformed_token");
}

#[test]
fn state_changes_are_reported_as_events() {
    let mut w = single_tab(15 * MIN, Config::default(), 1);
    w.run_for(secs(15 * MIN));
    let states: Vec<_> = w
        .events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::StateChanged { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            SessionState::SignedIn,
            SessionState::Refreshing,
            SessionState::SignedIn
        ]
    );
}

#[test]
fn a_tab_without_cross_tab_support_still_refreshes_alone() {
    let mut w = World::new(secs(15 * MIN));
    w.cross_tab = false;
    let config = Config {
        sibling_wait: None,
        ..Config::default()
    };
    w.add_tab(config, 1, 0);
    w.add_tab(config, 2, 0);
    w.login(0);
    w.restore(1);
    w.run_for(secs(HOUR));
    assert!(w.tabs[1].session.token(w.local(1)).is_some());
    assert!(
        w.server.requests.len() >= 8,
        "each tab refreshes for itself"
    );
}

#[test]
fn a_forced_refresh_calls_the_endpoint_even_while_the_token_looks_fresh() {
    let (mut s, now) = session_with_token(15 * MIN);
    assert_eq!(s.force_refresh(now + secs(10)), Renewal::Pending);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!()
    };
    assert!(
        s.refresh_still_needed(now + secs(10), id),
        "the API refused this token"
    );
}

#[test]
fn a_forced_refresh_is_moot_once_another_tab_replaced_the_token() {
    let (mut s, now) = session_with_token(15 * MIN);
    assert_eq!(s.force_refresh(now + secs(10)), Renewal::Pending);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!()
    };
    let fresh = token_with_claims(&format!(
        r#"{{"sub":"u","iat":{},"exp":{}}}"#,
        now.as_secs() + 10,
        now.as_secs() + 910
    ));
    let adopted = s
        .handle_announcement(
            now + secs(11),
            Announcement {
                token: AccessToken::new(fresh),
                received_at: now + secs(10),
                lifetime: secs(900),
                claims: None,
            },
            now + secs(11),
        )
        .unwrap();
    assert!(adopted);
    assert!(!s.refresh_still_needed(now + secs(11), id));
}

/// A token as another tab (or any script of the origin) might announce it: claims of the
/// caller's choosing, issued `age` ago on the server's clock, living `lifetime`. Registered in
/// the harness with its real expiry so the invariant checks hold it to its `exp`.
fn forged(w: &mut World, claims: &str, age: u64, lifetime: u64) -> String {
    let iat = w.server.clock(w.now).as_secs() - age;
    let token = token_with_claims(&format!(
        r#"{{{claims},"iat":{iat},"exp":{}}}"#,
        iat + lifetime
    ));
    let real_exp = w.now + secs(lifetime) - secs(age);
    w.server.real_expiry.insert(token.clone(), real_exp);
    token
}

fn announce(
    w: &mut World,
    tab: usize,
    token: &str,
    lifetime: std::time::Duration,
) -> Result<bool, TokenError> {
    let now = w.local(tab);
    let issuer_now = w.server.clock(w.now);
    let r = w.tabs[tab].session.handle_announcement(
        now,
        Announcement {
            token: AccessToken::new(token.to_owned()),
            received_at: now,
            lifetime,
            claims: None,
        },
        issuer_now,
    );
    w.settle(tab);
    r
}

#[test]
fn a_signed_in_tab_refuses_a_token_of_another_user_or_session_from_the_channel() {
    let mut w = single_tab(15 * MIN, Config::default(), 1);
    w.run_for(secs(5 * MIN));
    let own = |w: &World| {
        w.tabs[0]
            .session
            .token(w.local(0))
            .map(|t| t.expose_secret().to_owned())
    };
    let before = own(&w);
    for claims in [
        r#""sub":"user-2","sid":"family-1""#,
        r#""sub":"user-1","sid":"family-2""#,
        r#""sub":"user-1""#,
        r#""sid":"family-1""#,
    ] {
        // Fresher than the held token, so it would be adopted if it were this session's.
        let token = forged(&mut w, claims, 0, 15 * MIN);
        assert_eq!(
            announce(&mut w, 0, &token, secs(15 * MIN)),
            Err(TokenError::OtherSession),
            "{claims}"
        );
        assert_eq!(own(&w), before, "{claims}");
    }
    assert_eq!(TokenError::OtherSession.code(), "other_session");
    // The tab carries on with its own session, refreshed from its own endpoint.
    w.run_for(secs(HOUR));
    let claims = w.tabs[0].session.claims().unwrap();
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert!(w.server.requests.len() >= 4);
    // The same session's token from a sibling is still adopted.
    let sibling = forged(&mut w, r#""sub":"user-1","sid":"family-1""#, 0, 15 * MIN);
    assert_eq!(announce(&mut w, 0, &sibling, secs(15 * MIN)), Ok(true));
}

#[test]
fn a_tab_whose_token_ran_out_still_refuses_another_session() {
    let mut w = single_tab(15 * MIN, Config::default(), 1);
    w.server.default_reply = Reply::Network;
    w.run_for(secs(20 * MIN));
    assert_eq!(w.tabs[0].session.state(w.local(0)), SessionState::Expired);
    let token = forged(&mut w, r#""sub":"user-2","sid":"family-9""#, 0, 15 * MIN);
    assert_eq!(
        announce(&mut w, 0, &token, secs(15 * MIN)),
        Err(TokenError::OtherSession)
    );
    assert!(w.tabs[0].session.token(w.local(0)).is_none());
}

#[test]
fn an_announced_lifetime_never_outlives_the_tokens_exp_or_exp_minus_iat() {
    // A signed-out tab may adopt a sibling's login, but only for as long as the token lives.
    for (age, lifetime, announced, left) in [
        // 3,646 days announced for a one-minute token.
        (0, MIN, 3646 * DAY, MIN),
        // More than the token's own exp - iat.
        (0, 2 * MIN, 15 * MIN, 2 * MIN),
        // An old token re-announced as if just received: only what is left of it.
        (14 * MIN, 15 * MIN, 15 * MIN, MIN),
    ] {
        let mut w = World::new(secs(15 * MIN));
        w.add_tab(Config::default(), 1, 0);
        let token = forged(&mut w, r#""sub":"user-1","sid":"family-1""#, age, lifetime);
        assert_eq!(announce(&mut w, 0, &token, secs(announced)), Ok(true));
        let expires = w.tabs[0].session.expires_at().unwrap();
        let limit = w.local(0) + secs(left) + schedule::EXP_RESOLUTION;
        assert!(
            expires <= limit,
            "announced {announced} s: expires {} s after now",
            expires.saturating_since(w.local(0)).as_secs()
        );
        // The invariant checks (no token offered past its real expiry) hold while time runs.
        w.run_for(secs(2 * MIN));
    }
    // A token without `exp` cannot be bounded: refused.
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(Config::default(), 1, 0);
    let token = token_with_claims(r#"{"sub":"user-1","iat":1800000000}"#);
    assert_eq!(
        announce(&mut w, 0, &token, secs(15 * MIN)),
        Err(TokenError::NoLifetime)
    );
    assert!(w.tabs[0].session.token(w.local(0)).is_none());
}

#[test]
fn a_sibling_token_is_adopted_in_full_when_the_server_clock_is_hours_off() {
    for skew in [3 * HOUR as i64 * 1000, -(3 * HOUR as i64) * 1000] {
        let mut w = World::new(secs(15 * MIN));
        w.server.skew_ms = skew;
        w.add_tab(Config::default(), 1, 0);
        w.add_tab(Config::default(), 2, 0);
        w.login(0);
        let a = w.tabs[0].session.expires_at().unwrap();
        let b = w.tabs[1].session.expires_at().expect("adopted");
        assert!(
            a.saturating_since(b) < schedule::EXP_RESOLUTION,
            "skew {skew}: {a:?} vs {b:?}"
        );
        w.run_for(secs(HOUR));
        assert!(
            w.server.requests.len() <= 5,
            "skew {skew}: still one refresh per lifetime"
        );
    }
}

#[test]
fn after_two_hours_of_sleep_the_state_is_expired_before_any_input_like_the_token() {
    let mut w = single_tab(15 * MIN, Config::default(), 3);
    w.run_for(secs(5 * MIN));
    w.sleep(secs(2 * HOUR));
    let now = w.local(0);
    assert!(w.tabs[0].session.token(now).is_none());
    assert_eq!(w.tabs[0].session.state(now), SessionState::Expired);
    // Waking refreshes; then signed in again, token and state agreeing.
    w.wake(0, Wake::Visible);
    w.run_for(secs(10));
    let now = w.local(0);
    assert!(w.tabs[0].session.token(now).is_some());
    assert_eq!(w.tabs[0].session.state(now), SessionState::SignedIn);
}

/// The error of the latest `RefreshFailed` event of tab `tab`: what the driver keeps for
/// `restore()`.
fn last_failure(w: &World, tab: usize) -> Option<RefreshError> {
    w.events(tab).into_iter().rev().find_map(|e| match e {
        Event::RefreshFailed { error, .. } => Some(error),
        _ => None,
    })
}

#[test]
fn restore_resolves_true_signed_in_false_without_a_session_and_rejects_with_other_failures() {
    let restored = |reply: Reply| {
        let mut w = World::new(secs(15 * MIN));
        w.add_tab(Config::default(), 1, 0);
        w.server.script.push_back(reply);
        w.restore(0);
        // Until the first attempt has settled (after the sibling wait and the request).
        for _ in 0..100 {
            if w.tabs[0].session.is_settled() {
                break;
            }
            w.run_for(std::time::Duration::from_millis(100));
        }
        assert!(w.tabs[0].session.is_settled());
        let failure = last_failure(&w, 0);
        w.tabs[0]
            .session
            .restore_result(w.local(0), failure.as_ref())
            .map_err(Clone::clone)
    };
    assert_eq!(restored(Reply::Ok), Ok(true));
    assert_eq!(
        restored(Reply::Status(401)),
        Ok(false),
        "no session: a first visit"
    );
    assert_eq!(restored(Reply::Status(403)), Err(RefreshError::Forbidden));
    assert_eq!(
        restored(Reply::Status(500)),
        Err(RefreshError::Transient(TransientKind::Server(500)))
    );
    assert_eq!(
        restored(Reply::Network),
        Err(RefreshError::Transient(TransientKind::Network))
    );
}

#[test]
fn a_refused_sibling_token_is_reported_without_a_retry_and_says_whether_ours_is_valid() {
    let mut w = single_tab(15 * MIN, Config::default(), 1);
    let error = TokenError::NoLifetime;
    let event = w.tabs[0]
        .session
        .refused_announcement(w.local(0), error.clone());
    assert_eq!(
        event,
        Event::RefreshFailed {
            error: RefreshError::BadToken(error.clone()),
            retry_in: None,
            token_valid: true,
        }
    );
    w.logout(0);
    let event = w.tabs[0].session.refused_announcement(w.local(0), error);
    assert!(matches!(
        event,
        Event::RefreshFailed {
            token_valid: false,
            ..
        }
    ));
}
