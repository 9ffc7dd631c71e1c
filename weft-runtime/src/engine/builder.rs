//! [`EngineBuilder`]: registers workflows and activities, takes ownership of the storage, and
//! recovers in-flight workflows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::activity::{DynActivity, Resources};
use crate::migration::MigrationError;
use crate::query::Query;
use crate::storage::{Batch, Condition, STORE_FORMAT_VERSION, Storage};
use crate::workflow::Workflow;

use super::admission::{self, Requests};
use super::clock::{Clock, SystemClock};
use super::core::Inner;
use super::effects;
use super::error::EngineError;
use super::migration::{self, ErasedMigration};
use super::partition::{self, Partitions};
use super::record;
use super::record_upgrade;
use super::registry::{self, ErasedQuery, ErasedWorkflow, Registry};
use super::retention::{self, RetentionPolicy};
use super::revive::{self, Revive};
use super::tasks::Tasks;
use super::timers::{self, Timers};
use super::writer::{self, WriterStats};
use super::{Engine, key_upgrade, live_index, recovery, retry, schedule, signal_ids, visibility};

/// The default payload limit: 1 MiB.
pub const DEFAULT_PAYLOAD_LIMIT: usize = 1 << 20;

/// Configures and builds an [`Engine`]. Start with [`Engine::builder`].
pub struct EngineBuilder {
    storage: Arc<dyn Storage>,
    workflows: Vec<Arc<dyn ErasedWorkflow>>,
    overrides: HashMap<String, Arc<dyn DynActivity>>,
    migrations: Vec<Arc<ErasedMigration>>,
    queries: Vec<ErasedQuery>,
    resources: Resources,
    payload_limit: usize,
    max_queued_requests: usize,
    signal_id_window: Duration,
    recover: bool,
    clock: Arc<dyn Clock>,
    retention: Option<RetentionPolicy>,
    partitions: Option<u16>,
}

impl EngineBuilder {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        EngineBuilder {
            storage,
            workflows: Vec::new(),
            overrides: HashMap::new(),
            migrations: Vec::new(),
            queries: Vec::new(),
            resources: Resources::default(),
            payload_limit: DEFAULT_PAYLOAD_LIMIT,
            max_queued_requests: admission::DEFAULT_MAX_QUEUED_REQUESTS,
            signal_id_window: signal_ids::DEFAULT_SIGNAL_ID_WINDOW,
            recover: true,
            clock: Arc::new(SystemClock),
            retention: None,
            partitions: None,
        }
    }

    /// How many partitions a new store spreads its workflows over (at least 1; default
    /// [`partition::DEFAULT_PARTITIONS`]). Fixed at creation: every key of a workflow carries
    /// its partition, so a store keeps the count it was created with, and building on an
    /// existing store with another count is refused with [`EngineError::PartitionsMismatch`]
    /// (a store created before partitions existed has one). Without it, a build takes whatever
    /// the store holds.
    pub fn partitions(mut self, count: u16) -> Self {
        self.partitions = Some(count.max(1));
        self
    }

    /// How many callers' requests (starts, signals, updates, cancellations, review decisions,
    /// retries) may wait in the writer's queue; beyond it a new request is refused at once with
    /// [`EngineError::Overloaded`] (kind `Unavailable`, code `engine.overloaded`), so callers
    /// back off while storage is slow instead of piling up. The engine's own transitions of
    /// work it acknowledged are never refused. Default
    /// [`DEFAULT_MAX_QUEUED_REQUESTS`](super::DEFAULT_MAX_QUEUED_REQUESTS): four full batches
    /// of the writer. Zero is taken as one.
    pub fn max_queued_requests(mut self, limit: usize) -> Self {
        self.max_queued_requests = limit;
        self
    }

    /// Purges finished workflows in the background under `policy` (see [`RetentionPolicy`]):
    /// one sweep every `policy.interval` on the engine's clock, starting once the engine is
    /// built. Without it, finished workflows are kept until [`Engine::purge`] deletes them.
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = Some(policy);
        self
    }

    /// Registers a workflow and the activities it declares. Several versions of one name may be
    /// registered, so in-flight instances finish on the code that started them.
    pub fn register<W: Workflow>(mut self) -> Self {
        self.workflows.push(registry::erase::<W>());
        self
    }

    /// Registers a checked migration from `From`'s state enum to `To`'s (see
    /// [`crate::migration`]). When the engine is built, every stored workflow written by `From`
    /// (same name, version and fingerprint) is migrated and committed as a `To` before it
    /// resumes; migrations chain (`v1 -> v2 -> v3`).
    ///
    /// `To` must be registered (or migrate on, through a chain, to a registered version), have
    /// the same name and a higher version; `From` must not be registered. Each old variant must
    /// map to a new variant that waits on the same kind of operation, because the stored pending
    /// command is kept. `build` fails with `EngineError::InvalidMigration` otherwise.
    ///
    /// Migrations run at every `build`, also with [`EngineBuilder::recover`] off.
    pub fn migrate<From, To>(
        mut self,
        migration: impl Fn(From::State) -> Result<To::State, MigrationError> + Send + Sync + 'static,
    ) -> Self
    where
        From: Workflow,
        To: Workflow,
    {
        self.migrations
            .push(migration::erase::<From, To, _>(migration));
        self
    }

    /// Registers query `Q` for [`Engine::query_by_name`], which answers in JSON. Typed calls
    /// through [`Engine::query`] need no registration. `build` fails when `Q::Workflow` is not
    /// registered, or another query of that version has the same `NAME`.
    pub fn query<Q>(mut self) -> Self
    where
        Q: Query,
        Q::Output: serde::Serialize,
    {
        self.queries.push(ErasedQuery {
            workflow: migration::key_of::<Q::Workflow>(),
            name: Q::NAME,
            answer: Box::new(super::views::answer_json::<Q>),
        });
        self
    }

    /// Shared application resources that activities read with `ActivityContext::resource`.
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// The largest payload (input, signal, state, activity output) accepted, in bytes.
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.payload_limit = bytes;
        self
    }

    /// How long a caller's signal id (`SignalOptions::signal_id`) is remembered: a signal with
    /// the same id to the same workflow within this window, measured on the engine's clock
    /// from the first one's acceptance, is not queued again. Default: one day.
    pub fn signal_id_window(mut self, window: Duration) -> Self {
        self.signal_id_window = window;
        self
    }

    /// Whether `build` resumes in-flight workflows (default `true`).
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// The clock for timers, backoff and attempt timeouts (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces (or provides) the implementation of the activity named `name`, for example a
    /// mock in tests or an implementation of an activity a workflow only `require`s.
    ///
    /// Only the body is replaced: retries and timeouts follow the options stored with each call,
    /// which the workflow's step took from the declared activity when it issued the call.
    pub fn activity_override(mut self, name: &str, activity: Arc<dyn DynActivity>) -> Self {
        self.overrides.insert(name.to_string(), activity);
        self
    }

    /// Checks the registrations, takes ownership of the storage by incrementing its owner epoch
    /// (deposing any earlier engine), starts the writer and timer service, runs the registered
    /// migrations, and recovers: with [`EngineBuilder::recover`] on (the default), every
    /// workflow stored as parked is retried on the code registered now, and every in-flight
    /// workflow resumes.
    ///
    /// In a program built with `panic = "abort"`, where no panic can be contained, it prints a
    /// warning on stderr (see [`Engine::panics_contained`]).
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// `MissingActivity`, `ConflictingRegistration`, `ConflictingQuery` or `InvalidMigration` for
    /// registrations that do not fit together; `NewerStoreFormat` for a store written by a newer
    /// release; `DamagedStoreMarker` when its format or epoch marker does not decode; `Storage` when the store cannot be read or owned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it returns stops the engine it was building (its writer and
    /// tasks end). What it committed stands (ownership, migrated records), and the next build
    /// takes over from there.
    pub async fn build(self) -> Result<Engine, EngineError> {
        let mut registry = Registry::build(self.workflows, self.overrides)?;
        registry.add_migrations(self.migrations)?;
        registry.add_queries(self.queries)?;
        // Storage calls block: they run on tokio's blocking pool, off the async workers.
        let storage = Arc::clone(&self.storage);
        let requested = self.partitions;
        let (epoch, partitions) = blocking(move || {
            let format = check_store_format(&*storage)?;
            let partitions = choose_partitions(&*storage, requested)?;
            let epoch = take_ownership(&*storage, format, &partitions)?;
            let partitions = Partitions::new(partitions.count);
            // First: every backfill and upgrade after it reads and writes the keys of format
            // 5, with their partition.
            key_upgrade::ensure(&*storage, epoch)?;
            live_index::ensure(&*storage, epoch)?;
            visibility::ensure(&*storage, epoch)?;
            visibility::ensure_order(&*storage, epoch, partitions)?;
            // After the order backfill, which reads the `parent/` links this deletes.
            record_upgrade::ensure(&*storage, epoch)?;
            visibility::ensure_live_counters(&*storage, epoch)?;
            Ok((epoch, partitions))
        })
        .await?;
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let stats = Arc::new(WriterStats::default());
        let fenced = Arc::new(AtomicBool::new(false));
        let timers = Arc::new(Timers::default());
        let tasks = Arc::new(Tasks::default());
        let revive = Arc::new(Revive::default());
        let inner = Arc::new(Inner {
            storage: Arc::clone(&self.storage),
            registry,
            resources: self.resources,
            clock: Arc::clone(&self.clock),
            payload_limit: self.payload_limit,
            signal_id_window: self.signal_id_window,
            epoch,
            writer_tx,
            requests: Requests::new(self.max_queued_requests),
            writer_done: Mutex::new(Some(done_rx)),
            stats: Arc::clone(&stats),
            fenced: Arc::clone(&fenced),
            stopped: AtomicBool::new(false),
            active: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            stalled: Mutex::new(HashMap::new()),
            timers: Arc::clone(&timers),
            background: Mutex::new(Vec::new()),
            revive: Arc::clone(&revive),
            tasks: Arc::clone(&tasks),
            ids: super::ids::Ulids::default(),
            partitions,
            next_signal: AtomicU64::new(0),
            events: tokio::sync::broadcast::channel(super::events::CAPACITY).0,
            schedules: Arc::new(tokio::sync::Notify::new()),
            recovery: std::sync::OnceLock::new(),
            owner_checked: Default::default(),
            damage: Default::default(),
        });
        if !crate::contain::PANICS_CONTAINED {
            // No logging dependency: one line on stderr, and `Engine::panics_contained` for
            // callers that report it their own way.
            eprintln!(
                "weft: warning: this program is built with `panic = \"abort\"`, so a panic in workflow code ends the process instead of parking that one workflow; build with `panic = \"unwind\"` (Cargo's default) to contain panics"
            );
        }
        let weak = Arc::downgrade(&inner);
        let storage = Arc::clone(&self.storage);
        // The writer runs the effects of its commits (see `effects`), which spawn runner tasks.
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                let halt = || {
                    if let Some(inner) = weak.upgrade() {
                        inner.halt();
                    }
                };
                let run_effects = |then| {
                    if let Some(inner) = weak.upgrade() {
                        effects::run(&inner, then);
                    }
                };
                // A panic in the writer would leave every later commit unanswered: stop the
                // engine instead, so callers get `Shutdown` and a new engine can take over.
                if let Err(message) = crate::contain::catch(|| {
                    writer::run(
                        storage,
                        (epoch, partitions),
                        writer_rx,
                        stats,
                        fenced,
                        halt,
                        run_effects,
                    )
                }) {
                    eprintln!("weft: the engine's writer panicked ({message}); the engine stops, build a new one on the same storage to continue");
                    halt();
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| EngineError::Storage(crate::storage::StorageError::backend(e)))?;
        let timer_task = tasks.spawn(timers::serve(
            Arc::downgrade(&inner),
            timers,
            Arc::clone(&self.clock),
        ));
        let revive_task = tasks.spawn(revive::run(Arc::downgrade(&inner), revive));
        inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([timer_task.abort_handle(), revive_task.abort_handle()]);
        let engine = Engine::from_inner(inner);
        // Migrated records are committed before anything resumes from them.
        migration::upgrade_all(&engine.inner).await?;
        if self.recover {
            // Parked workflows are retried on the code registered now (see `retry`).
            let unparked = retry::unpark_all(&engine.inner).await?;
            let started = std::time::Instant::now();
            let mut report = super::read_blocking(&engine.inner, recovery::recover).await?;
            report.unparked = unparked as u64;
            report.duration = started.elapsed();
            let _ = engine.inner.recovery.set(report);
        }
        let scheduler = engine.inner.tasks.spawn(schedule::scheduler::serve(
            Arc::downgrade(&engine.inner),
            Arc::downgrade(&engine._owner),
        ));
        engine
            .inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(scheduler.abort_handle());
        if let Some(policy) = self.retention {
            let sweeper = engine
                .inner
                .tasks
                .spawn(retention::serve(Arc::downgrade(&engine.inner), policy));
            engine
                .inner
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(sweeper.abort_handle());
        }
        Ok(engine)
    }
}

/// Runs `f`, which calls storage, on tokio's blocking pool (see `Inner::read`).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) => Err(EngineError::Panicked {
            what: "taking ownership of the store".to_string(),
            message: if join.is_panic() {
                crate::contain::message(&*join.into_panic())
            } else {
                "it was cancelled (the runtime is shutting down)".to_string()
            },
        }),
    }
}

/// Reads the store format marker: `Err` when a newer build wrote the store, else the version it
/// holds (`None` for a new store, or one from before the marker existed). Runs before any
/// write, so a refused build leaves the store, and the engine that owns it, untouched.
fn check_store_format(storage: &dyn Storage) -> Result<Option<u32>, EngineError> {
    let Some(bytes) = storage.get(record::FORMAT_KEY)? else {
        return Ok(None);
    };
    let found =
        record::decode_store_format(&bytes).map_err(|source| EngineError::DamagedStoreMarker {
            key: "meta/format",
            source,
        })?;
    if found > STORE_FORMAT_VERSION {
        return Err(EngineError::NewerStoreFormat {
            found,
            supported: STORE_FORMAT_VERSION,
        });
    }
    Ok(Some(found))
}

/// The store's partition count, and whether the build must write it.
struct ChosenPartitions {
    count: u16,
    write: bool,
}

/// Reads the store's partition count and checks it against the builder's: a new store takes
/// the builder's (or the default), an existing one keeps its own (one, for a store created
/// before partitions existed) and refuses another. Like the format marker, read before any
/// write, so a damaged or mismatched one refuses the build and changes nothing.
fn choose_partitions(
    storage: &dyn Storage,
    requested: Option<u16>,
) -> Result<ChosenPartitions, EngineError> {
    let stored = match storage.get(record::PARTITIONS_KEY)? {
        Some(bytes) => Some(record::decode_partitions(&bytes).map_err(|source| {
            EngineError::DamagedStoreMarker {
                key: "meta/partitions",
                source,
            }
        })?),
        // A store that has been owned before partitions existed has one.
        None if storage.get(record::EPOCH_KEY)?.is_some() => None,
        None => {
            return Ok(ChosenPartitions {
                count: requested.unwrap_or(partition::DEFAULT_PARTITIONS),
                write: true,
            });
        }
    };
    let count = stored.unwrap_or(1);
    if let Some(requested) = requested
        && requested != count
    {
        return Err(EngineError::PartitionsMismatch {
            stored: count,
            requested,
        });
    }
    Ok(ChosenPartitions {
        count,
        write: stored.is_none(),
    })
}

/// Increments the owner epoch with a conditional write; from then on every write of an older
/// engine fails its epoch condition. The same write sets the store format marker when it is
/// missing (a new store, or one written before the marker existed: format 1) or older. Raised
/// before any record is rewritten, so that from this write on an older build refuses the store
/// rather than read records it does not know; the rewrites that follow (format 3 folds the
/// lifecycle side keys into the records, `record_upgrade`) each have a marker of their own
/// written when they are complete, so a build that stops part-way is finished by the next.
///
/// It also writes the partition count when the store has none (`partitions.write`): a new
/// store, or one written before partitions existed, which has one.
fn take_ownership(
    storage: &dyn Storage,
    format: Option<u32>,
    partitions: &ChosenPartitions,
) -> Result<u64, EngineError> {
    let current = storage.get(record::EPOCH_KEY)?;
    let epoch = match &current {
        None => 0,
        Some(bytes) => {
            record::decode_epoch(bytes).map_err(|source| EngineError::DamagedStoreMarker {
                key: "meta/epoch",
                source,
            })?
        }
    };
    let next = epoch.checked_add(1).ok_or(EngineError::CounterOverflow {
        counter: "the owner epoch",
    })?;
    let mut batch = Batch::new();
    batch.put(record::EPOCH_KEY, record::encode_epoch(next));
    if format.is_none_or(|found| found < STORE_FORMAT_VERSION) {
        batch.put(
            record::FORMAT_KEY,
            record::encode_store_format(STORE_FORMAT_VERSION),
        );
    }
    if partitions.write {
        batch.put(
            record::PARTITIONS_KEY,
            record::encode_partitions(partitions.count),
        );
    }
    if current.is_none() {
        // A new store holds no workflows, so its indexes are complete from the start.
        batch.put(record::LIVE_INDEX_KEY, record::LIVE_INDEX_V1.to_vec());
        batch.put(
            record::VISIBILITY_INDEX_KEY,
            record::VISIBILITY_INDEX_V1.to_vec(),
        );
        batch.put(record::ORDER_INDEX_KEY, record::ORDER_INDEX_V2.to_vec());
        batch.put(record::LIFECYCLE_KEY, record::LIFECYCLE_V1.to_vec());
        batch.put(record::LIVE_COUNTERS_KEY, record::LIVE_COUNTERS_V1.to_vec());
        batch.put(
            record::PARTITION_KEYS_KEY,
            record::PARTITION_KEYS_DONE.to_vec(),
        );
    }
    storage
        .apply_if(
            &[Condition {
                key: record::EPOCH_KEY.to_vec(),
                expected: current,
            }],
            &batch,
        )
        .map_err(|e| match e {
            crate::storage::StorageError::ConditionFailed { .. } => {
                EngineError::Fenced { epoch: next }
            }
            other => EngineError::Storage(other),
        })?;
    Ok(next)
}
