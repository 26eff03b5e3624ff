//! Messages from sibling tabs (over [`Channel`]) fed to the session: announced tokens
//! (verified first when verification is on), logouts, activity, and requests for the token.

use token_manager_core::session::{LogoutOrigin, TokenError};
use wasm_bindgen_futures::spawn_local;

use crate::channel::{Channel, Message};
use crate::driver::Driver;

impl Driver {
    /// Opens the cross-tab channel of this manager (with `crossTab`).
    pub(crate) fn open_channel(&self) {
        let me = self.me.clone();
        let channel = Channel::open(&self.lock_name, move |m| {
            if let Some(driver) = me.upgrade() {
                driver.on_message(m);
            }
        });
        *self.channel.borrow_mut() = channel;
    }

    fn on_message(&self, message: Message) {
        match message {
            Message::Token(a) if self.opts.verifier.is_some() => {
                let Some(driver) = self.me.upgrade() else {
                    return;
                };
                spawn_local(async move {
                    match driver.check_token(a.token.expose_secret()).await {
                        Ok(()) => {
                            let issuer_now = driver.server_now();
                            let _ =
                                driver.input(|s, now| s.handle_announcement(now, a, issuer_now));
                        }
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
            // Refused announcements (another account or session, no `exp`) change nothing and
            // are not reported: a sibling signing in as someone else is not this tab's error.
            Message::Token(a) => {
                let issuer_now = self.server_now();
                let _ = self.input(|s, now| s.handle_announcement(now, a, issuer_now));
            }
            Message::Logout(reason) => {
                self.input(|s, now| s.handle_logout(now, LogoutOrigin::OtherTab, reason))
            }
            Message::Activity(at) => self.input(|s, now| s.handle_sibling_activity(now, at)),
            Message::Ask => {
                let now = self.now();
                let answer = self.session.borrow().announcement(now);
                if let (Some(a), Some(c)) = (answer, self.channel.borrow().as_ref()) {
                    c.announce(&a);
                }
            }
        }
    }
}
