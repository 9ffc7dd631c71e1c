//! The engine: drives workflows through their steps, persists every transition, and recovers.
//!
//! ```text
//! Engine (handle) ──start/signal/cancel──▶ runner tasks ──transitions──▶ writer thread ──▶ Storage
//!                                            ▲      │                    (one fenced batch
//!                      timer service ──wake──┘      └─ activities          for many workflows)
//! ```
//!
//! ```
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{ActivityError, Engine, WorkflowContext, WorkflowError, activity, workflow};
//!
//! #[activity]
//! async fn greet(name: String) -> Result<String, ActivityError> {
//!     Ok(format!("hello, {name}"))
//! }
//!
//! #[workflow]
//! async fn hello(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
//!     let greeting = ctx.run(greet, name).await?;
//!     Ok(greeting)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Registering `hello` registers `greet`. Use `RedbStorage` to survive restarts.
//! let engine = Engine::builder(MemoryStorage::new()).register::<hello>().build().await?;
//! let handle = engine.start::<hello>("ada".to_string()).await?;
//! assert_eq!(handle.result().await??, "hello, ada");
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`builder`] (registration, ownership, recovery at build), `registry` (type-erased
//! workflows), [`record`] (stored formats and key layout), `writer` (grouped, fenced commits),
//! `effects` (what a commit sets in motion, run by the engine once it is durable),
//! `runner` (the step protocol), `execute` (activity retries), `timers`, `recovery`, [`clock`],
//! `query` (describe, list and count), `attributes` (search attributes), `probe` (readiness), `events` (committed steps), `migration` (checked migrations at build), `views` (typed
//! queries), [`error`].

mod admission;
mod attributes;
mod backoff;
mod backup;
pub mod builder;
mod by_name;
mod cancel_fold;
pub mod clock;
mod composite;
mod core;
mod damage;
mod effects;
pub mod error;
mod events;
mod execute;
mod fenced;
mod ids;
mod key_upgrade;
pub mod lease;
mod live_index;
mod migration;
mod page;
pub mod partition;
mod plan;
mod probe;
mod purge;
mod query;
pub mod record;
mod record_upgrade;
mod recovery;
mod registry;
mod retention;
mod retry;
mod review;
mod revive;
mod runner;
pub mod schedule;
mod signal_ids;
mod tasks;
mod timers;
mod update;
mod views;
mod visibility;
mod words;
mod writer;

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::codec::{self, Payload};
use crate::signal::Signal;
use crate::storage::{Batch, Storage};
use crate::workflow::{Resume, Workflow};

// The crate root re-exports these (the `engine` module itself is hidden from the docs): a new
// public item here is listed in `lib.rs` too, or readers never see it.
pub use admission::DEFAULT_MAX_QUEUED_REQUESTS;
pub use builder::{DEFAULT_PAYLOAD_LIMIT, EngineBuilder};
pub use by_name::{SignalType, UpdateType, WorkflowType};
pub use clock::{Clock, Sleeper, SystemClock, VirtualClock};
pub use error::{EngineError, ErrorKind};
pub use events::StepEvent;
pub use page::Page;
pub use query::{
    DESCRIBED_CHILDREN, GroupBy, ListFilter, ListOrder, ParkReason, Pending, WindowCounts,
    WorkflowDescription, WorkflowStatus, WorkflowSummary,
};
pub use recovery::{MAX_UNRESOLVED_LISTED, RecoveryReport, UnresolvedWorkflow};
pub use retention::{RetentionPolicy, SweepReport};
pub use review::{PendingReview, ReviewFilter};
pub use schedule::{
    OverlapPolicy, ScheduleDescription, ScheduleError, ScheduleRun, ScheduleSpec, ScheduleSummary,
    Trigger,
};
pub use signal_ids::{DEFAULT_SIGNAL_ID_WINDOW, SignalOptions};
pub use update::UpdateOptions;
pub(crate) use views::answer_json;

use self::core::{Inner, Woken};
use clock::to_millis;
use effects::{Effect, Launch};
use record::{Outcome, RecordStatus, ResumeKind, WorkflowRecord};
use registry::ErasedWorkflow;
use writer::{Created, Signalled};

/// The longest workflow id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// A running engine. Cheap to clone; the engine shuts down when the last clone is dropped (or
/// at [`Engine::shutdown`]), and a new one can then be built on the same storage.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Shuts the engine down when the last user-facing handle goes away. Tasks hold only `Inner`.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.halt();
    }
}

/// Options for [`Engine::start_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// The workflow id; generated when `None`. An id already in use is refused unless the
    /// idempotency key matches the start that created it.
    pub id: Option<String>,
    /// A retried start with the same key returns the workflow the first start created.
    pub idempotency_key: Option<String>,
    /// How long the workflow may run in all. It is stored as an absolute deadline when the
    /// workflow starts (in its record, so restarts do not extend it). When it passes, the
    /// workflow sees it exactly like [`Engine::cancel`]: a sleep is cut short and the next
    /// durable await reports it, `ctx.run` returns `Err(ActivityError::Cancelled)` (an
    /// in-flight activity sees its cancellation signal), children are cancelled per their
    /// policy; it may run cleanup, and it ends as [`WorkflowStatus::TimedOut`] whatever it
    /// returns, except `Ok`.
    pub execution_timeout: Option<std::time::Duration>,
}

/// What [`Engine::signal_with_start`] did.
#[derive(Debug)]
pub enum SignalWithStart<W: Workflow> {
    /// No workflow had the id: it was started, and the signal queued for it, in one commit.
    Started(WorkflowHandle<W>),
    /// A live workflow had the id: the signal was queued for it.
    Signalled(WorkflowHandle<W>),
}

impl<W: Workflow> SignalWithStart<W> {
    /// The workflow's handle, whichever happened.
    pub fn handle(&self) -> &WorkflowHandle<W> {
        match self {
            SignalWithStart::Started(handle) | SignalWithStart::Signalled(handle) => handle,
        }
    }

    /// Whether this call started the workflow.
    pub fn started(&self) -> bool {
        matches!(self, SignalWithStart::Started(_))
    }
}

/// Engine counters, for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Committed batches (storage transactions).
    pub batches: u64,
    /// Transitions committed in those batches.
    pub transitions: u64,
    /// Batches that failed (storage error or fencing).
    pub failed_batches: u64,
    /// Finished workflows purged by retention (see [`EngineBuilder::retention`]).
    pub purged: u64,
    /// Damaged store entries skipped since the engine was built: index entries whose keys do
    /// not parse or name no workflow, index values that do not decode. Each was left out of
    /// what read it (a listing, a sweep, a scheduler pass), and the first few are logged on
    /// stderr with their keys. Above zero, the store is damaged: check it (`weft doctor`).
    pub damaged_entries: u64,
}

impl EngineStats {
    /// Transitions per committed batch: how well commits are grouped.
    pub fn mean_batch_size(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.transitions as f64 / self.batches as f64
        }
    }
}

/// A typed handle to one workflow instance.
pub struct WorkflowHandle<W: Workflow> {
    engine: Engine,
    id: String,
    _workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> Clone for WorkflowHandle<W> {
    fn clone(&self) -> Self {
        WorkflowHandle {
            engine: self.engine.clone(),
            id: self.id.clone(),
            _workflow: PhantomData,
        }
    }
}

impl<W: Workflow> std::fmt::Debug for WorkflowHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("workflow", &W::NAME)
            .field("id", &self.id)
            .finish()
    }
}

impl<W: Workflow> WorkflowHandle<W> {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until the workflow finishes and returns what it returned. Works for workflows that
    /// finished long ago and for recovered ones.
    ///
    /// # Errors
    ///
    /// As [`Engine::result`].
    ///
    /// # Cancel safety
    ///
    /// As [`Engine::result`].
    pub async fn result(&self) -> Result<Result<W::Output, W::Error>, EngineError> {
        self.engine.result::<W>(&self.id).await
    }

    /// Sends a signal to this workflow.
    ///
    /// # Errors
    ///
    /// As [`Engine::signal`].
    ///
    /// # Cancel safety
    ///
    /// As [`Engine::signal`].
    pub async fn signal<S: Signal>(&self, value: S) -> Result<(), EngineError> {
        self.engine.signal(&self.id, value).await
    }

    /// Cancels this workflow.
    ///
    /// # Errors
    ///
    /// As [`Engine::cancel`].
    ///
    /// # Cancel safety
    ///
    /// As [`Engine::cancel`].
    pub async fn cancel(&self) -> Result<(), EngineError> {
        self.engine.cancel(&self.id).await
    }

    /// Describes this workflow.
    ///
    /// # Errors
    ///
    /// As [`Engine::describe`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn describe(&self) -> Result<WorkflowDescription, EngineError> {
        self.engine.describe(&self.id).await
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("epoch", &self.inner.epoch)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Runs `request` as a task of the engine and waits for its answer: a call whose checks read
/// storage (off the async workers, so not within its first poll) is taken by the engine at the
/// first poll all the same, and dropping the caller's future gives up only the answer.
async fn detach<T: Send + 'static>(
    inner: &Arc<Inner>,
    request: impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, EngineError> {
    match inner.tasks.spawn(request).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => Err(EngineError::Panicked {
            what: "a request".to_string(),
            message: crate::contain::message(&*join.into_panic()),
        }),
        Err(_) => Err(inner.stopped_error()),
    }
}

/// Runs `read`, which calls storage (blocking) with the whole engine state at hand, on tokio's
/// blocking pool, off the async worker threads: a listing or a count may read thousands of
/// records, which would stall every task sharing the worker (on a `current_thread` runtime, all
/// of them). For a single read, [`Inner::read`] needs no engine state. Dropping the returned
/// future leaves `read` to finish unobserved; callers pass only reads (and the recovery at
/// build, whose effects stand whether or not the build is awaited).
async fn read_blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    read: impl FnOnce(&Arc<Inner>) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let tasks = Arc::clone(&inner.tasks);
    let inner = Arc::clone(inner);
    // Counted, so shutdown waits until no read holds the storage (for redb, the file).
    match tasks.spawn_blocking(move || read(&inner)).await {
        Ok(result) => result,
        Err(join) => Err(EngineError::Panicked {
            what: "a storage read".to_string(),
            message: if join.is_panic() {
                crate::contain::message(&*join.into_panic())
            } else {
                "it was cancelled (the runtime is shutting down)".to_string()
            },
        }),
    }
}

/// What runs new workflow `id` once its creation is durable: the effect the writer runs when it
/// accepts the create.
fn launch_effect(
    workflow: &Arc<dyn ErasedWorkflow>,
    id: &str,
    record: WorkflowRecord,
    effects: Vec<Effect>,
    deadline_ms: Option<u64>,
) -> Vec<Effect> {
    vec![Effect::Launch(Box::new(Launch {
        id: id.to_string(),
        record,
        workflow: Arc::clone(workflow),
        deadline_ms,
        effects,
    }))]
}

fn validate_id(id: &str) -> Result<(), EngineError> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_ID_LEN {
        "it is longer than 256 bytes"
    } else if id.contains('\0') {
        "it contains a NUL character"
    } else {
        return Ok(());
    };
    Err(EngineError::InvalidId {
        id: id.to_string(),
        reason,
    })
}

impl Engine {
    /// Starts configuring an engine on `storage` (for example a `RedbStorage`, a
    /// `MemoryStorage`, or an `Arc` of either).
    pub fn builder(storage: impl Storage) -> EngineBuilder {
        EngineBuilder::new(Arc::new(storage))
    }

    fn from_inner(inner: Arc<Inner>) -> Engine {
        Engine {
            _owner: Arc::new(Owner(Arc::clone(&inner))),
            inner,
        }
    }

    /// The owner epoch this engine holds.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// How many partitions the store's workflows are spread over (`meta/partitions`, fixed when
    /// the store was created; 1 until the partitions issue).
    pub fn partitions(&self) -> u16 {
        self.inner.partitions.count()
    }

    /// The partition workflow `id` belongs to: FNV-1a of its bytes modulo
    /// [`Engine::partitions`] (see [`partition::partition_of`]), whether or not it exists.
    pub fn partition_of(&self, id: &str) -> u16 {
        self.inner.partition(id).index()
    }

    /// Whether another engine took the storage over; a fenced engine has shut down.
    pub fn is_fenced(&self) -> bool {
        self.inner.fenced.load(Ordering::SeqCst)
    }

    /// Whether this program contains panics: `true` when it is built with `panic = "unwind"`
    /// (Cargo's default), where a panic in workflow code (a step, a migration, a query, a
    /// `Serialize` or `Deserialize` impl) parks that one workflow or fails that one call.
    /// `false` with `panic = "abort"`: then the first such panic ends the process, and with it
    /// every workflow's progress until the next engine is built (nothing acknowledged is lost;
    /// the workflow that panicked panics again when resumed). The engine warns on stderr at
    /// build when this is `false`.
    pub fn panics_contained(&self) -> bool {
        crate::contain::PANICS_CONTAINED
    }

    /// How many workflows have a runner task right now (stepping, committing, or running an
    /// activity). Waiting workflows are not counted: they hold no task. Zero means the engine is
    /// settled until a timer fires or a signal arrives, which is what a test kit waits for.
    pub fn active_workflows(&self) -> usize {
        self.inner
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The earliest armed timer deadline, for a test kit that jumps its clock to the next timer.
    pub fn next_timer(&self) -> Option<std::time::SystemTime> {
        self.inner.timers.next_deadline().map(clock::from_millis)
    }

    /// The storage error the engine is riding out, if any: set while storage refuses the
    /// engine's own transitions (of work it acknowledged), which its writer holds and retries
    /// with backoff until they land. New requests (starts, signals, ...) are refused with
    /// `EngineError::Storage` meanwhile. `None` once a commit lands again.
    pub fn storage_fault(&self) -> Option<crate::storage::StorageError> {
        self.inner.stats.fault()
    }

    /// How many of the engine's own transitions wait for storage to accept them again (see
    /// [`Engine::storage_fault`]); each is a workflow whose runner waits on its commit. Zero when
    /// storage is healthy. A test kit counts these as settled, like activities in backoff.
    pub fn transitions_awaiting_storage(&self) -> usize {
        self.inner.stats.held.load(Ordering::SeqCst) as usize
    }

    /// How many callers' requests wait in the writer's queue now; at
    /// [`EngineBuilder::max_queued_requests`], new requests are refused with
    /// [`EngineError::Overloaded`].
    pub fn queued_requests(&self) -> usize {
        self.inner.requests.queued()
    }

    /// Commit counters.
    pub fn stats(&self) -> EngineStats {
        let stats = &self.inner.stats;
        EngineStats {
            batches: stats.batches.load(Ordering::Relaxed),
            transitions: stats.transitions.load(Ordering::Relaxed),
            failed_batches: stats.failed_batches.load(Ordering::Relaxed),
            purged: stats.purged.load(Ordering::Relaxed),
            damaged_entries: self.inner.damage.count(),
        }
    }

    /// Starts a workflow with a generated id.
    ///
    /// # Errors
    ///
    /// As [`Engine::start_with`].
    ///
    /// # Cancel safety
    ///
    /// The start reaches the engine's writer at the first poll. From then on, dropping this
    /// future changes nothing: if the writer creates the workflow, the engine runs it once the
    /// commit is durable; only the handle is lost ([`Engine::handle`] makes one from the id).
    /// A retry with the same idempotency key finds the workflow (and makes sure it runs),
    /// so use one when the id is generated. Dropped before its first poll, it does nothing.
    pub async fn start<W: Workflow>(
        &self,
        input: W::Input,
    ) -> Result<WorkflowHandle<W>, EngineError> {
        self.start_with::<W>(input, StartOptions::default()).await
    }

    /// Starts a workflow. Its first step runs at once and is committed together with the new
    /// record before this returns.
    ///
    /// New starts use the latest version: when a newer version of `W`'s name is registered
    /// beside `W`, this fails with `EngineError::NotLatest` (older versions stay registered so
    /// their in-flight instances finish). Use [`Engine::start_pinned`] to start an older one on
    /// purpose.
    ///
    /// # Errors
    ///
    /// `NotLatest` when a newer version of `W`'s name is registered; otherwise as
    /// [`Engine::start_pinned`].
    ///
    /// # Cancel safety
    ///
    /// The start reaches the engine's writer at the first poll. From then on, dropping this
    /// future changes nothing: if the writer creates the workflow, the engine runs it once the
    /// commit is durable; only the handle is lost ([`Engine::handle`] makes one from the id).
    /// A retry with the same idempotency key finds the workflow (and makes sure it runs),
    /// so use one when the id is generated. Dropped before its first poll, it does nothing.
    pub async fn start_with<W: Workflow>(
        &self,
        input: W::Input,
        options: StartOptions,
    ) -> Result<WorkflowHandle<W>, EngineError> {
        if let Some(latest) = self.inner.registry.latest(W::NAME)
            && latest.version() > W::VERSION
        {
            return Err(EngineError::NotLatest {
                workflow: W::NAME.to_string(),
                version: W::VERSION,
                latest: latest.version(),
            });
        }
        self.start_pinned::<W>(input, options).await
    }

    /// Starts exactly version `W`, even when a newer version of its name is registered (say, to
    /// finish a rollout on the old code). Otherwise like [`Engine::start_with`].
    ///
    /// # Errors
    ///
    /// `NotRegistered` when `W` is not registered; `InvalidId` for a bad id; `PayloadTooLarge` or
    /// `Codec` for an input that does not fit; `AlreadyExists` when the id is taken (a repeated
    /// idempotency key instead answers the workflow it started); `Overloaded` when too many
    /// requests wait for the writer; `Shutdown` or `Fenced` when the engine no longer serves;
    /// `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// The start reaches the engine's writer at the first poll. From then on, dropping this
    /// future changes nothing: if the writer creates the workflow, the engine runs it once the
    /// commit is durable; only the handle is lost ([`Engine::handle`] makes one from the id).
    /// A retry with the same idempotency key finds the workflow (and makes sure it runs),
    /// so use one when the id is generated. Dropped before its first poll, it does nothing.
    pub async fn start_pinned<W: Workflow>(
        &self,
        input: W::Input,
        options: StartOptions,
    ) -> Result<WorkflowHandle<W>, EngineError> {
        let workflow = self.registered::<W>()?;
        let id = self
            .start_encoded(&workflow, codec::encode(&input)?, options)
            .await?;
        Ok(self.handle(&id))
    }

    /// The registered code of `W`, or `NotRegistered`.
    fn registered<W: Workflow>(&self) -> Result<Arc<dyn ErasedWorkflow>, EngineError> {
        match self
            .inner
            .registry
            .lookup(W::NAME, W::VERSION, W::FINGERPRINT)
        {
            registry::Lookup::Found(workflow) => Ok(Arc::clone(workflow)),
            _ => Err(EngineError::NotRegistered {
                workflow: W::NAME.to_string(),
                version: W::VERSION,
            }),
        }
    }

    /// Starts `workflow` with its encoded input: the one start path, typed and by name. Returns
    /// the workflow's id (the existing one, for a repeated idempotency key).
    pub(crate) async fn start_encoded(
        &self,
        workflow: &Arc<dyn ErasedWorkflow>,
        input: Payload,
        options: StartOptions,
    ) -> Result<String, EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        inner.check_size("the workflow input", &input)?;
        if let Some(key) = &options.idempotency_key {
            validate_id(key)?;
        }
        loop {
            let generated = options.id.is_none();
            let id = match &options.id {
                Some(id) => id.clone(),
                // Time-ordered and unique; nothing of the engine that made it (see `ids`).
                None => format!(
                    "{}-{}",
                    workflow.name(),
                    inner.ids.next(to_millis(inner.clock.now()))
                ),
            };
            validate_id(&id)?;
            match self
                .start_once(
                    workflow,
                    id,
                    &input,
                    options.idempotency_key.clone(),
                    options.execution_timeout,
                )
                .await
            {
                // A caller chose this generated-looking id before; take the next one.
                Err(EngineError::AlreadyExists { .. }) if generated => continue,
                other => return other,
            }
        }
    }

    async fn start_once(
        &self,
        workflow: &Arc<dyn ErasedWorkflow>,
        id: String,
        input: &[u8],
        idempotency_key: Option<String>,
        execution_timeout: Option<std::time::Duration>,
    ) -> Result<String, EngineError> {
        let inner = &self.inner;
        let (record, batch, effects, deadline_ms) = self
            .prepare_start(
                workflow,
                &id,
                input,
                idempotency_key.clone(),
                execution_timeout,
            )
            .await?;
        // Run by the writer if, and only if, it accepts this create: of concurrent starts of one
        // id, the one whose create it accepted runs the workflow, whoever waits for what.
        let launch = launch_effect(workflow, &id, record, effects, deadline_ms);
        match inner
            .create(id.clone(), idempotency_key, batch, launch)
            .await?
        {
            Created::New => Ok(id),
            // The writer woke it, in case the start that created it never set it running.
            Created::Existing(existing) => {
                let record = match inner.load_record(&existing).await {
                    Ok(record) => record,
                    // Purged by retention, which keeps the key for its window: the retry is
                    // answered with the run the key started, not started again.
                    Err(EngineError::NotFound { .. }) => return Ok(existing),
                    Err(e) => return Err(e),
                };
                if record.workflow_type != workflow.name() {
                    return Err(EngineError::WrongType {
                        id: existing,
                        expected: workflow.name().to_string(),
                        found: record.workflow_type,
                    });
                }
                Ok(existing)
            }
            Created::IdTaken => Err(EngineError::AlreadyExists { id }),
        }
    }

    /// Runs the first step of a new workflow `id` and builds the batch that creates it: its
    /// record, attributes, idempotency key and deadline. Returns the record, the batch, what
    /// its first step sets in motion once durable, and the deadline to arm.
    async fn prepare_start(
        &self,
        workflow: &Arc<dyn ErasedWorkflow>,
        id: &str,
        input: &[u8],
        idempotency_key: Option<String>,
        execution_timeout: Option<std::time::Duration>,
    ) -> Result<(WorkflowRecord, Batch, Vec<Effect>, Option<u64>), EngineError> {
        let inner = &self.inner;
        let id = id.to_string();
        let now = inner.clock.now();
        let deadline_ms = execution_timeout.map(|timeout| clock::deadline_ms(now, timeout));
        let initial_bytes = workflow.start(input).map_err(|fault| {
            if fault.code == "workflow.panicked" {
                EngineError::Panicked {
                    what: format!("the start of workflow `{}`", workflow.name()),
                    message: fault.message,
                }
            } else {
                EngineError::Codec(crate::codec::CodecError::Decode {
                    type_name: "the workflow input",
                    reason: fault.message,
                })
            }
        })?;
        inner.check_size("the workflow state", &initial_bytes)?;
        let mut ctx = crate::context::WorkflowContext::new(id.clone(), 0, now);
        let stepped = workflow.step(&mut ctx, &initial_bytes, Resume::Start);
        let mut created = WorkflowRecord {
            workflow_type: workflow.name().to_string(),
            version: workflow.version(),
            fingerprint: workflow.fingerprint(),
            status: RecordStatus::Running,
            step: 0,
            state: Some(initial_bytes),
            pending: None,
            created_ms: to_millis(now),
            updated_ms: to_millis(now),
            outcome: None,
            idempotency_key: idempotency_key.clone(),
            last_resume: None,
            signals_consumed: 0,
            // Kept in the record from the first commit; a first step that finishes the
            // workflow clears it (see `plan::step`).
            lifecycle: record::Lifecycle {
                deadline_ms,
                ..record::Lifecycle::default()
            },
        };
        let plan = runner::transition(
            inner,
            plan::Step {
                id: &id,
                partition: inner.partition(&id),
                record: &mut created,
                stored: false,
                stepped,
                effects: ctx.take_effects(),
                attributes: ctx.take_attributes(),
                kind: ResumeKind::Start,
                consumed: Vec::new(),
                now,
                resumed: None,
            },
        )
        .await?;
        let plan::Plan {
            mut batch, effects, ..
        } = plan;
        let record = created;
        if let Some(key) = &idempotency_key {
            batch.put(
                record::idempotency_key(key),
                record::encode_record(&record::IdempotencyRecord {
                    workflow_id: id.clone(),
                })?,
            );
        }
        Ok((record, batch, effects, deadline_ms))
    }

    /// A typed handle to an existing workflow (not checked until used).
    pub fn handle<W: Workflow>(&self, id: &str) -> WorkflowHandle<W> {
        WorkflowHandle {
            engine: self.clone(),
            id: id.to_string(),
            _workflow: PhantomData,
        }
    }

    /// Waits until workflow `id` finishes, and returns its typed result.
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `WrongType` when it is not a `W`; `Cancelled` or
    /// `TimedOut` when it ended that way; `Parked` when it is parked; `Codec` or `Record` when its
    /// stored result does not decode; `Shutdown` or `Fenced` when the engine no longer serves;
    /// `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads and waits, so dropping it changes nothing; call again to
    /// keep waiting.
    pub async fn result<W: Workflow>(
        &self,
        id: &str,
    ) -> Result<Result<W::Output, W::Error>, EngineError> {
        match self.finished(id, Some(W::NAME)).await? {
            (_, Ok(payload)) => Ok(Ok(runner::decode_payload(&payload)?)),
            (_, Err(payload)) => Ok(Err(runner::decode_payload(&payload)?)),
        }
    }

    /// Waits until workflow `id` finishes (checking, when `expected_type` is given, that it is of
    /// that type), and returns its record with the encoded output (`Ok`) or error (`Err`). The one
    /// wait for a result, typed and by name.
    pub(crate) async fn finished(
        &self,
        id: &str,
        expected_type: Option<&str>,
    ) -> Result<FinishedRecord, EngineError> {
        let inner = &self.inner;
        loop {
            let waiter = inner.wait_for(id)?;
            // Registered first, so whatever the runner does after this look is heard.
            if !inner.driven(id, expected_type) {
                let stored = query::read_stored(inner, id)
                    .await?
                    .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
                let inspected = query::inspect_stored(inner, stored)?;
                if let Some(reason) = inspected.park_reason {
                    return Err(EngineError::Parked {
                        id: id.to_string(),
                        code: reason.code,
                        message: reason.message,
                    });
                }
                if let Some(record) = inspected.record
                    && let Some(answer) = answer_of(id, record, expected_type)
                {
                    return answer;
                }
            }
            if let Some(error) = inner.stalled(id) {
                return Err(error);
            }
            match waiter.await {
                // The finished record as committed: what the read above would find now.
                Ok(Woken::Finished(record)) => {
                    let record = Arc::unwrap_or_clone(record);
                    if let Some(answer) = answer_of(id, record, expected_type) {
                        return answer;
                    }
                }
                Ok(Woken::Changed) => {}
                Ok(Woken::Failed(error)) => return Err(error),
                Err(_) => return Err(inner.stopped_error()),
            }
        }
    }

    /// Sends a typed signal to workflow `id`. It is stored durably before this returns, even if
    /// the workflow does not wait for it yet; a workflow waiting for it is resumed.
    ///
    /// Fails with `EngineError::Finished`, writing nothing, when the workflow has finished: the
    /// engine's writer checks that in the order of its writes, so a signal is never accepted
    /// after the workflow's final transition, even one committed concurrently.
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `Finished` when it has finished; `PayloadTooLarge`
    /// or `Codec` for a value that does not fit; `Overloaded` when too many requests wait for the
    /// writer; `Shutdown` or `Fenced` when the engine no longer serves; `Storage` when the store
    /// fails.
    ///
    /// # Cancel safety
    ///
    /// The signal reaches the engine's writer at the first poll, and dropping this future
    /// after that does not withdraw it: if the writer accepts it, it is stored and the engine
    /// wakes the workflow once it is durable. A caller that never saw the answer cannot tell
    /// whether it was accepted, so sending it again may deliver it twice.
    pub async fn signal<S: Signal>(&self, id: &str, value: S) -> Result<(), EngineError> {
        self.signal_with(id, value, SignalOptions::default()).await
    }

    /// [`Engine::signal`] with options: with a `signal_id`, a signal repeated with the same id
    /// (a retried webhook, say) is queued once and every call answers as the first did, also
    /// when the repeats are concurrent, come after a restart, or come after the workflow has
    /// finished (see [`SignalOptions`]).
    ///
    /// # Errors
    ///
    /// As [`Engine::signal`] (`NotFound`, `Finished`, `PayloadTooLarge`, ...), and `InvalidId`
    /// for a signal id that is empty, longer than 256 bytes or holds a NUL. A repeat of an
    /// accepted id is not an error.
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::signal`], and with a signal id a caller that did not see the answer can
    /// simply send again: the signal and its id are committed together, so it is queued at most
    /// once.
    pub async fn signal_with<S: Signal>(
        &self,
        id: &str,
        value: S,
        options: SignalOptions,
    ) -> Result<(), EngineError> {
        self.send_signal(id, S::NAME, codec::encode(&value)?, options)
            .await
    }

    /// Queues the encoded signal `name` for workflow `id`, and has the engine wake it once that
    /// is durable: the one signal path, typed and by name.
    pub(crate) async fn send_signal(
        &self,
        id: &str,
        name: &str,
        payload: Payload,
        options: SignalOptions,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        inner.check_size("the signal", &payload)?;
        if let Some(signal_id) = &options.signal_id {
            validate_id(signal_id)?;
        }
        let now_ms = to_millis(inner.clock.now());
        let signal = record::SignalRecord {
            name: name.to_string(),
            payload,
            sent_ms: now_ms,
        };
        let p = inner.partition(id);
        let key = record::signal_key(p, id, inner.epoch, inner.next_signal_seq()?);
        let mut batch = Batch::new();
        batch.put(key, record::encode_record(&signal)?);
        if let Some(signal_id) = &options.signal_id {
            signal_ids::remember(&mut batch, (p, id), signal_id, now_ms)?;
        }
        let owned_id = id.to_string();
        let window = inner.signal_id_window;
        inner
            .request_checked_then(
                move |view| {
                    // A repeat answers as the first call did, whatever happened since, and
                    // wakes nothing.
                    if let Some(signal_id) = &options.signal_id
                        && signal_ids::seen(view, (p, &owned_id), signal_id, now_ms, window)?
                    {
                        return Ok(None);
                    }
                    if view.workflow(p, &owned_id)?.status.is_terminal() {
                        return Err(EngineError::Finished { id: owned_id });
                    }
                    Ok(Some(batch))
                },
                vec![Effect::Wake(id.to_string())],
            )
            .await?;
        Ok(())
    }

    /// Signals workflow `id`, starting it first (with `input`, as [`Engine::start_with`] would
    /// with this id) when no workflow has that id, and says which happened.
    ///
    /// Atomic: the engine's single writer checks the id and writes, in one batch, either the new
    /// workflow (after its first step) together with the queued signal, or the signal alone.
    /// So concurrent calls on one id start it exactly once and queue every signal exactly once;
    /// the workflow receives them in send order, as with [`Engine::signal`].
    ///
    /// When the workflow with that id has finished, nothing is written and this fails with
    /// `EngineError::Finished`: ids are never reused, so a finished run is not restarted (use a
    /// new id for a new run). A live workflow of another type fails with
    /// `EngineError::WrongType`. Like [`Engine::start_with`], it refuses a `W` that is not the
    /// latest registered version with `EngineError::NotLatest`.
    ///
    /// ```text
    /// match engine.signal_with_start::<cart, AddItem>("cart-42", customer, item).await? {
    ///     SignalWithStart::Started(cart) => println!("new cart {}", cart.id()),
    ///     SignalWithStart::Signalled(cart) => println!("added to cart {}", cart.id()),
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// `Finished` when the workflow with the id has finished; `WrongType` when it is of another
    /// type; `NotLatest` as for [`Engine::start_with`]; otherwise as [`Engine::start_pinned`] and
    /// [`Engine::signal`].
    ///
    /// # Cancel safety
    ///
    /// The call reaches the engine's writer at the first poll; dropping this future after that
    /// changes nothing: the writer starts or signals the workflow, and the engine runs or wakes
    /// it once the commit is durable. Called again, it signals the workflow the first call
    /// started (so the signal may be delivered twice).
    pub async fn signal_with_start<W: Workflow, S: Signal>(
        &self,
        id: &str,
        input: W::Input,
        signal: S,
    ) -> Result<SignalWithStart<W>, EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        let workflow = self.registered::<W>()?;
        if let Some(latest) = inner.registry.latest(W::NAME)
            && latest.version() > W::VERSION
        {
            return Err(EngineError::NotLatest {
                workflow: W::NAME.to_string(),
                version: W::VERSION,
                latest: latest.version(),
            });
        }
        validate_id(id)?;
        let payload = codec::encode(&signal)?;
        inner.check_size("the signal", &payload)?;
        let encoded_input = codec::encode(&input)?;
        inner.check_size("the workflow input", &encoded_input)?;
        let mut signal_batch = Batch::new();
        signal_batch.put(
            record::signal_key(
                inner.partition(id),
                id,
                inner.epoch,
                inner.next_signal_seq()?,
            ),
            record::encode_record(&record::SignalRecord {
                name: S::NAME.to_string(),
                payload,
                sent_ms: to_millis(inner.clock.now()),
            })?,
        );
        let (record, start_batch, effects, deadline_ms) = self
            .prepare_start(&workflow, id, &encoded_input, None, None)
            .await?;
        // The writer launches the workflow if it starts it, or wakes it if it signals it.
        let launch = launch_effect(&workflow, id, record, effects, deadline_ms);
        match inner
            .signal_with_start(id.to_string(), W::NAME, start_batch, signal_batch, launch)
            .await?
        {
            Signalled::Started => Ok(SignalWithStart::Started(self.handle(id))),
            Signalled::Existing => Ok(SignalWithStart::Signalled(self.handle(id))),
        }
    }

    /// Cancels workflow `id`: the request is stored durably, then the workflow resumes with
    /// `Resume::Cancelled` at its current durable await (an in-flight activity sees
    /// `ActivityContext::is_cancelled`). Cancelling a finished workflow does nothing and writes
    /// nothing, even when it finishes concurrently (the writer decides, in the order of its
    /// writes).
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `Overloaded` when too many requests wait for the
    /// writer; `Shutdown` or `Fenced` when the engine no longer serves; `Storage` when the store
    /// fails.
    ///
    /// # Cancel safety
    ///
    /// The request reaches the engine's writer at the first poll; dropping this future after
    /// that does not withdraw it: once stored, the engine delivers it. Cancelling again is
    /// harmless, so a caller that did not see the answer calls again.
    pub async fn cancel(&self, id: &str) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        let mut batch = Batch::new();
        batch.put(
            record::cancel_key(id),
            record::encode_record(&record::CancelRecord {
                requested_ms: to_millis(inner.clock.now()),
            })?,
        );
        let (p, owned_id) = (inner.partition(id), id.to_string());
        inner
            .request_checked_then(
                move |view| {
                    let bytes = view.get(&record::workflow_key(p, &owned_id))?.ok_or(
                        EngineError::NotFound {
                            id: owned_id.clone(),
                        },
                    )?;
                    // The request is kept in the record (the writer folds it in: see
                    // `cancel_fold`), so a record that does not decode cannot take it.
                    let record =
                        record::decode_record::<WorkflowRecord>(&bytes).map_err(|source| {
                            EngineError::Record {
                                key: format!("wf/{owned_id}"),
                                source,
                            }
                        })?;
                    if record.status.is_terminal() {
                        return Ok(None);
                    }
                    Ok(Some(batch))
                },
                vec![Effect::Cancel(id.to_string())],
            )
            .await?;
        Ok(())
    }

    /// Status, type, timestamps, step, pending command, and the current state as JSON.
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `Shutdown` or `Fenced` when the engine no longer
    /// serves; `Storage` when the store fails. An unreadable record is described as parked, not
    /// refused.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn describe(&self, id: &str) -> Result<WorkflowDescription, EngineError> {
        self.inner.check_live()?;
        let id = id.to_string();
        read_blocking(&self.inner, move |inner| query::describe(inner, &id)).await
    }

    /// The ids of the child workflows `parent` started, in id order, `page_size` (at least 1)
    /// at a time; pass the previous page's `next_page_token` to continue. Read from the
    /// children index, written with each child's start and deleted with its purge, so it costs
    /// a page of keys, no record. A workflow without children (or no workflow) has none.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidPageToken`] for a token no page handed out;
    /// [`EngineError::Storage`] when a read fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn children(
        &self,
        parent: &str,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page<String>, EngineError> {
        self.inner.check_live()?;
        let parent = parent.to_string();
        let page_token = page_token.map(str::to_string);
        read_blocking(&self.inner, move |inner| {
            query::children(inner, &parent, page_size, page_token.as_deref())
        })
        .await
    }

    /// Workflows matching `filter`, in its [`ListOrder`] (id order by default), `page_size`
    /// (at least 1) at a time. Pass the previous page's `next_page_token` to continue.
    ///
    /// Sorted by creation or update time, it reads the time index of that order (see
    /// [`ListOrder`]), so a page of the newest costs a page, however many the store keeps.
    /// In id order, what it reads: with an attribute condition, only the workflows the attribute index
    /// holds for the first one; else, for status `Running` or `Waiting`, only the workflows not
    /// finished (the live index, however many finished ones the store keeps); else, with a
    /// type, only that type's workflows (the type index); else every record after the token
    /// (within `id_prefix`) until the page is full. The other conditions are checked on the
    /// records read, so a rare finished status alone costs a scan.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidPageToken`] for a token no page handed out that cannot be read;
    /// a storage error, `Shutdown` or `Fenced` when the engine cannot read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn list(
        &self,
        filter: &ListFilter,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page<WorkflowSummary>, EngineError> {
        self.inner.check_live()?;
        let filter = filter.clone();
        let page_token = page_token.map(str::to_string);
        read_blocking(&self.inner, move |inner| {
            query::list(inner, &filter, page_size, page_token.as_deref())
        })
        .await
    }

    /// How many workflows matching `filter` fall in each group of `group_by` (a status, a type
    /// name or a search attribute's value), sorted by group name; empty groups are left out.
    /// Grouped by status or type, with no condition but a status or a type, it reads counters
    /// alone, kept by the writer in the same commit as every status change: per status and type
    /// for the finished workflows, per status, type and version for the unfinished ones (a
    /// version that is not registered is counted as parked, as [`Engine::describe`] reports
    /// it). Its cost follows the number of types, not the number of workflows. A finished
    /// workflow is counted under the status it finished with; a record damaged in place is
    /// counted as it was last written (listing and describe report it parked). With any other
    /// condition, or grouped by an attribute, it reads what [`Engine::list`] would read for the
    /// same filter.
    ///
    /// ```text
    /// let by_status = engine.count(&ListFilter::default(), GroupBy::Status).await?;
    /// // [("Completed", 12), ("Waiting", 3)]
    /// ```
    ///
    /// # Errors
    ///
    /// `Shutdown` or `Fenced` when the engine no longer serves; `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn count(
        &self,
        filter: &ListFilter,
        group_by: GroupBy,
    ) -> Result<Vec<(String, u64)>, EngineError> {
        self.inner.check_live()?;
        let filter = filter.clone();
        read_blocking(&self.inner, move |inner| {
            query::count(inner, &filter, &group_by)
        })
        .await
    }

    /// How many workflows started, and how many finished, in `[from, to)`: a range read of the
    /// created-time index and one of the finish-time index, counting keys without reading a
    /// record, so its cost follows the workflows in the window, not the store's size. Purged
    /// workflows are not counted.
    ///
    /// # Errors
    ///
    /// [`EngineError::Storage`] when a read fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn count_window(
        &self,
        from: std::time::SystemTime,
        to: std::time::SystemTime,
    ) -> Result<WindowCounts, EngineError> {
        self.inner.check_live()?;
        read_blocking(&self.inner, move |inner| {
            query::count_window(inner, from, to)
        })
        .await
    }

    /// The current state of workflow `id`, decoded as `W::State` (for tests and tooling).
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `WrongType` when it is not a `W`; `Finished` once it
    /// has finished (its state is gone); `Codec` or `Record` when the stored state does not decode;
    /// `Shutdown` or `Fenced` when the engine no longer serves; `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn state<W: Workflow>(&self, id: &str) -> Result<W::State, EngineError> {
        self.inner.check_live()?;
        let record = self.inner.load_record(id).await?;
        if record.workflow_type != W::NAME
            || record.version != W::VERSION
            || record.fingerprint != W::FINGERPRINT
        {
            return Err(EngineError::WrongType {
                id: id.to_string(),
                expected: format!("{} v{} ({:#018x})", W::NAME, W::VERSION, W::FINGERPRINT),
                found: format!(
                    "{} v{} ({:#018x})",
                    record.workflow_type, record.version, record.fingerprint
                ),
            });
        }
        let state = record
            .state
            .ok_or_else(|| EngineError::Finished { id: id.to_string() })?;
        Ok(codec::decode(&state)?)
    }

    /// Stops the engine: aborts running tasks (their workflows resume from their last commit
    /// when an engine is built again), and waits until the writer has stopped and every task of
    /// the engine has dropped the storage. Once the last clone of this engine (and every
    /// [`WorkflowHandle`]) is gone too, the storage is dropped, so a new engine can be built on
    /// the same redb file at once.
    ///
    /// # Cancel safety
    ///
    /// The engine stops at the first poll, whatever happens to this future; dropping it only
    /// gives up waiting for the writer and the tasks to let go of the storage.
    pub async fn shutdown(self) {
        self.inner.halt();
        let done = self
            .inner
            .writer_done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(done) = done {
            let _ = done.await;
        }
        self.inner.tasks.idle().await;
    }
}

/// A finished workflow's record and its outcome: its output, or its error's payload.
type FinishedRecord = (WorkflowRecord, Result<Payload, Payload>);

/// What `result` answers for `record`: its outcome, or `None` while it has none.
fn answer_of(
    id: &str,
    mut record: WorkflowRecord,
    expected_type: Option<&str>,
) -> Option<Result<FinishedRecord, EngineError>> {
    if let Some(expected) = expected_type
        && record.workflow_type != expected
    {
        return Some(Err(EngineError::WrongType {
            id: id.to_string(),
            expected: expected.to_string(),
            found: record.workflow_type,
        }));
    }
    Some(match record.outcome.take()? {
        Outcome::Output(payload) => Ok((record, Ok(payload))),
        Outcome::Error { payload, .. } => Ok((record, Err(payload))),
        Outcome::Cancelled => Err(EngineError::Cancelled { id: id.to_string() }),
        Outcome::TimedOut => Err(EngineError::TimedOut { id: id.to_string() }),
    })
}
