//! Messages from sibling tabs (over the page's channel, `page.rs`) fed to the session: announced tokens
//! (verified first when verification is on), logouts, activity, and requests for the token.

use std::rc::Rc;

use token_manager_core::session::{Announcement, LogoutOrigin, TokenError};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

use crate::dpop::KeyPair;

use crate::driver::Driver;
use crate::page::Message;

impl Driver {
    /// The key of an announced token: `Some(None)` for a bearer token, `Some(Some(key))` for
    /// a DPoP-bound one this tab can use, `None` for one it cannot (no DPoP here, or no key).
    fn announced_key(
        &self,
        a: &Announcement,
        key: Option<&JsValue>,
    ) -> Option<Option<Rc<KeyPair>>> {
        if !a.token.is_dpop() {
            return Some(None);
        }
        self.dpop.as_ref()?;
        Some(Some(KeyPair::from_message(key?)?))
    }

    /// Offers an announced token to the session; when adopted, its key signs from now on.
    fn adopt(&self, a: Announcement, key: Option<Rc<KeyPair>>) {
        let issuer_now = self.server_now();
        let adopted = self.input(|s, now| s.handle_announcement(now, a, issuer_now));
        if let (Ok(true), Some(d), Some(key)) = (adopted, &self.dpop, key) {
            d.adopt(key);
        }
    }

    pub(crate) fn on_message(&self, message: Message) {
        match message {
            Message::Token(a, key) => {
                let Some(key) = self.announced_key(&a, key.as_ref()) else {
                    return;
                };
                if self.opts.verifier.is_none() {
                    // Refused announcements (another account or session, no `exp`) change
                    // nothing and are not reported: a sibling signing in as someone else is
                    // not this tab's error.
                    self.adopt(a, key);
                    return;
                }
                let Some(driver) = self.me.upgrade() else {
                    return;
                };
                spawn_local(async move {
                    match driver.check_token(a.token.expose_secret()).await {
                        Ok(()) => driver.adopt(a, key),
                        Err(e) => {
                            let now = driver.now();
                            let event = driver
                                .session
                                .borrow()
                                .refused_announcement(now, TokenError::from(e));
                            driver.dispatch(event);
                        }
                    }
                });
            }
            Message::Logout(reason) => {
                self.input(|s, now| s.handle_logout(now, LogoutOrigin::OtherTab, reason))
            }
            Message::Activity(at) => self.input(|s, now| s.handle_sibling_activity(now, at)),
            Message::Ask => {
                let now = self.now();
                let answer = self.session.borrow().announcement(now);
                if let Some(a) = answer {
                    self.announce(&a);
                }
            }
        }
    }
}
