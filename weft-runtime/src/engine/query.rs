//! Describe and list: what a stored workflow looks like to people, including why it is parked.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::attribute::AttributeValue;

use super::attributes;
use super::clock::{from_millis, to_millis};
use super::core::Inner;
use super::error::EngineError;
use super::execute;
use super::migration;
use super::page::{Page, token_key};
use super::record::{self, PendingCommand, RecordStatus, WorkflowRecord};
use super::registry::{ErasedWorkflow, Lookup};
use super::visibility;
use super::words;

/// Where a workflow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    /// Runs, or waits on an activity.
    Running,
    /// Waits on a timer or a signal.
    Waiting,
    /// Returned `Ok`.
    Completed,
    /// Returned `Err`.
    Failed,
    /// Ended by cancellation.
    Cancelled,
    /// Cannot make progress until an operator fixes the cause; see [`ParkReason`].
    Parked,
    /// Ended because its execution timeout passed (see `StartOptions::execution_timeout`).
    TimedOut,
}

impl WorkflowStatus {
    /// Whether the workflow has finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            WorkflowStatus::Completed
                | WorkflowStatus::Failed
                | WorkflowStatus::Cancelled
                | WorkflowStatus::TimedOut
        )
    }
}

/// Why a workflow is parked. Nothing of it was deleted; fixing the cause (registering the right
/// code, for example) and building the engine again resumes it (a workflow stored as parked is
/// retried at build), as does `Engine::retry` for a cause fixed without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkReason {
    /// A stable code: `record.corrupt`, `workflow.unknown_type` (no version of the name is
    /// registered), `workflow.version_mismatch` (other versions are, not this one),
    /// `workflow.fingerprint_mismatch` (this version is, with another shape),
    /// `workflow.panicked` (a step panicked; the message names the step),
    /// `codec.panicked` (a `Serialize` or `Deserialize` impl panicked),
    /// `migration.failed`, `migration.panicked`, `migration.pending`, `state.corrupt`,
    /// `activity.not_registered`, `engine.payload_too_large`, `engine.counter_overflow` (a
    /// stored counter is at its largest value), or a step error's code.
    pub code: String,
    /// The reason for people.
    pub message: String,
}

/// The durable operation a suspended workflow waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// An activity call.
    Activity {
        /// The activity's name.
        name: String,
        /// The attempt running or due next, 1-based (stored before each attempt after the
        /// first, so it survives restarts).
        attempt: u32,
        /// How many attempts its retry policy allows in all.
        max_attempts: u32,
    },
    /// A timer.
    Timer {
        /// When it fires.
        deadline: SystemTime,
    },
    /// A signal.
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

/// The pending command in words, as an operator reads it: `activity shop.charge_card, attempt
/// 2 of 5`, `timer until 2026-01-01T00:00:00Z` (ms since the Unix epoch), `signal approval`.
impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Activity {
                name,
                attempt,
                max_attempts,
            } => write!(f, "activity {name}, attempt {attempt} of {max_attempts}"),
            Pending::Timer { deadline } => {
                write!(
                    f,
                    "timer until {} ms since the Unix epoch",
                    to_millis(*deadline)
                )
            }
            Pending::Signal { name } => write!(f, "signal {name}"),
            Pending::Group {
                race,
                branches,
                finished,
            } => write!(
                f,
                "{} of {branches} branches, {finished} finished",
                if *race { "race" } else { "all" }
            ),
            Pending::Child { id } => write!(f, "child workflow {id}"),
        }
    }
}

/// One workflow, as `Engine::describe` shows it.
///
/// For an unreadable record only `id`, `status` and `park_reason` are meaningful; the other
/// fields hold empty values.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDescription {
    /// The workflow's id.
    pub id: String,
    /// The workflow type's name.
    pub workflow_type: String,
    /// The workflow type's version.
    pub version: u32,
    /// Where it is in its life.
    pub status: WorkflowStatus,
    /// Why it is parked, when it is.
    pub park_reason: Option<ParkReason>,
    /// How many steps have been committed.
    pub step: u64,
    /// How many signals it has consumed (by top-level waits and by group branches).
    pub signals_consumed: u64,
    /// When it started.
    pub created_at: SystemTime,
    /// When its record was last written.
    pub updated_at: SystemTime,
    /// The current state's variant name, while suspended.
    pub state_name: Option<&'static str>,
    /// The current state rendered as JSON, while suspended.
    pub state: Option<serde_json::Value>,
    /// What it waits on, while suspended.
    pub pending: Option<Pending>,
    /// What it waits on, in words, while suspended: "waiting for signal `Approval` since
    /// 2026-12-05 10:42:07 UTC" (times in UTC, from the commit that suspended it).
    pub pending_text: Option<String>,
    /// How many signals are queued for it and not yet consumed (updates and review decisions
    /// not counted). A finished workflow's queue is cleared with its final step.
    pub signals_queued: u64,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// The parent workflow's id, for a child workflow.
    pub parent: Option<String>,
    /// The ids of the child workflows it started, in id order, at most
    /// [`DESCRIBED_CHILDREN`] (read from the children index; `Engine::children` pages through
    /// all of them). A purged child is no longer listed.
    pub children: Vec<String>,
    /// The search attributes its committed steps set (see `WorkflowContext::set_attribute`).
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// At most this many children are named in a [`WorkflowDescription`].
pub const DESCRIBED_CHILDREN: usize = 100;

/// Which workflows `Engine::list` and `Engine::count` see. Every field set must match (an
/// empty filter matches every workflow); build one with `..ListFilter::default()`.
///
/// The first of `attributes` is answered from the attribute index (only that value's
/// workflows are read); `id_prefix` narrows the scan to that id range; the other conditions
/// are checked on each record read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only workflows with this status.
    pub status: Option<WorkflowStatus>,
    /// Only workflows of this type name.
    pub workflow_type: Option<String>,
    /// Only workflows whose id starts with this.
    pub id_prefix: Option<String>,
    /// Only workflows whose committed search attributes have all these values (times compare
    /// at millisecond precision).
    pub attributes: Vec<(String, AttributeValue)>,
    /// Only workflows created at or after this time.
    pub created_after: Option<SystemTime>,
    /// Only workflows created before this time.
    pub created_before: Option<SystemTime>,
    /// Only workflows last written at or after this time.
    pub updated_after: Option<SystemTime>,
    /// Only workflows last written before this time.
    pub updated_before: Option<SystemTime>,
    /// The order `Engine::list` returns them in (`Engine::count` ignores it).
    pub order: ListOrder,
}

/// The order of `Engine::list`'s pages.
///
/// By id, the candidates come from the narrowest index the filter allows (see `Engine::list`).
/// By creation or update time they come from a time index read in that order: the created-time
/// index (`crt/`) for creation; for update time, the update-time index of the workflows not
/// finished (`lus/`, keyed by the second, one second's entries sorted by their records' times)
/// merged with the finish-time index (`fin/`), since a finished workflow's last update is when
/// it finished. So a page by update time reads the records of every live workflow last written
/// in each second it reaches, however few of them it shows. A status of only finished, or only unfinished, workflows
/// reads one of the two; a time range on the sort key bounds the scan. The other conditions are
/// checked on each record read. Ties in time go by id. A record that does not decode has no
/// known times and is listed only in id order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// By id, ascending.
    #[default]
    Id,
    /// By creation time, oldest first.
    CreatedAsc,
    /// By creation time, newest first.
    CreatedDesc,
    /// By last update time, least recently updated first.
    UpdatedAsc,
    /// By last update time, most recently updated first.
    UpdatedDesc,
}

impl ListOrder {
    /// Whether the newest come first.
    fn descending(self) -> bool {
        matches!(self, ListOrder::CreatedDesc | ListOrder::UpdatedDesc)
    }
}

/// How many workflows started and finished in a time window, as `Engine::count_window` reads
/// them from the created-time and finish-time indexes. Purged workflows are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Workflows created in the window.
    pub started: u64,
    /// Workflows that finished (completed, failed, were cancelled or timed out) in the window.
    pub finished: u64,
}

/// What `Engine::count` groups workflows by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// Their status, named as `WorkflowStatus`'s `Debug` (`"Running"`, `"Completed"`, ..).
    Status,
    /// Their workflow type name.
    Type,
    /// The value of this search attribute, rendered with `AttributeValue`'s `Display`.
    /// Workflows that never set it are not counted.
    Attribute(String),
}

/// One workflow in a list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSummary {
    /// The workflow's id.
    pub id: String,
    /// The workflow type's name (empty for an unreadable record).
    pub workflow_type: String,
    /// The workflow type's version.
    pub version: u32,
    /// Where it is in its life.
    pub status: WorkflowStatus,
    /// Why it is parked, when it is.
    pub park_reason: Option<ParkReason>,
    /// How many steps have been committed.
    pub step: u64,
    /// When it started.
    pub created_at: SystemTime,
    /// When its record was last written.
    pub updated_at: SystemTime,
    /// The parent workflow's id, for a child workflow.
    pub parent: Option<String>,
    /// The search attributes its committed steps set.
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// A stored record read against the registered code.
pub(crate) struct Inspected<'a> {
    pub record: Option<WorkflowRecord>,
    pub status: WorkflowStatus,
    pub park_reason: Option<ParkReason>,
    pub workflow: Option<&'a dyn ErasedWorkflow>,
    /// Its committed search attributes (empty when they do not decode).
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// Reads stored workflow `id` (its record `bytes` and its search attributes) against the
/// registry. A record of its that does not decode parks it, here and in what its runner loads;
/// only a failing storage read is an error, so one bad record never fails a call about others.
/// Blocking: async code reads through [`read_stored`] and inspects with [`inspect_stored`].
pub(crate) fn inspect<'a>(
    inner: &'a Inner,
    id: &str,
    bytes: &[u8],
) -> Result<Inspected<'a>, EngineError> {
    with_attributes(
        inspect_record(inner, bytes),
        attributes::read(&*inner.storage, (inner.partition(id), id)),
    )
}

/// What [`inspect_stored`] reads of a stored workflow: its record's bytes, and its search
/// attributes as read.
pub(crate) struct Stored {
    bytes: Vec<u8>,
    attributes: Result<BTreeMap<String, AttributeValue>, EngineError>,
}

/// Reads what [`inspect_stored`] needs of workflow `id`, in one trip off the async workers;
/// `None` when it has no record.
///
/// # Cancel safety
///
/// Cancel safe: it only reads.
pub(crate) async fn read_stored(inner: &Inner, id: &str) -> Result<Option<Stored>, EngineError> {
    let (p, id) = (inner.partition(id), id.to_string());
    inner
        .read(move |storage| {
            let Some(bytes) = storage.get(&record::workflow_key(p, &id))? else {
                return Ok(None);
            };
            let attributes = attributes::read(storage, (p, &id));
            Ok(Some(Stored { bytes, attributes }))
        })
        .await
}

/// [`inspect`] of what [`read_stored`] read, for a caller that wants only the status and the
/// outcome: a finished workflow's attributes can neither park it nor change its result, so
/// they are left out.
pub(crate) fn inspect_stored(inner: &Inner, stored: Stored) -> Result<Inspected<'_>, EngineError> {
    let inspected = inspect_record(inner, &stored.bytes);
    if inspected.status.is_terminal() {
        return Ok(inspected);
    }
    with_attributes(inspected, stored.attributes)
}

/// Adds the stored attributes to what the record said; a damaged attributes record parks an
/// unfinished workflow.
fn with_attributes(
    mut inspected: Inspected<'_>,
    attributes: Result<BTreeMap<String, AttributeValue>, EngineError>,
) -> Result<Inspected<'_>, EngineError> {
    match attributes {
        Ok(attributes) => inspected.attributes = attributes,
        Err(EngineError::Record { key, source }) => {
            // A finished workflow keeps its status and result; the attributes are only gone
            // from view. An unfinished one is parked where it is: its runner refuses it too.
            if !inspected.status.is_terminal() && inspected.park_reason.is_none() {
                inspected.status = WorkflowStatus::Parked;
                inspected.park_reason = Some(ParkReason {
                    code: "record.corrupt".into(),
                    message: format!(
                        "the search attributes record `{key}` does not decode ({source}); it is kept as stored"
                    ),
                });
            }
        }
        Err(other) => return Err(other),
    }
    Ok(inspected)
}

/// Reads a stored workflow record against the registry. Never fails: what cannot run is parked.
fn inspect_record<'a>(inner: &'a Inner, bytes: &[u8]) -> Inspected<'a> {
    let corrupt = |message: String| Inspected {
        record: None,
        status: WorkflowStatus::Parked,
        park_reason: Some(ParkReason {
            code: "record.corrupt".into(),
            message,
        }),
        workflow: None,
        attributes: BTreeMap::new(),
    };
    let record = match record::decode_record::<WorkflowRecord>(bytes) {
        Ok(record) => record,
        Err(e) => {
            return corrupt(format!(
                "the workflow record does not decode ({e}); it is kept as stored"
            ));
        }
    };
    if record.status.is_terminal() && record.outcome.is_none() {
        // Nothing could ever be answered from it: a waiter would wait forever.
        return corrupt(format!(
            "the workflow record says it ended ({:?}) but holds no outcome; it is kept as stored",
            record.status
        ));
    }
    let lookup = inner
        .registry
        .lookup(&record.workflow_type, record.version, record.fingerprint);
    // A record its migration could not move is shown with the old version's code.
    let workflow = match lookup {
        Lookup::Found(w) => Some(&**w),
        _ => inner
            .registry
            .migration(&migration::key_of_record(&record))
            .map(|m| &*m.source),
    };
    let (status, park_reason) = match (&record.status, lookup) {
        (RecordStatus::Completed, _) => (WorkflowStatus::Completed, None),
        (RecordStatus::Failed, _) => (WorkflowStatus::Failed, None),
        (RecordStatus::Cancelled, _) => (WorkflowStatus::Cancelled, None),
        (RecordStatus::TimedOut, _) => (WorkflowStatus::TimedOut, None),
        (RecordStatus::Parked { code, message }, _) => (
            WorkflowStatus::Parked,
            Some(ParkReason {
                code: code.clone(),
                message: message.clone(),
            }),
        ),
        (_, Lookup::UnknownType | Lookup::FingerprintMismatch { .. }) => (
            WorkflowStatus::Parked,
            Some(not_runnable(inner, &record, lookup)),
        ),
        (RecordStatus::Running, Lookup::Found(_)) => (WorkflowStatus::Running, None),
        (RecordStatus::Waiting, Lookup::Found(_)) => (WorkflowStatus::Waiting, None),
    };
    Inspected {
        record: Some(record),
        status,
        park_reason,
        workflow,
        attributes: BTreeMap::new(),
    }
}

/// Why a stored, unfinished record matches no registered code: its migration fails (or is yet
/// to be committed), its version is not registered, or its shape differs from the registered
/// code of its version.
fn not_runnable(inner: &Inner, record: &WorkflowRecord, lookup: Lookup<'_>) -> ParkReason {
    let stored = format!(
        "`{}` version {} (fingerprint {:#018x})",
        record.workflow_type, record.version, record.fingerprint
    );
    match migration::upgrade(inner, record) {
        Some(Err(fault)) => {
            return ParkReason {
                code: fault.code,
                message: fault.message,
            };
        }
        Some(Ok(next)) => {
            return ParkReason {
                code: "migration.pending".into(),
                message: format!(
                    "the stored state of {stored} is migrated to version {} when the engine is next built",
                    next.version
                ),
            };
        }
        None => {}
    }
    let versions = inner.registry.versions(&record.workflow_type);
    let registered = versions
        .iter()
        .map(|(v, f)| format!("version {v} ({f:#018x})"))
        .collect::<Vec<_>>()
        .join(", ");
    match lookup {
        Lookup::FingerprintMismatch { registered: now } => ParkReason {
            code: "workflow.fingerprint_mismatch".into(),
            message: format!(
                "the stored state of {stored} was written by code of another shape than the registered code of that version (fingerprint {now:#018x}); register the old code under its own VERSION to finish it, or a migration from it"
            ),
        },
        _ if !versions.is_empty() => ParkReason {
            code: "workflow.version_mismatch".into(),
            message: format!(
                "the stored state of {stored} matches no registered version ({registered}); register the code that wrote it, or a migration from it, to resume"
            ),
        },
        _ => ParkReason {
            code: "workflow.unknown_type".into(),
            message: format!(
                "workflow type `{}` version {} is not registered with this engine; register it to resume",
                record.workflow_type, record.version
            ),
        },
    }
}

/// One page of the ids of `parent`'s children, in id order, from the children index
/// (`child/<parent>\0<child>`): a prefix scan, no record read.
pub(crate) fn children(
    inner: &Inner,
    parent: &str,
    page_size: usize,
    page_token: Option<&str>,
) -> Result<Page<String>, EngineError> {
    let page_size = page_size.max(1);
    let prefix = record::children_prefix(inner.partition(parent), parent);
    let after = token_key(page_token)?.map(|child| [prefix.as_slice(), child.as_bytes()].concat());
    let ids: Vec<String> = inner
        .storage
        .scan_prefix(&prefix, after.as_deref(), page_size)?
        .into_iter()
        .filter_map(|(key, _)| {
            let child = String::from_utf8(key[prefix.len()..].to_vec()).ok();
            if child.is_none() {
                inner.damage.unparsed(&key);
            }
            child
        })
        .collect();
    Ok(Page::of(ids, page_size, String::as_str))
}

/// How many user signals wait in the queue of `id` (update and review queues left out).
fn queued_signals(inner: &Inner, id: &str) -> Result<u64, EngineError> {
    let queue = inner.storage.scan_prefix(
        &record::signal_queue_prefix(inner.partition(id), id),
        None,
        usize::MAX,
    )?;
    Ok(queue
        .iter()
        .filter(|(_, value)| {
            record::decode_record::<record::SignalRecord>(value).is_ok_and(|signal| {
                signal.name != crate::review::REVIEW_QUEUE
                    && !signal.name.starts_with("weft.update/")
            })
        })
        .count() as u64)
}

/// The full description of a stored workflow.
pub(crate) fn describe(inner: &Inner, id: &str) -> Result<WorkflowDescription, EngineError> {
    let bytes = inner
        .read_raw(id)?
        .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
    let inspected = inspect(inner, id, &bytes)?;
    let parent = inspected
        .record
        .as_ref()
        .and_then(|record| record.lifecycle.parent.clone());
    let mut description = WorkflowDescription {
        id: id.to_string(),
        workflow_type: String::new(),
        version: 0,
        status: inspected.status,
        park_reason: inspected.park_reason,
        step: 0,
        signals_consumed: 0,
        created_at: SystemTime::UNIX_EPOCH,
        updated_at: SystemTime::UNIX_EPOCH,
        state_name: None,
        state: None,
        pending: None,
        pending_text: None,
        signals_queued: queued_signals(inner, id)?,
        error: None,
        parent,
        children: children(inner, id, DESCRIBED_CHILDREN, None)?.items,
        attributes: inspected.attributes,
    };
    let Some(record) = inspected.record else {
        return Ok(description);
    };
    description.workflow_type = record.workflow_type.clone();
    description.version = record.version;
    description.step = record.step;
    description.signals_consumed = record.signals_consumed;
    description.created_at = from_millis(record.created_ms);
    description.updated_at = from_millis(record.updated_ms);
    let mut attempt = 1;
    if let Some(PendingCommand::Activity { .. }) = &record.pending {
        match execute::stored_attempt(
            &*inner.storage,
            (inner.partition(id), id),
            record.step,
            None,
        )? {
            Ok(stored) => attempt = stored,
            Err(fault)
                if !description.status.is_terminal() && description.park_reason.is_none() =>
            {
                description.status = WorkflowStatus::Parked;
                description.park_reason = Some(ParkReason {
                    code: fault.code,
                    message: fault.message,
                });
            }
            Err(_) => {}
        }
    }
    description.pending = record.pending.as_ref().map(|pending| match pending {
        PendingCommand::Activity { name, options, .. } => Pending::Activity {
            name: name.clone(),
            attempt,
            max_attempts: options.retry.max_attempts.max(1),
        },
        PendingCommand::Timer { deadline_ms } => Pending::Timer {
            deadline: from_millis(*deadline_ms),
        },
        PendingCommand::Signal { name } => Pending::Signal { name: name.clone() },
        PendingCommand::Group { race, branches, .. } => Pending::Group {
            race: *race,
            branches: branches.len(),
            finished: branches.iter().filter(|b| b.value.is_some()).count(),
        },
        PendingCommand::Child { child_id, .. } => Pending::Child {
            id: child_id.clone(),
        },
    });
    description.pending_text = record
        .pending
        .as_ref()
        .map(|pending| words::pending(pending, record.updated_ms, attempt));
    if let Some(record::Outcome::Error { message, .. }) = &record.outcome {
        description.error = Some(message.clone());
    }
    if let (Some(workflow), Some(state)) = (inspected.workflow, &record.state) {
        match (workflow.state_name(state), workflow.state_json(state)) {
            (Ok(name), Ok(json)) => {
                description.state_name = Some(name);
                description.state = Some(json);
            }
            (Err(e), _) => {
                description.status = WorkflowStatus::Parked;
                description.park_reason = Some(ParkReason {
                    code: "state.corrupt".into(),
                    message: format!("the stored state does not decode: {e}"),
                });
            }
            (Ok(name), Err(_)) => description.state_name = Some(name),
        }
    }
    Ok(description)
}

/// Workflows started and finished in `[from, to)`.
pub(crate) fn count_window(
    inner: &Inner,
    from: SystemTime,
    to: SystemTime,
) -> Result<WindowCounts, EngineError> {
    let (from, to) = (to_millis(from), to_millis(to));
    Ok(WindowCounts {
        started: visibility::count_in_window(&*inner.storage, record::CREATED_PREFIX, from, to)?,
        finished: visibility::count_in_window(&*inner.storage, record::FINISHED_PREFIX, from, to)?,
    })
}

/// One page of workflows matching `filter`, after `page_token`.
pub(crate) fn list(
    inner: &Inner,
    filter: &ListFilter,
    page_size: usize,
    page_token: Option<&str>,
) -> Result<Page<WorkflowSummary>, EngineError> {
    let page_size = page_size.max(1);
    let after = token_key(page_token)?;
    if filter.order != ListOrder::Id {
        return list_by_time(inner, filter, page_size, after);
    }
    let mut items = Vec::new();
    for_each_match(inner, filter, after, page_size, |summary| {
        items.push(summary);
        items.len() < page_size
    })?;
    Ok(Page::of(items, page_size, |item| &item.id))
}

/// A page token of a listing by time: the sort key's ms and the id of the page's last
/// workflow, `<ms>/<id>`.
fn time_token(ms: u64, id: &str) -> String {
    format!("{ms}/{id}")
}

/// Reads a token written by [`time_token`].
fn parse_time_token(token: &str) -> Result<(u64, &str), EngineError> {
    let (ms, id) = token.split_once('/').ok_or(EngineError::InvalidPageToken)?;
    let ms = ms.parse().map_err(|_| EngineError::InvalidPageToken)?;
    Ok((ms, id))
}

/// One time index read in one direction, a chunk at a time: `<prefix><ms BE><id>` keys.
struct TimeScan {
    prefix: &'static [u8],
    /// Keys at or after this (the lower bound of a time range).
    low: Vec<u8>,
    /// Keys before this (the upper bound of a time range, or the prefix's end).
    high: Vec<u8>,
    /// The last key taken: the scan goes on past it.
    cursor: Option<Vec<u8>>,
    descending: bool,
    buffered: std::collections::VecDeque<(u64, String)>,
    exhausted: bool,
    /// For the update-time index of live workflows, keyed by the second: the time range in ms,
    /// the token's position, and the next second to read (see [`TimeScan::fill_by_second`]).
    by_second: Option<BySecond>,
}

/// Where a scan of the second-keyed update-time index stands.
struct BySecond {
    range_ms: (Option<u64>, Option<u64>),
    after: Option<(u64, String)>,
    /// The next second to read: the first at or after it (ascending), or at or before it
    /// (descending); `None` when none is left.
    next: Option<u64>,
}

impl TimeScan {
    fn new(
        prefix: &'static [u8],
        range: (Option<u64>, Option<u64>),
        after: Option<(u64, &str)>,
        descending: bool,
    ) -> Self {
        let bound = |ms: u64| [prefix, &ms.to_be_bytes()].concat();
        let low = range.0.map_or_else(|| prefix.to_vec(), bound);
        let high = match range.1 {
            Some(ms) => bound(ms),
            // Every key of the prefix is below it: `prefix` ends in `/`, never 0xff.
            None => crate::storage::prefix_end(prefix).unwrap_or_default(),
        };
        TimeScan {
            prefix,
            low,
            high,
            cursor: after.map(|(ms, id)| [prefix, &ms.to_be_bytes(), id.as_bytes()].concat()),
            descending,
            buffered: Default::default(),
            exhausted: false,
            by_second: None,
        }
    }

    /// A scan of the update-time index of live workflows (`lus/<s BE><id>`), in exact time
    /// order: it reads one second's entries at a time and sorts them by their records' times.
    fn by_second(
        range: (Option<u64>, Option<u64>),
        after: Option<(u64, &str)>,
        descending: bool,
    ) -> Self {
        let mut scan = TimeScan::new(record::LIVE_UPDATED_PREFIX, (None, None), None, descending);
        let next = if descending {
            let high = match range.1 {
                Some(0) => None,
                Some(ms) => Some((ms - 1) / 1000),
                None => Some(u64::MAX),
            };
            let cursor = after.map(|(ms, _)| ms / 1000);
            match (high, cursor) {
                (Some(high), Some(cursor)) => Some(high.min(cursor)),
                (high, _) => high,
            }
        } else {
            let low = range.0.unwrap_or(0) / 1000;
            Some(after.map_or(low, |(ms, _)| low.max(ms / 1000)))
        };
        scan.by_second = Some(BySecond {
            range_ms: range,
            after: after.map(|(ms, id)| (ms, id.to_string())),
            next,
        });
        scan
    }

    /// Buffers the entries of the next second that has any left after the range and the token,
    /// each with its record's exact update time, sorted in the scan's order.
    fn fill_by_second(&mut self, inner: &Inner) -> Result<(), EngineError> {
        use std::ops::Bound;
        let prefix = record::LIVE_UPDATED_PREFIX;
        let second_key = |s: u64| [prefix, &s.to_be_bytes()].concat();
        let Some(state) = self.by_second.as_mut() else {
            return Ok(());
        };
        while self.buffered.is_empty() {
            let Some(next) = state.next else {
                self.exhausted = true;
                return Ok(());
            };
            // The second of the nearest entry in the scan's direction whose key parses: a
            // damaged key is skipped (and reported), not taken for the end of the index.
            let prefix_end = crate::storage::prefix_end(prefix).unwrap_or_default();
            let mut past: Option<Vec<u8>> = None;
            let second = loop {
                let found = if self.descending {
                    let end = match (&past, next.checked_add(1)) {
                        (Some(past), _) => past.clone(),
                        (None, Some(after_next)) => second_key(after_next),
                        (None, None) => prefix_end.clone(),
                    };
                    inner
                        .storage
                        .scan_rev(Bound::Included(prefix), Bound::Excluded(&end), 1)?
                } else {
                    let start = second_key(next);
                    let start = match &past {
                        Some(past) => Bound::Excluded(past.as_slice()),
                        None => Bound::Included(start.as_slice()),
                    };
                    inner.storage.scan(start, Bound::Excluded(&prefix_end), 1)?
                };
                let Some((key, _)) = found.into_iter().next() else {
                    break None;
                };
                match record::parse_time_key(prefix, &key) {
                    Some((second, _)) => break Some(second),
                    None => {
                        inner.damage.unparsed(&key);
                        past = Some(key);
                    }
                }
            };
            let Some(second) = second else {
                state.next = None;
                continue;
            };
            state.next = if self.descending {
                second.checked_sub(1)
            } else {
                second.checked_add(1)
            };
            let bucket = second_key(second);
            let mut entries: Vec<(u64, String)> = Vec::new();
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let page = inner
                    .storage
                    .scan_prefix(&bucket, cursor.as_deref(), 1024)?;
                for (key, _) in &page {
                    let Ok(id) = std::str::from_utf8(&key[bucket.len()..]) else {
                        inner.damage.unparsed(key);
                        continue;
                    };
                    let Some(bytes) = inner.read_raw(id)? else {
                        continue;
                    };
                    let Ok(stored) = record::decode_record::<WorkflowRecord>(&bytes) else {
                        continue;
                    };
                    let ms = stored.updated_ms;
                    let in_range = state.range_ms.0.is_none_or(|low| ms >= low)
                        && state.range_ms.1.is_none_or(|high| ms < high);
                    let past_token = state.after.as_ref().is_none_or(|(after_ms, after_id)| {
                        let here = (ms, id);
                        let token = (*after_ms, after_id.as_str());
                        if self.descending {
                            here < token
                        } else {
                            here > token
                        }
                    });
                    if !stored.status.is_terminal() && ms / 1000 == second && in_range && past_token
                    {
                        entries.push((ms, id.to_string()));
                    }
                }
                if page.len() < 1024 {
                    break;
                }
                cursor = page.last().map(|(key, _)| key.clone());
            }
            entries.sort();
            if self.descending {
                entries.reverse();
            }
            self.buffered.extend(entries);
        }
        Ok(())
    }

    /// The next entry's time and id, reading a chunk when none is buffered.
    fn peek(&mut self, inner: &Inner, chunk: usize) -> Result<Option<&(u64, String)>, EngineError> {
        use std::ops::Bound;
        if self.by_second.is_some() {
            if self.buffered.is_empty() && !self.exhausted {
                self.fill_by_second(inner)?;
            }
            return Ok(self.buffered.front());
        }
        if self.buffered.is_empty() && !self.exhausted {
            let entries = if self.descending {
                let end = match &self.cursor {
                    Some(cursor) if *cursor < self.high => Bound::Excluded(cursor.as_slice()),
                    _ => Bound::Excluded(self.high.as_slice()),
                };
                inner
                    .storage
                    .scan_rev(Bound::Included(self.low.as_slice()), end, chunk)?
            } else {
                let start = match &self.cursor {
                    Some(cursor) if *cursor >= self.low => Bound::Excluded(cursor.as_slice()),
                    _ => Bound::Included(self.low.as_slice()),
                };
                inner
                    .storage
                    .scan(start, Bound::Excluded(self.high.as_slice()), chunk)?
            };
            self.exhausted = entries.len() < chunk;
            if let Some((last, _)) = entries.last() {
                self.cursor = Some(last.clone());
            }
            for (key, _) in &entries {
                match record::parse_time_key(self.prefix, key) {
                    Some(entry) => self.buffered.push_back(entry),
                    None => inner.damage.unparsed(key),
                }
            }
        }
        Ok(self.buffered.front())
    }
}

/// One page of workflows matching `filter` in its time order, after `after` (a token).
fn list_by_time(
    inner: &Inner,
    filter: &ListFilter,
    page_size: usize,
    after: Option<&str>,
) -> Result<Page<WorkflowSummary>, EngineError> {
    let after = after.map(parse_time_token).transpose()?;
    let descending = filter.order.descending();
    let chunk = page_size.clamp(64, 1024);
    let ms = |time: Option<SystemTime>| time.map(to_millis);
    let created = matches!(filter.order, ListOrder::CreatedAsc | ListOrder::CreatedDesc);
    // Each scan, with whether its entries are of finished workflows (`None`: either).
    let mut scans: Vec<(TimeScan, Option<bool>)> = Vec::new();
    if created {
        let range = (ms(filter.created_after), ms(filter.created_before));
        scans.push((
            TimeScan::new(record::CREATED_PREFIX, range, after, descending),
            None,
        ));
    } else {
        let range = (ms(filter.updated_after), ms(filter.updated_before));
        if filter.status.is_none_or(|status| !status.is_terminal()) {
            scans.push((TimeScan::by_second(range, after, descending), Some(false)));
        }
        if filter.status.is_none_or(WorkflowStatus::is_terminal) {
            scans.push((
                TimeScan::new(record::FINISHED_PREFIX, range, after, descending),
                Some(true),
            ));
        }
    }
    let wanted = wanted_attributes(filter);
    let mut items: Vec<(u64, WorkflowSummary)> = Vec::new();
    while items.len() < page_size {
        // The scan whose next entry comes first in the order.
        let mut best: Option<(usize, (u64, String))> = None;
        for (i, (scan, _)) in scans.iter_mut().enumerate() {
            let Some(next) = scan.peek(inner, chunk)? else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((_, current)) if descending => next > current,
                Some((_, current)) => next < current,
            };
            if better {
                best = Some((i, next.clone()));
            }
        }
        let Some((i, (key_ms, id))) = best else {
            break;
        };
        scans[i].0.buffered.pop_front();
        let finished = scans[i].1;
        let Some(bytes) = inner.read_raw(&id)? else {
            continue;
        };
        // An entry that disagrees with the record was read across a commit that moved it: the
        // record is listed from the entry that agrees with it (or, mid-move, left out).
        let Ok(stored) = record::decode_record::<WorkflowRecord>(&bytes) else {
            continue;
        };
        let agrees = if created {
            stored.created_ms == key_ms
        } else {
            stored.updated_ms == key_ms && finished == Some(stored.status.is_terminal())
        };
        if !agrees {
            continue;
        }
        if let Some(summary) = summarize(inner, filter, &wanted, id, &bytes)? {
            items.push((key_ms, summary));
        }
    }
    let next_page_token = if items.len() >= page_size {
        items
            .last()
            .map(|(ms, summary)| time_token(*ms, &summary.id))
    } else {
        None
    };
    Ok(Page {
        items: items.into_iter().map(|(_, summary)| summary).collect(),
        next_page_token,
    })
}

/// The filter's attribute conditions as stored values.
fn wanted_attributes(filter: &ListFilter) -> Vec<(String, record::StoredValue)> {
    filter
        .attributes
        .iter()
        .map(|(key, value)| (key.clone(), value.into()))
        .collect()
}

/// How many workflows matching `filter` fall in each group, in group-name order.
pub(crate) fn count(
    inner: &Inner,
    filter: &ListFilter,
    group_by: &GroupBy,
) -> Result<Vec<(String, u64)>, EngineError> {
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    // Grouped by status or type with no condition but those two, everything is read from the
    // counters: finished workflows from `cnt/`, unfinished ones from `lcnt/`. No record is read,
    // so the cost follows the number of types, not the number of workflows.
    let from_counters = filter.attributes.is_empty()
        && filter.id_prefix.is_none()
        && filter.created_after.is_none()
        && filter.created_before.is_none()
        && filter.updated_after.is_none()
        && filter.updated_before.is_none()
        && matches!(group_by, GroupBy::Status | GroupBy::Type);
    if from_counters {
        if filter.status.is_none_or(WorkflowStatus::is_terminal) {
            let status = filter.status.map(|status| format!("{status:?}"));
            for (status, workflow_type, n) in visibility::finished_counts(
                &*inner.storage,
                &inner.damage,
                status.as_deref(),
                filter.workflow_type.as_deref(),
            )? {
                let group = match group_by {
                    GroupBy::Type => workflow_type,
                    _ => status,
                };
                *groups.entry(group).or_default() += n;
            }
        }
        if filter.status.is_none_or(|status| !status.is_terminal()) {
            for (counted, n) in visibility::live_counts(&*inner.storage)? {
                if filter
                    .workflow_type
                    .as_deref()
                    .is_some_and(|wanted| wanted != counted.workflow_type)
                {
                    continue;
                }
                let Some(status) = live_status(inner, &counted) else {
                    continue;
                };
                if filter.status.is_some_and(|wanted| wanted != status) {
                    continue;
                }
                let group = match group_by {
                    GroupBy::Type => counted.workflow_type,
                    _ => format!("{status:?}"),
                };
                *groups.entry(group).or_default() += n;
            }
        }
        return Ok(groups.into_iter().collect());
    }
    for_each_match(inner, filter, None, 1024, |summary| {
        let group = match group_by {
            GroupBy::Status => Some(format!("{:?}", summary.status)),
            GroupBy::Type => Some(summary.workflow_type),
            GroupBy::Attribute(key) => summary.attributes.get(key).map(ToString::to_string),
        };
        if let Some(group) = group {
            *groups.entry(group).or_default() += 1;
        }
        true
    })?;
    Ok(groups.into_iter().collect())
}

/// The status the workflows a live counter counts are reported with, as [`inspect_record`]
/// reports each: parked when stored parked, or when their type, version or shape is not
/// registered; else as stored.
fn live_status(inner: &Inner, counted: &record::LiveCounterKey) -> Option<WorkflowStatus> {
    let stored = match counted.status.as_str() {
        "Parked" => return Some(WorkflowStatus::Parked),
        "Running" => WorkflowStatus::Running,
        "Waiting" => WorkflowStatus::Waiting,
        _ => return None,
    };
    match inner
        .registry
        .lookup(&counted.workflow_type, counted.version, counted.fingerprint)
    {
        Lookup::Found(_) => Some(stored),
        Lookup::UnknownType | Lookup::FingerprintMismatch { .. } => Some(WorkflowStatus::Parked),
    }
}

/// Calls `on_match` with each workflow matching `filter` whose id is after `after`, in id
/// order, until it returns `false`.
fn for_each_match(
    inner: &Inner,
    filter: &ListFilter,
    after: Option<&str>,
    page_size: usize,
    mut on_match: impl FnMut(WorkflowSummary) -> bool,
) -> Result<(), EngineError> {
    let chunk = page_size.clamp(64, 1024);
    let id_prefix = filter.id_prefix.as_deref().unwrap_or("");
    // Where the candidates come from, each in id order: the index of the first attribute when
    // there is one (one value's workflows); the live index when only running or waiting ones
    // are wanted (a record that does not decode is listed as parked, so it is never missed
    // there); the type index when a type is wanted; else every workflow record under the id
    // prefix. An index names ids only, so the record is read for each.
    let partitioned = |family: &[u8]| -> Vec<(Vec<u8>, usize)> {
        inner
            .partitions
            .all()
            .map(|p| {
                let start = record::partition_prefix(family, p);
                let id_start = start.len();
                ([start, id_prefix.as_bytes().to_vec()].concat(), id_start)
            })
            .collect()
    };
    // The live index and the records are per partition: one stream per partition, merged in
    // id order (one stream when the store has one partition).
    let (streams, from_index) = match filter.attributes.first() {
        Some((key, value)) => {
            let prefix = record::attribute_value_prefix(key, &value.into());
            let start = prefix.len();
            (vec![(prefix, start)], true)
        }
        None if matches!(
            filter.status,
            Some(WorkflowStatus::Running | WorkflowStatus::Waiting)
        ) =>
        {
            (partitioned(record::LIVE_PREFIX), true)
        }
        None if let Some(workflow_type) = &filter.workflow_type => {
            let by_type = record::type_index_prefix(workflow_type);
            let start = by_type.len();
            (
                vec![([by_type, id_prefix.as_bytes().to_vec()].concat(), start)],
                true,
            )
        }
        None => (partitioned(record::WORKFLOW_PREFIX), false),
    };
    let mut streams: Vec<Stream> = streams
        .into_iter()
        .filter_map(|(prefix, id_start)| Stream::new(prefix, id_start, after))
        .collect();
    let wanted = wanted_attributes(filter);
    loop {
        for stream in &mut streams {
            stream.refill(&*inner.storage, chunk)?;
        }
        // The stream whose next entry has the lowest id: ids are unique across partitions.
        let Some(next) = streams
            .iter()
            .enumerate()
            .filter_map(|(at, stream)| stream.peek_id().map(|id| (id, at)))
            .min()
            .map(|(_, at)| at)
        else {
            return Ok(());
        };
        let stream = &mut streams[next];
        let id_start = stream.id_start;
        let Some((key, value)) = stream.buffer.pop_front() else {
            return Ok(());
        };
        let id = match std::str::from_utf8(&key[id_start..]) {
            Ok(id) => id.to_string(),
            // An index entry naming no id; a record's own key is listed as it reads.
            Err(_) if from_index => {
                inner.damage.unparsed(&key);
                continue;
            }
            Err(_) => String::from_utf8_lossy(&key[id_start..]).into_owned(),
        };
        let bytes = if from_index {
            match inner.read_raw(&id)? {
                Some(bytes) => bytes,
                None => continue,
            }
        } else {
            value
        };
        if let Some(summary) = summarize(inner, filter, &wanted, id, &bytes)?
            && !on_match(summary)
        {
            return Ok(());
        }
    }
}

/// One ordered source of listing candidates: the keys under `prefix`, read a chunk at a time.
struct Stream {
    prefix: Vec<u8>,
    /// Where the workflow id begins in each key.
    id_start: usize,
    /// The last key read.
    cursor: Option<Vec<u8>>,
    buffer: std::collections::VecDeque<crate::storage::Entry>,
    exhausted: bool,
}

impl Stream {
    /// The stream of `prefix`'s keys whose id is after `after`; `None` when none can be.
    fn new(prefix: Vec<u8>, id_start: usize, after: Option<&str>) -> Option<Stream> {
        let cursor = match after {
            None => None,
            Some(after) => {
                let key = [&prefix[..id_start], after.as_bytes()].concat();
                if key.starts_with(&prefix) {
                    Some(key)
                } else if key < prefix {
                    None
                } else {
                    return None;
                }
            }
        };
        Some(Stream {
            prefix,
            id_start,
            cursor,
            buffer: std::collections::VecDeque::new(),
            exhausted: false,
        })
    }

    /// Reads the next chunk when the buffer is empty and the prefix is not exhausted.
    fn refill(
        &mut self,
        storage: &dyn crate::storage::Storage,
        chunk: usize,
    ) -> Result<(), EngineError> {
        if !self.buffer.is_empty() || self.exhausted {
            return Ok(());
        }
        let entries = storage.scan_prefix(&self.prefix, self.cursor.as_deref(), chunk)?;
        self.exhausted = entries.len() < chunk;
        if let Some((key, _)) = entries.last() {
            self.cursor = Some(key.clone());
        }
        self.buffer.extend(entries);
        Ok(())
    }

    /// The id bytes of the next entry.
    fn peek_id(&self) -> Option<&[u8]> {
        self.buffer.front().map(|(key, _)| &key[self.id_start..])
    }
}

/// Workflow `id`, stored as `bytes`, as a list item when it matches `filter` (whose attribute
/// conditions are `wanted`); `None` when it does not.
fn summarize(
    inner: &Inner,
    filter: &ListFilter,
    wanted: &[(String, record::StoredValue)],
    id: String,
    bytes: &[u8],
) -> Result<Option<WorkflowSummary>, EngineError> {
    if filter
        .id_prefix
        .as_ref()
        .is_some_and(|p| !id.starts_with(p.as_str()))
    {
        return Ok(None);
    }
    let inspected = inspect(inner, &id, bytes)?;
    if filter.status.is_some_and(|s| s != inspected.status) {
        return Ok(None);
    }
    let record = inspected.record.as_ref();
    let workflow_type = record.map(|r| r.workflow_type.clone()).unwrap_or_default();
    if filter
        .workflow_type
        .as_ref()
        .is_some_and(|t| *t != workflow_type)
    {
        return Ok(None);
    }
    let created_ms = record.map_or(0, |r| r.created_ms);
    let updated_ms = record.map_or(0, |r| r.updated_ms);
    let in_range = |ms: u64, from: Option<SystemTime>, to: Option<SystemTime>| {
        from.is_none_or(|from| ms >= to_millis(from)) && to.is_none_or(|to| ms < to_millis(to))
    };
    if !in_range(created_ms, filter.created_after, filter.created_before)
        || !in_range(updated_ms, filter.updated_after, filter.updated_before)
    {
        return Ok(None);
    }
    let attributes = inspected.attributes;
    if !wanted.iter().all(|(key, value)| {
        attributes
            .get(key)
            .is_some_and(|have| record::StoredValue::from(have) == *value)
    }) {
        return Ok(None);
    }
    let parent = record.and_then(|r| r.lifecycle.parent.clone());
    Ok(Some(WorkflowSummary {
        id,
        workflow_type,
        version: record.map_or(0, |r| r.version),
        status: inspected.status,
        park_reason: inspected.park_reason,
        step: record.map_or(0, |r| r.step),
        created_at: from_millis(created_ms),
        updated_at: from_millis(updated_ms),
        parent,
        attributes,
    }))
}
