//! [`TestEngine`]: the real [`Engine`] on memory storage (or any other, redb included), with a
//! [`VirtualClock`], mocks, an activity log, and a way to wait until the engine has nothing left
//! to do.
//!
//! **Settled** means: no workflow can make progress until virtual time passes or a signal
//! arrives. Concretely, every workflow that still has a runner task is waiting out a retry
//! backoff on the virtual clock, no timer is due, and no clock sleeper is due but not yet woken.
//! The check reads the engine's own counters (`Engine::active_workflows`, `Engine::next_timer`),
//! the clock's sleepers, and which tasks are inside an activity attempt (every activity runs
//! through the kit's recorder); it holds for several consecutive polls with no commit in
//! between before [`TestEngine::settle`] returns. No wall-clock time is involved.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weft_runtime::engine::{EngineBuilder, WorkflowDescription, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    Activity, ActivityError, ActivitySet, DynActivity, Engine, EngineError, Resources, Signal,
    StartOptions, Workflow, WorkflowHandle,
};

use crate::activity_log::{ActivityCall, ActivityLog, Recorded, TaskRole};
use crate::mock::Mock;
use crate::storage_faults::{FaultControl, FaultyStorage};
use weft_runtime::engine::VirtualClock;

/// A test engine operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestError {
    /// The engine refused or failed the operation.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The workflow cannot finish: the engine is settled, no timer or backoff is pending, and
    /// the workflow is not done.
    #[error(
        "workflow `{id}` cannot finish: it waits on {waiting_on} and nothing else is pending; send what it waits for before asking for its result"
    )]
    Stuck {
        /// The workflow's id.
        id: String,
        /// What it waits on, for people.
        waiting_on: String,
    },
}

impl TestError {
    /// A stable, machine-readable code: the engine error's own code, or `testing.stuck`.
    pub fn code(&self) -> &'static str {
        match self {
            TestError::Engine(e) => e.code(),
            TestError::Stuck { .. } => "testing.stuck",
        }
    }
}

type Registration = Arc<dyn Fn(EngineBuilder) -> EngineBuilder + Send + Sync>;

/// Everything needed to build the engine again on the same storage: the registrations, the
/// activity implementations, the resources.
#[derive(Clone)]
struct Recipe {
    registrations: Vec<Registration>,
    /// Declared activities with the implementation their workflow gave, by name.
    declared: BTreeMap<&'static str, Option<Arc<dyn DynActivity>>>,
    /// Mocks and other replacements, by name; they win over `declared`.
    replaced: BTreeMap<&'static str, Arc<dyn DynActivity>>,
    resources: Resources,
    payload_limit: Option<usize>,
}

impl Recipe {
    async fn build(
        &self,
        storage: &FaultyStorage<Arc<dyn Storage>>,
        clock: &VirtualClock,
        log: &Arc<ActivityLog>,
    ) -> Result<Engine, EngineError> {
        let mut builder = Engine::builder(storage.clone())
            .clock(Arc::new(clock.clone()))
            .resources(self.resources.clone());
        if let Some(limit) = self.payload_limit {
            builder = builder.payload_limit(limit);
        }
        for register in &self.registrations {
            builder = register(builder);
        }
        let mut activities: BTreeMap<&'static str, Arc<dyn DynActivity>> = self
            .declared
            .iter()
            .filter_map(|(name, imp)| imp.clone().map(|imp| (*name, imp)))
            .collect();
        activities.extend(self.replaced.iter().map(|(n, a)| (*n, Arc::clone(a))));
        for (name, activity) in activities {
            let recorded = Arc::new(Recorded::new(activity, Arc::clone(log), clock.clone()));
            builder = builder.activity_override(name, recorded);
        }
        builder.build().await
    }
}

/// Configures a [`TestEngine`]. Start with [`TestEngine::builder`].
///
/// Cloning a builder gives an independent configuration that shares the mocks; the crash
/// harness builds one engine per run this way.
#[derive(Clone)]
pub struct TestEngineBuilder {
    recipe: Recipe,
    mocks: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    start: Option<SystemTime>,
    storage: Option<Arc<dyn Storage>>,
}

impl Default for TestEngineBuilder {
    fn default() -> Self {
        TestEngineBuilder {
            recipe: Recipe {
                registrations: Vec::new(),
                declared: BTreeMap::new(),
                replaced: BTreeMap::new(),
                resources: Resources::default(),
                payload_limit: None,
            },
            mocks: HashMap::new(),
            start: None,
            storage: None,
        }
    }
}

impl std::fmt::Debug for TestEngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngineBuilder")
            .field("workflows", &self.recipe.registrations.len())
            .field("activities", &self.recipe.declared.keys())
            .field("replaced", &self.recipe.replaced.keys())
            .finish_non_exhaustive()
    }
}

impl TestEngineBuilder {
    /// Registers a workflow and the activities it declares. Activities that are not mocked or
    /// replaced run for real.
    pub fn register<W: Workflow>(mut self) -> Self {
        self.recipe
            .registrations
            .push(Arc::new(|builder: EngineBuilder| builder.register::<W>()));
        let mut set = ActivitySet::new();
        W::activities(&mut set);
        for (name, imp) in set.iter() {
            let entry = self.recipe.declared.entry(name).or_insert(None);
            if entry.is_none() {
                *entry = imp.cloned();
            }
        }
        self
    }

    /// Replaces activity `activity` with `body`, a closure from its input to its output.
    /// Read the calls later with [`TestEngine::mock`].
    pub fn mock<A, F, Fut>(self, activity: A, body: F) -> Self
    where
        A: Activity,
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        self.with_mock(&Mock::new(activity, body))
    }

    /// Replaces activity `A` with `mock`; the test keeps its clone to read calls and queue
    /// overrides.
    pub fn with_mock<A: Activity>(mut self, mock: &Mock<A>) -> Self {
        self.recipe.replaced.insert(A::NAME, mock.to_dyn());
        self.mocks.insert(
            TypeId::of::<A>(),
            Arc::new(mock.clone()) as Arc<dyn Any + Send + Sync>,
        );
        self
    }

    /// Replaces the activity named `activity.name()` with any implementation, for example a
    /// [`Chaos`](crate::Chaos) wrapper around the real one, or provides one a workflow only
    /// requires.
    pub fn activity(mut self, activity: Arc<dyn DynActivity>) -> Self {
        self.recipe.replaced.insert(activity.name(), activity);
        self
    }

    /// Shared resources that activities read with `ActivityContext::resource`.
    pub fn resources(mut self, resources: Resources) -> Self {
        self.recipe.resources = resources;
        self
    }

    /// The largest payload accepted, in bytes (default: the engine's).
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.recipe.payload_limit = Some(bytes);
        self
    }

    /// Where the virtual clock starts (default: 2030-01-01T00:00:00Z).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.start = Some(at);
        self
    }

    /// Runs the engine on `storage` instead of a fresh memory store: for example a
    /// `RedbStorage` on a temporary file, to run the same tests over the embedded default, or
    /// a store an earlier engine left, to test recovery from it. It is still wrapped in a
    /// [`FaultyStorage`], so [`TestEngine::faults`] works on it too.
    ///
    /// Every engine built from this builder or its clones runs on this one store, so leave it
    /// unset for the crash harness ([`CrashTest`](crate::CrashTest)), which needs a fresh store
    /// per run.
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use weft_runtime::storage::RedbStorage;
    /// use weft_testing::TestEngine;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let engine = TestEngine::builder()
    ///     .storage(RedbStorage::create(dir.path().join("weft.redb"))?)
    ///     .build()
    ///     .await?;
    /// # drop(engine);
    /// # Ok(())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    /// #     .block_on(run()).unwrap();
    /// ```
    pub fn storage(mut self, storage: impl Storage) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// Builds the engine behind a [`FaultyStorage`], on the store given to
    /// [`TestEngineBuilder::storage`] or else a fresh memory store, with a fresh virtual clock.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] when the engine cannot be built on the store (see
    /// `EngineBuilder::build`: a store it cannot read or own, a registration it refuses).
    ///
    /// # Cancel safety
    ///
    /// As `EngineBuilder::build`: dropped before it returns, the engine it built stops.
    pub async fn build(self) -> Result<TestEngine, TestError> {
        let clock = self
            .start
            .map_or_else(VirtualClock::default, VirtualClock::new);
        let store = self
            .storage
            .unwrap_or_else(|| Arc::new(MemoryStorage::new()));
        let storage = FaultyStorage::new(store);
        let log = Arc::new(ActivityLog::default());
        let engine = self.recipe.build(&storage, &clock, &log).await?;
        let test = TestEngine {
            engine,
            clock,
            storage,
            log,
            recipe: self.recipe,
            mocks: self.mocks,
        };
        test.settle().await;
        Ok(test)
    }
}

/// The real [`Engine`] with a [`VirtualClock`], on memory storage or on the store given to
/// [`TestEngineBuilder::storage`] (redb, say): timers fire when the test advances time,
/// activities can be mocked, and every operation that changes something returns once the engine
/// has [settled](TestEngine::settle).
///
/// Designed for tokio's current-thread runtime (the `#[tokio::test]` default).
pub struct TestEngine {
    engine: Engine,
    clock: VirtualClock,
    storage: FaultyStorage<Arc<dyn Storage>>,
    log: Arc<ActivityLog>,
    recipe: Recipe,
    mocks: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine")
            .field("engine", &self.engine)
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

/// Polls `future` once: its output if it is ready at once.
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        output = future => Some(output),
        () = std::future::ready(()) => None,
    }
}

impl TestEngine {
    /// Starts configuring a test engine.
    pub fn builder() -> TestEngineBuilder {
        TestEngineBuilder::default()
    }

    /// The engine itself, for anything this wrapper does not offer. Operations on it do not
    /// wait for the engine to settle; call [`TestEngine::settle`] after them.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The virtual time now.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The fault script of the engine's storage: make writes or reads fail, tear writes.
    pub fn faults(&self) -> FaultControl {
        self.storage.control()
    }

    /// The engine's storage: a [`FaultyStorage`] over a [`MemoryStorage`] or the store given to
    /// [`TestEngineBuilder::storage`].
    pub fn storage(&self) -> &FaultyStorage<Arc<dyn Storage>> {
        &self.storage
    }

    /// Every activity attempt run so far, mocked or real, across restarts, in start order.
    pub fn activity_calls(&self) -> Vec<ActivityCall> {
        self.log.calls()
    }

    /// The mock registered for activity `A`.
    ///
    /// # Panics
    /// If `A` was not mocked with [`TestEngineBuilder::mock`] or [`TestEngineBuilder::with_mock`].
    pub fn mock<A: Activity>(&self, _activity: A) -> Mock<A> {
        self.mocks
            .get(&TypeId::of::<A>())
            .and_then(|any| any.clone().downcast::<Mock<A>>().ok())
            .map(|mock| (*mock).clone())
            .unwrap_or_else(|| {
                panic!(
                    "activity `{}` is not mocked; mock it with `TestEngine::builder().mock(..)`",
                    A::NAME
                )
            })
    }

    /// Starts a workflow and returns once the engine has settled: the workflow has reached
    /// its first wait on time or a signal, or finished.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::start`.
    ///
    /// # Cancel safety
    ///
    /// As the engine's own call: once its first poll has reached the engine, dropping this
    /// future gives up only the wait for the engine to settle.
    pub async fn start<W: Workflow>(
        &self,
        input: W::Input,
    ) -> Result<WorkflowHandle<W>, TestError> {
        self.start_with::<W>(input, StartOptions::default()).await
    }

    /// [`TestEngine::start`] with an id or idempotency key.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::start_with`.
    ///
    /// # Cancel safety
    ///
    /// As the engine's own call: once its first poll has reached the engine, dropping this
    /// future gives up only the wait for the engine to settle.
    pub async fn start_with<W: Workflow>(
        &self,
        input: W::Input,
        options: StartOptions,
    ) -> Result<WorkflowHandle<W>, TestError> {
        let handle = self.engine.start_with::<W>(input, options).await?;
        self.settle().await;
        Ok(handle)
    }

    /// Sends a signal and returns once the engine has settled.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::signal`.
    ///
    /// # Cancel safety
    ///
    /// As the engine's own call: once its first poll has reached the engine, dropping this
    /// future gives up only the wait for the engine to settle.
    pub async fn signal<S: Signal>(&self, id: &str, value: S) -> Result<(), TestError> {
        self.engine.signal(id, value).await?;
        self.settle().await;
        Ok(())
    }

    /// Cancels a workflow and returns once the engine has settled.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::cancel`.
    ///
    /// # Cancel safety
    ///
    /// As the engine's own call: once its first poll has reached the engine, dropping this
    /// future gives up only the wait for the engine to settle.
    pub async fn cancel(&self, id: &str) -> Result<(), TestError> {
        self.engine.cancel(id).await?;
        self.settle().await;
        Ok(())
    }

    /// The workflow's result. While it is not finished, virtual time jumps to the next timer
    /// or retry backoff whenever the engine settles; if nothing is pending at all (it waits for
    /// a signal nobody sent), this fails with [`TestError::Stuck`] instead of hanging. While
    /// storage refuses the engine's commits (see `Engine::storage_fault`), it fails with that
    /// storage error; the engine retries on its own, so asking again after the fault is gone
    /// gives the result.
    ///
    /// # Errors
    ///
    /// [`TestError::Stuck`] and the storage error as said above; [`TestError::Engine`] with the
    /// engine's error otherwise, as `Engine::result`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it reads, waits and moves the virtual clock, which stays where it was
    /// moved to; dropping it changes nothing else.
    pub async fn result<W: Workflow>(
        &self,
        id: &str,
    ) -> Result<Result<W::Output, W::Error>, TestError> {
        loop {
            self.settle().await;
            // The engine reads storage off its async workers, so even a finished workflow's
            // `result` is not ready at its first poll: a finished or parked one (as `describe`
            // reads it, awaited to the end) is awaited, since it answers without waiting.
            let status = self.engine.describe(id).await?.status;
            if status.is_terminal() || status == WorkflowStatus::Parked {
                return Ok(self.engine.result::<W>(id).await?);
            }
            if let Some(result) = poll_once(self.engine.result::<W>(id)).await {
                return Ok(result?);
            }
            // Storage refuses the engine's commits: it retries them on its own, on wall time,
            // until the fault is gone; report it rather than move virtual time meanwhile.
            if let Some(fault) = self.engine.storage_fault() {
                return Err(EngineError::Storage(fault).into());
            }
            match self.next_deadline() {
                Some(deadline) => self.clock.set(deadline),
                None => {
                    let description = self.engine.describe(id).await?;
                    return Err(TestError::Stuck {
                        id: id.to_string(),
                        waiting_on: waiting_on(&description),
                    });
                }
            }
        }
    }

    /// Status, step, pending command and state as JSON, as `Engine::describe` gives them.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::describe`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn describe(&self, id: &str) -> Result<WorkflowDescription, TestError> {
        Ok(self.engine.describe(id).await?)
    }

    /// The workflow's current state enum, typed, for assertions such as
    /// `assert!(matches!(state, CheckoutState::AwaitSleep1 { .. }))`. Fails with
    /// `EngineError::Finished` once the workflow has finished (its state is gone).
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::state`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn state<W: Workflow>(&self, id: &str) -> Result<W::State, TestError> {
        Ok(self.engine.state::<W>(id).await?)
    }

    /// Answers query `Q` from the workflow's persisted state, as `Engine::query` does: it reads,
    /// never writes, and never wakes the workflow.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::query`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn query<Q: weft_runtime::Query>(&self, id: &str) -> Result<Q::Output, TestError> {
        Ok(self.engine.query::<Q>(id).await?)
    }

    /// The name of the workflow's current state variant; `None` once it has finished.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::describe`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn state_name(&self, id: &str) -> Result<Option<&'static str>, TestError> {
        Ok(self.engine.describe(id).await?.state_name)
    }

    /// The workflow's status.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] with the engine's error, as `Engine::describe`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn status(&self, id: &str) -> Result<WorkflowStatus, TestError> {
        Ok(self.engine.describe(id).await?.status)
    }

    /// Moves virtual time forward by `by`. Timers and retry backoffs that fall due on the way
    /// fire in deadline order, each at its own deadline; this returns once the woken workflows
    /// have reached their next wait or finished (the engine has settled).
    ///
    /// # Cancel safety
    ///
    /// Dropped midway, the clock stays at the last deadline it reached; calling again with the
    /// remaining time continues from there.
    pub async fn advance_time(&self, by: Duration) {
        let target = self.clock.now() + by;
        loop {
            self.settle().await;
            match self.next_deadline() {
                Some(next) if next <= target => self.clock.set(next),
                _ => break,
            }
        }
        self.clock.set(target);
        self.settle().await;
    }

    /// The earliest armed timer or clock sleeper after now.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let now = self.clock.now();
        [self.engine.next_timer(), self.clock.next_deadline()]
            .into_iter()
            .flatten()
            .filter(|deadline| *deadline > now)
            .min()
    }

    /// Stops the engine and builds a new one on the same storage, as after a crash: nothing in
    /// memory survives, the new engine recovers every in-flight workflow from its last commit.
    /// The clock, the mocks and the activity log carry over. Returns once it has settled.
    ///
    /// # Errors
    ///
    /// [`TestError::Engine`] when the new engine cannot be built, as `EngineBuilder::build`.
    ///
    /// # Cancel safety
    ///
    /// Dropped midway, the old engine may be stopped while this still holds it, or the new
    /// one may not have settled yet: call again to restart.
    pub async fn restart(&mut self) -> Result<(), TestError> {
        self.engine.clone().shutdown().await;
        self.engine = self
            .recipe
            .build(&self.storage, &self.clock, &self.log)
            .await?;
        self.settle().await;
        Ok(())
    }

    /// Stops the engine and lets go of its store, so that a redb file it ran on can be opened
    /// again (once every `WorkflowHandle` of it is dropped too); see `Engine::shutdown`.
    ///
    /// # Cancel safety
    ///
    /// The engine stops at the first poll; dropping this future only gives up waiting for its
    /// tasks to let go of the store.
    pub async fn shutdown(self) {
        self.engine.shutdown().await;
    }

    /// Whether the engine has settled right now; see the module documentation.
    pub fn is_settled(&self) -> bool {
        let (now, sleepers) = self.clock.sleepers();
        if sleepers.iter().any(|sleeper| sleeper.deadline <= now) {
            return false;
        }
        if self
            .engine
            .next_timer()
            .is_some_and(|deadline| deadline <= now)
        {
            return false;
        }
        let in_backoff = sleepers
            .iter()
            .filter(|sleeper| self.log.role(sleeper.task) == TaskRole::Backoff)
            .count();
        // A runner whose commit the writer holds for a retry (storage fails) waits on wall time
        // for storage to heal, like an activity in backoff. An activity still running then
        // belongs to such a workflow (say, a race's loser, stopped once the winner's commit
        // lands): whatever it returns waits for storage too.
        let held = self.engine.transitions_awaiting_storage();
        self.engine.active_workflows() <= in_backoff + held && (self.log.running() == 0 || held > 0)
    }

    fn progress(&self) -> (u64, u64, usize) {
        let stats = self.engine.stats();
        (
            stats.transitions,
            stats.failed_batches,
            self.log.calls().len(),
        )
    }

    /// Waits until no workflow can make progress without virtual time passing or a signal
    /// arriving. Never advances the clock. An activity that never returns keeps the engine
    /// from settling.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (and waits), so dropping it changes nothing.
    pub async fn settle(&self) {
        const QUIET_POLLS: u32 = 3;
        let mut quiet = 0;
        let mut last = self.progress();
        let mut polls: u32 = 0;
        loop {
            let progress = self.progress();
            if self.is_settled() && progress == last {
                quiet += 1;
                if quiet >= QUIET_POLLS {
                    return;
                }
            } else {
                quiet = 0;
            }
            last = progress;
            polls = polls.saturating_add(1);
            if polls < 100_000 {
                tokio::task::yield_now().await;
            } else {
                // Long waits (an activity doing real I/O) stop spinning; the check above
                // decides, this only spaces the polls.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// What a described workflow waits on, for people.
pub(crate) fn waiting_on(description: &WorkflowDescription) -> String {
    use weft_runtime::engine::Pending;
    match &description.pending {
        Some(Pending::Signal { name }) => format!("signal `{name}`"),
        Some(Pending::Timer { .. }) => "a timer".to_string(),
        Some(Pending::Activity {
            name,
            attempt,
            max_attempts,
        }) => format!("activity `{name}`, attempt {attempt} of {max_attempts}"),
        Some(Pending::Group {
            race,
            branches,
            finished,
        }) => format!(
            "`ctx.{}` ({finished} of {branches} branches finished)",
            if *race { "race" } else { "all" }
        ),
        Some(Pending::Child { id }) => format!("child workflow `{id}`"),
        None => format!("nothing (status {:?})", description.status),
    }
}
