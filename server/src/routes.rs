//! The HTTP surface: routes, the four auth endpoints, `/api/me`, the JWKS, static files
//! and the test switches. Handlers check the request, hand database and crypto work to
//! the blocking pool, and shape the answer; the decisions live in `store` and `refresh`.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;
use token_manager_core::protocol::{error_code, LoginRequest, TokenResponse, TOKEN_TYPE_BEARER};
use tower_http::catch_panic::CatchPanicLayer;
use zeroize::Zeroize;

use crate::access::{self, AccessClaims, Rejection};
use crate::cors::cors;
use crate::error::ApiError;
use crate::keys::SigningKey;
use crate::logging::{self, Log};
use crate::refresh::{self, RefreshToken, TokenHash};
use crate::request::{bearer_token, check_origin, read_json, refresh_cookies, require_csrf_header};
use crate::state::AppState;
use crate::static_files;
use crate::store::{AccessGrant, AccessState, GrantRequest, Issued, Refused};
use crate::switches::{Counters, Delay, FailRefresh};
use crate::throttle::{Admission, Keys, Outcome, Policy, Write};

/// Marks a response the connection must not deliver: the server closes the connection
/// instead (the drop-next-refresh switch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AbortConnection;

/// Longest username accepted; anything longer is a malformed request, not a login attempt.
const MAX_USERNAME: usize = 256;
/// Longest password accepted, so one request cannot make argon2 hash megabytes.
const MAX_PASSWORD: usize = 1024;
/// Upper bound of the delay switch, so a typo cannot hang a test run.
const MAX_DELAY_MS: u64 = 60_000;
/// Bytes of a request path the access log keeps.
const MAX_LOGGED_PATH: usize = 200;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/me", get(me))
        .route("/pkg/{*path}", any(pkg_file));
    router = if state.settings.test_switches {
        router
            .route("/test/fail-refresh", post(test_fail_refresh))
            .route("/test/delay", post(test_delay))
            .route("/test/drop-next-refresh", post(test_drop_next_refresh))
            .route("/test/rotate-keys", post(test_rotate_keys))
            .route("/test/stats", get(test_stats))
            .route("/test/reset", post(test_reset))
            .route("/test/panic", post(test_panic))
            .route("/test/{*rest}", any(not_found))
    } else {
        // Explicit, so a `www/test/` directory can never make them answer.
        router
            .route("/test", any(not_found))
            .route("/test/{*rest}", any(not_found))
    };
    // A panic in a handler answers 500 and is logged; it never ends the connection task,
    // let alone the process. The inner layer lets the access log record the 500, the outer
    // one covers the access log itself.
    router
        .fallback(www_file)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(CatchPanicLayer::custom(panic_response(state.log.clone())))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .layer(CatchPanicLayer::custom(panic_response(state.log.clone())))
        .with_state(state)
}

/// The answer to a request whose handler panicked: the usual JSON 500, and a log line.
/// The panic message is not logged: it may quote request data (the standard panic hook
/// still prints it to stderr with its location, as for any panic).
fn panic_response(log: Log) -> impl Fn(Box<dyn Any + Send>) -> Response + Clone {
    move |_payload| {
        log.line(format_args!("event=error what=\"handler panicked\""));
        let mut response = ApiError::server_error().into_response();
        // The connection's state after a panic is unknown; do not reuse it.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// One line per request: method, path without the query, status, duration. Never headers.
async fn access_log(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // Cut on a character boundary: a byte offset inside a multibyte character would panic.
    let path = logging::cut(request.uri().path(), MAX_LOGGED_PATH).to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let dropped = response.extensions().get::<AbortConnection>().is_some();
    state.log.line(format_args!(
        "event=request method={method} path={path:?} status={}{} ms={}",
        response.status().as_u16(),
        if dropped { " dropped=true" } else { "" },
        start.elapsed().as_millis()
    ));
    response
}

fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Runs `f` with the request for the access token about to be issued. The store chooses
/// the signing key and records its use inside the same transaction as the refresh token,
/// and `pin` keeps that key published in memory until the token expires.
fn with_grant<T>(state: &AppState, now: u64, f: impl FnOnce(&GrantRequest<'_>) -> T) -> T {
    // A shared store may name a key another instance installed a moment ago.
    let pin = |kid: &str, exp: u64| {
        state.keys.pin(kid, exp) || (state.sync_keys_on_miss() && state.keys.pin(kid, exp))
    };
    f(&GrantRequest {
        exp: now + state.settings.access_ttl,
        pin: &pin,
    })
}

/// The key the store chose for `grant`; pinned, so the ring still holds it.
fn grant_key(state: &AppState, grant: &AccessGrant) -> Result<Arc<SigningKey>, ApiError> {
    state
        .keys
        .get(&grant.kid)
        .ok_or_else(|| state.internal("signing key", "the chosen key is not loaded"))
}

/// Signs the access token for `issued` and builds the 200 answer with the cookie.
fn token_response(state: &AppState, issued: &Issued, now: u64) -> Result<Response, ApiError> {
    let grant = &issued.grant;
    let key = grant_key(state, grant)?;
    let claims = AccessClaims {
        iss: state.settings.expect.issuer.clone(),
        sub: issued.user.username.clone(),
        aud: state.settings.expect.audience.clone(),
        exp: grant.exp,
        nbf: now,
        iat: now,
        jti: refresh::random_id(),
        sid: issued.family_id.clone(),
        name: issued.user.name.clone(),
        roles: issued.user.roles.clone(),
    };
    let access_token =
        access::sign(&key, &claims).map_err(|e| state.internal("sign access token", e))?;
    let body = TokenResponse {
        access_token,
        token_type: TOKEN_TYPE_BEARER.to_owned(),
        expires_in: state.settings.access_ttl,
    };
    let mut response = Json(body).into_response();
    let cookie = refresh::set_cookie(&issued.token, issued.expires_at.saturating_sub(now));
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| state.internal("cookie header", e))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    no_store(&mut response);
    Ok(response)
}

/// Logs `event=client_gone` if the handler future is dropped before it finished: hyper
/// drops it when the client closes the connection mid-request. Work already handed to
/// the blocking pool (a hash, a committed rotation) still runs to its end.
struct ClientGone<'a> {
    state: &'a AppState,
    path: &'static str,
    start: Instant,
    done: bool,
}

impl<'a> ClientGone<'a> {
    fn watch(state: &'a AppState, path: &'static str) -> Self {
        Self {
            state,
            path,
            start: Instant::now(),
            done: false,
        }
    }

    fn finished(mut self) {
        self.done = true;
    }
}

impl Drop for ClientGone<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.state.log.line(format_args!(
                "event=client_gone path={:?} ms={}",
                self.path,
                self.start.elapsed().as_millis()
            ));
        }
    }
}

async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let gone = ClientGone::watch(&state, "/auth/login");
    let result = login_inner(&state, peer.ip(), &headers, body).await;
    gone.finished();
    match result {
        Ok(response) => {
            Counters::bump(&state.counters.login);
            response
        }
        Err(e) => {
            Counters::bump(&state.counters.login_failed);
            e.into_response()
        }
    }
}

/// Applies the pure throttle policy to the stored counters of `keys`, atomically.
/// `Ok(Some(secs))`: refused for that long.
async fn throttle_admit(state: &Arc<AppState>, keys: &Keys) -> Result<Option<u64>, ApiError> {
    let Some(policy) = state.settings.limits.throttle else {
        return Ok(None);
    };
    let keys = keys.clone();
    state
        .blocking(move |s| {
            let now = s.now();
            s.store
                .throttle(keys.all(), |counters| match policy.admit(counters, now) {
                    Admission::Allowed(writes) => (writes, None),
                    Admission::Wait(secs) => ([Write::Keep; 4], Some(secs)),
                })
                .map_err(|e| s.store_failed("login throttle", e))
        })
        .await
}

/// Settles a charged attempt (blocking; called on the pool). A failure to record it is
/// logged, never turned into a different answer.
fn throttle_settle(state: &AppState, keys: &Keys, outcome: Outcome) {
    let Some(policy) = state.settings.limits.throttle else {
        return;
    };
    let now = state.now();
    if let Err(e) = state.store.throttle(keys.all(), |counters| {
        (policy.settle(counters, outcome, now), ())
    }) {
        let _ = state.internal("login throttle", e);
    }
}

async fn login_inner(
    state: &Arc<AppState>,
    peer: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_origin(headers, &state.settings.allowed_origins)?;
    let Some(mut request) = read_json::<LoginRequest>(headers, body, true).await? else {
        return Err(ApiError::invalid_request(
            "the body is empty; expected JSON",
        ));
    };
    if request.username.len() > MAX_USERNAME || request.password.len() > MAX_PASSWORD {
        request.password.zeroize();
        return Err(ApiError::invalid_request("username or password too long"));
    }
    // Session fixation: whatever family the browser already holds ends with this login.
    let previous: Vec<TokenHash> = refresh_cookies(headers)
        .into_iter()
        .filter_map(RefreshToken::parse)
        .map(|t| t.hash())
        .collect();
    // Throttled before any hashing: a refused guess costs the server one small
    // transaction, and the attacker a wait.
    let keys = Policy::keys(&request.username, peer);
    match throttle_admit(state, &keys).await {
        Ok(None) => {}
        Ok(Some(wait)) => {
            request.password.zeroize();
            state.log.line(format_args!(
                "event=login_throttled peer={peer} retry_after={wait}"
            ));
            return Err(ApiError::rate_limited(
                wait,
                "too many failed logins; try again later",
            ));
        }
        Err(e) => {
            request.password.zeroize();
            return Err(e);
        }
    }
    let Some(permit) = state.passwords.admit().await else {
        request.password.zeroize();
        let s = state.clone();
        let _ = state
            .blocking(move |_| {
                throttle_settle(&s, &keys, Outcome::NotChecked);
                Ok(())
            })
            .await;
        return Err(ApiError::busy("too many logins at once; try again shortly"));
    };
    state
        .blocking(move |s| {
            // Owned by the job, not the request: the hash runs to its end even if the
            // client leaves, and so does the permit.
            let _permit = permit;
            let user = s
                .store
                .find_user(&request.username)
                .map_err(|e| s.store_failed("find user", e))?;
            let ok = s.passwords.verify(
                &request.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            );
            request.password.zeroize();
            let user = match (ok, user) {
                (true, Some(user)) => user,
                (_, user) => {
                    // The peer, and the account only if it exists: a name that matches no
                    // account is often a password typed into the wrong field.
                    s.log.line(format_args!(
                        "event=login_failed peer={peer} user={:?} reason=invalid_credentials",
                        user.as_ref().map_or("-", |u| u.username.as_str())
                    ));
                    return Err(ApiError::invalid_credentials());
                }
            };
            throttle_settle(s, &keys, Outcome::Succeeded);
            let now = s.now();
            let (issued, revoked) = with_grant(s, now, |grant| {
                s.store
                    .login(user, &previous, now, &s.settings.limits.session, grant)
            })
            .map_err(|e| s.store_failed("login", e))?;
            s.log.line(format_args!(
                "event=login user={:?} sid={} revoked_sessions={} peer={peer}",
                issued.user.username,
                issued.family_id,
                revoked.len()
            ));
            token_response(s, &issued, now)
        })
        .await
}

async fn refresh(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    Counters::bump(&state.counters.refresh_requests);
    let gone = ClientGone::watch(&state, "/auth/refresh");
    let result = refresh_inner(&state, &headers, body).await;
    gone.finished();
    match result {
        Ok(response) if response.extensions().get::<AbortConnection>().is_none() => {
            Counters::bump(&state.counters.refresh_ok);
            response
        }
        Ok(dropped) => {
            Counters::bump(&state.counters.refresh_failed);
            dropped
        }
        Err(e) => {
            Counters::bump(&state.counters.refresh_failed);
            e.into_response()
        }
    }
}

async fn refresh_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_origin(headers, &state.settings.allowed_origins)?;
    require_csrf_header(headers)?;
    read_json::<serde_json::Value>(headers, body, false).await?;

    let plan = state.switches.plan_refresh();
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    if let Some((status, retry_after)) = plan.fail {
        return Err(injected_failure(status, retry_after));
    }

    let cookies = refresh_cookies(headers);
    let Some(first) = cookies.first() else {
        return Err(ApiError::invalid_grant("no refresh cookie"));
    };
    let Some(presented) = RefreshToken::parse(first) else {
        return Err(ApiError::invalid_grant("the refresh cookie is malformed"));
    };
    let mut response = state
        .blocking(move |s| {
            let now = s.now();
            s.switches.run_before_refresh_transaction();
            let outcome = with_grant(s, now, |grant| {
                s.store
                    .refresh(&presented, now, &s.settings.limits.session, grant)
            })
            .map_err(|e| s.store_failed("refresh", e))?;
            match outcome {
                Ok(issued) => {
                    if issued.grace_replay {
                        Counters::bump(&s.counters.grace_replays);
                    } else {
                        Counters::bump(&s.counters.rotations);
                    }
                    s.log.line(format_args!(
                        "event=refresh sid={} outcome={}",
                        issued.family_id,
                        if issued.grace_replay {
                            "grace_replay"
                        } else {
                            "rotated"
                        }
                    ));
                    token_response(s, &issued, now)
                }
                Err(refused) => Err(refused_error(s, refused)),
            }
        })
        .await?;
    if plan.drop_response {
        // The rotation is committed; the client will never see its result.
        response.extensions_mut().insert(AbortConnection);
    }
    Ok(response)
}

fn refused_error(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::Unknown => ApiError::invalid_grant("unknown refresh token"),
        Refused::Expired => ApiError::invalid_grant("the refresh token has expired"),
        Refused::Revoked => ApiError::invalid_grant("the session has been revoked"),
        Refused::SessionEnded => {
            ApiError::invalid_grant("the session has reached its maximum age; sign in again")
        }
        Refused::ReuseDetected { family_id } => {
            Counters::bump(&state.counters.reuse_detected);
            state.log.line(format_args!(
                "event=reuse_detected sid={family_id} action=revoked"
            ));
            ApiError::invalid_grant("refresh token reuse detected; the session has been revoked")
        }
    }
}

fn injected_failure(status: u16, retry_after: Option<u64>) -> ApiError {
    let (status, code, retry_after) = match status {
        429 => (
            StatusCode::TOO_MANY_REQUESTS,
            error_code::RATE_LIMITED,
            Some(retry_after.unwrap_or(1)),
        ),
        503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::TEMPORARILY_UNAVAILABLE,
            Some(retry_after.unwrap_or(1)),
        ),
        other => (
            StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_code::SERVER_ERROR,
            retry_after,
        ),
    };
    ApiError {
        retry_after,
        ..ApiError::new(status, code, "injected failure (test switch)")
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let gone = ClientGone::watch(&state, "/auth/logout");
    let result = logout_inner(&state, &headers, body).await;
    gone.finished();
    match result {
        Ok(response) => {
            Counters::bump(&state.counters.logout);
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn logout_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_origin(headers, &state.settings.allowed_origins)?;
    require_csrf_header(headers)?;
    read_json::<serde_json::Value>(headers, body, false).await?;

    let now = state.now();
    // Only a token that verifies is denied, and only its `sid` is trusted to name the
    // session to end: anything else is not ours, or already dead.
    let deny = match bearer_token(headers) {
        Ok(Some(token)) => access::verify(token, &state.keys, &state.settings.expect, now)
            .ok()
            .map(|(claims, _)| (claims.jti, claims.exp, claims.sid)),
        _ => None,
    };
    let cookie = refresh_cookies(headers)
        .into_iter()
        .find_map(RefreshToken::parse)
        .map(|t| t.hash());
    state
        .blocking(move |s| {
            let denied = deny.is_some();
            let family = s
                .store
                .logout(
                    cookie.as_ref(),
                    deny.as_ref()
                        .map(|(jti, exp, sid)| (jti.as_str(), *exp, sid.as_str())),
                    now,
                )
                .map_err(|e| s.store_failed("logout", e))?;
            s.log.line(format_args!(
                "event=logout sid={} denied_access_token={denied}",
                family.as_deref().unwrap_or("-")
            ));
            Ok(())
        })
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&refresh::clear_cookie())
            .map_err(|e| state.internal("cookie header", e))?,
    );
    no_store(&mut response);
    Ok(response)
}

async fn me(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match me_inner(&state, &headers).await {
        Ok(response) => {
            Counters::bump(&state.counters.api_me);
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn me_inner(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let token = match bearer_token(headers) {
        Ok(Some(token)) => token.to_owned(),
        Ok(None) => return Err(ApiError::invalid_token(Rejection::Missing.description())),
        Err(()) => return Err(ApiError::invalid_token(Rejection::Malformed.description())),
    };
    state
        .blocking(move |s| {
            let verified = match access::verify(&token, &s.keys, &s.settings.expect, s.now()) {
                // Signed with a key another instance of a shared store just installed.
                Err(Rejection::UnknownKey) if s.sync_keys_on_miss() => {
                    access::verify(&token, &s.keys, &s.settings.expect, s.now())
                }
                other => other,
            };
            let (claims, all) = verified.map_err(|r| ApiError::invalid_token(r.description()))?;
            match s
                .store
                .access_state(&claims.jti, &claims.sid)
                .map_err(|e| s.store_failed("access state", e))?
            {
                AccessState::Allowed => {
                    let mut response = Json(all).into_response();
                    no_store(&mut response);
                    Ok(response)
                }
                AccessState::Denylisted
                | AccessState::SessionRevoked
                | AccessState::SessionUnknown => {
                    Err(ApiError::invalid_token(Rejection::Revoked.description()))
                }
            }
        })
        .await
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Json(state.keys.jwks(state.now())).into_response();
    // Short, so a verifier that caches the set sees a rotation within a minute; one that
    // meets an unknown kid refetches anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

async fn pkg_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    let path = uri.path().strip_prefix("/pkg").unwrap_or("");
    static_files::serve(&state.settings.pkg, path, &method).await
}

async fn www_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    static_files::serve(&state.settings.www, uri.path(), &method).await
}

async fn not_found() -> Response {
    ApiError::not_found().into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

async fn test_fail_refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        guard_switch(&state, &headers)?;
        let Some(fail) = read_json::<FailRefresh>(&headers, body, true).await? else {
            return Err(ApiError::invalid_request("expected {\"count\",\"status\"}"));
        };
        if !matches!(fail.status, 429 | 500 | 502 | 503 | 504) {
            return Err(ApiError::invalid_request(
                "status must be 429, 500, 502, 503 or 504",
            ));
        }
        Ok(Json(state.switches.set_fail(fail)).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn test_delay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let delay = match guard_switch(&state, &headers) {
        Ok(()) => read_json::<Delay>(&headers, body, true).await,
        Err(e) => Err(e),
    };
    match delay {
        Ok(Some(delay)) => {
            Json(state.switches.set_delay(delay.ms.min(MAX_DELAY_MS))).into_response()
        }
        Ok(None) => ApiError::invalid_request("expected {\"ms\"}").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn test_drop_next_refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match guarded_empty_switch(&state, &headers, body).await {
        Ok(()) => Json(state.switches.set_drop_next()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn test_rotate_keys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = guarded_empty_switch(&state, &headers, body).await {
        return e.into_response();
    }
    let result = state
        .blocking(|s| s.rotate_keys().map_err(|e| s.internal("rotate keys", e)))
        .await;
    match result {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn test_stats(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Json(state.counters.snapshot()).into_response();
    no_store(&mut response);
    response
}

async fn test_reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = guarded_empty_switch(&state, &headers, body).await {
        return e.into_response();
    }
    state.counters.reset();
    Json(state.switches.reset()).into_response()
}

/// Panics on purpose, so a test can prove that a bug in one handler answers 500 and the
/// server keeps serving.
async fn test_panic(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = guarded_empty_switch(&state, &headers, body).await {
        return e.into_response();
    }
    panic!("test switch: /test/panic");
}

/// The switches change server-wide behaviour, so they get the checks of refresh and
/// logout: no cross-site or foreign `Origin`, the CSRF header (which no HTML form can
/// send), and JSON only. A refused call has changed nothing.
fn guard_switch(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_origin(headers, &state.settings.allowed_origins)?;
    require_csrf_header(headers)
}

/// [`guard_switch`] for a switch without parameters: the body is empty or a JSON object.
async fn guarded_empty_switch(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    guard_switch(state, headers)?;
    read_json::<serde_json::Value>(headers, body, false).await?;
    Ok(())
}
