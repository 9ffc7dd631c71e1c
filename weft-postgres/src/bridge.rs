//! The bridge from the engine's blocking storage calls to the async PostgreSQL client.
//!
//! The engine calls [`Storage`](weft_runtime::storage::Storage) from its writer thread and
//! tokio's blocking pool, never from an async worker, and expects each call to block until it
//! is done. The client is async, so the storage owns a small runtime of its own: every call
//! runs there (the pool's connections and their I/O tasks live there too) and the calling
//! thread waits on a channel, which is safe on any thread that is not an async worker.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};

/// A runtime that runs the storage's futures for callers that block.
pub(crate) struct Bridge {
    /// `None` only while dropping.
    runtime: Option<Runtime>,
}

/// The bridge's runtime stopped before the call finished.
#[derive(Debug)]
pub(crate) struct Stopped;

impl Bridge {
    /// A runtime of two worker threads named `weft-postgres`: enough to drive the pool's
    /// connections, which spend their time waiting on the network.
    pub(crate) fn new() -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-postgres")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    /// The runtime's handle, to spawn on it from async code.
    pub(crate) fn handle(&self) -> &Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is taken only in drop"),
        }
    }

    /// Runs `future` on the bridge's runtime and blocks the calling thread until it is done.
    /// Must not be called on an async worker thread: it would stall that worker meanwhile.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| Stopped)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics in async code (where the
        // engine may drop its storage); stopping it in the background does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
