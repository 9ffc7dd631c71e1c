//! Schedule routes: operators read schedules and trigger them (now, or over a past range);
//! admins create, change, pause, resume and delete them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::{
    OverlapPolicy, ScheduleDescription, ScheduleError, ScheduleSpec, ScheduleSummary, Trigger,
};

use super::body::JsonBody;
use super::detached::detached;
use super::types::{Status, encode_cursor, from_millis, millis, no_unknown_params};
use super::workflows::{take_page, take_usize};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// The default number of next fire times a describe shows.
pub const DEFAULT_NEXT_FIRES: usize = 5;
/// The most next fire times a describe shows.
pub const MAX_NEXT_FIRES: usize = 100;

impl From<ScheduleError> for ApiError {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "schedule.not_found",
                error.to_string(),
            ),
            ScheduleError::AlreadyExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "schedule.exists", error.to_string())
            }
            ScheduleError::Invalid { .. } => {
                ApiError::bad_request("schedule.invalid", error.to_string())
            }
            ScheduleError::Engine(engine) => engine.into(),
        }
    }
}

/// The stable code of a schedule error, for the audit log.
fn code_of(error: &ScheduleError) -> &'static str {
    match error {
        ScheduleError::NotFound { .. } => "schedule.not_found",
        ScheduleError::AlreadyExists { .. } => "schedule.exists",
        ScheduleError::Invalid { .. } => "schedule.invalid",
        ScheduleError::Engine(engine) => engine.code(),
    }
}

/// Records a schedule action in the audit log with its outcome, and passes the result on.
fn audited<T>(
    shared: &Shared,
    principal: &Principal,
    action: &str,
    target: &str,
    result: Result<T, ScheduleError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => code_of(e),
    };
    shared.audit.record(principal, action, target, outcome);
    result.map_err(ApiError::from)
}

/// What a fire does while the run the schedule started before still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Skip the fire (the default).
    #[default]
    Skip,
    /// Keep the latest fire until the run finishes, then start it.
    BufferOne,
    /// Keep every fire and start them one after another.
    BufferAll,
    /// Cancel the running one and start the fire's run.
    CancelPrevious,
    /// Start the fire's run beside the running one.
    AllowAll,
}

impl From<Overlap> for OverlapPolicy {
    fn from(overlap: Overlap) -> Self {
        match overlap {
            Overlap::Skip => OverlapPolicy::Skip,
            Overlap::BufferOne => OverlapPolicy::BufferOne,
            Overlap::BufferAll => OverlapPolicy::BufferAll,
            Overlap::CancelPrevious => OverlapPolicy::CancelPrevious,
            Overlap::AllowAll => OverlapPolicy::AllowAll,
        }
    }
}

impl From<OverlapPolicy> for Overlap {
    fn from(policy: OverlapPolicy) -> Self {
        match policy {
            OverlapPolicy::Skip => Overlap::Skip,
            OverlapPolicy::BufferOne => Overlap::BufferOne,
            OverlapPolicy::BufferAll => Overlap::BufferAll,
            OverlapPolicy::CancelPrevious => Overlap::CancelPrevious,
            OverlapPolicy::AllowAll => Overlap::AllowAll,
        }
    }
}

/// What a schedule starts and when: the body of a create or a change.
///
/// Give exactly one trigger: `cron` (with an optional `time_zone`) or `every_ms` (with an
/// optional `anchor_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// The workflow type each fire starts.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The workflow input, as JSON.
    #[serde(default)]
    pub input: serde_json::Value,
    /// A cron expression of 5 to 7 fields, e.g. `"0 9 * * MON-FRI"`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in, e.g. `"Europe/Berlin"` (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Fire every this many ms instead of on a cron expression.
    #[serde(default)]
    pub every_ms: Option<u64>,
    /// With `every_ms`: the time the periods are counted from, in ms since the Unix epoch
    /// (default 0).
    #[serde(default)]
    pub anchor_ms: Option<u64>,
    /// What a fire does while the previous run still runs (default `skip`).
    #[serde(default)]
    pub overlap: Overlap,
    /// After downtime, missed fires younger than this run; older ones are counted as missed
    /// (default 60000).
    #[serde(default)]
    pub catchup_window_ms: Option<u64>,
    /// Each fire waits a deterministic pseudo-random delay below this (default 0).
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    /// How many runs it starts in all before it stops (default: no limit).
    #[serde(default)]
    pub max_runs: Option<u64>,
}

impl ScheduleBody {
    /// The engine's spec, or `400 schedule.invalid` naming what to fix.
    fn to_spec(&self) -> Result<ScheduleSpec, ApiError> {
        let trigger = match (&self.cron, self.every_ms) {
            (Some(cron), None) => {
                if self.anchor_ms.is_some() {
                    return Err(invalid("`anchor_ms` goes with `every_ms`, not `cron`"));
                }
                match &self.time_zone {
                    Some(tz) => Trigger::cron_in(cron, tz),
                    None => Trigger::cron(cron),
                }
            }
            (None, Some(every_ms)) => {
                if self.time_zone.is_some() {
                    return Err(invalid("`time_zone` goes with `cron`, not `every_ms`"));
                }
                Trigger::Interval {
                    every: Duration::from_millis(every_ms),
                    anchor_ms: self.anchor_ms.unwrap_or(0),
                }
            }
            (Some(_), Some(_)) => {
                return Err(invalid("give either `cron` or `every_ms`, not both"));
            }
            (None, None) => {
                return Err(invalid(
                    "give a trigger: `cron` (with an optional `time_zone`) or `every_ms`",
                ));
            }
        };
        let defaults = ScheduleSpec::new(&self.workflow_type, self.input.clone(), trigger);
        let mut spec = defaults.overlap(self.overlap.into());
        if let Some(ms) = self.catchup_window_ms {
            spec = spec.catchup_window(Duration::from_millis(ms));
        }
        if let Some(ms) = self.jitter_ms {
            spec = spec.jitter(Duration::from_millis(ms));
        }
        spec.max_runs = self.max_runs;
        Ok(spec)
    }

    /// The body that describes `spec`.
    fn of(spec: &ScheduleSpec) -> Self {
        let (cron, time_zone, every_ms, anchor_ms) = match &spec.trigger {
            Trigger::Cron {
                expression,
                time_zone,
            } => (Some(expression.clone()), time_zone.clone(), None, None),
            Trigger::Interval { every, anchor_ms } => (
                None,
                None,
                Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX)),
                Some(*anchor_ms),
            ),
        };
        ScheduleBody {
            workflow_type: spec.workflow_type.clone(),
            input: spec.input.clone(),
            cron,
            time_zone,
            every_ms,
            anchor_ms,
            overlap: spec.overlap.into(),
            catchup_window_ms: Some(ms_of(spec.catchup_window)),
            jitter_ms: Some(ms_of(spec.jitter)),
            max_runs: spec.max_runs,
        }
    }
}

fn ms_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn invalid(reason: &str) -> ApiError {
    ApiError::bad_request("schedule.invalid", format!("invalid schedule: {reason}"))
}

/// The body of a create: the schedule's id and its spec.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CreateScheduleRequest {
    /// The schedule's id; each fire's workflow id is `<id>@<fire time, RFC 3339 UTC>`.
    pub id: String,
    /// What it starts and when.
    #[serde(flatten)]
    pub spec: ScheduleBody,
}

// By hand: serde's `flatten` hands the flattened struct whatever the outer one did not take,
// but `deny_unknown_fields` on it is then not enforced, and a misspelt field (`crom`) would
// create a schedule with a default in its place.
impl<'de> Deserialize<'de> for CreateScheduleRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let id = match fields.remove("id") {
            Some(serde_json::Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("`id` must be a string")),
            None => return Err(D::Error::missing_field("id")),
        };
        let spec = ScheduleBody::deserialize(serde_json::Value::Object(fields))
            .map_err(D::Error::custom)?;
        Ok(CreateScheduleRequest { id, spec })
    }
}

/// A run a schedule started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRunView {
    /// The nominal fire time it was started for, in ms since the Unix epoch.
    pub fire_time_ms: i64,
    /// The workflow's id.
    pub workflow_id: String,
    /// Its status now; `null` when it has been purged.
    pub status: Option<Status>,
}

/// A schedule: its spec, state, next fire times, last runs and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// The schedule's id.
    pub id: String,
    /// What it starts and when.
    pub spec: ScheduleBody,
    /// Whether it is paused.
    pub paused: bool,
    /// The note of the last pause or resume.
    pub note: Option<String>,
    /// The next nominal fire times, in ms since the Unix epoch (empty when paused or finished).
    pub next_fires_ms: Vec<i64>,
    /// The last runs it started, newest first.
    pub recent_runs: Vec<ScheduleRunView>,
    /// Fires that fell outside the catch-up window.
    pub missed: u64,
    /// Fires the overlap policy skipped, or whose run could not start.
    pub skipped: u64,
    /// Runs started in all.
    pub started: u64,
    /// Fires waiting for the running one to finish.
    pub buffered: u64,
    /// Runs it may still start, when limited.
    pub remaining_runs: Option<u64>,
    /// Why the last fire could not start its run, if it could not.
    pub last_error: Option<String>,
}

impl From<ScheduleDescription> for ScheduleView {
    fn from(d: ScheduleDescription) -> Self {
        ScheduleView {
            spec: ScheduleBody::of(&d.spec),
            id: d.id,
            paused: d.paused,
            note: d.note,
            next_fires_ms: d.next_fires.into_iter().map(millis).collect(),
            recent_runs: d
                .recent_runs
                .into_iter()
                .map(|run| ScheduleRunView {
                    fire_time_ms: millis(run.fire_time),
                    workflow_id: run.workflow_id,
                    status: run.status.map(Status::from),
                })
                .collect(),
            missed: d.missed,
            skipped: d.skipped,
            started: d.started,
            buffered: d.buffered,
            remaining_runs: d.remaining_runs,
            last_error: d.last_error,
        }
    }
}

/// One schedule in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleSummaryView {
    /// The schedule's id.
    pub id: String,
    /// The workflow type it starts.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// Whether it is paused.
    pub paused: bool,
    /// The next nominal fire time, in ms since the Unix epoch.
    pub next_fire_ms: Option<i64>,
    /// Runs started in all.
    pub started: u64,
    /// Fires missed.
    pub missed: u64,
}

impl From<ScheduleSummary> for ScheduleSummaryView {
    fn from(s: ScheduleSummary) -> Self {
        ScheduleSummaryView {
            id: s.id,
            workflow_type: s.workflow_type,
            paused: s.paused,
            next_fire_ms: s.next_fire.map(millis),
            started: s.started,
            missed: s.missed,
        }
    }
}

/// A page of schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleListResponse {
    /// The schedules, in id order.
    pub items: Vec<ScheduleSummaryView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The body of a pause or a resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// Why: shown by describe until the next pause or resume.
    #[serde(default)]
    pub note: Option<String>,
}

/// The body of a backfill: a range of fire times, `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// The first fire time included, in ms since the Unix epoch.
    pub from_ms: i64,
    /// The end of the range (excluded), in ms since the Unix epoch.
    pub to_ms: i64,
}

/// The runs a trigger or a backfill started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StartedRuns {
    /// The schedule.
    pub id: String,
    /// The workflow ids of the runs, oldest fire first. A backfill names a fire that had run
    /// already too: its run is not started again.
    pub workflow_ids: Vec<String>,
}

/// What an action on a schedule did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleActionResponse {
    /// The schedule.
    pub id: String,
    /// What was done: `created`, `updated`, `paused`, `resumed`, `deleted`.
    pub outcome: String,
}

fn action(id: String, outcome: &str) -> Json<ScheduleActionResponse> {
    Json(ScheduleActionResponse {
        id,
        outcome: outcome.to_string(),
    })
}

/// Creates a schedule. Its first fire is the first fire time after now.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules",
    request_body = CreateScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleActionResponse),
        (status = 400, description = "A bad trigger, type, input or id", body = ErrorBody),
        (status = 409, description = "A schedule with this id exists", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleActionResponse>), ApiError> {
    let spec = request.spec.to_spec()?;
    let engine = shared.engine.clone();
    let id = request.id;
    let target = id.clone();
    let result = detached(async move { engine.create_schedule(&target, spec).await }).await?;
    audited(&shared, &principal, "schedule.create", &id, result)?;
    Ok((StatusCode::CREATED, action(id, "created")))
}

/// The schedules, a page at a time, in id order.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    params(
        ("page_size" = Option<usize>, Query, description = "At most this many (default 100, at most the server's max_page_size)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page")),
    responses(
        (status = 200, description = "The schedules", body = ScheduleListResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ScheduleListResponse>, ApiError> {
    let Query(mut params) = params?;
    let (page_size, cursor) = take_page(&mut params, shared.limits.max_page_size)?;
    no_unknown_params(&params)?;
    let page = shared
        .engine
        .list_schedules(page_size, cursor.as_deref())
        .await?;
    Ok(Json(ScheduleListResponse {
        items: page
            .items
            .into_iter()
            .map(ScheduleSummaryView::from)
            .collect(),
        next_cursor: page.next_page_token.as_deref().map(encode_cursor),
    }))
}

/// A schedule: its spec, next fire times, last runs with their status, and missed count.
#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule id"),
        ("next" = Option<usize>, Query, description = "How many next fire times to show (default 5, at most 100)")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn describe(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<ScheduleView>, ApiError> {
    let Path(id) = id?;
    let Query(mut params) = params?;
    let next = take_usize(&mut params, "next")?
        .unwrap_or(DEFAULT_NEXT_FIRES)
        .min(MAX_NEXT_FIRES);
    no_unknown_params(&params)?;
    let described = shared.engine.describe_schedule(&id, next).await?;
    Ok(Json(ScheduleView::from(described)))
}

/// Replaces what a schedule starts and when, keeping its history; the next fire is the first
/// fire time after now, and buffered fires are dropped.
#[utoipa::path(put, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "Changed", body = ScheduleActionResponse),
        (status = 400, description = "A bad trigger, type or input", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ScheduleBody>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let Path(id) = id?;
    let spec = body.to_spec()?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.update_schedule(&target, spec).await }).await?;
    audited(&shared, &principal, "schedule.update", &id, result)?;
    Ok(action(id, "updated"))
}

/// Pauses a schedule with a note: it does not fire until resumed, and the fires it would have
/// had meanwhile are neither run nor counted as missed.
#[utoipa::path(post, path = "/v1/schedules/{id}/pause", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    request_body = NoteRequest,
    responses(
        (status = 200, description = "Paused", body = ScheduleActionResponse),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn pause(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<Option<NoteRequest>>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let Path(id) = id?;
    let note = body.unwrap_or_default().note;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.pause_schedule(&target, note).await }).await?;
    audited(&shared, &principal, "schedule.pause", &id, result)?;
    Ok(action(id, "paused"))
}

/// Resumes a schedule with a note; its next fire is the first fire time after now.
#[utoipa::path(post, path = "/v1/schedules/{id}/resume", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    request_body = NoteRequest,
    responses(
        (status = 200, description = "Resumed", body = ScheduleActionResponse),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn resume(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<Option<NoteRequest>>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let Path(id) = id?;
    let note = body.unwrap_or_default().note;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.resume_schedule(&target, note).await }).await?;
    audited(&shared, &principal, "schedule.resume", &id, result)?;
    Ok(action(id, "resumed"))
}

/// Starts the schedule's workflow now, whatever its trigger, overlap policy or pause say. The
/// run counts toward the run limit.
#[utoipa::path(post, path = "/v1/schedules/{id}/trigger", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 201, description = "The run started", body = StartedRuns),
        (status = 400, description = "The run limit is used up, or the run cannot start", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn trigger(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<StartedRuns>), ApiError> {
    let Path(id) = id?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.trigger_schedule(&target).await }).await?;
    let workflow_id = audited(&shared, &principal, "schedule.trigger", &id, result)?;
    Ok((
        StatusCode::CREATED,
        Json(StartedRuns {
            id,
            workflow_ids: vec![workflow_id],
        }),
    ))
}

/// Starts a run for every fire time in `[from_ms, to_ms)`, oldest first, with the ids those
/// fires would have had, so a fire that already ran is not run again; whatever the overlap
/// policy and the pause say.
#[utoipa::path(post, path = "/v1/schedules/{id}/backfill", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    request_body = BackfillRequest,
    responses(
        (status = 200, description = "The runs of the range", body = StartedRuns),
        (status = 400, description = "An empty range, too many fires, over the run limit, or a run that cannot start", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["operator", "admin"])))]
pub(crate) async fn backfill(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<BackfillRequest>,
) -> Result<Json<StartedRuns>, ApiError> {
    let Path(id) = id?;
    if body.from_ms < 0 || body.to_ms < 0 {
        return Err(invalid(
            "`from_ms` and `to_ms` must not be before the Unix epoch",
        ));
    }
    let (from, to) = (from_millis(body.from_ms), from_millis(body.to_ms));
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.backfill_schedule(&target, from, to).await }).await?;
    let workflow_ids = audited(&shared, &principal, "schedule.backfill", &id, result)?;
    Ok(Json(StartedRuns { id, workflow_ids }))
}

/// Deletes a schedule. The runs it started are not touched.
#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 200, description = "Deleted", body = ScheduleActionResponse),
        (status = 404, description = "No such schedule", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let Path(id) = id?;
    let engine = shared.engine.clone();
    let target = id.clone();
    let result = detached(async move { engine.delete_schedule(&target).await }).await?;
    audited(&shared, &principal, "schedule.delete", &id, result)?;
    Ok(action(id, "deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> Result<ScheduleBody, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn a_body_needs_exactly_one_trigger_and_round_trips_through_the_spec() {
        let cron = body(serde_json::json!({
            "type": "report", "input": "ops", "cron": "0 9 * * *",
            "time_zone": "Europe/Berlin", "overlap": "buffer_all", "max_runs": 3,
        }))
        .unwrap();
        let spec = cron.to_spec().unwrap();
        assert_eq!(spec.trigger, Trigger::cron_in("0 9 * * *", "Europe/Berlin"));
        assert_eq!(spec.overlap, OverlapPolicy::BufferAll);
        assert_eq!(spec.max_runs, Some(3));
        assert_eq!(spec.catchup_window, Duration::from_secs(60));
        let back = ScheduleBody::of(&spec);
        assert_eq!(back.to_spec().unwrap(), spec);

        let every = body(serde_json::json!({"type": "t", "every_ms": 1000, "anchor_ms": 7}))
            .unwrap()
            .to_spec()
            .unwrap();
        assert_eq!(
            every.trigger,
            Trigger::Interval {
                every: Duration::from_secs(1),
                anchor_ms: 7
            }
        );

        for bad in [
            serde_json::json!({"type": "t"}),
            serde_json::json!({"type": "t", "cron": "* * * * *", "every_ms": 5}),
            serde_json::json!({"type": "t", "cron": "* * * * *", "anchor_ms": 5}),
            serde_json::json!({"type": "t", "every_ms": 5, "time_zone": "UTC"}),
        ] {
            let error = body(bad.clone()).unwrap().to_spec().unwrap_err();
            assert_eq!(error.body().code, "schedule.invalid", "{bad}");
        }
        assert!(body(serde_json::json!({"type": "t", "every_ms": 5, "bogus": 1})).is_err());
        // The create body flattens the spec beside the id; a misspelt field is still refused.
        let create = |json| serde_json::from_value::<CreateScheduleRequest>(json);
        let ok = create(serde_json::json!({"id": "s", "type": "t", "every_ms": 5})).unwrap();
        assert_eq!((ok.id.as_str(), ok.spec.every_ms), ("s", Some(5)));
        assert!(
            create(serde_json::json!({"id": "s", "type": "t", "every_ms": 5, "crom": "x"}))
                .is_err()
        );
        assert!(create(serde_json::json!({"type": "t", "every_ms": 5})).is_err());
    }

    #[test]
    fn schedule_errors_map_onto_statuses() {
        let cases = [
            (
                ScheduleError::NotFound { id: "a".into() },
                StatusCode::NOT_FOUND,
            ),
            (
                ScheduleError::AlreadyExists { id: "a".into() },
                StatusCode::CONFLICT,
            ),
            (
                ScheduleError::Invalid { reason: "x".into() },
                StatusCode::BAD_REQUEST,
            ),
            (
                ScheduleError::Engine(weft_runtime::EngineError::Shutdown),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (error, status) in cases {
            let code = code_of(&error);
            let api = ApiError::from(error);
            assert_eq!(api.status(), status);
            assert_eq!(api.body().code, code);
        }
    }
}
