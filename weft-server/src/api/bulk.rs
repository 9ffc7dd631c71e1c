//! Bulk operations: cancel or purge every workflow matching a filter, at most `Limits::max_bulk`
//! per request, with a dry run that says how many match.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::{EngineError, GroupBy};

use super::body::JsonBody;
use super::detached::detached;
use super::types::Filter;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// Failures listed in a bulk answer at most; the count of failures is always exact.
const MAX_LISTED_FAILURES: usize = 100;

/// A bulk request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// Which workflows; every field given must match.
    #[serde(default)]
    pub filter: Filter,
    /// Only count what matches; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Act on at most this many (default and cap: the server's `max_bulk`).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One workflow a bulk operation could not act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkFailure {
    /// The workflow.
    pub id: String,
    /// The engine's error code.
    pub code: String,
    /// The error for people.
    pub message: String,
}

/// What a bulk operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkResponse {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// A dry run: how many workflows match in all. Otherwise: how many were acted on.
    pub matched: u64,
    /// How many succeeded (0 for a dry run).
    pub succeeded: u64,
    /// How many failed.
    pub failed: u64,
    /// The first failures (at most 100).
    pub failures: Vec<BulkFailure>,
    /// Whether more workflows match than this request acted on: send it again to go on.
    pub truncated: bool,
}

/// A bulk signal: a signal, by name with a JSON payload, to every matching workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSignalRequest {
    /// Which workflows; every field given must match.
    #[serde(default)]
    pub filter: Filter,
    /// The signal's name.
    pub signal: String,
    /// The payload, as JSON of the signal type.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Only count what matches; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Act on at most this many (default and cap: the server's `max_bulk`).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// What a bulk request does to each workflow (the dashboard's bulk forms share it).
#[derive(Clone)]
pub(crate) enum Action {
    /// Request cancellation.
    Cancel,
    /// Delete a finished workflow.
    Purge,
    /// Send a signal by name.
    Signal {
        /// The signal's name.
        name: String,
        /// Its payload as JSON.
        payload: serde_json::Value,
    },
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Cancel => "bulk.cancel",
            Action::Purge => "bulk.purge",
            Action::Signal { .. } => "bulk.signal",
        }
    }
}

/// Runs `action` over the workflows `request` selects (or only counts them, for a dry run), and
/// records it in the audit log.
pub(crate) async fn run(
    shared: &Shared,
    principal: &Principal,
    action: Action,
    request: BulkRequest,
) -> Result<BulkResponse, ApiError> {
    let filter = request.filter.to_engine();
    let cap = shared.limits.max_bulk.max(1);
    let limit = request.limit.unwrap_or(cap).clamp(1, cap);
    let target = serde_json::to_string(&request.filter).unwrap_or_default();
    if request.dry_run {
        let groups = shared.engine.count(&filter, GroupBy::Status).await?;
        let matched = groups.iter().map(|(_, n)| n).sum::<u64>();
        return Ok(BulkResponse {
            dry_run: true,
            matched,
            succeeded: 0,
            failed: 0,
            failures: Vec::new(),
            truncated: matched > limit as u64,
        });
    }
    let mut response = BulkResponse {
        dry_run: false,
        matched: 0,
        succeeded: 0,
        failed: 0,
        failures: Vec::new(),
        truncated: false,
    };
    let mut cursor: Option<String> = None;
    'pages: loop {
        let page = shared
            .engine
            .list(&filter, 256.min(limit + 1), cursor.as_deref())
            .await?;
        for item in page.items {
            if response.matched == limit as u64 {
                response.truncated = true;
                break 'pages;
            }
            response.matched += 1;
            let result: Result<(), EngineError> = match &action {
                Action::Cancel => shared.engine.cancel(&item.id).await,
                Action::Purge => shared.engine.purge(&item.id).await,
                Action::Signal { name, payload } => {
                    let sent = shared
                        .engine
                        .signal_by_name(&item.id, name, payload.clone(), Default::default())
                        .await;
                    if sent.is_ok() {
                        shared.events.signal_accepted(&item.id, name);
                    }
                    sent
                }
            };
            match result {
                Ok(()) => response.succeeded += 1,
                Err(e) if e.kind() == weft_runtime::ErrorKind::Unavailable => {
                    // The engine cannot act now: stop, and say how far this got.
                    shared
                        .audit
                        .record(principal, action.name(), &target, e.code());
                    return Err(e.into());
                }
                Err(e) => {
                    response.failed += 1;
                    if response.failures.len() < MAX_LISTED_FAILURES {
                        response.failures.push(BulkFailure {
                            id: item.id,
                            code: e.code().to_string(),
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        match page.next_page_token {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    shared.audit.record(
        principal,
        action.name(),
        &target,
        &format!(
            "ok: {} of {} ({} failed)",
            response.succeeded, response.matched, response.failed
        ),
    );
    Ok(response)
}

/// Requests cancellation of every matching workflow; it goes on to the end of its page even
/// when the client leaves (finished ones are left as they are).
#[utoipa::path(post, path = "/v1/bulk/cancel", tag = "bulk",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "What was done", body = BulkResponse),
        (status = 400, description = "A bad filter", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<Option<BulkRequest>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let request = request.unwrap_or_default();
    detached(async move { run(&shared, &principal, Action::Cancel, request).await })
        .await?
        .map(Json)
}

/// Purges every matching finished workflow; unfinished ones are reported as failures.
#[utoipa::path(post, path = "/v1/bulk/purge", tag = "bulk",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "What was done", body = BulkResponse),
        (status = 400, description = "A bad filter", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<Option<BulkRequest>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let request = request.unwrap_or_default();
    detached(async move { run(&shared, &principal, Action::Purge, request).await })
        .await?
        .map(Json)
}

/// Sends a signal, by name with a JSON payload, to every matching workflow (finished ones and
/// ones that do not take it are reported as failures).
#[utoipa::path(post, path = "/v1/bulk/signal", tag = "bulk",
    request_body = BulkSignalRequest,
    responses(
        (status = 200, description = "What was done", body = BulkResponse),
        (status = 400, description = "A bad filter", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn signal(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<BulkSignalRequest>,
) -> Result<Json<BulkResponse>, ApiError> {
    let action = Action::Signal {
        name: request.signal,
        payload: request.payload,
    };
    let bulk = BulkRequest {
        filter: request.filter,
        dry_run: request.dry_run,
        limit: request.limit,
    };
    detached(async move { run(&shared, &principal, action, bulk).await })
        .await?
        .map(Json)
}
