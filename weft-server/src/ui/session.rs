//! Browser sessions: a token login that sets an `HttpOnly`, `SameSite=Strict` cookie naming a
//! random session id, kept server-side with the token's principal and a CSRF token; the
//! middleware that turns the cookie back into a [`Principal`], checks the CSRF token of every
//! `POST`, and refuses a route to a role that may not use it.
//!
//! The token itself is never stored, put in a URL, or sent back: after login the browser holds
//! only the session id, which dies at logout, after [`IDLE_TIMEOUT`] without use, or when the
//! server restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use subtle::ConstantTimeEq;

use super::html::{UiError, page_bare};
use crate::auth::{Access, Principal};
use crate::server::Shared;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "weft_session";
/// The login form's double-submit cookie: before login there is no session to hold a CSRF
/// token, so the form's token is checked against this cookie instead.
pub const LOGIN_CSRF_COOKIE: &str = "weft_login_csrf";
/// The form field every `POST` under `/ui` must carry.
pub const CSRF_FIELD: &str = "csrf";
/// A session unused for this long is forgotten.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it the least recently used is dropped, so logins in a loop
/// cannot grow the server's memory without bound.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub principal: Principal,
    pub csrf: String,
    last_used: Instant,
}

/// What a request under `/ui` knows about its session, for the handlers.
#[derive(Debug, Clone)]
pub(crate) struct UiSession {
    pub principal: Principal,
    pub csrf: String,
}

/// The server-side session table.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes from the OS, hex-encoded: 256 bits nobody can guess.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without the OS's randomness no session can be made safely; failing here is better than
    // handing out a guessable id.
    getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Opens a session for `principal`; returns its id.
    pub(crate) fn open(&self, principal: Principal) -> String {
        let id = random_token();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        table.retain(|_, s| now.duration_since(s.last_used) < IDLE_TIMEOUT);
        if table.len() >= MAX_SESSIONS
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            table.remove(&oldest);
        }
        table.insert(
            id.clone(),
            Session {
                principal,
                csrf: random_token(),
                last_used: now,
            },
        );
        id
    }

    /// The live session with this id, marked as used.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let session = table.get_mut(id)?;
        if now.duration_since(session.last_used) >= IDLE_TIMEOUT {
            table.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends the session with this id.
    pub(crate) fn close(&self, id: &str) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: `HttpOnly` so scripts cannot read it, `SameSite=Strict` so no other
/// site's page can make the browser send it.
fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict{age}"
    ))
    .expect("cookie values are hex")
}

fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Reads a urlencoded form body into (name, value) pairs.
async fn form_of(
    headers: &HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<HashMap<String, String>, UiError> {
    let mut request = Request::new(Body::from(bytes));
    // `Form` reads a GET's query string, and only a POST's body.
    *request.method_mut() = Method::POST;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, ct.clone());
    }
    axum::Form::<HashMap<String, String>>::from_request(request, &())
        .await
        .map(|axum::Form(f)| f)
        .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, "Bad form", e.body_text()))
}

/// `GET /ui/login`: the login form, with a fresh double-submit CSRF cookie.
pub(crate) async fn login_form(
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let csrf = random_token();
    let next = safe_next(query.get("next").map(String::as_str));
    let markup = page_bare(
        "Log in",
        html! {
            h1 { "Log in to Weft" }
            @if let Some(message) = query.get("message") {
                @if message == "logged_out" { p.notice role="status" { "You are logged out." } }
                @if message == "expired" { p.notice role="status" { "Your session has ended; log in again." } }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf);
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "Token" }
                    " "
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                }
                p.hint { "An operator or admin token of this server. It is checked once and never stored: the browser keeps only a session cookie." }
                button type="submit" { "Log in" }
            }
        },
    );
    let mut response = markup.into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, "/ui/login", Some(600)),
    );
    response
}

/// Where to go after login: only a path under `/ui`, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/ui".to_string(),
    }
}

/// `POST /ui/login`: checks the form's CSRF token against its cookie, then the token; opens a
/// session and sets its cookie.
pub(crate) async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    let form = form_of(&headers, body).await?;
    let presented = form.get(CSRF_FIELD).map(String::as_str).unwrap_or("");
    match cookie(&headers, LOGIN_CSRF_COOKIE) {
        Some(expected) if !presented.is_empty() && equal(&expected, presented) => {}
        _ => return Err(UiError::csrf()),
    }
    let token = form.get("token").map(|t| t.trim()).unwrap_or("");
    let principal = if shared.tokens.is_empty() && shared.insecure_no_auth {
        crate::auth::anonymous()
    } else {
        match shared.tokens.authenticate(token) {
            Some(p) => p.clone(),
            None => {
                return Err(UiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Login refused",
                    "that token is not one this server accepts",
                ));
            }
        }
    };
    let id = shared.ui_sessions.open(principal);
    let next = safe_next(form.get("next").map(String::as_str));
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, "/ui", None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", "/ui/login", Some(0)),
    );
    Ok(response)
}

/// `POST /ui/logout`: ends the session (its CSRF token checked by [`authenticate`]) and clears
/// the cookie.
pub(crate) async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        shared.ui_sessions.close(&id);
    }
    let mut response = Redirect::to("/ui/login?message=logged_out").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/ui", Some(0)),
    );
    response
}

/// Turns the session cookie into a [`UiSession`] (and a [`Principal`], for the request log and
/// the audit log), and checks the CSRF field of every `POST` before any handler runs, so no
/// handler can forget it. Without a session a page redirects to the login form; anything else
/// is refused `401`.
pub(crate) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let session =
        cookie(request.headers(), SESSION_COOKIE).and_then(|id| shared.ui_sessions.get(&id));
    let Some(session) = session else {
        if request.method() == Method::GET && !is_fragment(&request) {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/ui".to_string(), |p| p.as_str().to_string());
            let location = format!("/ui/login?next={}", super::html::url_encode(&target));
            return Redirect::to(&location).into_response();
        }
        return UiError::new(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "this needs a session: log in at /ui/login",
        )
        .into_response();
    };
    let mut request = request;
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, shared.limits.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return UiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too large",
                    "the form is larger than this server accepts",
                )
                .into_response();
            }
        };
        let form = match form_of(&parts.headers, bytes.clone()).await {
            Ok(form) => form,
            Err(e) => return e.into_response(),
        };
        match form.get(CSRF_FIELD) {
            Some(presented) if equal(&session.csrf, presented) => {}
            _ => return UiError::csrf().into_response(),
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let principal = session.principal.clone();
    request.extensions_mut().insert(principal.clone());
    request.extensions_mut().insert(UiSession {
        principal: session.principal,
        csrf: session.csrf,
    });
    let mut response = next.run(request).await;
    response.extensions_mut().insert(principal);
    response
}

/// Whether the request is htmx fetching a part of a page (it cannot follow a redirect to the
/// login form usefully).
fn is_fragment(request: &Request) -> bool {
    request.headers().contains_key("hx-request")
        || request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"))
}

/// Admits a request only when its session's role has `access`, exactly as the API's routes
/// do; a refusal names the roles that may.
pub(crate) async fn require(
    State(access): State<Access>,
    request: Request,
    next: Next,
) -> Response {
    match request.extensions().get::<Principal>() {
        Some(principal) if access.admits(principal.role) => next.run(request).await,
        Some(principal) => {
            let mut refusal = UiError::forbidden(principal, access);
            if let Some(session) = request.extensions().get::<UiSession>() {
                refusal = refusal.with_logout(session);
            }
            refusal.into_response()
        }
        None => UiError::new(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "log in at /ui/login",
        )
        .into_response(),
    }
}
