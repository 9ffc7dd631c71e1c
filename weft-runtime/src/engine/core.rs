//! The state an engine shares with its tasks: storage, registry, the writer's queue, and which
//! workflows are in memory right now.
//!
//! A workflow is "active" while exactly one runner task drives it. Waking a workflow (a signal,
//! a timer, a cancellation) either pokes its active runner or claims it and spawns one, under one
//! lock, so a wake is never lost and a workflow never has two runners.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::activity::Resources;
use crate::codec::Payload;
use crate::storage::{Batch, Entry, Storage};

use super::admission::{Admission, Queued, Requests};
use super::clock::Clock;
use super::effects::Effect;
use super::error::EngineError;
use super::record::{self, WorkflowRecord};
use super::registry::Registry;
use super::revive::Revive;
use super::tasks::Tasks;
use super::timers::Timers;
use super::writer::{Check, Created, Expect, Guarded, ReadView, Signalled, WriteOp, WriterStats};

/// What [`Inner::queued_signal`] found in a workflow's signal queue.
pub(crate) enum QueuedSignal {
    /// A signal of the name asked for: its key and payload.
    Found(Vec<u8>, Payload),
    /// A signal record that does not decode, queued before any of that name: its key and why.
    Unreadable(Vec<u8>, record::RecordError),
}

/// A workflow driven by a runner task right now.
#[derive(Default)]
pub(crate) struct Active {
    /// Something may have arrived (a signal): re-check before going idle.
    pub poke: bool,
    /// What the runner shares with those who wake or cancel it.
    pub signals: Arc<RunnerSignals>,
    /// The runner and activity tasks, aborted on shutdown.
    pub tasks: Vec<AbortHandle>,
}

/// What a runner shares with those who wake or cancel it. Behind its own `Arc`, so a runner
/// takes it from the active map once per step and then reads and clears it without the map's
/// lock and a hash of the workflow id for every use (four per activity step before: 3 % of the
/// engine's instructions).
#[derive(Default)]
pub(crate) struct RunnerSignals {
    /// Cancellation was requested and not yet delivered.
    cancel: AtomicBool,
    /// Tells an in-flight activity it is cancelled.
    activity: Mutex<Option<watch::Sender<bool>>>,
    /// Wakes a runner that waits on an activity or a group, when something arrived.
    pub wake: Notify,
    /// The type of the workflow the runner drives, once it has read the record.
    workflow_type: OnceLock<&'static str>,
}

impl RunnerSignals {
    /// Asks for cancellation: the flag for the runner's next look, the in-flight activity told
    /// at once, the runner woken.
    pub fn request_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.stop_activity();
        self.wake.notify_one();
    }

    /// Sets the flag again for a cancellation a step took but did not deliver.
    pub fn keep_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Takes the cancellation request, if any: it is delivered once.
    pub fn take_cancel(&self) -> bool {
        self.cancel.swap(false, Ordering::SeqCst)
    }

    /// Whether a cancellation request waits to be delivered.
    pub fn cancel_pending(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Sets (or, with `None`, forgets) the in-flight activity's cancellation sender.
    pub fn set_activity(&self, cancel: Option<watch::Sender<bool>>) {
        *lock(&self.activity) = cancel;
    }

    /// Notes the type of the workflow the runner drives (see [`Inner::driven`]).
    pub fn set_workflow_type(&self, name: &'static str) {
        let _ = self.workflow_type.set(name);
    }

    /// Tells the in-flight activity, if any, it is cancelled.
    pub fn stop_activity(&self) {
        if let Some(cancel) = &*lock(&self.activity) {
            let _ = cancel.send(true);
        }
    }
}

/// Everything the engine handle and its tasks share.
pub(crate) struct Inner {
    pub storage: Arc<dyn Storage>,
    pub registry: Registry,
    pub resources: Resources,
    pub clock: Arc<dyn Clock>,
    pub payload_limit: usize,
    /// How long a caller's signal id is remembered (see `signal_ids`).
    pub signal_id_window: std::time::Duration,
    pub epoch: u64,
    pub writer_tx: mpsc::UnboundedSender<Queued>,
    /// Callers' requests waiting in the writer's queue, against their limit (see `admission`).
    pub requests: Requests,
    pub writer_done: Mutex<Option<oneshot::Receiver<()>>>,
    pub stats: Arc<WriterStats>,
    pub fenced: Arc<AtomicBool>,
    pub stopped: AtomicBool,
    pub active: Mutex<HashMap<String, Active>>,
    pub waiters: Mutex<HashMap<String, Vec<oneshot::Sender<Woken>>>>,
    /// Workflows whose runner stopped on an error, with it; cleared when a runner claims them.
    pub stalled: Mutex<HashMap<String, EngineError>>,
    pub timers: Arc<Timers>,
    pub background: Mutex<Vec<AbortHandle>>,
    /// Workflows to wake once storage answers again.
    pub revive: Arc<Revive>,
    /// The tasks holding this state (runners, the timer service), counted for shutdown.
    pub tasks: Arc<Tasks>,
    /// Makes generated workflow ids (see `ids`).
    pub ids: super::ids::Ulids,
    /// How many partitions the store's workflows are spread over (`meta/partitions`): what
    /// every per-workflow key's partition is computed with (see [`Inner::partition`]).
    pub partitions: super::partition::Partitions,
    pub next_signal: AtomicU64,
    /// Committed steps, for [`super::Engine::subscribe`].
    pub events: tokio::sync::broadcast::Sender<super::events::StepEvent>,
    /// Wakes the scheduler when a schedule's next fire may have moved earlier.
    pub schedules: Arc<tokio::sync::Notify>,
    /// What recovery at build found and did; set once, at the end of the build.
    pub recovery: std::sync::OnceLock<super::recovery::RecoveryReport>,
    /// When [`Inner::check_owner`] last read the stored epoch (see there).
    pub owner_checked: OwnerCheck,
    /// Damaged entries skipped by readers of the store (see `damage`).
    pub damage: super::damage::DamageLog,
}

/// How often [`Inner::check_owner`] reads the stored owner epoch at most.
const OWNER_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// What a waiter on a workflow (a `result` or an update caller) is told.
#[derive(Clone, Debug)]
pub(crate) enum Woken {
    /// Something it waits for may have changed (the workflow parked, or answered an update):
    /// read it again.
    Changed,
    /// The workflow finished with this record, as committed: the waiter needs no read.
    Finished(Arc<WorkflowRecord>),
    /// Its runner stopped on this error.
    Failed(EngineError),
}

/// When the stored owner epoch was last read, as time since `start` on the monotonic clock (a
/// rate limit on I/O, so not the engine's clock, which a test may hold still).
#[derive(Debug)]
pub(crate) struct OwnerCheck {
    start: std::time::Instant,
    /// Nanoseconds after `start` of the last read; `u64::MAX` before the first.
    last: AtomicU64,
}

impl Default for OwnerCheck {
    fn default() -> Self {
        OwnerCheck {
            start: std::time::Instant::now(),
            last: AtomicU64::new(u64::MAX),
        }
    }
}

impl OwnerCheck {
    /// Whether a read is due, recording it as made when it is.
    fn due(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        let last = self.last.load(Ordering::Relaxed);
        let recent =
            last != u64::MAX && u128::from(now.saturating_sub(last)) < OWNER_RECHECK.as_nanos();
        if recent {
            return false;
        }
        // Two callers may both find it due; one extra read is harmless.
        self.last.store(now, Ordering::Relaxed);
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent before it can panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes the next value of `counter`, refusing to wrap.
fn next(counter: &AtomicU64, name: &'static str) -> Result<u64, EngineError> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
        .map_err(|_| EngineError::CounterOverflow { counter: name })
}

/// The first queued signal named `name` for workflow `id`: its key and payload, or the first
/// unreadable signal queued before any of that name.
///
/// An unreadable signal may be the one the workflow waits for (its name is part of what does
/// not decode), so it is not skipped: skipping it would leave the workflow waiting for a signal
/// that arrived, or resume it with a later one out of order.
fn first_signal(
    storage: &dyn Storage,
    p: record::Partition,
    id: &str,
    name: &str,
) -> Result<Option<QueuedSignal>, EngineError> {
    let prefix = record::signal_queue_prefix(p, id);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.scan_prefix(&prefix, after.as_deref(), 64)?;
        let done = page.len() < 64;
        for (key, value) in page {
            match record::decode_record::<record::SignalRecord>(&value) {
                Ok(signal) if signal.name == name => {
                    return Ok(Some(QueuedSignal::Found(key, signal.payload)));
                }
                Ok(_) => {}
                Err(error) => return Ok(Some(QueuedSignal::Unreadable(key, error))),
            }
            after = Some(key);
        }
        if done {
            return Ok(None);
        }
    }
}

impl Inner {
    /// Fails when the engine may no longer act.
    pub fn check_live(&self) -> Result<(), EngineError> {
        if self.fenced.load(Ordering::SeqCst) {
            Err(EngineError::Fenced { epoch: self.epoch })
        } else if self.stopped.load(Ordering::SeqCst) {
            Err(EngineError::Shutdown)
        } else {
            Ok(())
        }
    }

    /// Fails when this engine no longer owns the store: the stored owner epoch is no longer its
    /// own. Called before each activity attempt; it reads the epoch at most once per 50 ms
    /// (a read per attempt cost ~9 % of the engine's instructions in W(300, 10)), so a deposed
    /// engine stops running activities within 50 ms of being deposed, not only when its next
    /// write fails. Finding itself
    /// deposed, it stops (see [`Inner::depose`]). A read that fails, or an epoch that does not
    /// decode, proves nothing: the caller goes on, and its writes stay fenced in the writer.
    pub async fn check_owner(&self) -> Result<(), EngineError> {
        self.check_live()?;
        if !self.owner_checked.due() {
            return Ok(());
        }
        let stored = match self.read_key(record::EPOCH_KEY.to_vec()).await {
            Ok(Some(bytes)) => record::decode_epoch(&bytes).ok(),
            Ok(None) | Err(_) => None,
        };
        match stored {
            Some(stored) if stored != self.epoch => {
                self.depose();
                Err(EngineError::Fenced { epoch: self.epoch })
            }
            _ => Ok(()),
        }
    }

    /// Stops an engine another one took the store from: `is_fenced` says so, every later call
    /// fails with [`EngineError::Fenced`], and every task stops (activities are told first).
    pub fn depose(&self) {
        self.fenced.store(true, Ordering::SeqCst);
        self.halt();
    }

    /// Fails when the engine may not take a new request: it may no longer act, or storage is
    /// failing and the writer holds the engine's own transitions for a retry (then the request
    /// would only queue behind them; it is refused with the storage error instead).
    pub fn check_accepting(&self) -> Result<(), EngineError> {
        self.check_live()?;
        match self.stats.fault() {
            Some(fault) => Err(EngineError::Storage(fault)),
            None => Ok(()),
        }
    }

    /// The error for an engine that stopped under a caller.
    pub fn stopped_error(&self) -> EngineError {
        self.check_live().err().unwrap_or(EngineError::Shutdown)
    }

    /// Refuses a payload over the limit, before it reaches storage.
    pub fn check_size(&self, what: &'static str, payload: &[u8]) -> Result<(), EngineError> {
        if payload.len() > self.payload_limit {
            Err(EngineError::PayloadTooLarge {
                what,
                size: payload.len(),
                limit: self.payload_limit,
            })
        } else {
            Ok(())
        }
    }

    /// Commits a transition through the writer and waits until it is durable. For writes valid
    /// whatever is stored meanwhile (a workflow's own transitions, made by its one runner); a
    /// write that is valid only in some stored state goes through [`Inner::commit_checked`].
    pub async fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        self.commit_sweeping(batch, None).await
    }

    /// [`Inner::commit`], also clearing every key under `sweep` (a finishing workflow's signal
    /// queue) as the writer sees it then, including keys put earlier in the same batch.
    pub async fn commit_sweeping(
        &self,
        batch: Batch,
        sweep: Option<Vec<u8>>,
    ) -> Result<(), EngineError> {
        self.check_live()?;
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send((
                WriteOp::Update {
                    batch,
                    sweep,
                    reply,
                },
                None,
            ))
            .map_err(|_| self.stopped_error())?;
        answer.await.map_err(|_| self.stopped_error())?
    }

    /// Commits a transition prepared from the values in `expect`, only if they still hold when
    /// the writer reaches it (read through the writes queued before it). For a transition whose
    /// preparation a checked write can make stale; [`Guarded::Conflict`] means nothing was
    /// written and the caller must read again.
    /// `sweep` as for [`Inner::commit_sweeping`].
    pub async fn commit_guarded(
        &self,
        expect: Vec<Expect>,
        batch: Batch,
        sweep: Option<Vec<u8>>,
    ) -> Result<Guarded, EngineError> {
        self.check_live()?;
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send((
                WriteOp::Guarded {
                    expect,
                    batch,
                    sweep,
                    reply,
                },
                None,
            ))
            .map_err(|_| self.stopped_error())?;
        answer.await.map_err(|_| self.stopped_error())?
    }

    /// Runs `check` in the writer, against storage and the writes queued before it, and commits
    /// what it returns. `Ok(true)` once those writes are durable, `Ok(false)` when it wrote
    /// nothing. Use this, not a read and then [`Inner::commit`], for any write that is only
    /// valid in some stored state: between a caller's read and its commit, another write may
    /// land (say, the workflow's final transition), and the writer is the only place that sees
    /// every write in order.
    pub async fn commit_checked(
        &self,
        check: impl FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static,
    ) -> Result<bool, EngineError> {
        self.commit_checked_then(check, Vec::new()).await
    }

    /// [`Inner::commit_checked`], and when `check` wrote something, runs `effects` once it is
    /// durable, in the engine (see `effects`): they happen even if the caller stops waiting.
    ///
    /// The request reaches the writer at the first poll, so dropping the future after it
    /// loses nothing: the write is decided and its effects run all the same.
    ///
    /// For the engine's own writes: never refused for a full queue. A caller's request goes
    /// through [`Inner::request_checked_then`].
    pub async fn commit_checked_then(
        &self,
        check: impl FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static,
        effects: Vec<Effect>,
    ) -> Result<bool, EngineError> {
        self.checked_then(check, effects, None).await
    }

    /// [`Inner::commit_checked_then`] for a caller's request (a signal, a cancellation, an
    /// update, a review decision, a retry): refused with [`EngineError::Overloaded`] when the
    /// writer's queue holds as many requests as it may (see `admission`).
    pub async fn request_checked_then(
        &self,
        check: impl FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static,
        effects: Vec<Effect>,
    ) -> Result<bool, EngineError> {
        self.check_accepting()?;
        let admission = self.requests.admit()?;
        self.checked_then(check, effects, Some(admission)).await
    }

    async fn checked_then(
        &self,
        check: impl FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static,
        effects: Vec<Effect>,
        admission: Option<Admission>,
    ) -> Result<bool, EngineError> {
        self.check_accepting()?;
        let check: Check = Box::new(check);
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send((
                WriteOp::Checked {
                    check,
                    effects,
                    reply,
                },
                admission,
            ))
            .map_err(|_| self.stopped_error())?;
        answer.await.map_err(|_| self.stopped_error())?
    }

    /// Commits a new workflow through the writer unless its id or idempotency key is taken.
    /// The writer runs `launch` once the creation is durable, or wakes the workflow it found
    /// existing; both happen whether or not the caller still waits (see `effects`).
    pub async fn create(
        &self,
        id: String,
        idempotency_key: Option<String>,
        batch: Batch,
        launch: Vec<Effect>,
    ) -> Result<Created, EngineError> {
        self.check_accepting()?;
        let admission = self.requests.admit()?;
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send((
                WriteOp::Create {
                    id,
                    idempotency_key,
                    batch,
                    launch,
                    reply,
                },
                Some(admission),
            ))
            .map_err(|_| self.stopped_error())?;
        answer.await.map_err(|_| self.stopped_error())?
    }

    /// Commits a signal-with-start through the writer: `start` and `signal` when no workflow
    /// `id` exists, `signal` alone when a live one does, decided and written in one batch. The
    /// writer runs `launch` when it started the workflow and wakes it when it signalled it,
    /// whether or not the caller still waits.
    pub async fn signal_with_start(
        &self,
        id: String,
        workflow_type: &'static str,
        start: Batch,
        signal: Batch,
        launch: Vec<Effect>,
    ) -> Result<Signalled, EngineError> {
        self.check_accepting()?;
        let admission = self.requests.admit()?;
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send((
                WriteOp::SignalWithStart {
                    id,
                    workflow_type,
                    start,
                    signal,
                    launch,
                    reply,
                },
                Some(admission),
            ))
            .map_err(|_| self.stopped_error())?;
        answer.await.map_err(|_| self.stopped_error())?
    }

    /// Runs `read` against storage on tokio's blocking pool, off the async worker threads.
    ///
    /// Every storage call blocks (a redb read may wait on the disk), and a task that blocks a
    /// worker stalls every other task queued on it: on a `current_thread` runtime, all of them.
    /// So async code of the engine reads storage only through this (or
    /// [`super::read_blocking`], for a larger read that needs the whole engine state); the
    /// synchronous readers below are for code already running off the workers (the writer
    /// thread, a closure passed here).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the read to finish unobserved; it writes nothing.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Storage) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let storage = Arc::clone(&self.storage);
        // Counted, so shutdown waits until no read holds the storage (for redb, the file).
        match self.tasks.spawn_blocking(move || read(&*storage)).await {
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

    /// The value at `key`, read off the async workers (see [`Inner::read`]).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn read_key(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, EngineError> {
        self.read(move |storage| Ok(storage.get(&key)?)).await
    }

    /// Every entry under `prefix`, read off the async workers (see [`Inner::read`]).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn read_prefix(&self, prefix: Vec<u8>) -> Result<Vec<Entry>, EngineError> {
        self.read(move |storage| Ok(storage.scan_prefix(&prefix, None, usize::MAX)?))
            .await
    }

    /// At most `limit` entries under `prefix` after `after`, read off the async workers (see
    /// [`Inner::read`]).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn read_page(
        &self,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let prefix = prefix.to_vec();
        self.read(move |storage| Ok(storage.scan_prefix(&prefix, after.as_deref(), limit)?))
            .await
    }

    /// The stored bytes of a workflow record, read off the async workers.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn load_raw(&self, id: &str) -> Result<Option<Vec<u8>>, EngineError> {
        self.read_key(record::workflow_key(self.partition(id), id))
            .await
    }

    /// A decoded workflow record, read off the async workers.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn load_record(&self, id: &str) -> Result<WorkflowRecord, EngineError> {
        let bytes = self
            .load_raw(id)
            .await?
            .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
        record::decode_record(&bytes).map_err(|source| EngineError::Record {
            key: format!("wf/{id}"),
            source,
        })
    }

    /// The first queued signal named `name` for workflow `id`, or the first unreadable one
    /// before it (see [`first_signal`]), read off the async workers.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`Inner::read`].
    pub async fn queued_signal(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<QueuedSignal>, EngineError> {
        let (p, id, name) = (self.partition(id), id.to_string(), name.to_string());
        self.read(move |storage| first_signal(storage, p, &id, &name))
            .await
    }

    /// The stored bytes of a workflow record (blocking: see [`Inner::read`]).
    pub fn read_raw(&self, id: &str) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .storage
            .get(&record::workflow_key(self.partition(id), id))?)
    }

    /// The partition of workflow `id`, which its keys carry.
    pub fn partition(&self, id: &str) -> record::Partition {
        self.partitions.of(id)
    }

    /// The next number of a signal this engine sends, refused once the counter is exhausted:
    /// with the epoch it orders a workflow's queue, so it must never wrap onto a queued key.
    pub fn next_signal_seq(&self) -> Result<u64, EngineError> {
        next(&self.next_signal, "this engine's signal sequence number")
    }

    /// Claims `id` for a new runner. `false` when a runner already drives it. For recovery,
    /// which runs before any call; a created workflow is claimed by its launch, once its
    /// creation is durable (see `effects`).
    pub fn claim(&self, id: &str) -> bool {
        let mut active = lock(&self.active);
        if active.contains_key(id) {
            return false;
        }
        active.insert(id.to_string(), Active::default());
        lock(&self.stalled).remove(id);
        true
    }

    /// Under one lock: pokes the runner of `id` (running `on_active` on its entry), or claims
    /// `id` when it has none. `true` means the caller claimed it and must spawn a runner.
    pub fn poke_or_claim(&self, id: &str, on_active: impl FnOnce(&mut Active)) -> bool {
        let mut active = lock(&self.active);
        match active.get_mut(id) {
            Some(entry) => {
                on_active(entry);
                false
            }
            None => {
                active.insert(id.to_string(), Active::default());
                drop(active);
                lock(&self.stalled).remove(id);
                true
            }
        }
    }

    /// Records a task driving `id`, so shutdown can abort it. Without an entry the task has
    /// either finished already or shutdown drained the map first; aborting is right in both.
    pub fn add_task(&self, id: &str, task: AbortHandle) {
        match lock(&self.active).get_mut(id) {
            Some(entry) => entry.tasks.push(task),
            None => task.abort(),
        }
    }

    /// The signals of the runner of `id` (fresh ones, shared with nobody, when it has none).
    pub fn runner_signals(&self, id: &str) -> Arc<RunnerSignals> {
        self.with_active(id, |entry| Arc::clone(&entry.signals))
            .unwrap_or_default()
    }

    /// Runs `f` on the active entry of `id`, if there is one.
    pub fn with_active<T>(&self, id: &str, f: impl FnOnce(&mut Active) -> T) -> Option<T> {
        lock(&self.active).get_mut(id).map(f)
    }

    /// Whether a runner of this engine drives `id` now, as a workflow of `expected_type` when
    /// one is given. A result waiter for such a workflow need not read the store: the runner's
    /// commits tell it when the workflow finishes or parks, and the runner tells it when it lets
    /// go (after which the waiter reads the store), so its answer is the stored one.
    pub fn driven(&self, id: &str, expected_type: Option<&str>) -> bool {
        self.with_active(id, |entry| match expected_type {
            None => true,
            // Until the runner has read the record its type is unknown: read the store, which
            // refuses a wrong type at once.
            Some(expected) => entry.signals.workflow_type.get() == Some(&expected),
        })
        .unwrap_or(false)
    }

    /// Ends the runner of `id` unless something arrived meanwhile; `false` means "look again".
    pub fn try_release(&self, id: &str) -> bool {
        let mut active = lock(&self.active);
        match active.get_mut(id) {
            Some(entry) if entry.poke || entry.signals.cancel_pending() => {
                entry.poke = false;
                false
            }
            _ => {
                active.remove(id);
                true
            }
        }
    }

    /// Ends the runner of `id`, which found nothing it can run, unless a wake arrived meanwhile
    /// (say, a retry restored the record after the runner read it); `false` means "read
    /// again". A cancellation alone does not keep it: nothing stored can take one.
    pub fn release_unless_poked(&self, id: &str) -> bool {
        let mut active = lock(&self.active);
        match active.get_mut(id) {
            Some(entry) if entry.poke => {
                entry.poke = false;
                false
            }
            _ => {
                active.remove(id);
                true
            }
        }
    }

    /// Ends the runner of `id` whatever arrived: it has finished, or failed.
    pub fn release(&self, id: &str) {
        lock(&self.active).remove(id);
    }

    /// Registers interest in `id` finishing or failing.
    pub fn wait_for(&self, id: &str) -> Result<oneshot::Receiver<Woken>, EngineError> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = lock(&self.waiters);
        // Checked under the lock shutdown takes to clear the waiters, so none is missed.
        self.check_live()?;
        let list = waiters.entry(id.to_string()).or_default();
        // Drop the senders of callers that stopped waiting, so abandoned waits do not pile up.
        list.retain(|tx| !tx.is_closed());
        list.push(tx);
        Ok(rx)
    }

    /// Records that the runner of `id` stopped on `error`, and tells the waiters.
    ///
    /// A storage error is a fault of the moment, not of the workflow: it is not recorded or
    /// reported (a waiter would otherwise get an error that is stale once storage heals), and
    /// the workflow is woken again once storage answers (see [`super::revive`]).
    pub fn stall(&self, id: &str, error: EngineError) {
        if matches!(error, EngineError::Storage(_)) && self.check_live().is_ok() {
            self.release(id);
            self.revive.note(id);
            return;
        }
        lock(&self.stalled).insert(id.to_string(), error.clone());
        self.release(id);
        self.notify(id, || Woken::Failed(error));
    }

    /// The error the runner of `id` stopped on, if it stopped and nothing resumed it since.
    pub fn stalled(&self, id: &str) -> Option<EngineError> {
        lock(&self.stalled).get(id).cloned()
    }

    /// Wakes everyone waiting on `id` with what `woken` makes; it runs only when someone
    /// waits, so a finished record is not copied for nobody.
    pub fn notify(&self, id: &str, woken: impl FnOnce() -> Woken) {
        let Some(list) = lock(&self.waiters).remove(id) else {
            return;
        };
        let woken = woken();
        for tx in list {
            let _ = tx.send(woken.clone());
        }
    }

    /// Stops everything: aborts tasks, answers waiters with a shutdown, stops the writer.
    pub fn halt(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let _waiters = lock(&self.waiters).drain().count();
        }
        for entry in lock(&self.active).drain().map(|(_, e)| e) {
            // An activity's cancellation fires before its task is aborted, so work it handed
            // elsewhere (watching `ActivityContext::cancelled`) stops too. A group's branches
            // are told when their runner is dropped.
            entry.signals.stop_activity();
            for task in entry.tasks {
                task.abort();
            }
        }
        for task in lock(&self.background).drain(..) {
            task.abort();
        }
        let _ = self.writer_tx.send((WriteOp::Stop, None));
    }
}
