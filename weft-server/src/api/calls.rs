//! Calls by name with JSON: start (optionally waiting for the result in the same request),
//! result, signal and update, through the engine's by-name API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::{EngineError, SignalOptions, StartOptions, UpdateOptions};

use super::body::JsonBody;
use super::detached::detached;
use super::types::Status;
use super::workflows::audited;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// Starts a workflow by its type name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The workflow type's name; its newest registered version starts.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The input, as JSON of the workflow's input type.
    #[serde(default)]
    pub input: serde_json::Value,
    /// The workflow id; generated when absent. An id in use is refused (409) unless the
    /// idempotency key matches the start that created it.
    #[serde(default)]
    pub id: Option<String>,
    /// A retried start with the same key answers with the workflow the first created.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// How long the workflow may run in all, in ms.
    #[serde(default)]
    pub execution_timeout_ms: Option<u64>,
    /// Wait up to this long (ms, at most the server's `max_wait`) for the result in the same
    /// request: `200` with the result when it finished in time, else `202`.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// What a workflow returned, or where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultView {
    /// The workflow.
    pub id: String,
    /// Where it is: a final status, or the current one when the wait ran out.
    pub status: Status,
    /// Whether it has finished.
    pub finished: bool,
    /// What it returned, when it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Its error value, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// The answer of a start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StartResponse {
    /// The workflow's id (the existing one, for a repeated idempotency key).
    pub id: String,
    /// The workflow type.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The result, when the request asked to wait for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
}

fn wait_of(shared: &Shared, wait_ms: Option<u64>) -> Duration {
    Duration::from_millis(wait_ms.unwrap_or(0)).min(shared.limits.max_wait)
}

/// Waits up to `wait` for workflow `id`'s result: `200` when it finished, `202` with its
/// current status when the wait ran out.
async fn wait_result(
    shared: &Shared,
    id: &str,
    wait: Duration,
) -> Result<(StatusCode, ResultView), ApiError> {
    let done = |status: Status, output, error| {
        (
            StatusCode::OK,
            ResultView {
                id: id.to_string(),
                status,
                finished: true,
                output,
                error,
            },
        )
    };
    match tokio::time::timeout(wait, shared.engine.result_json(id)).await {
        Ok(Ok(Ok(output))) => Ok(done(Status::Completed, Some(output), None)),
        Ok(Ok(Err(error))) => Ok(done(Status::Failed, None, Some(error))),
        Ok(Err(EngineError::Cancelled { .. })) => Ok(done(Status::Cancelled, None, None)),
        Ok(Err(EngineError::TimedOut { .. })) => Ok(done(Status::TimedOut, None, None)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            let description = shared.engine.describe(id).await?;
            Ok((
                StatusCode::ACCEPTED,
                ResultView {
                    id: id.to_string(),
                    status: description.status.into(),
                    finished: description.status.is_terminal(),
                    output: None,
                    error: None,
                },
            ))
        }
    }
}

/// Starts a workflow by type name with JSON input; the start is durable before the answer.
/// With `wait_ms`, also waits for its result (as Restate's ingress call does).
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows",
    request_body = StartRequest,
    responses(
        (status = 201, description = "Started (or found by its idempotency key)", body = StartResponse),
        (status = 200, description = "Started and finished within wait_ms", body = StartResponse),
        (status = 202, description = "Started; not finished within wait_ms", body = StartResponse),
        (status = 400, description = "Unknown type, or input that does not fit", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<StartResponse>), ApiError> {
    let options = StartOptions {
        id: request.id.clone(),
        idempotency_key: request.idempotency_key.clone(),
        execution_timeout: request.execution_timeout_ms.map(Duration::from_millis),
    };
    let engine = shared.engine.clone();
    let (workflow_type, input) = (request.workflow_type.clone(), request.input);
    let started =
        detached(async move { engine.start_by_name(&workflow_type, input, options).await }).await?;
    let target = started
        .as_deref()
        .map_or_else(|_| request.id.clone().unwrap_or_default(), str::to_string);
    let id = audited(&shared, &principal, "workflow.start", &target, started)?;
    let mut response = StartResponse {
        id: id.clone(),
        workflow_type: request.workflow_type,
        result: None,
    };
    let Some(wait_ms) = request.wait_ms else {
        return Ok((StatusCode::CREATED, Json(response)));
    };
    let (status, result) = wait_result(&shared, &id, wait_of(&shared, Some(wait_ms))).await?;
    response.result = Some(result);
    Ok((status, Json(response)))
}

/// How long to wait for a result.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultParams {
    /// Wait up to this long (ms, at most the server's `max_wait`); 0 (the default) answers at
    /// once.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// The workflow's result as JSON: `200` once it finished (completed, failed, cancelled or timed
/// out), `202` with its current status when it has not within `wait_ms`.
#[utoipa::path(get, path = "/v1/workflows/{id}/result", tag = "workflows",
    params(("id" = String, Path, description = "The workflow id"), ResultParams),
    responses(
        (status = 200, description = "Finished", body = ResultView),
        (status = 202, description = "Not finished within the wait", body = ResultView),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Parked", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn result(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<ResultParams>, QueryRejection>,
) -> Result<(StatusCode, Json<ResultView>), ApiError> {
    let Path(id) = id?;
    let Query(params) = params?;
    let (status, view) = wait_result(&shared, &id, wait_of(&shared, params.wait_ms)).await?;
    Ok((status, Json(view)))
}

/// A signal's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// The signal, as JSON of the signal type the workflow waits for under that name.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Names the signal for deduplication: the same id again (within the engine's window) is
    /// not queued twice, and answers as the first did.
    #[serde(default)]
    pub signal_id: Option<String>,
}

/// What a signal or update did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    /// The workflow.
    pub id: String,
    /// The signal's or update's name.
    pub name: String,
    /// `signal_queued`, `update_answered` or `update_pending`.
    pub outcome: String,
    /// The update's id (call again with it to keep waiting for a pending one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
    /// The update's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// Sends a signal by name; it is stored durably before the answer, and the workflow gets it at
/// its next wait for that signal.
#[utoipa::path(post, path = "/v1/workflows/{id}/signals/{name}", tag = "workflows",
    params(
        ("id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The signal's name")),
    request_body = SignalRequest,
    responses(
        (status = 202, description = "Stored", body = MessageResponse),
        (status = 400, description = "Unknown signal, or a payload that does not fit", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "The workflow has finished", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn signal(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody(request): JsonBody<Option<SignalRequest>>,
) -> Result<(StatusCode, Json<MessageResponse>), ApiError> {
    let Path((id, name)) = path?;
    let request = request.unwrap_or_default();
    let options = SignalOptions {
        signal_id: request.signal_id,
    };
    let engine = shared.engine.clone();
    let (target, signal) = (id.clone(), name.clone());
    let sent = detached(async move {
        engine
            .signal_by_name(&target, &signal, request.payload, options)
            .await
    })
    .await?;
    audited(&shared, &principal, "workflow.signal", &id, sent)?;
    shared.events.signal_accepted(&id, &name);
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageResponse {
            id,
            name,
            outcome: "signal_queued".into(),
            update_id: None,
            result: None,
        }),
    ))
}

/// An update's request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The update, as JSON of the update type the workflow waits for under that name.
    #[serde(default)]
    pub request: serde_json::Value,
    /// Names the update: the same id again gets the same answer, not a second delivery.
    /// Generated when absent (then a retry cannot be matched: pass one to retry safely).
    #[serde(default)]
    pub update_id: Option<String>,
    /// How long to wait for the answer (ms, at most the server's `max_wait`; default 10 s).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

fn generated_update_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("http-{start}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sends an update by name and waits for the workflow's answer: `200` with it, or `202` when
/// the wait ran out (the update stays queued; call again with the same `update_id`).
#[utoipa::path(post, path = "/v1/workflows/{id}/updates/{name}", tag = "workflows",
    params(
        ("id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The update's name")),
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "Answered", body = MessageResponse),
        (status = 202, description = "Queued, not answered within the wait", body = MessageResponse),
        (status = 400, description = "Unknown update, or a request that does not fit", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Finished, parked, or ended without answering", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody(request): JsonBody<Option<UpdateRequest>>,
) -> Result<(StatusCode, Json<MessageResponse>), ApiError> {
    let Path((id, name)) = path?;
    let request = request.unwrap_or_default();
    let update_id = request.update_id.unwrap_or_else(generated_update_id);
    let options = UpdateOptions {
        update_id: update_id.clone(),
        timeout: Duration::from_millis(request.wait_ms.unwrap_or(10_000))
            .min(shared.limits.max_wait),
    };
    let engine = shared.engine.clone();
    let (target, update) = (id.clone(), name.clone());
    let answered = detached(async move {
        engine
            .update_by_name(&target, &update, request.request, options)
            .await
    })
    .await?;
    let (status, outcome, result) = match answered {
        Ok(result) => (StatusCode::OK, "update_answered", Some(result)),
        Err(EngineError::UpdateTimedOut { .. }) => (StatusCode::ACCEPTED, "update_pending", None),
        Err(e) => {
            shared
                .audit
                .record(&principal, "workflow.update", &id, e.code());
            return Err(e.into());
        }
    };
    shared
        .audit
        .record(&principal, "workflow.update", &id, outcome);
    Ok((
        status,
        Json(MessageResponse {
            id,
            name,
            outcome: outcome.into(),
            update_id: Some(update_id),
            result,
        }),
    ))
}
