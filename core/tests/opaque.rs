//! Opaque access tokens (issue 19): a provider behind a token-mediating backend may issue
//! access tokens that are not JWTs; the backend's answer then carries the validated ID token's
//! claims (`id_token_claims`). The session takes its expiry from `expires_in` and its claims
//! and identity from those claims, with every cross-tab rule still in force. Virtual clock only.

mod harness;

use harness::{opaque_token, secs, token_with_claims, World, T0};
use token_manager_core::schedule::Config;
use token_manager_core::session::{
    Action, Announcement, Event, ReceivedToken, RefreshError, RefreshOutcome, Renewal, TokenError,
    TokenSource,
};
use token_manager_core::{AccessToken, Session, Timestamp};

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The ID token's claims as the reference server sends them (its times are the ID token's).
const ID_CLAIMS: &str = r#"{"iss":"https://idp.example","sub":"user-1","sid":"family-1","aud":"spa","name":"Ada","iat":1800000000,"exp":1800003600}"#;

fn opaque_world(lifetime: u64, tabs: usize) -> World {
    let mut w = World::new(secs(lifetime));
    w.server.opaque = true;
    for i in 0..tabs {
        w.add_tab(Config::default(), 10 + i as u64, 0);
    }
    w
}

fn received(token: &str, expires_in: Option<u64>, id_token_claims: Option<&str>) -> ReceivedToken {
    ReceivedToken {
        token: AccessToken::new(token.to_owned()),
        expires_in: expires_in.map(secs),
        id_token_claims: id_token_claims.map(str::to_owned),
    }
}

fn login(
    token: &str,
    expires_in: Option<u64>,
    claims: Option<&str>,
) -> Result<Session, TokenError> {
    let mut s = Session::new(Config::default(), 1).unwrap();
    s.handle_login(
        Timestamp::from_millis(T0),
        received(token, expires_in, claims),
    )
    .map(|()| s)
}

fn code(r: Result<Session, TokenError>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("accepted")
}

/// Tab `tab` hears an announcement made by any script of the origin, received `age` ago.
fn announce(
    w: &mut World,
    tab: usize,
    token: &str,
    claims: Option<&str>,
    age: u64,
    lifetime: u64,
) -> Result<bool, TokenError> {
    let now = w.local(tab);
    let issuer_now = w.server.clock(w.now);
    let r = w.tabs[tab].session.handle_announcement(
        now,
        Announcement {
            token: AccessToken::new(token.to_owned()),
            received_at: Timestamp::from_millis(now.as_millis() - age * 1000),
            lifetime: secs(lifetime),
            claims: claims.map(str::to_owned),
        },
        issuer_now,
    );
    w.settle(tab);
    r
}

#[test]
fn an_opaque_token_is_accepted_with_the_id_token_claims_and_expires_after_expires_in() {
    let mut w = opaque_world(15 * MIN, 1);
    w.login(0);
    let s = &w.tabs[0].session;
    let claims = s.claims().expect("claims for the UI");
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert_eq!(claims.iss.as_deref(), Some("https://idp.example"));
    assert_eq!(claims.get_json("name"), Some(r#""Ada""#));
    // The expiry is the receipt time plus `expires_in`, not the ID token's `exp` (an hour).
    assert_eq!(s.expires_at(), Some(w.local(0) + secs(15 * MIN)));
    assert!(s.token(w.local(0)).is_some());
    // Two hours of silent refreshes, about one per lifetime, each token offered only while
    // it lives (the harness checks every step).
    w.run_for(secs(2 * HOUR));
    let n = w.server.requests.len();
    assert!((9..=11).contains(&n), "{n} refreshes in two hours");
    assert!(w.tabs[0].session.token(w.local(0)).is_some());
    assert_eq!(
        w.tabs[0].session.claims().unwrap().sub.as_deref(),
        Some("user-1")
    );
}

#[test]
fn a_token_that_is_neither_a_jwt_nor_comes_with_id_token_claims_is_still_malformed_token() {
    assert_eq!(
        code(login(&opaque_token(1), Some(900), None)),
        "malformed_token"
    );
    // In a refresh answer: a failure that keeps the token held.
    let jwt = token_with_claims(r#"{"sub":"user-1","iat":1800000000,"exp":1800000900}"#);
    let mut s = login(&jwt, Some(900), None).unwrap();
    let now = Timestamp::from_millis(T0) + secs(MIN);
    assert_eq!(s.force_refresh(now), Renewal::Pending);
    let id = std::iter::from_fn(|| s.poll_action())
        .find_map(|a| match a {
            Action::StartRefresh(id) => Some(id),
            _ => None,
        })
        .expect("a refresh started");
    let outcome = RefreshOutcome::Success(received(&opaque_token(2), Some(900), None));
    s.handle_refresh_outcome(now, id, outcome);
    let failed: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::RefreshFailed {
                error, token_valid, ..
            } => Some((error, token_valid)),
            _ => None,
        })
        .collect();
    assert!(
        matches!(failed.as_slice(), [(RefreshError::BadToken(e), true)] if e.code() == "malformed_token"),
        "{failed:?}"
    );
    assert_eq!(s.token(now).map(|t| t.expose_secret()), Some(jwt.as_str()));
}

#[test]
fn an_opaque_token_needs_expires_in_the_id_tokens_exp_is_not_its_lifetime() {
    assert_eq!(
        code(login(&opaque_token(1), None, Some(ID_CLAIMS))),
        "no_expiry"
    );
    assert_eq!(
        code(login(&opaque_token(1), Some(0), Some(ID_CLAIMS))),
        "no_expiry"
    );
}

#[test]
fn id_token_claims_get_the_caps_and_strictness_of_decoded_claims() {
    let big = format!(r#"{{"sub":"user-1","pad":"{}"}}"#, "x".repeat(16 * 1024));
    let deep = format!(
        r#"{{"sub":"user-1","n":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    for (claims, expected) in [
        (r#"{"sub":"user-1","sub":"user-2"}"#, "duplicate_claim"),
        (r#"{"sub":"user-1","exp":"1800003600"}"#, "claim_type"),
        (r#"{"sub":7}"#, "claim_type"),
        (r#"{"sub":"user-1","aud":[1]}"#, "claim_type"),
        (big.as_str(), "too_large"),
        (deep.as_str(), "too_deep"),
        (r#"["sub"]"#, "not_object"),
        (r#"{"sub":"user-1""#, "bad_json"),
        (ID_CLAIMS, "accepted"),
    ] {
        assert_eq!(
            code(login(&opaque_token(1), Some(900), Some(claims))),
            expected,
            "{}",
            &claims[..claims.len().min(60)]
        );
    }
}

#[test]
fn a_jwt_access_token_keeps_its_own_claims_and_lifetime_whatever_id_token_claims_say() {
    let jwt = token_with_claims(r#"{"sub":"user-9","iat":1800000000,"exp":1800000300}"#);
    let s = login(&jwt, Some(900), Some(ID_CLAIMS)).unwrap();
    assert_eq!(s.claims().unwrap().sub.as_deref(), Some("user-9"));
    assert_eq!(s.claims().unwrap().get("name"), None);
    // min(expires_in, exp - iat), as for every JWT.
    assert_eq!(
        s.expires_at(),
        Some(Timestamp::from_millis(T0) + secs(5 * MIN))
    );
    // Three segments that do not decode are a broken JWT, refused with its own error.
    let broken = format!("{}.!!.sig", harness::b64(r#"{"alg":"RS256"}"#));
    assert_eq!(
        code(login(&broken, Some(900), Some(ID_CLAIMS))),
        "bad_base64"
    );
    // A JWT with a wrong-typed `exp` is not rescued by the ID token's claims.
    let bad_exp = token_with_claims(r#"{"sub":"user-1","exp":"1800000300"}"#);
    assert_eq!(
        code(login(&bad_exp, Some(900), Some(ID_CLAIMS))),
        "claim_type"
    );
}

#[test]
fn tabs_share_one_refresh_of_an_opaque_token_and_its_claims_reach_the_siblings() {
    let mut w = opaque_world(15 * MIN, 3);
    w.login(0);
    for i in 1..3 {
        assert!(w.tabs[i].session.token(w.local(i)).is_some(), "tab {i}");
        assert_eq!(
            w.tabs[i].session.claims().unwrap().get_json("name"),
            Some(r#""Ada""#),
            "tab {i} shows the ID token's claims"
        );
    }
    w.run_for(secs(4 * HOUR));
    let n = w.server.requests.len();
    assert!((18..=22).contains(&n), "3 tabs made {n} refresh requests");
    // A tab opened later asks its siblings and gets the claims with the token.
    w.add_tab(Config::default(), 99, 0);
    w.restore(3);
    w.run_for(secs(1));
    assert_eq!(w.server.requests.len(), n, "no request for the new tab");
    assert!(w.events(3).contains(&Event::SignedIn {
        source: TokenSource::OtherTab
    }));
    assert_eq!(
        w.tabs[3].session.claims().unwrap().sub.as_deref(),
        Some("user-1")
    );
}

#[test]
fn a_signed_in_tab_refuses_an_announced_opaque_token_of_another_user_or_session() {
    let mut w = opaque_world(15 * MIN, 1);
    w.login(0);
    w.run_for(secs(5 * MIN));
    let before = w.tabs[0].session.token(w.local(0)).cloned().unwrap();
    let forged = opaque_token(777);
    w.server
        .real_expiry
        .insert(forged.clone(), w.now + secs(15 * MIN));
    for claims in [
        r#"{"sub":"user-2","sid":"family-1"}"#,
        r#"{"sub":"user-1","sid":"family-2"}"#,
        r#"{"sub":"user-1"}"#,
    ] {
        assert_eq!(
            announce(&mut w, 0, &forged, Some(claims), 0, 15 * MIN),
            Err(TokenError::OtherSession),
            "{claims}"
        );
    }
    // Without claims an opaque token cannot be judged: refused as it always was.
    assert_eq!(
        announce(&mut w, 0, &forged, None, 0, 15 * MIN).map_err(|e| e.code()),
        Err("malformed_token")
    );
    assert_eq!(
        w.tabs[0]
            .session
            .token(w.local(0))
            .map(|t| t.expose_secret()),
        Some(before.expose_secret())
    );
    // The session's own pair is adopted (it expires later than the held token).
    assert_eq!(
        announce(&mut w, 0, &forged, Some(ID_CLAIMS), 0, 15 * MIN),
        Ok(true)
    );
}

#[test]
fn an_announced_opaque_lifetime_is_capped_and_counts_from_the_announced_receipt() {
    for (age, announced, left) in [
        // 3,646 days announced: believed for the cap, an hour.
        (0, 3646 * DAY, HOUR),
        // Within the cap: as announced.
        (0, 10 * MIN, 10 * MIN),
        // Received 14 minutes ago for 15: one minute left.
        (14 * MIN, 15 * MIN, MIN),
    ] {
        let mut w = opaque_world(15 * MIN, 1);
        let token = opaque_token(5);
        w.server
            .real_expiry
            .insert(token.clone(), w.now + secs(left) + secs(1));
        assert_eq!(
            announce(&mut w, 0, &token, Some(ID_CLAIMS), age, announced),
            Ok(true)
        );
        let expires = w.tabs[0].session.expires_at().unwrap();
        assert_eq!(expires, w.local(0) + secs(left), "announced {announced} s");
        // No token offered past its expiry while time runs (the harness checks).
        w.run_for(secs(2 * HOUR));
    }
    // A smaller cap in the config is honoured.
    let config = Config {
        max_announced_opaque_lifetime: secs(2 * MIN),
        ..Config::default()
    };
    let mut w = World::new(secs(15 * MIN));
    w.add_tab(config, 1, 0);
    let token = opaque_token(6);
    w.server
        .real_expiry
        .insert(token.clone(), w.now + secs(3 * MIN));
    assert_eq!(
        announce(&mut w, 0, &token, Some(ID_CLAIMS), 0, 15 * MIN),
        Ok(true)
    );
    assert_eq!(
        w.tabs[0].session.expires_at(),
        Some(w.local(0) + secs(2 * MIN))
    );
}
