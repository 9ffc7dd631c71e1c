//! `GET /ui`: counts by status and by type, the last hour, the oldest waiting workflows and the
//! parked ones with their reason, each read from the engine's indexes: the counters (of finished
//! and of unfinished workflows) for the counts, a range of the created-time and finish-time
//! indexes for the last hour, the update-time index of live workflows (oldest first) for the
//! waiting ones, the live index for the parked ones. None reads every record.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};
use weft_runtime::engine::ListOrder;
use weft_runtime::{GroupBy, ListFilter, WorkflowStatus};

use super::{status_badge, status_from_counter};
use crate::api::types::{SummaryView, millis};
use crate::server::Shared;
use crate::ui::html::{UiError, ago, now_ms, page, time, url_encode, workflow_link};
use crate::ui::session::UiSession;

/// Rows shown in each table.
const SHOWN: usize = 10;

/// The overview page.
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
) -> Result<Markup, UiError> {
    let engine = &shared.engine;
    let all = ListFilter::default();
    let by_status = engine.count(&all, GroupBy::Status).await?;
    let by_type = engine.count(&all, GroupBy::Type).await?;
    let now_at = SystemTime::now();
    // Started and finished come from one key-range read each of the created-time and
    // finish-time indexes; no record is read. The window runs through `now_at`'s millisecond.
    let hour = engine
        .count_window(
            now_at - Duration::from_secs(3600),
            now_at + Duration::from_millis(1),
        )
        .await?;
    let (started, finished) = (hour.started, hour.finished);
    // The least recently updated live workflows come first in the update-time index: a page
    // of the waiting ones, oldest first, reads only as far as it needs.
    let waiting_filter = ListFilter {
        status: Some(WorkflowStatus::Waiting),
        order: ListOrder::UpdatedAsc,
        ..ListFilter::default()
    };
    let waiting = engine.list(&waiting_filter, SHOWN, None).await?;
    let waiting: Vec<SummaryView> = waiting.items.into_iter().map(SummaryView::from).collect();
    let mut oldest = Vec::new();
    for w in waiting {
        // The pending command in words; a workflow gone since the list is simply skipped.
        if let Ok(d) = engine.describe(&w.id).await {
            oldest.push((w, d.pending_text.unwrap_or_default()));
        }
    }
    let parked = engine
        .list(
            &ListFilter {
                status: Some(WorkflowStatus::Parked),
                ..ListFilter::default()
            },
            50,
            None,
        )
        .await?;
    let now = now_ms();
    let total: u64 = by_status.iter().map(|(_, n)| n).sum();
    let body = html! {
        h1 { "Overview" }
        div.cards {
            section aria-labelledby="by-status" {
                h2 #by-status { "By status" }
                table {
                    thead { tr { th scope="col" { "Status" } th scope="col" { "Workflows" } } }
                    tbody {
                        @for (name, n) in &by_status {
                            @let status = status_from_counter(name);
                            tr {
                                td { @if let Some(s) = status { a href={ "/ui/workflows?status=" (s.as_str()) } { (status_badge(s)) } } @else { (name) } }
                                td.count data-status=(status.map_or(name.as_str(), |s| s.as_str())) { (n) }
                            }
                        }
                        tr { th scope="row" { "All" } td #total { (total) } }
                    }
                }
            }
            section aria-labelledby="by-type" {
                h2 #by-type { "By type" }
                table {
                    thead { tr { th scope="col" { "Type" } th scope="col" { "Workflows" } } }
                    tbody {
                        @for (name, n) in &by_type {
                            tr { td { a href={ "/ui/workflows?type=" (url_encode(name)) } { (name) } } td { (n) } }
                        }
                    }
                }
            }
            section aria-labelledby="last-hour" {
                h2 #last-hour { "Last hour" }
                dl.facts {
                    dt { "Started" } dd #started-hour { (started) }
                    dt { "Finished" } dd #finished-hour { (finished) }
                }
            }
        }
        h2 { "Oldest waiting" " " a.hint href="/ui/workflows?status=waiting&sort=updated_asc" { "all, oldest first" } }
        @if oldest.is_empty() {
            p { "No workflow is waiting." }
        } @else {
            table #oldest-waiting {
                thead { tr { th scope="col" { "Workflow" } th scope="col" { "Type" } th scope="col" { "Waiting since" } th scope="col" { "On" } } }
                tbody {
                    @for (w, pending) in &oldest {
                        tr {
                            td { (workflow_link(&w.id)) }
                            td { (w.workflow_type) }
                            td { (time(w.updated_at_ms)) " (" (ago(w.updated_at_ms, now)) ")" }
                            td { (pending) }
                        }
                    }
                }
            }
        }
        h2 { "Parked" }
        @if parked.items.is_empty() {
            p { "No workflow is parked." }
        } @else {
            table #parked {
                thead { tr { th scope="col" { "Workflow" } th scope="col" { "Type" } th scope="col" { "Since" } th scope="col" { "Reason" } } }
                tbody {
                    @for w in parked.items.into_iter().map(SummaryView::from) {
                        tr {
                            td { (workflow_link(&w.id)) }
                            td { (w.workflow_type) " v" (w.version) }
                            td { (time(w.updated_at_ms)) }
                            td { @if let Some(r) = &w.park_reason { code { (r.code) } " " (r.message) } }
                        }
                    }
                }
            }
            @if parked.next_page_token.is_some() { p { a href="/ui/workflows?status=parked" { "All parked workflows" } } }
        }
        p.hint { "As of " (time(millis(SystemTime::now()))) "." }
    };
    Ok(page("Overview", &session, body))
}
