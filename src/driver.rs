//! The driver of one core [`Session`] in one tab: the pump and the one timer.
//!
//! Every input goes the same way: read the clock, feed the session, then `pump` — carry out
//! the actions it asks for, dispatch the events it reports, and re-arm the timer at the next
//! deadline (after quinn's `connection.rs`: the driver only feeds and acts). Borrows of the
//! session are never held while JavaScript runs (listeners may call back into the manager).
//! The other concerns of the driver each have their own file: `refresh` (one attempt, with
//! the lock and verification), `events`, `tabs` (the channel), `lifecycle` (page listeners),
//! `authorized_fetch` and `login` (the login and logout requests).

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use token_manager_core::server_clock::ServerClock;
use token_manager_core::session::{
    Action, Announcement, RefreshError, RefreshOutcome, TransientKind,
};
use token_manager_core::{timer_delay, Clock, Session, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, EventTarget};

use crate::clock;
use crate::dpop::Dpop;
use crate::error::thrown;
use crate::options::Options;
use crate::page::PageHandle;
use crate::pending::Pending;

/// The state of one manager, shared by its callbacks through `Rc`/`Weak`.
pub(crate) struct Driver {
    pub(crate) opts: Options,
    pub(crate) session: RefCell<Session>,
    clock: RefCell<Clock>,
    /// Where the manager's events are dispatched.
    pub(crate) target: EventTarget,
    /// The deadline the page's timer is armed for.
    armed: Cell<Option<Timestamp>>,
    /// The page's listeners, the channel (with `crossTab`) and the timer (`page.rs`); taken
    /// (and so closed) by `free()`.
    page: RefCell<Option<PageHandle>>,
    /// The request of each refresh attempt under way.
    pub(crate) requests: Pending,
    /// The wait for the cross-tab lock (aborted to take it over, or when the attempt ends).
    pub(crate) lock_waits: Pending,
    /// When activity was last forwarded to the session (its clock, ms).
    pub(crate) activity_forwarded: Cell<Option<u64>>,
    waiters: RefCell<Vec<Function>>,
    /// What resumes the attempt waiting for a lock hand-off (`refresh.rs`).
    pub(crate) handoff: Cell<Option<Function>>,
    /// The frozen claims object handed to JavaScript, until the token changes.
    pub(crate) claims: RefCell<Option<JsValue>>,
    /// The latest refresh failure reported (what `restore()` rejects with).
    pub(crate) last_error: RefCell<Option<RefreshError>>,
    /// The issuer's clock, for checking `exp`/`nbf` of verified and announced tokens against
    /// the issuer's time rather than a possibly wrong local clock.
    pub(crate) server_clock: Cell<ServerClock>,
    pub(crate) lock_name: String,
    /// The DPoP key and nonces (`dpop: true`).
    pub(crate) dpop: Option<Dpop>,
    /// `auth.fetch`'s request work in JavaScript, made on the first call (`authorized_fetch.rs`).
    pub(crate) fetcher: OnceCell<crate::authorized_fetch::Fetcher>,
    pub(crate) me: Weak<Driver>,
}

impl Driver {
    /// A driver of `session`, listening to the page.
    pub(crate) fn new(opts: Options, session: Session, target: EventTarget) -> Rc<Self> {
        let lock_name = ["wasm-token-manager:", opts.refresh_url()].concat();
        Rc::new_cyclic(|me: &Weak<Driver>| Driver {
            page: RefCell::new(Some(PageHandle::new(
                me.clone(),
                opts.cross_tab.then_some(lock_name.as_str()),
                opts.config.idle_timeout.is_some(),
            ))),
            dpop: Dpop::new(opts.dpop),
            opts,
            session: RefCell::new(session),
            clock: RefCell::new(Clock::new()),
            target,
            armed: Cell::new(None),
            requests: Pending::default(),
            lock_waits: Pending::default(),
            activity_forwarded: Cell::new(None),
            waiters: RefCell::new(Vec::new()),
            handoff: Cell::new(None),
            claims: RefCell::new(None),
            last_error: RefCell::new(None),
            server_clock: Cell::new(ServerClock::default()),
            lock_name,
            fetcher: OnceCell::new(),
            me: me.clone(),
        })
    }

    /// The session's clock now.
    pub(crate) fn now(&self) -> Timestamp {
        clock::read(&mut self.clock.borrow_mut())
    }

    /// Local wall-clock milliseconds of the session instant `at` (like `Date.now()`).
    pub(crate) fn to_wall(&self, at: Timestamp) -> f64 {
        let now = self.now();
        (clock::wall().as_millis() as f64) + (at.as_millis() as f64 - now.as_millis() as f64)
    }

    /// Feeds one input to the session, then pumps.
    pub(crate) fn input<R>(&self, f: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        let now = self.now();
        let result = f(&mut self.session.borrow_mut(), now);
        self.pump();
        result
    }

    /// Carries out the session's actions and dispatches its events until it has none, then
    /// re-arms the timer.
    pub(crate) fn pump(&self) {
        loop {
            // Moved out, not popped one at a time: a listener that calls back into the manager
            // runs a nested pump, which sees only what its call queued, never the rest of
            // this batch (tests/browser.rs, `a_listener_calling_back_…`).
            let (actions, events) = self.session.borrow_mut().take_outputs();
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
        self.resume_handoff();
        if self.session.borrow().is_settled() {
            for resolve in self.waiters.take() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    }

    /// The page's timer at the session's next deadline (left alone when already there).
    fn arm_timer(&self) {
        let deadline = self.session.borrow().poll_timeout();
        if deadline == self.armed.get() {
            return;
        }
        self.armed.set(deadline);
        let now = self.now();
        self.with_page(|p| match deadline {
            None => p.disarm(),
            Some(d) => p.arm(timer_delay(d, now).as_millis() as u32),
        });
    }

    /// The timer fired (kind 9 of the page).
    pub(crate) fn timer_fired(&self) {
        self.armed.set(None);
        self.input(|s, now| s.handle_timeout(now));
    }

    /// Runs `f` on the page, unless `free()` closed it.
    pub(crate) fn with_page(&self, f: impl FnOnce(&crate::page::Page)) {
        if let Some(handle) = self.page.borrow().as_ref() {
            f(&handle.page);
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
                self.requests.insert(id, controller);
                if let Some(driver) = self.me.upgrade() {
                    spawn_local(async move { driver.run_refresh(id, signal).await });
                }
            }
            Action::AbortRefresh(id) => {
                self.lock_waits.abort(id);
                self.requests.abort(id);
            }
            // `run_refresh` sees its wait aborted while the attempt is not, and steals.
            Action::StealLock(id) => self.lock_waits.abort(id),
            Action::AnnounceActivity(at) => self.with_page(|p| p.activity(at.as_millis() as f64)),
            Action::RevokeSession(token) => {
                // The key now: the logout event that follows drops it.
                let key = self.dpop.as_ref().and_then(Dpop::current);
                if let Some(driver) = self.me.upgrade() {
                    // Best effort: the session is over locally whatever the server answers.
                    spawn_local(async move {
                        let _ = driver.send_logout(token, key).await;
                    });
                }
            }
            Action::AskSiblings => self.with_page(|p| p.ask()),
            Action::Announce(a) => self.announce(&a),
            Action::AnnounceLogout(reason) => self.with_page(|p| p.logout(reason.as_str())),
        }
    }

    /// Announces a token to the sibling tabs, with the key it is bound to when it is DPoP.
    pub(crate) fn announce(&self, a: &Announcement) {
        if !self.opts.cross_tab {
            return;
        }
        let key = match (&self.dpop, a.token.is_dpop()) {
            (Some(d), true) => d.current().map(|k| k.to_message()),
            _ => None,
        };
        self.with_page(|p| {
            p.announce(
                a.token.expose_secret(),
                a.received_at.as_millis() as f64,
                a.lifetime.as_millis() as u64 as f64,
                a.claims.as_deref(),
                key.as_ref(),
            )
        });
    }

    /// Resolves once no refresh is in flight (immediately if none is).
    /// (A `JsFuture` rather than an `async fn`: every caller awaits the same future type
    /// instead of a state machine of its own inlined into each.)
    pub(crate) fn settled(&self) -> JsFuture {
        let promise = if self.session.borrow().is_settled() {
            Promise::resolve(&JsValue::UNDEFINED)
        } else {
            let waiters = &self.waiters;
            Promise::new(&mut |resolve, _| waiters.borrow_mut().push(resolve))
        };
        JsFuture::from(promise)
    }

    /// Whether the token the session offers now is DPoP-bound (and this manager has its key).
    pub(crate) fn token_is_dpop(&self) -> bool {
        self.dpop.is_some() && {
            let now = self.now();
            self.session
                .borrow()
                .token(now)
                .is_some_and(|t| t.is_dpop())
        }
    }

    /// A copy of the token the session offers now (the caller zeroizes it).
    pub(crate) fn token_string(&self) -> Option<String> {
        let now = self.now();
        self.session
            .borrow()
            .token(now)
            .map(|t| t.expose_secret().to_owned())
    }

    /// `restore()`: resumes the session from another tab or through the refresh cookie.
    pub(crate) async fn restore(&self) -> Result<bool, JsValue> {
        self.last_error.take();
        self.input(|s, now| s.handle_restore(now));
        let _ = self.settled().await;
        let now = self.now();
        let failure = self.last_error.take();
        self.session
            .borrow()
            .restore_result(now, failure.as_ref())
            .map_err(|e| thrown(e))
    }

    /// `free()`: stops every timer, listener, request and lock wait, and drops the token.
    pub(crate) fn shutdown(&self) {
        // Every listener removed, the timer cleared, the channel closed.
        self.page.borrow_mut().take();
        self.armed.set(None);
        self.lock_waits.abort_all();
        self.requests.abort_all();
        if let Some(d) = &self.dpop {
            d.forget();
        }
        // Replacing the session drops the token, which zeroizes it.
        if let Ok(fresh) = Session::new(self.opts.config, 0) {
            *self.session.borrow_mut() = fresh;
        }
        self.claims.take();
        self.resume_handoff();
        for resolve in self.waiters.take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}
