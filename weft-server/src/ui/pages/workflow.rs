//! `GET /ui/workflows/{id}`: one workflow, its live checkpoint and its pending command in
//! words, refreshed over SSE when it commits a step; and the actions on it: signal, update,
//! cancel, retry a parked one, purge a finished one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use weft_runtime::{EngineError, ReviewFilter, SignalOptions, UpdateOptions};

use super::workflows::parse_json;
use super::{schema_form, status_badge};
use crate::api::detached::detached;
use crate::api::types::{PendingView, Status, WorkflowView};
use crate::api::workflows::audited;
use crate::auth::Role;
use crate::server::Shared;
use crate::ui::html::{UiError, csrf_field, json_tree, page, time, url_encode, workflow_link};
use crate::ui::session::UiSession;

/// Notices shown after an action redirected back here, by the `done` query parameter: a fixed
/// set, so a link cannot put arbitrary words on the page.
const NOTICES: &[(&str, &str)] = &[
    (
        "signal",
        "Signal sent: it is stored, and the workflow gets it at its next wait for it.",
    ),
    (
        "cancel",
        "Cancellation requested: the workflow sees it at its current await.",
    ),
    (
        "retry",
        "Retry requested: the engine drives the workflow again.",
    ),
    ("review", "Review decided."),
];

async fn view(shared: &Shared, id: &str) -> Result<WorkflowView, UiError> {
    let description = shared.engine.describe(id).await?;
    Ok(WorkflowView::new(
        description,
        shared.audit.entries(Some(id)),
    ))
}

/// The part of the page that changes as the workflow runs.
async fn live_part(shared: &Shared, w: &WorkflowView) -> Markup {
    let result = if matches!(w.status, Status::Completed | Status::Failed) {
        shared.engine.result_json(&w.id).await.ok()
    } else {
        None
    };
    html! {
        dl.facts #facts {
            dt { "Status" } dd #status { (status_badge(w.status)) }
            dt { "Type" } dd { (w.workflow_type) }
            dt { "Version" } dd { (w.version) }
            dt { "Step" } dd #step { (w.step) }
            dt { "Created" } dd { (time(w.created_at_ms)) }
            dt { "Updated" } dd { (time(w.updated_at_ms)) }
            @if let Some(waiting) = &w.waiting_on { dt { "Waiting" } dd #waiting-on { (waiting) } }
            dt { "Signals queued" } dd #signals-queued { (w.signals_queued) }
            dt { "Signals consumed" } dd { (w.signals_consumed) }
            @if let Some(parent) = &w.parent { dt { "Parent" } dd #parent { (workflow_link(parent)) } }
            @if !w.children.is_empty() {
                dt { "Children" }
                dd #children { ul { @for child in &w.children { li { (workflow_link(child)) } } } }
            }
            @if let Some(PendingView::Child { id }) = &w.pending { dt { "Child" } dd { (workflow_link(id)) } }
            @if let Some(reason) = &w.park_reason { dt { "Parked because" } dd #park-reason { code { (reason.code) } " " (reason.message) } }
            @if let Some(error) = &w.error { dt { "Error" } dd #error { (error) } }
        }
        @if let Some(result) = &result {
            h2 { "Result" }
            @match result {
                Ok(output) => { div #result { (json_tree("Ok", output, 2)) } }
                Err(error) => { div #result { (json_tree("Err", error, 2)) } }
            }
        }
        h2 { "Checkpoint" }
        @match (&w.state_name, &w.state) {
            (Some(name), Some(state)) => {
                p { "At the await named by its state " code #state-name { (name) } "; its fields are the live locals." }
                div #state { (json_tree(name, state, 2)) }
            }
            _ => { p.hint { "No checkpoint: the workflow is not suspended at an await." } }
        }
        @if !w.attributes.is_empty() {
            h2 { "Attributes" }
            table #attributes { tbody { @for (k, v) in &w.attributes { tr { th scope="row" { (k) } td { code { (serde_json::to_string(v).unwrap_or_default()) } } } } } }
        }
    }
}

/// The workflow page.
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let w = view(&shared, &id).await?;
    let live = live_part(&shared, &w).await;
    let base = format!("/ui/workflows/{}", url_encode(&id));
    let actions = actions_part(&shared, &session, &w).await?;
    let notice = query
        .get("done")
        .and_then(|d| NOTICES.iter().find(|(k, _)| k == d))
        .map(|(_, text)| *text);
    let body = html! {
        h1 { "Workflow " code { (w.id) } }
        @if let Some(text) = notice { p.notice #notice role="status" { (text) } }
        // The live part: htmx refetches it when the stream says the workflow committed a step
        // (or a signal reached it), and once when the stream opens, to cover what happened
        // between this page's rendering and the stream's start.
        div hx-ext="sse" sse-connect={ (base) "/events" } {
            div #live hx-get={ (base) "/live" } hx-trigger="sse:ready, sse:step, sse:signal" hx-swap="innerHTML" aria-live="polite" {
                (live)
            }
            // The actions follow the workflow too (a finished one can no longer be signalled, a
            // parked one can be retried), but not while a form here has the focus: a refresh
            // would throw away what is being typed. Not on `ready` either, which comes while the
            // page is still fresh and someone may be starting to type.
            div #actions hx-get={ (base) "/actions" } hx-trigger="sse:step[!document.activeElement || !document.activeElement.closest('#actions')]" hx-swap="innerHTML" {
                (actions)
            }
        }
        @if !w.audit.is_empty() {
            h2 { "Audit" }
            table #audit {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Outcome" } } }
                tbody { @for a in &w.audit { tr { td { (time(i64::try_from(a.at_ms).unwrap_or(i64::MAX))) } td { (a.principal) } td { (a.action) } td { (a.outcome) } } } }
            }
        }
    };
    Ok(page(&format!("Workflow {id}"), &session, body))
}

/// The actions the workflow admits now, for the session's role.
async fn actions_part(
    shared: &Shared,
    session: &UiSession,
    w: &WorkflowView,
) -> Result<Markup, UiError> {
    let id = &w.id;
    let types = shared.engine.workflow_types();
    let code = types
        .iter()
        .find(|t| t.name == w.workflow_type && t.version == w.version);
    let base = format!("/ui/workflows/{}", url_encode(id));
    let admin = session.principal.role == Role::Admin;
    // A review the workflow waits on, decided from here as from the inbox.
    let review = shared
        .engine
        .pending_reviews(
            &ReviewFilter {
                reviewer: None,
                workflow_id_prefix: Some(id.clone()),
            },
            10,
            None,
        )
        .await?
        .items
        .into_iter()
        .find(|r| &r.workflow_id == id);
    Ok(html! {
        h2 { "Actions" }
        @if let Some(review) = &review {
            form.action #review-form method="post" action={ (base) "/review" } {
                (csrf_field(session))
                fieldset {
                    legend { "Decide the review " q { (review.title) } " (as " (session.principal.name) ")" }
                    label for="review-comment" { "Comment" }
                    textarea #review-comment name="comment" rows="2" {}
                    button type="submit" name="decision" value="approve" { "Approve" }
                    " "
                    button type="submit" name="decision" value="reject" { "Reject" }
                }
            }
        }
        @if !w.status.is_terminal() {
            @if let Some(code) = code {
                @for (s, fields) in code.signals.iter().filter_map(|s| Some((s, schema_form::fields(s.schema.as_ref()?)?))) {
                    form.action.schema-form id={ "signal-" (s.name) } method="post" action={ (base) "/signal" } {
                        (csrf_field(session))
                        input type="hidden" name="name" value=(s.name);
                        input type="hidden" name="form" value="schema";
                        fieldset {
                            legend { "Signal " code { (s.name) } " (a form from its JSON Schema)" }
                            (schema_form::inputs(&format!("signal-{}", s.name), &fields))
                            button type="submit" { "Send " (s.name) }
                        }
                    }
                }
                @for (u, fields) in code.updates.iter().filter_map(|u| Some((u, schema_form::fields(u.request_schema.as_ref()?)?))) {
                    form.action.schema-form id={ "update-" (u.name) } method="post" action={ (base) "/update" } {
                        (csrf_field(session))
                        input type="hidden" name="name" value=(u.name);
                        input type="hidden" name="form" value="schema";
                        fieldset {
                            legend { "Update " code { (u.name) } " (a form from its JSON Schema)" }
                            (schema_form::inputs(&format!("update-{}", u.name), &fields))
                            button type="submit" { "Send " (u.name) }
                        }
                    }
                }
            }
            @if let Some(code) = code.filter(|c| !c.signals.is_empty()) {
                form.action #signal-form method="post" action={ (base) "/signal" } {
                    (csrf_field(session))
                    fieldset {
                        legend { "Send a signal as JSON" }
                        label for="signal-name" { "Signal" }
                        select #signal-name name="name" {
                            @for s in &code.signals { option value=(s.name) { (s.name) } }
                        }
                        label for="signal-payload" { "Payload (JSON)" }
                        textarea #signal-payload name="payload" required { "{}" }
                        @for s in &code.signals {
                            @if let Some(schema) = &s.schema {
                                details { summary { "JSON Schema of " (s.name) } pre { (serde_json::to_string_pretty(schema).unwrap_or_default()) } }
                            }
                        }
                        button type="submit" { "Send signal" }
                    }
                }
            }
            @if let Some(code) = code.filter(|c| !c.updates.is_empty()) {
                form.action #update-form method="post" action={ (base) "/update" } {
                    (csrf_field(session))
                    fieldset {
                        legend { "Send an update as JSON (waits up to 10 s for the answer)" }
                        label for="update-name" { "Update" }
                        select #update-name name="name" {
                            @for u in &code.updates { option value=(u.name) { (u.name) } }
                        }
                        label for="update-request" { "Request (JSON)" }
                        textarea #update-request name="request" required { "{}" }
                        @for u in &code.updates {
                            @if let Some(schema) = &u.request_schema {
                                details { summary { "JSON Schema of " (u.name) } pre { (serde_json::to_string_pretty(schema).unwrap_or_default()) } }
                            }
                        }
                        button type="submit" { "Send update" }
                    }
                }
            }
            form.action method="post" action={ (base) "/cancel" } {
                (csrf_field(session))
                button #cancel type="submit" { "Cancel this workflow" }
            }
        }
        @if w.status == Status::Parked {
            form.action method="post" action={ (base) "/retry" } {
                (csrf_field(session))
                button #retry type="submit" { "Retry (after fixing the cause)" }
            }
        }
        @if w.status.is_terminal() {
            form.action method="post" action={ (base) "/purge" } {
                (csrf_field(session))
                button #purge type="submit" disabled[!admin] { "Purge this workflow" }
                @if !admin { " " span.hint { "Purging needs role admin." } }
            }
        }
    })
}

/// `GET /ui/workflows/{id}/actions`: the actions alone, for htmx.
pub(crate) async fn actions(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
) -> Result<Markup, UiError> {
    let w = view(&shared, &id).await?;
    actions_part(&shared, &session, &w).await
}

/// `GET /ui/workflows/{id}/live`: the live part alone, for htmx.
pub(crate) async fn live(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Markup, UiError> {
    let w = view(&shared, &id).await?;
    Ok(live_part(&shared, &w).await)
}

fn back(id: &str, done: &str) -> Response {
    Redirect::to(&format!("/ui/workflows/{}?done={done}", url_encode(id))).into_response()
}

/// A signal or an update.
#[derive(Clone, Copy)]
enum Message {
    Signal,
    Update,
}

/// For a form posted from a JSON Schema (`form=schema`), the fields of that schema, as the
/// workflow's own code version declares them; `None` for the JSON editor's form.
async fn schema_fields(
    shared: &Shared,
    id: &str,
    message: Message,
    name: &str,
    form: &HashMap<String, String>,
) -> Result<Option<Vec<schema_form::Field>>, UiError> {
    if form.get("form").is_none_or(|f| f != "schema") {
        return Ok(None);
    }
    let d = shared.engine.describe(id).await?;
    let schema = shared
        .engine
        .workflow_types()
        .into_iter()
        .find(|t| t.name == d.workflow_type && t.version == d.version)
        .and_then(|t| match message {
            Message::Signal => t.signals.into_iter().find(|s| s.name == name)?.schema,
            Message::Update => {
                t.updates
                    .into_iter()
                    .find(|u| u.name == name)?
                    .request_schema
            }
        });
    match schema.as_ref().and_then(schema_form::fields) {
        Some(fields) => Ok(Some(fields)),
        None => Err(UiError::new(
            StatusCode::BAD_REQUEST,
            "No form",
            format!("`{name}` has no JSON Schema a form can be built from; send it as JSON"),
        )),
    }
}

fn name_of(form: &HashMap<String, String>) -> Result<String, UiError> {
    match form.get("name").map(|n| n.trim()) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(UiError::new(
            StatusCode::BAD_REQUEST,
            "No name",
            "name the signal or update to send",
        )),
    }
}

/// `POST /ui/workflows/{id}/signal`: `name`, and `payload` as JSON (checked here and by the
/// engine against the signal's type).
pub(crate) async fn signal(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let name = name_of(&form)?;
    let payload = match schema_fields(&shared, &id, Message::Signal, &name, &form).await? {
        Some(fields) => schema_form::payload(&fields, &form)?,
        None => parse_json(form.get("payload").map_or("", String::as_str))?,
    };
    let engine = shared.engine.clone();
    let (target, signal) = (id.clone(), name.clone());
    let sent = detached(async move {
        engine
            .signal_by_name(&target, &signal, payload, SignalOptions::default())
            .await
    })
    .await?;
    audited(&shared, &session.principal, "workflow.signal", &id, sent)?;
    shared.events.signal_accepted(&id, &name);
    Ok(back(&id, "signal"))
}

/// `POST /ui/workflows/{id}/update`: `name`, and `request` as JSON; shows the answer.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let name = name_of(&form)?;
    let request = match schema_fields(&shared, &id, Message::Update, &name, &form).await? {
        Some(fields) => schema_form::payload(&fields, &form)?,
        None => parse_json(form.get("request").map_or("", String::as_str))?,
    };
    let update_id = format!("ui-{}", crate::ui::session::random_token());
    let options = UpdateOptions {
        update_id: update_id.clone(),
        timeout: Duration::from_secs(10).min(shared.limits.max_wait),
    };
    let engine = shared.engine.clone();
    let (target, update) = (id.clone(), name.clone());
    let answered = detached(async move {
        engine
            .update_by_name(&target, &update, request, options)
            .await
    })
    .await?;
    let outcome = match &answered {
        Ok(_) => "update_answered",
        Err(EngineError::UpdateTimedOut { .. }) => "update_pending",
        Err(e) => e.code(),
    };
    shared
        .audit
        .record(&session.principal, "workflow.update", &id, outcome);
    let answer = match answered {
        Ok(answer) => Some(answer),
        Err(EngineError::UpdateTimedOut { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let body = html! {
        h1 { "Update " code { (name) } " to " code { (id) } }
        @match &answer {
            Some(answer) => { p.notice role="status" { "Answered:" } div #update-answer { (json_tree("answer", answer, 2)) } }
            None => { p.notice role="status" { "Not answered within 10 s; it stays queued as " code { (update_id) } "." } }
        }
        p { (workflow_link(&id)) }
    };
    Ok(page("Update", &session, body))
}

/// `POST /ui/workflows/{id}/cancel`.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.cancel(&target).await }).await?;
    audited(&shared, &session.principal, "workflow.cancel", &id, result)?;
    Ok(back(&id, "cancel"))
}

/// `POST /ui/workflows/{id}/retry`: a parked workflow runs its last step again.
pub(crate) async fn retry(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.retry(&target).await }).await?;
    audited(&shared, &session.principal, "workflow.retry", &id, result)?;
    Ok(back(&id, "retry"))
}

/// `POST /ui/workflows/{id}/purge` (admin): deletes a finished workflow.
pub(crate) async fn purge(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    Path(id): Path<String>,
) -> Result<Markup, UiError> {
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.purge(&target).await }).await?;
    audited(&shared, &session.principal, "workflow.purge", &id, result)?;
    let body = html! {
        h1 { "Purged" }
        p.notice #notice role="status" { "Workflow " code { (id) } " and everything stored under its id are deleted." }
        p { a href="/ui/workflows" { "Back to the list" } }
    };
    Ok(page("Purged", &session, body))
}
