//! Grouped commits: one writer thread gathers the transitions of many workflows into one
//! conditional batch, fenced on the owner epoch, and answers each when the batch is durable.
//!
//! The writer is the engine's only writer, so the checks it makes before a batch (is this id
//! free, was this idempotency key used) cannot race with another write of the same engine, and
//! the epoch condition rules out every other engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::storage::{Batch, Condition, Storage, StorageError};

use super::error::EngineError;
use super::record::{self, IdempotencyRecord};

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
    /// Writes a new workflow unless its id or idempotency key is taken.
    Create {
        id: String,
        idempotency_key: Option<String>,
        batch: Batch,
        reply: oneshot::Sender<Result<Created, EngineError>>,
    },
    /// Signal-with-start: writes `start` and `signal` when no workflow `id` exists, only
    /// `signal` when a live one of `workflow_type` does, nothing otherwise.
    SignalWithStart {
        id: String,
        workflow_type: &'static str,
        start: Batch,
        signal: Batch,
        reply: oneshot::Sender<Result<Signalled, EngineError>>,
    },
    /// Writes a transition.
    Update {
        batch: Batch,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    /// Stops after the requests queued before it.
    Stop,
}

/// Counters behind [`super::EngineStats`].
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    pub batches: AtomicU64,
    pub transitions: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// Runs the writer loop on the calling (dedicated) thread until [`WriteOp::Stop`] or until every
/// sender is gone. `on_fenced` runs once, when the epoch condition fails.
pub(crate) fn run(
    storage: Arc<dyn Storage>,
    epoch: u64,
    mut rx: mpsc::UnboundedReceiver<WriteOp>,
    stats: Arc<WriterStats>,
    fenced: Arc<AtomicBool>,
    on_fenced: impl Fn(),
) {
    let condition = [Condition {
        key: record::EPOCH_KEY.to_vec(),
        expected: Some(record::encode_epoch(epoch)),
    }];
    let mut stop = false;
    // The size of the previous batch: whether the engine is busy enough to wait for more.
    let mut previous = 0;
    while !stop {
        let Some(first) = rx.blocking_recv() else {
            return;
        };
        let mut ops = vec![first];
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
        if fenced.load(Ordering::SeqCst) {
            fail_all(ops, EngineError::Fenced { epoch });
            continue;
        }
        commit(
            &*storage, &condition, ops, &stats, epoch, &fenced, &on_fenced,
        );
    }
}

/// Moves what is queued into `ops`, up to [`MAX_BATCH`], without waiting.
fn drain(rx: &mut mpsc::UnboundedReceiver<WriteOp>, ops: &mut Vec<WriteOp>) {
    while ops.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
}

enum Accepted {
    Create(oneshot::Sender<Result<Created, EngineError>>),
    SignalWithStart(oneshot::Sender<Result<Signalled, EngineError>>, Signalled),
    Update(oneshot::Sender<Result<(), EngineError>>),
}

fn commit(
    storage: &dyn Storage,
    condition: &[Condition],
    ops: Vec<WriteOp>,
    stats: &WriterStats,
    epoch: u64,
    fenced: &AtomicBool,
    on_fenced: &impl Fn(),
) {
    let mut batch = Batch::new();
    let mut accepted = Vec::with_capacity(ops.len());
    // Ids and idempotency keys created earlier in this batch, not yet visible in storage.
    let mut new_ids: HashMap<String, ()> = HashMap::new();
    let mut new_keys: HashMap<String, String> = HashMap::new();
    let mut deferred: Vec<(oneshot::Sender<Result<Created, EngineError>>, String)> = Vec::new();
    for op in ops {
        match op {
            WriteOp::Create {
                id,
                idempotency_key,
                batch: writes,
                reply,
            } => match check_create(
                storage,
                &id,
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
                    accepted.push(Accepted::Create(reply));
                }
                // The run this key names is created earlier in this very batch: answer once
                // it is durable, so the caller can read it.
                Ok(Created::Existing(existing)) if new_ids.contains_key(&existing) => {
                    deferred.push((reply, existing));
                }
                other => {
                    let _ = reply.send(other);
                }
            },
            WriteOp::SignalWithStart {
                id,
                workflow_type,
                start,
                signal,
                reply,
            } => match check_signal_with_start(storage, &id, workflow_type, &new_ids) {
                Ok(Signalled::Started) => {
                    new_ids.insert(id, ());
                    batch.extend(start);
                    batch.extend(signal);
                    accepted.push(Accepted::SignalWithStart(reply, Signalled::Started));
                }
                Ok(Signalled::Existing) => {
                    batch.extend(signal);
                    accepted.push(Accepted::SignalWithStart(reply, Signalled::Existing));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            WriteOp::Update {
                batch: writes,
                reply,
            } => {
                batch.extend(writes);
                accepted.push(Accepted::Update(reply));
            }
            WriteOp::Stop => {}
        }
    }
    if accepted.is_empty() {
        // A deferred answer always names a run created in this batch, so it is never alone.
        return;
    }
    let result = if batch.is_empty() {
        Ok(())
    } else {
        storage.apply_if(condition, batch)
    };
    let error = match result {
        Ok(()) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .transitions
                .fetch_add(accepted.len() as u64, Ordering::Relaxed);
            for reply in accepted {
                match reply {
                    Accepted::Create(reply) => {
                        let _ = reply.send(Ok(Created::New));
                    }
                    Accepted::Update(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                    Accepted::SignalWithStart(reply, done) => {
                        let _ = reply.send(Ok(done));
                    }
                }
            }
            for (reply, existing) in deferred {
                let _ = reply.send(Ok(Created::Existing(existing)));
            }
            return;
        }
        Err(StorageError::ConditionFailed { .. }) => {
            fenced.store(true, Ordering::SeqCst);
            on_fenced();
            EngineError::Fenced { epoch }
        }
        Err(e) => EngineError::Storage(e),
    };
    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
    for reply in accepted {
        match reply {
            Accepted::Create(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::Update(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
            Accepted::SignalWithStart(reply, _) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    for (reply, _) in deferred {
        let _ = reply.send(Err(error.clone()));
    }
}

/// Whether a signal-with-start creates workflow `id` or signals it; an error when it exists
/// but has finished, is of another type, or does not decode.
fn check_signal_with_start(
    storage: &dyn Storage,
    id: &str,
    workflow_type: &str,
    new_ids: &HashMap<String, ()>,
) -> Result<Signalled, EngineError> {
    if new_ids.contains_key(id) {
        // Created earlier in this batch, by a start or another signal-with-start.
        return Ok(Signalled::Existing);
    }
    let Some(bytes) = storage.get(&record::workflow_key(id))? else {
        return Ok(Signalled::Started);
    };
    let existing: record::WorkflowRecord =
        record::decode_record(&bytes).map_err(|source| EngineError::Record {
            key: format!("wf/{id}"),
            source,
        })?;
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
    id: &str,
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
    if new_ids.contains_key(id) || storage.get(&record::workflow_key(id))?.is_some() {
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
            WriteOp::Stop => {}
        }
    }
}
