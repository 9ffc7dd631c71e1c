//! [`Mock`]: an activity replaced by a closure of the same typed signature, which records its
//! calls and can be told what to return or how to fail on the next calls.
//!
//! The closure takes the activity's `Input` and returns its `Output`, so the compiler checks a
//! mock against the activity it replaces. A mock keeps the activity's name and options (retry
//! policy, timeout), so the engine runs it exactly as it would run the real one.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use weft_runtime::activity::BoxFuture;
use weft_runtime::codec::{self, Payload};
use weft_runtime::{Activity, ActivityContext, ActivityError, ActivityOptions, DynActivity};

type Body<A> = dyn Fn(
        ActivityContext,
        <A as Activity>::Input,
    ) -> BoxFuture<Result<<A as Activity>::Output, ActivityError>>
    + Send
    + Sync;

/// A mocked activity `A`. Clones share the same calls and overrides, so a test keeps one while
/// the engine runs another.
///
/// ```
/// use weft_runtime::{ActivityError, activity};
/// use weft_testing::Mock;
///
/// #[activity]
/// async fn charge_card(cents: u64) -> Result<String, ActivityError> {
///     unimplemented!("calls the payment provider")
/// }
///
/// // The closure's types are `charge_card`'s: `u64` in, `String` out.
/// let charge = Mock::new(charge_card, |cents| async move { Ok(format!("charge-{cents}")) });
/// charge.fail_once(ActivityError::failed("card declined"));
/// // Give `charge.clone()` to `TestEngine::builder().with_mock(..)`; afterwards
/// // `charge.calls()` holds every input as a `u64`.
/// assert_eq!(charge.call_count(), 0);
/// ```
pub struct Mock<A: Activity> {
    shared: Arc<MockShared<A>>,
}

struct MockShared<A: Activity> {
    activity: A,
    body: Box<Body<A>>,
    state: Mutex<MockState<A::Output>>,
}

struct MockState<O> {
    calls: Vec<Payload>,
    overrides: VecDeque<Result<O, ActivityError>>,
}

impl<A: Activity> Clone for Mock<A> {
    fn clone(&self) -> Self {
        Mock {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A: Activity> std::fmt::Debug for Mock<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Mock")
            .field("activity", &A::NAME)
            .field("calls", &state.calls.len())
            .field("overrides", &state.overrides.len())
            .finish()
    }
}

impl<A: Activity> Mock<A> {
    /// Replaces `activity` with `body`, which gets each call's input.
    pub fn new<F, Fut>(activity: A, body: F) -> Self
    where
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        Mock::with_context(activity, move |_ctx, input| body(input))
    }

    /// Replaces `activity` with `body`, which also gets the attempt's context (workflow id,
    /// attempt number, idempotency key, resources).
    pub fn with_context<F, Fut>(activity: A, body: F) -> Self
    where
        F: Fn(ActivityContext, A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        Mock {
            shared: Arc::new(MockShared {
                activity,
                body: Box::new(move |ctx, input| Box::pin(body(ctx, input))),
                state: Mutex::new(MockState {
                    calls: Vec::new(),
                    overrides: VecDeque::new(),
                }),
            }),
        }
    }

    /// Replaces `activity` with one that always returns `output`.
    pub fn returning(activity: A, output: A::Output) -> Self
    where
        A::Output: Clone + Sync,
    {
        Mock::new(activity, move |_| std::future::ready(Ok(output.clone())))
    }

    /// Replaces `activity` with one that always fails with `error`.
    pub fn failing(activity: A, error: ActivityError) -> Self {
        Mock::new(activity, move |_| std::future::ready(Err(error.clone())))
    }

    /// The next call returns `output` instead of running the closure. Overrides queue up: each
    /// is used by one call (one attempt), in the order they were given.
    pub fn return_once(&self, output: A::Output) -> &Self {
        self.shared.lock().overrides.push_back(Ok(output));
        self
    }

    /// The next call fails with `error` instead of running the closure. A retryable error
    /// ([`ActivityError::failed`]) is retried under the activity's policy, and the retry runs
    /// the closure (or the next override).
    pub fn fail_once(&self, error: ActivityError) -> &Self {
        self.shared.lock().overrides.push_back(Err(error));
        self
    }

    /// Overrides not used yet.
    pub fn pending_overrides(&self) -> usize {
        self.shared.lock().overrides.len()
    }

    /// How many times the activity was called (every attempt counts).
    pub fn call_count(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// The input of every call, in order.
    ///
    /// # Panics
    /// If a recorded input no longer decodes as `A::Input`, which cannot happen for inputs the
    /// engine sent.
    pub fn calls(&self) -> Vec<A::Input> {
        self.shared
            .lock()
            .calls
            .iter()
            .map(|payload| {
                codec::decode(payload).expect("a recorded mock input decodes as the activity input")
            })
            .collect()
    }

    /// The input of the last call.
    pub fn last_call(&self) -> Option<A::Input> {
        self.calls().pop()
    }

    /// Forgets the recorded calls (not the overrides).
    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// The mock as the engine stores activities.
    pub fn to_dyn(&self) -> Arc<dyn DynActivity> {
        Arc::clone(&self.shared) as Arc<dyn DynActivity>
    }
}

impl<A: Activity> MockShared<A> {
    fn lock(&self) -> MutexGuard<'_, MockState<A::Output>> {
        // Calls and overrides are pushed and popped whole; a panic cannot leave them torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<A: Activity> DynActivity for MockShared<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn options(&self) -> ActivityOptions {
        self.activity.options()
    }

    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Payload,
    ) -> BoxFuture<Result<Payload, ActivityError>> {
        Box::pin(async move {
            let decoded: A::Input = codec::decode(&input).map_err(|e| ActivityError::Payload {
                message: e.to_string(),
            })?;
            let override_ = {
                let mut state = self.lock();
                state.calls.push(input);
                state.overrides.pop_front()
            };
            let output = match override_ {
                Some(result) => result?,
                None => (self.body)(ctx, decoded).await?,
            };
            codec::encode(&output).map_err(|e| ActivityError::Payload {
                message: e.to_string(),
            })
        })
    }
}
