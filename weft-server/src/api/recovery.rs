//! `GET /v1/recovery`: what the engine's recovery at build found and did, so a deploy is
//! confirmed with one call instead of watching a workflow move.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::RecoveryReport;

use crate::server::Shared;

/// A workflow recovery could not resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnresolvedView {
    /// The workflow's id.
    pub id: String,
    /// Why, with the fix.
    pub reason: String,
}

/// What recovery at build found in flight, by status, and what it did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryView {
    /// Whether the engine ran recovery at build (off only when built with `recover(false)`).
    pub ran: bool,
    /// Workflows found in flight: running + waiting + parked + unreadable.
    pub in_flight: u64,
    /// Found running; their activities were dispatched again.
    pub running: u64,
    /// Found waiting on a timer, a signal, a review or a child.
    pub waiting: u64,
    /// Found parked, or unable to run on the code registered now: an operator must act.
    pub parked: u64,
    /// Records that do not decode.
    pub unreadable: u64,
    /// Runners started at build: these run now.
    pub resumed: u64,
    /// Waiting with nothing to do until a timer fires or a signal arrives.
    pub armed: u64,
    /// Parked workflows retried at build on the code registered now.
    pub unparked: u64,
    /// Workflows that could not be resumed (unknown type, another fingerprint, unreadable).
    pub unresolved: u64,
    /// The first of those, with why and the fix.
    pub unresolved_workflows: Vec<UnresolvedView>,
    /// How long recovery took, in ms.
    pub duration_ms: u64,
    /// The ownership epoch the engine took at build.
    pub ownership_epoch: u64,
}

impl RecoveryView {
    fn new(report: RecoveryReport, ownership_epoch: u64) -> Self {
        RecoveryView {
            ran: report.ran,
            in_flight: report.in_flight(),
            running: report.running,
            waiting: report.waiting,
            parked: report.parked,
            unreadable: report.unreadable,
            resumed: report.resumed,
            armed: report.armed,
            unparked: report.unparked,
            unresolved: report.unresolved,
            unresolved_workflows: report
                .unresolved_workflows
                .into_iter()
                .map(|u| UnresolvedView {
                    id: u.id,
                    reason: u.reason,
                })
                .collect(),
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            ownership_epoch,
        }
    }
}

/// What the engine's recovery at build found in flight, by status, and what it resumed: check
/// it after a deploy. It only reads what the build recorded.
#[utoipa::path(get, path = "/v1/recovery", tag = "cluster",
    responses((status = 200, description = "The recovery report", body = RecoveryView)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn report(State(shared): State<Arc<Shared>>) -> Json<RecoveryView> {
    Json(RecoveryView::new(
        shared.engine.recovery_report(),
        shared.engine.epoch(),
    ))
}
