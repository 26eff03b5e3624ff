//! `TokenManager`: the JavaScript API, kept thin. Each method hands its work to the
//! [`Driver`] (see `driver.rs` for how inputs reach the session and actions leave it).

use std::rc::Rc;

use js_sys::{Function, Promise};
use token_manager_core::message::Message;
use token_manager_core::ErrorCode;
use token_manager_core::Session;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::authorized_fetch::authorized_fetch;
use crate::driver::Driver;
use crate::error::coded;
use crate::events::listen;
use crate::options::Options;

fn random_seed() -> u64 {
    let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (hi << 32) | lo
}

/// Keeps an access token in memory, refreshes it before it expires through the refresh
/// cookie, and attaches it to API requests. See the README for the full API.
#[wasm_bindgen]
pub struct TokenManager {
    pub(crate) driver: Rc<Driver>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field(
                "state",
                &self.driver.session.borrow().state(self.driver.now()),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        self.driver.shutdown();
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
        let session = Session::new(opts.config, random_seed())
            .map_err(|e| coded(ErrorCode::InvalidOption, &e.message()))?;
        let driver = Driver::new(opts, session, EventTarget::new()?);
        Ok(TokenManager { driver })
    }

    /// On page load: resume the session from another tab or through the refresh cookie.
    /// Resolves `true` when signed in, `false` when there is no session; rejects with the
    /// error when the first attempt failed transiently (retries continue in the background
    /// and a later success fires `login`).
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn restore(&self) -> Promise {
        let driver = self.driver.clone();
        crate::promise(async move { driver.restore().await.map(Into::into) })
    }

    /// Signs in with the given credentials (the JSON body of the login endpoint; the reference
    /// server expects `{ username, password }`). Resolves to the new token's claims.
    #[wasm_bindgen(unchecked_return_type = "Promise<Claims>")]
    pub fn login(
        &self,
        #[wasm_bindgen(unchecked_param_type = "LoginCredentials")] credentials: JsValue,
    ) -> Promise {
        let driver = self.driver.clone();
        crate::promise(async move { driver.login(credentials).await })
    }

    /// Signs out in every tab: clears the token at once, then asks the server to revoke the
    /// refresh cookie and deny the access token. Rejects with `logout_failed` when the server
    /// could not be told (the token is cleared locally all the same). Resolves to
    /// `{ endSessionUrl }` when the server (upstream mode) answered the identity provider's
    /// end-session URL: navigate there to end the provider's session too.
    #[wasm_bindgen(unchecked_return_type = "Promise<LogoutResult>")]
    pub fn logout(&self) -> Promise {
        let driver = self.driver.clone();
        crate::promise(async move { driver.logout().await })
    }

    /// The current token's claims as a frozen plain object (the same object until the token
    /// changes), or `null` when signed out. Unverified: for display, not for authorization.
    #[wasm_bindgen(unchecked_return_type = "Claims | null")]
    pub fn claims(&self) -> JsValue {
        self.driver.claims_object()
    }

    /// Whether a token that may still be used is held.
    #[wasm_bindgen(js_name = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        let now = self.driver.now();
        self.driver.session.borrow().token(now).is_some()
    }

    /// When the current token expires, in milliseconds since the epoch (like `Date.now()`).
    #[wasm_bindgen(js_name = expiresAt)]
    pub fn expires_at(&self) -> Option<f64> {
        let at = self.driver.session.borrow().expires_at()?;
        Some(self.driver.to_wall(at))
    }

    /// When the next refresh is due, in milliseconds since the epoch, or `null`.
    #[wasm_bindgen(js_name = refreshAt)]
    pub fn refresh_at(&self) -> Option<f64> {
        let at = self.driver.session.borrow().refresh_due()?;
        Some(self.driver.to_wall(at))
    }

    /// `signedOut`, `signedIn`, `refreshing` or `expired` (at once when the token is no longer
    /// usable, e.g. after the machine slept past its expiry, before any event says so).
    #[wasm_bindgen(getter, unchecked_return_type = "SessionState")]
    pub fn state(&self) -> JsValue {
        let state = self.driver.session.borrow().state(self.driver.now());
        state.as_str().into()
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
        authorized_fetch(&self.driver, &input, &init.unwrap_or(JsValue::UNDEFINED))
    }

    /// Listens for `login`, `refresh`, `logout`, `expired`, `error`, `statechange`, `idle` or
    /// `active`.
    #[wasm_bindgen(js_name = addEventListener, skip_typescript)]
    pub fn add_event_listener(&self, kind: JsValue, listener: &Function) -> Result<(), JsValue> {
        listen(&self.driver.target, &kind, listener, true)
    }

    /// Removes a listener added with `addEventListener`.
    #[wasm_bindgen(js_name = removeEventListener, skip_typescript)]
    pub fn remove_event_listener(&self, kind: JsValue, listener: &Function) -> Result<(), JsValue> {
        listen(&self.driver.target, &kind, listener, false)
    }

    /// The raw access token. Throws `token_not_exposed` unless the manager was created with
    /// `exposeToken: true`: by default only `fetch` ever sees the token.
    #[wasm_bindgen(js_name = getAccessToken, unchecked_return_type = "string | undefined")]
    pub fn get_access_token(&self) -> Result<JsValue, JsValue> {
        if !self.driver.opts.expose_token {
            return Err(coded(
                ErrorCode::TokenNotExposed,
                "getAccessToken() needs the option exposeToken: true; use auth.fetch() instead",
            ));
        }
        // Made into a JS string from the session's own copy: no second copy of the token is
        // left (unzeroized) in wasm memory, as returning a `String` would.
        let now = self.driver.now();
        let session = self.driver.session.borrow();
        Ok(session
            .token(now)
            .map_or(JsValue::UNDEFINED, |t| t.expose_secret().into()))
    }
}
