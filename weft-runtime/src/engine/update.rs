//! `Engine::update`: send a typed request to a running workflow and wait for its answer.
//!
//! The update is queued durably like a signal (under `U::QUEUE`, with a marker keyed by its
//! update id so a retry does not queue it twice). The workflow's answer is committed with its
//! next state at `upd/<id>\0<update id>` and kept, so a retry with the same update id returns
//! the first answer even after the workflow ended.
use std::time::Duration;

use super::clock::to_millis;
use super::core::Woken;
use super::effects::Effect;
use super::record;
use super::{Engine, EngineError, query, runner};
use crate::codec::{self, Payload};
use crate::storage::Batch;
use crate::update::{Update, UpdateReply};

/// Options for [`Engine::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOptions {
    /// Names this update: a second call with the same id (a retry) is not delivered again and
    /// returns the first call's answer.
    pub update_id: String,
    /// How long this call waits for the answer (wall-clock). On timeout the update stays
    /// queued; call again with the same `update_id` to keep waiting.
    pub timeout: Duration,
}

impl Engine {
    /// Sends update `request` to workflow `id` and waits for the workflow's typed answer.
    ///
    /// The update is stored durably before this waits, and delivered to the workflow's next
    /// `ctx.wait_for_update::<U>()`. The answer is the one the workflow gave with
    /// `ctx.respond`, committed together with its next state. Errors: `UpdateTimedOut` when no
    /// answer came within `options.timeout`, `UpdateNotAnswered` when the workflow ended
    /// without answering, `Parked` when it is parked, `Finished` when it had already ended
    /// before the update was stored.
    ///
    /// The update is delivered once per update id, however many calls use it, concurrent or
    /// not: the engine's writer queues it for the first and the others wait for its answer.
    ///
    /// # Errors
    ///
    /// `UpdateTimedOut`, `UpdateNotAnswered`, `Parked` and `Finished` as said above; `NotFound`
    /// when no workflow has the id; `PayloadTooLarge` or `Codec` for a request that does not fit;
    /// `Shutdown` or `Fenced` when the engine no longer serves; `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// The engine takes the update at the first poll (its checks and its queueing run as a
    /// task of the engine); dropping this future after that gives up only the wait for the
    /// answer: the update is queued and delivered, and the
    /// engine wakes the workflow once it is durable. Call again with the same `update_id` to
    /// wait for the answer; the update is not delivered twice.
    pub async fn update<U: Update>(
        &self,
        id: &str,
        request: U,
        options: UpdateOptions,
    ) -> Result<U::Response, EngineError> {
        let payload = codec::encode(&(request, UpdateReply::<U>::new(options.update_id.clone())))?;
        let answer = self.send_update(id, U::QUEUE, payload, options).await?;
        runner::decode_payload(&answer)
    }

    /// Queues the encoded update (request and reply token) on queue `queue` of workflow `id`,
    /// unless its update id was queued before, and waits for the encoded answer: the one update
    /// path, typed and by name.
    pub(crate) async fn send_update(
        &self,
        id: &str,
        queue: &str,
        payload: Payload,
        options: UpdateOptions,
    ) -> Result<Payload, EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        let UpdateOptions { update_id, timeout } = options;
        let answer_key = record::update_response_key(inner.partition(id), id, &update_id);
        let queued = {
            let engine = self.clone();
            let (id, queue, update_id) = (id.to_string(), queue.to_string(), update_id.clone());
            super::detach(inner, async move {
                engine.queue_update(&id, &queue, payload, &update_id).await
            })
            .await?
        };
        if let Some(answer) = queued {
            return Ok(answer);
        }
        // A timeout too long to represent waits without a deadline.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        loop {
            let waiter = inner.wait_for(id)?;
            if let Some(answer) = read_answer(self, &answer_key).await? {
                return Ok(answer);
            }
            // Parked as stored, or as read against the registered code (an unknown type or
            // version): either way nothing will answer until an operator acts.
            let stored = inspect(self, id).await?;
            if let Some(error) = stored.parked {
                return Err(error);
            }
            if stored.terminal {
                // The answer may have been committed between the two reads above.
                if let Some(answer) = read_answer(self, &answer_key).await? {
                    return Ok(answer);
                }
                return Err(EngineError::UpdateNotAnswered {
                    id: id.to_string(),
                    update_id,
                });
            }
            if let Some(error) = inner.stalled(id) {
                return Err(error);
            }
            let waited = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, waiter).await,
                None => Ok(waiter.await),
            };
            match waited {
                Err(_) => {
                    return Err(EngineError::UpdateTimedOut {
                        id: id.to_string(),
                        update_id,
                    });
                }
                Ok(Ok(Woken::Changed | Woken::Finished(_))) => continue,
                Ok(Ok(Woken::Failed(error))) => return Err(error),
                Ok(Err(_)) => return Err(inner.stopped_error()),
            }
        }
    }

    /// The checks and the queueing of [`Engine::send_update`], run as a task of the engine:
    /// the stored answer when the update was answered already, else `None` once it is queued
    /// (or found queued by an earlier call).
    async fn queue_update(
        &self,
        id: &str,
        queue: &str,
        payload: Payload,
        update_id: &str,
    ) -> Result<Option<Payload>, EngineError> {
        let inner = &self.inner;
        let p = inner.partition(id);
        let answer_key = record::update_response_key(p, id, update_id);
        let queued_key = record::update_queued_key(p, id, update_id);
        if let Some(answer) = read_answer(self, &answer_key).await? {
            return Ok(Some(answer));
        }
        // A record that does not decode cannot be checked for having ended, so nothing is
        // queued for it: the caller learns at once that it is parked.
        let stored = inspect(self, id).await?;
        if !stored.readable
            && let Some(error) = stored.parked
        {
            return Err(error);
        }
        // The marker is never removed, so a retry that sees it can skip the writer. A first
        // call is decided by the writer: of concurrent calls with one update id, the first it
        // checks queues the update and the others find the marker and just wait.
        if inner.read_key(queued_key.clone()).await?.is_none() {
            inner.check_size("the update", &payload)?;
            let signal = record::SignalRecord {
                name: queue.to_string(),
                payload,
                sent_ms: to_millis(inner.clock.now()),
            };
            let key = record::signal_key(p, id, inner.epoch, inner.next_signal_seq()?);
            let mut batch = Batch::new();
            batch.put(key, record::encode_record(&signal)?);
            batch.put(queued_key.clone(), Vec::new());
            let owned_id = id.to_string();
            // The writer wakes the workflow once the update is durable, even if this call is
            // dropped while it waits.
            inner
                .request_checked_then(
                    move |view| {
                        if view.get(&queued_key)?.is_some() {
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
        } else {
            // Queued by an earlier call, whose commit may have landed with its success never
            // reported (nothing woken then): make sure the workflow looks at its queue.
            runner::wake(inner, id);
        }
        Ok(None)
    }
}

/// What an update call needs to know about the stored workflow.
struct Stored {
    /// The error that says why it is parked, when it is.
    parked: Option<EngineError>,
    /// It has finished.
    terminal: bool,
    /// Its record decodes.
    readable: bool,
}

/// Reads workflow `id` as describe does: parked when its record or attributes do not decode, or
/// match no registered code.
async fn inspect(engine: &Engine, id: &str) -> Result<Stored, EngineError> {
    let inner = &engine.inner;
    let stored = query::read_stored(inner, id)
        .await?
        .ok_or_else(|| EngineError::NotFound { id: id.into() })?;
    let inspected = query::inspect_stored(inner, stored)?;
    Ok(Stored {
        parked: inspected.park_reason.map(|reason| EngineError::Parked {
            id: id.to_string(),
            code: reason.code,
            message: reason.message,
        }),
        terminal: inspected.status.is_terminal(),
        readable: inspected.record.is_some(),
    })
}

/// The stored, encoded answer at `key`.
async fn read_answer(engine: &Engine, key: &[u8]) -> Result<Option<Payload>, EngineError> {
    match engine.inner.read_key(key.to_vec()).await? {
        None => Ok(None),
        Some(bytes) => {
            let answer: record::UpdateResponseRecord =
                record::decode_record(&bytes).map_err(|source| EngineError::Record {
                    key: String::from_utf8_lossy(key).into_owned(),
                    source,
                })?;
            Ok(Some(answer.payload))
        }
    }
}
