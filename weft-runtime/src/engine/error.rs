//! [`EngineError`]: everything an engine operation can fail with, each with a stable code and
//! an [`ErrorKind`] that says what a caller (or an HTTP server) should do about it.

use crate::codec::CodecError;
use crate::storage::{BackupError, StorageError};

/// An engine operation failed. Nothing of a failed write was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Another engine took ownership of the storage; this one no longer writes and has shut down.
    #[error(
        "this engine was fenced off: another engine took ownership of the storage (epoch {epoch}); build a new engine to continue"
    )]
    Fenced {
        /// The epoch this engine owned.
        epoch: u64,
    },
    /// The engine was shut down or dropped.
    #[error("the engine has shut down; build a new engine on the same storage to continue")]
    Shutdown,
    /// The store was written by a newer build, in a store format this one does not understand.
    /// The build refused it before writing anything.
    #[error(
        "this store was written by format {found}; this binary understands up to {supported}; run a newer weft (the release that wrote it, or later), or restore a backup taken by this release"
    )]
    NewerStoreFormat {
        /// The format version the store's marker names.
        found: u32,
        /// The newest format this build understands.
        supported: u32,
    },
    /// A marker every build reads before writing (`meta/format`, the store's format; or
    /// `meta/epoch`, its owner epoch) does not decode. The build refused the store before
    /// writing anything: without the format it cannot know it understands the records, and
    /// without the epoch it cannot fence the engine that owned the store before.
    #[error(
        "the store's `{key}` marker is damaged ({source}); the build wrote nothing. Check the store with `weft doctor --store PATH`, then restore a backup with `weft restore`; if only this marker is damaged, write it again offline with the value the last build that owned the store wrote"
    )]
    DamagedStoreMarker {
        /// The marker's key.
        key: &'static str,
        /// Why it does not decode.
        #[source]
        source: super::record::RecordError,
    },
    /// The builder asked for a partition count ([`EngineBuilder::partitions`]) other than the
    /// one the store was created with: it is fixed at creation (every key of a workflow carries
    /// its partition). The build refused the store before writing anything.
    ///
    /// [`EngineBuilder::partitions`]: super::EngineBuilder::partitions
    #[error(
        "this store was created with {stored} partition(s) and the builder asks for {requested}; the partition count is fixed when a store is created: drop `partitions({requested})` or build on a new store"
    )]
    PartitionsMismatch {
        /// The store's partition count (1 for a store created before partitions existed).
        stored: u16,
        /// What the builder asked for.
        requested: u16,
    },
    /// The storage failed; nothing of the failed write was applied.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// Too many callers' requests wait for the engine's writer (storage is slower than the
    /// calls coming in); this one was refused at once and nothing of it was written. Retry after
    /// a backoff; the engine's own work in progress is unaffected.
    #[error(
        "the engine is overloaded: {queued} requests already wait for its writer (the limit is {limit}); nothing was written, retry after a backoff, or raise `EngineBuilder::max_queued_requests` if storage keeps up with bursts"
    )]
    Overloaded {
        /// How many requests were waiting.
        queued: usize,
        /// The limit (see `EngineBuilder::max_queued_requests`).
        limit: usize,
    },
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No workflow has this id.
    #[error("no workflow with id `{id}`")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// The workflow type is not registered with this engine.
    #[error(
        "workflow `{workflow}` version {version} is not registered with this engine; call `EngineBuilder::register::<{workflow}>()`"
    )]
    NotRegistered {
        /// The workflow's name.
        workflow: String,
        /// The workflow's version.
        version: u32,
    },
    /// A registered workflow declares an activity that has no implementation.
    #[error(
        "workflow `{workflow}` uses activity `{activity}`, which has no implementation; register one with `EngineBuilder::activity_override(\"{activity}\", ..)`"
    )]
    MissingActivity {
        /// The workflow that declares the activity.
        workflow: String,
        /// The activity's name.
        activity: String,
    },
    /// Two registered workflows share a name and version but have different state machines.
    #[error(
        "workflow `{workflow}` version {version} is registered twice with different fingerprints; bump `VERSION` of one of them"
    )]
    ConflictingRegistration {
        /// The workflow's name.
        workflow: String,
        /// The shared version.
        version: u32,
    },
    /// A workflow with this id already exists and was not started with the same idempotency key.
    #[error(
        "a workflow with id `{id}` already exists; choose another id or pass its idempotency key"
    )]
    AlreadyExists {
        /// The id that is taken.
        id: String,
    },
    /// The workflow id cannot be stored.
    #[error("invalid workflow id {id:?}: {reason}")]
    InvalidId {
        /// The rejected id.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A payload is larger than the engine's configured limit; it was not stored.
    #[error(
        "{what} is {size} bytes, over the payload limit of {limit} bytes; send less data or raise `EngineBuilder::payload_limit`"
    )]
    PayloadTooLarge {
        /// Which payload: "workflow input", "signal", ...
        what: &'static str,
        /// Its encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The workflow exists but is of another type than the one asked for.
    #[error("workflow `{id}` is a `{found}`, not a `{expected}`")]
    WrongType {
        /// The workflow's id.
        id: String,
        /// The type the caller asked for.
        expected: String,
        /// The type stored.
        found: String,
    },
    /// The workflow is parked and cannot make progress until the cause is fixed.
    #[error("workflow `{id}` is parked ({code}): {message}")]
    Parked {
        /// The workflow's id.
        id: String,
        /// The park reason's stable code.
        code: String,
        /// The park reason for people.
        message: String,
    },
    /// The workflow was cancelled, so it has no result.
    #[error("workflow `{id}` was cancelled")]
    Cancelled {
        /// The workflow's id.
        id: String,
    },
    /// The workflow ran past its execution timeout and returned no error of its own.
    #[error("workflow `{id}` timed out: it ran past its execution timeout")]
    TimedOut {
        /// The workflow's id.
        id: String,
    },
    /// The workflow has already finished, so it takes no more signals.
    #[error(
        "workflow `{id}` has already finished; it takes no more signals and has no state to query"
    )]
    Finished {
        /// The workflow's id.
        id: String,
    },
    /// The workflow has not finished, so it cannot be purged.
    #[error(
        "workflow `{id}` has not finished, so it cannot be purged; cancel it or wait for its result first"
    )]
    NotFinished {
        /// The workflow's id.
        id: String,
    },
    /// The workflow is a child whose parent has not finished and may still read its result,
    /// so it cannot be purged yet.
    #[error(
        "workflow `{id}` is a child of `{parent}`, which has not finished and may still read its result; purge it after its parent has finished"
    )]
    ParentNotFinished {
        /// The child's id.
        id: String,
        /// The parent's id.
        parent: String,
    },
    /// A stored engine record could not be read.
    #[error("stored record `{key}` is unreadable: {source}")]
    Record {
        /// The record's key, lossily as text.
        key: String,
        /// Why it does not decode.
        #[source]
        source: super::record::RecordError,
    },
    /// A migration registered with `EngineBuilder::migrate` cannot be used.
    #[error("invalid migration from {from} to {to}: {reason}")]
    InvalidMigration {
        /// The version it migrates from.
        from: String,
        /// The version it migrates to.
        to: String,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// Two by-name queries of one workflow version share a name.
    #[error(
        "query `{query}` of workflow `{workflow}` version {version} is registered twice; give one of them another `NAME`"
    )]
    ConflictingQuery {
        /// The workflow's name.
        workflow: String,
        /// The workflow's version.
        version: u32,
        /// The query's name.
        query: String,
    },
    /// The query cannot be asked of this workflow: it reads another workflow type or version, or
    /// no query of that name is registered for it.
    #[error("query `{query}` cannot be asked of workflow `{id}`: {reason}")]
    UnknownQuery {
        /// The workflow's id.
        id: String,
        /// The query's name.
        query: String,
        /// Why, and what to do.
        reason: String,
    },
    /// `Engine::start` was asked for an older version while a newer one of the same name is
    /// registered; new starts use the latest version.
    #[error(
        "workflow `{workflow}` version {version} is not the latest registered version ({latest}); start the latest version, or use `Engine::start_pinned` to start this one on purpose"
    )]
    NotLatest {
        /// The workflow's name.
        workflow: String,
        /// The version asked for.
        version: u32,
        /// The newest registered version.
        latest: u32,
    },
    /// A list page token was not produced by `Engine::list`.
    #[error("invalid page token; pass the `next_page_token` of a previous page")]
    InvalidPageToken,
    /// An update was stored but not answered within the caller's timeout. It stays queued:
    /// calling again with the same update id waits for the same answer.
    #[error(
        "update `{update_id}` to workflow `{id}` was not answered within the timeout; it stays queued, call again with the same update id to keep waiting"
    )]
    UpdateTimedOut {
        /// The workflow.
        id: String,
        /// The update's id.
        update_id: String,
    },
    /// The workflow ended without answering the update.
    #[error(
        "workflow `{id}` ended without answering update `{update_id}`; check that it waits for this update type before it returns"
    )]
    UpdateNotAnswered {
        /// The workflow.
        id: String,
        /// The update's id.
        update_id: String,
    },
    /// The workflow has no review waiting for a decision (none requested, already decided,
    /// or timed out).
    #[error(
        "workflow `{id}` has no review waiting for a decision; list pending reviews with `Engine::pending_reviews`"
    )]
    ReviewNotPending {
        /// The workflow.
        id: String,
    },
    /// No workflow type of this name is registered (a call by name).
    #[error(
        "no workflow type named `{workflow}` is registered with this engine (registered: {registered:?}); check the name, or register the workflow with `EngineBuilder::register`"
    )]
    UnknownWorkflowType {
        /// The name asked for.
        workflow: String,
        /// The names that are registered.
        registered: Vec<String>,
    },
    /// The workflow does not wait for a signal of this name (a call by name), so its JSON
    /// cannot be decoded.
    #[error(
        "workflow `{id}` (`{workflow}`) accepts no signal named `{signal}` (it accepts: {accepted:?})"
    )]
    UnknownSignal {
        /// The workflow's id.
        id: String,
        /// The workflow's type name.
        workflow: String,
        /// The signal name asked for.
        signal: String,
        /// The signal names the workflow's code waits for.
        accepted: Vec<String>,
    },
    /// The workflow does not wait for an update of this name (a call by name).
    #[error(
        "workflow `{id}` (`{workflow}`) accepts no update named `{update}` (it accepts: {accepted:?})"
    )]
    UnknownUpdate {
        /// The workflow's id.
        id: String,
        /// The workflow's type name.
        workflow: String,
        /// The update name asked for.
        update: String,
        /// The update names the workflow's code waits for.
        accepted: Vec<String>,
    },
    /// JSON given to a call by name does not fit the Rust type it stands for.
    #[error("{what} does not fit `{type_name}` at `{path}`: {message}")]
    InvalidJson {
        /// What the JSON was for: "the input of workflow `checkout`", "signal `Approval`", ...
        what: String,
        /// The Rust type expected.
        type_name: String,
        /// serde's path to the bad value (`.` for the whole value, `items[2].price` for a field).
        path: String,
        /// What serde reported.
        message: String,
    },
    /// A runner's transition out of a review was refused twice in a row because the review
    /// record changed under it. Only a decision changes it, once, so this means something else
    /// writes the record: an engine bug.
    #[error(
        "workflow `{id}`: the review record changed under its transition twice in a row; nothing was written, the workflow resumes from its last step after a restart; please report this as an engine bug"
    )]
    ReviewConflict {
        /// The workflow.
        id: String,
    },
    /// A counter the engine stores or hands out (the owner epoch, a signal sequence number) is
    /// at its largest value, so the call was refused rather than let it wrap.
    #[error(
        "{counter} is at its largest value and cannot grow; nothing was written. Move the workflows to a new store to continue"
    )]
    CounterOverflow {
        /// Which counter.
        counter: &'static str,
    },
    /// User code called by this operation (a query's `answer`, a `Serialize` impl) panicked.
    /// The panic was caught; nothing was written.
    #[error("{what} panicked: {message}")]
    Panicked {
        /// What panicked, for people.
        what: String,
        /// The panic's message.
        message: String,
    },
    /// `Engine::retry` was asked for a workflow that is not parked and has not stalled: it is
    /// running or waiting as it should.
    #[error("workflow `{id}` is not parked, so there is nothing to retry")]
    NotParked {
        /// The workflow.
        id: String,
    },
    /// A backup could not be written; nothing was left at its path.
    #[error("backup failed: {0}")]
    Backup(#[from] BackupError),
}

impl EngineError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Fenced { .. } => "engine.fenced",
            EngineError::Shutdown => "engine.shutdown",
            EngineError::NewerStoreFormat { .. } => "engine.newer_store_format",
            EngineError::DamagedStoreMarker { .. } => "engine.damaged_store_marker",
            EngineError::PartitionsMismatch { .. } => "engine.partitions_mismatch",
            EngineError::Overloaded { .. } => "engine.overloaded",
            EngineError::Storage(e) => e.code(),
            EngineError::Codec(e) => e.code(),
            EngineError::NotFound { .. } => "engine.not_found",
            EngineError::NotRegistered { .. } => "engine.not_registered",
            EngineError::MissingActivity { .. } => "engine.missing_activity",
            EngineError::ConflictingRegistration { .. } => "engine.conflicting_registration",
            EngineError::AlreadyExists { .. } => "engine.already_exists",
            EngineError::InvalidId { .. } => "engine.invalid_id",
            EngineError::PayloadTooLarge { .. } => "engine.payload_too_large",
            EngineError::WrongType { .. } => "engine.wrong_type",
            EngineError::Parked { .. } => "engine.parked",
            EngineError::Cancelled { .. } => "engine.cancelled",
            EngineError::TimedOut { .. } => "engine.timed_out",
            EngineError::Finished { .. } => "engine.finished",
            EngineError::NotFinished { .. } => "engine.not_finished",
            EngineError::ParentNotFinished { .. } => "engine.parent_not_finished",
            EngineError::Record { source, .. } => source.code(),
            EngineError::InvalidPageToken => "engine.invalid_page_token",
            EngineError::InvalidMigration { .. } => "engine.invalid_migration",
            EngineError::ConflictingQuery { .. } => "engine.conflicting_query",
            EngineError::UnknownQuery { .. } => "engine.unknown_query",
            EngineError::NotLatest { .. } => "engine.not_latest",
            EngineError::UpdateTimedOut { .. } => "engine.update_timed_out",
            EngineError::UpdateNotAnswered { .. } => "engine.update_not_answered",
            EngineError::ReviewNotPending { .. } => "engine.review_not_pending",
            EngineError::ReviewConflict { .. } => "engine.review_conflict",
            EngineError::CounterOverflow { .. } => "engine.counter_overflow",
            EngineError::Panicked { .. } => "engine.panicked",
            EngineError::NotParked { .. } => "engine.not_parked",
            EngineError::Backup(e) => e.code(),
            EngineError::UnknownWorkflowType { .. } => "engine.unknown_workflow_type",
            EngineError::UnknownSignal { .. } => "engine.unknown_signal",
            EngineError::UnknownUpdate { .. } => "engine.unknown_update",
            EngineError::InvalidJson { .. } => "engine.invalid_json",
        }
    }
}

/// What kind of failure an [`EngineError`] is: the coarse class a caller acts on, and what a
/// server maps onto a status (404, 409, 400, 503, 500). Stable: a variant's kind never changes
/// without a new major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The workflow (or review, query, page) asked for does not exist.
    NotFound,
    /// The request is valid but conflicts with what is stored: the id is taken, the workflow
    /// has finished, is parked, or is of another type. Retrying the same request fails again.
    Conflict,
    /// The request itself is wrong: a bad id, an oversized payload, an unregistered type, a
    /// value that does not decode. Fix the request; retrying it unchanged fails again.
    InvalidInput,
    /// The engine cannot serve the request now (shut down, fenced, storage failing, overloaded,
    /// a wait ran out): the same request may succeed later or on another engine.
    Unavailable,
    /// Stored data is unreadable or the engine broke an invariant: an operator must look.
    Internal,
}

impl ErrorKind {
    /// The kind as a lowercase word (`not_found`, `conflict`, ...), for logs and wire formats.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EngineError {
    /// What kind of failure this is; see [`ErrorKind`].
    ///
    /// ```
    /// use weft_runtime::{EngineError, ErrorKind};
    /// let error = EngineError::NotFound { id: "order-7".into() };
    /// assert_eq!(error.kind(), ErrorKind::NotFound);
    /// assert_eq!(EngineError::Shutdown.kind(), ErrorKind::Unavailable);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            // Damaged storage needs an operator (a restore), not a retry.
            EngineError::Storage(StorageError::Corrupt { .. }) => ErrorKind::Internal,
            EngineError::Fenced { .. } | EngineError::Shutdown | EngineError::Storage(_) => {
                ErrorKind::Unavailable
            }
            EngineError::UpdateTimedOut { .. } | EngineError::Overloaded { .. } => {
                ErrorKind::Unavailable
            }
            EngineError::NotFound { .. } | EngineError::ReviewNotPending { .. } => {
                ErrorKind::NotFound
            }
            EngineError::AlreadyExists { .. }
            | EngineError::WrongType { .. }
            | EngineError::Parked { .. }
            | EngineError::Cancelled { .. }
            | EngineError::TimedOut { .. }
            | EngineError::Finished { .. }
            | EngineError::NotFinished { .. }
            | EngineError::ParentNotFinished { .. }
            | EngineError::UpdateNotAnswered { .. }
            | EngineError::NotParked { .. }
            | EngineError::NotLatest { .. }
            | EngineError::PartitionsMismatch { .. } => ErrorKind::Conflict,
            EngineError::NotRegistered { .. }
            | EngineError::InvalidId { .. }
            | EngineError::PayloadTooLarge { .. }
            | EngineError::UnknownQuery { .. }
            | EngineError::UnknownWorkflowType { .. }
            | EngineError::UnknownSignal { .. }
            | EngineError::UnknownUpdate { .. }
            | EngineError::InvalidJson { .. }
            | EngineError::InvalidPageToken
            | EngineError::Codec(_) => ErrorKind::InvalidInput,
            EngineError::MissingActivity { .. }
            | EngineError::ConflictingRegistration { .. }
            | EngineError::InvalidMigration { .. }
            | EngineError::ConflictingQuery { .. }
            | EngineError::Record { .. }
            | EngineError::NewerStoreFormat { .. }
            | EngineError::DamagedStoreMarker { .. }
            | EngineError::CounterOverflow { .. }
            | EngineError::Panicked { .. }
            | EngineError::ReviewConflict { .. } => ErrorKind::Internal,
            EngineError::Backup(e) => match e {
                BackupError::Exists { .. } | BackupError::InUse { .. } => ErrorKind::Conflict,
                BackupError::Unsupported { .. }
                | BackupError::NotABackup { .. }
                | BackupError::NewerFormat { .. } => ErrorKind::InvalidInput,
                BackupError::Io { .. } => ErrorKind::Unavailable,
                BackupError::Corrupt { .. } => ErrorKind::Internal,
            },
        }
    }
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        EngineError::Storage(e)
    }
}
