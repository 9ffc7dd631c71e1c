//! The dashboard's live feeds: Server-Sent Events from the server's event ring, behind the
//! session cookie (an `EventSource` cannot send a bearer token).
//!
//! Each stream starts with a `ready` event, sent after the subscription is made: the page
//! refreshes its live part on it, so a step committed between rendering the page and opening
//! the stream is never missed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::html::UiError;
use crate::events::{self, EventFilter};
use crate::server::Shared;

fn stream(shared: &Shared, filter: EventFilter) -> Result<Response, UiError> {
    let subscription = shared.events.subscribe(None).ok_or_else(|| {
        UiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many streams",
            "the server has as many event streams open as it allows; reload later",
        )
    })?;
    let ready = Event::default().event("ready").data("{}");
    Ok(Sse::new(events::stream(subscription, vec![ready], filter))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `GET /ui/workflows/{id}/events`: one workflow's steps and accepted signals.
pub(crate) async fn workflow_events(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    stream(
        &shared,
        EventFilter {
            workflow_id: Some(id),
            ..EventFilter::default()
        },
    )
}

/// `GET /ui/events`: every workflow's steps (the review inbox refreshes on them).
pub(crate) async fn all_events(State(shared): State<Arc<Shared>>) -> Result<Response, UiError> {
    stream(&shared, EventFilter::default())
}
