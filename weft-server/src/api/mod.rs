//! The routes under `/v1`: one table of (method, path, access, handler), from which the router
//! is built and against which the OpenAPI document is checked.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::auth::Access;
use crate::server::Shared;

pub mod admin;
mod body;
pub mod bulk;
pub mod calls;
pub mod cluster;
pub(crate) mod detached;
pub mod events;
pub mod openapi;
pub mod recovery;
pub mod reviews;
pub mod schedules;
pub mod types;
pub mod workflows;

/// One route: its method and path, the role it needs, and its handler.
pub(crate) struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<Arc<Shared>>,
}

/// A [`RouteDef`]; shared with the dashboard's route table.
pub(crate) fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<Shared>>,
) -> RouteDef {
    RouteDef {
        method,
        path,
        access,
        handler,
    }
}

/// Every route under `/v1`.
pub(crate) fn routes() -> Vec<RouteDef> {
    use Access::*;
    vec![
        route(Method::GET, "/v1/cluster/info", AnyRole, get(cluster::info)),
        route(
            Method::GET,
            "/v1/openapi.json",
            AnyRole,
            get(openapi::document),
        ),
        route(Method::GET, "/v1/workflows", Operator, get(workflows::list)),
        route(Method::POST, "/v1/workflows", Operator, post(calls::start)),
        route(
            Method::GET,
            "/v1/workflows/{id}/result",
            Operator,
            get(calls::result),
        ),
        route(
            Method::POST,
            "/v1/workflows/{id}/signals/{name}",
            Operator,
            post(calls::signal),
        ),
        route(
            Method::POST,
            "/v1/workflows/{id}/updates/{name}",
            Operator,
            post(calls::update),
        ),
        route(
            Method::GET,
            "/v1/workflow-types",
            Operator,
            get(cluster::workflow_types),
        ),
        route(Method::POST, "/v1/bulk/signal", Admin, post(bulk::signal)),
        route(
            Method::GET,
            "/v1/workflow-counts",
            Operator,
            get(workflows::count),
        ),
        route(
            Method::GET,
            "/v1/workflows/{id}",
            Operator,
            get(workflows::describe),
        ),
        route(
            Method::DELETE,
            "/v1/workflows/{id}",
            Admin,
            delete(workflows::purge),
        ),
        route(
            Method::GET,
            "/v1/workflows/{id}/children",
            Operator,
            get(workflows::children),
        ),
        route(
            Method::POST,
            "/v1/workflows/{id}/cancel",
            Operator,
            post(workflows::cancel),
        ),
        route(
            Method::GET,
            "/v1/workflows/{id}/queries/{name}",
            Operator,
            get(workflows::query),
        ),
        route(Method::GET, "/v1/reviews", Operator, get(reviews::list)),
        route(
            Method::POST,
            "/v1/workflows/{id}/review",
            Operator,
            post(reviews::decide),
        ),
        route(
            Method::POST,
            "/v1/workflows/{id}/retry",
            Operator,
            post(workflows::retry),
        ),
        route(Method::POST, "/v1/bulk/cancel", Admin, post(bulk::cancel)),
        route(Method::POST, "/v1/bulk/purge", Admin, post(bulk::purge)),
        route(Method::GET, "/v1/audit", Admin, get(cluster::audit)),
        route(Method::POST, "/v1/admin/backup", Admin, post(admin::backup)),
        route(Method::GET, "/v1/recovery", Operator, get(recovery::report)),
        route(Method::GET, "/v1/schedules", Operator, get(schedules::list)),
        route(
            Method::POST,
            "/v1/schedules",
            Admin,
            post(schedules::create),
        ),
        route(
            Method::GET,
            "/v1/schedules/{id}",
            Operator,
            get(schedules::describe),
        ),
        route(
            Method::PUT,
            "/v1/schedules/{id}",
            Admin,
            put(schedules::update),
        ),
        route(
            Method::DELETE,
            "/v1/schedules/{id}",
            Admin,
            delete(schedules::delete),
        ),
        route(
            Method::POST,
            "/v1/schedules/{id}/pause",
            Admin,
            post(schedules::pause),
        ),
        route(
            Method::POST,
            "/v1/schedules/{id}/resume",
            Admin,
            post(schedules::resume),
        ),
        route(
            Method::POST,
            "/v1/schedules/{id}/trigger",
            Operator,
            post(schedules::trigger),
        ),
        route(
            Method::POST,
            "/v1/schedules/{id}/backfill",
            Operator,
            post(schedules::backfill),
        ),
        route(Method::GET, "/v1/events", Operator, get(events::all)),
        route(
            Method::GET,
            "/v1/workflows/{id}/events",
            Operator,
            get(events::workflow),
        ),
    ]
}

/// (method, path, access) of every route under `/v1`, for the tests that hold the OpenAPI
/// document and the auth rules to the router.
#[doc(hidden)]
pub fn route_table() -> Vec<(Method, &'static str, Access)> {
    routes()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}
