//! Unit tests of the SQLite store that need its internals.

use super::*;
use crate::config::SigningAlgorithm;
use crate::keys::SigningKey;
use crate::refresh::SessionRules;
use crate::store::GrantRequest;

const RULES: SessionRules = SessionRules {
    refresh_ttl: 600,
    grace: 10,
    grace_replays: 10,
    max_age: 3600,
};

fn store_with_session(now: u64) -> (SqliteStore, String) {
    let store = SqliteStore::open(":memory:").unwrap();
    store.upsert_user("u", "$argon2id$x", "U", &[]).unwrap();
    let key = SigningKey::generate(SigningAlgorithm::Es256, now).unwrap();
    store.install_key(&key, now).unwrap();
    let user = store.find_user("u").unwrap().unwrap();
    let pin = |_: &str, _: u64| true;
    let step = Step {
        now,
        rules: &RULES,
        grant: GrantRequest {
            exp: now + 900,
            pin: &pin,
        },
        dpop: false,
    };
    let (issued, _) = store.login(user, &[], &step).unwrap();
    (store, issued.family_id)
}

#[test]
fn the_denylist_alone_refuses_a_jti_of_a_live_session() {
    let (store, sid) = store_with_session(1000);
    // A verified token whose session is already gone: only its jti can be denied.
    let family = store
        .logout(None, Some(("jti-1", 1900, "no-such-session")), 1000)
        .unwrap();
    assert_eq!(family, None);
    assert_eq!(
        store.access_state("jti-1", &sid).unwrap(),
        AccessState::Denylisted
    );
    assert_eq!(
        store.access_state("jti-2", &sid).unwrap(),
        AccessState::Allowed
    );
}

#[test]
fn a_grant_is_refused_when_the_chosen_key_is_not_loaded() {
    let (store, _) = store_with_session(1000);
    let user = store.find_user("u").unwrap().unwrap();
    let pin = |_: &str, _: u64| false;
    let step = Step {
        now: 1000,
        rules: &RULES,
        grant: GrantRequest {
            exp: 1900,
            pin: &pin,
        },
        dpop: false,
    };
    let before = store.row_counts().unwrap();
    assert!(matches!(
        store.login(user, &[], &step),
        Err(StoreError::Inconsistent(_))
    ));
    assert_eq!(store.row_counts().unwrap(), before, "rolled back");
}
