//! The readiness probe: proves, on a caller's heartbeat, that the storage answers a read and an
//! epoch-fenced write, and that this engine still owns it.

use crate::storage::Batch;

use super::Engine;
use super::error::EngineError;
use super::record;

impl Engine {
    /// Probes the storage for a readiness check: reads the owner epoch, then rewrites it
    /// unchanged through the writer, under the same epoch fence as every engine write. Under
    /// load the write joins a batch of other commits; idle, it costs one small commit (so call
    /// it on a heartbeat, not per request). A probe that lands counts as one transition in
    /// [`Engine::stats`].
    ///
    /// A built engine has finished its recovery (it runs inside `EngineBuilder::build`), so
    /// `Ok` here means the engine is ready to serve.
    ///
    /// # Errors
    ///
    /// [`EngineError::Fenced`] when another engine took the storage over (this one then stops,
    /// as on any refused write), [`EngineError::Storage`] when the read or the write fails,
    /// [`EngineError::Record`] when the stored epoch does not decode, and
    /// [`EngineError::Shutdown`] after a shutdown.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future drops only the answer. The write changes nothing
    /// stored, whether it lands or not.
    pub async fn probe(&self) -> Result<(), EngineError> {
        let inner = &self.inner;
        inner.check_live()?;
        let stored = inner.read_key(record::EPOCH_KEY.to_vec()).await?;
        if let Some(bytes) = &stored {
            let stored = record::decode_epoch(bytes).map_err(|source| EngineError::Record {
                key: "meta/epoch".into(),
                source,
            })?;
            if stored != inner.epoch {
                inner.depose();
                return Err(EngineError::Fenced { epoch: inner.epoch });
            }
        }
        let epoch = inner.epoch;
        inner
            .commit_checked(move |_| {
                let mut batch = Batch::new();
                batch.put(record::EPOCH_KEY, record::encode_epoch(epoch));
                Ok(Some(batch))
            })
            .await?;
        Ok(())
    }
}
