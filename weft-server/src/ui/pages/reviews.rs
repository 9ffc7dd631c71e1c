//! `GET /ui/reviews`: the review inbox, pending reviews across workflows, filterable by
//! reviewer, each with its artifact (the waiting workflow's checkpoint) and approve/reject
//! with a comment; the table refreshes over SSE, so a review decided elsewhere disappears.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use weft_runtime::{Decision, ReviewFilter};

use crate::api::detached::detached;
use crate::api::types::millis;
use crate::api::workflows::audited;
use crate::server::Shared;
use crate::ui::html::{UiError, csrf_field, json_tree, page, time, url_encode, workflow_link};
use crate::ui::session::UiSession;

/// Reviews shown at most (the oldest by workflow id first).
pub const INBOX_SIZE: usize = 100;

fn reviewer_of(query: &HashMap<String, String>) -> Option<String> {
    query
        .get("reviewer")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
}

/// The table of pending reviews (the part htmx refreshes).
async fn table_markup(
    shared: &Shared,
    session: &UiSession,
    reviewer: Option<String>,
) -> Result<Markup, UiError> {
    let reviews = shared
        .engine
        .pending_reviews(
            &ReviewFilter {
                reviewer,
                workflow_id_prefix: None,
            },
            INBOX_SIZE,
            None,
        )
        .await?
        .items;
    let mut rows = Vec::with_capacity(reviews.len());
    for review in reviews {
        // The artifact under review is what the workflow holds at its review await.
        let state = shared
            .engine
            .describe(&review.workflow_id)
            .await
            .ok()
            .and_then(|d| d.state.map(|s| (d.state_name.unwrap_or("state"), s)));
        rows.push((review, state));
    }
    Ok(html! {
        @if rows.is_empty() {
            p #inbox-empty { "No review is waiting for a decision." }
        } @else {
            table #reviews {
                thead { tr {
                    th scope="col" { "Workflow" } th scope="col" { "What" } th scope="col" { "Reviewers" }
                    th scope="col" { "Requested" } th scope="col" { "Deadline" } th scope="col" { "Decide" }
                } }
                tbody {
                    @for (review, state) in &rows {
                        @let slug = url_encode(&review.workflow_id);
                        tr #{ "review-" (review.workflow_id) } {
                            td { (workflow_link(&review.workflow_id)) }
                            td {
                                (review.title)
                                @if let Some((name, state)) = state { (json_tree(name, state, 1)) }
                            }
                            td { (review.reviewers.join(", ")) }
                            td { (time(millis(review.requested_at))) }
                            td { (time(millis(review.deadline))) }
                            td {
                                form method="post" action={ "/ui/workflows/" (slug) "/review" } {
                                    (csrf_field(session))
                                    input type="hidden" name="next" value="/ui/reviews";
                                    label for={ "comment-" (review.workflow_id) } { "Comment" }
                                    textarea id={ "comment-" (review.workflow_id) } name="comment" rows="2" {}
                                    button type="submit" name="decision" value="approve" { "Approve" }
                                    " "
                                    button type="submit" name="decision" value="reject" { "Reject" }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The inbox page.
pub(crate) async fn inbox(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let reviewer = reviewer_of(&query);
    let table = table_markup(&shared, &session, reviewer.clone()).await?;
    let table_url = match &reviewer {
        Some(r) => format!("/ui/reviews/table?reviewer={}", url_encode(r)),
        None => "/ui/reviews/table".to_string(),
    };
    let body = html! {
        h1 { "Reviews" }
        @if query.get("done").is_some_and(|d| d == "review") { p.notice #notice role="status" { "Review decided." } }
        form.filters method="get" action="/ui/reviews" role="search" aria-label="Filter reviews" {
            div { label for="f-reviewer" { "Reviewer" } input #f-reviewer type="text" name="reviewer" value=(reviewer.as_deref().unwrap_or("")); }
            div { button type="submit" { "Filter" } " " a href="/ui/reviews" { "All reviewers" } }
        }
        p.hint { "Your decision is recorded as taken by " strong { (session.principal.name) } "." }
        // Refreshed on every committed step, unless a decision form here has the focus (a
        // refresh would throw away a comment being typed).
        div hx-ext="sse" sse-connect="/ui/events" {
            div #inbox hx-get=(table_url) hx-trigger="sse:ready, sse:step[!document.activeElement || !document.activeElement.closest('#inbox form')]" hx-swap="innerHTML" aria-live="polite" {
                (table)
            }
        }
    };
    Ok(page("Reviews", &session, body))
}

/// `GET /ui/reviews/table`: the table alone, for htmx.
pub(crate) async fn table(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    table_markup(&shared, &session, reviewer_of(&query)).await
}

/// `POST /ui/workflows/{id}/review`: `decision` (`approve` or `reject`) and `comment`, recorded
/// under the session's principal.
pub(crate) async fn decide(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let by = session.principal.name.clone();
    let comment = form.get("comment").cloned().unwrap_or_default();
    let decision = match form.get("decision").map(String::as_str) {
        Some("approve") => Decision::Approved { by, comment },
        Some("reject") => Decision::Rejected { by, comment },
        _ => {
            return Err(UiError::new(
                StatusCode::BAD_REQUEST,
                "No decision",
                "choose approve or reject",
            ));
        }
    };
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.decide_review(&target, decision).await }).await?;
    audited(&shared, &session.principal, "review.decide", &id, result)?;
    let to = if form.get("next").is_some_and(|n| n == "/ui/reviews") {
        "/ui/reviews?done=review".to_string()
    } else {
        format!("/ui/workflows/{}?done=review", url_encode(&id))
    };
    Ok(Redirect::to(&to).into_response())
}
