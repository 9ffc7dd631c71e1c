//! The crash harness: [`survives_crashes`] and its builder [`CrashTest`].
//!
//! It runs a workflow once normally on a [`TestEngine`], recording its output and, per step,
//! the activity result the workflow went on with; that run makes `n` commits. Then, for
//! `k = 1, 2, ...`, it runs the workflow again from scratch and crashes the engine right after
//! its `k`-th commit: every write from the next one on fails (the engine sees a storage error,
//! as when the disk or the process dies), then the engine is dropped and a new one is built on
//! the same store, which recovers the workflow from its last commit. Each run must reach the
//! same output with the same activity results. The run for `k = n` finishes before its crash
//! point, which ends the series. A last run crashes after every commit: each recovered engine
//! is allowed one commit, then crashes again, until the workflow finishes. (Commits of activity
//! attempts alone are not crash points of that run: each would spend an attempt unrun.)
//!
//! Every run also checks that no work is done twice across a crash: an activity (or a branch of
//! a group) whose result was committed before the crash is not run again after it. Activities of
//! child workflows (ids `{id}/...`) are compared and checked like the workflow's own.
//!
//! A commit is any write the engine makes after it took ownership of the store: creating the
//! workflow, each step, each signal stored. While a run waits, the harness sends the next
//! scripted signal of the type the workflow waits for (see [`Signals`]), and skips timers and
//! retry backoffs by moving the virtual clock to the next deadline.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use weft_runtime::activity::BoxFuture;
use weft_runtime::codec::Payload;
use weft_runtime::engine::{Pending, WorkflowStatus};
use weft_runtime::{
    Activity, ActivityError, Decision, Engine, EngineError, Resources, Signal, StartOptions,
    Update, UpdateOptions, Workflow,
};

use crate::mock::Mock;
use crate::test_engine::{TestEngine, TestEngineBuilder, TestError, waiting_on};

/// The id harness runs give their workflow unless told otherwise.
const DEFAULT_WORKFLOW_ID: &str = "crash-test";

/// Sends one scripted message; `Ok(Some(why))` when an update was answered wrongly.
type SendSignal =
    dyn Fn(Engine, String) -> BoxFuture<Result<Option<String>, EngineError>> + Send + Sync;

/// The signals a crash test sends, in order. Each is sent when the workflow waits for a signal
/// of its type; signals of different types keep their own order. A workflow waiting on a group
/// (`ctx.all`, `ctx.race`) gets the next signal of the script before time is skipped, since a
/// group does not say which signals it waits for.
#[derive(Clone, Default)]
pub struct Signals {
    queue: VecDeque<ScriptedSignal>,
}

#[derive(Clone)]
struct ScriptedSignal {
    name: &'static str,
    send: Arc<SendSignal>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.queue.iter().map(|s| s.name))
            .finish()
    }
}

impl Signals {
    /// No signals: for workflows that never wait for one.
    pub fn none() -> Self {
        Signals::default()
    }

    /// Adds `value` to the script. It is cloned for every run.
    pub fn then<S: Signal + Clone + Sync>(mut self, value: S) -> Self {
        self.queue.push_back(ScriptedSignal {
            name: S::NAME,
            send: Arc::new(move |engine: Engine, id: String| {
                let value = value.clone();
                Box::pin(async move { engine.signal(&id, value).await.map(|()| None) })
            }),
        });
        self
    }

    /// Adds an update to the script, sent with `update_id` when the workflow waits for an
    /// update of its type. Every run must answer it with `expected`. A crash that interrupts
    /// the call sends it again with the same update id, so it is delivered once and the
    /// answer is the one committed.
    pub fn then_update<U>(mut self, value: U, update_id: &str, expected: U::Response) -> Self
    where
        U: Update + Clone + Sync,
        U::Response: PartialEq + std::fmt::Debug + Clone + Sync,
    {
        let update_id = update_id.to_string();
        self.queue.push_back(ScriptedSignal {
            name: U::QUEUE,
            send: Arc::new(move |engine: Engine, id: String| {
                let value = value.clone();
                let expected = expected.clone();
                let options = UpdateOptions {
                    update_id: update_id.clone(),
                    timeout: std::time::Duration::from_secs(60),
                };
                Box::pin(async move {
                    let answer = engine.update(&id, value, options).await?;
                    Ok((answer != expected)
                        .then(|| format!("update answered {answer:?}, expected {expected:?}")))
                })
            }),
        });
        self
    }

    /// Adds a review decision to the script, given with `Engine::decide_review` when the
    /// workflow waits on a group (a review is a race of a decision against its deadline).
    pub fn then_decision(mut self, decision: Decision) -> Self {
        self.queue.push_back(ScriptedSignal {
            name: weft_runtime::review::REVIEW_QUEUE,
            send: Arc::new(move |engine: Engine, id: String| {
                let decision = decision.clone();
                Box::pin(async move { engine.decide_review(&id, decision).await.map(|()| None) })
            }),
        });
        self
    }
}

/// A crash test failed: a run did something the normal run did not, or could not go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CrashFailure {
    /// The engine failed an operation the harness needed.
    #[error("{run}: {source}")]
    Engine {
        /// The run that failed.
        run: CrashPoint,
        /// What failed.
        source: TestError,
    },
    /// The workflow waits on something the harness cannot give: a signal not in the script.
    #[error(
        "{run}: the workflow waits on {waiting_on} and nothing else is pending; add it to the signals with `Signals::then`"
    )]
    Stuck {
        /// The run that failed.
        run: CrashPoint,
        /// What the workflow waits on.
        waiting_on: String,
    },
    /// A run answered a scripted update with another response than the script expects.
    #[error("{run}: {message}")]
    WrongAnswer {
        /// The run that failed.
        run: CrashPoint,
        /// Which answer, and what was expected.
        message: String,
    },
    /// The workflow was parked: its state and code do not fit together.
    #[error("{run}: the workflow was parked ({code}): {message}")]
    Parked {
        /// The run that failed.
        run: CrashPoint,
        /// The park reason's code.
        code: String,
        /// The park reason.
        message: String,
    },
    /// A run that crashed ended with another result than the normal run.
    #[error("{run}: the workflow returned {found} after the crash, but {expected} without one")]
    OutputDiffers {
        /// The run that differs.
        run: CrashPoint,
        /// The normal run's result, as JSON.
        expected: String,
        /// This run's result, as JSON.
        found: String,
    },
    /// A run that crashed went on with another activity result than the normal run.
    #[error(
        "{run}: activity result #{index} differs: the normal run had {expected}, this run had {found}"
    )]
    ActivityDiffers {
        /// The run that differs.
        run: CrashPoint,
        /// The position of the result in the run (1-based), in step order.
        index: usize,
        /// The normal run's result there.
        expected: String,
        /// This run's result there.
        found: String,
    },
    /// An activity whose result was committed before a crash ran again after it.
    #[error(
        "{run}: `{activity}` of workflow `{workflow_id}` at step {step}{branch} ran again after a crash, although its result was committed before it"
    )]
    RanAgain {
        /// The run that repeated work.
        run: CrashPoint,
        /// The activity's name.
        activity: &'static str,
        /// The workflow (or child workflow) that ran it.
        workflow_id: String,
        /// Its step.
        step: u64,
        /// ` branch N` inside a group, else empty.
        branch: String,
    },
    /// The normal run committed more than the limit, so the harness stopped.
    #[error(
        "the workflow made more than {limit} commits without finishing; raise `CrashTest::max_commits` if that is expected"
    )]
    TooManyCommits {
        /// The limit.
        limit: u64,
    },
}

impl CrashFailure {
    /// A stable, machine-readable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            CrashFailure::Engine { .. } => "crash.engine",
            CrashFailure::Stuck { .. } => "crash.stuck",
            CrashFailure::WrongAnswer { .. } => "crash.wrong_answer",
            CrashFailure::Parked { .. } => "crash.parked",
            CrashFailure::OutputDiffers { .. } => "crash.output_differs",
            CrashFailure::ActivityDiffers { .. } => "crash.activity_differs",
            CrashFailure::RanAgain { .. } => "crash.ran_again",
            CrashFailure::TooManyCommits { .. } => "crash.too_many_commits",
        }
    }
}

/// Where a harness run crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The normal run: no crash.
    Never,
    /// Right after commit `n` (1-based), once.
    AfterCommit(u64),
    /// After every commit: each recovered engine crashes again after its first commit.
    AfterEveryCommit,
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrashPoint::Never => f.write_str("the normal run (no crash)"),
            CrashPoint::AfterCommit(n) => write!(f, "the run that crashed after commit {n}"),
            CrashPoint::AfterEveryCommit => f.write_str("the run that crashed after every commit"),
        }
    }
}

/// What a passing crash test did.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashReport {
    /// Commits the normal run made: the crash points tried are `1..commits`.
    pub commits: u64,
    /// Runs that crashed once and recovered (`commits - 1`, unless commits are grouped
    /// differently from run to run, as with children running side by side).
    pub crashed_runs: u64,
    /// How often the last run, which crashes after every commit, crashed and recovered.
    pub chain_crashes: u64,
    /// The result every run reached, as JSON: `{"Ok": ..}` or `{"Err": ..}`, or `"Cancelled"` /
    /// `"TimedOut"` for a workflow that ended so without an error of its own.
    pub output: serde_json::Value,
    /// The activity results every run went on with, one per activity step.
    pub activity_results: usize,
    /// The status every run ended with (a failure, a cancellation and a timeout can all end
    /// with the same error).
    pub status: WorkflowStatus,
    /// The names of those activities, in the order of their steps (a group's branches in
    /// branch order; a child's after its parent's), the same in every run.
    pub activities: Vec<&'static str>,
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "survived {} crashes (one after each of {} commits but the last) and a run crashing after every commit ({} crashes), with result {} and the same {} activity results",
            self.crashed_runs, self.commits, self.chain_crashes, self.output, self.activity_results
        )
    }
}

/// Checks that workflow `W` reaches the same result, with the same activity results, however
/// often the engine crashes: once after each commit. Panics with what differs if it does not.
///
/// Activities the workflow declares run for real; to mock them, or to give them resources, use
/// [`CrashTest`]. `signals` are sent as the workflow waits for them.
///
/// ```
/// # use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};
/// # #[activity]
/// # async fn add_one(n: u64) -> Result<u64, ActivityError> { Ok(n + 1) }
/// # #[workflow]
/// # async fn count_up(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
/// #     let a = ctx.run(add_one, n).await?;
/// #     ctx.sleep(std::time::Duration::from_secs(3600)).await;
/// #     let b = ctx.run(add_one, a).await?;
/// #     Ok(b)
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use weft_testing::{Signals, survives_crashes};
///
/// let report = survives_crashes::<count_up>(1, Signals::none()).await;
/// assert_eq!(report.output, serde_json::json!({ "Ok": 3 }));
/// # }
/// ```
///
/// # Cancel safety
///
/// Each run uses its own engine on its own memory store; dropping this future drops them,
/// and nothing outlives it.
pub async fn survives_crashes<W>(input: W::Input, signals: Signals) -> CrashReport
where
    W: Workflow,
    W::Input: Clone,
{
    match CrashTest::<W>::new().signals(signals).run(input).await {
        Ok(report) => report,
        Err(failure) => panic!("workflow `{}` does not survive crashes: {failure}", W::NAME),
    }
}

/// Configures a crash test: mocks, resources, signals. [`survives_crashes`] is the one-line
/// form.
pub struct CrashTest<W> {
    builder: TestEngineBuilder,
    signals: Signals,
    max_commits: u64,
    workflow_id: String,
    execution_timeout: Option<std::time::Duration>,
    cancel_at: Option<u64>,
    _workflow: PhantomData<fn() -> W>,
}

impl<W> std::fmt::Debug for CrashTest<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashTest")
            .field("builder", &self.builder)
            .field("signals", &self.signals)
            .field("max_commits", &self.max_commits)
            .field("workflow_id", &self.workflow_id)
            .field("execution_timeout", &self.execution_timeout)
            .field("cancel_at", &self.cancel_at)
            .finish()
    }
}

impl<W: Workflow> Default for CrashTest<W> {
    fn default() -> Self {
        CrashTest::new()
    }
}

/// One activity result a run went on with.
#[derive(Debug, Clone, PartialEq)]
struct StepResult {
    workflow_id: String,
    step: u64,
    branch: Option<u32>,
    activity: &'static str,
    input: Payload,
    outcome: Result<Payload, ActivityError>,
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` at step {}", self.activity, self.step)?;
        if let Some(branch) = self.branch {
            write!(f, " branch {branch}")?;
        }
        if let Some(child) = self.workflow_id.find('/') {
            write!(f, " of child `{}`", &self.workflow_id[child..])?;
        }
        write!(f, " (input {}) returning ", bytes(&self.input))?;
        match &self.outcome {
            Ok(output) => write!(f, "Ok({})", bytes(output)),
            Err(error) => write!(f, "Err({error})"),
        }
    }
}

/// Encoded bytes for people: the length and the first bytes in hex.
fn bytes(payload: &[u8]) -> String {
    let shown: String = payload
        .iter()
        .take(24)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if payload.len() > 24 { ".." } else { "" };
    format!("{} bytes {shown}{more}", payload.len())
}

/// What one run ended with.
struct RunOutcome {
    output: serde_json::Value,
    status: WorkflowStatus,
    results: Vec<StepResult>,
    /// Writes after the first engine took ownership; for the normal run, its commits.
    commits: u64,
    /// How often the run crashed and recovered.
    crashes: u64,
}

impl<W: Workflow> CrashTest<W> {
    /// A crash test of `W` with its real activities and no signals.
    pub fn new() -> Self {
        CrashTest::with_builder(TestEngine::builder().register::<W>())
    }

    /// A crash test on an engine configured by `builder`, which must register `W`.
    pub fn with_builder(builder: TestEngineBuilder) -> Self {
        CrashTest {
            builder,
            signals: Signals::none(),
            max_commits: 10_000,
            workflow_id: DEFAULT_WORKFLOW_ID.to_string(),
            execution_timeout: None,
            cancel_at: None,
            _workflow: PhantomData,
        }
    }

    /// Changes the engine configuration, for example to register more workflows.
    pub fn configure(mut self, f: impl FnOnce(TestEngineBuilder) -> TestEngineBuilder) -> Self {
        self.builder = f(self.builder);
        self
    }

    /// Replaces activity `activity` with `body` in every run. Per-call overrides would be used
    /// up by the first run, so the closure should decide everything.
    pub fn mock<A, F, Fut>(self, activity: A, body: F) -> Self
    where
        A: Activity,
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, ActivityError>> + Send + 'static,
    {
        self.configure(|b| b.mock(activity, body))
    }

    /// Replaces activity `A` with `mock` in every run; its calls accumulate over all runs.
    pub fn with_mock<A: Activity>(self, mock: &Mock<A>) -> Self {
        self.configure(|b| b.with_mock(mock))
    }

    /// Shared resources that activities read with `ActivityContext::resource`.
    pub fn resources(self, resources: Resources) -> Self {
        self.configure(|b| b.resources(resources))
    }

    /// The signals to send, in order, as the workflow waits for them.
    pub fn signals(mut self, signals: Signals) -> Self {
        self.signals = signals;
        self
    }

    /// The id every run gives the workflow (default `crash-test`). Activities see it in their
    /// idempotency keys, so set it when a shared resource deduplicates by key.
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = id.into();
        self
    }

    /// Starts every run with this execution timeout (`StartOptions::execution_timeout`); the
    /// harness reaches the deadline on the virtual clock like any timer.
    pub fn execution_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Cancels the workflow (`Engine::cancel`) the first time it waits after it committed
    /// `step` steps, before time is skipped or a signal is sent. A crash that hits the
    /// cancellation's own commit sends it again after the restart.
    pub fn cancel_at(mut self, step: u64) -> Self {
        self.cancel_at = Some(step);
        self
    }

    /// The most commits the normal run may make (default 10,000).
    pub fn max_commits(mut self, limit: u64) -> Self {
        self.max_commits = limit;
        self
    }

    /// Runs the test: the normal run, then one run crashing after each commit, then one run
    /// crashing after every commit.
    ///
    /// # Errors
    ///
    /// A [`CrashFailure`]: `Engine` when an engine call of a run fails, `Stuck` when a run
    /// waits on what the script cannot give, `WrongAnswer` for an update answered otherwise
    /// than scripted, `Parked` for a parked workflow, `OutputDiffers` or `ActivityDiffers` when
    /// a crashed run ends with another result or goes on with another activity result than the
    /// normal run.
    ///
    /// # Cancel safety
    ///
    /// Each run uses its own engine on its own memory store; dropping this future drops them,
    /// and nothing outlives it.
    pub async fn run(self, input: W::Input) -> Result<CrashReport, CrashFailure>
    where
        W::Input: Clone,
    {
        let normal = self.run_once(input.clone(), CrashPoint::Never).await?;
        if normal.commits > self.max_commits {
            return Err(CrashFailure::TooManyCommits {
                limit: self.max_commits,
            });
        }
        let mut crashed_runs = 0;
        for n in 1.. {
            let point = CrashPoint::AfterCommit(n);
            let run = self.run_once(input.clone(), point).await?;
            compare(&normal, &run, point)?;
            if run.crashes > 0 {
                crashed_runs += 1;
            } else if n >= normal.commits {
                break;
            }
            // A run that finished before its crash point, with fewer commits than the normal
            // run (workflows running side by side, children say, share commits differently
            // from run to run), does not end the series: every point up to the normal run's
            // commit count is tried.
        }
        let chain = self
            .run_once(input.clone(), CrashPoint::AfterEveryCommit)
            .await?;
        compare(&normal, &chain, CrashPoint::AfterEveryCommit)?;
        Ok(CrashReport {
            commits: normal.commits,
            crashed_runs,
            chain_crashes: chain.crashes,
            output: normal.output,
            activity_results: normal.results.len(),
            activities: normal.results.iter().map(|r| r.activity).collect(),
            status: normal.status,
        })
    }

    async fn run_once(&self, input: W::Input, run: CrashPoint) -> Result<RunOutcome, CrashFailure> {
        let engine_failed = |source: TestError| CrashFailure::Engine { run, source };
        let mut engine = self.builder.clone().build().await.map_err(engine_failed)?;
        let faults = engine.faults();
        let owned_at = faults.writes();
        // Every write from number `from` on fails: the crash comes right after the one before.
        let arm = |from: u64| faults.fail_writes_from(from);
        match run {
            CrashPoint::Never => {}
            CrashPoint::AfterCommit(n) => arm(owned_at + n + 1),
            CrashPoint::AfterEveryCommit => {
                // The crash points of this run are the workflow's own commits. An activity's
                // attempt is committed before it starts, and the engine counts a recovered
                // attempt as spent (a real crash there may have been the attempt's doing); a
                // crash after every such commit would spend every attempt unrun.
                faults.pass_through(Some(weft_runtime::engine::record::ATTEMPT_PREFIX.to_vec()));
                arm(owned_at + 2)
            }
        }
        let options = StartOptions {
            id: Some(self.workflow_id.clone()),
            idempotency_key: None,
            execution_timeout: self.execution_timeout,
        };
        engine
            .engine()
            .start_with::<W>(input, options)
            .await
            .map_err(|e| engine_failed(e.into()))?;
        let mut crashes: u64 = 0;
        let mut signals = self.signals.queue.clone();
        let mut cancel_pending = self.cancel_at;
        // Per crash: how many attempts were logged before it, and what was committed then.
        let mut committed_at_crash: Vec<(usize, Committed)> = Vec::new();
        let status;
        // Faults injected up to the last crash: the engine retries a refused commit until it is shut
        // down, so one crash may inject several.
        let mut seen: u64 = 0;
        let crashed = |seen: u64| faults.injected().len() as u64 > seen;
        loop {
            engine.settle().await;
            if crashed(seen) {
                // The crash: nothing after the last commit reached the store. Drop the engine
                // and recover on the same store, with the disk working again.
                crashes += 1;
                // The crashed engine stops before the disk works again: it holds the refused
                // commit for a retry, which must not land late, after the "crash".
                engine.engine().clone().shutdown().await;
                seen = faults.injected().len() as u64;
                faults.heal();
                committed_at_crash.push((
                    engine.activity_calls().len(),
                    committed(&engine, &self.workflow_id),
                ));
                if run == CrashPoint::AfterEveryCommit {
                    // The recovered engine's first write takes ownership; it may commit once
                    // more, then crashes again. Armed now: recovery starts inside `restart`.
                    arm(faults.writes() + 3);
                }
                engine.restart().await.map_err(engine_failed)?;
                continue;
            }
            let description = engine
                .describe(&self.workflow_id)
                .await
                .map_err(engine_failed)?;
            match description.status {
                WorkflowStatus::Completed
                | WorkflowStatus::Failed
                | WorkflowStatus::Cancelled
                | WorkflowStatus::TimedOut => {
                    status = description.status;
                    break;
                }
                WorkflowStatus::Parked => {
                    let reason = description.park_reason.unwrap_or_else(|| {
                        weft_runtime::engine::ParkReason {
                            code: String::new(),
                            message: String::new(),
                        }
                    });
                    return Err(CrashFailure::Parked {
                        run,
                        code: reason.code,
                        message: reason.message,
                    });
                }
                WorkflowStatus::Running | WorkflowStatus::Waiting => {}
            }
            if let Some(step) = cancel_pending
                && description.step >= step
            {
                match engine.engine().cancel(&self.workflow_id).await {
                    Ok(()) => cancel_pending = None,
                    // The crash hit the cancellation's commit: it is sent again after restart.
                    Err(_) if crashed(seen) => {}
                    Err(e) => return Err(engine_failed(e.into())),
                }
                continue;
            }
            // A signal wait takes the next scripted signal of its type. A group (`ctx.all`,
            // `ctx.race`) may wait for any signal: it takes the next scripted one, before time
            // is skipped.
            let wanted = match &description.pending {
                Some(Pending::Signal { name }) => Some(signals.iter().position(|s| s.name == name)),
                Some(Pending::Group { .. }) if !signals.is_empty() => Some(Some(0)),
                _ => None,
            };
            // A signal nobody scripted may still be cut short by a deadline (an execution
            // timeout): time is skipped to it below.
            let wanted = match wanted {
                Some(None) if engine.next_deadline().is_some() => None,
                other => other,
            };
            if let Some(wanted) = wanted {
                let Some(at) = wanted else {
                    return Err(CrashFailure::Stuck {
                        run,
                        waiting_on: waiting_on(&description),
                    });
                };
                let send = Arc::clone(&signals[at].send);
                let sent = send(engine.engine().clone(), self.workflow_id.clone());
                // An update waits for the workflow's answer; when the crash hits the commit
                // that carries it, the engine holds that commit for a retry and the answer never
                // comes (as from a dead process): stop waiting then.
                let storage_failed = async {
                    while engine.engine().transitions_awaiting_storage() == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                let sent = tokio::select! {
                    sent = sent => sent,
                    () = storage_failed => Err(EngineError::Storage(
                        engine.engine().storage_fault().unwrap_or_else(|| {
                            weft_runtime::storage::StorageError::backend("storage failed")
                        }),
                    )),
                };
                match sent {
                    Ok(None) => {
                        signals.remove(at);
                    }
                    Ok(Some(message)) => return Err(CrashFailure::WrongAnswer { run, message }),
                    // The crash hit the signal's own commit: it was not stored, and is sent
                    // again after the restart.
                    Err(_) if crashed(seen) => {}
                    Err(e) => return Err(engine_failed(e.into())),
                }
                continue;
            }
            match engine.next_deadline() {
                Some(deadline) => engine.clock().set(deadline),
                None => {
                    return Err(CrashFailure::Stuck {
                        run,
                        waiting_on: waiting_on(&description),
                    });
                }
            }
        }
        let output = match engine.engine().result::<W>(&self.workflow_id).await {
            Ok(Ok(output)) => serde_json::json!({ "Ok": json(&output) }),
            Ok(Err(error)) => serde_json::json!({ "Err": json(&error) }),
            // Ended by cancellation or its timeout without an error of its own.
            Err(EngineError::Cancelled { .. }) => serde_json::json!("Cancelled"),
            Err(EngineError::TimedOut { .. }) => serde_json::json!("TimedOut"),
            Err(e) => return Err(engine_failed(e.into())),
        };
        let calls = engine.activity_calls();
        for (logged, committed) in &committed_at_crash {
            if let Some(call) = calls[*logged..]
                .iter()
                .find(|call| committed.holds(&call.workflow_id, call.step, call.branch))
            {
                return Err(CrashFailure::RanAgain {
                    run,
                    activity: call.activity,
                    workflow_id: call.workflow_id.clone(),
                    step: call.step,
                    branch: call
                        .branch
                        .map(|b| format!(" branch {b}"))
                        .unwrap_or_default(),
                });
            }
        }
        Ok(RunOutcome {
            output,
            status,
            results: step_results(&engine, &self.workflow_id),
            commits: faults.writes() - owned_at,
            crashes,
        })
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value)
        .unwrap_or_else(|e| serde_json::Value::String(format!("<not JSON: {e}>")))
}

/// What a store held committed at a crash: per workflow, its committed step count, whether it
/// had finished, and the group branches whose values were committed at that step.
#[derive(Debug, Default)]
struct Committed {
    workflows: std::collections::HashMap<String, (u64, bool, Vec<u32>)>,
}

impl Committed {
    /// Whether the result of the activity at (`workflow_id`, `step`, `branch`) was committed: the
    /// workflow moved past that step, finished, or holds that branch's value.
    fn holds(&self, workflow_id: &str, step: u64, branch: Option<u32>) -> bool {
        let Some((committed_step, finished, branches)) = self.workflows.get(workflow_id) else {
            return false;
        };
        *finished
            || step < *committed_step
            || (step == *committed_step && branch.is_some_and(|b| branches.contains(&b)))
    }
}

/// Reads what is committed for workflow `workflow_id` and its children.
fn committed(engine: &TestEngine, workflow_id: &str) -> Committed {
    use weft_runtime::engine::record::{self, PendingCommand, WorkflowRecord};
    use weft_runtime::storage::Storage;
    let mut out = Committed::default();
    // The workflow and its children (`{id}/...`), which may hash to other partitions.
    let mut entries = Vec::new();
    for p in 0..engine.engine().partitions() {
        let prefix = record::workflow_key(record::Partition(p), workflow_id);
        let Ok(found) = engine.storage().scan_prefix(&prefix, None, usize::MAX) else {
            return out;
        };
        entries.extend(found);
    }
    for (key, value) in entries {
        let Some((_, id)) = record::split_partition(record::WORKFLOW_PREFIX, &key) else {
            continue;
        };
        let id = String::from_utf8_lossy(id).into_owned();
        if id != workflow_id && !id.starts_with(&format!("{workflow_id}/")) {
            continue;
        }
        let Ok(wf) = record::decode_record::<WorkflowRecord>(&value) else {
            continue;
        };
        let branches = match &wf.pending {
            Some(PendingCommand::Group { branches, .. }) => branches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.value.is_some())
                .map(|(i, _)| i as u32)
                .collect(),
            _ => Vec::new(),
        };
        out.workflows
            .insert(id, (wf.step, wf.status.is_terminal(), branches));
    }
    out
}

/// Per activity step (and branch, and child workflow), in order, the result the workflow went
/// on with: the outcome of the last attempt logged for it (a step run again after a crash logs
/// again, later).
fn step_results(engine: &TestEngine, workflow_id: &str) -> Vec<StepResult> {
    let mut by_step = std::collections::BTreeMap::new();
    let children = format!("{workflow_id}/");
    for call in engine.activity_calls() {
        if call.workflow_id != workflow_id && !call.workflow_id.starts_with(&children) {
            continue;
        }
        if let Some(outcome) = call.outcome {
            by_step.insert(
                (call.workflow_id.clone(), call.step, call.branch),
                StepResult {
                    workflow_id: call.workflow_id,
                    step: call.step,
                    branch: call.branch,
                    activity: call.activity,
                    input: call.input,
                    outcome,
                },
            );
        }
    }
    by_step.into_values().collect()
}

fn compare(normal: &RunOutcome, other: &RunOutcome, run: CrashPoint) -> Result<(), CrashFailure> {
    let longest = normal.results.len().max(other.results.len());
    for index in 0..longest {
        let expected = normal.results.get(index);
        if expected != other.results.get(index) {
            let show =
                |r: Option<&StepResult>| r.map_or("no result".to_string(), |r| r.to_string());
            return Err(CrashFailure::ActivityDiffers {
                run,
                index: index + 1,
                expected: show(expected),
                found: show(other.results.get(index)),
            });
        }
    }
    if normal.output != other.output || normal.status != other.status {
        return Err(CrashFailure::OutputDiffers {
            run,
            expected: format!("{} (status {:?})", normal.output, normal.status),
            found: format!("{} (status {:?})", other.output, other.status),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Committed;

    #[test]
    fn committed_work_is_what_a_record_moved_past_or_holds() {
        let mut committed = Committed::default();
        committed
            .workflows
            .insert("wf".into(), (3, false, vec![0, 2]));
        committed
            .workflows
            .insert("wf/1".into(), (1, true, Vec::new()));
        // Steps before the committed one, and finished workflows, are done.
        assert!(committed.holds("wf", 2, None));
        assert!(committed.holds("wf", 2, Some(1)));
        assert!(committed.holds("wf/1", 1, None));
        // The pending step is not, except the group branches whose values are stored.
        assert!(!committed.holds("wf", 3, None));
        assert!(committed.holds("wf", 3, Some(0)));
        assert!(!committed.holds("wf", 3, Some(1)));
        assert!(committed.holds("wf", 3, Some(2)));
        // Workflows the store did not hold yet have done nothing.
        assert!(!committed.holds("wf/4", 0, None));
    }
}
