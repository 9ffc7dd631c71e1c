//! The server's identity and the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::types::no_unknown_params;
use crate::audit::AuditEntry;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// The API version this server speaks (the path prefix).
pub const API_VERSION: &str = "v1";

/// The limits a client may need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitsView {
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a request may take, in ms.
    pub request_timeout_ms: u64,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// The longest wait a request may ask for, in ms.
    pub max_wait_ms: u64,
    /// The largest list page.
    pub max_page_size: usize,
    /// The most workflows one bulk request acts on.
    pub max_bulk: usize,
}

/// A signal or update a workflow type accepts by name, with its JSON Schema when the type
/// derives `schemars::JsonSchema` (and the engine is built with its `schemars` feature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageTypeView {
    /// The name to send it under.
    pub name: String,
    /// Its JSON Schema (a signal's, or an update's request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// An update's response schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<serde_json::Value>,
}

/// A registered workflow version and what it accepts by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowTypeView {
    /// The type's name, as `POST /v1/workflows` takes it.
    pub name: String,
    /// The version.
    pub version: u32,
    /// The state machine's fingerprint, in hex.
    pub fingerprint: String,
    /// Whether new starts use this version.
    pub latest: bool,
    /// The signals it waits for.
    pub signals: Vec<MessageTypeView>,
    /// The updates it waits for.
    pub updates: Vec<MessageTypeView>,
    /// The queries registered for it.
    pub queries: Vec<String>,
    /// The input's JSON Schema, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
    /// The output's JSON Schema, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
}

/// The engine's registered workflow types, as the API shows them.
pub(crate) fn workflow_type_views(engine: &weft_runtime::Engine) -> Vec<WorkflowTypeView> {
    engine
        .workflow_types()
        .into_iter()
        .map(|t| WorkflowTypeView {
            name: t.name,
            version: t.version,
            fingerprint: format!("{:#018x}", t.fingerprint),
            latest: t.latest,
            signals: t
                .signals
                .into_iter()
                .map(|s| MessageTypeView {
                    name: s.name,
                    schema: s.schema,
                    response_schema: None,
                })
                .collect(),
            updates: t
                .updates
                .into_iter()
                .map(|u| MessageTypeView {
                    name: u.name,
                    schema: u.request_schema,
                    response_schema: u.response_schema,
                })
                .collect(),
            queries: t.queries,
            input_schema: t.input_schema,
            output_schema: t.output_schema,
        })
        .collect()
}

/// The registered workflow types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowTypeList {
    /// By name, then version.
    pub items: Vec<WorkflowTypeView>,
}

/// Every registered workflow version, with the signals, updates and queries it accepts by
/// name and their JSON Schemas where the engine has them.
#[utoipa::path(get, path = "/v1/workflow-types", tag = "cluster",
    responses((status = 200, description = "The registered types", body = WorkflowTypeList)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn workflow_types(State(shared): State<Arc<Shared>>) -> Json<WorkflowTypeList> {
    Json(WorkflowTypeList {
        items: workflow_type_views(&shared.engine),
    })
}

/// A registered workflow version, as cluster info lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TypeSummary {
    /// The type's name.
    pub name: String,
    /// The version.
    pub version: u32,
    /// The fingerprint, in hex.
    pub fingerprint: String,
}

/// Engine commit counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    /// Committed batches.
    pub batches: u64,
    /// Transitions committed.
    pub transitions: u64,
    /// Batches that failed.
    pub failed_batches: u64,
    /// Workflows with a runner task now.
    pub active_workflows: usize,
}

/// Who this server is: build, protocol, storage ownership, limits, uptime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterInfo {
    /// The server crate's version.
    pub server_version: String,
    /// The commit it was built from, when the build recorded one (`WEFT_BUILD_COMMIT`).
    pub build_commit: Option<String>,
    /// The API version (`v1`).
    pub api_version: String,
    /// How payloads are encoded in storage.
    pub payload_codec: String,
    /// The store format version of this build, which the store's marker holds: the engine
    /// refuses a newer store at start and marks an older one with it.
    pub store_format_version: u32,
    /// The owner epoch this engine holds; a newer engine on the same store has a higher one.
    pub ownership_epoch: u64,
    /// Whether another engine took the store over.
    pub fenced: bool,
    /// Seconds since the server was built.
    pub uptime_seconds: u64,
    /// The registered workflow types, versions and fingerprints.
    pub workflow_types: Vec<TypeSummary>,
    /// The limits.
    pub limits: LimitsView,
    /// Commit counters.
    pub stats: StatsView,
}

/// Build identity, API version, ownership epoch, limits and uptime; any role may read it.
#[utoipa::path(get, path = "/v1/cluster/info", tag = "cluster",
    responses(
        (status = 200, description = "The server's identity", body = ClusterInfo),
        (status = 401, description = "No valid token", body = ErrorBody)),
    security(("bearer" = ["worker", "operator", "admin"])))]
pub(crate) async fn info(State(shared): State<Arc<Shared>>) -> Json<ClusterInfo> {
    let engine = &shared.engine;
    let stats = engine.stats();
    let limits = &shared.limits;
    Json(ClusterInfo {
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        build_commit: option_env!("WEFT_BUILD_COMMIT").map(str::to_string),
        api_version: API_VERSION.to_string(),
        payload_codec: "bincode 2 (serde), records tagged with their format".to_string(),
        store_format_version: weft_runtime::storage::STORE_FORMAT_VERSION,
        ownership_epoch: engine.epoch(),
        fenced: engine.is_fenced(),
        uptime_seconds: shared.started.elapsed().as_secs(),
        workflow_types: engine
            .workflow_types()
            .into_iter()
            .map(|t| TypeSummary {
                name: t.name,
                version: t.version,
                fingerprint: format!("{:#018x}", t.fingerprint),
            })
            .collect(),
        limits: LimitsView {
            max_body_bytes: limits.max_body_bytes,
            request_timeout_ms: limits.request_timeout.as_millis() as u64,
            max_in_flight: limits.max_in_flight,
            max_wait_ms: limits.max_wait.as_millis() as u64,
            max_page_size: limits.max_page_size,
            max_bulk: limits.max_bulk,
        },
        stats: StatsView {
            batches: stats.batches,
            transitions: stats.transitions,
            failed_batches: stats.failed_batches,
            active_workflows: engine.active_workflows(),
        },
    })
}

/// The audit log's kept entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
}

/// The operator and admin actions this server recorded (an in-memory ring: the newest
/// `audit_capacity` since start).
#[utoipa::path(get, path = "/v1/audit", tag = "cluster",
    params(("target" = Option<String>, Query, description = "Only entries about this workflow id")),
    responses(
        (status = 200, description = "The entries", body = AuditList),
        (status = 400, description = "Bad parameters", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn audit(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    let Query(mut params) = params?;
    let target = params.remove("target");
    no_unknown_params(&params)?;
    Ok(Json(AuditList {
        entries: shared.audit.entries(target.as_deref()),
    }))
}
