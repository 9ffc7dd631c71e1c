//! The dashboard at `/ui`: server-rendered HTML over the same engine calls as the API, with
//! live parts over Server-Sent Events.
//!
//! Everything it serves is in the binary: the pages are [maud] templates, and the only
//! scripts are a vendored [htmx](https://htmx.org) 2 and its SSE extension (both under the
//! Zero-Clause BSD license, their license files beside them in `src/ui/assets`), so it needs
//! no CDN, no network at run time and no JavaScript build step. Every page reads without
//! JavaScript; htmx only refreshes the parts that change live.
//!
//! ## Sessions and roles
//!
//! A browser logs in with a token of the server (see [`session`]): the server checks it once
//! and answers with a random session id in an `HttpOnly`, `SameSite=Strict` cookie; the token is
//! neither stored nor put in a URL. Every `POST` carries the session's CSRF token in a form
//! field, checked before any handler runs. Each route admits the roles the matching API route
//! admits: operators read and act on one workflow at a time, admins also purge and act in bulk;
//! a refused action names the role it needs.
//!
//! ## Routes
//!
//! | route | role |
//! | --- | --- |
//! | `GET /ui/login`, `POST /ui/login`, `GET /ui/assets/{file}` | none |
//! | `POST /ui/logout` | any logged-in session |
//! | `GET /ui` (overview), `GET /ui/workflows` (list), `GET /ui/workflows/{id}` | operator |
//! | `GET /ui/workflows/{id}/live`, `GET /ui/workflows/{id}/actions` (parts, for htmx) | operator |
//! | `GET /ui/workflows/{id}/events` (SSE), `GET /ui/events` (SSE) | operator |
//! | `POST /ui/workflows/{id}/{signal,update,cancel,retry,review}` | operator |
//! | `GET /ui/reviews`, `GET /ui/reviews/table` | operator |
//! | `POST /ui/workflows/{id}/purge`, `POST /ui/bulk/{cancel,signal,purge}` | admin |

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::Access;
use crate::limits;
use crate::server::Shared;

mod html;
mod live;
mod pages;
pub mod session;

use crate::api::{RouteDef, route};

/// Every dashboard route behind a session (the API's route shape: method, path, role, handler).
fn routes() -> Vec<RouteDef> {
    use Access::*;
    use pages::{overview, reviews, workflow, workflows};
    vec![
        route(Method::POST, "/ui/logout", AnyRole, post(session::logout)),
        route(Method::GET, "/ui", Operator, get(overview::show)),
        route(Method::GET, "/ui/workflows", Operator, get(workflows::list)),
        route(
            Method::POST,
            "/ui/bulk/{action}",
            Admin,
            post(workflows::bulk),
        ),
        route(
            Method::GET,
            "/ui/workflows/{id}",
            Operator,
            get(workflow::show),
        ),
        route(
            Method::GET,
            "/ui/workflows/{id}/live",
            Operator,
            get(workflow::live),
        ),
        route(
            Method::GET,
            "/ui/workflows/{id}/actions",
            Operator,
            get(workflow::actions),
        ),
        route(
            Method::GET,
            "/ui/workflows/{id}/events",
            Operator,
            get(live::workflow_events),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/signal",
            Operator,
            post(workflow::signal),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/update",
            Operator,
            post(workflow::update),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/cancel",
            Operator,
            post(workflow::cancel),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/retry",
            Operator,
            post(workflow::retry),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/purge",
            Admin,
            post(workflow::purge),
        ),
        route(
            Method::POST,
            "/ui/workflows/{id}/review",
            Operator,
            post(reviews::decide),
        ),
        route(Method::GET, "/ui/reviews", Operator, get(reviews::inbox)),
        route(
            Method::GET,
            "/ui/reviews/table",
            Operator,
            get(reviews::table),
        ),
        route(Method::GET, "/ui/events", Operator, get(live::all_events)),
    ]
}

/// (method, path, access) of every dashboard route behind a session, for the tests that check
/// each route refuses what it must.
#[doc(hidden)]
pub fn route_table() -> Vec<(Method, &'static str, Access)> {
    routes()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}

/// The dashboard's router: the public login and assets, and the routes behind a session.
pub(crate) fn router(shared: &Arc<Shared>) -> Router {
    let guarded = routes()
        .into_iter()
        .fold(Router::new(), |router, r| {
            router.route(
                r.path,
                r.handler
                    .route_layer(from_fn_with_state(r.access, session::require)),
            )
        })
        .layer(from_fn_with_state(
            Arc::clone(shared),
            session::authenticate,
        ));
    Router::new()
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/assets/{file}", get(asset))
        .merge(guarded)
        .layer(from_fn_with_state(shared.tls, hardened))
        .layer(DefaultBodyLimit::max(shared.limits.max_body_bytes))
        .layer(from_fn_with_state(
            shared.limits.request_timeout,
            limits::timeout,
        ))
        .layer(from_fn_with_state(
            Arc::clone(&shared.in_flight),
            limits::concurrency,
        ))
        .with_state(Arc::clone(shared))
}

/// What the browser may do with the dashboard's pages: scripts and styles from `/ui/assets` only
/// (htmx evaluates its trigger filters, hence `unsafe-eval`; it also injects one style element),
/// no framing by other sites (clickjacking), forms posted only here, no referrer to elsewhere,
/// and pages kept out of caches, as they show what a session may see.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'none'";

/// Adds the security headers to every dashboard response, and marks cookies `Secure` when the
/// server serves HTTPS itself (`tls`) or a TLS-terminating proxy says the browser came over
/// HTTPS (`X-Forwarded-Proto: https`): the flag only narrows where the browser sends the
/// cookie, so trusting the header costs nothing.
async fn hardened(State(tls): State<bool>, request: Request, next: Next) -> Response {
    let https = tls
        || request
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| HeaderValue::from_str(&format!("{v}; Secure")).ok())
            .collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The embedded assets, by file name.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/htmx.min.js"),
    ),
    (
        "htmx-ext-sse.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/htmx-ext-sse.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

/// `GET /ui/assets/{file}`: an embedded asset, cacheable for an hour (they change only with the
/// binary).
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
