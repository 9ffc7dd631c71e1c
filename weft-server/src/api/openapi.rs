//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, generated with utoipa from the same types
//! and handlers as the routes.

use std::sync::OnceLock;

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document's source: every path and schema of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weft server API",
        description = "Durable workflows over HTTP. Each operation's `security` lists the roles whose bearer tokens may call it; errors are `{code, message, details}`."
    ),
    paths(
        crate::health::health,
        crate::health::ready,
        super::cluster::info,
        super::cluster::audit,
        document,
        super::workflows::list,
        super::calls::start,
        super::calls::result,
        super::calls::signal,
        super::calls::update,
        super::cluster::workflow_types,
        super::bulk::signal,
        super::workflows::count,
        super::workflows::describe,
        super::workflows::children,
        super::workflows::cancel,
        super::workflows::retry,
        super::workflows::purge,
        super::workflows::query,
        super::reviews::list,
        super::reviews::decide,
        super::bulk::cancel,
        super::bulk::purge,
        super::admin::backup,
        super::events::workflow,
        super::events::all,
        super::recovery::report,
        super::schedules::list,
        super::schedules::create,
        super::schedules::describe,
        super::schedules::update,
        super::schedules::delete,
        super::schedules::pause,
        super::schedules::resume,
        super::schedules::trigger,
        super::schedules::backfill,
    ),
    components(schemas(ErrorBody, crate::auth::Role)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or_default())
}

/// The document with the JSON Schemas the engine has for its workflows' inputs, outputs,
/// signals and updates merged into `components.schemas`, named
/// `workflow.{name}.v{version}.{input|output|error|signal.NAME|update.NAME|update.NAME.response}`.
pub(crate) fn with_workflow_schemas(engine: &weft_runtime::Engine) -> serde_json::Value {
    let mut doc = json().clone();
    let mut schemas = serde_json::Map::new();
    for t in engine.workflow_types() {
        let prefix = format!("workflow.{}.v{}", t.name, t.version);
        let mut add = |suffix: String, schema: Option<serde_json::Value>| {
            if let Some(schema) = schema {
                schemas.insert(format!("{prefix}.{suffix}"), schema);
            }
        };
        add("input".into(), t.input_schema);
        add("output".into(), t.output_schema);
        add("error".into(), t.error_schema);
        for signal in t.signals {
            add(format!("signal.{}", signal.name), signal.schema);
        }
        for update in t.updates {
            add(format!("update.{}", update.name), update.request_schema);
            add(
                format!("update.{}.response", update.name),
                update.response_schema,
            );
        }
    }
    if let Some(components) = doc["components"]["schemas"].as_object_mut() {
        components.extend(schemas);
    }
    doc
}

/// This OpenAPI document, with the workflows' JSON Schemas where the engine has them.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "cluster",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
    security(("bearer" = ["worker", "operator", "admin"])))]
pub(crate) async fn document(
    axum::extract::State(shared): axum::extract::State<std::sync::Arc<crate::server::Shared>>,
) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Json(with_workflow_schemas(&shared.engine)),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::auth::Access;

    /// Every route is documented with the roles it admits, and every documented route exists.
    #[test]
    fn the_document_and_the_router_list_the_same_routes_with_the_same_roles() {
        let doc = json();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let roles: Vec<String> = operation["security"]
                    .as_array()
                    .map(|reqs| {
                        reqs.iter()
                            .flat_map(|r| r["bearer"].as_array().cloned().unwrap_or_default())
                            .map(|v| v.as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                documented.insert((method.to_uppercase(), path.clone(), roles));
            }
        }
        let mut routed: BTreeSet<(String, String, Vec<String>)> = super::super::route_table()
            .into_iter()
            .map(|(method, path, access)| {
                (
                    method.to_string(),
                    path.to_string(),
                    access.roles().iter().map(|r| r.to_string()).collect(),
                )
            })
            .collect();
        for path in ["/health", "/ready"] {
            routed.insert((
                "GET".into(),
                path.into(),
                Access::Public
                    .roles()
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
            ));
        }
        assert_eq!(documented, routed);
        assert_eq!(doc["openapi"].as_str().unwrap(), "3.1.0");
    }
}
