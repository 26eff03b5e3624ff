//! Test switches (`--test-switches` only): injected refresh failures, delays and a lost
//! response, plus counters, so the demo page and the end-to-end tests can show how the
//! browser layer copes. Without the flag every `/test/*` path answers 404.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Body of `POST /test/fail-refresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FailRefresh {
    pub(crate) count: u32,
    pub(crate) status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after: Option<u64>,
}

/// Body of `POST /test/delay`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Delay {
    pub(crate) ms: u64,
}

/// The switches in force; also the answer of every switch endpoint.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SwitchState {
    pub(crate) fail_refresh: Option<FailRefresh>,
    pub(crate) delay_ms: u64,
    pub(crate) drop_next_refresh: bool,
}

/// What the next refresh must do before it touches the database.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RefreshPlan {
    pub(crate) delay_ms: u64,
    pub(crate) fail: Option<(u16, Option<u64>)>,
    pub(crate) drop_response: bool,
}

/// Code a test runs at a fixed point of a request, to force an interleaving.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
pub(crate) struct Switches {
    state: Mutex<SwitchState>,
    /// Runs on the blocking pool just before a refresh's database transaction.
    before_refresh_transaction: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for Switches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switches")
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl Switches {
    fn lock(&self) -> std::sync::MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_before_refresh_transaction(&self, hook: Option<Hook>) {
        *self
            .before_refresh_transaction
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = hook;
    }

    /// Runs the hook, if a test set one. Cloned out first so the hook may take any lock.
    pub(crate) fn run_before_refresh_transaction(&self) {
        let hook = self
            .before_refresh_transaction
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    pub(crate) fn set_fail(&self, fail: FailRefresh) -> SwitchState {
        let mut s = self.lock();
        s.fail_refresh = (fail.count > 0).then_some(fail);
        s.clone()
    }

    pub(crate) fn set_delay(&self, ms: u64) -> SwitchState {
        let mut s = self.lock();
        s.delay_ms = ms;
        s.clone()
    }

    pub(crate) fn set_drop_next(&self) -> SwitchState {
        let mut s = self.lock();
        s.drop_next_refresh = true;
        s.clone()
    }

    pub(crate) fn reset(&self) -> SwitchState {
        let mut s = self.lock();
        *s = SwitchState::default();
        s.clone()
    }

    /// Consumes one injected failure, or the drop flag if no failure is pending.
    pub(crate) fn plan_refresh(&self) -> RefreshPlan {
        let mut s = self.lock();
        let mut plan = RefreshPlan {
            delay_ms: s.delay_ms,
            ..RefreshPlan::default()
        };
        if let Some(fail) = s.fail_refresh.as_mut() {
            plan.fail = Some((fail.status, fail.retry_after));
            fail.count -= 1;
            if fail.count == 0 {
                s.fail_refresh = None;
            }
        } else if s.drop_next_refresh {
            plan.drop_response = true;
            s.drop_next_refresh = false;
        }
        plan
    }
}

/// Counters served by `GET /test/stats` (always counted, served only with the switches on).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) login: AtomicU64,
    pub(crate) login_failed: AtomicU64,
    pub(crate) refresh_requests: AtomicU64,
    pub(crate) refresh_ok: AtomicU64,
    pub(crate) refresh_failed: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) grace_replays: AtomicU64,
    pub(crate) reuse_detected: AtomicU64,
    pub(crate) logout: AtomicU64,
    pub(crate) api_me: AtomicU64,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Successful logins.
    pub login: u64,
    /// Refused logins (bad credentials or bad requests).
    pub login_failed: u64,
    /// `POST /auth/refresh` requests received (preflights excluded).
    pub refresh_requests: u64,
    /// Refreshes answered 200.
    pub refresh_ok: u64,
    /// Refreshes answered with an error, injected failures and dropped responses included.
    pub refresh_failed: u64,
    /// Refreshes that minted a new refresh token.
    pub rotations: u64,
    /// Refreshes answered, within the grace window, with the already-current token.
    pub grace_replays: u64,
    /// Replays after the grace window (each revoked a family).
    pub reuse_detected: u64,
    /// Logouts answered 204.
    pub logout: u64,
    /// `GET /api/me` answered 200.
    pub api_me: u64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            login: g(&self.login),
            login_failed: g(&self.login_failed),
            refresh_requests: g(&self.refresh_requests),
            refresh_ok: g(&self.refresh_ok),
            refresh_failed: g(&self.refresh_failed),
            rotations: g(&self.rotations),
            grace_replays: g(&self.grace_replays),
            reuse_detected: g(&self.reuse_detected),
            logout: g(&self.logout),
            api_me: g(&self.api_me),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.login,
            &self.login_failed,
            &self.refresh_requests,
            &self.refresh_ok,
            &self.refresh_failed,
            &self.rotations,
            &self.grace_replays,
            &self.reuse_detected,
            &self.logout,
            &self.api_me,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
