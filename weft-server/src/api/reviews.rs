//! Review routes: pending reviews, and deciding one (recorded with the deciding principal).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::{Decision, ReviewFilter};

use super::body::JsonBody;
use super::detached::detached;
use super::types::{encode_cursor, millis, no_unknown_params};
use super::workflows::{ActionResponse, audited, take_page};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// A review waiting for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// The review's id, `{workflow id}@{step}`.
    pub id: String,
    /// The workflow waiting on it.
    pub workflow_id: String,
    /// What is reviewed.
    pub title: String,
    /// Who may decide.
    pub reviewers: Vec<String>,
    /// When it was requested (ms since the epoch).
    pub requested_at_ms: i64,
    /// When it times out (ms since the epoch).
    pub deadline_ms: i64,
}

/// A page of pending reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewList {
    /// The reviews, in workflow id order.
    pub items: Vec<ReviewView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Pending reviews, a page at a time, in workflow id order.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews",
    params(
        ("reviewer" = Option<String>, Query, description = "Only reviews listing this reviewer"),
        ("workflow_id_prefix" = Option<String>, Query, description = "Only workflows whose id starts with this"),
        ("page_size" = Option<usize>, Query, description = "At most this many (default 100, at most the server's max_page_size)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "Pending reviews", body = ReviewList),
        (status = 400, description = "Bad parameters", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ReviewList>, ApiError> {
    let Query(mut params) = params?;
    let (page_size, cursor) = take_page(&mut params, shared.limits.max_page_size)?;
    let filter = ReviewFilter {
        reviewer: params.remove("reviewer"),
        workflow_id_prefix: params.remove("workflow_id_prefix"),
    };
    no_unknown_params(&params)?;
    let page = shared
        .engine
        .pending_reviews(&filter, page_size, cursor.as_deref())
        .await?;
    Ok(Json(ReviewList {
        items: page
            .items
            .into_iter()
            .map(|r| ReviewView {
                id: r.id,
                workflow_id: r.workflow_id,
                title: r.title,
                reviewers: r.reviewers,
                requested_at_ms: millis(r.requested_at),
                deadline_ms: millis(r.deadline),
            })
            .collect(),
        next_cursor: page.next_page_token.as_deref().map(encode_cursor),
    }))
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The workflow resumes with `ReviewOutcome::Approved`.
    Approve,
    /// The workflow resumes with `ReviewOutcome::Rejected`.
    Reject,
}

/// A decision on a pending review. Who decides is the token's principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Approve or reject.
    pub decision: Verdict,
    /// Why, or any remark.
    #[serde(default)]
    pub comment: String,
}

/// Decides the review a workflow waits on; stored durably before the answer, with the
/// token's principal as who decided.
#[utoipa::path(post, path = "/v1/workflows/{id}/review", tag = "reviews",
    params(("id" = String, Path, description = "The workflow id")),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "Decided", body = ActionResponse),
        (status = 404, description = "No review is waiting for a decision", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn decide(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<ActionResponse>, ApiError> {
    let Path(id) = id?;
    let by = principal.name.clone();
    let decision = match request.decision {
        Verdict::Approve => Decision::Approved {
            by,
            comment: request.comment,
        },
        Verdict::Reject => Decision::Rejected {
            by,
            comment: request.comment,
        },
    };
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.decide_review(&target, decision).await }).await?;
    audited(&shared, &principal, "review.decide", &id, result)?;
    Ok(Json(ActionResponse {
        id,
        outcome: "review_decided".into(),
    }))
}
