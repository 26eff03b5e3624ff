//! The upstream mode's flags (issue 19), flattened into [`super::Cli`]: the provider, the
//! server's client at it, and where the callback may send the browser.

use clap::Args;

use crate::upstream::{UpstreamConfig, DEFAULT_UPSTREAM_SCOPES};

#[derive(Debug, Args)]
pub(super) struct UpstreamArgs {
    /// Sign users in at this OpenID Connect provider (the upstream mode, issue 19):
    /// discovery at start, no password login
    #[arg(long, value_name = "URL", env = "TOKEN_SERVER_UPSTREAM_ISSUER")]
    upstream_issuer: Option<String>,
    /// The server's client id at the provider (a confidential client)
    #[arg(long, value_name = "ID", env = "TOKEN_SERVER_UPSTREAM_CLIENT_ID")]
    upstream_client_id: Option<String>,
    /// File holding the client secret (client_secret_basic)
    #[arg(
        long,
        value_name = "PATH",
        env = "TOKEN_SERVER_UPSTREAM_CLIENT_SECRET_FILE"
    )]
    upstream_client_secret_file: Option<String>,
    /// Scopes to ask the provider for, space-separated
    #[arg(long, value_name = "SCOPES", env = "TOKEN_SERVER_UPSTREAM_SCOPES", default_value = DEFAULT_UPSTREAM_SCOPES)]
    upstream_scopes: String,
    /// The prompt parameter sent to the provider (consent: what OpenID Connect asks for
    /// with offline_access, and what strict providers need to issue a refresh token)
    #[arg(long, value_name = "PROMPT", env = "TOKEN_SERVER_UPSTREAM_PROMPT")]
    upstream_prompt: Option<String>,
    /// This server's /auth/callback URL, exactly as registered at the provider
    #[arg(long, value_name = "URL", env = "TOKEN_SERVER_REDIRECT_URI")]
    redirect_uri: Option<String>,
    /// Where /auth/callback may send the browser (returnTo): an origin, a URL or a /path;
    /// repeatable, comma-separated in the variable [default: /]
    #[arg(
        long,
        value_name = "URL",
        env = "TOKEN_SERVER_POST_LOGIN_REDIRECT",
        value_delimiter = ','
    )]
    post_login_redirect: Vec<String>,
}

impl UpstreamArgs {
    /// The upstream mode's flags, checked together; reads the client secret file.
    pub(super) fn config(&self) -> Result<Option<UpstreamConfig>, String> {
        let Some(issuer) = self.upstream_issuer.clone() else {
            let stray = self.upstream_client_id.is_some()
                || self.upstream_prompt.is_some()
                || self.upstream_client_secret_file.is_some()
                || self.redirect_uri.is_some()
                || !self.post_login_redirect.is_empty();
            return if stray {
                Err(
                    "--upstream-client-id, --upstream-client-secret-file, --redirect-uri and \
                     --post-login-redirect need --upstream-issuer"
                        .into(),
                )
            } else {
                Ok(None)
            };
        };
        let client_id = self
            .upstream_client_id
            .clone()
            .ok_or("--upstream-issuer needs --upstream-client-id")?;
        let redirect_uri = self
            .redirect_uri
            .clone()
            .ok_or("--upstream-issuer needs --redirect-uri (this server's /auth/callback)")?;
        let client_secret = match &self.upstream_client_secret_file {
            Some(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!("--upstream-client-secret-file: cannot read {path:?}: {e}")
                })?);
                let secret = text.trim().to_owned();
                if secret.is_empty() {
                    return Err(format!("--upstream-client-secret-file {path:?} is empty"));
                }
                zeroize::Zeroizing::new(secret)
            }
            // From the environment (Config::from_args_and_env), which refuses an empty one.
            None => zeroize::Zeroizing::new(String::new()),
        };
        let config = UpstreamConfig {
            issuer,
            client_id,
            client_secret,
            scopes: self
                .upstream_scopes
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            prompt: self.upstream_prompt.clone(),
            redirect_uri,
            post_login_redirects: self.post_login_redirect.clone(),
        };
        // The allowlist's errors name the entry: better at parse time than at start.
        crate::upstream::ReturnTo::new(&config.redirect_uri, &config.post_login_redirects)?;
        Ok(Some(config))
    }
}
