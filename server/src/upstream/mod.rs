//! The upstream mode (issue 19): the server as a token-mediating backend, a confidential
//! OpenID Connect client of the team's own provider. The browser signs in at the provider
//! (authorization code + PKCE), the provider's refresh token stays here, sealed, and the
//! SPA receives only the provider's short-lived access tokens through the usual
//! cookie-based `/auth/refresh`.
//!
//! The protocol is the `openidconnect` crate's: discovery, the authorization URL, the code
//! and refresh exchanges, RFC 7009 revocation, and ID token validation (signature through
//! the provider's JWKS, `iss`, `aud`, `azp`, `exp`, `nonce`; `alg: none` refused). This module
//! holds the client and the calls; `flow` the sign-in state cookie, `tokens` what is stored
//! per family, `jwks` the provider's signing keys (read again when they rotate); the
//! handlers are in `routes/upstream/`.

mod config;
pub(crate) mod flow;
mod jwks;
pub(crate) mod tokens;

pub(crate) use config::ReturnTo;
pub use config::{UpstreamConfig, DEFAULT_UPSTREAM_SCOPES, UPSTREAM_CLIENT_SECRET_ENV};

use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreIdToken, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, LogoutProviderMetadata,
    LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::store::KeyEncryptionKey;
use tokens::UpstreamTokens;

/// Every call to the provider gives up after this long: a slow provider is a provider
/// that is down (503 + `Retry-After`), not a request that hangs.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The `revocation_endpoint` of RFC 8414 / RFC 7009, which core discovery does not read.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct RevocationMetadata {
    revocation_endpoint: Option<RevocationUrl>,
}
impl AdditionalProviderMetadata for RevocationMetadata {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<RevocationMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a call to the provider did not give tokens.
#[derive(Debug)]
pub(crate) enum ProviderError {
    /// The provider refused the grant (`invalid_grant`): the code was used or expired, the
    /// refresh token was revoked upstream.
    InvalidGrant,
    /// Unreachable, slow, a 5xx, an answer that does not parse, or another error code:
    /// nothing was decided, try again later.
    Unavailable(String),
    /// The ID token failed validation (signature, `iss`, `aud`, `azp`, `exp`, `nonce`, alg).
    InvalidIdToken(String),
}

fn classify<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r)
            if *r.error() == CoreErrorResponseType::InvalidGrant =>
        {
            ProviderError::InvalidGrant
        }
        // The error code only: descriptions are the provider's text, and a parse error
        // carries the body, which may hold tokens.
        RequestTokenError::ServerResponse(r) => {
            ProviderError::Unavailable(format!("the provider answered {}", r.error()))
        }
        RequestTokenError::Request(_) => {
            ProviderError::Unavailable("the provider is unreachable or too slow".into())
        }
        RequestTokenError::Parse(..) => {
            ProviderError::Unavailable("the provider's answer does not parse".into())
        }
        RequestTokenError::Other(_) => {
            ProviderError::Unavailable("the provider's answer is unexpected".into())
        }
    }
}

/// The provider, discovered, and the client registered there.
pub(crate) struct Upstream {
    metadata: Metadata,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    prompt: Option<String>,
    http: openidconnect::reqwest::Client,
    /// The provider's signing keys: discovery's, then as read again.
    keys: jwks::ProviderKeys,
    pub(crate) return_to: ReturnTo,
    /// Seals the provider's tokens at rest and the sign-in state cookie.
    pub(crate) kek: KeyEncryptionKey,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("issuer", &self.metadata.issuer().as_str())
            .field("client_id", &self.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// What discovery found, before the key-encryption key is known.
pub(crate) struct Discovered {
    metadata: Metadata,
    config: UpstreamConfig,
    http: openidconnect::reqwest::Client,
    return_to: ReturnTo,
}

/// Reads the provider's discovery document. Called once at startup: a provider that
/// cannot be reached then is a start error that says so (deployments start the provider
/// first, or restart the server until it is up), never a server that answers 500s.
pub(crate) async fn discover(config: &UpstreamConfig) -> Result<Discovered, String> {
    let return_to = ReturnTo::new(&config.redirect_uri, &config.post_login_redirects)?;
    RedirectUrl::new(config.redirect_uri.clone())
        .map_err(|_| "--redirect-uri is not a URL".to_owned())?;
    let issuer = IssuerUrl::new(config.issuer.clone())
        .map_err(|_| "--upstream-issuer is not a URL".to_owned())?;
    let http = openidconnect::reqwest::ClientBuilder::new()
        // Following redirects would let a provider's answer send us anywhere (SSRF).
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let metadata = Metadata::discover_async(issuer, &http).await.map_err(|e| {
        format!(
            "cannot read the discovery document of --upstream-issuer {}: {e} \
                 (is the provider up and the issuer exact?)",
            config.issuer
        )
    })?;
    if metadata.token_endpoint().is_none() {
        return Err("the provider's discovery document has no token_endpoint".into());
    }
    Ok(Discovered {
        metadata,
        config: config.clone(),
        http,
        return_to,
    })
}

/// The sign-in request the browser is sent to, and the secrets the callback needs.
pub(crate) struct AuthorizeRequest {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
}

impl Upstream {
    pub(crate) fn new(discovered: Discovered, kek: KeyEncryptionKey) -> Self {
        let Discovered {
            metadata,
            config,
            http,
            return_to,
        } = discovered;
        Self {
            keys: jwks::ProviderKeys::new(metadata.jwks().clone()),
            metadata,
            client_id: ClientId::new(config.client_id),
            client_secret: ClientSecret::new(config.client_secret.to_string()),
            // Checked by `discover`.
            redirect: RedirectUrl::new(config.redirect_uri)
                .unwrap_or_else(|_| RedirectUrl::new("http://invalid/".into()).expect("url")),
            scopes: config.scopes,
            prompt: config.prompt,
            http,
            return_to,
            kek,
        }
    }

    fn client(&self) -> Client {
        CoreClient::from_provider_metadata(
            self.metadata.clone().set_jwks(self.keys.current()),
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// A new authorization code + PKCE (S256) request with fresh `state` and `nonce`.
    pub(crate) fn authorize(&self) -> AuthorizeRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        // The crate always sends `openid`.
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(prompt) = &self.prompt {
            request = request.add_extra_param("prompt", prompt.clone());
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        AuthorizeRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code and validates the ID token against `nonce`. `now` (the server's
    /// clock) dates the access token's expiry.
    pub(crate) async fn exchange_code(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: &str,
        now: u64,
    ) -> Result<(String, UpstreamTokens), ProviderError> {
        let client = self.client();
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(classify)?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::InvalidIdToken("the answer has no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // Signed by a key we have not read: the provider may have rotated.
                self.refetch_keys(now).await?;
                id_token.claims(&self.client().id_token_verifier(), &nonce)
            }
            verified => verified,
        }
        .map_err(|e| ProviderError::InvalidIdToken(e.to_string()))?;
        let subject = claims.subject().as_str().to_owned();
        let mut shown = serde_json::to_value(claims)
            .map_err(|e| ProviderError::InvalidIdToken(e.to_string()))?;
        if let Some(map) = shown.as_object_mut() {
            // Claims for the UI: the nonce means nothing there.
            map.remove("nonce");
        }
        let tokens =
            UpstreamTokens::from_response(&response, Some(id_token.to_string()), shown, now);
        Ok((subject, tokens))
    }

    /// Reads the provider's JWKS again (at most once per cooldown, [`jwks`]).
    async fn refetch_keys(&self, now: u64) -> Result<(), ProviderError> {
        let fetch = || async {
            CoreJsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
                .await
                .map_err(|_| "cannot read the provider's JWKS".to_owned())
        };
        match self.keys.refetch(now, fetch).await {
            Ok(read) => {
                tracing::info!(read, "upstream_jwks");
                Ok(())
            }
            Err(detail) => Err(ProviderError::Unavailable(detail)),
        }
    }

    /// Uses the provider's refresh token. The provider may rotate it (the answer then
    /// carries the new one, which replaces it); the ID token and its claims are kept.
    pub(crate) async fn refresh(
        &self,
        current: &UpstreamTokens,
        now: u64,
    ) -> Result<UpstreamTokens, ProviderError> {
        let Some(refresh_token) = current.refresh_token.as_deref() else {
            // No offline_access: once the access token expires the session is over.
            return Err(ProviderError::InvalidGrant);
        };
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let client = self.client();
        let response = client
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(classify)?;
        Ok(current.refreshed(&response, now))
    }

    /// Revokes the provider's refresh token (RFC 7009) when the provider advertises a
    /// revocation endpoint. `Ok(false)`: it does not.
    ///
    /// The request is built here rather than by the crate, whose revocation refuses any
    /// endpoint that is not `https:` (a loopback provider in the tests, a sidecar): a form
    /// POST of `token` and `token_type_hint` with the client's Basic credentials
    /// (form-encoded first, RFC 6749 §2.3.1).
    pub(crate) async fn revoke(&self, tokens: &UpstreamTokens) -> Result<bool, String> {
        let (Some(url), Some(token)) = (
            self.metadata
                .additional_metadata()
                .additional_metadata
                .revocation_endpoint
                .clone(),
            tokens.refresh_token.as_deref(),
        ) else {
            return Ok(false);
        };
        let encode = |v: &str| -> String {
            openidconnect::url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
        };
        let body: String = openidconnect::url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "refresh_token")
            .finish();
        let response = self
            .http
            .post(url.url().clone())
            .basic_auth(
                encode(self.client_id.as_str()),
                Some(encode(self.client_secret.secret())),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|_| "the provider is unreachable or too slow".to_owned())?;
        // RFC 7009 §2.2: 200 whether or not the token was still valid.
        match response.status().as_u16() {
            200 => Ok(true),
            status => Err(format!("the revocation endpoint answered {status}")),
        }
    }

    /// The provider's end-session URL for RP-initiated logout, with `id_token_hint`,
    /// `client_id` and `post_logout_redirect_uri` (this server's root), if the provider
    /// advertises `end_session_endpoint`.
    pub(crate) fn end_session_url(&self, tokens: &UpstreamTokens) -> Option<String> {
        let endpoint = self
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint).set_client_id(self.client_id.clone());
        if let Some(id_token) = tokens
            .id_token
            .as_deref()
            .and_then(|t| t.parse::<CoreIdToken>().ok())
        {
            request = request.set_id_token_hint(&id_token);
        }
        if let Ok(back) = PostLogoutRedirectUrl::new(format!("{}/", self.return_to.own_origin())) {
            request = request.set_post_logout_redirect_uri(back);
        }
        Some(request.http_get_url().to_string())
    }
}
