//! Hand-written workflows and test doubles shared by the engine tests.
//!
//! The workflows are written the way `#[workflow]` expands: an enum state machine whose step
//! goes through `weft_runtime::__private`'s resume helpers.

#![allow(dead_code, non_camel_case_types)]

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::__private::{self as p, Next, Resumed};
use weft_runtime::activity::BoxFuture;
use weft_runtime::codec::{self, Payload};
use weft_runtime::engine::{Engine, EngineError};
use weft_runtime::storage::{Batch, Condition, Entry, Storage, StorageError};
use weft_runtime::{
    Activity, ActivityContext, ActivityError, ActivityOptions, ActivitySet, DynActivity, Resume,
    Signal, StepError, Transition, Workflow, WorkflowContext, WorkflowError,
};

// ---------------------------------------------------------------------------------------------
// Activities

/// `greet(name) -> "hello, {name}"`
pub struct greet;

impl Activity for greet {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "greet";

    async fn execute(&self, _ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("hello, {name}"))
    }
}

/// `seal((greeting, approver)) -> "{greeting}, approved by {approver}"`
pub struct seal;

impl Activity for seal {
    type Input = (String, String);
    type Output = String;
    const NAME: &'static str = "seal";

    fn options(&self) -> ActivityOptions {
        ActivityOptions {
            retry: weft_runtime::RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                backoff_percent: 200,
                max_backoff: Duration::from_millis(4),
            },
            attempt_timeout: None,
        }
    }

    async fn execute(
        &self,
        _ctx: ActivityContext,
        (greeting, by): (String, String),
    ) -> Result<String, ActivityError> {
        Ok(format!("{greeting}, approved by {by}"))
    }
}

/// The signal `flow` and `waiter` wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
}

impl Signal for Approval {
    const NAME: &'static str = "approval";
}

// ---------------------------------------------------------------------------------------------
// flow: run greet, sleep 60 s, wait for Approval, run seal, return.

pub struct flow;

pub const FLOW_SLEEP: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
pub enum FlowState {
    Start { name: String },
    AwaitGreet { name: String },
    AwaitSleep { greeting: String },
    AwaitApproval { greeting: String },
    AwaitSeal { greeting: String },
}

type FlowNext = Next<FlowState, String>;

fn exit(next: FlowNext) -> Result<Transition<flow>, StepError> {
    p::finish::<flow>(Ok(next))
}

impl Workflow for flow {
    type Input = String;
    type Output = String;
    type Error = WorkflowError;
    type State = FlowState;
    const NAME: &'static str = "flow";
    const FINGERPRINT: u64 = p::fnv1a(b"flow: Start AwaitGreet AwaitSleep AwaitApproval AwaitSeal");

    fn start(name: String) -> FlowState {
        FlowState::Start { name }
    }

    fn step(
        ctx: &mut WorkflowContext,
        state: FlowState,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        let name = Self::state_name(&state);
        match state {
            FlowState::Start { name: who } => match p::resume_start(name, resume) {
                Resumed::Value(()) => Ok(Transition::Suspend {
                    command: ctx.run(greet, who.clone()).into_command()?,
                    state: FlowState::AwaitGreet { name: who },
                }),
                Resumed::Exit(next) => exit(next),
            },
            FlowState::AwaitGreet { .. } => {
                match p::resume_activity::<greet, _, _>(&greet, name, resume) {
                    Resumed::Value(Ok(greeting)) => Ok(Transition::Suspend {
                        state: FlowState::AwaitSleep { greeting },
                        command: ctx.sleep(FLOW_SLEEP).into_command()?,
                    }),
                    Resumed::Value(Err(e)) => Ok(Transition::Complete(Err(e.into()))),
                    Resumed::Exit(next) => exit(next),
                }
            }
            FlowState::AwaitSleep { greeting } => match p::resume_timer(name, resume) {
                Resumed::Value(()) => Ok(Transition::Suspend {
                    state: FlowState::AwaitApproval { greeting },
                    command: ctx.wait_for_signal::<Approval>().into_command()?,
                }),
                Resumed::Exit(next) => exit(next),
            },
            FlowState::AwaitApproval { greeting } => {
                match p::resume_signal::<Approval, _, _>(name, resume) {
                    Resumed::Value(approval) => Ok(Transition::Suspend {
                        command: ctx
                            .run(seal, (greeting.clone(), approval.by))
                            .into_command()?,
                        state: FlowState::AwaitSeal { greeting },
                    }),
                    Resumed::Exit(next) => exit(next),
                }
            }
            FlowState::AwaitSeal { .. } => {
                match p::resume_activity::<seal, _, _>(&seal, name, resume) {
                    Resumed::Value(Ok(sealed)) => Ok(Transition::Complete(Ok(sealed))),
                    Resumed::Value(Err(e)) => Ok(Transition::Complete(Err(e.into()))),
                    Resumed::Exit(next) => exit(next),
                }
            }
        }
    }

    fn state_name(state: &FlowState) -> &'static str {
        match state {
            FlowState::Start { .. } => "Start",
            FlowState::AwaitGreet { .. } => "AwaitGreet",
            FlowState::AwaitSleep { .. } => "AwaitSleep",
            FlowState::AwaitApproval { .. } => "AwaitApproval",
            FlowState::AwaitSeal { .. } => "AwaitSeal",
        }
    }

    fn activities(set: &mut ActivitySet) {
        set.add(greet);
        set.add(seal);
    }
}

// ---------------------------------------------------------------------------------------------
// single: run greet once and return its output.

pub struct single;

#[derive(Debug, Serialize, Deserialize)]
pub enum SingleState {
    Start { name: String },
    AwaitGreet,
}

impl Workflow for single {
    type Input = String;
    type Output = String;
    type Error = WorkflowError;
    type State = SingleState;
    const NAME: &'static str = "single";
    const FINGERPRINT: u64 = p::fnv1a(b"single: Start AwaitGreet");

    fn start(name: String) -> SingleState {
        SingleState::Start { name }
    }

    fn step(
        ctx: &mut WorkflowContext,
        state: SingleState,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        let name = Self::state_name(&state);
        match state {
            SingleState::Start { name: who } => match p::resume_start(name, resume) {
                Resumed::Value(()) => Ok(Transition::Suspend {
                    command: ctx.run(greet, who).into_command()?,
                    state: SingleState::AwaitGreet,
                }),
                Resumed::Exit(next) => p::finish::<Self>(Ok(next)),
            },
            SingleState::AwaitGreet => {
                match p::resume_activity::<greet, _, _>(&greet, name, resume) {
                    Resumed::Value(Ok(greeting)) => Ok(Transition::Complete(Ok(greeting))),
                    Resumed::Value(Err(e)) => Ok(Transition::Complete(Err(e.into()))),
                    Resumed::Exit(next) => p::finish::<Self>(Ok(next)),
                }
            }
        }
    }

    fn state_name(state: &SingleState) -> &'static str {
        match state {
            SingleState::Start { .. } => "Start",
            SingleState::AwaitGreet => "AwaitGreet",
        }
    }

    fn activities(set: &mut ActivitySet) {
        set.add(greet);
    }
}

// ---------------------------------------------------------------------------------------------
// waiter: wait for `count` Approvals and return the approvers, in order.

pub struct waiter;

#[derive(Debug, Serialize, Deserialize)]
pub enum WaiterState {
    Start { count: u32 },
    AwaitApproval { left: u32, seen: Vec<String> },
}

impl Workflow for waiter {
    type Input = u32;
    type Output = Vec<String>;
    type Error = WorkflowError;
    type State = WaiterState;
    const NAME: &'static str = "waiter";
    const FINGERPRINT: u64 = p::fnv1a(b"waiter: Start AwaitApproval");

    fn start(count: u32) -> WaiterState {
        WaiterState::Start { count }
    }

    fn step(
        ctx: &mut WorkflowContext,
        state: WaiterState,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        let name = Self::state_name(&state);
        let (left, seen) = match state {
            WaiterState::Start { count } => match p::resume_start(name, resume) {
                Resumed::Value(()) => (count, Vec::new()),
                Resumed::Exit(next) => return p::finish::<Self>(Ok(next)),
            },
            WaiterState::AwaitApproval { left, mut seen } => {
                match p::resume_signal::<Approval, _, _>(name, resume) {
                    Resumed::Value(approval) => {
                        seen.push(approval.by);
                        (left - 1, seen)
                    }
                    Resumed::Exit(next) => return p::finish::<Self>(Ok(next)),
                }
            }
        };
        if left == 0 {
            Ok(Transition::Complete(Ok(seen)))
        } else {
            Ok(Transition::Suspend {
                state: WaiterState::AwaitApproval { left, seen },
                command: ctx.wait_for_signal::<Approval>().into_command()?,
            })
        }
    }

    fn state_name(state: &WaiterState) -> &'static str {
        match state {
            WaiterState::Start { .. } => "Start",
            WaiterState::AwaitApproval { .. } => "AwaitApproval",
        }
    }

    fn activities(_set: &mut ActivitySet) {}
}

// ---------------------------------------------------------------------------------------------
// call_flaky: run `flaky` once and return its output (or fail with its error).

/// An activity whose options exercise every retry knob; tests override its body.
pub struct flaky;

/// `flaky`'s policy: 3 attempts, backoff 10 s then 15 s (capped), 30 s per attempt.
pub fn flaky_options() -> ActivityOptions {
    ActivityOptions {
        retry: weft_runtime::RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(10),
            backoff_percent: 200,
            max_backoff: Duration::from_secs(15),
        },
        attempt_timeout: Some(Duration::from_secs(30)),
    }
}

impl Activity for flaky {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "flaky";

    fn options(&self) -> ActivityOptions {
        flaky_options()
    }

    async fn execute(&self, ctx: ActivityContext, _input: u32) -> Result<u32, ActivityError> {
        Ok(ctx.attempt())
    }
}

pub struct call_flaky;

#[derive(Debug, Serialize, Deserialize)]
pub enum CallFlakyState {
    Start { input: u32 },
    AwaitFlaky,
}

impl Workflow for call_flaky {
    type Input = u32;
    type Output = u32;
    type Error = WorkflowError;
    type State = CallFlakyState;
    const NAME: &'static str = "call_flaky";
    const FINGERPRINT: u64 = p::fnv1a(b"call_flaky: Start AwaitFlaky");

    fn start(input: u32) -> CallFlakyState {
        CallFlakyState::Start { input }
    }

    fn step(
        ctx: &mut WorkflowContext,
        state: CallFlakyState,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        let name = Self::state_name(&state);
        match state {
            CallFlakyState::Start { input } => match p::resume_start(name, resume) {
                Resumed::Value(()) => Ok(Transition::Suspend {
                    command: ctx.run(flaky, input).into_command()?,
                    state: CallFlakyState::AwaitFlaky,
                }),
                Resumed::Exit(next) => p::finish::<Self>(Ok(next)),
            },
            CallFlakyState::AwaitFlaky => {
                match p::resume_activity::<flaky, _, _>(&flaky, name, resume) {
                    Resumed::Value(Ok(out)) => Ok(Transition::Complete(Ok(out))),
                    Resumed::Value(Err(e)) => Ok(Transition::Complete(Err(e.into()))),
                    Resumed::Exit(next) => p::finish::<Self>(Ok(next)),
                }
            }
        }
    }

    fn state_name(state: &CallFlakyState) -> &'static str {
        match state {
            CallFlakyState::Start { .. } => "Start",
            CallFlakyState::AwaitFlaky => "AwaitFlaky",
        }
    }

    fn activities(set: &mut ActivitySet) {
        set.add(flaky);
    }
}

// ---------------------------------------------------------------------------------------------
// Test doubles

/// An activity implemented by a closure over the decoded input, for overrides.
pub struct FnActivity<F> {
    name: &'static str,
    options: ActivityOptions,
    f: F,
}

impl<F, Fut> FnActivity<F>
where
    F: Fn(ActivityContext, Payload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Payload, ActivityError>> + Send + 'static,
{
    /// An override named `name` with default options.
    pub fn new(name: &'static str, f: F) -> Arc<Self> {
        Self::with_options(name, ActivityOptions::default(), f)
    }

    /// An override with explicit default options (used only when no stored options apply).
    pub fn with_options(name: &'static str, options: ActivityOptions, f: F) -> Arc<Self> {
        Arc::new(FnActivity { name, options, f })
    }
}

impl<F, Fut> DynActivity for FnActivity<F>
where
    F: Fn(ActivityContext, Payload) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Payload, ActivityError>> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn options(&self) -> ActivityOptions {
        self.options.clone()
    }
    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Payload,
    ) -> BoxFuture<Result<Payload, ActivityError>> {
        Box::pin((self.f)(ctx, input))
    }
}

/// Encodes a value the way the engine does.
pub fn enc<T: Serialize>(value: &T) -> Payload {
    codec::encode(value).unwrap()
}

/// Decodes a value the way the engine does.
pub fn dec<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    codec::decode(bytes).unwrap()
}

/// A `greet` that counts its calls by idempotency key, then greets.
#[derive(Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<(String, u32)>>>,
}

impl CallLog {
    pub fn record(&self, ctx: &ActivityContext) {
        self.calls
            .lock()
            .unwrap()
            .push((ctx.idempotency_key(), ctx.attempt()));
    }
    pub fn calls(&self) -> Vec<(String, u32)> {
        self.calls.lock().unwrap().clone()
    }
    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

/// A storage wrapper whose writes fail while `failing` is set, and which can slow down
/// every write (to model a slow fsync).
#[derive(Clone)]
pub struct FlakyStorage<S> {
    pub inner: S,
    pub failing: Arc<AtomicBool>,
    pub write_delay: Option<Duration>,
    pub writes: Arc<AtomicUsize>,
}

impl<S: Storage + Clone> FlakyStorage<S> {
    pub fn new(inner: S) -> Self {
        FlakyStorage {
            inner,
            failing: Arc::new(AtomicBool::new(false)),
            write_delay: None,
            writes: Arc::new(AtomicUsize::new(0)),
        }
    }
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl<S: Storage> Storage for FlakyStorage<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }
    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan_rev(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if let Some(delay) = self.write_delay {
            std::thread::sleep(delay);
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StorageError::backend("injected write failure"));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.apply_if(conditions, batch)
    }
}

/// An engine on `storage` with only `W` registered and every other setting at its default: the
/// setup most tests start from.
pub async fn engine_for<W: Workflow>(storage: impl Storage) -> Engine {
    Engine::builder(storage)
        .register::<W>()
        .build()
        .await
        .unwrap()
}

/// All keys and values of a storage, for before/after comparisons.
pub fn dump(storage: &dyn Storage) -> HashMap<Vec<u8>, Vec<u8>> {
    storage
        .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .unwrap()
        .into_iter()
        .collect()
}

/// Polls `check` until it holds; panics after ten seconds so a broken engine fails instead of
/// hanging. (A bounded poll, not a timing assumption: nothing asserts how long it took.)
pub async fn eventually<F: FnMut() -> bool>(mut check: F) {
    for _ in 0..10_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition never became true");
}

/// Moves a manual clock forward one second at a time until `check` holds, so a test does not
/// need to know exactly when the engine starts waiting on the clock.
pub async fn advance_until<F: FnMut() -> bool>(
    clock: &weft_runtime::engine::VirtualClock,
    mut check: F,
) {
    for _ in 0..10_000 {
        if check() {
            return;
        }
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition never became true");
}

/// Waits until workflow `id` has the given status.
pub async fn wait_status(engine: &Engine, id: &str, status: weft_runtime::engine::WorkflowStatus) {
    for _ in 0..10_000 {
        match engine.describe(id).await {
            Ok(d) if d.status == status => return,
            Ok(_) | Err(EngineError::NotFound { .. }) => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Err(e) => panic!("describe failed: {e}"),
        }
    }
    panic!("workflow {id} never reached {status:?}");
}

/// Waits until workflow `id` is suspended in the state named `state`.
pub async fn wait_state(engine: &Engine, id: &str, state: &str) {
    for _ in 0..10_000 {
        match engine.describe(id).await {
            Ok(d) if d.state_name == Some(state) => return,
            Ok(_) | Err(EngineError::NotFound { .. }) => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Err(e) => panic!("describe failed: {e}"),
        }
    }
    panic!("workflow {id} never reached state {state}");
}
