//! `TokenManager`: the driver of one core [`Session`] in one tab.
//!
//! Every input goes the same way: read the clock, feed the session, then `pump` — carry out
//! the actions it asks for, dispatch the events it reports, and re-arm the one timer at its
//! next deadline. Borrows of the session are never held while JavaScript runs (listeners may
//! call back into the manager).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use token_manager_core::protocol::idempotent_method;
use token_manager_core::retry_after::parse_http_date;
use token_manager_core::session::{
    classify_login_status, Action, Event, LoginError, LogoutOrigin, RefreshError, RefreshId,
    RefreshOutcome, Renewal, TokenError, TransientKind, Wake,
};
use token_manager_core::verify::VerifyError;
use token_manager_core::{timer_delay, Clock, Session, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    AbortController, AbortSignal, CustomEvent, CustomEventInit, EventTarget, Headers, Request,
    Response,
};
use zeroize::Zeroize;

use crate::channel::{Channel, Message};
use crate::clock;
use crate::error::{coded, invalid_argument};
use crate::http;
use crate::listener::Listener;
use crate::lock;
use crate::options::Options;

const EVENT_TYPES: [&str; 6] = [
    "login",
    "refresh",
    "logout",
    "expired",
    "error",
    "statechange",
];

pub(crate) struct Inner {
    opts: Options,
    session: RefCell<Session>,
    clock: RefCell<Clock>,
    target: EventTarget,
    timer: RefCell<Option<(Timestamp, Timeout)>>,
    channel: RefCell<Option<Channel>>,
    lifecycle: RefCell<Vec<Listener>>,
    aborts: RefCell<Vec<(RefreshId, AbortController)>>,
    waiters: RefCell<Vec<Function>>,
    claims: RefCell<Option<JsValue>>,
    last_error: RefCell<Option<(&'static str, String)>>,
    /// The server's clock minus ours, from the last `Date` header, for checking `exp`/`nbf`
    /// of verified tokens against the issuer's time rather than a possibly wrong local clock.
    server_skew_ms: Cell<i64>,
    lock_name: String,
    me: Weak<Inner>,
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

impl Inner {
    fn now(&self) -> Timestamp {
        clock::read(&mut self.clock.borrow_mut())
    }

    /// Notes the server's clock from a response's `Date` header.
    fn observe_server_date(&self, response: &Response) {
        let date = response.headers().get("Date").ok().flatten();
        if let Some(secs) = date.as_deref().and_then(parse_http_date) {
            let wall = clock::wall().as_millis() as i64;
            self.server_skew_ms
                .set((secs as i64).saturating_mul(1000) - wall);
        }
    }

    /// Our best estimate of the issuer's current time.
    fn server_now(&self) -> Timestamp {
        let wall = clock::wall().as_millis() as i64;
        Timestamp::from_millis(wall.saturating_add(self.server_skew_ms.get()).max(0) as u64)
    }

    /// Verifies a received token when verification is on.
    async fn check_token(&self, token: &str) -> Result<(), VerifyError> {
        match &self.opts.verifier {
            None => Ok(()),
            Some(v) => v.verify(token, self.server_now()).await.map(|_| ()),
        }
    }

    /// Feeds one input to the session, then pumps.
    fn input<R>(&self, f: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        let now = self.now();
        let result = f(&mut self.session.borrow_mut(), now);
        self.pump();
        result
    }

    fn pump(&self) {
        loop {
            let (actions, events) = {
                let mut s = self.session.borrow_mut();
                let actions: Vec<Action> = std::iter::from_fn(|| s.poll_action()).collect();
                let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
                (actions, events)
            };
            if actions.is_empty() && events.is_empty() {
                break;
            }
            for action in actions {
                self.perform(action);
            }
            for event in events {
                self.dispatch(event);
            }
        }
        self.arm_timer();
        if self.session.borrow().is_settled() {
            for resolve in self.waiters.take() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    }

    fn take_abort(&self, id: RefreshId) -> Option<AbortController> {
        let mut aborts = self.aborts.borrow_mut();
        let i = aborts.iter().position(|(a, _)| *a == id)?;
        Some(aborts.swap_remove(i).1)
    }

    fn arm_timer(&self) {
        let deadline = self.session.borrow().poll_timeout();
        let mut timer = self.timer.borrow_mut();
        match deadline {
            None => *timer = None,
            Some(d) if timer.as_ref().is_some_and(|(armed, _)| *armed == d) => {}
            Some(d) => {
                let delay = timer_delay(d, self.now());
                let me = self.me.clone();
                // Replacing the Timeout drops (and so cancels) the previous one.
                *timer = Some((
                    d,
                    Timeout::new(delay.as_millis() as u32, move || {
                        if let Some(inner) = me.upgrade() {
                            inner.timer.borrow_mut().take();
                            inner.input(|s, now| s.handle_timeout(now));
                        }
                    }),
                ));
            }
        }
    }

    fn perform(&self, action: Action) {
        match action {
            Action::StartRefresh(id) => {
                let Ok(controller) = AbortController::new() else {
                    self.input(|s, now| {
                        s.handle_refresh_outcome(
                            now,
                            id,
                            RefreshOutcome::Transient(TransientKind::Network),
                        )
                    });
                    return;
                };
                let signal = controller.signal();
                self.aborts.borrow_mut().push((id, controller));
                if let Some(inner) = self.me.upgrade() {
                    spawn_local(async move { inner.run_refresh(id, signal).await });
                }
            }
            Action::AbortRefresh(id) => {
                if let Some(c) = self.take_abort(id) {
                    c.abort();
                }
            }
            Action::AskSiblings => {
                if let Some(c) = self.channel.borrow().as_ref() {
                    c.ask();
                }
            }
            Action::Announce(a) => {
                if let Some(c) = self.channel.borrow().as_ref() {
                    c.announce(&a);
                }
            }
            Action::AnnounceLogout => {
                if let Some(c) = self.channel.borrow().as_ref() {
                    c.logout();
                }
            }
        }
    }

    /// One refresh attempt: under the cross-tab lock when enabled, so the tabs queue and all
    /// but the first find the token already adopted.
    async fn run_refresh(self: Rc<Self>, id: RefreshId, signal: AbortSignal) {
        if self.opts.cross_tab {
            let inner = self.clone();
            let sig = signal.clone();
            let work = move || {
                crate::promise(async move {
                    inner.refresh_request(id, sig).await;
                    Ok(JsValue::UNDEFINED)
                })
            };
            let locked = lock::with_lock(&self.lock_name, &signal, work).await;
            if locked.is_err() && !signal.aborted() {
                // The Web Locks API refused (an opaque origin, say): refresh without it.
                self.clone().refresh_request(id, signal).await;
            }
        } else {
            self.clone().refresh_request(id, signal).await;
        }
        self.take_abort(id);
    }

    async fn refresh_request(self: Rc<Self>, id: RefreshId, signal: AbortSignal) {
        let now = self.now();
        if !self.session.borrow().refresh_still_needed(now, id) {
            self.input(|s, now| s.handle_refresh_outcome(now, id, RefreshOutcome::LostRace));
            return;
        }
        let mut outcome =
            match http::auth_request(&self.opts.refresh_url, None, None, Some(&signal)) {
                Err(_) => RefreshOutcome::Transient(TransientKind::Network),
                Ok(request) => match http::fetch(&request).await {
                    Ok(response) => {
                        self.observe_server_date(&response);
                        http::refresh_outcome(response, clock::wall()).await
                    }
                    Err(_) => RefreshOutcome::Transient(TransientKind::Network),
                },
            };
        if let RefreshOutcome::Success(received) = &outcome {
            if let Err(e) = self.check_token(received.token.expose_secret()).await {
                outcome = RefreshOutcome::Refused(TokenError::Unverified(e));
            }
        }
        // An aborted attempt was already settled by the session (timeout, login, logout).
        if !signal.aborted() {
            self.input(|s, now| s.handle_refresh_outcome(now, id, outcome));
        }
    }

    fn dispatch(&self, event: Event) {
        let detail = Object::new();
        let kind = match event {
            Event::StateChanged { from, to } => {
                set(&detail, "from", from.as_str());
                set(&detail, "to", to.as_str());
                "statechange"
            }
            Event::SignedIn { source } => {
                self.claims.take();
                set(&detail, "source", source.as_str());
                "login"
            }
            Event::Refreshed { source } => {
                self.claims.take();
                set(&detail, "source", source.as_str());
                "refresh"
            }
            Event::SignedOut { origin } => {
                self.claims.take();
                set(
                    &detail,
                    "origin",
                    match origin {
                        LogoutOrigin::Local => "local",
                        LogoutOrigin::OtherTab => "otherTab",
                    },
                );
                "logout"
            }
            Event::Expired { reason, retrying } => {
                self.claims.take();
                set(&detail, "reason", reason.as_str());
                set(&detail, "retrying", retrying);
                "expired"
            }
            Event::RefreshFailed {
                error,
                retry_in,
                token_valid,
            } => {
                let message = error.to_string();
                set(&detail, "code", error.code());
                set(&detail, "message", message.as_str());
                set(
                    &detail,
                    "retryInMs",
                    retry_in.map_or(JsValue::NULL, |d| (d.as_millis() as f64).into()),
                );
                set(&detail, "tokenValid", token_valid);
                *self.last_error.borrow_mut() = Some((error.code(), message));
                "error"
            }
        };
        let init = CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(e) = CustomEvent::new_with_event_init_dict(kind, &init) {
            // Exceptions thrown by listeners are reported by the browser, not propagated here.
            let _ = self.target.dispatch_event(&e);
        }
    }

    fn on_message(&self, message: Message) {
        match message {
            Message::Token(a) if self.opts.verifier.is_some() => {
                let Some(inner) = self.me.upgrade() else {
                    return;
                };
                spawn_local(async move {
                    match inner.check_token(a.token.expose_secret()).await {
                        Ok(()) => {
                            let issuer_now = inner.server_now();
                            let _ = inner.input(|s, now| s.handle_announcement(now, a, issuer_now));
                        }
                        Err(e) => {
                            let valid = inner.token_string().is_some();
                            inner.dispatch(Event::RefreshFailed {
                                error: RefreshError::BadToken(TokenError::Unverified(e)),
                                retry_in: None,
                                token_valid: valid,
                            });
                        }
                    }
                });
            }
            // Refused announcements (another account or session, no `exp`) change nothing and
            // are not reported: a sibling signing in as someone else is not this tab's error.
            Message::Token(a) => {
                let issuer_now = self.server_now();
                let _ = self.input(|s, now| s.handle_announcement(now, a, issuer_now));
            }
            Message::Logout => self.input(|s, now| s.handle_logout(now, LogoutOrigin::OtherTab)),
            Message::Ask => {
                let now = self.now();
                let answer = self.session.borrow().announcement(now);
                if let (Some(a), Some(c)) = (answer, self.channel.borrow().as_ref()) {
                    c.announce(&a);
                }
            }
        }
    }

    /// Resolves once no refresh is in flight (immediately if none is).
    async fn settled(&self) {
        if self.session.borrow().is_settled() {
            return;
        }
        let waiters = &self.waiters;
        let promise = Promise::new(&mut |resolve, _| waiters.borrow_mut().push(resolve));
        let _ = JsFuture::from(promise).await;
    }

    fn token_string(&self) -> Option<String> {
        let now = self.now();
        self.session
            .borrow()
            .token(now)
            .map(|t| t.expose_secret().to_owned())
    }

    fn allowed_origin(&self, url: &str) -> bool {
        web_sys::Url::new(url).is_ok_and(|u| self.opts.api_origins.iter().any(|o| *o == u.origin()))
    }

    fn shutdown(&self) {
        self.timer.borrow_mut().take();
        self.lifecycle.borrow_mut().clear();
        self.channel.borrow_mut().take();
        for (_, c) in self.aborts.take() {
            c.abort();
        }
        // Replacing the session drops the token, which zeroizes it.
        if let Ok(fresh) = Session::new(self.opts.config.clone(), 0) {
            *self.session.borrow_mut() = fresh;
        }
        self.claims.take();
        for resolve in self.waiters.take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

fn random_seed() -> u64 {
    let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (hi << 32) | lo
}

fn lifecycle_listeners(me: &Weak<Inner>) -> Vec<Listener> {
    let global = js_sys::global();
    let mut out = Vec::new();
    let on = |target: &JsValue, kind: &'static str, wake: Wake, out: &mut Vec<Listener>| {
        let Some(target) = target.dyn_ref::<EventTarget>() else {
            return;
        };
        let me = me.clone();
        let listener = Listener::new(target, kind, move |_| {
            if let Some(inner) = me.upgrade() {
                let hidden = wake == Wake::Visible
                    && Reflect::get(&js_sys::global(), &"document".into())
                        .and_then(|d| Reflect::get(&d, &"visibilityState".into()))
                        .ok()
                        .and_then(|v| v.as_string())
                        .is_some_and(|v| v != "visible");
                if !hidden {
                    inner.input(|s, now| s.handle_wake(now, wake));
                }
            }
        });
        out.extend(listener);
    };
    on(&global, "online", Wake::Online, &mut out);
    on(&global, "pageshow", Wake::PageShow, &mut out);
    on(&global, "focus", Wake::Focus, &mut out);
    if let Ok(document) = Reflect::get(&global, &"document".into()) {
        on(&document, "visibilitychange", Wake::Visible, &mut out);
    }
    out
}

/// Keeps an access token in memory, refreshes it before it expires through the refresh
/// cookie, and attaches it to API requests. See the README for the full API.
#[wasm_bindgen]
pub struct TokenManager {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("state", &self.inner.session.borrow().state())
            .finish_non_exhaustive()
    }
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

#[wasm_bindgen]
impl TokenManager {
    /// Creates a manager. Throws a `TokenManagerError` (`unknown_option`, `invalid_option`,
    /// `insecure_endpoint`) for bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "TokenManagerOptions")] options: Option<
            JsValue,
        >,
    ) -> Result<TokenManager, JsValue> {
        let opts = Options::parse(&options.unwrap_or(JsValue::UNDEFINED))?;
        let session = Session::new(opts.config.clone(), random_seed())
            .map_err(|e| coded("invalid_option", &e.to_string()))?;
        let target = EventTarget::new()?;
        let lock_name = format!("wasm-token-manager:{}", opts.refresh_url);
        let inner = Rc::new_cyclic(|me: &Weak<Inner>| Inner {
            opts,
            session: RefCell::new(session),
            clock: RefCell::new(Clock::new()),
            target,
            timer: RefCell::new(None),
            channel: RefCell::new(None),
            lifecycle: RefCell::new(Vec::new()),
            aborts: RefCell::new(Vec::new()),
            waiters: RefCell::new(Vec::new()),
            claims: RefCell::new(None),
            last_error: RefCell::new(None),
            server_skew_ms: Cell::new(0),
            lock_name,
            me: me.clone(),
        });
        if inner.opts.cross_tab {
            let me = inner.me.clone();
            let channel = Channel::open(&inner.lock_name, move |m| {
                if let Some(inner) = me.upgrade() {
                    inner.on_message(m);
                }
            });
            *inner.channel.borrow_mut() = channel;
        }
        *inner.lifecycle.borrow_mut() = lifecycle_listeners(&inner.me);
        Ok(TokenManager { inner })
    }

    /// On page load: resume the session from another tab or through the refresh cookie.
    /// Resolves `true` when signed in, `false` when there is no session; rejects with the
    /// error when the first attempt failed transiently (retries continue in the background
    /// and a later success fires `login`).
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn restore(&self) -> Promise {
        let inner = self.inner.clone();
        crate::promise(async move {
            inner.last_error.take();
            inner.input(|s, now| s.handle_restore(now));
            inner.settled().await;
            if inner.token_string().is_some() {
                return Ok(true.into());
            }
            match inner.last_error.take() {
                Some((code, message)) if code != "invalid_grant" => Err(coded(code, &message)),
                _ => Ok(false.into()),
            }
        })
    }

    /// Signs in with the given credentials (the JSON body of the login endpoint; the reference
    /// server expects `{ username, password }`). Resolves to the new token's claims.
    #[wasm_bindgen(unchecked_return_type = "Promise<Claims>")]
    pub fn login(
        &self,
        #[wasm_bindgen(unchecked_param_type = "LoginCredentials")] credentials: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        crate::promise(async move {
            if !credentials.is_object() || Array::is_array(&credentials) {
                return Err(invalid_argument(
                    "login(credentials) needs an object such as { username, password }",
                ));
            }
            // Serialized in JavaScript: the password never enters wasm memory.
            let body: JsValue = JSON::stringify(&credentials)
                .map_err(|_| invalid_argument("credentials must be JSON-serializable"))?
                .into();
            let request = http::auth_request(&inner.opts.login_url, Some(&body), None, None)?;
            let response = http::fetch(&request).await.map_err(|_| {
                coded(
                    "network_error",
                    "the login request failed to reach the server",
                )
            })?;
            inner.observe_server_date(&response);
            match response.status() {
                200 => {
                    let token = http::read_token(&response).await.map_err(|code| {
                        coded(code, "the login endpoint answered with an unusable body")
                    })?;
                    // Refused before the session sees it: a token that fails verification is
                    // never used or announced, and a session already held is kept.
                    inner
                        .check_token(token.token.expose_secret())
                        .await
                        .map_err(|e| coded(e.code(), &e.to_string()))?;
                    inner
                        .input(|s, now| s.handle_login(now, token))
                        .map_err(|e| coded(e.code(), &e.to_string()))?;
                    Ok(claims_of(&inner))
                }
                status => {
                    let retry_after = response.headers().has("Retry-After").unwrap_or(false);
                    let error = classify_login_status(status, retry_after);
                    let message = match error {
                        LoginError::InvalidCredentials | LoginError::RateLimited => {
                            error.to_string()
                        }
                        // The server's own code (`forbidden_origin`…) helps whoever deploys.
                        LoginError::Forbidden | LoginError::Failed(_) => {
                            match http::error_code(&response).await {
                                Some(detail) => format!("{error} ({detail})"),
                                None => error.to_string(),
                            }
                        }
                    };
                    Err(coded(error.code(), &message))
                }
            }
        })
    }

    /// Signs out in every tab: clears the token at once, then asks the server to revoke the
    /// refresh cookie and deny the access token. Rejects with `logout_failed` when the server
    /// could not be told (the token is cleared locally all the same).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> Promise {
        let inner = self.inner.clone();
        crate::promise(async move {
            let mut token = inner.token_string();
            inner.input(|s, now| s.handle_logout(now, LogoutOrigin::Local));
            let request = http::auth_request(&inner.opts.logout_url, None, token.as_deref(), None);
            if let Some(t) = token.as_mut() {
                t.zeroize();
            }
            let response = http::fetch(&request?).await.map_err(|_| {
                coded(
                    "logout_failed",
                    "the logout request failed to reach the server",
                )
            })?;
            match response.status() {
                200..=299 | 401 => Ok(JsValue::UNDEFINED),
                status => Err(coded(
                    "logout_failed",
                    &format!("the logout endpoint answered {status}"),
                )),
            }
        })
    }

    /// The current token's claims as a frozen plain object (the same object until the token
    /// changes), or `null` when signed out. Unverified: for display, not for authorization.
    #[wasm_bindgen(unchecked_return_type = "Claims | null")]
    pub fn claims(&self) -> JsValue {
        claims_of(&self.inner)
    }

    /// Whether a token that may still be used is held.
    #[wasm_bindgen(js_name = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        let now = self.inner.now();
        self.inner.session.borrow().token(now).is_some()
    }

    /// When the current token expires, in milliseconds since the epoch (like `Date.now()`).
    #[wasm_bindgen(js_name = expiresAt)]
    pub fn expires_at(&self) -> Option<f64> {
        let at = self.inner.session.borrow().expires_at()?;
        Some(to_wall(&self.inner, at))
    }

    /// When the next refresh is due, in milliseconds since the epoch, or `null`.
    #[wasm_bindgen(js_name = refreshAt)]
    pub fn refresh_at(&self) -> Option<f64> {
        let at = self.inner.session.borrow().refresh_due()?;
        Some(to_wall(&self.inner, at))
    }

    /// `signedOut`, `signedIn`, `refreshing` or `expired`.
    #[wasm_bindgen(getter, unchecked_return_type = "SessionState")]
    pub fn state(&self) -> String {
        self.inner.session.borrow().state().as_str().to_owned()
    }

    /// `fetch` with `Authorization: Bearer` attached for origins in `apiOrigins` (other
    /// origins get the request unchanged). Refreshes first when the token is about to expire;
    /// after a 401 refreshes once and replays the request when its method is idempotent
    /// (RFC 9110; any method with `replayNonIdempotent: true`) and its body can be replayed.
    /// A 401 not replayed is returned as it is, the refresh running in the background.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RequestInit")] init: Option<JsValue>,
    ) -> Promise {
        let inner = self.inner.clone();
        let init = init.unwrap_or(JsValue::UNDEFINED);
        crate::promise(async move { authorized_fetch(inner, input, init).await.map(Into::into) })
    }

    /// Listens for `login`, `refresh`, `logout`, `expired`, `error` or `statechange`.
    #[wasm_bindgen(js_name = addEventListener, skip_typescript)]
    pub fn add_event_listener(&self, kind: &str, listener: &Function) -> Result<(), JsValue> {
        check_event_type(kind)?;
        self.inner
            .target
            .add_event_listener_with_callback(kind, listener)
    }

    /// Removes a listener added with `addEventListener`.
    #[wasm_bindgen(js_name = removeEventListener, skip_typescript)]
    pub fn remove_event_listener(&self, kind: &str, listener: &Function) -> Result<(), JsValue> {
        check_event_type(kind)?;
        self.inner
            .target
            .remove_event_listener_with_callback(kind, listener)
    }

    /// The raw access token. Throws `token_not_exposed` unless the manager was created with
    /// `exposeToken: true`: by default only `fetch` ever sees the token.
    #[wasm_bindgen(js_name = getAccessToken)]
    pub fn get_access_token(&self) -> Result<Option<String>, JsValue> {
        if !self.inner.opts.expose_token {
            return Err(coded(
                "token_not_exposed",
                "getAccessToken() needs the option exposeToken: true; use auth.fetch() instead",
            ));
        }
        Ok(self.inner.token_string())
    }
}

fn to_wall(inner: &Inner, at: Timestamp) -> f64 {
    let now = inner.now();
    let wall = clock::wall();
    (wall.as_millis() as f64) + (at.as_millis() as f64 - now.as_millis() as f64)
}

fn check_event_type(kind: &str) -> Result<(), JsValue> {
    if EVENT_TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(invalid_argument(
            "event type must be login, refresh, logout, expired, error or statechange",
        ))
    }
}

fn claims_of(inner: &Inner) -> JsValue {
    if let Some(cached) = inner.claims.borrow().as_ref() {
        return cached.clone();
    }
    let Some(json) = inner.session.borrow().claims().map(|c| c.to_json()) else {
        return JsValue::NULL;
    };
    let value = JSON::parse(&json).unwrap_or(JsValue::NULL);
    if let Some(obj) = value.dyn_ref::<Object>() {
        Object::freeze(obj);
    }
    *inner.claims.borrow_mut() = Some(value.clone());
    value
}

fn with_bearer(request: &Request, token: &str) -> Result<Request, JsValue> {
    let headers = Headers::new_with_headers(&request.headers())?;
    headers.set("Authorization", &format!("Bearer {token}"))?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    Request::new_with_request_and_init(request, &init)
}

#[wasm_bindgen]
extern "C" {
    /// The global `Request`, constructed with any input and init, as `fetch` accepts them.
    #[wasm_bindgen(js_name = Request)]
    type AnyRequest;
    #[wasm_bindgen(catch, constructor, js_class = "Request")]
    fn new(input: &JsValue, init: &JsValue) -> Result<AnyRequest, JsValue>;
}

fn new_request(input: &JsValue, init: &JsValue) -> Result<Request, JsValue> {
    AnyRequest::new(input, init).map(JsCast::unchecked_into)
}

async fn authorized_fetch(
    inner: Rc<Inner>,
    input: JsValue,
    init: JsValue,
) -> Result<Response, JsValue> {
    // `new Request(input, init)`, exactly as `fetch` itself would build it.
    let request = new_request(&input, &init).map_err(|_| {
        invalid_argument("fetch(input, init) arguments do not make a valid Request")
    })?;
    // Only allowlisted origins ever see the token; an explicit Authorization header is the
    // application's choice and is left alone.
    if !inner.allowed_origin(&request.url()) || request.headers().has("Authorization")? {
        return http::fetch(&request).await;
    }
    if inner.input(|s, now| s.renew_on_read(now)) == Renewal::Pending {
        inner.settled().await;
    }
    let mut token = inner
        .token_string()
        .ok_or_else(|| coded("not_authenticated", "no valid access token; sign in first"))?;
    // (Reflect.get on a non-object throws: the guard keeps exceptions off the hot path.)
    let stream_body = init.is_object()
        && Reflect::get(&init, &"body".into())
            .ok()
            .is_some_and(|b| b.is_instance_of::<web_sys::ReadableStream>());
    // A POST the API refused with 401 may still have been acted on (a proxy or a handler that
    // checks the token late): replaying it could pay twice. Only idempotent methods are
    // replayed unless the application says its non-idempotent endpoints are safe to repeat.
    let replayable = inner.opts.replay_non_idempotent || idempotent_method(&request.method());
    let spare = if stream_body || !replayable {
        None
    } else {
        request.clone().ok()
    };
    let first = with_bearer(&request, &token);
    let response = http::fetch(&first?).await?;
    if response.status() != 401 {
        token.zeroize();
        return Ok(response);
    }
    let Some(spare) = spare else {
        // Not replayed: the app gets the 401, and the refused token is replaced meanwhile so
        // the app's own retry (if it decides one is safe) goes out with a fresh one — unless
        // it was replaced already while this request was under way.
        let mut held = inner.token_string();
        if held.as_deref() == Some(token.as_str()) {
            let _ = inner.input(|s, now| s.force_refresh(now));
        }
        if let Some(h) = held.as_mut() {
            h.zeroize();
        }
        token.zeroize();
        return Ok(response);
    };
    if inner.input(|s, now| s.force_refresh(now)) == Renewal::Pending {
        inner.settled().await;
    }
    let retried = match inner.token_string() {
        Some(mut fresh) if fresh != token => {
            let request = with_bearer(&spare, &fresh);
            fresh.zeroize();
            Some(request)
        }
        Some(mut same) => {
            same.zeroize();
            None
        }
        None => None,
    };
    token.zeroize();
    match retried {
        Some(request) => http::fetch(&request?).await,
        None => Ok(response),
    }
}
