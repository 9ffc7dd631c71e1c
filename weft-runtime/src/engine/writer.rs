//! Grouped commits: one writer thread gathers the transitions of many workflows into one
//! conditional batch, fenced on the owner epoch, and answers each when the batch is durable.
//!
//! The writer is the engine's only writer, so the checks it makes before a batch (is this id
//! free, was this idempotency key used) cannot race with another write of the same engine, and
//! the epoch condition rules out every other engine.
//!
//! A check made outside the writer can: a caller that reads "live" and then commits may commit
//! after another write made its read stale. So every write that depends on what is stored
//! (a signal needs a live workflow, an update is queued once, a review is decided once) is a
//! [`WriteOp::Checked`]: its check runs here, in batch order, against storage overlaid with the
//! writes accepted earlier in the batch being built ([`ReadView`]).
//!
//! A runner's transition is prepared from what it read before it reached the writer. When that
//! read can be made stale by a checked write (a review decision marks the review record the
//! runner read as decided), the transition is a [`WriteOp::Guarded`]: it carries the values it
//! was prepared from, checked through the same [`ReadView`], and is refused whole
//! ([`Guarded::Conflict`]) when one of them changed, so the runner prepares it again.
//!
//! What follows a caller's write (run the workflow it created, wake the one it signalled) rides
//! on the write as [`Effect`]s, run here once the batch is durable and before any answer (see
//! `effects`), so a caller that stops waiting strands nothing. Every answer that rests on a
//! write of the batch being built (an id or key created earlier in it, a workflow finished
//! earlier in it) waits for that batch too, and becomes its failure if it fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::storage::{Batch, Condition, Storage, StorageError, Write};

use super::admission::Queued;
use super::backoff::Backoff;
use super::cancel_fold::{CancelFold, Staged};
use super::effects::Effect;
use super::error::EngineError;
use super::partition::Partitions;
use super::record::{self, IdempotencyRecord};
use super::visibility::{Counters, StagedCounts};

/// Most transitions put in one batch.
const MAX_BATCH: usize = 1024;

/// How long the writer waits for more transitions before a commit, when the previous batch
/// grouped several. In a busy engine the workflows of the batch just committed come back within
/// tens of microseconds (one step and an activity dispatch). Without the wait, a writer that
/// commits whatever queued during the previous commit settles into two alternating groups, each
/// waiting for the other's fsync; waiting merges them, so each fsync carries about twice the
/// transitions. It stops waiting as soon as the batch is as large as the previous one, and a lone
/// workflow (previous batch of one) never waits.
const LINGER: Duration = Duration::from_micros(200);
/// How often the writer looks for more transitions while it waits.
const LINGER_POLL: Duration = Duration::from_micros(20);

/// What a create found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Created {
    /// The workflow was created.
    New,
    /// The idempotency key already names this workflow; nothing was written.
    Existing(String),
    /// The id is taken by a workflow started without this idempotency key; nothing was written.
    IdTaken,
}

/// What a signal-with-start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signalled {
    /// Created the workflow, with the signal queued.
    Started,
    /// Queued the signal for the live workflow.
    Existing,
}

/// A request to the writer.
pub(crate) enum WriteOp {
    /// Writes a new workflow unless its id or idempotency key is taken. `launch` runs when it
    /// is created; a workflow found existing is woken instead (it may have been created by a
    /// commit whose success was never reported, with nothing set in motion).
    Create {
        id: String,
        idempotency_key: Option<String>,
        batch: Batch,
        launch: Vec<Effect>,
        reply: oneshot::Sender<Result<Created, EngineError>>,
    },
    /// Signal-with-start: writes `start` and `signal` when no workflow `id` exists, only
    /// `signal` when a live one of `workflow_type` does, nothing otherwise. `launch` runs when
    /// it starts the workflow; when it signals a live one, that one is woken.
    SignalWithStart {
        id: String,
        workflow_type: &'static str,
        start: Batch,
        signal: Batch,
        launch: Vec<Effect>,
        reply: oneshot::Sender<Result<Signalled, EngineError>>,
    },
    /// Writes a transition.
    Update {
        batch: Batch,
        /// A workflow's final transition: its signal queue, cleared by the writer.
        sweep: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    /// Writes a transition only if every expectation still holds, read through the batch; when
    /// one does not, writes nothing of it and answers [`Guarded::Conflict`]. Answers once the
    /// batch it was decided in is durable (or failed), like a check.
    Guarded {
        expect: Vec<Expect>,
        batch: Batch,
        /// As for [`WriteOp::Update`].
        sweep: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<Guarded, EngineError>>,
    },
    /// Runs `check` in the writer and writes what it returns. Answers `Ok(true)` once those
    /// writes are durable, `Ok(false)` when it returned nothing to write, or its error; a
    /// check's answer waits for the batch it ran in, since it may have read that batch's writes.
    /// `effects` run when the check wrote something.
    Checked {
        check: Check,
        effects: Vec<Effect>,
        reply: oneshot::Sender<Result<bool, EngineError>>,
    },
    /// Stops after the requests queued before it.
    Stop,
}

/// A value a [`WriteOp::Guarded`] transition was prepared from: `key` must still hold `value`
/// (`None`: must be absent) when the writer reaches the transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    /// The key read.
    pub key: Vec<u8>,
    /// What it held when read.
    pub value: Option<Vec<u8>>,
}

/// What a [`WriteOp::Guarded`] transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarded {
    /// Every expectation held; the transition is durable.
    Written,
    /// An expectation failed: a write the transition was not prepared from came first. Nothing
    /// of it was written; read again and prepare it again.
    Conflict,
}

/// A check run by the writer: the writes to add (`None` or empty: write nothing, answer
/// `Ok(false)`), or an error answered to the caller without writing.
pub(crate) type Check =
    Box<dyn FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static>;

/// What a [`Check`] reads: storage as it will be once the writes accepted earlier in the current
/// batch are applied.
///
/// This is what makes a check linearizable with the writes around it. Take a signal and the
/// workflow's final transition: a signal checked before the final transition, in an earlier
/// batch or earlier in the same one, was accepted while the workflow was live; one checked
/// after it, even in the same batch, reads the terminal record and is refused with `Finished`.
/// Either way nothing is accepted that the engine's order of writes contradicts.
pub(crate) trait ReadView {
    /// The value `key` holds after the writes accepted so far.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// The workflow record of `id` (of partition `p`), decoded; `NotFound` when there is none.
    fn workflow(
        &self,
        p: record::Partition,
        id: &str,
    ) -> Result<record::WorkflowRecord, EngineError> {
        let bytes = self
            .get(&record::workflow_key(p, id))?
            .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
        record::decode_record(&bytes).map_err(|source| EngineError::Record {
            key: format!("wf/{id}"),
            source,
        })
    }
}

/// Where each key written so far in a batch was last written. Built only when a batch holds an
/// op that reads ([`WriteOp::Checked`], [`WriteOp::SignalWithStart`], [`WriteOp::Guarded`]), so a batch of plain
/// transitions never pays for it.
#[derive(Default)]
struct Overlay {
    last_write: HashMap<Vec<u8>, usize>,
    /// How many writes of the batch are indexed.
    indexed: usize,
}

impl Overlay {
    /// Indexes the writes added to `batch` since the last call.
    fn catch_up(&mut self, batch: &Batch) {
        for (at, write) in batch.writes.iter().enumerate().skip(self.indexed) {
            let (Write::Put(key, _) | Write::Delete(key)) = write;
            self.last_write.insert(key.clone(), at);
        }
        self.indexed = batch.writes.len();
    }
}

/// Storage seen through the writes of the batch being built.
struct BatchView<'a> {
    storage: &'a dyn Storage,
    batch: &'a Batch,
    overlay: &'a Overlay,
}

impl ReadView for BatchView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        match self.overlay.last_write.get(key) {
            Some(&at) => Ok(match &self.batch.writes[at] {
                Write::Put(_, value) => Some(value.clone()),
                Write::Delete(_) => None,
            }),
            None => Ok(self.storage.get(key)?),
        }
    }
}

/// Runs `f` on a view of `storage` under the writes of `batch` so far, building the overlay on
/// first use.
fn with_view<T>(
    storage: &dyn Storage,
    batch: &Batch,
    overlay: &mut Option<Overlay>,
    f: impl FnOnce(&dyn ReadView) -> T,
) -> T {
    let overlay = overlay.get_or_insert_with(Overlay::default);
    overlay.catch_up(batch);
    f(&BatchView {
        storage,
        batch,
        overlay,
    })
}

/// The signal queues (`sig/<id>\0`) that may hold a signal: those stored when this writer
/// started, and those it has put a signal into since.
///
/// A workflow's final transition clears its queue, and the writer alone does it, as it commits
/// the transition (see [`swept`]): it reads storage for the queues named here alone, so the
/// common final transition (no signal ever queued) costs no read in the writer, the engine's
/// one serial stage, and none in the runner either.
#[derive(Debug, Default)]
pub(crate) struct SignalQueues {
    queues: std::collections::HashSet<Vec<u8>>,
    /// The queues stored at start could not be listed: every final transition reads its queue.
    unknown: bool,
}

impl SignalQueues {
    /// The queues stored in `storage`, listed with one short read per queue (a queue's first
    /// key, then a jump past the queue), so the cost follows the workflows with queued signals,
    /// not the signals. If storage fails to answer, every final transition reads its queue.
    fn load(storage: &dyn Storage) -> SignalQueues {
        let mut queues = std::collections::HashSet::new();
        let end = crate::storage::prefix_end(record::SIGNAL_PREFIX);
        let mut start = record::SIGNAL_PREFIX.to_vec();
        loop {
            let first = storage.scan(
                std::ops::Bound::Included(&start),
                end.as_deref()
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                1,
            );
            let key = match first {
                Ok(mut entries) => match entries.pop() {
                    Some((key, _)) => key,
                    None => break,
                },
                Err(_) => {
                    return SignalQueues {
                        queues,
                        unknown: true,
                    };
                }
            };
            let Some(queue) = queue_of(&key) else {
                // Not a queue key (no NUL after the id): step past it alone.
                start = key;
                start.push(0);
                continue;
            };
            // The first key after every `sig/<id>\0…` key: the queue prefix with its NUL
            // raised to 0x01.
            start = queue.clone();
            if let Some(last) = start.last_mut() {
                *last = 1;
            }
            queues.insert(queue);
        }
        SignalQueues {
            queues,
            unknown: false,
        }
    }

    /// Notes the queues `writes` put signals into.
    fn note(&mut self, writes: &Batch) {
        for write in &writes.writes {
            if let Write::Put(key, _) = write
                && let Some(queue) = queue_of(key)
            {
                self.queues.insert(queue);
            }
        }
    }
}

/// The queue prefix (`sig/<id>\0`) of signal key `key`, if it is one.
fn queue_of(key: &[u8]) -> Option<Vec<u8>> {
    record::signal_queue_of(key).map(<[u8]>::to_vec)
}

/// The deletes that clear signal queue `queue` for a workflow's final transition: the signals
/// put earlier in the batch being built, and, when this writer has written to the queue, those
/// stored. A signal accepted after the runner read the queue to prepare the transition (checked
/// while the workflow was still live) is so not left behind; one checked after the final
/// transition reads the finished record and is refused.
fn swept(
    storage: &dyn Storage,
    batch: &Batch,
    queue: Option<&[u8]>,
    queues: &mut SignalQueues,
) -> Result<Batch, EngineError> {
    let mut deletes = Batch::new();
    let Some(queue) = queue else {
        return Ok(deletes);
    };
    if queues.queues.remove(queue) || queues.unknown {
        for (key, _) in storage.scan_prefix(queue, None, usize::MAX)? {
            deletes.delete(key);
        }
        for write in &batch.writes {
            if let Write::Put(key, _) = write
                && key.starts_with(queue)
            {
                deletes.delete(key.clone());
            }
        }
    }
    Ok(deletes)
}

/// What the writer shares with the engine: counters behind [`super::EngineStats`], and the
/// storage fault it is riding out.
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    pub batches: AtomicU64,
    pub transitions: AtomicU64,
    /// Failed commit attempts, retries included.
    pub failed_batches: AtomicU64,
    /// Finished workflows purged by retention sweeps.
    pub purged: AtomicU64,
    /// The engine's own transitions held for a retry because storage refused them.
    pub held: AtomicU64,
    /// The error of the last failed commit while transitions are held for a retry; `None` once
    /// a commit lands. New requests are refused with it meanwhile.
    pub fault: Mutex<Option<StorageError>>,
}

impl WriterStats {
    /// The storage error the writer is riding out, if it holds transitions for a retry.
    pub fn fault(&self) -> Option<StorageError> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_fault(&self, fault: Option<StorageError>, held: usize) {
        self.held.store(held as u64, Ordering::SeqCst);
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }
}

impl WriteOp {
    /// Whether this is a caller's request (a start, a signal, a cancellation, ...), as opposed
    /// to the engine's own transition of work it acknowledged. A request may be refused (with a
    /// storage fault); a transition is retried until it lands.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            WriteOp::Create { .. } | WriteOp::SignalWithStart { .. } | WriteOp::Checked { .. }
        )
    }

    /// How many writes it brings (a check's are known only when it runs; a final transition's
    /// sweep adds a few): what the batch reserves room for.
    fn write_count(&self) -> usize {
        match self {
            WriteOp::Create { batch, .. }
            | WriteOp::Update { batch, .. }
            | WriteOp::Guarded { batch, .. } => batch.writes.len(),
            WriteOp::SignalWithStart { start, signal, .. } => {
                start.writes.len() + signal.writes.len()
            }
            WriteOp::Checked { .. } | WriteOp::Stop => 0,
        }
    }

    /// Answers a request with `error`. Anything else is dropped unanswered (its waiter sees the
    /// engine stop).
    fn refuse(self, error: &EngineError) {
        match self {
            WriteOp::Create { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::SignalWithStart { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Checked { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Update { .. } | WriteOp::Guarded { .. } | WriteOp::Stop => {}
        }
    }
}

/// The writer: one thread, the engine's only writer.
struct Writer<'a, F: Fn(), E: Fn(Vec<Effect>)> {
    storage: &'a dyn Storage,
    condition: [Condition; 1],
    epoch: u64,
    stats: &'a WriterStats,
    fenced: &'a AtomicBool,
    on_fenced: F,
    run_effects: E,
    queues: SignalQueues,
    counters: Counters,
    cancels: CancelFold,
    /// The store's partitioning: the partition of a workflow a batch creates or reads.
    partitions: Partitions,
}

/// Runs the writer loop on the calling (dedicated) thread until [`WriteOp::Stop`] or until every
/// sender is gone. `on_fenced` runs once, when the epoch condition fails; `run_effects` runs the
/// effects of the writes accepted in each batch once it is durable, before any answer.
///
/// A batch that storage refuses is not given up: the engine's own transitions in it (runner
/// steps, which callers were told would happen) are retried with [`Backoff`] until they land,
/// the engine is fenced, or it stops. A request in it (a start, a signal) is answered with the
/// storage error, but only once the writer knows nothing of it was written (see [`Landed`]);
/// requests that arrive while transitions are held are refused with that error at once.
pub(crate) fn run(
    storage: Arc<dyn Storage>,
    (epoch, partitions): (u64, Partitions),
    mut rx: mpsc::UnboundedReceiver<Queued>,
    stats: Arc<WriterStats>,
    fenced: Arc<AtomicBool>,
    on_fenced: impl Fn(),
    run_effects: impl Fn(Vec<Effect>),
) {
    let mut writer = Writer {
        storage: &*storage,
        condition: [Condition {
            key: record::EPOCH_KEY.to_vec(),
            expected: Some(record::encode_epoch(epoch)),
        }],
        epoch,
        stats: &stats,
        fenced: &fenced,
        on_fenced,
        run_effects,
        queues: SignalQueues::load(&*storage),
        counters: Counters::default(),
        cancels: CancelFold::new(partitions),
        partitions,
    };
    let mut stop = false;
    // The size of the previous batch: whether the engine is busy enough to wait for more.
    let mut previous = 0;
    // After a failure: transitions to commit first (their batch did not land), or a whole batch
    // whose outcome is unknown, to commit again as it is.
    let mut carry: Vec<WriteOp> = Vec::new();
    let mut held: Option<Built> = None;
    let mut backoff = Backoff::new(epoch);
    // Whether the last commit failed: wait before the next attempt.
    let mut failing = false;
    loop {
        let mut ops = std::mem::take(&mut carry);
        if failing {
            let error = stats
                .fault()
                .unwrap_or_else(|| StorageError::backend("storage failed"));
            stop |= wait_out(&mut rx, backoff.next_delay(), &mut ops, &error);
            if stop {
                // What is held is dropped unanswered: its waiters see the engine stop, and
                // the workflows resume from their last commit at the next build.
                stats.set_fault(None, 0);
                return;
            }
        } else if held.is_none() && ops.is_empty() {
            if stop {
                return;
            }
            // Taken off the queue: its admission (if a caller's request) is given back.
            let Some((first, _)) = rx.blocking_recv() else {
                return;
            };
            ops.push(first);
            drain(&mut rx, &mut ops);
            if previous > 1 {
                // Wait for the rest of the previous batch's workflows, but no longer than LINGER.
                let start = Instant::now();
                while ops.len() < previous.min(MAX_BATCH) && start.elapsed() < LINGER {
                    std::thread::sleep(LINGER_POLL);
                    drain(&mut rx, &mut ops);
                }
            }
            previous = ops.len();
            if let Some(at) = ops.iter().position(|op| matches!(op, WriteOp::Stop)) {
                // Requests behind the stop are dropped unanswered: their callers see a shutdown.
                ops.truncate(at);
                stop = true;
            }
        }
        if fenced.load(Ordering::SeqCst) {
            held = None;
            fail_all(ops, EngineError::Fenced { epoch });
            continue;
        }
        let built = match held.take() {
            Some(built) => {
                // Requests that arrived meanwhile were refused; transitions wait their turn.
                carry = ops;
                built
            }
            None => writer.build(ops),
        };
        failing = match writer.land(built) {
            Landing::Done => false,
            Landing::Retry(mut ops, error) => {
                // Only requests failed (answered): the next request simply tries again.
                let failing = !ops.is_empty();
                if failing {
                    stats.set_fault(Some(error), ops.len() + carry.len());
                }
                ops.append(&mut carry);
                carry = ops;
                failing
            }
            Landing::Hold(built, error) => {
                stats.set_fault(Some(error), built.transitions() + carry.len());
                held = Some(built);
                true
            }
        };
        if !failing {
            backoff.reset();
            if stats.held.load(Ordering::SeqCst) > 0 {
                stats.set_fault(None, 0);
            }
        }
    }
}

/// Waits `delay` before a retry, taking in what is queued meanwhile: requests are refused with
/// `error`, transitions join `ops`. `true` when a stop arrived.
fn wait_out(
    rx: &mut mpsc::UnboundedReceiver<Queued>,
    delay: Duration,
    ops: &mut Vec<WriteOp>,
    error: &StorageError,
) -> bool {
    // Requests are answered within a slice, not after the whole delay.
    const SLICE: Duration = Duration::from_millis(10);
    let refusal = EngineError::Storage(error.clone());
    let until = Instant::now() + delay;
    loop {
        loop {
            match rx.try_recv() {
                Ok((WriteOp::Stop, _)) => return true,
                Ok((op, _)) if op.is_request() => op.refuse(&refusal),
                Ok((op, _)) => ops.push(op),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep(SLICE.min(until - now));
    }
}

/// Moves what is queued into `ops`, up to [`MAX_BATCH`], without waiting.
fn drain(rx: &mut mpsc::UnboundedReceiver<Queued>, ops: &mut Vec<WriteOp>) {
    while ops.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok((op, _)) => ops.push(op),
            Err(_) => break,
        }
    }
}

/// An op decided in the batch being built, with its answer, sent when the batch is durable
/// (or replaced by its failure).
enum Accepted {
    /// A create and what it found; `Existing` and `IdTaken` here name an id or key created
    /// earlier in this batch, so they rest on the batch landing.
    Create(oneshot::Sender<Result<Created, EngineError>>, Created),
    /// A signal-with-start and what it did, or its refusal (which may rest on a write of this
    /// batch, say the workflow's final transition).
    SignalWithStart(
        oneshot::Sender<Result<Signalled, EngineError>>,
        Result<Signalled, EngineError>,
    ),
    /// A transition: its reply, the range of its own writes in the batch, its sweep, and its
    /// writes as sent when folding cancellation requests changed them (see `cancel_fold`).
    Update {
        reply: oneshot::Sender<Result<(), EngineError>>,
        writes: std::ops::Range<usize>,
        sweep: Option<Vec<u8>>,
        original: Option<Batch>,
    },
    /// A guarded transition and what it did, answered when the batch is durable. Written: the
    /// range of its writes in the batch; a conflict keeps its writes aside, in case the batch
    /// fails and it must be decided again.
    Guarded {
        reply: oneshot::Sender<Result<Guarded, EngineError>>,
        done: Guarded,
        expect: Vec<Expect>,
        writes: Result<std::ops::Range<usize>, Batch>,
        sweep: Option<Vec<u8>>,
        /// As for an update.
        original: Option<Batch>,
    },
    /// A check's reply and its answer, sent when the batch is durable.
    Checked(
        oneshot::Sender<Result<bool, EngineError>>,
        Result<bool, EngineError>,
    ),
}

impl Accepted {
    /// Whether this counts as a transition in the stats: a check that wrote nothing does not.
    fn counts(&self) -> bool {
        !matches!(
            self,
            Accepted::Checked(_, Ok(false) | Err(_))
                | Accepted::Guarded {
                    done: Guarded::Conflict,
                    ..
                }
                | Accepted::Create(_, Created::Existing(_) | Created::IdTaken)
                | Accepted::SignalWithStart(_, Err(_))
        )
    }

    /// Whether this is one of the engine's own transitions.
    fn is_transition(&self) -> bool {
        matches!(self, Accepted::Update { .. } | Accepted::Guarded { .. })
    }

    /// Answers as the landed batch decided.
    fn succeed(self) {
        match self {
            Accepted::Create(reply, created) => {
                let _ = reply.send(Ok(created));
            }
            Accepted::Update { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            Accepted::SignalWithStart(reply, done) => {
                let _ = reply.send(done);
            }
            Accepted::Guarded { reply, done, .. } => {
                let _ = reply.send(Ok(done));
            }
            Accepted::Checked(reply, answer) => {
                let _ = reply.send(answer);
            }
        }
    }

    /// Answers with the batch's failure: even a refusal or a conflict, which may rest on a
    /// write of the batch that never landed.
    fn fail(self, error: &EngineError) {
        match self {
            Accepted::Create(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::Update { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::SignalWithStart(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::Guarded { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::Checked(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }

    /// A transition of a batch that did not land, as the op to decide again; a request is
    /// answered with `error` instead.
    fn retry(self, batch: &Batch, error: &EngineError) -> Option<WriteOp> {
        let writes_of = |range: std::ops::Range<usize>| Batch {
            writes: batch.writes[range].to_vec(),
        };
        match self {
            // Decided again as sent: folded again against what the writer knows then.
            Accepted::Update {
                reply,
                writes,
                sweep,
                original,
            } => Some(WriteOp::Update {
                batch: original.unwrap_or_else(|| writes_of(writes)),
                sweep,
                reply,
            }),
            Accepted::Guarded {
                reply,
                expect,
                writes,
                sweep,
                original,
                ..
            } => Some(WriteOp::Guarded {
                expect,
                batch: original.unwrap_or_else(|| writes.map_or_else(|aside| aside, writes_of)),
                sweep,
                reply,
            }),
            request => {
                request.fail(error);
                None
            }
        }
    }
}

/// A batch built from ops, with who to answer and what to run when it lands.
struct Built {
    batch: Batch,
    accepted: Vec<Accepted>,
    /// The effects of the accepted writes, in batch order, run once the batch is durable.
    effects: Vec<Effect>,
    /// When the counters that follow from it are in `batch` already (it was tried before):
    /// what staging them changed, to undo when its ops are decided again.
    staged: Option<StagedCounts>,
    /// What it tells the writer of cancellation requests, kept once it lands.
    cancels: Staged,
}

impl Built {
    fn transitions(&self) -> usize {
        self.accepted.iter().filter(|a| a.is_transition()).count()
    }
}

/// What became of a built batch.
enum Landing {
    /// Landed (or fenced): everyone was answered.
    Done,
    /// It did not land: its requests were answered with the error; these transitions are to be
    /// decided and committed again.
    Retry(Vec<WriteOp>, StorageError),
    /// Whether it landed is unknown (storage fails reads too): commit it again as it is.
    Hold(Built, StorageError),
}

/// Whether a batch whose commit reported a failure is in storage all the same.
enum Landed {
    /// Every key holds what the batch wrote: it landed (the acknowledgement was lost), or
    /// writing it changes nothing.
    Yes,
    /// Some key does not: nothing of it landed (a batch lands whole or not at all).
    No,
    /// The epoch is no longer this engine's.
    Fenced,
}

impl<F: Fn(), E: Fn(Vec<Effect>)> Writer<'_, F, E> {
    /// Decides each op against storage and the writes before it, and builds the batch.
    fn build(&mut self, ops: Vec<WriteOp>) -> Built {
        let storage = self.storage;
        let queues = &mut self.queues;
        let run_effects = &self.run_effects;
        let fold = &self.cancels;
        let partitions = self.partitions;
        let mut cancels = Staged::default();
        // Sized for every op's writes at once: appended op by op, it would grow many times.
        let mut batch = Batch {
            writes: Vec::with_capacity(ops.iter().map(WriteOp::write_count).sum()),
        };
        let mut accepted = Vec::with_capacity(ops.len());
        let mut effects = Vec::new();
        // Ids and idempotency keys created earlier in this batch, not yet visible in storage.
        let mut new_ids: HashMap<String, ()> = HashMap::new();
        let mut new_keys: HashMap<String, String> = HashMap::new();
        // Built at the first op that reads; None for a batch of plain transitions.
        let mut overlay: Option<Overlay> = None;
        for op in ops {
            match op {
                WriteOp::Create {
                    id,
                    idempotency_key,
                    batch: writes,
                    launch,
                    reply,
                } => match check_create(
                    storage,
                    (partitions.of(&id), &id),
                    idempotency_key.as_deref(),
                    &new_ids,
                    &new_keys,
                ) {
                    Ok(Created::New) => {
                        new_ids.insert(id.clone(), ());
                        if let Some(key) = idempotency_key {
                            new_keys.insert(key, id);
                        }
                        batch.extend(writes);
                        effects.extend(launch);
                        accepted.push(Accepted::Create(reply, Created::New));
                    }
                    // The run this key or id names is created earlier in this very batch (and
                    // launched by it): answer once it is durable, so the caller can read it and
                    // is never told of a workflow that then fails to land.
                    Ok(Created::Existing(existing)) if new_ids.contains_key(&existing) => {
                        accepted.push(Accepted::Create(reply, Created::Existing(existing)));
                    }
                    Ok(Created::IdTaken) if new_ids.contains_key(&id) => {
                        accepted.push(Accepted::Create(reply, Created::IdTaken));
                    }
                    // Stored already: make sure it is driven, then answer.
                    Ok(Created::Existing(existing)) => {
                        run_effects(vec![Effect::Wake(existing.clone())]);
                        let _ = reply.send(Ok(Created::Existing(existing)));
                    }
                    Ok(Created::IdTaken) => {
                        run_effects(vec![Effect::Wake(id)]);
                        let _ = reply.send(Ok(Created::IdTaken));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                WriteOp::SignalWithStart {
                    id,
                    workflow_type,
                    start,
                    signal,
                    launch,
                    reply,
                } => match with_view(storage, &batch, &mut overlay, |view| {
                    check_signal_with_start(view, (partitions.of(&id), &id), workflow_type)
                }) {
                    Ok(Signalled::Started) => {
                        new_ids.insert(id, ());
                        batch.extend(start);
                        queues.note(&signal);
                        batch.extend(signal);
                        effects.extend(launch);
                        accepted.push(Accepted::SignalWithStart(reply, Ok(Signalled::Started)));
                    }
                    Ok(Signalled::Existing) => {
                        queues.note(&signal);
                        batch.extend(signal);
                        effects.push(Effect::Wake(id));
                        accepted.push(Accepted::SignalWithStart(reply, Ok(Signalled::Existing)));
                    }
                    // Answered with the batch: the refusal may rest on a write of it.
                    Err(e) => accepted.push(Accepted::SignalWithStart(reply, Err(e))),
                },
                WriteOp::Update {
                    batch: writes,
                    sweep,
                    reply,
                } => {
                    // A sweep that cannot read is decided with the batch: a transition is never
                    // refused, so a failed read fails the batch it would have joined.
                    let deletes = match swept(storage, &batch, sweep.as_deref(), queues) {
                        Ok(deletes) => deletes,
                        Err(_) => unreadable(&mut batch),
                    };
                    let (writes, original) = match fold_writes(
                        fold,
                        &mut cancels,
                        storage,
                        &batch,
                        &mut overlay,
                        writes,
                    ) {
                        Ok(folded) => folded,
                        Err(failed) => {
                            unreadable(&mut batch);
                            (failed.0, None)
                        }
                    };
                    let start = batch.writes.len();
                    batch.extend(writes);
                    let range = start..batch.writes.len();
                    batch.extend(deletes);
                    accepted.push(Accepted::Update {
                        reply,
                        writes: range,
                        sweep,
                        original,
                    });
                }
                WriteOp::Guarded {
                    expect,
                    batch: writes,
                    sweep,
                    reply,
                } => {
                    let decided =
                        with_view(storage, &batch, &mut overlay, |view| holds(view, &expect))
                            .and_then(|holds| {
                                Ok((holds, swept(storage, &batch, sweep.as_deref(), queues)?))
                            });
                    let decided = match decided {
                        Ok((true, deletes)) => match fold_writes(
                            fold,
                            &mut cancels,
                            storage,
                            &batch,
                            &mut overlay,
                            writes,
                        ) {
                            Ok(folded) => Ok((true, deletes, folded)),
                            Err(failed) => Err(failed.0),
                        },
                        Ok((false, _)) => Ok((false, Batch::new(), (writes, None))),
                        Err(_) => Err(writes),
                    };
                    let (done, writes, original) = match decided {
                        Ok((true, deletes, (writes, original))) => {
                            let start = batch.writes.len();
                            batch.extend(writes);
                            let range = start..batch.writes.len();
                            batch.extend(deletes);
                            (Guarded::Written, Ok(range), original)
                        }
                        // Answered with the batch: the conflict may rest on a write of it.
                        Ok((_, _, (writes, _))) => (Guarded::Conflict, Err(writes), None),
                        // As for an update's sweep: fail the batch, decide it again.
                        Err(writes) => {
                            unreadable(&mut batch);
                            (Guarded::Conflict, Err(writes), None)
                        }
                    };
                    accepted.push(Accepted::Guarded {
                        reply,
                        done,
                        expect,
                        writes,
                        sweep,
                        original,
                    });
                }
                WriteOp::Checked {
                    check,
                    effects: then,
                    reply,
                } => {
                    let answer =
                        match with_view(storage, &batch, &mut overlay, check).and_then(|writes| {
                            match writes {
                                Some(writes) => fold_writes(
                                    fold,
                                    &mut cancels,
                                    storage,
                                    &batch,
                                    &mut overlay,
                                    writes,
                                )
                                .map(|(writes, _)| Some(writes))
                                .map_err(|failed| failed.1),
                                None => Ok(None),
                            }
                        }) {
                            Ok(Some(writes)) if !writes.is_empty() => {
                                queues.note(&writes);
                                batch.extend(writes);
                                effects.extend(then);
                                Ok(true)
                            }
                            Ok(_) => Ok(false),
                            Err(e) => Err(e),
                        };
                    accepted.push(Accepted::Checked(reply, answer));
                }
                WriteOp::Stop => {}
            }
        }
        Built {
            batch,
            accepted,
            effects,
            staged: None,
            cancels,
        }
    }

    /// Commits a built batch and answers for it, or says what to retry.
    fn land(&mut self, mut built: Built) -> Landing {
        if built.accepted.is_empty() {
            return Landing::Done;
        }
        let result = if built.batch.is_empty() {
            Ok(())
        } else if built.batch.writes.iter().any(is_unreadable) {
            Err(StorageError::backend(
                "a read the batch depends on failed; nothing was written",
            ))
        } else {
            let staged = match built.staged.take() {
                Some(staged) => Ok(staged),
                None => self.counters.stage(self.storage, &mut built.batch),
            };
            staged.and_then(|staged| {
                built.staged = Some(staged);
                // Borrowed: the batch is kept, to be committed again or read back if this fails.
                self.storage.apply_if(&self.condition, &built.batch)
            })
        };
        let error = match result {
            Ok(()) => {
                self.succeed(built);
                return Landing::Done;
            }
            Err(StorageError::ConditionFailed { .. }) => {
                self.counters.forget();
                self.fence(built);
                return Landing::Done;
            }
            Err(error) => error,
        };
        self.counters.forget();
        self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        let landed = if built.staged.is_some() {
            self.landed(&built.batch)
        } else {
            // Never tried: a read it depends on failed.
            Ok(Landed::No)
        };
        match landed {
            Ok(Landed::Yes) => {
                self.succeed(built);
                Landing::Done
            }
            Ok(Landed::Fenced) => {
                self.fence(built);
                Landing::Done
            }
            Ok(Landed::No) => {
                // Every sweep is made again from storage: put back the queues this one used.
                for accepted in &built.accepted {
                    if let Accepted::Update {
                        sweep: Some(queue), ..
                    }
                    | Accepted::Guarded {
                        sweep: Some(queue), ..
                    } = accepted
                    {
                        self.queues.queues.insert(queue.clone());
                    }
                }
                let refusal = EngineError::Storage(error.clone());
                let Built {
                    mut batch,
                    accepted,
                    staged,
                    ..
                } = built;
                // Back as the ops wrote it: their ranges index it, and their count deltas are
                // counted again when they are decided again.
                if let Some(staged) = staged {
                    staged.unstage(&mut batch);
                }
                let retry = accepted
                    .into_iter()
                    .filter_map(|accepted| accepted.retry(&batch, &refusal))
                    .collect();
                Landing::Retry(retry, error)
            }
            Err(_) => Landing::Hold(built, error),
        }
    }

    /// Reads back the keys a failed batch wrote: did it land after all?
    fn landed(&self, batch: &Batch) -> Result<Landed, StorageError> {
        let [condition] = &self.condition;
        if self.storage.get(&condition.key)? != condition.expected {
            return Ok(Landed::Fenced);
        }
        let mut last: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
        for write in &batch.writes {
            match write {
                Write::Put(key, value) => last.insert(key, Some(value)),
                Write::Delete(key) => last.insert(key, None),
            };
        }
        for (key, value) in last {
            if self.storage.get(key)?.as_deref() != value {
                return Ok(Landed::No);
            }
        }
        Ok(Landed::Yes)
    }

    fn succeed(&mut self, mut built: Built) {
        self.cancels.commit(std::mem::take(&mut built.cancels));
        // Cleared before anyone hears of the landing, so a caller that does sees it cleared.
        if self.stats.held.load(Ordering::SeqCst) > 0 {
            self.stats.set_fault(None, 0);
        }
        let transitions = built.accepted.iter().filter(|a| a.counts()).count();
        if transitions > 0 {
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .transitions
                .fetch_add(transitions as u64, Ordering::Relaxed);
        }
        if !built.effects.is_empty() {
            (self.run_effects)(built.effects);
        }
        for accepted in built.accepted {
            accepted.succeed();
        }
    }

    fn fence(&mut self, built: Built) {
        self.fenced.store(true, Ordering::SeqCst);
        (self.on_fenced)();
        self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        let error = EngineError::Fenced { epoch: self.epoch };
        for accepted in built.accepted {
            accepted.fail(&error);
        }
    }
}

/// Writes after [`fold_writes`]: as folded, and as sent when folding changed them.
type Folded = (Batch, Option<Batch>);

/// Folds cancellation requests into `writes` when they need it (see `cancel_fold`), reading
/// through the batch being built: the folded writes, with the writes as sent when folding
/// changed them. On a failed read, the writes as sent and the error.
fn fold_writes(
    fold: &CancelFold,
    cancels: &mut Staged,
    storage: &dyn Storage,
    batch: &Batch,
    overlay: &mut Option<Overlay>,
    writes: Batch,
) -> Result<Folded, Box<(Batch, EngineError)>> {
    if !fold.touches(cancels, &writes) {
        return Ok((writes, None));
    }
    let original = writes.clone();
    match with_view(storage, batch, overlay, |view| {
        fold.fold(cancels, writes, &|key| view.get(key))
    }) {
        Ok(folded) => Ok((folded, Some(original))),
        Err(e) => Err(Box::new((original, e))),
    }
}

/// The key of the marker a batch gets when a read it depends on failed; never written.
const UNREADABLE: &[u8] = b"\0weft/writer/unreadable";

/// Marks `batch` as depending on a failed read, and returns no deletes for it.
fn unreadable(batch: &mut Batch) -> Batch {
    batch.delete(UNREADABLE.to_vec());
    Batch::new()
}

fn is_unreadable(write: &Write) -> bool {
    matches!(write, Write::Delete(key) if key == UNREADABLE)
}

/// Whether every expectation of a guarded transition holds in `view`.
fn holds(view: &dyn ReadView, expect: &[Expect]) -> Result<bool, EngineError> {
    for Expect { key, value } in expect {
        if view.get(key)? != *value {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a signal-with-start creates workflow `id` or signals it; an error when it exists
/// but has finished, is of another type, or does not decode. It reads through the batch, so a
/// workflow created earlier in it is signalled, and one finished earlier in it is `Finished`.
fn check_signal_with_start(
    view: &dyn ReadView,
    (p, id): (record::Partition, &str),
    workflow_type: &str,
) -> Result<Signalled, EngineError> {
    let existing = match view.workflow(p, id) {
        Ok(existing) => existing,
        Err(EngineError::NotFound { .. }) => return Ok(Signalled::Started),
        Err(e) => return Err(e),
    };
    if existing.workflow_type != workflow_type {
        return Err(EngineError::WrongType {
            id: id.to_string(),
            expected: workflow_type.to_string(),
            found: existing.workflow_type,
        });
    }
    if existing.status.is_terminal() {
        return Err(EngineError::Finished { id: id.to_string() });
    }
    Ok(Signalled::Existing)
}

fn check_create(
    storage: &dyn Storage,
    (p, id): (record::Partition, &str),
    idempotency_key: Option<&str>,
    new_ids: &HashMap<String, ()>,
    new_keys: &HashMap<String, String>,
) -> Result<Created, EngineError> {
    if let Some(key) = idempotency_key {
        if let Some(existing) = new_keys.get(key) {
            return Ok(Created::Existing(existing.clone()));
        }
        if let Some(bytes) = storage.get(&record::idempotency_key(key))? {
            let existing: IdempotencyRecord =
                record::decode_record(&bytes).map_err(|source| EngineError::Record {
                    key: format!("idem/{key}"),
                    source,
                })?;
            return Ok(Created::Existing(existing.workflow_id));
        }
    }
    if new_ids.contains_key(id) || storage.get(&record::workflow_key(p, id))?.is_some() {
        return Ok(Created::IdTaken);
    }
    Ok(Created::New)
}

fn fail_all(ops: Vec<WriteOp>, error: EngineError) {
    for op in ops {
        match op {
            WriteOp::Create { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Update { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::SignalWithStart { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Guarded { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Checked { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            WriteOp::Stop => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! The writer's checked and guarded ops, one batch at a time: what a check or a guard reads
    //! is storage under the writes accepted before it in the same batch, and its answer waits
    //! for that batch.

    use super::*;
    use crate::storage::MemoryStorage;
    use record::{RecordStatus, WorkflowRecord};

    const EPOCH: u64 = 7;

    fn workflow(status: RecordStatus) -> Vec<u8> {
        record::encode_record(&WorkflowRecord {
            workflow_type: "wf".to_string(),
            version: 1,
            fingerprint: 1,
            status,
            step: 1,
            state: None,
            pending: None,
            created_ms: 0,
            updated_ms: 0,
            outcome: None,
            idempotency_key: None,
            last_resume: None,
            signals_consumed: 0,
            lifecycle: Default::default(),
        })
        .unwrap()
    }

    fn storage_with(id: &str, status: RecordStatus) -> MemoryStorage {
        let storage = MemoryStorage::new();
        storage
            .put(record::EPOCH_KEY, &record::encode_epoch(EPOCH))
            .unwrap();
        storage
            .put(
                &record::workflow_key(record::Partition::ZERO, id),
                &workflow(status),
            )
            .unwrap();
        storage
    }

    /// Runs one batch of `ops`, fenced on `epoch`.
    fn run_batch(storage: &MemoryStorage, epoch: u64, ops: Vec<WriteOp>) -> WriterStats {
        run_batch_effects(storage, epoch, ops, &[]).0
    }

    /// [`run_batch`], also returning the effects it ran, in order, each with whether any of
    /// `answers` (create replies) had been answered when it ran.
    fn run_batch_effects(
        storage: &MemoryStorage,
        epoch: u64,
        ops: Vec<WriteOp>,
        answers: &[&oneshot::Receiver<Result<Created, EngineError>>],
    ) -> (WriterStats, Vec<(String, bool)>) {
        let stats = WriterStats::default();
        let ran = std::sync::Mutex::new(Vec::new());
        let fenced = AtomicBool::new(false);
        let mut writer = Writer {
            storage,
            condition: [Condition {
                key: record::EPOCH_KEY.to_vec(),
                expected: Some(record::encode_epoch(epoch)),
            }],
            epoch,
            stats: &stats,
            fenced: &fenced,
            on_fenced: || {},
            run_effects: |effects: Vec<Effect>| {
                let answered = answers.iter().any(|answer| !answer.is_empty());
                let mut ran = ran.lock().unwrap();
                ran.extend(effects.iter().map(|e| (format!("{e:?}"), answered)));
            },
            queues: SignalQueues::default(),
            counters: Counters::default(),
            cancels: CancelFold::default(),
            partitions: Partitions::default(),
        };
        let built = writer.build(ops);
        assert!(matches!(writer.land(built), Landing::Done));
        drop(writer);
        (stats, ran.into_inner().unwrap())
    }

    fn update(writes: Batch) -> (WriteOp, oneshot::Receiver<Result<(), EngineError>>) {
        let (reply, answer) = oneshot::channel();
        (
            WriteOp::Update {
                batch: writes,
                sweep: None,
                reply,
            },
            answer,
        )
    }

    fn checked(
        check: impl FnOnce(&dyn ReadView) -> Result<Option<Batch>, EngineError> + Send + 'static,
    ) -> (WriteOp, oneshot::Receiver<Result<bool, EngineError>>) {
        let (reply, answer) = oneshot::channel();
        (
            WriteOp::Checked {
                check: Box::new(check),
                effects: Vec::new(),
                reply,
            },
            answer,
        )
    }

    /// What `Engine::signal` asks of the writer: queue `key` while `id` is live.
    fn signal(id: &str, key: &[u8]) -> (WriteOp, oneshot::Receiver<Result<bool, EngineError>>) {
        let (id, key) = (id.to_string(), key.to_vec());
        checked(move |view| {
            if view
                .workflow(record::Partition::ZERO, &id)?
                .status
                .is_terminal()
            {
                return Err(EngineError::Finished { id });
            }
            let mut batch = Batch::new();
            batch.put(key, b"signal".to_vec());
            Ok(Some(batch))
        })
    }

    fn finish(id: &str) -> Batch {
        let mut batch = Batch::new();
        batch.put(
            record::workflow_key(record::Partition::ZERO, id),
            workflow(RecordStatus::Completed),
        );
        batch
    }

    #[test]
    fn a_check_after_the_final_transition_in_the_same_batch_is_refused_and_writes_nothing() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (done, mut done_answer) = update(finish("a"));
        let (late, mut late_answer) = signal("a", b"sig/a/1");
        run_batch(&storage, EPOCH, vec![done, late]);

        assert_eq!(done_answer.try_recv().unwrap(), Ok(()));
        assert_eq!(
            late_answer.try_recv().unwrap(),
            Err(EngineError::Finished { id: "a".into() })
        );
        assert_eq!(storage.get(b"sig/a/1").unwrap(), None);
    }

    #[test]
    fn a_check_before_the_final_transition_in_the_same_batch_is_accepted_and_both_land() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (early, mut early_answer) = signal("a", b"sig/a/1");
        let (done, mut done_answer) = update(finish("a"));
        let stats = run_batch(&storage, EPOCH, vec![early, done]);

        assert_eq!(early_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(done_answer.try_recv().unwrap(), Ok(()));
        assert_eq!(
            storage.get(b"sig/a/1").unwrap().as_deref(),
            Some(&b"signal"[..])
        );
        assert_eq!(
            storage
                .get(&record::workflow_key(record::Partition::ZERO, "a"))
                .unwrap(),
            Some(workflow(RecordStatus::Completed))
        );
        assert_eq!(stats.transitions.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_final_transition_sweeps_signals_stored_and_accepted_earlier_in_its_batch() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let p = record::Partition::ZERO;
        let queued = |id: &str, n: u64| record::signal_key(p, id, 1, n);
        storage.put(&queued("a", 1), b"signal").unwrap();
        storage.put(&queued("ab", 1), b"signal").unwrap();
        let (early, mut early_answer) = signal("a", &queued("a", 2));
        let (reply, mut done_answer) = oneshot::channel();
        let done = WriteOp::Update {
            batch: finish("a"),
            sweep: Some(record::signal_queue_prefix(p, "a")),
            reply,
        };
        run_batch(&storage, EPOCH, vec![early, done]);

        assert_eq!(early_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(done_answer.try_recv().unwrap(), Ok(()));
        assert_eq!(storage.get(&queued("a", 1)).unwrap(), None);
        assert_eq!(storage.get(&queued("a", 2)).unwrap(), None);
        // Another workflow's queue, even one whose id extends this one, is not touched.
        assert!(storage.get(&queued("ab", 1)).unwrap().is_some());
    }

    #[test]
    fn a_check_reads_the_latest_write_of_a_key_earlier_in_the_batch_then_storage() {
        let storage = storage_with("a", RecordStatus::Waiting);
        storage.put(b"k", b"stored").unwrap();
        storage.put(b"gone", b"stored").unwrap();
        let mut writes = Batch::new();
        writes.put(b"k".to_vec(), b"first".to_vec());
        writes.delete(b"gone".to_vec());
        writes.put(b"k".to_vec(), b"second".to_vec());
        writes.put(b"back".to_vec(), b"x".to_vec());
        writes.delete(b"back".to_vec());
        let (transition, _) = update(writes);
        let (read, mut answer) = checked(|view| {
            assert_eq!(view.get(b"k")?.as_deref(), Some(&b"second"[..]));
            assert_eq!(view.get(b"gone")?, None);
            assert_eq!(view.get(b"back")?, None);
            assert_eq!(
                view.workflow(record::Partition::ZERO, "a")?.status,
                RecordStatus::Waiting
            );
            assert_eq!(
                view.workflow(record::Partition::ZERO, "nobody"),
                Err(EngineError::NotFound {
                    id: "nobody".into()
                })
            );
            Ok(None)
        });
        run_batch(&storage, EPOCH, vec![transition, read]);
        assert_eq!(answer.try_recv().unwrap(), Ok(false));
    }

    /// What `Engine::signal_with` asks of the writer: queue `key` for live `a` unless signal id
    /// `hook` was accepted within an hour of `now_ms`.
    fn signal_with_id(
        key: &'static [u8],
        now_ms: u64,
    ) -> (WriteOp, oneshot::Receiver<Result<bool, EngineError>>) {
        use super::super::signal_ids;
        checked(move |view| {
            let window = std::time::Duration::from_secs(3600);
            if signal_ids::seen(view, (record::Partition::ZERO, "a"), "hook", now_ms, window)? {
                return Ok(None);
            }
            if view
                .workflow(record::Partition::ZERO, "a")?
                .status
                .is_terminal()
            {
                return Err(EngineError::Finished { id: "a".into() });
            }
            let mut batch = Batch::new();
            batch.put(key.to_vec(), b"signal".to_vec());
            signal_ids::remember(&mut batch, (record::Partition::ZERO, "a"), "hook", now_ms)?;
            Ok(Some(batch))
        })
    }

    #[test]
    fn repeats_of_one_signal_id_in_one_batch_queue_once_and_all_answer_ok() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (first, mut first_answer) = signal_with_id(b"sig/a\0one", 1_000);
        let (again, mut again_answer) = signal_with_id(b"sig/a\0two", 2_000);
        // After the final transition a repeat still answers as the first did.
        let (done, _) = update(finish("a"));
        let (late, mut late_answer) = signal_with_id(b"sig/a\0three", 3_000);
        run_batch(&storage, EPOCH, vec![first, again, done, late]);

        assert_eq!(first_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(again_answer.try_recv().unwrap(), Ok(false));
        assert_eq!(late_answer.try_recv().unwrap(), Ok(false));
        assert!(storage.get(b"sig/a\0one").unwrap().is_some());
        assert_eq!(storage.get(b"sig/a\0two").unwrap(), None);
        assert_eq!(storage.get(b"sig/a\0three").unwrap(), None);
        assert!(
            storage
                .get(&record::signal_id_key(record::Partition::ZERO, "a", "hook"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn two_checks_of_one_marker_in_one_batch_write_once_and_both_answer_when_durable() {
        let storage = storage_with("a", RecordStatus::Waiting);
        // What `Engine::update` asks: queue the request unless its marker is there.
        let queue_once = |n: u8| {
            checked(move |view| {
                if view.get(b"updq/a\0u1")?.is_some() {
                    return Ok(None);
                }
                let mut batch = Batch::new();
                batch.put(vec![b'q', n], vec![n]);
                batch.put(b"updq/a\0u1".to_vec(), Vec::new());
                Ok(Some(batch))
            })
        };
        let (first, mut first_answer) = queue_once(1);
        let (second, mut second_answer) = queue_once(2);
        let stats = run_batch(&storage, EPOCH, vec![first, second]);

        assert_eq!(first_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(second_answer.try_recv().unwrap(), Ok(false));
        assert_eq!(storage.get(b"q\x01").unwrap(), Some(vec![1]));
        assert_eq!(storage.get(b"q\x02").unwrap(), None);
        // A check that wrote nothing is not a transition.
        assert_eq!(stats.transitions.load(Ordering::Relaxed), 1);
    }

    fn guarded(
        expect: Vec<Expect>,
        writes: Batch,
    ) -> (WriteOp, oneshot::Receiver<Result<Guarded, EngineError>>) {
        let (reply, answer) = oneshot::channel();
        (
            WriteOp::Guarded {
                expect,
                batch: writes,
                sweep: None,
                reply,
            },
            answer,
        )
    }

    /// What `decide_review` asks of the writer, reduced: mark `review/a` decided.
    fn decide() -> (WriteOp, oneshot::Receiver<Result<bool, EngineError>>) {
        checked(|view| {
            if view.get(b"review/a")?.as_deref() != Some(b"open") {
                return Err(EngineError::ReviewNotPending { id: "a".into() });
            }
            let mut batch = Batch::new();
            batch.put(b"review/a".to_vec(), b"decided".to_vec());
            batch.put(b"sig/a/1".to_vec(), b"approved".to_vec());
            Ok(Some(batch))
        })
    }

    /// A transition out of the review, prepared from `review/a` reading "open".
    fn time_out() -> (WriteOp, oneshot::Receiver<Result<Guarded, EngineError>>) {
        let mut writes = finish("a");
        writes.delete(b"review/a".to_vec());
        guarded(
            vec![Expect {
                key: b"review/a".to_vec(),
                value: Some(b"open".to_vec()),
            }],
            writes,
        )
    }

    #[test]
    fn a_guarded_transition_after_a_check_that_changed_what_it_expects_writes_nothing() {
        let storage = storage_with("a", RecordStatus::Waiting);
        storage.put(b"review/a", b"open").unwrap();
        let (decision, mut decision_answer) = decide();
        let (timeout, mut timeout_answer) = time_out();
        let stats = run_batch(&storage, EPOCH, vec![decision, timeout]);

        assert_eq!(decision_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(timeout_answer.try_recv().unwrap(), Ok(Guarded::Conflict));
        assert_eq!(
            storage.get(b"review/a").unwrap().as_deref(),
            Some(&b"decided"[..])
        );
        assert_eq!(
            storage
                .get(&record::workflow_key(record::Partition::ZERO, "a"))
                .unwrap(),
            Some(workflow(RecordStatus::Waiting))
        );
        // A refused transition is not one.
        assert_eq!(stats.transitions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_guarded_transition_before_the_check_lands_and_the_check_reads_its_writes() {
        let storage = storage_with("a", RecordStatus::Waiting);
        storage.put(b"review/a", b"open").unwrap();
        let (timeout, mut timeout_answer) = time_out();
        let (decision, mut decision_answer) = decide();
        run_batch(&storage, EPOCH, vec![timeout, decision]);

        assert_eq!(timeout_answer.try_recv().unwrap(), Ok(Guarded::Written));
        assert_eq!(
            decision_answer.try_recv().unwrap(),
            Err(EngineError::ReviewNotPending { id: "a".into() })
        );
        assert_eq!(storage.get(b"review/a").unwrap(), None);
        assert_eq!(storage.get(b"sig/a/1").unwrap(), None);
    }

    #[test]
    fn a_guarded_transition_expecting_a_key_absent_is_refused_once_it_is_written() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let mut first = Batch::new();
        first.put(b"review/a".to_vec(), b"open".to_vec());
        let (put, _) = update(first);
        let absent = || {
            guarded(
                vec![Expect {
                    key: b"review/a".to_vec(),
                    value: None,
                }],
                finish("a"),
            )
        };
        let (before, mut before_answer) = absent();
        let (after, mut after_answer) = absent();
        run_batch(&storage, EPOCH, vec![before, put, after]);

        assert_eq!(before_answer.try_recv().unwrap(), Ok(Guarded::Written));
        assert_eq!(after_answer.try_recv().unwrap(), Ok(Guarded::Conflict));
    }

    #[test]
    fn when_the_batch_fails_a_guarded_transition_gets_the_failure_even_a_conflict() {
        let storage = storage_with("a", RecordStatus::Waiting);
        storage.put(b"review/a", b"open").unwrap();
        let (decision, _) = decide();
        let (timeout, mut timeout_answer) = time_out();
        run_batch(&storage, EPOCH - 1, vec![decision, timeout]);

        // The conflict rested on a decision that never landed.
        assert_eq!(
            timeout_answer.try_recv().unwrap(),
            Err(EngineError::Fenced { epoch: EPOCH - 1 })
        );
        assert_eq!(
            storage.get(b"review/a").unwrap().as_deref(),
            Some(&b"open"[..])
        );
    }

    #[test]
    fn when_the_batch_fails_every_check_of_it_gets_the_failure_even_a_refusal() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (done, _) = update(finish("a"));
        let (late, mut late_answer) = signal("a", b"sig/a/1");
        let (nothing, mut nothing_answer) = checked(|_| Ok(None));
        // Another engine took over: the epoch condition fails.
        run_batch(&storage, EPOCH - 1, vec![done, late, nothing]);

        let fenced = Err(EngineError::Fenced { epoch: EPOCH - 1 });
        // The refusal rested on a final transition that never landed.
        assert_eq!(late_answer.try_recv().unwrap(), fenced);
        assert_eq!(nothing_answer.try_recv().unwrap(), fenced);
        assert_eq!(
            storage
                .get(&record::workflow_key(record::Partition::ZERO, "a"))
                .unwrap(),
            Some(workflow(RecordStatus::Waiting))
        );
    }

    #[test]
    fn a_signal_with_start_after_the_final_transition_in_the_same_batch_is_finished() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (done, _) = update(finish("a"));
        let (reply, mut answer) = oneshot::channel();
        let mut signal = Batch::new();
        signal.put(b"sig/a/1".to_vec(), b"signal".to_vec());
        let late = WriteOp::SignalWithStart {
            id: "a".into(),
            workflow_type: "wf",
            start: finish("never"),
            signal,
            launch: Vec::new(),
            reply,
        };
        run_batch(&storage, EPOCH, vec![done, late]);

        assert_eq!(
            answer.try_recv().unwrap(),
            Err(EngineError::Finished { id: "a".into() })
        );
        assert_eq!(storage.get(b"sig/a/1").unwrap(), None);
    }

    /// A create of `id` whose launch is stood in for by a wake of `launch`.
    fn create(
        id: &str,
        key: Option<&str>,
        launch: &str,
    ) -> (WriteOp, oneshot::Receiver<Result<Created, EngineError>>) {
        let (reply, answer) = oneshot::channel();
        let mut writes = Batch::new();
        writes.put(
            record::workflow_key(record::Partition::ZERO, id),
            workflow(RecordStatus::Running),
        );
        if let Some(key) = key {
            writes.put(
                record::idempotency_key(key),
                record::encode_record(&IdempotencyRecord {
                    workflow_id: id.to_string(),
                })
                .unwrap(),
            );
        }
        (
            WriteOp::Create {
                id: id.to_string(),
                idempotency_key: key.map(str::to_string),
                batch: writes,
                launch: vec![Effect::Wake(launch.to_string())],
                reply,
            },
            answer,
        )
    }

    #[test]
    fn of_two_creates_of_one_id_only_the_accepted_one_launches_once_durable_before_any_answer() {
        let storage = storage_with("other", RecordStatus::Running);
        let (first, mut first_answer) = create("a", None, "launch a, first");
        let (second, mut second_answer) = create("a", None, "launch a, second");
        let (keyed, mut keyed_answer) = create("b", Some("k"), "launch b");
        let (retry, mut retry_answer) = create("b2", Some("k"), "launch b, retried");
        let (stats, ran) = run_batch_effects(
            &storage,
            EPOCH,
            vec![first, second, keyed, retry],
            &[&first_answer, &second_answer, &keyed_answer, &retry_answer],
        );

        assert_eq!(
            ran,
            [
                ("Wake(\"launch a, first\")".to_string(), false),
                ("Wake(\"launch b\")".to_string(), false),
            ]
        );
        assert_eq!(first_answer.try_recv().unwrap(), Ok(Created::New));
        assert_eq!(second_answer.try_recv().unwrap(), Ok(Created::IdTaken));
        assert_eq!(keyed_answer.try_recv().unwrap(), Ok(Created::New));
        assert_eq!(
            retry_answer.try_recv().unwrap(),
            Ok(Created::Existing("b".into()))
        );
        assert_eq!(stats.transitions.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn when_the_batch_fails_no_effect_runs_and_an_id_taken_by_it_is_not_reported_taken() {
        let storage = storage_with("other", RecordStatus::Running);
        let (first, mut first_answer) = create("a", Some("k"), "launch a");
        let (second, mut second_answer) = create("a", None, "launch a, second");
        let (retry, mut retry_answer) = create("a", Some("k"), "launch a, retried");
        let (signal, mut signal_answer) = signal("a", b"sig/a\0one");
        let (_, ran) = run_batch_effects(
            &storage,
            EPOCH - 1,
            vec![first, second, retry, signal],
            &[&first_answer, &second_answer, &retry_answer],
        );

        assert_eq!(ran, []);
        let fenced = Err(EngineError::Fenced { epoch: EPOCH - 1 });
        assert_eq!(first_answer.try_recv().unwrap(), fenced);
        // Both rested on the create that never landed.
        assert_eq!(second_answer.try_recv().unwrap(), fenced);
        assert_eq!(retry_answer.try_recv().unwrap(), fenced);
        assert_eq!(
            signal_answer.try_recv().unwrap(),
            Err(EngineError::Fenced { epoch: EPOCH - 1 })
        );
        assert_eq!(
            storage
                .get(&record::workflow_key(record::Partition::ZERO, "a"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_create_that_finds_its_workflow_stored_wakes_it_before_answering() {
        let storage = storage_with("a", RecordStatus::Running);
        storage
            .put(
                &record::idempotency_key("k"),
                &record::encode_record(&IdempotencyRecord {
                    workflow_id: "a".into(),
                })
                .unwrap(),
            )
            .unwrap();
        let (retry, mut retry_answer) = create("a2", Some("k"), "launch again");
        let (same_id, mut same_id_answer) = create("a", None, "launch again");
        let (_, ran) = run_batch_effects(
            &storage,
            EPOCH,
            vec![retry, same_id],
            &[&retry_answer, &same_id_answer],
        );

        // Its first start may have landed with its success lost, and nothing set it running.
        assert_eq!(
            ran,
            [
                ("Wake(\"a\")".to_string(), false),
                ("Wake(\"a\")".to_string(), true)
            ]
        );
        assert_eq!(
            retry_answer.try_recv().unwrap(),
            Ok(Created::Existing("a".into()))
        );
        assert_eq!(same_id_answer.try_recv().unwrap(), Ok(Created::IdTaken));
    }

    #[test]
    fn a_checked_write_runs_its_effects_only_when_it_wrote() {
        let storage = storage_with("a", RecordStatus::Waiting);
        let (reply, mut wrote_answer) = oneshot::channel();
        let wrote = WriteOp::Checked {
            check: Box::new(|_| {
                let mut batch = Batch::new();
                batch.put(b"k".to_vec(), b"v".to_vec());
                Ok(Some(batch))
            }),
            effects: vec![Effect::Wake("wrote".into())],
            reply,
        };
        let (reply, mut nothing_answer) = oneshot::channel();
        let nothing = WriteOp::Checked {
            check: Box::new(|_| Ok(None)),
            effects: vec![Effect::Wake("nothing".into())],
            reply,
        };
        let (reply, mut refused_answer) = oneshot::channel();
        let refused = WriteOp::Checked {
            check: Box::new(|_| Err(EngineError::NotFound { id: "x".into() })),
            effects: vec![Effect::Cancel("refused".into())],
            reply,
        };
        let (_, ran) = run_batch_effects(&storage, EPOCH, vec![wrote, nothing, refused], &[]);

        assert_eq!(ran, [("Wake(\"wrote\")".to_string(), false)]);
        assert_eq!(wrote_answer.try_recv().unwrap(), Ok(true));
        assert_eq!(nothing_answer.try_recv().unwrap(), Ok(false));
        assert!(refused_answer.try_recv().unwrap().is_err());
    }
}
