//! Panic containment: a panic in user code (a step, a migration, a query, a `Serialize` or
//! `Deserialize` impl) or in a task the engine spawns becomes a value, so one bad workflow never
//! stops the engine or strands the others.
//!
//! This relies on unwinding. A build with `panic = "abort"` cannot contain anything: the first
//! panic ends the process (and, with it, every workflow's runner; nothing acknowledged is lost,
//! and the next engine built on the storage resumes from the last commits). [`PANICS_CONTAINED`]
//! tells which kind of build this is; the engine reports it at build.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Whether panics unwind in this build, so the engine can contain them. `false` in a build with
/// `panic = "abort"`, where a panic in workflow code aborts the process.
pub(crate) const PANICS_CONTAINED: bool = cfg!(panic = "unwind");

/// Runs `f`, turning a panic into its message.
///
/// `f` is asserted unwind safe: every caller drops what `f` touched once it panicked (a step's
/// context, a half-built value), so no broken invariant is observed afterwards.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| message(&*payload))
}

/// The message of a panic payload: the `&str` or `String` given to `panic!`, if it was one.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A future whose panics are caught: it completes with `Err(message)` when a poll panicked.
pub(crate) struct Caught<F>(Pin<Box<F>>);

impl<F: Future> Caught<F> {
    /// Guards `future`.
    pub(crate) fn new(future: F) -> Self {
        Caught(Box::pin(future))
    }
}

impl<F: Future> Future for Caught<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch(|| inner.poll(cx)) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(message) => Poll::Ready(Err(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(catch(|| panic!("boom")), Err::<(), _>("boom".to_string()));
        let n = 3;
        assert_eq!(
            catch(|| panic!("index {n}")),
            Err::<(), _>("index 3".to_string())
        );
    }

    #[tokio::test]
    async fn a_panicking_future_completes_with_its_message() {
        let ok = Caught::new(async { 1 }).await;
        assert_eq!(ok, Ok(1));
        let panicked = Caught::new(async {
            tokio::task::yield_now().await;
            panic!("after an await")
        })
        .await;
        assert_eq!(panicked, Err::<(), _>("after an await".to_string()));
    }
}
