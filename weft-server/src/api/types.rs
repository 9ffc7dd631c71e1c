//! The API's wire types: what goes over HTTP as JSON, converted from and to the engine's types.
//! The OpenAPI document is generated from these same types.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_runtime::engine::{ListOrder, ParkReason, Pending, WorkflowDescription, WorkflowSummary};
use weft_runtime::{AttributeValue, ListFilter, WorkflowStatus};

use crate::audit::AuditEntry;
use crate::error::ApiError;

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The inverse of [`millis`].
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Where a workflow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Runs, or waits on an activity.
    Running,
    /// Waits on a timer, a signal or a review.
    Waiting,
    /// Returned `Ok`.
    Completed,
    /// Returned `Err`.
    Failed,
    /// Ended by cancellation.
    Cancelled,
    /// Cannot make progress until an operator fixes the cause (see `park_reason`).
    Parked,
    /// Ended because its execution timeout passed.
    TimedOut,
}

impl From<WorkflowStatus> for Status {
    fn from(status: WorkflowStatus) -> Self {
        match status {
            WorkflowStatus::Running => Status::Running,
            WorkflowStatus::Waiting => Status::Waiting,
            WorkflowStatus::Completed => Status::Completed,
            WorkflowStatus::Failed => Status::Failed,
            WorkflowStatus::Cancelled => Status::Cancelled,
            WorkflowStatus::Parked => Status::Parked,
            WorkflowStatus::TimedOut => Status::TimedOut,
        }
    }
}

impl From<Status> for WorkflowStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Running => WorkflowStatus::Running,
            Status::Waiting => WorkflowStatus::Waiting,
            Status::Completed => WorkflowStatus::Completed,
            Status::Failed => WorkflowStatus::Failed,
            Status::Cancelled => WorkflowStatus::Cancelled,
            Status::Parked => WorkflowStatus::Parked,
            Status::TimedOut => WorkflowStatus::TimedOut,
        }
    }
}

impl Status {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Parked => "parked",
            Status::TimedOut => "timed_out",
        }
    }

    /// Whether the workflow has finished for good.
    pub fn is_terminal(self) -> bool {
        WorkflowStatus::from(self).is_terminal()
    }

    pub(crate) fn parse(text: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }
}

/// A search attribute's value: a JSON string, a JSON integer, or `{"time_ms": n}` for a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Attribute {
    /// Text.
    String(String),
    /// A signed integer.
    Int(i64),
    /// A point in time, in milliseconds since the Unix epoch.
    Time {
        /// Milliseconds since the Unix epoch.
        time_ms: i64,
    },
}

impl From<&AttributeValue> for Attribute {
    fn from(value: &AttributeValue) -> Self {
        match value {
            AttributeValue::String(s) => Attribute::String(s.clone()),
            AttributeValue::Int(n) => Attribute::Int(*n),
            AttributeValue::Time(t) => Attribute::Time {
                time_ms: millis(*t),
            },
        }
    }
}

impl From<Attribute> for AttributeValue {
    fn from(value: Attribute) -> Self {
        match value {
            Attribute::String(s) => AttributeValue::String(s),
            Attribute::Int(n) => AttributeValue::Int(n),
            Attribute::Time { time_ms } => AttributeValue::Time(from_millis(time_ms)),
        }
    }
}

fn attributes(map: &BTreeMap<String, AttributeValue>) -> BTreeMap<String, Attribute> {
    map.iter().map(|(k, v)| (k.clone(), v.into())).collect()
}

/// Which workflows a list, count or bulk operation covers; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only workflows with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Only workflows of this type name.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub workflow_type: Option<String>,
    /// Only workflows whose id starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    /// Only workflows whose search attributes have all these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Attribute>,
    /// Only workflows created at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after_ms: Option<i64>,
    /// Only workflows created before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before_ms: Option<i64>,
    /// Only workflows last written at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_after_ms: Option<i64>,
    /// Only workflows last written before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_before_ms: Option<i64>,
}

impl Filter {
    /// The engine's filter.
    pub fn to_engine(&self) -> ListFilter {
        ListFilter {
            status: self.status.map(Into::into),
            workflow_type: self.workflow_type.clone(),
            id_prefix: self.id_prefix.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
            created_after: self.created_after_ms.map(from_millis),
            created_before: self.created_before_ms.map(from_millis),
            updated_after: self.updated_after_ms.map(from_millis),
            updated_before: self.updated_before_ms.map(from_millis),
            order: ListOrder::Id,
        }
    }

    /// Reads a filter from query parameters: `status`, `type`, `id_prefix`, `created_after_ms`,
    /// `created_before_ms`, `updated_after_ms`, `updated_before_ms`, and `attr.NAME=text`,
    /// `attr_int.NAME=42`, `attr_time_ms.NAME=1700000000000` for search attributes. Takes the
    /// keys it knows out of `params`.
    pub(crate) fn from_query(params: &mut BTreeMap<String, String>) -> Result<Filter, ApiError> {
        fn int(key: &str, value: &str) -> Result<i64, ApiError> {
            value.parse().map_err(|_| {
                ApiError::bad_request(
                    "request.invalid_query",
                    format!("`{key}` must be an integer, got {value:?}"),
                )
            })
        }
        let mut filter = Filter::default();
        let keys: Vec<String> = params.keys().cloned().collect();
        for key in keys {
            let value = &params[&key];
            match key.as_str() {
                "status" => {
                    filter.status = Some(Status::parse(value).ok_or_else(|| {
                        ApiError::bad_request(
                            "request.invalid_query",
                            format!(
                                "unknown status {value:?}; use running, waiting, completed, failed, cancelled, parked or timed_out"
                            ),
                        )
                    })?);
                }
                "type" => filter.workflow_type = Some(value.clone()),
                "id_prefix" => filter.id_prefix = Some(value.clone()),
                "created_after_ms" => filter.created_after_ms = Some(int(&key, value)?),
                "created_before_ms" => filter.created_before_ms = Some(int(&key, value)?),
                "updated_after_ms" => filter.updated_after_ms = Some(int(&key, value)?),
                "updated_before_ms" => filter.updated_before_ms = Some(int(&key, value)?),
                other => {
                    let attribute = if let Some(name) = other.strip_prefix("attr.") {
                        (name, Attribute::String(value.clone()))
                    } else if let Some(name) = other.strip_prefix("attr_int.") {
                        (name, Attribute::Int(int(&key, value)?))
                    } else if let Some(name) = other.strip_prefix("attr_time_ms.") {
                        (
                            name,
                            Attribute::Time {
                                time_ms: int(&key, value)?,
                            },
                        )
                    } else {
                        continue;
                    };
                    filter
                        .attributes
                        .insert(attribute.0.to_string(), attribute.1);
                }
            }
            params.remove(&key);
        }
        Ok(filter)
    }
}

/// Refuses query parameters nobody took: a typo would otherwise widen a filter silently.
pub(crate) fn no_unknown_params(params: &BTreeMap<String, String>) -> Result<(), ApiError> {
    match params.keys().next() {
        None => Ok(()),
        Some(key) => Err(ApiError::bad_request(
            "request.invalid_query",
            format!("unknown query parameter `{key}`"),
        )),
    }
}

/// Why a workflow is parked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParkReasonView {
    /// A stable code (`record.corrupt`, `workflow.unknown_type`, ...).
    pub code: String,
    /// The reason for people.
    pub message: String,
}

impl From<&ParkReason> for ParkReasonView {
    fn from(reason: &ParkReason) -> Self {
        ParkReasonView {
            code: reason.code.clone(),
            message: reason.message.clone(),
        }
    }
}

/// The durable operation a suspended workflow waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingView {
    /// An activity call.
    Activity {
        /// The activity's name.
        name: String,
        /// The attempt running or due next, 1-based (durable across restarts).
        attempt: u32,
        /// How many attempts its retry policy allows in all.
        max_attempts: u32,
    },
    /// A timer.
    Timer {
        /// When it fires, in ms since the epoch.
        deadline_ms: i64,
    },
    /// A signal (a review waits on the signal `weft.review`).
    Signal {
        /// The signal's name.
        name: String,
    },
    /// A group of operations (`ctx.all` or `ctx.race`).
    Group {
        /// Whether it is a race.
        race: bool,
        /// How many branches it has.
        branches: usize,
        /// How many have finished.
        finished: usize,
    },
    /// A child workflow.
    Child {
        /// The child's id.
        id: String,
    },
}

impl From<&Pending> for PendingView {
    fn from(pending: &Pending) -> Self {
        match pending {
            Pending::Activity {
                name,
                attempt,
                max_attempts,
            } => PendingView::Activity {
                name: name.clone(),
                attempt: *attempt,
                max_attempts: *max_attempts,
            },
            Pending::Timer { deadline } => PendingView::Timer {
                deadline_ms: millis(*deadline),
            },
            Pending::Signal { name } => PendingView::Signal { name: name.clone() },
            Pending::Group {
                race,
                branches,
                finished,
            } => PendingView::Group {
                race: *race,
                branches: *branches,
                finished: *finished,
            },
            Pending::Child { id } => PendingView::Child { id: id.clone() },
        }
    }
}

/// One workflow, as `GET /v1/workflows/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowView {
    /// The workflow's id.
    pub id: String,
    /// The workflow type's name (empty for an unreadable record).
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The workflow type's version.
    pub version: u32,
    /// Where it is in its life.
    pub status: Status,
    /// Why it is parked, when it is.
    pub park_reason: Option<ParkReasonView>,
    /// How many steps have been committed.
    pub step: u64,
    /// How many signals it has consumed.
    pub signals_consumed: u64,
    /// When it started (ms since the epoch).
    pub created_at_ms: i64,
    /// When its record was last written (ms since the epoch).
    pub updated_at_ms: i64,
    /// The current state's variant name, while suspended: which await it is at.
    pub state_name: Option<String>,
    /// The live checkpoint: the state enum as JSON, its fields the live locals.
    pub state: Option<serde_json::Value>,
    /// What it waits on, while suspended.
    pub pending: Option<PendingView>,
    /// The pending command in words, as the engine renders it.
    pub waiting_on: Option<String>,
    /// How many signals are queued for it and not yet consumed.
    pub signals_queued: u64,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// The parent workflow's id, for a child workflow.
    pub parent: Option<String>,
    /// The ids of the child workflows it started, in id order (the first 100; purged ones are
    /// left out).
    #[serde(default)]
    pub children: Vec<String>,
    /// Its search attributes.
    pub attributes: BTreeMap<String, Attribute>,
    /// Operator and admin actions on it that this server recorded (newest last).
    pub audit: Vec<AuditEntry>,
}

impl WorkflowView {
    pub(crate) fn new(d: WorkflowDescription, audit: Vec<AuditEntry>) -> Self {
        let pending = d.pending.as_ref().map(PendingView::from);
        WorkflowView {
            waiting_on: d.pending_text,
            signals_queued: d.signals_queued,
            id: d.id,
            workflow_type: d.workflow_type,
            version: d.version,
            status: d.status.into(),
            park_reason: d.park_reason.as_ref().map(Into::into),
            step: d.step,
            signals_consumed: d.signals_consumed,
            created_at_ms: millis(d.created_at),
            updated_at_ms: millis(d.updated_at),
            state_name: d.state_name.map(str::to_string),
            state: d.state,
            pending,
            error: d.error,
            parent: d.parent,
            children: d.children,
            attributes: attributes(&d.attributes),
            audit,
        }
    }
}

/// One workflow in a list page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SummaryView {
    /// The workflow's id.
    pub id: String,
    /// The workflow type's name.
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// The workflow type's version.
    pub version: u32,
    /// Where it is in its life.
    pub status: Status,
    /// Why it is parked, when it is.
    pub park_reason: Option<ParkReasonView>,
    /// How many steps have been committed.
    pub step: u64,
    /// When it started (ms since the epoch).
    pub created_at_ms: i64,
    /// When its record was last written (ms since the epoch).
    pub updated_at_ms: i64,
    /// The parent workflow's id, for a child workflow.
    pub parent: Option<String>,
    /// Its search attributes.
    pub attributes: BTreeMap<String, Attribute>,
}

impl From<WorkflowSummary> for SummaryView {
    fn from(s: WorkflowSummary) -> Self {
        SummaryView {
            id: s.id,
            workflow_type: s.workflow_type,
            version: s.version,
            status: s.status.into(),
            park_reason: s.park_reason.as_ref().map(Into::into),
            step: s.step,
            created_at_ms: millis(s.created_at),
            updated_at_ms: millis(s.updated_at),
            parent: s.parent,
            attributes: attributes(&s.attributes),
        }
    }
}

/// One page of workflows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListResponse {
    /// The workflows on this page, in id order.
    pub items: Vec<SummaryView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a workflow's children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChildrenResponse {
    /// The ids of the child workflows it started, in id order (purged ones left out).
    pub items: Vec<String>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One group of a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountGroup {
    /// The group's name: a status, a type name or an attribute's value.
    pub group: String,
    /// How many workflows fall in it.
    pub count: u64,
}

/// The answer of a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountResponse {
    /// The non-empty groups, sorted by name.
    pub groups: Vec<CountGroup>,
    /// The sum of the groups.
    pub total: u64,
}

/// The cursor of a list: the engine's page token, hex-encoded so clients treat it as opaque
/// and it travels in a URL unescaped.
/// The orders a list can be sorted in, by their `sort` query value: `id` (the default),
/// `created_asc`, `created_desc`, `updated_asc`, `updated_desc`.
pub(crate) const SORTS: &[(&str, ListOrder)] = &[
    ("id", ListOrder::Id),
    ("created_asc", ListOrder::CreatedAsc),
    ("created_desc", ListOrder::CreatedDesc),
    ("updated_asc", ListOrder::UpdatedAsc),
    ("updated_desc", ListOrder::UpdatedDesc),
];

/// Reads a list's `sort` query value (see [`SORTS`]); none is id order.
pub(crate) fn parse_sort(value: Option<&str>) -> Result<ListOrder, ApiError> {
    let Some(value) = value else {
        return Ok(ListOrder::Id);
    };
    SORTS
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, order)| *order)
        .ok_or_else(|| {
            ApiError::bad_request(
                "request.invalid_query",
                format!(
                    "unknown sort {value:?}; use id, created_asc, created_desc, updated_asc or updated_desc"
                ),
            )
        })
}

/// The `sort` query value of `order`.
pub(crate) fn sort_name(order: ListOrder) -> &'static str {
    SORTS
        .iter()
        .find(|(_, o)| *o == order)
        .map_or("id", |(name, _)| name)
}

pub(crate) fn encode_cursor(token: &str) -> String {
    token.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`encode_cursor`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "request.invalid_cursor",
            "invalid cursor; pass the `next_cursor` of a previous page",
        )
    };
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for token in ["", "order-7", "naïve/ids"] {
            assert_eq!(decode_cursor(&encode_cursor(token)).unwrap(), token);
        }
        for bad in ["z1", "abc", "ff"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_filters_parse_and_leave_unknown_keys() {
        let mut params: BTreeMap<String, String> = [
            ("status", "waiting"),
            ("type", "checkout"),
            ("attr.customer", "ada"),
            ("attr_int.total", "42"),
            ("page_size", "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let filter = Filter::from_query(&mut params).unwrap();
        assert_eq!(filter.status, Some(Status::Waiting));
        assert_eq!(filter.attributes["total"], Attribute::Int(42));
        assert_eq!(params.keys().collect::<Vec<_>>(), ["page_size"]);
        let mut bad: BTreeMap<String, String> =
            [("status".to_string(), "sleeping".to_string())].into();
        assert!(Filter::from_query(&mut bad).is_err());
    }
}
