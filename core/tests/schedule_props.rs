//! Property tests of the timing policy over random lifetimes, clock skews and seeds.
#![cfg(not(target_arch = "wasm32"))]

mod harness;

use std::time::Duration;

use harness::{secs, World};
use proptest::prelude::*;
use token_manager_core::schedule::{self, Config, Rng};
use token_manager_core::{timer_delay, Timestamp, MAX_TIMER_DELAY};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The refresh instant always lies inside the lead window, strictly before expiry, and
    /// after receipt; the token stays offerable at least until the refresh starts.
    #[test]
    fn refresh_at_is_inside_the_lead_window(
        lifetime_ms in 1_000u64..=120 * 86_400_000,
        received in 0u64..=4_000_000_000_000,
        seed in any::<u64>(),
    ) {
        let c = Config::default();
        let lifetime = Duration::from_millis(lifetime_ms);
        let received = Timestamp::from_millis(received);
        let expires = received + lifetime;
        let lead = schedule::refresh_lead(lifetime, &c);
        let at = schedule::refresh_at(received, lifetime, &c, &mut Rng::new(seed));
        prop_assert!(at >= received);
        prop_assert!(at < expires);
        prop_assert!(at <= expires - lead);
        prop_assert!(expires.saturating_since(at) <= lead.mul_f64(1.0 + c.refresh_jitter_fraction) + Duration::from_millis(1));
        prop_assert!(at <= expires - schedule::leeway(lifetime, &c));
    }

    /// A tab standing by (it adopted another tab's token) refreshes no earlier than the
    /// fetching tab's latest moment, within a tenth of the lead after it, before the leeway.
    #[test]
    fn a_standing_by_tab_refreshes_after_the_fetching_tab_and_before_the_leeway(
        lifetime_ms in 1_000u64..=120 * 86_400_000,
        received in 0u64..=4_000_000_000_000,
        seed in any::<u64>(),
        leader_seed in any::<u64>(),
    ) {
        let c = Config::default();
        let lifetime = Duration::from_millis(lifetime_ms);
        let received = Timestamp::from_millis(received);
        let expires = received + lifetime;
        let lead = schedule::refresh_lead(lifetime, &c);
        let leader = schedule::refresh_at(received, lifetime, &c, &mut Rng::new(leader_seed));
        let at = schedule::follower_refresh_at(received, lifetime, &c, &mut Rng::new(seed));
        prop_assert!(at >= leader);
        prop_assert!(at >= expires - lead);
        prop_assert!(at <= expires - lead + lead / 10);
        prop_assert!(at <= expires - schedule::leeway(lifetime, &c));
    }

    /// Backoff never exceeds its ceiling, and the ceiling never exceeds the cap.
    #[test]
    fn backoff_stays_under_its_ceiling(failures in 1u32..200, seed in any::<u64>()) {
        let c = Config::default();
        let wait = schedule::backoff(failures, &c, &mut Rng::new(seed));
        prop_assert!(wait <= schedule::backoff_ceiling(failures, &c));
        prop_assert!(schedule::backoff_ceiling(failures, &c) <= c.retry_cap);
    }

    #[test]
    fn timer_delays_never_reach_the_overflow(deadline in any::<u64>(), now in any::<u64>()) {
        let d = timer_delay(Timestamp::from_millis(deadline), Timestamp::from_millis(now));
        prop_assert!(d <= MAX_TIMER_DELAY);
        prop_assert!(d.as_millis() < (1 << 31) - 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whole sessions over three lifetimes, with the client and the server clocks each up to
    /// six hours off: the first refresh starts inside the lead window, every token is replaced
    /// before it expires, no expired token is ever offered and no armed delay overflows
    /// (the last two are asserted by the harness after every step).
    #[test]
    fn sessions_refresh_on_time_whatever_the_skew(
        lifetime in 5u64..=60 * 86_400,
        client_skew in -21_600_000i64..=21_600_000,
        server_skew in -21_600_000i64..=21_600_000,
        seed in any::<u64>(),
    ) {
        let c = Config::default();
        let mut w = World::new(secs(lifetime));
        w.server.skew_ms = server_skew;
        w.add_tab(c, seed, client_skew);
        w.login(0);
        let t0 = w.now;
        w.run_for(secs(3 * lifetime));
        let lead = schedule::refresh_lead(secs(lifetime), &c);
        let first = w.server.requests[0];
        let expiry = t0 + secs(lifetime);
        prop_assert!(first < expiry);
        prop_assert!(first <= expiry - lead);
        prop_assert!(first + Duration::from_millis(1) >= expiry - lead.mul_f64(1.0 + c.refresh_jitter_fraction));
        prop_assert!(w.tabs[0].session.token(w.local(0)).is_some());
    }
}
