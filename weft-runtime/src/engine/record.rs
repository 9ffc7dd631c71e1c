//! The engine's persisted records, their key layout and their format tags.
//!
//! Every value the engine stores is `[format tag: u8][codec-encoded record]` (bincode 2, serde
//! mode, standard config: see [`crate::codec`]), so a later format can be told apart without
//! guessing. Keys are plain bytes, laid out so that ordered scans answer the engine's questions.
//!
//! Since store format 5, every key of a workflow that the owner of its partition reads to recover
//! or drive it carries the partition right after its prefix, as a fixed-width big-endian `u16`
//! (`<p>` below; [`PARTITIONED_PREFIXES`] lists them): one partition's records, live index,
//! timers, signal and update queues are range scans over its own keys. A workflow's partition
//! is computed in one place, `engine::partition::Partitions::of`, from its id and the store's
//! partition count (`meta/partitions`); a child hashes by its own id like any workflow, and the
//! `child/` index, which its parent reads, sits in the parent's partition. Parsing a key gives
//! its partition back ([`split_partition`], [`parse_id_key`], [`parse_timer_key`]), so nothing
//! decodes a record to find one.
//!
//! The other keys stay global: the visibility indexes and counters (`fin/`, `crt/`, `lus/`,
//! `ty/`, `attr/`, `cnt/`, `lcnt/`), idempotency keys (`idem/`, `idemx/`), pending reviews
//! (`review/`), schedules (`sched/`, `schedx/`) and `meta/`. Visibility (list, count, describe
//! by type or attribute, the reviews a person may decide) is served by any node and reads across
//! every partition in one scan; an idempotency key or a schedule names a workflow before its
//! partition is known. None is read to recover a partition: what the owner needs is partitioned.
//!
//! | key | value | purpose |
//! | --- | --- | --- |
//! | `meta/epoch` | `[0x01][u64 big-endian]` | the owner epoch; every engine write checks it |
//! | `meta/format` | `[0x01][u32 big-endian]` | the store format version ([`crate::storage::STORE_FORMAT_VERSION`]) of the newest build that owned the store; a build refuses a newer one |
//! | `meta/live-index` | `[0x01]` | the `live/` index is complete (written once, by the first engine that built it) |
//! | `meta/partitions` | `[0x01][u16 big-endian]` | how many partitions the store's workflows are spread over (1 until the partitions issue); a workflow's partition is FNV-1a of its id modulo it (see `engine::partition`) |
//! | `meta/lifecycle` | `[0x01]` | every `wf/` record is of format `0x02` (store format 3; written at creation, or when the upgrade from format 2 is complete: see `engine::record_upgrade`) |
//! | `meta/partition-keys` | `[0x02]` | every per-workflow key carries its partition (store format 5; `[0x01]`: the upgrade from format 4 moved the timers, see `engine::key_upgrade`) |
//! | `wf/<p><id>` | `[0x02][WorkflowRecord]` | one per workflow: state, pending command, status, and its [`Lifecycle`] (cancellation request, delivered cancellation, execution deadline, timed out, parent link, trace context) |
//! | `live/<p><id>` | empty | live index: one per workflow that has not finished (running, waiting or parked) |
//! | `tm/<p><deadline ms: u64 BE><id>` | empty | timer index: a range scan finds one partition's due timers ([`due_timers_end`]) |
//! | `sig/<p><id>\0<epoch: u64 BE><n: u64 BE>` | `[0x01][SignalRecord]` | a workflow's durable signal queue, in send order |
//! | `sigid/<p><id>\0<signal id>` | `[0x01][SignalIdRecord]` | a caller's signal id was accepted: a repeat within the window is not queued again |
//! | `idem/<key>` | `[0x01][IdempotencyRecord]` | idempotency key of a start -> workflow id |
//! | `wfattr/<p><id>` | `[0x01][AttributesRecord]` | a workflow's search attributes |
//! | `actres/<p><id>` | `[0x01][ActivityResultRecord]` | the activity result a parked workflow resumes with when retried |
//! | `attr/<key>/<value>/<id>` | empty | attribute index: a prefix scan finds one value's workflows, in id order |
//! | `meta/visibility-index` | `[0x01]` | the `ty/` and `fin/` indexes and the `cnt/` counters are complete |
//! | `ty/<type>\0<id>` | empty | type index: a prefix scan finds one type's workflows, in id order |
//! | `fin/<finish ms: u64 BE><id>` | `[0x01][FinishedRecord]` | finish-time index: finished workflows by when they finished |
//! | `meta/order-index` | `[0x02]` | the `crt/`, `lus/` and `child/` indexes are complete (`[0x01]`: an earlier layout, with `lupd/`, rebuilt at build) |
//! | `crt/<created ms: u64 BE><id>` | empty | created-time index: every workflow by when it started |
//! | `lus/<updated s: u64 BE><id>` | empty | update-time index of live workflows, by the second of the last write: moved when a write falls in a later second, deleted when it finishes (a finished one's last update is its `fin/` time) |
//! | `child/<p of the parent><parent id>\0<child id>` | empty | children index: a parent's children, in id order |
//! | `idemx/<expires ms: u64 BE><key>` | empty | an idempotency key kept after a retention purge, until it expires |
//! | `cnt/<status>\0<type>` | `[0x01][u64 big-endian]` | finished workflows of a type with a status; written by the writer alone |
//! | `meta/live-counters` | `[0x01]` | the `lcnt/` counters are complete |
//! | `lcnt/<status>\0<type>\0<version: u32 BE><fingerprint: u64 BE>` | `[0x01][u64 big-endian]` | unfinished workflows (`Running`, `Waiting`, `Parked`) of a type's version stored with a status; written by the writer alone |
//! | `sched/<id>`, `schedx/<due ms: u64 BE><id>` | see `engine::schedule::store` | durable schedules and their fire-time index |
//! | `attempt/<p><id>\0[<branch: u32 BE>]` | `[0x01][AttemptRecord]` | the activity attempt started last, when past the first (the first rides on the step's commit) |
//! | `upd/<p><id>\0<update id>` | `[0x01][UpdateResponseRecord]` | an update's answer, so a duplicate gets it |
//! | `updq/<p><id>\0<update id>` | empty | an update was queued, so a duplicate is not queued again |
//! | `review/<id>` | `[0x01][ReviewRecord]` | the review a workflow waits on (global: listed by the reviews API) |
//!
//! Store format 2 kept a workflow's lifecycle in side keys, beside a `wf/<id>` record of format
//! `0x01` (the same record without its lifecycle). Format 3 never stores them; the build that
//! upgrades a format-2 store folds them into the records and deletes them:
//!
//! | key (format 2 only) | value | now |
//! | --- | --- | --- |
//! | `cancel/<id>` | `[0x01][CancelRecord]` | [`Lifecycle::cancel_requested_ms`]; `cancel/<id>` is still how a batch hands the writer a request (a put) or a delivery (a delete), never stored: see `engine::cancel_fold` |
//! | `cancelled/<id>` | empty | [`Lifecycle::cancelled`] |
//! | `deadline/<id>` | `[0x01][DeadlineRecord]` | [`Lifecycle::deadline_ms`]; `deadline/<id>` among a step's consumed keys takes it out |
//! | `timedout/<id>` | empty | [`Lifecycle::timed_out`] |
//! | `parent/<child id>` | the parent's id (UTF-8) | [`Lifecycle::parent`] |
//!
//! The attribute index key is `attr/`, then the attribute key and the value, each in an
//! order-preserving, self-delimiting encoding, then the workflow id:
//!
//! ```text
//! attr/ <key bytes, 0x00 escaped as 0x00 0xFF> 0x00 0x01
//!       <tag> <value>                      tag 0x01 int:    i64 big-endian, sign bit flipped
//!                                          tag 0x02 time:   ms since the epoch, as an int
//!                                          tag 0x03 string: bytes escaped as the key, then 0x00 0x01
//!       <id bytes>
//! ```
//!
//! So `attr/<key>/<value>/` (see [`attribute_value_prefix`]) is a prefix of exactly the
//! workflows with that value, whatever bytes keys and strings hold, and within one key values
//! sort by type, then numerically or bytewise.
//!
//! Store formats 1 to 4 laid the per-workflow keys out without `<p>` (`wf/<id>`,
//! `tm/<deadline><id>`, ...); the build that finds such a store moves them into partition 0 (see
//! `engine::key_upgrade`).
//!
//! Workflow ids never contain a NUL byte, so `sig/<p><id>\0` is a prefix of one workflow's queue
//! only. Signal sequence numbers are the sending engine's epoch then a counter, so they grow
//! across restarts without a stored counter.
//!
//! The golden-record tests (`tests/engine_golden.rs`) pin these bytes.

use serde::{Deserialize, Serialize};

use crate::activity::ActivityOptions;
use crate::codec::{self, CodecError};

pub use super::partition::Partition;

/// The format tag of every record this version of the engine writes, but the workflow record
/// ([`FORMAT_V2`]).
pub const FORMAT_V1: u8 = 0x01;

/// `wfattr/<id>`: a workflow's search attributes, apart from its record so that records
/// written before attributes existed decode unchanged.
pub const ATTRIBUTES_PREFIX: &[u8] = b"wfattr/";
/// `attr/...`: the attribute index (see the module docs for the layout).
pub const ATTRIBUTE_INDEX_PREFIX: &[u8] = b"attr/";

/// The key of the owner epoch.
pub const EPOCH_KEY: &[u8] = b"meta/epoch";
/// The prefix of workflow records.
pub const WORKFLOW_PREFIX: &[u8] = b"wf/";
/// The prefix of the live index: `live/<p><id>` for every workflow not finished, so recovery and
/// listings of running, waiting or parked workflows read those alone, however many finished
/// ones the store holds.
pub const LIVE_PREFIX: &[u8] = b"live/";
/// Marks the live index complete. Stores written before the index existed lack it; the first
/// engine built on one fills the index in and then writes this key.
pub const LIVE_INDEX_KEY: &[u8] = b"meta/live-index";
/// The value of [`LIVE_INDEX_KEY`]: the index's format.
pub const LIVE_INDEX_V1: &[u8] = &[FORMAT_V1];
/// `ty/<type>\0<id>`: the type index, every workflow by its type name (empty value), so a
/// listing by type reads that type's workflows alone.
pub const TYPE_INDEX_PREFIX: &[u8] = b"ty/";
/// `fin/<finish ms BE><id>`: the finish-time index, every finished workflow by when it
/// finished ([`FinishedRecord`]), so a purge by age and the finished counters read no records.
pub const FINISHED_PREFIX: &[u8] = b"fin/";
/// `cnt/<status>\0<type>`: how many finished workflows of a type ended with a status
/// (`Completed`, `Failed`, `Cancelled`, `TimedOut`), as `[0x01][u64 BE]`. Kept by the writer
/// from the finish-time index entries each batch adds or deletes, so counting finished
/// workflows reads a few counters, not every record.
pub const COUNTER_PREFIX: &[u8] = b"cnt/";
/// `lcnt/<status>\0<type>\0<version u32 BE><fingerprint u64 BE>`: how many unfinished
/// workflows (`Running`, `Waiting`, `Parked`) of a type's version and shape are stored with a
/// status, as `[0x01][u64 BE]` (see [`live_counter_key`]). Every write of a workflow record
/// stages the change of its status with the record, and the writer adds a batch's changes up
/// into one write per counter, so counting the workflows in flight reads a few counters, not
/// their records. The version and fingerprint let a count report a workflow whose code is not
/// registered as parked, as describe does.
pub const LIVE_COUNTER_PREFIX: &[u8] = b"lcnt/";
/// Marks the [`LIVE_COUNTER_PREFIX`] counters complete. Stores written before they existed
/// lack it; the first engine built on one counts the live index's records and writes the
/// counters with this key.
pub const LIVE_COUNTERS_KEY: &[u8] = b"meta/live-counters";
/// The value of [`LIVE_COUNTERS_KEY`]: the counters' format.
pub const LIVE_COUNTERS_V1: &[u8] = &[FORMAT_V1];
/// Marks the type index, finish-time index and counters complete. Stores written before they
/// existed lack it; the first engine built on one fills them in and then writes this key.
pub const VISIBILITY_INDEX_KEY: &[u8] = b"meta/visibility-index";
/// The value of [`VISIBILITY_INDEX_KEY`]: the indexes' format.
pub const VISIBILITY_INDEX_V1: &[u8] = &[FORMAT_V1];
/// Marks every workflow record of the store as of format `0x02`, with its lifecycle inside
/// (store format 3). Stores of format 2 lack it; the first engine built on one folds the
/// lifecycle side keys into the records (see `engine::record_upgrade`) and then writes this key.
pub const LIFECYCLE_KEY: &[u8] = b"meta/lifecycle";
/// The value of [`LIFECYCLE_KEY`].
pub const LIFECYCLE_V1: &[u8] = &[FORMAT_V1];
/// Says how far the move of per-workflow keys into their partition has gone (store format 5,
/// see `engine::key_upgrade`): [`PARTITION_KEYS_TIMERS`] once the timers are moved,
/// [`PARTITION_KEYS_DONE`] once every key is. Written `DONE` when a store is created.
pub const PARTITION_KEYS_KEY: &[u8] = b"meta/partition-keys";
/// A value of [`PARTITION_KEYS_KEY`]: the `tm/` keys carry their partition, others may not yet.
pub const PARTITION_KEYS_TIMERS: &[u8] = &[0x01];
/// A value of [`PARTITION_KEYS_KEY`]: every per-workflow key carries its partition.
pub const PARTITION_KEYS_DONE: &[u8] = &[0x02];
/// The prefixes of the per-workflow keys that carry the workflow's partition right after the
/// prefix (`<prefix><p: u16 BE>...`): everything the owner of a partition reads to recover and
/// drive its workflows. The other keys are global (see the module docs).
pub const PARTITIONED_PREFIXES: &[&[u8]] = &[
    WORKFLOW_PREFIX,
    LIVE_PREFIX,
    TIMER_PREFIX,
    SIGNAL_PREFIX,
    SIGNAL_ID_PREFIX,
    UPDATE_RESPONSE_PREFIX,
    UPDATE_QUEUED_PREFIX,
    ACTIVITY_RESULT_PREFIX,
    ATTEMPT_PREFIX,
    ATTRIBUTES_PREFIX,
    CHILD_PREFIX,
];
/// `crt/<created ms BE><id>`: the created-time index, every workflow by when it started
/// (empty value), written by the commit that creates it and deleted by its purge, so a listing
/// by creation time reads one page of it.
pub const CREATED_PREFIX: &[u8] = b"crt/";
/// `lus/<updated s BE><id>`: every workflow not finished by the second (since the Unix epoch)
/// its record was last written in (empty value). A write in a later second moves its entry (the
/// old one deleted, the new one put, in the same batch), so steps within one second write
/// nothing here; the commit that finishes it deletes it, since from then on the finish-time
/// index orders it. A listing sorts one second's entries by their records' exact times.
pub const LIVE_UPDATED_PREFIX: &[u8] = b"lus/";
/// `lupd/<updated ms BE><id>`: the update-time index as [`ORDER_INDEX_V1`] laid it out, keyed
/// by the millisecond (so moved by every step). A build finding that marker deletes it and
/// builds [`LIVE_UPDATED_PREFIX`] instead.
pub const LIVE_UPDATED_V1_PREFIX: &[u8] = b"lupd/";
/// `child/<parent id>\0<child id>`: a parent's children (empty value), written with the
/// child's `parent/` link and deleted with it, so a parent's children are one prefix scan.
pub const CHILD_PREFIX: &[u8] = b"child/";
/// Marks the created-time, update-time and children indexes complete. Stores written before
/// they existed lack it; the first engine built on one fills them in and then writes this key.
pub const ORDER_INDEX_KEY: &[u8] = b"meta/order-index";
/// A value of [`ORDER_INDEX_KEY`] written by earlier builds: the update-time index was keyed
/// by the millisecond, under [`LIVE_UPDATED_V1_PREFIX`].
pub const ORDER_INDEX_V1: &[u8] = &[FORMAT_V1];
/// The value of [`ORDER_INDEX_KEY`]: the indexes' format, with the update-time index keyed by
/// the second ([`LIVE_UPDATED_PREFIX`]).
pub const ORDER_INDEX_V2: &[u8] = &[0x02];
/// The prefix of the timer index.
pub const TIMER_PREFIX: &[u8] = b"tm/";
/// The prefix of signal queues.
pub const SIGNAL_PREFIX: &[u8] = b"sig/";
/// The prefix of caller signal ids (see [`signal_id_key`]).
pub const SIGNAL_ID_PREFIX: &[u8] = b"sigid/";
/// The prefix of idempotency keys.
pub const IDEMPOTENCY_PREFIX: &[u8] = b"idem/";
/// `idemx/<expires ms BE><key>`: an idempotency key kept after a retention purge of its
/// workflow, until it expires (empty value), so its deletion reads no records.
pub const IDEMPOTENCY_EXPIRY_PREFIX: &[u8] = b"idemx/";
/// `cancel/<id>`: a cancellation request, stored in format 2 only (now in the record, see
/// [`Lifecycle::cancel_requested_ms`]); still how a batch names a request (a put) or its
/// delivery (a delete) to the writer, which folds it into the record.
pub const CANCEL_PREFIX: &[u8] = b"cancel/";
/// `cancelled/<id>`: cancellation was delivered (format 2 only; now [`Lifecycle::cancelled`]).
pub const CANCELLED_PREFIX: &[u8] = b"cancelled/";
/// `parent/<child id>` -> the parent's id (format 2 only; now [`Lifecycle::parent`]).
pub const PARENT_PREFIX: &[u8] = b"parent/";
/// `deadline/<id>`: the execution deadline (format 2 only; now [`Lifecycle::deadline_ms`]).
/// Among a step's consumed keys, it takes the deadline out of the record.
pub const DEADLINE_PREFIX: &[u8] = b"deadline/";
/// `timedout/<id>`: the deadline fired (format 2 only; now [`Lifecycle::timed_out`]).
pub const TIMEDOUT_PREFIX: &[u8] = b"timedout/";

/// `attempt/<id>\0`, then a group branch's index (`u32` big-endian) for a branch: the attempt
/// of the workflow's pending activity that was started last ([`AttemptRecord`]), written before
/// each attempt after the first. Kept apart from the workflow record so records written before
/// attempts were stored decode unchanged; a missing one, or one of an earlier step, reads as
/// attempt 1.
pub const ATTEMPT_PREFIX: &[u8] = b"attempt/";

/// `upd/<id>\0<update id>`: an update's committed answer ([`UpdateResponseRecord`]), kept so
/// a duplicate update gets the first answer.
pub const UPDATE_RESPONSE_PREFIX: &[u8] = b"upd/";
/// `updq/<id>\0<update id>`: an update was queued, so a duplicate is not queued again.
pub const UPDATE_QUEUED_PREFIX: &[u8] = b"updq/";
/// `actres/<id>`: the activity result that resumed a step that then parked
/// ([`ActivityResultRecord`]), delivered again when the workflow is retried, so the activity
/// does not run again.
pub const ACTIVITY_RESULT_PREFIX: &[u8] = b"actres/";
/// `review/<id>`: the review a workflow waits on ([`ReviewRecord`]).
pub const REVIEW_PREFIX: &[u8] = b"review/";

/// `<prefix><p: u16 BE>`: where one partition's keys of a per-workflow family begin.
pub fn partition_prefix(prefix: &[u8], p: Partition) -> Vec<u8> {
    [prefix, &p.to_be_bytes()].concat()
}

/// `<prefix><p: u16 BE><id><tail...>`: a per-workflow key, in one allocation.
fn partitioned(prefix: &[u8], p: Partition, id: &str, tail: &[&[u8]]) -> Vec<u8> {
    let len = prefix.len() + 2 + id.len() + tail.iter().map(|t| t.len()).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&p.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    for part in tail {
        key.extend_from_slice(part);
    }
    key
}

/// Splits a per-workflow key of family `prefix` into its partition and what follows it; `None`
/// when `key` is not of the family or too short to hold a partition.
pub fn split_partition<'a>(prefix: &[u8], key: &'a [u8]) -> Option<(Partition, &'a [u8])> {
    let rest = key.strip_prefix(prefix)?;
    let (p, rest) = rest.split_first_chunk::<2>()?;
    Some((Partition(u16::from_be_bytes(*p)), rest))
}

/// Splits a key `<prefix><p: u16 BE><id>` (`wf/`, `live/`, `actres/`, `wfattr/`) into its
/// partition and workflow id; `None` when it is not of the family or the id is not UTF-8.
pub fn parse_id_key<'a>(prefix: &[u8], key: &'a [u8]) -> Option<(Partition, &'a str)> {
    let (p, id) = split_partition(prefix, key)?;
    Some((p, std::str::from_utf8(id).ok()?))
}

/// `upd/<p><id>\0`: the prefix of one workflow's update answers.
pub fn update_responses_prefix(p: Partition, id: &str) -> Vec<u8> {
    partitioned(UPDATE_RESPONSE_PREFIX, p, id, &[b"\0"])
}

/// `updq/<p><id>\0`: the prefix of one workflow's queued updates.
pub fn update_queue_prefix(p: Partition, id: &str) -> Vec<u8> {
    partitioned(UPDATE_QUEUED_PREFIX, p, id, &[b"\0"])
}

/// `upd/<p><id>\0<update id>`
pub fn update_response_key(p: Partition, id: &str, update_id: &str) -> Vec<u8> {
    partitioned(
        UPDATE_RESPONSE_PREFIX,
        p,
        id,
        &[b"\0", update_id.as_bytes()],
    )
}

/// `updq/<p><id>\0<update id>`
pub fn update_queued_key(p: Partition, id: &str, update_id: &str) -> Vec<u8> {
    partitioned(UPDATE_QUEUED_PREFIX, p, id, &[b"\0", update_id.as_bytes()])
}

/// `actres/<p><id>`
pub fn activity_result_key(p: Partition, id: &str) -> Vec<u8> {
    partitioned(ACTIVITY_RESULT_PREFIX, p, id, &[])
}

/// The result of a workflow's pending activity, stored at `actres/<id>` (format tag `0x01`)
/// when the step it resumed parked the workflow (the step panicked, say), and deleted by the
/// step that consumes it on retry or when the workflow finishes. The activity ran; its result
/// is kept so retrying the step does not run it again.
///
/// Layout: `step: u64, result: Result<bytes, ActivityError>` (bincode: variant 0 `Ok`, 1 `Err`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityResultRecord {
    /// The workflow's step number when the activity was pending: the result belongs to it.
    pub step: u64,
    /// The activity's encoded output, or its final error.
    pub result: Result<Vec<u8>, crate::activity::ActivityError>,
}

/// `attempt/<p><id>\0` for the workflow's pending activity, `attempt/<p><id>\0<branch BE>` for
/// the activity of a group's branch `branch`.
pub fn attempt_key(p: Partition, id: &str, branch: Option<u32>) -> Vec<u8> {
    match branch {
        Some(branch) => partitioned(ATTEMPT_PREFIX, p, id, &[b"\0", &branch.to_be_bytes()]),
        None => partitioned(ATTEMPT_PREFIX, p, id, &[b"\0"]),
    }
}

/// The attempt of a pending activity started last, stored at [`attempt_key`] (format tag
/// `0x01`) before each attempt after the first, so `max_attempts` holds across restarts: after
/// one, the stored attempt counts as spent and the next one runs.
///
/// Layout: `step: u64, attempt: u32`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The workflow step whose activity it is: a record of an earlier step is stale.
    pub step: u64,
    /// The attempt number, 1-based.
    pub attempt: u32,
}

/// `review/<id>`
pub fn review_key(id: &str) -> Vec<u8> {
    [REVIEW_PREFIX, id.as_bytes()].concat()
}

/// An update's answer, stored at `upd/<id>\0<update id>` (format tag `0x01`), committed with
/// the workflow step that gave it.
///
/// Layout: `payload: bytes, answered_ms: u64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResponseRecord {
    /// The encoded response.
    pub payload: Vec<u8>,
    /// When the step that answered was committed, in ms since the Unix epoch.
    pub answered_ms: u64,
}

/// A pending review, stored at `review/<id>` (format tag `0x01`) by the step that suspends at
/// `ctx.review`, and removed by the step that resumes from it.
///
/// Layout: `workflow_id: String, step: u64, title: String, reviewers: Vec<String>,
/// created_ms: u64, deadline_ms: u64, decided_by: Option<String>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    /// The workflow waiting on the review.
    pub workflow_id: String,
    /// The workflow's step number at the review: with the id, it names the review.
    pub step: u64,
    /// What is reviewed.
    pub title: String,
    /// Who may decide.
    pub reviewers: Vec<String>,
    /// When the review was requested, in ms since the Unix epoch.
    pub created_ms: u64,
    /// When it times out, in ms since the Unix epoch.
    pub deadline_ms: u64,
    /// Who decided, once a decision is queued: the review is no longer pending.
    pub decided_by: Option<String>,
}

/// A stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is empty.
    #[error("empty record: the value holds no format tag")]
    Empty,
    /// The record was written in a format this engine does not know.
    #[error(
        "unknown record format tag {tag:#04x}; the record was written by a newer or foreign engine"
    )]
    UnknownFormat {
        /// The tag found.
        tag: u8,
    },
    /// The body does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl RecordError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Empty => "record.empty",
            RecordError::UnknownFormat { .. } => "record.unknown_format",
            RecordError::Codec(e) => e.code(),
        }
    }
}

/// A record type the engine stores, with the format tag this build writes it under.
///
/// Most records have one format ([`FORMAT_V1`]). A record whose layout changed keeps decoding
/// its earlier formats through [`Record::decode_tagged`] (the workflow record reads format
/// `0x01` as well as `0x02`), so a reader never has to guess which layout a value holds.
pub trait Record: Serialize + serde::de::DeserializeOwned {
    /// The format tag this build writes.
    const FORMAT: u8 = FORMAT_V1;

    /// Decodes a body stored under `tag`.
    ///
    /// # Errors
    ///
    /// [`RecordError::UnknownFormat`] for a tag this build does not read, [`RecordError::Codec`]
    /// when the body does not decode.
    fn decode_tagged(tag: u8, body: &[u8]) -> Result<Self, RecordError> {
        if tag == Self::FORMAT {
            Ok(codec::decode(body)?)
        } else {
            Err(RecordError::UnknownFormat { tag })
        }
    }
}

macro_rules! single_format_records {
    ($($ty:ty),* $(,)?) => {
        $(impl Record for $ty {})*
    };
}

single_format_records!(
    ActivityResultRecord,
    AttemptRecord,
    UpdateResponseRecord,
    ReviewRecord,
    FinishedRecord,
    AttributesRecord,
    SignalRecord,
    SignalIdRecord,
    IdempotencyRecord,
    DeadlineRecord,
    CancelRecord,
    PendingCommand,
);

/// Encodes a record with its current format tag.
pub fn encode_record<T: Record>(record: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(T::FORMAT);
    codec::encode_into(&mut bytes, record)?;
    Ok(bytes)
}

/// Decodes a tagged record, in any format this build reads for its type.
///
/// Stored bytes may be corrupt: the decode is bounded by `bytes` (see [`crate::codec`]), so
/// whatever they hold, the answer is a [`RecordError`], never a panic or an abort.
///
/// # Errors
///
/// [`RecordError::Empty`], [`RecordError::UnknownFormat`], or [`RecordError::Codec`] when the
/// body does not decode as a `T`.
pub fn decode_record<T: Record>(bytes: &[u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&tag, body)) => T::decode_tagged(tag, body),
    }
}

/// The stored form of the owner epoch: `[0x01][u64 BE]`. Fixed-width, so a conditional write can
/// compare it byte for byte.
pub fn encode_epoch(epoch: u64) -> Vec<u8> {
    let mut bytes = vec![FORMAT_V1];
    bytes.extend_from_slice(&epoch.to_be_bytes());
    bytes
}

/// The key of the store format marker: the store format version of the newest build that
/// owned the store. Written when a store is created, and at the first build on a store from
/// before the marker existed (those are format 1); read at every build, before anything is
/// written, so a build that does not understand the store changes nothing in it.
pub const FORMAT_KEY: &[u8] = b"meta/format";

/// The key of the store's partition count: how many partitions its workflows are spread over
/// (see `engine::partition`), fixed when the store is created. Written with the first owner's
/// epoch, or by the first build that knows it on an older store (which has one partition).
pub const PARTITIONS_KEY: &[u8] = b"meta/partitions";

/// Encodes the partition count: `[0x01][count: u16 big-endian]`.
pub fn encode_partitions(count: u16) -> Vec<u8> {
    let mut bytes = vec![FORMAT_V1];
    bytes.extend_from_slice(&count.to_be_bytes());
    bytes
}

/// Reads a stored partition count.
///
/// # Errors
///
/// A [`RecordError`] when the value is not `[0x01][u16 BE]` with a count of at least 1.
pub fn decode_partitions(bytes: &[u8]) -> Result<u16, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&FORMAT_V1, body)) => {
            let count = <[u8; 2]>::try_from(body)
                .map(u16::from_be_bytes)
                .ok()
                .filter(|&count| count > 0);
            count.ok_or_else(|| {
                RecordError::Codec(CodecError::Decode {
                    type_name: "partition count",
                    reason: format!("expected 2 bytes holding at least 1, found {body:02x?}"),
                })
            })
        }
        Some((&tag, _)) => Err(RecordError::UnknownFormat { tag }),
    }
}

/// Encodes the store format marker: `[0x01][version: u32 big-endian]`.
pub fn encode_store_format(version: u32) -> Vec<u8> {
    let mut bytes = vec![FORMAT_V1];
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes
}

/// Reads a stored format marker.
pub fn decode_store_format(bytes: &[u8]) -> Result<u32, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&FORMAT_V1, body)) => {
            let array: [u8; 4] = body.try_into().map_err(|_| {
                RecordError::Codec(CodecError::Decode {
                    type_name: "store format",
                    reason: format!("expected 4 bytes, found {}", body.len()),
                })
            })?;
            Ok(u32::from_be_bytes(array))
        }
        Some((&tag, _)) => Err(RecordError::UnknownFormat { tag }),
    }
}

/// Reads a stored owner epoch.
pub fn decode_epoch(bytes: &[u8]) -> Result<u64, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&FORMAT_V1, body)) => {
            let array: [u8; 8] = body.try_into().map_err(|_| {
                RecordError::Codec(CodecError::Decode {
                    type_name: "epoch",
                    reason: format!("expected 8 bytes, found {}", body.len()),
                })
            })?;
            Ok(u64::from_be_bytes(array))
        }
        Some((&tag, _)) => Err(RecordError::UnknownFormat { tag }),
    }
}

/// `wf/<p><id>`
pub fn workflow_key(p: Partition, id: &str) -> Vec<u8> {
    partitioned(WORKFLOW_PREFIX, p, id, &[])
}

/// `live/<p><id>`: empty value.
pub fn live_key(p: Partition, id: &str) -> Vec<u8> {
    partitioned(LIVE_PREFIX, p, id, &[])
}

/// `idemx/<expires ms BE><key>`: empty value.
pub fn idempotency_expiry_key(expires_ms: u64, key: &str) -> Vec<u8> {
    [
        IDEMPOTENCY_EXPIRY_PREFIX,
        &expires_ms.to_be_bytes(),
        key.as_bytes(),
    ]
    .concat()
}

/// `ty/<type>\0`: where the type index lists workflows of `workflow_type`.
pub fn type_index_prefix(workflow_type: &str) -> Vec<u8> {
    [TYPE_INDEX_PREFIX, workflow_type.as_bytes(), b"\0"].concat()
}

/// `ty/<type>\0<id>`: empty value.
pub fn type_index_key(workflow_type: &str, id: &str) -> Vec<u8> {
    [type_index_prefix(workflow_type).as_slice(), id.as_bytes()].concat()
}

/// `fin/<finish ms BE><id>`: a [`FinishedRecord`].
pub fn finished_key(finished_ms: u64, id: &str) -> Vec<u8> {
    [FINISHED_PREFIX, &finished_ms.to_be_bytes(), id.as_bytes()].concat()
}

/// `crt/<created ms BE><id>`: empty value.
pub fn created_key(created_ms: u64, id: &str) -> Vec<u8> {
    [CREATED_PREFIX, &created_ms.to_be_bytes(), id.as_bytes()].concat()
}

/// `lus/<updated s BE><id>` for a record last written at `updated_ms`: empty value.
pub fn live_updated_key(updated_ms: u64, id: &str) -> Vec<u8> {
    let updated_s = updated_ms / 1000;
    [LIVE_UPDATED_PREFIX, &updated_s.to_be_bytes(), id.as_bytes()].concat()
}

/// Splits a key of a time index (`fin/`, `crt/`: `<prefix><ms BE><id>`; `lus/`: `<prefix><s
/// BE><id>`) into its time and workflow id.
pub fn parse_time_key(prefix: &[u8], key: &[u8]) -> Option<(u64, String)> {
    let rest = key.strip_prefix(prefix)?;
    if rest.len() < 8 {
        return None;
    }
    let (ms, id) = rest.split_at(8);
    let ms = u64::from_be_bytes(ms.try_into().ok()?);
    Some((ms, String::from_utf8(id.to_vec()).ok()?))
}

/// `child/<p><parent>\0`: where the children index lists `parent`'s children; `p` is the
/// parent's partition (a child hashes to its own, like any workflow).
pub fn children_prefix(p: Partition, parent: &str) -> Vec<u8> {
    partitioned(CHILD_PREFIX, p, parent, &[b"\0"])
}

/// `child/<p><parent>\0<child>`: empty value; `p` is the parent's partition.
pub fn child_key(p: Partition, parent: &str, child: &str) -> Vec<u8> {
    partitioned(CHILD_PREFIX, p, parent, &[b"\0", child.as_bytes()])
}

/// `cnt/<status>\0<type>`: a counter (see [`encode_counter`]).
pub fn counter_key(status: &str, workflow_type: &str) -> Vec<u8> {
    [
        COUNTER_PREFIX,
        status.as_bytes(),
        b"\0",
        workflow_type.as_bytes(),
    ]
    .concat()
}

/// What a live counter counts: the stored status and the type's name, version and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LiveCounterKey {
    /// `Running`, `Waiting` or `Parked` (see [`RecordStatus::live_name`]).
    pub status: String,
    /// The workflow type's name.
    pub workflow_type: String,
    /// The type's version the records were written by.
    pub version: u32,
    /// The state machine's fingerprint the records were written with.
    pub fingerprint: u64,
}

/// `lcnt/<status>\0<type>\0<version u32 BE><fingerprint u64 BE>`: a live counter (its value
/// as [`encode_counter`]).
pub fn live_counter_key(
    status: &str,
    workflow_type: &str,
    version: u32,
    fingerprint: u64,
) -> Vec<u8> {
    let mut key = Vec::new();
    extend_live_counter_key(&mut key, status, workflow_type, version, fingerprint);
    key
}

/// Appends [`live_counter_key`] to `out`: one allocation for a key behind a prefix.
pub(crate) fn extend_live_counter_key(
    out: &mut Vec<u8>,
    status: &str,
    workflow_type: &str,
    version: u32,
    fingerprint: u64,
) {
    out.reserve(LIVE_COUNTER_PREFIX.len() + status.len() + workflow_type.len() + 14);
    out.extend_from_slice(LIVE_COUNTER_PREFIX);
    out.extend_from_slice(status.as_bytes());
    out.push(0);
    out.extend_from_slice(workflow_type.as_bytes());
    out.push(0);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&fingerprint.to_be_bytes());
}

/// Splits a live counter key into what it counts.
pub fn parse_live_counter_key(key: &[u8]) -> Option<LiveCounterKey> {
    let rest = key.strip_prefix(LIVE_COUNTER_PREFIX)?;
    let end = rest.iter().position(|&b| b == 0)?;
    let status = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = &rest[end + 1..];
    // The type name ends at the last NUL: 12 bytes of version and fingerprint follow it.
    let (name, tail) = rest.split_at(rest.len().checked_sub(13)?);
    let (&0, tail) = tail.split_first()? else {
        return None;
    };
    let workflow_type = std::str::from_utf8(name).ok()?;
    Some(LiveCounterKey {
        status: status.to_string(),
        workflow_type: workflow_type.to_string(),
        version: u32::from_be_bytes(tail[..4].try_into().ok()?),
        fingerprint: u64::from_be_bytes(tail[4..].try_into().ok()?),
    })
}

/// Splits a counter key into its status and type name.
pub fn parse_counter_key(key: &[u8]) -> Option<(String, String)> {
    let rest = key.strip_prefix(COUNTER_PREFIX)?;
    let end = rest.iter().position(|&b| b == 0)?;
    let status = std::str::from_utf8(&rest[..end]).ok()?;
    let workflow_type = std::str::from_utf8(&rest[end + 1..]).ok()?;
    Some((status.to_string(), workflow_type.to_string()))
}

/// The stored form of a counter: `[0x01][u64 BE]`, fixed-width like the epoch.
pub fn encode_counter(n: u64) -> Vec<u8> {
    encode_epoch(n)
}

/// Reads a stored counter.
pub fn decode_counter(bytes: &[u8]) -> Result<u64, RecordError> {
    decode_epoch(bytes)
}

/// What the finish-time index holds for a finished workflow, at `fin/<finish ms BE><id>`
/// (format tag `0x01`): enough to count it and purge it without reading its record.
///
/// Layout: `status: String, workflow_type: String`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedRecord {
    /// How it ended, named as `WorkflowStatus`'s `Debug` (`Completed`, `Failed`, ...).
    pub status: String,
    /// Its type name.
    pub workflow_type: String,
}

impl RecordStatus {
    /// The name a finished status is counted under (`WorkflowStatus`'s `Debug`), or `None`
    /// while the workflow has not finished.
    pub fn finished_name(&self) -> Option<&'static str> {
        match self {
            RecordStatus::Completed => Some("Completed"),
            RecordStatus::Failed => Some("Failed"),
            RecordStatus::Cancelled => Some("Cancelled"),
            RecordStatus::TimedOut => Some("TimedOut"),
            RecordStatus::Running | RecordStatus::Waiting | RecordStatus::Parked { .. } => None,
        }
    }

    /// The name an unfinished status is counted under in the live counters (`Running`,
    /// `Waiting`, `Parked`), or `None` once the workflow has finished.
    pub fn live_name(&self) -> Option<&'static str> {
        match self {
            RecordStatus::Running => Some("Running"),
            RecordStatus::Waiting => Some("Waiting"),
            RecordStatus::Parked { .. } => Some("Parked"),
            RecordStatus::Completed
            | RecordStatus::Failed
            | RecordStatus::Cancelled
            | RecordStatus::TimedOut => None,
        }
    }
}

/// `tm/<p><deadline ms BE><id>`: one partition's timers sort by deadline, so its due ones are
/// one range scan (see [`due_timers_end`]).
pub fn timer_key(p: Partition, deadline_ms: u64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(TIMER_PREFIX.len() + 10 + id.len());
    key.extend_from_slice(TIMER_PREFIX);
    key.extend_from_slice(&p.to_be_bytes());
    key.extend_from_slice(&deadline_ms.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The end (excluded) of partition `p`'s timers due at `now_ms`: the range from
/// `partition_prefix(TIMER_PREFIX, p)` to it holds exactly those with a deadline at or before
/// `now_ms`.
pub fn due_timers_end(p: Partition, now_ms: u64) -> Vec<u8> {
    match now_ms.checked_add(1) {
        Some(next) => [TIMER_PREFIX, &p.to_be_bytes(), &next.to_be_bytes()].concat(),
        None => crate::storage::prefix_end(&partition_prefix(TIMER_PREFIX, p))
            .unwrap_or_else(|| TIMER_PREFIX.to_vec()),
    }
}

/// A timer index entry, parsed: its partition, deadline and workflow id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerEntry {
    /// The workflow's partition.
    pub partition: Partition,
    /// When it fires, in ms since the Unix epoch.
    pub deadline_ms: u64,
    /// The workflow's id.
    pub id: String,
}

/// Splits a timer key into its partition, deadline and workflow id.
pub fn parse_timer_key(key: &[u8]) -> Option<TimerEntry> {
    let (partition, rest) = split_partition(TIMER_PREFIX, key)?;
    let (deadline, id) = rest.split_first_chunk::<8>()?;
    Some(TimerEntry {
        partition,
        deadline_ms: u64::from_be_bytes(*deadline),
        id: String::from_utf8(id.to_vec()).ok()?,
    })
}

/// `sig/<p><id>\0`: the prefix of one workflow's signal queue.
pub fn signal_queue_prefix(p: Partition, id: &str) -> Vec<u8> {
    partitioned(SIGNAL_PREFIX, p, id, &[b"\0"])
}

/// The queue prefix (`sig/<p><id>\0`) of signal key `key`, if it is one: the partition's two
/// bytes may hold a NUL, so the id's terminator is looked for after them.
pub fn signal_queue_of(key: &[u8]) -> Option<&[u8]> {
    let (_, rest) = split_partition(SIGNAL_PREFIX, key)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&key[..SIGNAL_PREFIX.len() + 2 + end + 1])
}

/// `sig/<p><id>\0<epoch BE><n BE>`
pub fn signal_key(p: Partition, id: &str, epoch: u64, n: u64) -> Vec<u8> {
    partitioned(
        SIGNAL_PREFIX,
        p,
        id,
        &[b"\0", &epoch.to_be_bytes(), &n.to_be_bytes()],
    )
}

/// `sigid/<p><id>\0`: the prefix of one workflow's signal ids.
pub fn signal_id_prefix(p: Partition, id: &str) -> Vec<u8> {
    partitioned(SIGNAL_ID_PREFIX, p, id, &[b"\0"])
}

/// `sigid/<p><id>\0<signal id>`: the record of a caller's signal id. Workflow ids hold no NUL,
/// so the prefix names one workflow's ids whatever bytes the signal id holds.
pub fn signal_id_key(p: Partition, id: &str, signal_id: &str) -> Vec<u8> {
    partitioned(SIGNAL_ID_PREFIX, p, id, &[b"\0", signal_id.as_bytes()])
}

/// `idem/<key>`
pub fn idempotency_key(key: &str) -> Vec<u8> {
    [IDEMPOTENCY_PREFIX, key.as_bytes()].concat()
}

/// `parent/<child id>`: held the parent's id as UTF-8 bytes in store format 2.
pub fn parent_key(child: &str) -> Vec<u8> {
    [PARENT_PREFIX, child.as_bytes()].concat()
}

/// `cancelled/<id>`: empty value.
pub fn cancelled_key(id: &str) -> Vec<u8> {
    [CANCELLED_PREFIX, id.as_bytes()].concat()
}

/// `deadline/<id>`
pub fn deadline_key(id: &str) -> Vec<u8> {
    [DEADLINE_PREFIX, id.as_bytes()].concat()
}

/// `timedout/<id>`: empty value.
pub fn timedout_key(id: &str) -> Vec<u8> {
    [TIMEDOUT_PREFIX, id.as_bytes()].concat()
}

/// `cancel/<id>`
pub fn cancel_key(id: &str) -> Vec<u8> {
    [CANCEL_PREFIX, id.as_bytes()].concat()
}

/// `wfattr/<p><id>`
pub fn attributes_key(p: Partition, id: &str) -> Vec<u8> {
    partitioned(ATTRIBUTES_PREFIX, p, id, &[])
}

/// Appends `bytes` escaped (`0x00` -> `0x00 0xFF`) and terminated (`0x00 0x01`): the encoding
/// keeps byte order and no encoded string is a prefix of another.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
}

/// `attr/<key>/<value>/`: the prefix of every index entry of workflows whose attribute `key`
/// has `value`.
pub fn attribute_value_prefix(key: &str, value: &StoredValue) -> Vec<u8> {
    let mut out = ATTRIBUTE_INDEX_PREFIX.to_vec();
    push_escaped(&mut out, key.as_bytes());
    match value {
        StoredValue::Int(n) => {
            out.push(0x01);
            push_int(&mut out, *n);
        }
        StoredValue::TimeMs(ms) => {
            out.push(0x02);
            push_int(&mut out, *ms);
        }
        StoredValue::String(s) => {
            out.push(0x03);
            push_escaped(&mut out, s.as_bytes());
        }
    }
    out
}

/// `attr/<key>/<value>/<id>`: one index entry (empty value).
pub fn attribute_index_key(key: &str, value: &StoredValue, id: &str) -> Vec<u8> {
    let mut out = attribute_value_prefix(key, value);
    out.extend_from_slice(id.as_bytes());
    out
}

/// A search attribute value as stored (the engine-side form of
/// [`AttributeValue`](crate::attribute::AttributeValue)).
///
/// Layout: a bincode enum, variant 0 `Int(i64)`, 1 `TimeMs(i64)` (ms since the Unix epoch),
/// 2 `String(String)`. Append variants only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoredValue {
    /// An integer.
    Int(i64),
    /// A time, in ms since the Unix epoch (negative before it).
    TimeMs(i64),
    /// A string.
    String(String),
}

impl From<&crate::attribute::AttributeValue> for StoredValue {
    fn from(value: &crate::attribute::AttributeValue) -> Self {
        use crate::attribute::{AttributeValue, to_millis};
        match value {
            AttributeValue::Int(n) => StoredValue::Int(*n),
            AttributeValue::Time(t) => StoredValue::TimeMs(to_millis(*t)),
            AttributeValue::String(s) => StoredValue::String(s.clone()),
        }
    }
}

impl From<StoredValue> for crate::attribute::AttributeValue {
    fn from(value: StoredValue) -> Self {
        use crate::attribute::{AttributeValue, from_millis};
        match value {
            StoredValue::Int(n) => AttributeValue::Int(n),
            StoredValue::TimeMs(ms) => AttributeValue::Time(from_millis(ms)),
            StoredValue::String(s) => AttributeValue::String(s),
        }
    }
}

/// A workflow's search attributes, stored at `wfattr/<id>` (format tag `0x01`) and rewritten by
/// every step that sets one.
///
/// Layout: `values: map<String, StoredValue>` (bincode: length, then pairs in key order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributesRecord {
    /// Every attribute the workflow has set, by key.
    pub values: std::collections::BTreeMap<String, StoredValue>,
}

/// One workflow instance, stored at `wf/<p><id>` (format tag `0x02`, [`FORMAT_V2`]).
///
/// Layout (bincode, in field order): `workflow_type: String, version: u32, fingerprint: u64,
/// status: RecordStatus, step: u64, state: Option<bytes>, pending: Option<PendingCommand>,
/// created_ms: u64, updated_ms: u64, outcome: Option<Outcome>, idempotency_key: Option<String>,
/// last_resume: Option<ResumeKind>, signals_consumed: u64, lifecycle: Lifecycle` (see
/// [`Lifecycle`] for its versioned section).
///
/// Format `0x01` is the same without `lifecycle`: what it holds lived in side keys then
/// (`cancel/`, `cancelled/`, `deadline/`, `timedout/`, `parent/`). Such a record still decodes,
/// with an empty lifecycle; the build that finds a store of format 2 folds the side keys into
/// each record (see `engine::record_upgrade`), so none is read with its side keys missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// The workflow's `NAME`.
    pub workflow_type: String,
    /// The workflow's `VERSION`.
    pub version: u32,
    /// The workflow's `FINGERPRINT`: the state below was written by code with this shape.
    pub fingerprint: u64,
    /// Where the workflow is in its life.
    pub status: RecordStatus,
    /// How many steps have been committed.
    pub step: u64,
    /// The encoded state enum while the workflow is suspended; `None` once it has finished.
    pub state: Option<Vec<u8>>,
    /// The durable operation the state waits on.
    pub pending: Option<PendingCommand>,
    /// When the workflow was started, in ms since the Unix epoch.
    pub created_ms: u64,
    /// When the record was last written, in ms since the Unix epoch.
    pub updated_ms: u64,
    /// The result once the workflow has finished.
    pub outcome: Option<Outcome>,
    /// The idempotency key it was started with.
    pub idempotency_key: Option<String>,
    /// The kind of value that resumed the last committed step.
    pub last_resume: Option<ResumeKind>,
    /// How many signals the workflow has consumed (each deleted from its queue on commit).
    pub signals_consumed: u64,
    /// Cancellation, execution deadline, parent link and trace context: the state that lived
    /// in side keys before format `0x02`, in a versioned section that grows without a new key.
    pub lifecycle: Lifecycle,
}

/// The format tag of the workflow record since lifecycle state moved into it.
pub const FORMAT_V2: u8 = 0x02;

impl Record for WorkflowRecord {
    const FORMAT: u8 = FORMAT_V2;

    fn decode_tagged(tag: u8, body: &[u8]) -> Result<Self, RecordError> {
        match tag {
            FORMAT_V2 => Ok(codec::decode(body)?),
            FORMAT_V1 => Ok(codec::decode::<WorkflowRecordV1>(body)?.into()),
            tag => Err(RecordError::UnknownFormat { tag }),
        }
    }
}

/// A workflow record's lifecycle: what callers, a parent and the deadline set on it, beside
/// its state.
///
/// Stored as a versioned section, a bincode enum whose variant is the section's version:
/// variant 0 (`V1`) holds `cancel_requested_ms: Option<u64>, cancelled: bool, deadline_ms:
/// Option<u64>, timed_out: bool, parent: Option<String>, trace_context: Option<bytes>`. A field
/// added later is a new variant appended with every field before it plus the new ones: records
/// of the earlier versions still decode (the new fields empty), and no side key is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// A cancellation request not yet delivered, with when it was made (ms since the Unix
    /// epoch). Written by the writer alone (see `engine::cancel_fold`), so a runner's transition
    /// prepared before the request cannot erase it.
    pub cancel_requested_ms: Option<u64>,
    /// Cancellation was delivered; an error after it ends the workflow as cancelled.
    pub cancelled: bool,
    /// The execution deadline, until it fires or the workflow ends (ms since the Unix epoch).
    /// The timer index (`tm/`) is not involved: recovery arms it from here.
    pub deadline_ms: Option<u64>,
    /// The deadline fired; the workflow ends as timed out whatever it returns.
    pub timed_out: bool,
    /// The parent's id, for a child workflow: its end wakes the parent.
    pub parent: Option<String>,
    /// A W3C trace context (the `traceparent` header's bytes), so a resumed workflow continues
    /// its trace. Kept as bytes: the tracing work decides what it holds; the engine only carries
    /// it.
    pub trace_context: Option<Vec<u8>>,
}

impl Lifecycle {
    /// Whether nothing of it is set.
    pub fn is_empty(&self) -> bool {
        *self == Lifecycle::default()
    }
}

/// The fields of [`Lifecycle`] version 1, borrowed for encoding.
#[derive(Serialize)]
struct LifecycleV1Ref<'a> {
    cancel_requested_ms: Option<u64>,
    cancelled: bool,
    deadline_ms: Option<u64>,
    timed_out: bool,
    parent: &'a Option<String>,
    trace_context: &'a Option<Vec<u8>>,
}

/// The fields of [`Lifecycle`] version 1, decoded.
#[derive(Deserialize)]
struct LifecycleV1 {
    cancel_requested_ms: Option<u64>,
    cancelled: bool,
    deadline_ms: Option<u64>,
    timed_out: bool,
    parent: Option<String>,
    trace_context: Option<Vec<u8>>,
}

/// Every stored version of the lifecycle section; the variant index is the version.
#[derive(Deserialize)]
enum LifecycleSection {
    V1(LifecycleV1),
}

impl Serialize for Lifecycle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_variant(
            "LifecycleSection",
            0,
            "V1",
            &LifecycleV1Ref {
                cancel_requested_ms: self.cancel_requested_ms,
                cancelled: self.cancelled,
                deadline_ms: self.deadline_ms,
                timed_out: self.timed_out,
                parent: &self.parent,
                trace_context: &self.trace_context,
            },
        )
    }
}

impl<'de> Deserialize<'de> for Lifecycle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match LifecycleSection::deserialize(deserializer)? {
            LifecycleSection::V1(v1) => Lifecycle {
                cancel_requested_ms: v1.cancel_requested_ms,
                cancelled: v1.cancelled,
                deadline_ms: v1.deadline_ms,
                timed_out: v1.timed_out,
                parent: v1.parent,
                trace_context: v1.trace_context,
            },
        })
    }
}

/// A workflow record as format `0x01` stored it: [`WorkflowRecord`] without its lifecycle.
#[derive(Serialize, Deserialize)]
struct WorkflowRecordV1 {
    workflow_type: String,
    version: u32,
    fingerprint: u64,
    status: RecordStatus,
    step: u64,
    state: Option<Vec<u8>>,
    pending: Option<PendingCommand>,
    created_ms: u64,
    updated_ms: u64,
    outcome: Option<Outcome>,
    idempotency_key: Option<String>,
    last_resume: Option<ResumeKind>,
    signals_consumed: u64,
}

impl From<WorkflowRecordV1> for WorkflowRecord {
    fn from(v1: WorkflowRecordV1) -> Self {
        WorkflowRecord {
            workflow_type: v1.workflow_type,
            version: v1.version,
            fingerprint: v1.fingerprint,
            status: v1.status,
            step: v1.step,
            state: v1.state,
            pending: v1.pending,
            created_ms: v1.created_ms,
            updated_ms: v1.updated_ms,
            outcome: v1.outcome,
            idempotency_key: v1.idempotency_key,
            last_resume: v1.last_resume,
            signals_consumed: v1.signals_consumed,
            lifecycle: Lifecycle::default(),
        }
    }
}

/// Encodes `record` in format `0x01`, without its lifecycle (which that format kept in side
/// keys). For tests and tools that build stores of the earlier format; the engine never writes
/// it.
#[doc(hidden)]
pub fn encode_workflow_v1(record: &WorkflowRecord) -> Result<Vec<u8>, CodecError> {
    let v1 = WorkflowRecordV1 {
        workflow_type: record.workflow_type.clone(),
        version: record.version,
        fingerprint: record.fingerprint,
        status: record.status.clone(),
        step: record.step,
        state: record.state.clone(),
        pending: record.pending.clone(),
        created_ms: record.created_ms,
        updated_ms: record.updated_ms,
        outcome: record.outcome.clone(),
        idempotency_key: record.idempotency_key.clone(),
        last_resume: record.last_resume,
        signals_consumed: record.signals_consumed,
    };
    let mut bytes = vec![FORMAT_V1];
    codec::encode_into(&mut bytes, &v1)?;
    Ok(bytes)
}

/// A workflow's stored status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordStatus {
    /// Runs or waits on an activity.
    Running,
    /// Waits on a timer or a signal; no task or memory is held for it.
    Waiting,
    /// Returned `Ok`.
    Completed,
    /// Returned `Err`.
    Failed,
    /// Ended by cancellation.
    Cancelled,
    /// Stopped because a step could not run; state and pending command are kept.
    Parked {
        /// A stable code for the reason.
        code: String,
        /// The reason for people.
        message: String,
    },
    /// Ended because its execution deadline passed (variant 6, appended: records of the
    /// earlier variants decode as before).
    TimedOut,
}

impl RecordStatus {
    /// Whether the workflow has finished for good.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RecordStatus::Completed
                | RecordStatus::Failed
                | RecordStatus::Cancelled
                | RecordStatus::TimedOut
        )
    }
}

/// The stored form of a suspended workflow's command, with absolute deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingCommand {
    /// An activity to run (again, after a crash).
    Activity {
        /// The activity's name.
        name: String,
        /// Its encoded input.
        input: Vec<u8>,
        /// Retry policy and timeout.
        options: ActivityOptions,
    },
    /// A timer firing at an absolute deadline.
    Timer {
        /// The deadline in ms since the Unix epoch.
        deadline_ms: u64,
    },
    /// A wait for a signal of this name.
    Signal {
        /// The signal's name.
        name: String,
    },
    /// `ctx.all`/`ctx.race` (variant 3, appended: records of the earlier variants decode as
    /// before): the branches, each with its value once it finished.
    Group {
        /// A race resumes with the first branch to finish; otherwise all must finish.
        race: bool,
        /// How the group's value is encoded.
        shape: crate::group::GroupShape,
        /// The branches, in order.
        branches: Vec<Branch>,
    },
    /// `ctx.child` (variant 4): the child workflow's id.
    Child {
        /// The child's id, `{parent}/{step}` (`{parent}/{step}.{branch}` inside a group).
        child_id: String,
        /// What happens to the child if the parent stops waiting for it.
        policy: crate::child::ParentClosePolicy,
    },
}

/// One branch of a group: what it waits for, and its encoded value once it finished.
///
/// Layout: `pending: PendingCommand, value: Option<bytes>` (the value encoded as the branch's
/// typed value, see `weft_runtime::group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// What the branch waits for.
    pub pending: PendingCommand,
    /// Its encoded value, once it finished.
    pub value: Option<Vec<u8>>,
}

/// A finished workflow's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The encoded output.
    Output(Vec<u8>),
    /// The encoded error, and its message.
    Error {
        /// The encoded `W::Error`.
        payload: Vec<u8>,
        /// Its `Display` text.
        message: String,
    },
    /// Cancelled.
    Cancelled,
    /// Timed out, and the workflow returned no error of its own (variant 3, appended).
    TimedOut,
}

/// The kind of value that resumed a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResumeKind {
    /// The first step.
    Start,
    /// An activity result.
    Activity,
    /// A timer.
    Timer,
    /// A signal.
    Signal,
    /// A cancellation.
    Cancelled,
    /// A group (`ctx.all`/`ctx.race`) value.
    Group,
    /// A child workflow's result.
    Child,
    /// The execution deadline, delivered to the workflow as a cancellation (variant 7,
    /// appended).
    TimedOut,
}

/// A signal in a workflow's queue, stored at `sig/<id>\0<seq>` (format tag `0x01`).
///
/// Layout: `name: String, payload: bytes, sent_ms: u64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The signal type's name.
    pub name: String,
    /// The encoded signal.
    pub payload: Vec<u8>,
    /// When it was sent, in ms since the Unix epoch.
    pub sent_ms: u64,
}

/// A caller's signal id, stored at `sigid/<id>\0<signal id>` (format tag `0x01`) in the batch
/// that queues its signal, and deleted when its workflow is purged. Added after the first
/// release as a new key, so stores written before it need no upgrade.
///
/// Layout: `accepted_ms: u64` (ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalIdRecord {
    /// When the signal was accepted: the id is remembered for the engine's window from then.
    pub accepted_ms: u64,
}

/// An idempotency key's target, stored at `idem/<key>` (format tag `0x01`).
///
/// Layout: `workflow_id: String`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The workflow the first start with this key created.
    pub workflow_id: String,
}

/// An execution deadline, stored at `deadline/<id>` (format tag `0x01`) by store format 2;
/// read only by the upgrade to format 3.
///
/// Layout: `deadline_ms: u64` (ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineRecord {
    /// When the workflow times out, in ms since the Unix epoch.
    pub deadline_ms: u64,
}

/// A cancellation request: stored at `cancel/<id>` (format tag `0x01`) by store format 2; now
/// the form in which a batch hands a request to the writer, which folds it into the record.
///
/// Layout: `requested_ms: u64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRecord {
    /// When cancellation was requested, in ms since the Unix epoch.
    pub requested_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_sort_by_partition_then_deadline_and_parse_back() {
        let p = Partition(3);
        let early = timer_key(p, 5, "zz");
        let late = timer_key(p, 256, "aa");
        assert!(early < late);
        assert!(late < timer_key(Partition(4), 0, "aa"));
        assert_eq!(
            parse_timer_key(&late),
            Some(TimerEntry {
                partition: p,
                deadline_ms: 256,
                id: "aa".into()
            })
        );
        // One partition's due timers are the range from its prefix to `due_timers_end`.
        let start = partition_prefix(TIMER_PREFIX, p);
        let end = due_timers_end(p, 256);
        assert!(start <= early && late < end);
        assert!(timer_key(p, 257, "a") >= end);
        assert!(timer_key(Partition(2), 1, "a") < start);
    }

    #[test]
    fn a_signal_queue_prefix_covers_one_workflow_only() {
        let p = Partition(0x0100);
        let prefix = signal_queue_prefix(p, "a");
        assert!(signal_key(p, "a", 1, 2).starts_with(&prefix));
        assert!(!signal_key(p, "a/b", 1, 2).starts_with(&prefix));
        assert!(!signal_key(p, "ab", 1, 2).starts_with(&prefix));
        assert!(!signal_key(Partition(1), "a", 1, 2).starts_with(&prefix));
        // The partition's bytes hold a NUL; the queue is still found after them.
        assert_eq!(
            signal_queue_of(&signal_key(p, "a", 1, 2)),
            Some(prefix.as_slice())
        );
        assert_eq!(
            parse_id_key(WORKFLOW_PREFIX, &workflow_key(p, "a")),
            Some((p, "a"))
        );
    }

    #[test]
    fn attribute_index_prefixes_are_exact_and_ordered() {
        let v = |s: &str| StoredValue::String(s.to_string());
        let prefix = attribute_value_prefix("k", &v("a"));
        assert!(attribute_index_key("k", &v("a"), "id").starts_with(&prefix));
        assert!(!attribute_index_key("k", &v("ab"), "id").starts_with(&prefix));
        assert!(!attribute_index_key("k", &v("a\0"), "id").starts_with(&prefix));
        assert!(!attribute_index_key("k\0", &v("a"), "id").starts_with(&prefix));
        let ints: Vec<_> = [-5i64, -1, 0, 3, i64::MAX]
            .iter()
            .map(|n| attribute_value_prefix("k", &StoredValue::Int(*n)))
            .collect();
        assert!(ints.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unknown_tags_and_empty_values_are_typed_errors() {
        assert_eq!(decode_record::<CancelRecord>(&[]), Err(RecordError::Empty));
        assert_eq!(
            decode_record::<CancelRecord>(&[9, 0]),
            Err(RecordError::UnknownFormat { tag: 9 })
        );
        assert_eq!(decode_epoch(&encode_epoch(7)), Ok(7));
    }

    #[test]
    fn an_idempotency_record_claiming_a_terabyte_string_is_an_error() {
        // Issue 12: these 10 bytes aborted the process ("memory allocation of 1099511627776
        // bytes failed"), killing the writer thread that decodes `idem/` records.
        let bytes = [0x01, 0xfd, 0, 0, 0, 0, 0, 0x01, 0, 0];
        let err = decode_record::<IdempotencyRecord>(&bytes).unwrap_err();
        assert_eq!(err.code(), "codec.decode", "{err}");
    }

    #[test]
    fn a_length_above_isize_max_is_an_error_not_a_panic() {
        // Issue 12: this panicked with "capacity overflow".
        let mut bytes = vec![FORMAT_V1, 0xfd];
        bytes.extend_from_slice(&(isize::MAX as u64 + 1).to_le_bytes());
        assert!(decode_record::<IdempotencyRecord>(&bytes).is_err());
        assert!(decode_record::<SignalRecord>(&bytes).is_err());
    }

    fn a_workflow_record() -> WorkflowRecord {
        WorkflowRecord {
            workflow_type: "checkout".into(),
            version: 1,
            fingerprint: 7,
            status: RecordStatus::Waiting,
            step: 2,
            state: Some(vec![1, 2, 3]),
            pending: Some(PendingCommand::Signal {
                name: "approve".into(),
            }),
            created_ms: 1,
            updated_ms: 2,
            outcome: None,
            idempotency_key: Some("k".into()),
            last_resume: Some(ResumeKind::Activity),
            signals_consumed: 0,
            lifecycle: Lifecycle::default(),
        }
    }

    #[test]
    fn a_workflow_record_with_a_huge_type_name_length_is_an_error() {
        // Issue 12: a live `wf/` record like this aborted `build()` on every restart.
        let valid = encode_record(&a_workflow_record()).unwrap();
        assert_eq!(
            valid[1] as usize,
            "checkout".len(),
            "the type name's length"
        );
        for claimed in [1u64 << 40, isize::MAX as u64 + 1, u64::MAX] {
            let mut bytes = vec![FORMAT_V2, 0xfd];
            bytes.extend_from_slice(&claimed.to_le_bytes());
            bytes.extend_from_slice(&valid[2..]);
            let err = decode_record::<WorkflowRecord>(&bytes).unwrap_err();
            assert_eq!(err.code(), "codec.decode", "{err}");
        }
        assert_eq!(
            decode_record::<WorkflowRecord>(&valid),
            Ok(a_workflow_record())
        );
    }

    #[test]
    fn a_group_nested_past_the_depth_limit_is_an_error_not_a_stack_overflow() {
        // A group whose one branch is a group, 50,000 deep: four bytes per level (variant 3,
        // `race`, `shape`, one branch), one chain of stack frames per level.
        let pending = PendingCommand::Group {
            race: false,
            shape: crate::group::GroupShape::Tuple,
            branches: vec![Branch {
                pending: PendingCommand::Timer { deadline_ms: 1 },
                value: None,
            }],
        };
        let level = [3u8, 0, 0, 1];
        assert!(encode_record(&pending).unwrap()[1..].starts_with(&level));
        let deep = [[FORMAT_V1].as_slice(), &level.repeat(50_000)].concat();
        let err = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || decode_record::<PendingCommand>(&deep))
            .unwrap()
            .join()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code(), "codec.too_deep", "{err}");
    }
}
