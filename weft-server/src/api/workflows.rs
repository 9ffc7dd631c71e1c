//! Workflow routes: list, count, describe, cancel, purge, query.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::{GroupBy, ListFilter};

use super::detached::detached;
use super::types::{
    ChildrenResponse, CountGroup, CountResponse, Filter, ListResponse, SummaryView, WorkflowView,
    decode_cursor, encode_cursor, no_unknown_params, parse_sort,
};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// The default page size of a list.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Takes `name` out of `params` as a number.
pub(crate) fn take_usize(
    params: &mut BTreeMap<String, String>,
    name: &str,
) -> Result<Option<usize>, ApiError> {
    match params.remove(name) {
        None => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| {
            ApiError::bad_request(
                "request.invalid_query",
                format!("`{name}` must be a non-negative integer, got {value:?}"),
            )
        }),
    }
}

/// Takes the paging parameters every list route shares out of `params`: `page_size` (default
/// [`DEFAULT_PAGE_SIZE`], clamped to 1..=`max_page_size`) and `cursor` (the `next_cursor` of a
/// previous page), decoded to the engine's page token.
pub(crate) fn take_page(
    params: &mut BTreeMap<String, String>,
    max_page_size: usize,
) -> Result<(usize, Option<String>), ApiError> {
    let page_size = take_usize(params, "page_size")?
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, max_page_size.max(1));
    let cursor = params
        .remove("cursor")
        .map(|c| decode_cursor(&c))
        .transpose()?;
    Ok((page_size, cursor))
}

/// Workflows matching a filter, a page at a time, in id order or sorted by creation or update
/// time (read from the engine's time indexes, so a page of the newest costs a page).
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    params(
        ("status" = Option<String>, Query, description = "running, waiting, completed, failed, cancelled, parked or timed_out"),
        ("type" = Option<String>, Query, description = "Only this workflow type"),
        ("id_prefix" = Option<String>, Query, description = "Only ids starting with this"),
        ("created_after_ms" = Option<i64>, Query, description = "Created at or after (ms since the epoch)"),
        ("created_before_ms" = Option<i64>, Query, description = "Created before (ms since the epoch)"),
        ("updated_after_ms" = Option<i64>, Query, description = "Last written at or after (ms since the epoch)"),
        ("updated_before_ms" = Option<i64>, Query, description = "Last written before (ms since the epoch)"),
        ("sort" = Option<String>, Query, description = "id (default), created_asc, created_desc, updated_asc or updated_desc; ties in time go by id"),
        ("page_size" = Option<usize>, Query, description = "At most this many (default 100, at most the server's max_page_size)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page (of the same filter and sort)"),
    ),
    responses(
        (status = 200, description = "One page", body = ListResponse),
        (status = 400, description = "A bad filter or cursor", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(mut params) = params?;
    let filter = Filter::from_query(&mut params)?;
    let (page_size, cursor) = take_page(&mut params, shared.limits.max_page_size)?;
    let order = parse_sort(params.remove("sort").as_deref())?;
    no_unknown_params(&params)?;
    let filter = ListFilter {
        order,
        ..filter.to_engine()
    };
    let page = shared
        .engine
        .list(&filter, page_size, cursor.as_deref())
        .await?;
    Ok(Json(ListResponse {
        items: page.items.into_iter().map(SummaryView::from).collect(),
        next_cursor: page.next_page_token.as_deref().map(encode_cursor),
    }))
}

/// How many workflows match a filter, grouped by status, type or a search attribute.
#[utoipa::path(get, path = "/v1/workflow-counts", tag = "workflows",
    params(
        ("group_by" = Option<String>, Query, description = "status (default), type, or attribute:NAME"),
        ("status" = Option<String>, Query, description = "As for the list"),
        ("type" = Option<String>, Query, description = "As for the list"),
        ("id_prefix" = Option<String>, Query, description = "As for the list"),
    ),
    responses(
        (status = 200, description = "The groups", body = CountResponse),
        (status = 400, description = "A bad filter", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn count(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<CountResponse>, ApiError> {
    let Query(mut params) = params?;
    let filter = Filter::from_query(&mut params)?;
    let group_by = match params.remove("group_by").as_deref() {
        None | Some("status") => GroupBy::Status,
        Some("type") => GroupBy::Type,
        Some(other) => match other.strip_prefix("attribute:") {
            Some(name) if !name.is_empty() => GroupBy::Attribute(name.to_string()),
            _ => {
                return Err(ApiError::bad_request(
                    "request.invalid_query",
                    format!("unknown group_by {other:?}; use status, type or attribute:NAME"),
                ));
            }
        },
    };
    no_unknown_params(&params)?;
    let groups = shared.engine.count(&filter.to_engine(), group_by).await?;
    let total = groups.iter().map(|(_, n)| n).sum();
    Ok(Json(CountResponse {
        groups: groups
            .into_iter()
            .map(|(group, count)| CountGroup { group, count })
            .collect(),
        total,
    }))
}

/// The child workflows a workflow started, a page at a time in id order, from the engine's
/// children index (no record is read). A workflow without children, or none, has none.
#[utoipa::path(get, path = "/v1/workflows/{id}/children", tag = "workflows",
    params(
        ("id" = String, Path, description = "The parent workflow's id"),
        ("page_size" = Option<usize>, Query, description = "At most this many (default 100, at most the server's max_page_size)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of child ids", body = ChildrenResponse),
        (status = 400, description = "A bad cursor", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn children(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ChildrenResponse>, ApiError> {
    let Path(id) = id?;
    let Query(mut params) = params?;
    let (page_size, cursor) = take_page(&mut params, shared.limits.max_page_size)?;
    no_unknown_params(&params)?;
    let page = shared
        .engine
        .children(&id, page_size, cursor.as_deref())
        .await?;
    Ok(Json(ChildrenResponse {
        items: page.items,
        next_cursor: page.next_page_token.as_deref().map(encode_cursor),
    }))
}

/// A workflow: status, step, the live checkpoint as JSON, the pending command in words,
/// attributes, parent, and the audit entries about it.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowView),
        (status = 404, description = "No such workflow", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn describe(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkflowView>, ApiError> {
    let Path(id) = id?;
    let description = shared.engine.describe(&id).await?;
    let audit = shared.audit.entries(Some(&id));
    Ok(Json(WorkflowView::new(description, audit)))
}

/// What an action on one workflow did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionResponse {
    /// The workflow.
    pub id: String,
    /// What was done: `cancel_requested`, `purged`, `review_decided`.
    pub outcome: String,
}

/// Records an action on `target` in the audit log with its outcome, and passes the result on.
pub(crate) fn audited<T>(
    shared: &Shared,
    principal: &Principal,
    action: &str,
    target: &str,
    result: Result<T, weft_runtime::EngineError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    shared.audit.record(principal, action, target, outcome);
    result.map_err(ApiError::from)
}

/// Requests cancellation: stored durably before the answer; the workflow sees it at its
/// current await. Cancelling a finished workflow does nothing.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 202, description = "Cancellation stored", body = ActionResponse),
        (status = 404, description = "No such workflow", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<ActionResponse>), ApiError> {
    let Path(id) = id?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.cancel(&target).await }).await?;
    audited(&shared, &principal, "workflow.cancel", &id, result)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ActionResponse {
            id,
            outcome: "cancel_requested".into(),
        }),
    ))
}

/// Deletes a finished workflow and everything stored under its id.
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 200, description = "Purged", body = ActionResponse),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Not finished, or a child whose parent is not", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ActionResponse>, ApiError> {
    let Path(id) = id?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.purge(&target).await }).await?;
    audited(&shared, &principal, "workflow.purge", &id, result)?;
    Ok(Json(ActionResponse {
        id,
        outcome: "purged".into(),
    }))
}

/// The answer of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueryResponse {
    /// The query's answer, as JSON.
    pub result: serde_json::Value,
}

/// Answers a query registered by name for the workflow's version, from its persisted state;
/// reads only.
#[utoipa::path(get, path = "/v1/workflows/{id}/queries/{name}", tag = "workflows",
    params(
        ("id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The query's name")),
    responses(
        (status = 200, description = "The answer", body = QueryResponse),
        (status = 400, description = "No such query for this workflow", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<QueryResponse>, ApiError> {
    let Path((id, name)) = path?;
    let result = shared.engine.query_by_name(&id, &name).await?;
    Ok(Json(QueryResponse { result }))
}

/// Retries a parked workflow without a restart (after the cause was fixed, say a dependency
/// that is back): its last step runs again from its kept state.
#[utoipa::path(post, path = "/v1/workflows/{id}/retry", tag = "workflows",
    params(("id" = String, Path, description = "The workflow id")),
    responses(
        (status = 202, description = "Restored; the engine drives it again", body = ActionResponse),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "Not parked, finished, or parked for a cause only new code fixes", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn retry(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<ActionResponse>), ApiError> {
    let Path(id) = id?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.retry(&target).await }).await?;
    audited(&shared, &principal, "workflow.retry", &id, result)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ActionResponse {
            id,
            outcome: "retry_requested".into(),
        }),
    ))
}
