//! The login and logout requests of the JS API: the credentials sent as JSON text (checked and
//! serialized in JavaScript, `src/js/http.js`, so the password never enters wasm memory), the
//! answer classified by the core.

use std::rc::Rc;

use token_manager_core::message::{decimal, Message};
use token_manager_core::session::{classify_login_status, LoginError, LogoutOrigin, LogoutReason};
use token_manager_core::{AccessToken, ErrorCode};
use wasm_bindgen::JsValue;

use crate::dpop::{Dpop, KeyPair, SendError};
use crate::driver::Driver;
use crate::error::{coded, dpop_failed, thrown};
use crate::http::{self, Answer};

impl Driver {
    /// `login(credentials)`: resolves to the new token's claims.
    pub(crate) async fn login(&self, credentials: JsValue) -> Result<JsValue, JsValue> {
        let body = http::login_body(&credentials)?;
        // A login starts a new session, and with DPoP a new key.
        let (answer, key) = match self
            .token_request(self.opts.login_url(), Some(&body), None, true)
            .await
        {
            Ok(answer) => answer,
            Err(SendError::Proof) => return Err(dpop_failed()),
            Err(SendError::Fetch(_)) => {
                return Err(coded(
                    ErrorCode::NetworkError,
                    "the login request failed to reach the server",
                ))
            }
        };
        match answer.status() {
            200 => {
                let token = http::read_token(&answer, key.is_some()).map_err(|code| {
                    coded(code, "the login endpoint answered with an unusable body")
                })?;
                // Refused before the session sees it: a token that fails verification is
                // never used or announced, and a session already held is kept.
                self.check_token(token.token.expose_secret())
                    .await
                    .map_err(|e| thrown(&e))?;
                if let (Some(d), Some(key), true) = (&self.dpop, key, token.token.is_dpop()) {
                    d.adopt(key);
                }
                self.input(|s, now| s.handle_login(now, token))
                    .map_err(|e| thrown(&e))?;
                Ok(self.claims_object())
            }
            status => {
                let error = classify_login_status(status, answer.retry_after().is_some());
                let message = match error {
                    LoginError::InvalidCredentials | LoginError::RateLimited => error.message(),
                    // The server's own code (`forbidden_origin`…) helps whoever deploys.
                    LoginError::Forbidden | LoginError::Failed(_) => match answer.error_code() {
                        Some(detail) => [&error.message(), " (", &detail, ")"].concat(),
                        None => error.message(),
                    },
                };
                Err(coded(error.error_code(), &message))
            }
        }
    }

    /// The logout request, with the token so the server can deny it: as `Bearer`, or as
    /// `DPoP` with a proof of `key` (taken before the logout dropped it) when it is bound.
    pub(crate) async fn send_logout(
        &self,
        token: Option<AccessToken>,
        key: Option<Rc<KeyPair>>,
    ) -> Result<Answer, JsValue> {
        let url = self.opts.logout_url();
        let secret = token.as_ref().map(|t| t.expose_secret());
        match (&self.dpop, key, &token) {
            (Some(d), Some(key), Some(t)) if t.is_dpop() => d
                .exchange(self, &key, url, secret, &|proof| {
                    http::auth_request(url, None, secret, None, Some(proof))
                })
                .await
                .map_err(|e| match e {
                    SendError::Fetch(e) => e,
                    SendError::Proof => dpop_failed(),
                }),
            _ => http::post(&http::auth_request(url, None, secret, None, None)?).await,
        }
    }

    /// `logout()`: clears the token at once, then tells the server.
    pub(crate) async fn logout(&self) -> Result<JsValue, JsValue> {
        let now = self.now();
        let token = self.session.borrow().token(now).cloned();
        let key = self.dpop.as_ref().and_then(Dpop::current);
        self.input(|s, now| s.handle_logout(now, LogoutOrigin::Local, LogoutReason::User));
        let answer = self.send_logout(token, key).await.map_err(|_| {
            coded(
                ErrorCode::LogoutFailed,
                "the logout request failed to reach the server",
            )
        })?;
        match answer.status() {
            // `{ endSessionUrl }` when the server (upstream mode) answered the identity provider's
            // end-session URL, so the app can navigate there for RP-initiated logout.
            200 => Ok(http::logout_result(&answer)),
            201..=299 | 401 => Ok(js_sys::Object::new().into()),
            status => Err(coded(
                ErrorCode::LogoutFailed,
                &["the logout endpoint answered ", &decimal(status.into())].concat(),
            )),
        }
    }
}
