//! The idle timeout and the cross-tab lock's acquire timeout, on the virtual clock: activity in
//! any tab keeps every tab signed in, refreshes do not, a warning comes first and activity
//! cancels it; a lock held by a tab that stopped never blocks the other tabs' refreshes.

mod harness;

use std::time::Duration;

use harness::{secs, World, T0};
use token_manager_core::schedule::Config;
use token_manager_core::session::{
    Action, Event, ExpiryReason, LogoutOrigin, LogoutReason, ReceivedToken, RefreshOutcome,
};
use token_manager_core::{AccessToken, Session, Timestamp};

const MIN: u64 = 60;

fn at(s: u64) -> Timestamp {
    Timestamp::from_millis(T0) + secs(s)
}

fn idle_config(timeout: u64, warning: u64) -> Config {
    Config {
        idle_timeout: Some(secs(timeout)),
        idle_warning: secs(warning),
        ..Config::default()
    }
}

/// Two tabs of one session, signed in at `T0` (tab 0 logs in, tab 1 adopts on page load).
fn two_tabs(lifetime: u64, config: Config) -> World {
    let mut w = World::new(secs(lifetime));
    w.add_tab(config, 1, 0);
    w.add_tab(config, 2, 0);
    w.login(0);
    w.restore(1);
    w
}

/// Times (true, since `T0`, in ms) at which `tab` saw events matching `pred`.
fn times(w: &World, tab: usize, pred: impl Fn(&Event) -> bool) -> Vec<u64> {
    w.tabs[tab]
        .events
        .iter()
        .filter(|(_, e)| pred(e))
        .map(|(t, _)| t.as_millis() - T0)
        .collect()
}

fn is_warning(e: &Event) -> bool {
    matches!(e, Event::IdleWarning { .. })
}

fn idle_logout(origin: LogoutOrigin) -> impl Fn(&Event) -> bool {
    move |e| {
        *e == Event::SignedOut {
            origin,
            reason: LogoutReason::Idle,
        }
    }
}

#[test]
fn without_activity_every_tab_is_warned_then_signed_out_for_idleness_despite_refreshes() {
    // Tokens of 2 minutes: five refreshes happen in the ten idle minutes, none counts as activity.
    let mut w = two_tabs(2 * MIN, idle_config(10 * MIN, MIN));
    w.run_for(secs(20 * MIN));
    assert!(w.server.requests.len() >= 4, "refreshes ran meanwhile");
    for tab in 0..2 {
        assert_eq!(times(&w, tab, is_warning), [9 * MIN * 1000], "tab {tab}");
        let warned = w.events(tab).into_iter().find(is_warning_ev);
        assert_eq!(
            warned,
            Some(Event::IdleWarning {
                logout_at: at(10 * MIN)
            }),
            "the warning says when the logout happens"
        );
        assert!(w.tabs[tab].session.token(w.local(tab)).is_none());
        assert_eq!(w.tabs[tab].session.claims(), None);
    }
    // The first tab to reach the deadline signs out, tells the server and the other tab.
    assert_eq!(
        times(&w, 0, idle_logout(LogoutOrigin::Local)),
        [10 * MIN * 1000]
    );
    assert_eq!(
        times(&w, 1, idle_logout(LogoutOrigin::OtherTab)),
        [10 * MIN * 1000]
    );
    assert_eq!(w.revocations, [(at(10 * MIN), 0)]);
    let after = w.server.requests.len();
    w.run_for(secs(60 * MIN));
    assert_eq!(
        w.server.requests.len(),
        after,
        "no refresh after the idle logout"
    );
}

fn is_warning_ev(e: &Event) -> bool {
    is_warning(e)
}

#[test]
fn activity_in_one_tab_keeps_every_tab_signed_in_and_is_shared_sparingly() {
    let mut w = two_tabs(2 * MIN, idle_config(10 * MIN, MIN));
    // A user busy in tab 1 for half an hour: the driver forwards one activity a second.
    for _ in 0..30 * MIN {
        w.run_for(secs(1));
        w.activity(1);
    }
    for tab in 0..2 {
        assert_eq!(times(&w, tab, is_warning), Vec::<u64>::new(), "tab {tab}");
        assert!(
            w.tabs[tab].session.token(w.local(tab)).is_some(),
            "tab {tab}"
        );
    }
    // 1800 activities, shared at most once per 5 s.
    let messages = w.activity_messages.len();
    assert!(messages <= 30 * MIN as usize / 5 + 1, "{messages} messages");
    assert!(messages >= 30 * MIN as usize / 5 - 1, "{messages} messages");
}

#[test]
fn the_last_throttled_activity_still_reaches_the_other_tabs() {
    let mut w = two_tabs(2 * MIN, idle_config(10 * MIN, MIN));
    w.run_for(secs(10));
    w.activity(1); // shared at once
    w.run_for(secs(2));
    w.activity(1); // within the share interval: shared when it ends
    w.run_for(secs(30 * MIN));
    // Both tabs count from the last activity (12 s), not the last one shared at once (10 s).
    let last = 12 * 1000;
    assert_eq!(times(&w, 0, is_warning), [last + 9 * MIN * 1000]);
    assert_eq!(times(&w, 1, is_warning), [last + 9 * MIN * 1000]);
    let ends: Vec<u64> = (0..2)
        .flat_map(|tab| {
            times(&w, tab, |e| {
                matches!(
                    e,
                    Event::SignedOut {
                        reason: LogoutReason::Idle,
                        ..
                    }
                )
            })
        })
        .collect();
    assert_eq!(ends, [last + 10 * MIN * 1000, last + 10 * MIN * 1000]);
    assert_eq!(w.revocations.len(), 1);
}

#[test]
fn activity_after_the_warning_cancels_the_logout_in_every_tab_and_fires_active() {
    let mut w = two_tabs(2 * MIN, idle_config(10 * MIN, MIN));
    w.run_until(at(9 * MIN + 30));
    assert_eq!(w.count_events(0, is_warning), 1);
    assert_eq!(w.count_events(1, is_warning), 1);
    w.activity(0);
    for tab in 0..2 {
        assert_eq!(
            times(&w, tab, |e| *e == Event::Active),
            [(9 * MIN + 30) * 1000],
            "tab {tab}: shared at once, whatever the throttle"
        );
    }
    w.run_until(at(19 * MIN));
    for tab in 0..2 {
        assert!(
            w.tabs[tab].session.token(w.local(tab)).is_some(),
            "tab {tab}"
        );
    }
    w.run_until(at(20 * MIN));
    assert_eq!(
        times(&w, 0, idle_logout(LogoutOrigin::Local)),
        [(19 * MIN + 30) * 1000]
    );
    assert_eq!(w.count_events(1, idle_logout(LogoutOrigin::OtherTab)), 1);
}

#[test]
fn a_machine_asleep_past_the_idle_timeout_signs_out_on_wake() {
    let mut w = two_tabs(2 * MIN, idle_config(10 * MIN, MIN));
    w.sleep(secs(3 * 3600));
    // Becoming visible is activity, reported (capture phase) before the wake itself: the
    // deadline that passed during the sleep is checked first all the same.
    w.activity(1);
    w.wake(1, token_manager_core::session::Wake::Visible);
    assert_eq!(w.count_events(1, idle_logout(LogoutOrigin::Local)), 1);
    assert!(w.tabs[1].session.token(w.local(1)).is_none());
    assert_eq!(w.count_events(0, idle_logout(LogoutOrigin::OtherTab)), 1);
}

#[test]
fn the_idle_timeout_is_off_by_default() {
    let mut w = two_tabs(2 * MIN, Config::default());
    w.run_for(secs(2 * 86_400));
    for tab in 0..2 {
        assert_eq!(w.count_events(tab, is_warning), 0);
        assert!(w.tabs[tab].session.token(w.local(tab)).is_some());
    }
    assert!(w.activity_messages.is_empty());
    assert!(w.revocations.is_empty());
}

#[test]
fn an_idle_warning_not_shorter_than_the_timeout_is_a_config_error() {
    let err = Session::new(idle_config(60, 60), 0).unwrap_err();
    assert_eq!(err.field, "idle_warning");
    assert!(Session::new(idle_config(60, 59), 0).is_ok());
}

fn lock_config() -> Config {
    Config {
        request_timeout: secs(10),
        lock_timeout: Some(secs(11)),
        ..Config::default()
    }
}

#[test]
fn a_frozen_lock_holder_is_taken_over_after_the_lock_timeout_and_the_token_never_lapses() {
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(lock_config(), 7, 0);
    w.add_tab(lock_config(), 8, 0);
    w.login(0);
    w.restore(1);
    // A third tab took the lock and froze (a debugger, a suspended page): it never lets go.
    w.lock_frozen = true;
    let due = w.tabs[0]
        .session
        .refresh_due()
        .expect("a refresh is scheduled");
    w.run_for(secs(30 * MIN));
    let first = w.server.requests.first().copied().expect("a refresh ran");
    let waited = first.saturating_since(due);
    assert!(
        waited <= Duration::from_millis(11_000),
        "the lock was waited for {waited:?}"
    );
    for tab in 0..2 {
        assert_eq!(
            w.count_events(tab, |e| matches!(
                e,
                Event::Expired {
                    reason: ExpiryReason::LifetimeElapsed,
                    ..
                }
            )),
            0,
            "tab {tab} never lost its token"
        );
        assert!(w.tabs[tab].session.token(w.local(tab)).is_some());
    }
    // One refresh per token between the two tabs, as with a lock that works.
    assert!(w.server.requests.len() <= 3, "{:?}", w.server.requests);
}

#[test]
fn when_the_leader_freezes_holding_the_lock_the_standing_by_tabs_take_over_with_one_request_per_token(
) {
    let mut w = World::new(secs(15 * MIN));
    for seed in [11, 12, 13] {
        w.add_tab(lock_config(), seed, 0);
    }
    w.login(0);
    w.restore(1);
    w.restore(2);
    // The tab that fetched the token (and refreshes first) freezes inside its refresh.
    w.run_until(w.tabs[0].session.refresh_due().unwrap());
    w.tabs[0].closed = true;
    w.lock_frozen = true;
    w.run_for(secs(60 * MIN));
    // Tabs 1 and 2 come due at different (jittered) moments: the first takes the lock over and
    // refreshes, the second finds the token announced once it gets the lock.
    let taker = &w.tabs[1].started;
    assert!(!taker.is_empty(), "tab 1 took over");
    for pair in taker.windows(2) {
        let gap = pair[1].saturating_since(pair[0]);
        assert!(
            gap >= secs(10 * MIN),
            "one refresh per 15-minute token, not {gap:?} apart"
        );
    }
    assert_eq!(
        w.tabs[2].started,
        [],
        "tab 2 always found the token announced"
    );
    for tab in 1..3 {
        assert_eq!(
            w.count_events(tab, |e| matches!(e, Event::Expired { .. })),
            0,
            "tab {tab}"
        );
        assert!(w.tabs[tab].session.token(w.local(tab)).is_some());
    }
}

#[test]
fn the_request_timeout_counts_from_the_lock_grant() {
    let mut s = Session::new(lock_config(), 3).unwrap();
    let t0 = Timestamp::from_millis(T0);
    let token = harness::token_with_claims(r#"{"sub":"u","iat":1800000000,"exp":1800000060}"#);
    s.handle_login(
        t0,
        ReceivedToken {
            token: AccessToken::new(token),
            expires_in: Some(secs(60)),
            id_token_claims: None,
        },
    )
    .unwrap();
    while s.poll_action().is_some() {}
    let Renewal::Pending = s.force_refresh(t0) else {
        panic!("a refresh starts");
    };
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!("StartRefresh");
    };
    // Waiting for the lock: the timer is set for the takeover, 11 s on.
    assert_eq!(s.poll_timeout(), Some(t0 + secs(11)));
    s.handle_lock_granted(t0 + secs(8), id, false);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(18)));
    s.handle_timeout(t0 + secs(17));
    assert!(!s.is_settled(), "10 s after the grant, not after the start");
    s.handle_timeout(t0 + secs(18));
    assert!(s.is_settled());
    assert!(matches!(s.poll_action(), Some(Action::AbortRefresh(a)) if a == id));
    s.handle_refresh_outcome(t0 + secs(19), id, RefreshOutcome::LostRace);
}

#[test]
fn a_lock_not_granted_in_time_is_taken_over_once() {
    let mut s = Session::new(lock_config(), 3).unwrap();
    let t0 = Timestamp::from_millis(T0);
    let token = harness::token_with_claims(r#"{"sub":"u","iat":1800000000,"exp":1800000060}"#);
    s.handle_login(
        t0,
        ReceivedToken {
            token: AccessToken::new(token),
            expires_in: Some(secs(60)),
            id_token_claims: None,
        },
    )
    .unwrap();
    while s.poll_action().is_some() {}
    let _ = s.force_refresh(t0);
    let Some(Action::StartRefresh(id)) = s.poll_action() else {
        panic!("StartRefresh");
    };
    s.handle_timeout(t0 + secs(11));
    assert!(matches!(s.poll_action(), Some(Action::StealLock(a)) if a == id));
    s.handle_timeout(t0 + secs(12));
    assert!(s.poll_action().is_none(), "asked once");
    assert_eq!(s.poll_timeout(), Some(t0 + secs(21)));
}

use token_manager_core::session::Renewal;
