//! One refresh attempt: the cross-tab lock (with its takeover), the request to the refresh
//! endpoint, verification of the token received, and the outcome fed back to the session.

use std::rc::Rc;

use js_sys::Promise;
use token_manager_core::session::{RefreshId, RefreshOutcome, TokenError, TransientKind};
use token_manager_core::verify::VerifyError;
use token_manager_core::Timestamp;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

use crate::clock;
use crate::dpop::{KeyPair, SendError};
use crate::driver::Driver;
use crate::http::{self, Answer};
use crate::lock;

impl Driver {
    /// Notes the issuer's clock from a response's `Date` header.
    pub(crate) fn observe_server_date(&self, date: Option<&str>) {
        let mut server_clock = self.server_clock.get();
        server_clock.observe(date, clock::wall());
        self.server_clock.set(server_clock);
    }

    /// Our best estimate of the issuer's current time.
    pub(crate) fn server_now(&self) -> Timestamp {
        self.server_clock.get().now(clock::wall())
    }

    /// A request to a token endpoint (login, refresh): with DPoP, a proof of the session's key
    /// (`fresh_key`: a new one) and one retry with the server's nonce if it asks; the key
    /// comes back with the answer.
    pub(crate) async fn token_request(
        &self,
        url: &str,
        body: Option<&JsValue>,
        signal: Option<&AbortSignal>,
        fresh_key: bool,
    ) -> Result<(Answer, Option<Rc<KeyPair>>), SendError> {
        let Some(d) = &self.dpop else {
            let request =
                http::auth_request(url, body, None, signal, None).map_err(SendError::Fetch)?;
            let answer = http::post(&request).await.map_err(SendError::Fetch)?;
            self.observe_server_date(answer.date().as_deref());
            return Ok((answer, None));
        };
        let key = d.key(fresh_key).await?;
        let answer = d
            .exchange(self, &key, url, None, &|proof| {
                http::auth_request(url, body, None, signal, Some(proof))
            })
            .await?;
        Ok((answer, Some(key)))
    }

    /// Verifies a received token when verification is on.
    pub(crate) async fn check_token(&self, token: &str) -> Result<(), VerifyError> {
        match &self.opts.verifier {
            None => Ok(()),
            Some(v) => v.verify(token, self.server_now()).await.map(|_| ()),
        }
    }

    /// Resolves once the hand-off wait is over (an announcement, the deadline, or the attempt
    /// ended): the pump checks after every input, and the timer fires at the deadline.
    fn handoff_ended(&self) -> JsFuture {
        let handoff = &self.handoff;
        JsFuture::from(Promise::new(&mut |resume, _| handoff.set(Some(resume))))
    }

    /// Resumes the attempt waiting for a hand-off once the session no longer holds it there
    /// (`free()` replaces the session, which ends it too).
    pub(crate) fn resume_handoff(&self) {
        if !self.session.borrow().in_handoff() {
            if let Some(resume) = self.handoff.take() {
                let _ = resume.call0(&JsValue::UNDEFINED);
            }
        }
    }

    /// One refresh attempt: under the cross-tab lock when enabled, so the tabs queue and all
    /// but the first find the token already adopted. A wait longer than `lock_timeout` means
    /// the holder has stopped: the session asks for the lock to be taken over (`steal`).
    pub(crate) async fn run_refresh(self: Rc<Self>, id: RefreshId, signal: AbortSignal) {
        if !self.opts.cross_tab {
            self.clone().refresh_request(id, signal).await;
            let _ = self.requests.take(id);
            return;
        }
        // The attempt's work under the lock (granted or stolen).
        let (driver, sig) = (self.clone(), signal.clone());
        let work = move |contended| {
            crate::promise(async move {
                driver.input(|s, now| s.handle_lock_granted(now, id, contended));
                // After a contended grant, the previous holder's announcement may still be on
                // its way: the session says how long to wait for it.
                if driver.session.borrow().in_handoff() {
                    let _ = driver.handoff_ended().await;
                }
                driver.refresh_request(id, sig).await;
                Ok(JsValue::UNDEFINED)
            })
        };
        match AbortController::new() {
            Ok(wait) => {
                self.lock_waits.insert(id, wait.clone());
                lock::run_locked(&self.lock_name, &wait.signal(), &signal, work).await;
                let _ = self.lock_waits.take(id);
            }
            // No controller to wait for the lock with: the work runs without it.
            Err(_) => {
                let _ = JsFuture::from(work(false)).await;
            }
        }
        let _ = self.requests.take(id);
    }

    async fn refresh_request(self: Rc<Self>, id: RefreshId, signal: AbortSignal) {
        let now = self.now();
        if !self.session.borrow().refresh_still_needed(now, id) {
            self.input(|s, now| s.handle_refresh_outcome(now, id, RefreshOutcome::LostRace));
            return;
        }
        let (mut outcome, key) = match self
            .token_request(self.opts.refresh_url(), None, Some(&signal), false)
            .await
        {
            Ok((answer, key)) => (
                http::refresh_outcome(&answer, clock::wall(), key.is_some()),
                key,
            ),
            Err(SendError::Proof) => (RefreshOutcome::Transient(TransientKind::DpopProof), None),
            Err(SendError::Fetch(_)) => (RefreshOutcome::Transient(TransientKind::Network), None),
        };
        if let RefreshOutcome::Success(received) = &outcome {
            if let Err(e) = self.check_token(received.token.expose_secret()).await {
                outcome = RefreshOutcome::Refused(TokenError::from(e));
            }
        }
        // An aborted attempt was already settled by the session (timeout, login, logout).
        if !signal.aborted() {
            // The new token is bound to the key that signed this request's proof (a sibling's
            // key may have arrived meanwhile): that key signs from now on, and is announced.
            if let (Some(d), Some(key), RefreshOutcome::Success(r)) = (&self.dpop, key, &outcome) {
                if r.token.is_dpop() {
                    d.adopt(key);
                }
            }
            self.input(|s, now| s.handle_refresh_outcome(now, id, outcome));
        }
    }
}
