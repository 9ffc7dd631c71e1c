//! Back-pressure on callers: the writer's queue holds at most so many callers' requests.
//!
//! The writer commits one batch at a time; while storage is slow, what callers send piles up in
//! its queue. A caller's request (a start, a signal, an update, a cancellation, a review
//! decision, a retry) is admitted only while fewer than the limit wait there, and is refused at
//! once with [`EngineError::Overloaded`] otherwise: the caller learns the engine is behind and
//! backs off, instead of queueing without end and timing out later.
//!
//! The engine's own transitions (a runner's step, an activity's attempt, a timer firing, a
//! schedule) are never counted nor refused: each carries work a caller was already told would
//! happen, and refusing it would strand that work.
//!
//! An [`Admission`] is sent along with the request through the writer's queue and dropped when
//! the writer takes the request off it, so the count is exactly the requests waiting in the
//! queue. A request the writer never takes (the engine stopped) is dropped with its admission.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::EngineError;
use super::writer::WriteOp;

/// The default limit on callers' requests waiting in the writer's queue
/// (see [`super::EngineBuilder::max_queued_requests`]).
pub const DEFAULT_MAX_QUEUED_REQUESTS: usize = 4096;

/// What travels through the writer's queue: an op, and for a caller's request its admission.
pub(crate) type Queued = (WriteOp, Option<Admission>);

/// Counts callers' requests in the writer's queue, against a limit.
#[derive(Debug)]
pub(crate) struct Requests {
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Requests {
    /// A count of zero, with `limit` (at least one).
    pub fn new(limit: usize) -> Self {
        Requests {
            queued: Arc::new(AtomicUsize::new(0)),
            limit: limit.max(1),
        }
    }

    /// Admits one more request, or refuses it when `limit` wait already.
    pub fn admit(&self) -> Result<Admission, EngineError> {
        let limit = self.limit;
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                (queued < limit).then_some(queued + 1)
            })
            .map(|_| Admission(Arc::clone(&self.queued)))
            .map_err(|queued| EngineError::Overloaded { queued, limit })
    }

    /// How many requests wait in the writer's queue now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// One admitted request's place in the queue, given back when dropped.
#[derive(Debug)]
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_again_once_one_is_given_back() {
        let requests = Requests::new(2);
        let first = requests.admit().unwrap();
        let _second = requests.admit().unwrap();
        assert_eq!(
            requests.admit().unwrap_err(),
            EngineError::Overloaded {
                queued: 2,
                limit: 2
            }
        );
        assert_eq!(requests.queued(), 2);
        drop(first);
        assert_eq!(requests.queued(), 1);
        let _third = requests.admit().unwrap();
    }
}
