//! A virtual world for scenario tests: tabs with their own (possibly wrong) clocks, one shared
//! cross-tab lock and broadcast channel, and a scripted refresh endpoint, all driven by a
//! clock that jumps from one deadline to the next (after quinn-proto's test harness).
//!
//! True time is `World::now`. Tab `i` reads `now + skew`; the server stamps `iat`/`exp` with
//! its own skewed clock. After every step the world checks the two invariants that matter to
//! users: no tab offers a token past its real expiry, and no armed timer delay reaches 2^31 ms.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use token_manager_core::schedule::Config;
use token_manager_core::session::{
    Action, Announcement, Event, LogoutOrigin, LogoutReason, ReceivedToken, RefreshId,
    RefreshOutcome, TransientKind, Wake,
};
use token_manager_core::{timer_delay, AccessToken, Session, Timestamp};

pub const T0: u64 = 1_800_000_000_000;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A compact JWT with the given claims JSON and a dummy signature.
pub fn token_with_claims(claims: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#),
        b64(claims),
        b64("not-a-real-signature")
    )
}

/// An opaque access token (a provider's reference token): no dots, not a JWT.
pub fn opaque_token(n: u64) -> String {
    format!("opaque-reference-token-{n:04}-c2VjcmV0")
}

/// What the endpoint does with the next refresh request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reply {
    Ok,
    Network,
    Status(u16),
    RateLimited(Option<Duration>),
    /// Never answers (the client's timeout must fire).
    Hang,
    /// Answers 200 with a body that is not a token.
    Garbage,
    /// No DPoP proof could be made, or the server refused it (400 `invalid_dpop_proof`).
    DpopRefused,
}

pub struct Server {
    pub lifetime: Duration,
    /// Added to true time to get the server's clock (for `iat`/`exp`).
    pub skew_ms: i64,
    pub latency: Duration,
    pub script: VecDeque<Reply>,
    /// Used when the script is empty.
    pub default_reply: Reply,
    pub requests: Vec<Timestamp>,
    issued: u64,
    /// token -> true instant it expires.
    pub real_expiry: HashMap<String, Timestamp>,
    /// Issue opaque access tokens (a provider without JWT access tokens behind a
    /// token-mediating backend) with the ID token's claims beside them, as `id_token_claims`.
    pub opaque: bool,
}

impl Server {
    /// The server's (skewed) clock at true time `now`: what a driver estimates from `Date`.
    pub fn clock(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis((now.as_millis() as i64 + self.skew_ms) as u64)
    }

    /// A new token: `(token, lifetime, id_token_claims)`.
    fn issue(&mut self, now: Timestamp) -> (String, Duration, Option<String>) {
        self.issued += 1;
        let server_now = (now.as_millis() as i64 + self.skew_ms) as u64 / 1000;
        let (token, id_token_claims) = if self.opaque {
            // The ID token's own times are not the access token's: an hour, issued at login.
            let claims = format!(
                r#"{{"iss":"https://idp.example","sub":"user-1","sid":"family-1","aud":"spa","name":"Ada","iat":{},"exp":{}}}"#,
                T0 / 1000,
                T0 / 1000 + 3600
            );
            (opaque_token(self.issued), Some(claims))
        } else {
            let token = token_with_claims(&format!(
                r#"{{"sub":"user-1","sid":"family-1","name":"Ada","iat":{},"exp":{},"jti":"t{}"}}"#,
                server_now,
                server_now + self.lifetime.as_secs(),
                self.issued
            ));
            (token, None)
        };
        self.real_expiry.insert(token.clone(), now + self.lifetime);
        (token, self.lifetime, id_token_claims)
    }
}

pub struct Tab {
    pub session: Session,
    pub skew_ms: i64,
    /// (true due time, id, outcome)
    pending: Vec<(Timestamp, RefreshId, Reply)>,
    /// Waiting for the cross-tab lock.
    queued: Option<RefreshId>,
    /// Holding the lock after a contended grant, waiting for the previous holder's
    /// announcement (`Session::handoff_pending`).
    handoff: Option<RefreshId>,
    pub events: Vec<(Timestamp, Event)>,
    pub started: Vec<Timestamp>,
    pub closed: bool,
}

pub struct World {
    pub now: Timestamp,
    pub tabs: Vec<Tab>,
    pub server: Server,
    lock: Option<(usize, RefreshId)>,
    pub max_armed_delay: Duration,
    pub cross_tab: bool,
    /// Something outside the sessions holds the lock and never gives it back (a frozen tab).
    pub lock_frozen: bool,
    /// The next tab's lock grant reaches it before the winner's announcement does (they
    /// travel by different paths in a browser; by default the announcement comes first).
    pub grant_before_announcement: bool,
    /// Logout requests the sessions asked for on their own (idle timeout): (true time, tab).
    pub revocations: Vec<(Timestamp, usize)>,
    /// Activity messages on the channel: (true time, from tab).
    pub activity_messages: Vec<(Timestamp, usize)>,
}

impl World {
    pub fn new(lifetime: Duration) -> Self {
        World {
            now: Timestamp::from_millis(T0),
            tabs: Vec::new(),
            server: Server {
                lifetime,
                skew_ms: 0,
                latency: Duration::from_millis(80),
                script: VecDeque::new(),
                default_reply: Reply::Ok,
                requests: Vec::new(),
                issued: 0,
                real_expiry: HashMap::new(),
                opaque: false,
            },
            lock: None,
            max_armed_delay: Duration::ZERO,
            cross_tab: true,
            lock_frozen: false,
            grant_before_announcement: false,
            revocations: Vec::new(),
            activity_messages: Vec::new(),
        }
    }

    pub fn add_tab(&mut self, config: Config, seed: u64, skew_ms: i64) -> usize {
        self.tabs.push(Tab {
            session: Session::new(config, seed).expect("valid config"),
            skew_ms,
            pending: Vec::new(),
            queued: None,
            handoff: None,
            events: Vec::new(),
            started: Vec::new(),
            closed: false,
        });
        self.tabs.len() - 1
    }

    pub fn local(&self, tab: usize) -> Timestamp {
        Timestamp::from_millis((self.now.as_millis() as i64 + self.tabs[tab].skew_ms) as u64)
    }

    fn true_time(&self, tab: usize, local: Timestamp) -> Timestamp {
        Timestamp::from_millis((local.as_millis() as i64 - self.tabs[tab].skew_ms) as u64)
    }

    /// Tab `tab` logs in (the login endpoint always works).
    pub fn login(&mut self, tab: usize) {
        let (token, lifetime, id_token_claims) = self.server.issue(self.now);
        let now = self.local(tab);
        self.tabs[tab]
            .session
            .handle_login(
                now,
                ReceivedToken {
                    token: AccessToken::new(token),
                    expires_in: Some(lifetime),
                    id_token_claims,
                },
            )
            .expect("server tokens decode");
        self.settle(tab);
    }

    pub fn restore(&mut self, tab: usize) {
        let now = self.local(tab);
        self.tabs[tab].session.handle_restore(now);
        self.settle(tab);
    }

    pub fn logout(&mut self, tab: usize) {
        let now = self.local(tab);
        self.tabs[tab]
            .session
            .handle_logout(now, LogoutOrigin::Local, LogoutReason::User);
        self.settle(tab);
    }

    /// The user does something in tab `tab` (a key, a click).
    pub fn activity(&mut self, tab: usize) {
        let now = self.local(tab);
        self.tabs[tab].session.handle_activity(now);
        self.settle(tab);
    }

    pub fn wake(&mut self, tab: usize, wake: Wake) {
        let now = self.local(tab);
        self.tabs[tab].session.handle_wake(now, wake);
        self.settle(tab);
    }

    /// Calls `handle_timeout` at the current instant, whatever the armed deadline says.
    pub fn spurious_timeout(&mut self, tab: usize) {
        let now = self.local(tab);
        self.tabs[tab].session.handle_timeout(now);
        self.settle(tab);
    }

    /// Moves true time forward by `d` without waking any tab (a suspended laptop).
    pub fn sleep(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Runs until true time `until`, firing timers and delivering responses in order.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            let mut next: Option<(Timestamp, usize, Option<RefreshId>)> = None;
            for (i, tab) in self.tabs.iter().enumerate() {
                if tab.closed {
                    continue;
                }
                if let Some(deadline) = tab.session.poll_timeout() {
                    let at = self.true_time(i, deadline).max(self.now);
                    if next.is_none_or(|(t, _, _)| at < t) {
                        next = Some((at, i, None));
                    }
                }
                for (at, id, _) in &tab.pending {
                    if next.is_none_or(|(t, _, _)| *at < t) {
                        next = Some((*at, i, Some(*id)));
                    }
                }
            }
            let Some((at, tab, id)) = next.filter(|(t, _, _)| *t <= until) else {
                break;
            };
            self.now = at;
            match id {
                None => {
                    let now = self.local(tab);
                    self.tabs[tab].session.handle_timeout(now);
                }
                Some(id) => self.deliver(tab, id),
            }
            self.settle(tab);
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn deliver(&mut self, tab: usize, id: RefreshId) {
        let pos = self.tabs[tab]
            .pending
            .iter()
            .position(|(_, i, _)| *i == id)
            .expect("pending");
        let (_, _, reply) = self.tabs[tab].pending.remove(pos);
        let outcome = match reply {
            Reply::Ok => {
                let (token, lifetime, id_token_claims) = self.server.issue(self.now);
                RefreshOutcome::Success(ReceivedToken {
                    token: AccessToken::new(token),
                    expires_in: Some(lifetime),
                    id_token_claims,
                })
            }
            Reply::Network => RefreshOutcome::Transient(TransientKind::Network),
            Reply::DpopRefused => RefreshOutcome::Transient(TransientKind::DpopProof),
            Reply::Status(s) => token_manager_core::session::classify_refresh_status(s, None),
            Reply::RateLimited(ra) => RefreshOutcome::RateLimited { retry_after: ra },
            Reply::Garbage => RefreshOutcome::Success(ReceivedToken {
                token: AccessToken::new("not a token".into()),
                expires_in: Some(self.server.lifetime),
                id_token_claims: None,
            }),
            Reply::Hang => unreachable!("hanging requests are never delivered"),
        };
        let now = self.local(tab);
        self.tabs[tab]
            .session
            .handle_refresh_outcome(now, id, outcome);
        // As in the browser: the winner announces its token before it releases the lock; the
        // next tab may still hear of the grant first.
        if self.grant_before_announcement {
            self.release_lock(tab, id);
            self.settle(tab);
        } else {
            self.settle(tab);
            self.release_lock(tab, id);
        }
    }

    fn release_lock(&mut self, tab: usize, id: RefreshId) {
        if self.lock == Some((tab, id)) {
            self.lock = None;
            let waiting: Vec<usize> = (0..self.tabs.len())
                .filter(|i| self.tabs[*i].queued.is_some())
                .collect();
            if let Some(&next) = waiting.first() {
                let id = self.tabs[next].queued.take().unwrap();
                self.acquire(next, id, true);
                self.settle(next);
            }
        }
    }

    fn acquire(&mut self, tab: usize, id: RefreshId, contended: bool) {
        let now = self.local(tab);
        self.tabs[tab]
            .session
            .handle_lock_granted(now, id, contended);
        self.lock = Some((tab, id));
        if self.tabs[tab].session.handoff_pending(id) {
            self.tabs[tab].handoff = Some(id);
            return;
        }
        self.call_endpoint(tab, id);
    }

    /// Continues the attempts whose hand-off wait has ended (announcement, deadline, abort).
    fn end_handoffs(&mut self) {
        for tab in 0..self.tabs.len() {
            if let Some(id) = self.tabs[tab].handoff {
                if !self.tabs[tab].session.handoff_pending(id) {
                    self.tabs[tab].handoff = None;
                    self.call_endpoint(tab, id);
                    self.settle(tab);
                }
            }
        }
    }

    /// Holding the lock: calls the endpoint unless another tab's token made it moot.
    fn call_endpoint(&mut self, tab: usize, id: RefreshId) {
        let now = self.local(tab);
        if !self.tabs[tab].session.refresh_still_needed(now, id) {
            self.tabs[tab]
                .session
                .handle_refresh_outcome(now, id, RefreshOutcome::LostRace);
            self.release_lock(tab, id);
            return;
        }
        self.server.requests.push(self.now);
        self.tabs[tab].started.push(self.now);
        let reply = self
            .server
            .script
            .pop_front()
            .unwrap_or(self.server.default_reply);
        if reply != Reply::Hang {
            let at = self.now + self.server.latency;
            self.tabs[tab].pending.push((at, id, reply));
        }
    }

    /// Drains a tab's actions and events, carrying out the actions, then re-checks invariants.
    pub fn settle(&mut self, tab: usize) {
        let mut work = vec![tab];
        while let Some(t) = work.pop() {
            while let Some(action) = self.tabs[t].session.poll_action() {
                match action {
                    Action::StartRefresh(id) => {
                        if self.cross_tab && (self.lock.is_some() || self.lock_frozen) {
                            self.tabs[t].queued = Some(id);
                        } else {
                            self.acquire(t, id, false);
                        }
                    }
                    Action::AbortRefresh(id) => {
                        self.tabs[t].pending.retain(|(_, i, _)| *i != id);
                        if self.tabs[t].queued == Some(id) {
                            self.tabs[t].queued = None;
                        }
                        self.release_lock(t, id);
                    }
                    Action::AskSiblings => {
                        for other in self.others(t) {
                            let now = self.local(other);
                            if let Some(a) = self.tabs[other].session.announcement(now) {
                                self.announce_to(other, t, a);
                            }
                        }
                    }
                    Action::Announce(a) => {
                        for other in self.others(t) {
                            self.announce_to(t, other, a.clone());
                            work.push(other);
                        }
                    }
                    Action::AnnounceLogout(reason) => {
                        for other in self.others(t) {
                            let now = self.local(other);
                            self.tabs[other].session.handle_logout(
                                now,
                                LogoutOrigin::OtherTab,
                                reason,
                            );
                            work.push(other);
                        }
                    }
                    Action::StealLock(id) => {
                        // Web Locks `steal`: granted at once, whoever held it.
                        if self.tabs[t].queued == Some(id) {
                            self.tabs[t].queued = None;
                            self.lock_frozen = false;
                            self.lock = None;
                            self.acquire(t, id, false);
                        }
                    }
                    Action::AnnounceActivity(at) => {
                        self.activity_messages.push((self.now, t));
                        for other in self.others(t) {
                            let now = self.local(other);
                            self.tabs[other].session.handle_sibling_activity(now, at);
                            work.push(other);
                        }
                    }
                    Action::RevokeSession(_) => self.revocations.push((self.now, t)),
                }
            }
            while let Some(e) = self.tabs[t].session.poll_event() {
                self.tabs[t].events.push((self.now, e));
            }
        }
        self.check_invariants();
        if self.tabs.iter().any(|t| t.handoff.is_some()) {
            self.end_handoffs();
        }
    }

    fn others(&self, tab: usize) -> Vec<usize> {
        if !self.cross_tab {
            return Vec::new();
        }
        (0..self.tabs.len())
            .filter(|i| *i != tab && !self.tabs[*i].closed)
            .collect()
    }

    /// Tab `from` announces `a` to tab `tab`.
    fn announce_to(&mut self, from: usize, tab: usize, a: Announcement) {
        // Tabs of one browser share a clock; translate between their (test) skews.
        let shift = self.tabs[tab].skew_ms - self.tabs[from].skew_ms;
        let a = Announcement {
            received_at: Timestamp::from_millis((a.received_at.as_millis() as i64 + shift) as u64),
            ..a
        };
        let now = self.local(tab);
        let issuer_now = self.server.clock(self.now);
        let _ = self.tabs[tab]
            .session
            .handle_announcement(now, a, issuer_now);
        while let Some(e) = self.tabs[tab].session.poll_event() {
            self.tabs[tab].events.push((self.now, e));
        }
    }

    pub fn check_invariants(&mut self) {
        for i in 0..self.tabs.len() {
            let local = self.local(i);
            let tab = &self.tabs[i];
            if let Some(token) = tab.session.token(local) {
                let real = self.server.real_expiry[token.expose_secret()];
                assert!(
                    real > self.now,
                    "tab {i} offered a token {}ms after it expired",
                    self.now.as_millis() - real.as_millis()
                );
            }
            if let Some(deadline) = tab.session.poll_timeout() {
                let delay = timer_delay(deadline, local);
                assert!(delay.as_millis() < (1 << 31) - 1, "armed delay {delay:?}");
                self.max_armed_delay = self.max_armed_delay.max(delay);
            }
        }
    }

    /// Events of a tab, without the times.
    pub fn events(&self, tab: usize) -> Vec<Event> {
        self.tabs[tab]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn count_events(&self, tab: usize, pred: impl Fn(&Event) -> bool) -> usize {
        self.tabs[tab]
            .events
            .iter()
            .filter(|(_, e)| pred(e))
            .count()
    }
}
