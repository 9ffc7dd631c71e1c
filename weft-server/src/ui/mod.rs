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
//! | `GET /ui/workflows/{id}/live`, `GET /ui/workflows/{id}/events` (SSE), `GET /ui/events` (SSE) | operator |
//! | `POST /ui/workflows/{id}/{signal,update,cancel,retry,review}` | operator |
//! | `GET /ui/reviews`, `GET /ui/reviews/table` | operator |
//! | `POST /ui/workflows/{id}/purge`, `POST /ui/bulk/{cancel,signal,purge}` | admin |

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{Method, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::auth::Access;
use crate::limits;
use crate::server::Shared;

mod html;
mod live;
mod pages;
pub mod session;

/// One dashboard route behind a session.
struct UiRoute {
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<Shared>>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<Shared>>,
) -> UiRoute {
    UiRoute {
        method,
        path,
        access,
        handler,
    }
}

/// Every dashboard route that needs a session, with the roles it admits.
fn routes() -> Vec<UiRoute> {
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
