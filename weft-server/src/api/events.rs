//! Event routes: a workflow's events and every workflow's events, as Server-Sent Events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::types::{Status, WorkflowView, no_unknown_params};
use crate::error::{ApiError, ErrorBody};
use crate::events::{self, EventFilter, Resume};
use crate::server::Shared;

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "request.invalid_last_event_id",
                    "Last-Event-ID must be the id of an event this server sent",
                )
            }),
    }
}

fn too_many_streams() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server.too_many_streams",
        "the server has as many event streams open as it allows; retry later",
    )
    .retry_after(5)
}

fn sse(
    stream: impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> + Send + 'static,
) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One workflow's events: a fresh stream starts with its current description (`description`),
/// then each committed step (`step`) and each signal accepted through this server (`signal`),
/// and ends after it finishes. With `Last-Event-ID`, the events after that id are replayed from
/// the server's window first; outside the window, a `gap` event and the current description
/// come first.
#[utoipa::path(get, path = "/v1/workflows/{id}/events", tag = "events",
    params(
        ("id" = String, Path, description = "The workflow id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = crate::events::ServerEvent),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 503, description = "Too many streams open", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn workflow(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let last = last_event_id(&headers)?;
    let subscription = shared.events.subscribe(last).ok_or_else(too_many_streams)?;
    // Read after subscribing, so no step between the description and the feed is missed.
    let description = shared.engine.describe(&id).await?;
    let finished = description.status.is_terminal();
    let described_step = description.step;
    let view = WorkflowView::new(description, Vec::new());
    let describe = || {
        Event::default()
            .event("description")
            .data(serde_json::to_string(&view).unwrap_or_default())
    };
    let mut first = Vec::new();
    match (&subscription.resume, last) {
        (Resume::OutOfWindow, Some(last)) => {
            first.push(events::out_of_window(last));
            first.push(describe());
        }
        (Resume::InWindow, _) => {}
        _ => first.push(describe()),
    }
    let filter = EventFilter {
        workflow_id: Some(id),
        end_when_finished: true,
        // A resumed stream replays what the client missed; a described one starts after it.
        after_step: (!matches!(subscription.resume, Resume::InWindow)).then_some(described_step),
        ..EventFilter::default()
    };
    if finished && !matches!(subscription.resume, Resume::InWindow) {
        // Nothing more will happen: the description says how it ended.
        let done = futures_util::stream::iter(first.into_iter().map(Ok));
        return Ok(sse(done));
    }
    Ok(sse(events::stream(subscription, first, filter)))
}

/// Every workflow's events, filtered by `type`, `status` (after the step) and `id_prefix`;
/// resumable with `Last-Event-ID` within the server's window (outside it, a `gap` event comes
/// first).
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("type" = Option<String>, Query, description = "Only this workflow type"),
        ("status" = Option<String>, Query, description = "Only steps that leave this status"),
        ("id_prefix" = Option<String>, Query, description = "Only workflows whose id starts with this"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = crate::events::ServerEvent),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 503, description = "Too many streams open", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn all(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut params) = params?;
    let status = params
        .remove("status")
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                ApiError::bad_request("request.invalid_query", format!("unknown status {s:?}"))
            })
        })
        .transpose()?;
    let filter = EventFilter {
        workflow_type: params.remove("type"),
        id_prefix: params.remove("id_prefix"),
        status,
        ..EventFilter::default()
    };
    no_unknown_params(&params)?;
    let last = last_event_id(&headers)?;
    let subscription = shared.events.subscribe(last).ok_or_else(too_many_streams)?;
    let first = match (&subscription.resume, last) {
        (Resume::OutOfWindow, Some(last)) => vec![events::out_of_window(last)],
        _ => Vec::new(),
    };
    Ok(sse(events::stream(subscription, first, filter)))
}
