//! Unit tests of The login throttle policy: backoff, caps, the exemption of known addresses.

use super::*;

const RULE: Rule = Rule {
    free: 5,
    base: 1,
    max_delay: 300,
    forget_after: 900,
};

fn policy() -> Policy {
    Policy::new(300).unwrap()
}

fn apply(counters: &mut [Option<Counter>; 4], writes: [Write; 4]) {
    for (c, w) in counters.iter_mut().zip(writes) {
        match w {
            Write::Keep => {}
            Write::Set(v) => *c = Some(v),
            Write::Delete => *c = None,
        }
    }
}

/// Attempts an attacker gets in `secs` seconds by always retrying the moment
/// `Retry-After` allows, all failing, on counters `counters`.
fn attempts_in(p: &Policy, counters: &mut [Option<Counter>; 4], secs: u64) -> u32 {
    let (mut now, mut n) = (0, 0);
    while now < secs {
        match p.admit(*counters, now) {
            Admission::Allowed(w) => {
                apply(counters, w);
                n += 1;
            }
            Admission::Wait(s) => now += s,
        }
    }
    n
}

#[test]
fn the_delay_is_free_then_doubles_then_is_capped() {
    let delays: Vec<u64> = (0..16).map(|f| RULE.delay(f)).collect();
    assert_eq!(
        delays,
        [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    );
    assert_eq!(RULE.delay(u32::MAX), 300);
}

#[test]
fn a_counter_is_forgotten_after_a_quiet_spell() {
    let c = RULE.charge(None, 1000);
    let c = Counter { failures: 9, ..c };
    assert_eq!(RULE.wait(Some(c), 1000), 16);
    assert_eq!(RULE.wait(Some(c), 1010), 6);
    assert_eq!(RULE.wait(Some(c), 1016), 0);
    assert_eq!(RULE.charge(Some(c), 1899).failures, 10);
    assert_eq!(RULE.charge(Some(c), 1900).failures, 1, "forgotten");
}

#[test]
fn one_address_guessing_one_account_gets_a_few_attempts_then_one_per_five_minutes() {
    let p = policy();
    let mut c = [None; 4];
    let first_minute = attempts_in(&p, &mut c, 60);
    assert_eq!(
        first_minute,
        5 + 5,
        "5 free, then after waits of 1, 2, 4, 8, 16 s"
    );
    let mut c = [None; 4];
    let hour = attempts_in(&p, &mut c, 3600);
    assert!(hour <= 25, "{hour} attempts in an hour");
}

#[test]
fn parallel_attempts_cannot_all_pass_one_check() {
    let p = policy();
    let mut c = [None; 4];
    let mut admitted = 0;
    // Twenty attempts at the same second: each is charged before the next is judged.
    for _ in 0..20 {
        if let Admission::Allowed(w) = p.admit(c, 0) {
            apply(&mut c, w);
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
}

#[test]
fn a_success_resets_the_pair_and_makes_the_address_known() {
    let p = policy();
    let mut c = [None; 4];
    for now in 0..4 {
        let Admission::Allowed(w) = p.admit(c, now) else {
            panic!("free attempt refused")
        };
        apply(&mut c, w);
    }
    let Admission::Allowed(w) = p.admit(c, 4) else {
        panic!("free attempt refused")
    };
    apply(&mut c, w);
    let w = p.settle(c, Outcome::Succeeded, 4);
    apply(&mut c, w);
    assert_eq!(c[0], None, "pair reset");
    assert_eq!(c[1].unwrap().failures, 4, "the success itself is refunded");
    assert!(c[3].is_some(), "address known");
}

#[test]
fn a_known_address_is_exempt_from_the_account_counter_a_new_one_waits_at_most_a_minute() {
    let p = policy();
    let now = 10_000;
    let saturated = Counter {
        failures: 1000,
        last_failure: now,
        expires_at: now + 900,
    };
    let known = Counter {
        failures: 0,
        last_failure: 0,
        expires_at: now + 1,
    };
    assert!(matches!(
        p.admit([None, Some(saturated), None, Some(known)], now),
        Admission::Allowed(_)
    ));
    assert_eq!(
        p.admit([None, Some(saturated), None, None], now),
        Admission::Wait(60)
    );
    // An expired "known" mark no longer exempts.
    assert_eq!(
        p.admit([None, Some(saturated), None, Some(known)], now + 1),
        Admission::Wait(59)
    );
}

#[test]
fn an_unchecked_attempt_is_refunded() {
    let p = policy();
    let Admission::Allowed(w) = p.admit([None; 4], 0) else {
        panic!()
    };
    let mut c = [None; 4];
    apply(&mut c, w);
    assert_eq!(c[0].unwrap().failures, 1, "charged");
    let w = p.settle(c, Outcome::NotChecked, 0);
    apply(&mut c, w);
    assert_eq!(c, [None; 4]);
}

#[test]
fn many_accounts_from_one_address_are_limited_by_the_address() {
    let p = policy();
    let mut address = None;
    let mut admitted = 0;
    for now in 0..40u64 {
        // A new account each time: pair and account counters are always fresh.
        match p.admit([None, None, address, None], now) {
            Admission::Allowed(w) => {
                if let Write::Set(c) = w[2] {
                    address = Some(c);
                }
                admitted += 1;
            }
            Admission::Wait(_) => {}
        }
    }
    assert!(
        (20..=25).contains(&admitted),
        "{admitted} in 40 s over 40 accounts"
    );
}

#[test]
fn no_throttling_when_the_max_delay_is_zero() {
    assert_eq!(Policy::new(0), None);
}

#[test]
fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_as_v4() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    assert_eq!(client_key(a), client_key(b));
    assert_eq!(client_key(a), "2001:db8:1:2::/64");
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(client_key(mapped), "192.0.2.7");
}
