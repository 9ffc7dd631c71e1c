//! The engine's own tasks, counted, so shutdown can wait until each has dropped what it holds.
//!
//! Aborting a task only asks tokio to drop it; the drop happens later, on a worker thread. A
//! runner task holds the engine's shared state, and with it the storage (for redb, the file
//! lock). [`Tasks::idle`] waits until every task spawned through [`Tasks::spawn`] has been
//! dropped, so when [`super::Engine::shutdown`] returns, a new engine can open the same file.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How many counted tasks exist (spawned and not yet dropped).
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    live: AtomicUsize,
    idle: Notify,
}

impl Tasks {
    /// Spawns `future` as a counted task: it counts until the future has been dropped, whether
    /// it finished or was aborted.
    pub fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.live.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(Counted {
            future: Box::pin(future),
            _count: Count(Arc::clone(self)),
        })
    }

    /// Runs `f` on tokio's blocking pool as a counted task: it counts until `f` has returned
    /// and dropped what it captured (a storage read holds the storage), or was dropped unrun.
    pub fn spawn_blocking<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> JoinHandle<R> {
        self.live.fetch_add(1, Ordering::SeqCst);
        let count = Count(Arc::clone(self));
        tokio::task::spawn_blocking(move || {
            // `f` drops its captures as it returns, before the count.
            let result = f();
            drop(count);
            result
        })
    }

    /// Waits until no counted task exists.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so a drop in between still wakes it.
            notified.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A counted task's future. Fields drop in order: the future (and all it holds) first, then the
/// count, so a task stops counting only once what it held is gone.
struct Counted<F: Future> {
    future: Pin<Box<F>>,
    _count: Count,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.future.as_mut().poll(cx)
    }
}

struct Count(Arc<Tasks>);

impl Drop for Count {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_until_an_aborted_task_has_dropped_its_future() {
        let tasks = Arc::new(Tasks::default());
        let held = Arc::new(());
        let inside = Arc::clone(&held);
        let task = tasks.spawn(async move {
            let _inside = inside;
            std::future::pending::<()>().await
        });
        tokio::task::yield_now().await;
        task.abort();
        tasks.idle().await;
        assert_eq!(Arc::strong_count(&held), 1, "the task's future was dropped");
    }

    #[tokio::test]
    async fn idle_waits_until_a_blocking_task_has_dropped_what_it_captured() {
        let tasks = Arc::new(Tasks::default());
        let held = Arc::new(());
        let inside = Arc::clone(&held);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let task = tasks.spawn_blocking(move || {
            let _inside = inside;
            let _ = gate.recv();
        });
        // Its caller stops waiting for it; it runs on.
        drop(task);
        let idle = tasks.idle();
        tokio::pin!(idle);
        assert!(
            futures_poll_once(idle.as_mut()).await.is_none(),
            "idle while the blocking task runs"
        );
        release.send(()).unwrap();
        idle.await;
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "the blocking task dropped its captures"
        );
    }

    /// Polls `future` once.
    async fn futures_poll_once<F: Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut future).poll(cx) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            })
        })
        .await
    }
}
