//! The session state machine: `SignedOut → SignedIn → Refreshing → SignedIn | Expired | SignedOut`.
//!
//! A [`Session`] is fed what happened (a token arrived, a refresh ended, a timer fired, the page
//! woke up, another tab spoke, the cross-tab lock was granted, the user did something) and
//! answers with what to do next ([`Session::poll_action`]), what the application should hear ([`Session::poll_event`]) and when to call it again
//! ([`Session::poll_timeout`]). It holds the access token and is the only thing that decides
//! whether it may still be used.
//!
//! Invariants the tests hold it to: a token is never offered after `expires_at - leeway`; a token
//! that is still valid is never dropped because a refresh failed transiently; at most one refresh
//! is in flight; refresh starts are limited by the budget; a late, early or duplicate timeout
//! changes nothing beyond what the current time already implies.
//!
//! With `idle_timeout`, the session also ends after that long without
//! [`Session::handle_activity`] in any tab (warning first); with `lock_timeout`, a refresh that
//! waited that long for the cross-tab lock asks for it to be taken over.

use crate::message::{display_as_message, push_decimal, Message};
use std::time::Duration;

use crate::claims::Claims;
use crate::code::ErrorCode;
use crate::dangerous::{claims_from_json_unverified, decode_unverified_with, DecodeLimits};
use crate::error::DecodeError;
use crate::schedule::{self, Budget, Config, ConfigError, Rng};
use crate::secret::AccessToken;
use crate::time::{Timestamp, MAX_TIMER_DELAY};
use crate::verify::VerifyError;

/// Where the session stands, as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// No session: never signed in, signed out, or a restore found none.
    SignedOut,
    /// A usable access token is held.
    SignedIn,
    /// A refresh request is in flight (the previous token, if still valid, remains usable).
    Refreshing,
    /// The session had a token and lost it: the refresh was rejected (sign in again), or the
    /// token ran out while refreshes were failing (retries continue).
    Expired,
}

impl SessionState {
    /// The name used in the JavaScript API: `signedOut`, `signedIn`, `refreshing`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::SignedOut => "signedOut",
            SessionState::SignedIn => "signedIn",
            SessionState::Refreshing => "refreshing",
            SessionState::Expired => "expired",
        }
    }
}

/// Identifies one refresh attempt; outcomes of an attempt that is no longer current are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RefreshId(u64);

impl RefreshId {
    /// A number for logs and cross-checks.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A token just received from the login or refresh endpoint.
#[derive(Debug)]
pub struct ReceivedToken {
    /// The access token.
    pub token: AccessToken,
    /// `expires_in` from the response, if the server sent it.
    pub expires_in: Option<Duration>,
    /// The response's `id_token_claims` as JSON text, if it has them: the claims of the ID
    /// token a token-mediating backend validated. Used only when the access token is not a JWT
    /// (opaque): its claims for the UI and its identity (`sub`, `sid`) then come from here, and
    /// its lifetime from `expires_in` alone, which it then needs. A JWT's claims are its own.
    pub id_token_claims: Option<String>,
}

/// Why a refresh that reached no verdict failed; all of these are retried with backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransientKind {
    /// The request did not complete: offline, DNS, connection reset, CORS failure.
    Network,
    /// A 5xx answer (or 408).
    Server(u16),
    /// No answer within `request_timeout` (the core aborted it).
    Timeout,
    /// A 200 whose body is not a usable token response.
    InvalidResponse,
    /// No DPoP proof could be made (no WebCrypto, signing failed), or the server refused the
    /// proof (400 `invalid_dpop_proof`): the refresh cookie was not judged, so the session is
    /// not over.
    DpopProof,
}

/// How a refresh request ended, classified by the driver (see [`classify_refresh_status`]).
#[derive(Debug)]
pub enum RefreshOutcome {
    /// A new token.
    Success(ReceivedToken),
    /// A failure that may pass: retried with exponential backoff.
    Transient(TransientKind),
    /// 429 (or 503 with `Retry-After`): the wait the server asked for, if any, is honoured
    /// up to `retry_after_cap`.
    RateLimited {
        /// The server's `Retry-After`, already turned into a delay.
        retry_after: Option<Duration>,
    },
    /// 400 `invalid_grant`, 401 (or any status that is not retried): the refresh cookie is
    /// gone for good.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// 403: the server refused the request itself — this page's origin or site, or its CSRF
    /// header — not the session. A deployment misconfiguration, reported as such; the session
    /// ends as for a rejection, since repeating the request cannot succeed.
    Forbidden,
    /// No request was made: by the time this tab held the cross-tab lock, another tab had
    /// refreshed and its token was adopted.
    LostRace,
    /// A 200 whose token the driver refused (signature verification failed): retried with
    /// backoff, and the current token is kept while it is valid.
    Refused(TokenError),
}

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The login endpoint.
    Login,
    /// A refresh made on page load, before any token was held.
    Restore,
    /// A refresh of a running session.
    Refresh,
    /// Another tab, through the cross-tab channel.
    OtherTab,
}

impl TokenSource {
    /// `login`, `restore`, `refresh`, `otherTab`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Login => "login",
            TokenSource::Restore => "restore",
            TokenSource::Refresh => "refresh",
            TokenSource::OtherTab => "otherTab",
        }
    }
}

/// Who ended the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutOrigin {
    /// This tab.
    Local,
    /// Another tab announced its logout.
    OtherTab,
}

/// Why the session ended by logout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutReason {
    /// The application called logout (in this tab or another).
    User,
    /// No user activity in any tab for `idle_timeout`.
    Idle,
}

impl LogoutReason {
    /// `user` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::User => "user",
            LogoutReason::Idle => "idle",
        }
    }
}

/// Why a held token went away without a logout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryReason {
    /// The server refused the refresh: the user must sign in again.
    Rejected,
    /// The token ran out before a refresh succeeded; retries continue.
    LifetimeElapsed,
}

impl ExpiryReason {
    /// `rejected` or `lifetime`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::Rejected => "rejected",
            ExpiryReason::LifetimeElapsed => "lifetime",
        }
    }
}

/// A page lifecycle signal that may mean timers were throttled or the machine slept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// `visibilitychange` to visible.
    Visible,
    /// `online`: a retry waiting on backoff runs at once (a `Retry-After` still holds).
    Online,
    /// `pageshow` (including back/forward cache restores).
    PageShow,
    /// `focus`.
    Focus,
}

/// A token shared between tabs.
#[derive(Clone, Debug)]
pub struct Announcement {
    /// The token.
    pub token: AccessToken,
    /// When the announcing tab received it (its clock; tabs of one browser share the clock).
    pub received_at: Timestamp,
    /// Its lifetime from `received_at`.
    pub lifetime: Duration,
    /// For an opaque token, its claims as JSON text (the ID token's, see
    /// [`ReceivedToken::id_token_claims`]): the receiving tab cannot read them off the token.
    /// `None` for a JWT, whose claims are its own (anything here is then ignored).
    pub claims: Option<String>,
}

/// Something the driver must do.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Call the refresh endpoint (under the cross-tab lock), then report
    /// [`Session::handle_refresh_outcome`] with this id. Once the lock is granted, report
    /// [`Session::handle_lock_granted`], wait while [`Session::handoff_pending`], then check
    /// [`Session::refresh_still_needed`]: another tab may have refreshed meanwhile.
    StartRefresh(RefreshId),
    /// The lock has not been granted within `lock_timeout`: its holder has stopped. Stop
    /// waiting and take it over (Web Locks `steal: true`), then go on as when it is granted.
    StealLock(RefreshId),
    /// Abort the request of this attempt: it timed out, or a login or logout superseded it.
    AbortRefresh(RefreshId),
    /// Ask the other tabs for their token (a restore is waiting `sibling_wait` for an answer).
    AskSiblings,
    /// Share this new token with the other tabs.
    Announce(Announcement),
    /// Tell the other tabs this tab signed out, and why.
    AnnounceLogout(LogoutReason),
    /// Tell the other tabs the user was active at this instant (caller's clock); throttled
    /// by the session to one per `activity_share_interval`.
    AnnounceActivity(Timestamp),
    /// The session ended without the application asking (idle timeout): call the logout
    /// endpoint so the server revokes the refresh cookie and denies this token, if any.
    RevokeSession(Option<AccessToken>),
}

/// Why a refresh did not produce a token, with a stable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshError {
    /// See [`TransientKind`].
    Transient(TransientKind),
    /// The server asked to slow down.
    RateLimited,
    /// The server refused the refresh cookie.
    Rejected(u16),
    /// The server refused the request (403): origin, site or CSRF header, not the session.
    Forbidden,
    /// The refresh budget is spent; the next refresh waits for the window to move.
    BudgetExhausted,
    /// A 200 whose token could not be used.
    BadToken(TokenError),
}

impl RefreshError {
    /// `network_error`, `server_error`, `timeout`, `invalid_response`, `rate_limited`,
    /// `invalid_grant`, `forbidden`, `refresh_budget_exhausted`, or the token's own error code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            RefreshError::Transient(TransientKind::Network) => ErrorCode::NetworkError,
            RefreshError::Transient(TransientKind::Server(_)) => ErrorCode::ServerError,
            RefreshError::Transient(TransientKind::Timeout) => ErrorCode::Timeout,
            RefreshError::Transient(TransientKind::InvalidResponse) => ErrorCode::InvalidResponse,
            RefreshError::Transient(TransientKind::DpopProof) => ErrorCode::DpopFailed,
            RefreshError::RateLimited => ErrorCode::RateLimited,
            RefreshError::Rejected(_) => ErrorCode::InvalidGrant,
            RefreshError::Forbidden => ErrorCode::Forbidden,
            RefreshError::BudgetExhausted => ErrorCode::RefreshBudgetExhausted,
            RefreshError::BadToken(e) => e.error_code(),
        }
    }

    /// The code's string, e.g. `"network_error"`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

impl Message for RefreshError {
    fn write_message(&self, out: &mut String) {
        match self {
            RefreshError::Transient(TransientKind::Network) => {
                out.push_str("the refresh request failed to reach the server")
            }
            RefreshError::Transient(TransientKind::Server(s)) => {
                out.push_str("the refresh endpoint answered ");
                push_decimal(out, u64::from(*s));
            }
            RefreshError::Transient(TransientKind::Timeout) => {
                out.push_str("the refresh request timed out")
            }
            RefreshError::Transient(TransientKind::InvalidResponse) => {
                out.push_str("the refresh endpoint answered with an unusable body")
            }
            RefreshError::Transient(TransientKind::DpopProof) => {
                out.push_str("no DPoP proof the refresh endpoint accepts could be made")
            }
            RefreshError::RateLimited => out.push_str("the refresh endpoint asked to slow down"),
            RefreshError::Rejected(s) => {
                out.push_str("the refresh endpoint refused the session (");
                push_decimal(out, u64::from(*s));
                out.push(')');
            }
            RefreshError::Forbidden => out.push_str(
                "the refresh endpoint refused the request (403): the server does not accept this \
                 page's origin or its CSRF header; check the server's allowed origins",
            ),
            RefreshError::BudgetExhausted => {
                out.push_str("too many refreshes in a short time; the next one is delayed")
            }
            RefreshError::BadToken(e) => {
                out.push_str("the new token is unusable: ");
                e.write_message(out);
            }
        }
    }
}

display_as_message!(RefreshError);

impl std::error::Error for RefreshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RefreshError::BadToken(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a received token cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// It does not decode.
    Decode(DecodeError),
    /// Neither `expires_in` nor `exp`/`iat` give it a positive lifetime.
    NoLifetime,
    /// Signature verification (when enabled) refused it.
    Unverified(VerifyError),
    /// Another tab announced a token of another user or session (`sub` or `sid` differs from
    /// this tab's session): a signed-in tab never switches accounts through the channel.
    OtherSession,
}

impl TokenError {
    /// The decode or verification error's code, `no_expiry` or `other_session`.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TokenError::Decode(e) => e.error_code(),
            TokenError::NoLifetime => ErrorCode::NoExpiry,
            TokenError::Unverified(e) => e.error_code(),
            TokenError::OtherSession => ErrorCode::OtherSession,
        }
    }

    /// The code's string, e.g. `"no_expiry"`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

/// A token that verification refused. A token that does not even decode is
/// [`TokenError::Decode`] whether the verifier or the session found it: one decode failure, one
/// representation.
impl From<VerifyError> for TokenError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Decode(e) => TokenError::Decode(e),
            e => TokenError::Unverified(e),
        }
    }
}

impl Message for TokenError {
    fn write_message(&self, out: &mut String) {
        match self {
            TokenError::Decode(e) => e.write_message(out),
            TokenError::Unverified(e) => e.write_message(out),
            TokenError::NoLifetime => out.push_str(
                "the token has no lifetime: neither `expires_in` nor `exp` and `iat` are usable",
            ),
            TokenError::OtherSession => {
                out.push_str("another tab announced a token of another user or session")
            }
        }
    }
}

display_as_message!(TokenError);

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenError::Decode(e) => Some(e),
            TokenError::Unverified(e) => Some(e),
            TokenError::NoLifetime | TokenError::OtherSession => None,
        }
    }
}

/// Something the application should hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// Before.
        from: SessionState,
        /// After.
        to: SessionState,
    },
    /// A session started in this tab: login, restore, or adoption of another tab's session.
    SignedIn {
        /// Where the token came from.
        source: TokenSource,
    },
    /// The running session has a new token.
    Refreshed {
        /// Where the token came from.
        source: TokenSource,
    },
    /// The session ended by logout.
    SignedOut {
        /// Which tab signed out.
        origin: LogoutOrigin,
        /// Why.
        reason: LogoutReason,
    },
    /// No user activity for `idle_timeout - idle_warning`: the session ends at `logout_at`
    /// unless the user is active in some tab before.
    IdleWarning {
        /// When the idle logout happens, on the caller's clock.
        logout_at: Timestamp,
    },
    /// Activity (in this tab or another) after an [`Event::IdleWarning`]: the idle logout is
    /// cancelled.
    Active,
    /// The held token went away without a logout.
    Expired {
        /// Why.
        reason: ExpiryReason,
        /// Whether refreshes continue (they do unless the server refused the session).
        retrying: bool,
    },
    /// A refresh failed; unless `error` is `Rejected`, another attempt is scheduled.
    RefreshFailed {
        /// What went wrong.
        error: RefreshError,
        /// When the next attempt starts, from now.
        retry_in: Option<Duration>,
        /// Whether the current token is still usable.
        token_valid: bool,
    },
}

/// What [`Session::renew_on_read`] and [`Session::force_refresh`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Renewal {
    /// The held token is outside the refresh window: use it.
    Fresh,
    /// A refresh (or a restore waiting on sibling tabs) is in progress: wait for it to settle.
    Pending,
    /// No refresh can run now (signed out, backing off, rate limited or over budget):
    /// use the token if [`Session::token`] still returns one.
    Unavailable,
}

/// The account and session a token belongs to.
#[derive(Clone, Debug, PartialEq)]
struct Identity {
    sub: Option<String>,
    /// `sid` as the token's JSON text, so a value of any type compares exactly as written (and
    /// no JSON value needs building, cloning or deep comparison code in the package).
    sid: Option<String>,
}

impl Identity {
    fn of(claims: &Claims) -> Self {
        Self {
            sub: claims.sub.clone(),
            sid: claims.get_json("sid").map(str::to_owned),
        }
    }
}

#[derive(Debug)]
struct Held {
    token: AccessToken,
    claims: Claims,
    /// Not a JWT: `claims` are the ID token's, announced with the token.
    opaque: bool,
    received_at: Timestamp,
    lifetime: Duration,
    expires_at: Timestamp,
    usable_until: Timestamp,
    refresh_at: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: RefreshId,
    deadline: Timestamp,
    /// For a forced refresh (the API refused the token): the expiry of the refused token. The
    /// attempt is moot once a token expiring later is held, however fresh the refused one looked.
    refused: Option<Timestamp>,
    /// Until the cross-tab lock is granted: when to take it over (`lock_timeout`).
    lock_until: Option<Timestamp>,
    /// After a contended grant: until when to wait for the previous holder's announcement
    /// before calling the endpoint (`lock_handoff_wait`).
    handoff_until: Option<Timestamp>,
}

/// The session of one tab. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    config: Config,
    limits: DecodeLimits,
    rng: Rng,
    /// Added to the caller's clock so internal time never runs backwards (see `observe`).
    clock_offset: u64,
    /// Latest internal time seen.
    now: Timestamp,
    held: Option<Held>,
    /// A session is believed to exist (login, restore or adoption; until logout or rejection).
    active: bool,
    /// Who the session belongs to (`sub`, `sid` of the last token installed), kept while
    /// `active` even after the token itself ran out: announcements of anyone else are refused.
    identity: Option<Identity>,
    expired: Option<ExpiryReason>,
    /// The pending or running refresh is a page-load restore.
    restoring: bool,
    siblings_until: Option<Timestamp>,
    in_flight: Option<InFlight>,
    next_refresh: Option<Timestamp>,
    /// A `Retry-After` the next attempt may not precede.
    not_before: Option<Timestamp>,
    failures: u32,
    budget: Budget,
    budget_reported: bool,
    next_id: u64,
    reported: SessionState,
    /// The latest user activity known, in this tab or another (idle timeout).
    last_activity: Timestamp,
    idle_warned: bool,
    /// When local activity was last shared with the other tabs.
    activity_shared: Option<Timestamp>,
    /// Local activity since then that the other tabs have not heard of.
    activity_unshared: bool,
    /// What the driver is to do, oldest first: `Vec`s (a `VecDeque`'s ring code is about
    /// 800 bytes of wasm; the queues hold a few items and the browser takes them all at once).
    actions: Vec<Action>,
    events: Vec<Event>,
}

impl Session {
    /// A signed-out session. `seed` drives the jitter; give every tab a different one.
    pub fn new(config: Config, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            limits: DecodeLimits::default(),
            rng: Rng::new(seed),
            clock_offset: 0,
            now: Timestamp::default(),
            held: None,
            active: false,
            identity: None,
            expired: None,
            restoring: false,
            siblings_until: None,
            in_flight: None,
            next_refresh: None,
            not_before: None,
            failures: 0,
            budget: Budget::default(),
            budget_reported: false,
            next_id: 0,
            reported: SessionState::SignedOut,
            last_activity: Timestamp::default(),
            idle_warned: false,
            activity_shared: None,
            activity_unshared: false,
            actions: Vec::new(),
            events: Vec::new(),
        })
    }

    /// Replaces the decoding limits (16 KiB and depth 32 by default).
    pub fn set_decode_limits(&mut self, limits: DecodeLimits) {
        self.limits = limits;
    }

    /// The timing policy in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- inputs -------------------------------------------------------------------------

    /// A login succeeded. Starts a new session, superseding any refresh in flight. On error the
    /// session is unchanged.
    pub fn handle_login(&mut self, now: Timestamp, token: ReceivedToken) -> Result<(), TokenError> {
        self.observe(now);
        let result = self.accept(token, TokenSource::Login);
        if result.is_ok() {
            if let Some(f) = self.in_flight.take() {
                self.actions.push(Action::AbortRefresh(f.id));
            }
        }
        self.drive();
        result
    }

    /// The page loaded: find out whether a session exists, from a sibling tab if one answers
    /// within `sibling_wait`, else through the refresh cookie. Does nothing when a token is
    /// held or a restore or refresh is already under way.
    pub fn handle_restore(&mut self, now: Timestamp) {
        self.observe(now);
        let busy = self.in_flight.is_some() || self.siblings_until.is_some();
        if !busy && self.usable().is_none() {
            self.restoring = !self.active;
            match self.config.sibling_wait {
                Some(wait) if self.restoring => {
                    self.siblings_until = Some(self.now + wait);
                    self.actions.push(Action::AskSiblings);
                }
                _ => self.next_refresh = Some(self.now),
            }
        }
        self.drive();
    }

    /// A refresh attempt ended. Outcomes of attempts that are no longer current (aborted,
    /// superseded) are ignored.
    pub fn handle_refresh_outcome(
        &mut self,
        now: Timestamp,
        id: RefreshId,
        outcome: RefreshOutcome,
    ) {
        self.observe(now);
        if self.in_flight.map(|f| f.id) != Some(id) {
            self.drive();
            return;
        }
        self.in_flight = None;
        match outcome {
            RefreshOutcome::Success(token) => {
                let source = if self.restoring {
                    TokenSource::Restore
                } else {
                    TokenSource::Refresh
                };
                if let Err(e) = self.accept(token, source) {
                    self.fail(RefreshError::BadToken(e), None);
                }
            }
            RefreshOutcome::Refused(e) => self.fail(RefreshError::BadToken(e), None),
            RefreshOutcome::Transient(kind) => self.fail(RefreshError::Transient(kind), None),
            RefreshOutcome::RateLimited { retry_after } => {
                self.fail(RefreshError::RateLimited, retry_after)
            }
            RefreshOutcome::Rejected { status } => self.reject(RefreshError::Rejected(status)),
            RefreshOutcome::Forbidden => self.reject(RefreshError::Forbidden),
            RefreshOutcome::LostRace => self.lost_race(),
        }
        self.drive();
    }

    /// An attempt ended without a request because another tab refreshed.
    fn lost_race(&mut self) {
        match self.held.as_ref().map(|h| h.refresh_at) {
            Some(at) if at > self.now => self.next_refresh = Some(at),
            // Still due, yet someone held the lock: try again shortly, without counting a failure.
            _ => {
                let wait = schedule::backoff(1, &self.config, &mut self.rng);
                self.next_refresh = Some(self.now + wait);
            }
        }
    }

    /// Another tab announced a token. Adopted when it expires later than the one held (so the
    /// tabs share one refresh), and ignored otherwise (`Ok(false)`). On error the session is
    /// unchanged.
    ///
    /// Anything on the channel may come from any script of the origin, so nothing announced is
    /// taken on trust:
    /// - a tab with a session refuses a token whose `sub` or `sid` differs from it
    ///   ([`TokenError::OtherSession`]); a signed-out tab may adopt one (a sibling's login);
    /// - the announced lifetime is capped by the token's own `exp - iat` and by its `exp` on
    ///   the issuer's clock, which the driver estimates as `issuer_now` (its wall clock
    ///   corrected by the server's last `Date` header; see [`schedule::announced_lifetime`]);
    ///   a token without `exp` cannot be bounded and is refused ([`TokenError::NoLifetime`]);
    /// - an opaque token (not a JWT) is judged by the claims the announcement carries
    ///   ([`Announcement::claims`]; without them it is refused with its decoding error, as any
    ///   token that does not decode): their `sub` and `sid` must be the session's, and its
    ///   lifetime, which no `exp` bounds, is capped by `max_announced_opaque_lifetime`
    ///   ([`schedule::announced_opaque_lifetime`]), counted from the announced receipt time.
    pub fn handle_announcement(
        &mut self,
        now: Timestamp,
        announcement: Announcement,
        issuer_now: Timestamp,
    ) -> Result<bool, TokenError> {
        self.observe(now);
        let adopted = self.adopt(announcement, issuer_now);
        // The previous lock holder's token, come after the grant: no request.
        if let Some(f) = self.in_flight.filter(|f| f.handoff_until.is_some()) {
            if !self.refresh_still_needed(now, f.id) {
                self.in_flight = None;
                self.lost_race();
            }
        }
        self.drive();
        adopted
    }

    /// A logout, in this tab or announced by another. Clears the token at once and ignores any
    /// refresh still in flight.
    pub fn handle_logout(&mut self, now: Timestamp, origin: LogoutOrigin, reason: LogoutReason) {
        self.observe(now);
        self.end_session(origin, reason);
        self.drive();
    }

    /// The user did something in this tab (pointer, key, the page became visible): the idle
    /// timeout starts again, in every tab. Cheap enough to call on every such event; the
    /// activity is shared with the other tabs at most once per `activity_share_interval`
    /// (then once more at its end), except that activity cancelling a warning is shared at once.
    /// Refreshes and API calls must not be reported here.
    pub fn handle_activity(&mut self, now: Timestamp) {
        self.observe(now);
        // First what is due: activity after the deadline (a machine waking from sleep) does
        // not revive a session that timed out while nothing could run.
        self.drive();
        if self.active && self.config.idle_timeout.is_some() {
            let was_warned = self.note_activity(self.now);
            let interval = self.share_interval();
            let due = self
                .activity_shared
                .is_none_or(|t| self.now >= t + interval);
            if was_warned || due {
                self.share_activity();
            } else {
                self.activity_unshared = true;
            }
        }
        self.drive();
    }

    /// Another tab reported user activity at `at` (its clock; tabs of one browser share it).
    pub fn handle_sibling_activity(&mut self, now: Timestamp, at: Timestamp) {
        self.observe(now);
        self.drive();
        if self.active && self.config.idle_timeout.is_some() {
            let at = self.to_internal(at).min(self.now);
            self.note_activity(at);
        }
        self.drive();
    }

    /// The cross-tab lock of attempt `id` was granted (or taken over): the request timeout
    /// counts from now. `contended`: another tab held the lock when this one asked (a takeover
    /// is not: its holder has stopped). The holder announces its token before it lets go, but
    /// the grant may reach this tab before the announcement does; so after a contended grant
    /// of a refresh still needed, the attempt waits up to `lock_handoff_wait` (at most half of
    /// `request_timeout`)
    /// ([`Session::handoff_pending`]) before calling the endpoint. A token adopted meanwhile ends
    /// the attempt at once, as [`RefreshOutcome::LostRace`] would; when the wait passes, the
    /// refresh goes ahead.
    pub fn handle_lock_granted(&mut self, now: Timestamp, id: RefreshId, contended: bool) {
        self.observe(now);
        let wait = contended && self.refresh_still_needed(now, id);
        let timeout = self.config.request_timeout;
        let handoff = self.config.lock_handoff_wait.min(timeout / 2);
        if let Some(f) = self.in_flight.as_mut().filter(|f| f.id == id) {
            f.lock_until = None;
            f.deadline = self.now + timeout;
            f.handoff_until = (wait && !handoff.is_zero()).then(|| self.now + handoff);
        }
        self.drive();
    }

    fn end_session(&mut self, origin: LogoutOrigin, reason: LogoutReason) {
        let had_session = self.active || self.held.is_some() || self.restoring;
        if reason == LogoutReason::Idle && origin == LogoutOrigin::Local {
            let token = self.held.as_ref().map(|h| h.token.clone());
            self.actions.push(Action::RevokeSession(token));
        }
        self.held = None;
        self.active = false;
        self.identity = None;
        self.expired = None;
        self.restoring = false;
        self.siblings_until = None;
        self.next_refresh = None;
        self.not_before = None;
        self.failures = 0;
        if let Some(f) = self.in_flight.take() {
            self.actions.push(Action::AbortRefresh(f.id));
        }
        if origin == LogoutOrigin::Local {
            self.actions.push(Action::AnnounceLogout(reason));
        }
        if had_session || origin == LogoutOrigin::Local {
            self.events.push(Event::SignedOut { origin, reason });
        }
        self.idle_warned = false;
        self.activity_unshared = false;
    }

    /// The timer armed at [`Session::poll_timeout`] fired. Early, late and duplicate calls are
    /// harmless: the session simply does what is due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.observe(now);
        self.drive();
    }

    /// The page may have been asleep or throttled: catch up with everything due at `now`.
    pub fn handle_wake(&mut self, now: Timestamp, wake: Wake) {
        self.observe(now);
        if wake == Wake::Online && self.failures > 0 && self.in_flight.is_none() {
            let at = self.not_before.map_or(self.now, |nb| nb.max(self.now));
            self.next_refresh = Some(self.next_refresh.map_or(at, |t| t.min(at)));
        }
        self.drive();
    }

    /// About to use the token: refresh first if it is inside the refresh window ("renew on read").
    pub fn renew_on_read(&mut self, now: Timestamp) -> Renewal {
        self.observe(now);
        self.drive();
        match &self.held {
            Some(h) if self.now < h.refresh_at => Renewal::Fresh,
            _ => self.refresh_if_possible(),
        }
    }

    /// The API refused the token (401): refresh now whatever its expiry says, unless a refresh
    /// cannot run (backoff, budget, signed out).
    pub fn force_refresh(&mut self, now: Timestamp) -> Renewal {
        self.observe(now);
        self.drive();
        let refused = self.held.as_ref().map(|h| h.expires_at);
        let renewal = self.refresh_if_possible();
        if let Some(f) = self.in_flight.as_mut() {
            f.refused = f.refused.or(refused);
        }
        renewal
    }

    // ----- outputs -------------------------------------------------------------------------

    /// The next action for the driver. Call until `None` after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }

    /// The next event for the application. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// Every action and event queued so far, moved out at once (the queues are left empty).
    /// The same as calling [`Session::poll_action`] and [`Session::poll_event`] until `None`,
    /// without copying them into new collections.
    #[must_use]
    pub fn take_outputs(&mut self) -> (Vec<Action>, Vec<Event>) {
        (
            std::mem::take(&mut self.actions),
            std::mem::take(&mut self.events),
        )
    }

    /// When to call [`Session::handle_timeout`] next, on the caller's clock; `None` when
    /// nothing is pending. Never more than [`MAX_TIMER_DELAY`] after the last input, so a
    /// timer armed with it never overflows; arm with [`crate::timer_delay`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let waiting = self.in_flight.is_some() || self.siblings_until.is_some();
        let next = [
            self.held.as_ref().map(|h| h.usable_until),
            self.in_flight.map(|f| f.deadline),
            self.in_flight.and_then(|f| f.lock_until),
            self.in_flight.and_then(|f| f.handoff_until),
            self.idle_deadline(),
            self.activity_unshared
                .then(|| self.activity_shared.map(|t| t + self.share_interval()))
                .flatten(),
            self.siblings_until,
            if waiting { None } else { self.next_refresh },
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(self.to_caller(next.min(self.now + MAX_TIMER_DELAY)))
    }

    /// True when no refresh is in flight and no restore is waiting for sibling tabs: callers
    /// waiting on a [`Renewal::Pending`] resume when this turns true.
    pub fn is_settled(&self) -> bool {
        self.in_flight.is_none() && self.siblings_until.is_none()
    }

    /// The state at `now`. It is the state last reported by [`Event::StateChanged`], except
    /// that `signedIn` turns `expired` as soon as [`Session::token`] no longer offers the token
    /// (after a long sleep, before the driver has fed the deadline that reports it).
    pub fn state(&self, now: Timestamp) -> SessionState {
        match self.reported {
            SessionState::SignedIn if self.token(now).is_none() => SessionState::Expired,
            state => state,
        }
    }

    /// What a page-load restore comes to once [`Session::is_settled`]: signed in, no session
    /// (none was held, or the server refused the cookie: `invalid_grant`), or the failure
    /// `last_failure` (the latest [`Event::RefreshFailed`] since the restore) when the first
    /// attempt failed otherwise and retries continue in the background.
    pub fn restore_result<'e>(
        &self,
        now: Timestamp,
        last_failure: Option<&'e RefreshError>,
    ) -> Result<bool, &'e RefreshError> {
        if self.token(now).is_some() {
            return Ok(true);
        }
        match last_failure {
            Some(RefreshError::Rejected(_)) | None => Ok(false),
            Some(error) => Err(error),
        }
    }

    /// The event reporting a token another tab announced that this tab refused to use (it
    /// failed verification): an error with no retry of its own, telling whether this tab's
    /// token is still usable. Nothing else changes.
    pub fn refused_announcement(&self, now: Timestamp, error: TokenError) -> Event {
        Event::RefreshFailed {
            error: RefreshError::BadToken(error),
            retry_in: None,
            token_valid: self.token(now).is_some(),
        }
    }

    /// The token, if one is held and may still be offered at `now`.
    pub fn token(&self, now: Timestamp) -> Option<&AccessToken> {
        let now = self.to_internal(now).max(self.now);
        self.held
            .as_ref()
            .filter(|h| now < h.usable_until)
            .map(|h| &h.token)
    }

    /// The held token's claims (unverified; for display).
    pub fn claims(&self) -> Option<&Claims> {
        self.held.as_ref().map(|h| &h.claims)
    }

    /// When the held token expires, on the caller's clock.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.held.as_ref().map(|h| self.to_caller(h.expires_at))
    }

    /// When the next refresh is due, on the caller's clock (for display).
    pub fn refresh_due(&self) -> Option<Timestamp> {
        self.next_refresh.map(|t| self.to_caller(t))
    }

    /// Whether the attempt `id` should still call the endpoint. `false` when it was superseded,
    /// or another tab's token arrived while this tab waited for the cross-tab lock; the driver
    /// then reports [`RefreshOutcome::LostRace`].
    pub fn refresh_still_needed(&self, now: Timestamp, id: RefreshId) -> bool {
        let now = self.to_internal(now).max(self.now);
        let Some(f) = self.in_flight.filter(|f| f.id == id) else {
            return false;
        };
        match (f.refused, &self.held) {
            (_, None) => true,
            (Some(refused), Some(h)) => h.expires_at <= refused,
            (None, Some(h)) => now >= h.refresh_at,
        }
    }

    /// Whether attempt `id` is waiting, after a contended lock grant, for the previous
    /// holder's announcement (see [`Session::handle_lock_granted`]). The driver calls the
    /// endpoint only once this is false (at the latest at [`Session::poll_timeout`]), and then
    /// checks [`Session::refresh_still_needed`] as usual.
    pub fn handoff_pending(&self, id: RefreshId) -> bool {
        self.in_flight
            .is_some_and(|f| f.id == id && f.handoff_until.is_some())
    }

    /// Whether the attempt in flight waits for a hand-off ([`Session::handoff_pending`] of
    /// whichever attempt that is).
    pub fn in_handoff(&self) -> bool {
        self.in_flight.is_some_and(|f| f.handoff_until.is_some())
    }

    /// The held token as an announcement, for answering a sibling tab that asks.
    pub fn announcement(&self, now: Timestamp) -> Option<Announcement> {
        self.token(now)?;
        self.held.as_ref().map(|h| self.announce(h))
    }

    // ----- internals -----------------------------------------------------------------------

    /// When the idle logout is due, if the idle timeout is on.
    fn idle_logout_at(&self) -> Option<Timestamp> {
        self.config.idle_timeout.map(|t| self.last_activity + t)
    }

    /// When the idle timer next needs attention: the warning, then the logout.
    fn idle_deadline(&self) -> Option<Timestamp> {
        let logout_at = self.idle_logout_at().filter(|_| self.active)?;
        Some(if self.idle_warned {
            logout_at
        } else {
            logout_at - self.config.idle_warning
        })
    }

    fn share_interval(&self) -> Duration {
        let quarter = self.config.idle_timeout.map_or(Duration::MAX, |t| t / 4);
        self.config.activity_share_interval.min(quarter)
    }

    /// Records activity at `at`; true when it cancelled a warning.
    fn note_activity(&mut self, at: Timestamp) -> bool {
        if at <= self.last_activity {
            return false;
        }
        self.last_activity = at;
        let warning = self.config.idle_warning;
        let cancels = self.idle_warned
            && self
                .idle_logout_at()
                .is_some_and(|t| t - warning > self.now);
        if cancels {
            self.idle_warned = false;
            self.events.push(Event::Active);
        }
        cancels
    }

    fn share_activity(&mut self) {
        self.activity_shared = Some(self.now);
        self.activity_unshared = false;
        let at = self.to_caller(self.last_activity);
        self.actions.push(Action::AnnounceActivity(at));
    }

    /// Maps the caller's clock to internal time, which never runs backwards: when the wall
    /// clock is set back, the offset grows by the jump so deadlines keep their real distance.
    /// A jump forward is indistinguishable from sleep and treated as elapsed time, which errs
    /// on the side of refreshing early.
    fn observe(&mut self, now: Timestamp) {
        let internal = self.to_internal(now);
        if internal < self.now {
            self.clock_offset = self
                .clock_offset
                .saturating_add(self.now.as_millis() - internal.as_millis());
        } else {
            self.now = internal;
        }
    }

    fn to_internal(&self, caller: Timestamp) -> Timestamp {
        Timestamp::from_millis(caller.as_millis().saturating_add(self.clock_offset))
    }

    fn to_caller(&self, internal: Timestamp) -> Timestamp {
        Timestamp::from_millis(internal.as_millis().saturating_sub(self.clock_offset))
    }

    fn usable(&self) -> Option<&Held> {
        self.held.as_ref().filter(|h| self.now < h.usable_until)
    }

    fn announce(&self, h: &Held) -> Announcement {
        Announcement {
            token: h.token.clone(),
            received_at: self.to_caller(h.received_at),
            lifetime: h.lifetime,
            claims: h.opaque.then(|| h.claims.to_json()),
        }
    }

    /// The claims of a token, and whether it is opaque. A JWT's claims are its own, whatever
    /// else is offered. A token that is not a JWT at all (not three segments: an opaque
    /// reference, or an encrypted JWE) takes `id_token_claims` when given, decoded as strictly
    /// as a JWT's; without them it is refused with the decoding error, as before. A token of
    /// three segments that fails to decode is a broken JWT, refused whatever accompanies it.
    fn decode(
        &self,
        token: &AccessToken,
        id_token_claims: Option<&str>,
    ) -> Result<(Claims, bool), TokenError> {
        match decode_unverified_with(token.expose_secret().as_bytes(), &self.limits) {
            Ok(t) => Ok((t.claims, false)),
            Err(DecodeError::Malformed { segments }) if segments != 3 => match id_token_claims {
                Some(json) => claims_from_json_unverified(json.as_bytes(), &self.limits)
                    .map(|c| (c, true))
                    .map_err(TokenError::Decode),
                None => Err(TokenError::Decode(DecodeError::Malformed { segments })),
            },
            Err(e) => Err(TokenError::Decode(e)),
        }
    }

    /// Installs a token received at `self.now` from an endpoint.
    fn accept(&mut self, received: ReceivedToken, source: TokenSource) -> Result<(), TokenError> {
        let (claims, opaque) = self.decode(&received.token, received.id_token_claims.as_deref())?;
        // An opaque token's only lifetime is `expires_in`: the `exp` and `iat` of the ID token
        // claims are the ID token's.
        let lifetime = if opaque {
            received.expires_in.filter(|d| !d.is_zero())
        } else {
            schedule::lifetime(received.expires_in, &claims)
        }
        .ok_or(TokenError::NoLifetime)?;
        self.install(received.token, claims, opaque, self.now, lifetime, source);
        if let Some(h) = &self.held {
            self.actions.push(Action::Announce(self.announce(h)));
        }
        Ok(())
    }

    fn adopt(&mut self, a: Announcement, issuer_now: Timestamp) -> Result<bool, TokenError> {
        let (claims, opaque) = self.decode(&a.token, a.claims.as_deref())?;
        if self.active && self.identity.as_ref() != Some(&Identity::of(&claims)) {
            return Err(TokenError::OtherSession);
        }
        let received_at = self.to_internal(a.received_at).min(self.now);
        let lifetime = if opaque {
            Some(schedule::announced_opaque_lifetime(
                a.lifetime,
                &self.config,
            ))
        } else {
            schedule::announced_lifetime(received_at, a.lifetime, &claims, self.now, issuer_now)
        }
        .ok_or(TokenError::NoLifetime)?;
        let expires_at = received_at + lifetime;
        let newer = self.held.as_ref().is_none_or(|h| {
            expires_at > h.expires_at && h.token.expose_secret() != a.token.expose_secret()
        });
        let leeway = schedule::leeway(lifetime, &self.config);
        if !newer || lifetime.is_zero() || expires_at - leeway <= self.now {
            return Ok(false);
        }
        self.install(
            a.token,
            claims,
            opaque,
            received_at,
            lifetime,
            TokenSource::OtherTab,
        );
        Ok(true)
    }

    fn install(
        &mut self,
        token: AccessToken,
        claims: Claims,
        opaque: bool,
        received_at: Timestamp,
        lifetime: Duration,
        source: TokenSource,
    ) {
        let expires_at = received_at + lifetime;
        let refresh_at = if source == TokenSource::OtherTab {
            // The announcing tab refreshes this one; this tab only stands by.
            schedule::follower_refresh_at(received_at, lifetime, &self.config, &mut self.rng)
        } else {
            schedule::refresh_at(received_at, lifetime, &self.config, &mut self.rng)
        };
        let continuing = self.active && source != TokenSource::Login;
        if !continuing {
            // A new session starts its idle time now.
            self.last_activity = self.now;
            self.idle_warned = false;
        }
        self.identity = Some(Identity::of(&claims));
        // The previous token, if any, is dropped here and its bytes zeroized.
        self.held = Some(Held {
            token,
            claims,
            opaque,
            received_at,
            lifetime,
            expires_at,
            usable_until: expires_at - schedule::leeway(lifetime, &self.config),
            refresh_at,
        });
        self.events.push(if continuing {
            Event::Refreshed { source }
        } else {
            Event::SignedIn { source }
        });
        self.active = true;
        self.expired = None;
        self.restoring = false;
        self.siblings_until = None;
        self.failures = 0;
        self.not_before = None;
        self.budget_reported = false;
        self.next_refresh = Some(refresh_at);
    }

    fn fail(&mut self, error: RefreshError, retry_after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        let mut wait = schedule::backoff(self.failures, &self.config, &mut self.rng);
        if let Some(asked) = retry_after {
            let asked = asked.min(self.config.retry_after_cap);
            self.not_before = Some(self.now + asked);
            wait = wait.max(asked);
        }
        self.next_refresh = Some(self.now + wait);
        self.events.push(Event::RefreshFailed {
            error,
            retry_in: Some(wait),
            token_valid: self.usable().is_some(),
        });
    }

    fn reject(&mut self, error: RefreshError) {
        self.held = None;
        self.identity = None;
        self.next_refresh = None;
        self.not_before = None;
        self.siblings_until = None;
        self.failures = 0;
        // A page-load restore answered 401 is the ordinary first visit (no refresh cookie):
        // `restore()` resolves `false` and nothing is reported as an error. Any other refusal
        // of a restore (403: CSRF or origin checks) is a misconfiguration worth an event.
        let no_session_found =
            self.restoring && !self.active && matches!(error, RefreshError::Rejected(401));
        if !no_session_found {
            self.events.push(Event::RefreshFailed {
                error,
                retry_in: None,
                token_valid: false,
            });
        }
        if self.active {
            self.expired = Some(ExpiryReason::Rejected);
            self.events.push(Event::Expired {
                reason: ExpiryReason::Rejected,
                retrying: false,
            });
        }
        self.active = false;
        self.restoring = false;
    }

    fn refresh_if_possible(&mut self) -> Renewal {
        if self.in_flight.is_some() || self.siblings_until.is_some() {
            return Renewal::Pending;
        }
        let backing_off = self.failures > 0 && self.next_refresh.is_some_and(|t| t > self.now);
        if !(self.active || self.restoring) || backing_off {
            return Renewal::Unavailable;
        }
        self.next_refresh = Some(self.now);
        self.drive();
        if self.in_flight.is_some() {
            Renewal::Pending
        } else {
            Renewal::Unavailable
        }
    }

    fn start_refresh(&mut self) {
        let id = RefreshId(self.next_id);
        self.next_id += 1;
        let lock_until = self.config.lock_timeout.map(|wait| self.now + wait);
        self.in_flight = Some(InFlight {
            id,
            // Bounded by the lock wait too until the lock is granted (`handle_lock_granted`).
            deadline: lock_until.unwrap_or(self.now) + self.config.request_timeout,
            refused: None,
            lock_until,
            handoff_until: None,
        });
        self.next_refresh = None;
        self.budget_reported = false;
        self.budget.record(self.now, &self.config);
        self.actions.push(Action::StartRefresh(id));
    }

    /// Does whatever is due at `self.now`, then reports a state change.
    fn drive(&mut self) {
        let now = self.now;
        if let Some(logout_at) = self.idle_logout_at().filter(|_| self.active) {
            if now >= logout_at {
                self.end_session(LogoutOrigin::Local, LogoutReason::Idle);
            } else if !self.idle_warned && now + self.config.idle_warning >= logout_at {
                self.idle_warned = true;
                self.events.push(Event::IdleWarning {
                    logout_at: self.to_caller(logout_at),
                });
            }
        }
        if self.activity_unshared
            && self
                .activity_shared
                .is_some_and(|t| now >= t + self.share_interval())
        {
            self.share_activity();
        }
        if let Some(f) = self.in_flight.as_mut() {
            // No announcement came: the holder failed, crashed or was closed; go ahead.
            if f.handoff_until.is_some_and(|t| now >= t) {
                f.handoff_until = None;
            }
            if f.lock_until.is_some_and(|t| now >= t) {
                f.lock_until = None;
                f.deadline = now + self.config.request_timeout;
                let id = f.id;
                self.actions.push(Action::StealLock(id));
            }
        }
        if self.held.as_ref().is_some_and(|h| now >= h.usable_until) {
            self.held = None;
            if self.active {
                self.expired = Some(ExpiryReason::LifetimeElapsed);
                self.events.push(Event::Expired {
                    reason: ExpiryReason::LifetimeElapsed,
                    retrying: true,
                });
                if self.next_refresh.is_none() && self.in_flight.is_none() {
                    self.next_refresh = Some(now);
                }
            }
        }
        if let Some(f) = self.in_flight.filter(|f| now >= f.deadline) {
            self.in_flight = None;
            self.actions.push(Action::AbortRefresh(f.id));
            self.fail(RefreshError::Transient(TransientKind::Timeout), None);
        }
        if self.siblings_until.is_some_and(|t| now >= t) {
            self.siblings_until = None;
            self.next_refresh = Some(now);
        }
        if self.in_flight.is_none() && self.siblings_until.is_none() {
            if let Some(due) = self.next_refresh.filter(|t| *t <= now) {
                let due = self.not_before.map_or(due, |nb| due.max(nb));
                let allowed = self.budget.next_allowed(now, &self.config).max(due);
                if allowed <= now {
                    self.start_refresh();
                } else {
                    self.next_refresh = Some(allowed);
                    if due <= now && !self.budget_reported {
                        self.budget_reported = true;
                        self.events.push(Event::RefreshFailed {
                            error: RefreshError::BudgetExhausted,
                            retry_in: Some(allowed.saturating_since(now)),
                            token_valid: self.usable().is_some(),
                        });
                    }
                }
            }
        }
        let state = if self.in_flight.is_some() {
            SessionState::Refreshing
        } else if self.held.is_some() {
            SessionState::SignedIn
        } else if self.expired.is_some() {
            SessionState::Expired
        } else {
            SessionState::SignedOut
        };
        if state != self.reported {
            self.events.push(Event::StateChanged {
                from: self.reported,
                to: state,
            });
            self.reported = state;
        }
    }
}

/// Classifies the HTTP answer of a refresh request that did not succeed; `retry_after` is the
/// parsed `Retry-After` header.
///
/// - 429, and 503 with `Retry-After`: rate limited;
/// - 408 and other 5xx: transient;
/// - 403: forbidden — the server refused this page's origin, site or CSRF header (the
///   reference server answers `forbidden_origin`), which no retry and no sign-in can fix;
/// - 400 with `invalid_grant`, 401: rejected — the session is over;
/// - any other status: rejected too, since repeating a request the server does not understand
///   cannot succeed (a misconfigured URL must not cause a retry loop).
pub fn classify_refresh_status(status: u16, retry_after: Option<Duration>) -> RefreshOutcome {
    match status {
        429 => RefreshOutcome::RateLimited { retry_after },
        503 if retry_after.is_some() => RefreshOutcome::RateLimited { retry_after },
        408 | 500..=599 => RefreshOutcome::Transient(TransientKind::Server(status)),
        403 => RefreshOutcome::Forbidden,
        _ => RefreshOutcome::Rejected { status },
    }
}

/// Why a login did not produce a token, with a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// 401: wrong username or password.
    InvalidCredentials,
    /// 403: the server refused the request itself — this page's origin or site, or its CSRF
    /// header — whatever the credentials. A deployment misconfiguration.
    Forbidden,
    /// 429, or 503 with `Retry-After`: too many attempts; try again later.
    RateLimited,
    /// Any other answer.
    Failed(u16),
}

impl LoginError {
    /// `invalid_credentials`, `forbidden`, `rate_limited` or `login_failed`.
    pub fn error_code(self) -> ErrorCode {
        match self {
            LoginError::InvalidCredentials => ErrorCode::InvalidCredentials,
            LoginError::Forbidden => ErrorCode::Forbidden,
            LoginError::RateLimited => ErrorCode::RateLimited,
            LoginError::Failed(_) => ErrorCode::LoginFailed,
        }
    }

    /// The code's string, e.g. `"invalid_credentials"`.
    pub fn code(self) -> &'static str {
        self.error_code().as_str()
    }
}

impl Message for LoginError {
    fn write_message(&self, out: &mut String) {
        match self {
            LoginError::InvalidCredentials => {
                out.push_str("the login endpoint refused the credentials")
            }
            LoginError::Forbidden => out.push_str(
                "the login endpoint refused the request (403): the server does not accept this \
                 page's origin or its CSRF header; check the server's allowed origins",
            ),
            LoginError::RateLimited => out.push_str("too many login attempts; try again later"),
            LoginError::Failed(status) => {
                out.push_str("the login endpoint answered ");
                push_decimal(out, u64::from(*status));
            }
        }
    }
}

display_as_message!(LoginError);

impl std::error::Error for LoginError {}

/// Classifies the HTTP answer of a login request that did not succeed; `retry_after` tells
/// whether it carried a `Retry-After` header. Only a 401 means the credentials were wrong: a
/// 403 is the server refusing the page (origin, CSRF), which the user cannot fix by retyping.
pub fn classify_login_status(status: u16, retry_after: bool) -> LoginError {
    match status {
        401 => LoginError::InvalidCredentials,
        403 => LoginError::Forbidden,
        429 => LoginError::RateLimited,
        503 if retry_after => LoginError::RateLimited,
        _ => LoginError::Failed(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_on_refresh_is_forbidden_not_a_lost_session() {
        assert!(matches!(
            classify_refresh_status(403, None),
            RefreshOutcome::Forbidden
        ));
        assert!(matches!(
            classify_refresh_status(401, None),
            RefreshOutcome::Rejected { status: 401 }
        ));
        assert!(matches!(
            classify_refresh_status(400, None),
            RefreshOutcome::Rejected { status: 400 }
        ));
        assert_eq!(RefreshError::Forbidden.code(), "forbidden");
        assert_eq!(RefreshError::Rejected(401).code(), "invalid_grant");
    }

    #[test]
    fn only_a_401_on_login_means_wrong_credentials() {
        let codes: Vec<_> = [
            (401, false),
            (403, false),
            (429, false),
            (503, true),
            (503, false),
            (400, false),
            (500, false),
        ]
        .into_iter()
        .map(|(s, ra)| classify_login_status(s, ra).code())
        .collect();
        assert_eq!(
            codes,
            [
                "invalid_credentials",
                "forbidden",
                "rate_limited",
                "rate_limited",
                "login_failed",
                "login_failed",
                "login_failed"
            ]
        );
        assert!(LoginError::Forbidden.to_string().contains("origin"));
        assert!(LoginError::Failed(418).to_string().contains("418"));
    }
}
