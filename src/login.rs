//! The login and logout requests of the JS API: the credentials sent as JSON text (serialized
//! in JavaScript, so the password never enters wasm memory), the answer classified by the core.

use js_sys::{Array, JSON};
use token_manager_core::message::{decimal, Message};
use token_manager_core::session::{classify_login_status, LoginError, LogoutOrigin, LogoutReason};
use token_manager_core::ErrorCode;
use wasm_bindgen::JsValue;
use zeroize::Zeroize;

use crate::driver::Driver;
use crate::error::{coded, invalid_argument, thrown};
use crate::http;

impl Driver {
    /// `login(credentials)`: resolves to the new token's claims.
    pub(crate) async fn login(&self, credentials: JsValue) -> Result<JsValue, JsValue> {
        if !credentials.is_object() || Array::is_array(&credentials) {
            return Err(invalid_argument(
                "login(credentials) needs an object such as { username, password }",
            ));
        }
        let body: JsValue = JSON::stringify(&credentials)
            .map_err(|_| invalid_argument("credentials must be JSON-serializable"))?
            .into();
        let request = http::auth_request(&self.opts.login_url, Some(&body), None, None)?;
        let response = http::fetch(&request).await.map_err(|_| {
            coded(
                ErrorCode::NetworkError,
                "the login request failed to reach the server",
            )
        })?;
        self.observe_server_date(&response);
        match response.status() {
            200 => {
                let token = http::read_token(&response).await.map_err(|code| {
                    coded(code, "the login endpoint answered with an unusable body")
                })?;
                // Refused before the session sees it: a token that fails verification is
                // never used or announced, and a session already held is kept.
                self.check_token(token.token.expose_secret())
                    .await
                    .map_err(|e| thrown(&e))?;
                self.input(|s, now| s.handle_login(now, token))
                    .map_err(|e| thrown(&e))?;
                Ok(self.claims_object())
            }
            status => {
                let retry_after = response.headers().has("Retry-After").unwrap_or(false);
                let error = classify_login_status(status, retry_after);
                let message = match error {
                    LoginError::InvalidCredentials | LoginError::RateLimited => error.message(),
                    // The server's own code (`forbidden_origin`…) helps whoever deploys.
                    LoginError::Forbidden | LoginError::Failed(_) => {
                        match http::error_code(&response).await {
                            Some(detail) => [&error.message(), " (", &detail, ")"].concat(),
                            None => error.message(),
                        }
                    }
                };
                Err(coded(error.error_code(), &message))
            }
        }
    }

    /// `logout()`: clears the token at once, then tells the server.
    pub(crate) async fn logout(&self) -> Result<JsValue, JsValue> {
        let mut token = self.token_string();
        self.input(|s, now| s.handle_logout(now, LogoutOrigin::Local, LogoutReason::User));
        let request = http::auth_request(&self.opts.logout_url, None, token.as_deref(), None);
        if let Some(t) = token.as_mut() {
            t.zeroize();
        }
        let response = http::fetch(&request?).await.map_err(|_| {
            coded(
                ErrorCode::LogoutFailed,
                "the logout request failed to reach the server",
            )
        })?;
        match response.status() {
            200..=299 | 401 => Ok(JsValue::UNDEFINED),
            status => Err(coded(
                ErrorCode::LogoutFailed,
                &["the logout endpoint answered ", &decimal(status.into())].concat(),
            )),
        }
    }
}
