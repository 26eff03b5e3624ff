//! `loginWithRedirect()`: with a server in its upstream mode (issue 19) signing in is a
//! navigation, to the authorize endpoint, which sends the browser on to the identity provider
//! and, through its callback, back to `returnTo`. No token is involved here: on the page load
//! that follows, `restore()` finds the session through the refresh cookie, as on any reload.

use wasm_bindgen::prelude::*;

use crate::manager::TokenManager;

#[wasm_bindgen(module = "/src/js/redirect.js")]
extern "C" {
    /// `returnTo` of the options, or this page's path and query, encoded for a query;
    /// `invalid_option` when it is not a string.
    #[wasm_bindgen(catch, js_name = returnTo)]
    fn return_to(options: &JsValue) -> Result<String, JsValue>;
    #[wasm_bindgen(catch)]
    fn navigate(url: &str) -> Result<(), JsValue>;
}

#[wasm_bindgen]
impl TokenManager {
    /// Sends the browser to the server's authorize endpoint (`authorizeUrl`) with
    /// `returnTo` (default: this page's path and query). The page unloads; after the sign-in
    /// at the provider the server sends the browser back to `returnTo`, where `restore()`
    /// finds the session.
    #[wasm_bindgen(js_name = loginWithRedirect)]
    pub fn login_with_redirect(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LoginWithRedirectOptions")] options: Option<
            JsValue,
        >,
    ) -> Result<(), JsValue> {
        let encoded = return_to(&options.unwrap_or(JsValue::UNDEFINED))?;
        navigate(&with_return_to(self.driver.opts.authorize_url(), &encoded))?;
        Ok(())
    }
}

/// The authorize URL with `returnTo` (already encoded) added to its query.
fn with_return_to(base: &str, encoded: &str) -> String {
    // A byte loop: `contains` links `memchr` (about 330 bytes of wasm) for this one call.
    let separator = if base.bytes().any(|b| b == b'?') {
        "&returnTo="
    } else {
        "?returnTo="
    };
    // Concatenated, not `format!`: the browser path links no `core::fmt`.
    [base, separator, encoded].concat()
}

#[cfg(test)]
mod tests {
    use super::with_return_to;

    #[test]
    fn return_to_joins_the_authorize_urls_own_query_or_starts_one() {
        assert_eq!(
            with_return_to("/auth/authorize", "%2Fa"),
            "/auth/authorize?returnTo=%2Fa"
        );
        assert_eq!(
            with_return_to("/auth/authorize?prompt=login", "%2Fa"),
            "/auth/authorize?prompt=login&returnTo=%2Fa"
        );
    }
}
