//! What the upstream mode is configured with ([`UpstreamConfig`], from the `--upstream-*`,
//! `--redirect-uri` and `--post-login-redirect` flags), and the `returnTo` allowlist that
//! keeps `/auth/callback` from being an open redirect.

use openidconnect::url::Url;

/// Default `--upstream-scopes`.
pub const DEFAULT_UPSTREAM_SCOPES: &str = "openid profile email offline_access";

/// The environment variable holding the client secret when no file is given.
pub const UPSTREAM_CLIENT_SECRET_ENV: &str = "TOKEN_SERVER_UPSTREAM_CLIENT_SECRET";

/// The server as a confidential client of an OpenID Connect provider. Secret: `Debug`
/// redacts the client secret.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// The provider's issuer; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client registered at the provider.
    pub client_id: String,
    /// Its secret (client_secret_basic).
    pub client_secret: zeroize::Zeroizing<String>,
    /// Scopes asked for; `openid` is always sent.
    pub scopes: Vec<String>,
    /// The `prompt` parameter of the authorization request, if any. OpenID Connect Core
    /// §11 asks for `consent` with `offline_access`; strict providers (oidc-provider) issue
    /// no refresh token without it, Keycloak, Auth0 and Entra ID do.
    pub prompt: Option<String>,
    /// This server's `/auth/callback`, exactly as registered at the provider.
    pub redirect_uri: String,
    /// Where `/auth/callback` may send the browser: origins (any path on them), absolute
    /// URLs or paths (exactly that path). Empty: only `/`.
    pub post_login_redirects: Vec<String>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("prompt", &self.prompt)
            .field("redirect_uri", &self.redirect_uri)
            .field("post_login_redirects", &self.post_login_redirects)
            .finish()
    }
}

/// One `--post-login-redirect` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// `https://app.example`: any path on that origin.
    Origin(String),
    /// `https://app.example/app/`: that origin and exactly that path.
    Url(String, String),
    /// `/app/`: this server's origin and exactly that path.
    Path(String),
}

/// The allowlist of `returnTo` targets.
#[derive(Debug, Clone)]
pub(crate) struct ReturnTo {
    own_origin: String,
    allowed: Vec<Allowed>,
}

/// `scheme://host[:port]` of an http(s) URL without user info.
fn origin_of(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// A relative target this server resolves itself: one leading `/`, never `//` or a
/// backslash (which browsers read as another host).
fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(char::is_control)
}

impl ReturnTo {
    /// Parses the entries; `redirect_uri` gives this server's own origin.
    pub(crate) fn new(redirect_uri: &str, entries: &[String]) -> Result<Self, String> {
        let redirect =
            Url::parse(redirect_uri).map_err(|_| "--redirect-uri is not an absolute URL")?;
        let own_origin = origin_of(&redirect)
            .ok_or("--redirect-uri must be an http(s) URL without user info")?;
        let mut allowed = Vec::new();
        for entry in entries {
            if is_local_path(entry) {
                let path = entry.split(['?', '#']).next().unwrap_or("/");
                allowed.push(Allowed::Path(path.to_owned()));
                continue;
            }
            let url = Url::parse(entry)
                .map_err(|_| format!("--post-login-redirect {entry:?}: not a URL or a /path"))?;
            let origin = origin_of(&url).ok_or_else(|| {
                format!("--post-login-redirect {entry:?}: must be http(s), without user info")
            })?;
            let bare = entry.trim_end_matches('/') == origin;
            allowed.push(if bare {
                Allowed::Origin(origin)
            } else {
                Allowed::Url(origin, url.path().to_owned())
            });
        }
        if allowed.is_empty() {
            allowed.push(Allowed::Path("/".to_owned()));
        }
        Ok(Self {
            own_origin,
            allowed,
        })
    }

    /// The target to send the browser to after the callback, if `target` is allowed.
    /// `None` (absent) means `/`.
    pub(crate) fn check(&self, target: Option<&str>) -> Option<String> {
        let target = target.unwrap_or("/");
        if target.len() > 2048 {
            return None;
        }
        if is_local_path(target) {
            let path = target.split(['?', '#']).next().unwrap_or("/");
            let ok = self.allowed.iter().any(|a| match a {
                Allowed::Path(p) => p == path,
                Allowed::Origin(o) => *o == self.own_origin,
                Allowed::Url(o, p) => *o == self.own_origin && p == path,
            });
            return ok.then(|| target.to_owned());
        }
        let url = Url::parse(target).ok()?;
        let origin = origin_of(&url)?;
        let ok = self.allowed.iter().any(|a| match a {
            Allowed::Origin(o) => *o == origin,
            Allowed::Url(o, p) => *o == origin && p == url.path(),
            Allowed::Path(p) => origin == self.own_origin && p == url.path(),
        });
        ok.then(|| url.to_string())
    }

    /// This server's origin (from `--redirect-uri`): where the provider sends the browser
    /// back after RP-initiated logout (`{origin}/`).
    pub(crate) fn own_origin(&self) -> &str {
        &self.own_origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> ReturnTo {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        ReturnTo::new("http://localhost:8080/auth/callback", &entries).unwrap()
    }

    #[test]
    fn without_entries_only_the_root_of_this_server_is_allowed() {
        let r = list(&[]);
        assert_eq!(r.check(None).as_deref(), Some("/"));
        assert_eq!(r.check(Some("/?a=1")).as_deref(), Some("/?a=1"));
        assert_eq!(r.check(Some("/admin")), None);
        assert_eq!(
            r.check(Some("http://localhost:8080/")).as_deref(),
            Some("http://localhost:8080/")
        );
    }

    #[test]
    fn other_origins_and_tricks_that_browsers_read_as_other_hosts_are_refused() {
        let r = list(&["/", "https://app.example"]);
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "\\\\evil.example",
            "https://app.example@evil.example/",
            "https://user@app.example/",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://app.example.evil.example/",
            "/\t/evil.example",
            "http://app.example/",
        ] {
            assert_eq!(r.check(Some(bad)), None, "{bad}");
        }
        assert!(r.check(Some("https://app.example/any/path?q=1")).is_some());
    }

    #[test]
    fn a_url_or_path_entry_allows_exactly_that_path() {
        let r = list(&["https://app.example/app/", "/spa"]);
        assert!(r.check(Some("https://app.example/app/?x=1")).is_some());
        assert_eq!(r.check(Some("https://app.example/other")), None);
        assert!(r.check(Some("/spa?x")).is_some());
        assert_eq!(r.check(Some("/spa/other")), None);
        assert_eq!(r.check(None), None, "/ is not in this list");
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://u:p@app.example",
        ] {
            assert!(
                ReturnTo::new("http://localhost/auth/callback", &[bad.to_owned()]).is_err(),
                "{bad}"
            );
        }
        assert!(ReturnTo::new("/auth/callback", &[]).is_err());
    }
}
