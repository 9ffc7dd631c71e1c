//! What a commit sets in motion (run a new workflow, wake one, deliver a cancellation), run by
//! the engine once the commit is durable, whatever becomes of the call that asked for it.
//!
//! # Design
//!
//! A caller's future may be dropped at any await: an HTTP handler is dropped when its client
//! disconnects, a `select!` drops the branch that lost. So nothing that must follow an
//! acknowledged write may run in the caller's future after it awaits the commit. Instead each
//! call hands the writer its write *and* the [`Effect`]s that follow from it, as data. The
//! writer decides the write (is the id free, is the workflow live), and for each write it
//! accepts, it runs that write's effects on its own thread as soon as the batch is durable, in
//! batch order, before it answers any caller. So:
//!
//! - once a call has reached the writer (its first poll), dropping its future changes nothing:
//!   the write is decided and, if accepted, committed, and its effects run;
//! - when a caller hears "done", what follows is already in motion (a test kit that waits until
//!   no workflow is active never sees the gap between a commit and its wake);
//! - an effect runs only for a write the writer accepted, in a batch that landed. A batch that
//!   failed runs none (its callers get the error and may retry).
//!
//! Whether a created workflow runs is decided by the writer's answer, not by anything taken
//! before it: the create the writer accepts carries the [`Effect::Launch`] that starts its
//! runner, so of concurrent starts of one id exactly the one that created it launches it. A
//! start that finds the workflow existing (a retried start whose first attempt's commit landed
//! but reported a failure) wakes it, so a workflow is never left without a runner behind an
//! answer that says it exists. A wake of a workflow that has a runner only pokes it.
//!
//! Effects are cheap (a lock, a poke, a task spawned): the writer is the engine's one serial
//! stage. Anything slow, such as reading a record or running a step, happens in the runner
//! tasks they spawn.
//!
//! A runner's own transitions are planned the same way (see `plan`): the plan lists the effects
//! of the step (disarm a timer, tell result waiters, start children, wake a parent, cancel a
//! child), and the runner runs them with [`committed`] once the step's batch is durable. That
//! task belongs to the engine, not to a caller, so nothing it acknowledged is stranded.

use std::sync::Arc;

use super::core::{Inner, Woken};
use super::events;
use super::record::WorkflowRecord;
use super::registry::ErasedWorkflow;
use super::runner::{self, Loaded};

/// Something a durable commit sets in motion.
pub(crate) enum Effect {
    /// Runs a workflow the commit created.
    Launch(Box<Launch>),
    /// Wakes a workflow: something it may wait for was stored (a signal, an update, a review
    /// decision), or a start found it existing and makes sure it is driven.
    Wake(String),
    /// Delivers the cancellation request the commit stored for a workflow.
    Cancel(String),
    /// Disarms the in-memory timer of a stored timer entry the commit deleted (a sleep cut
    /// short, a race's losing timer), so it does not stay armed until its deadline.
    Disarm {
        /// When it would fire (ms since the Unix epoch).
        deadline_ms: u64,
        /// The workflow it would wake.
        id: String,
    },
    /// Disarms every in-memory timer of a workflow the commit finished: nothing can wake it
    /// to any end, its execution deadline included.
    DisarmAll(String),
    /// Answers the result waiters of a workflow the commit finished with an outcome (with the
    /// committed record, when [`committed`] runs it).
    Finished(String),
    /// Tells a workflow's waiters something changed (it parked or ended without an outcome,
    /// or the step answered an update): they read it again.
    Changed(String),
    /// The cancellation the runner delivered was not delivered as such (a sleep cut short, a
    /// child waited for): it stays pending for the workflow's next durable await.
    KeepCancel(String),
}

/// A workflow created by a commit, with what its runner needs to start without reading it back.
pub(crate) struct Launch {
    /// Its id.
    pub id: String,
    /// The record as committed (after its first step).
    pub record: WorkflowRecord,
    /// The code that runs it.
    pub workflow: Arc<dyn ErasedWorkflow>,
    /// Its execution deadline (ms since the Unix epoch), armed in memory.
    pub deadline_ms: Option<u64>,
    /// What its first step set in motion (see `plan`), run before its runner starts.
    pub effects: Vec<Effect>,
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Launch(launch) => f.debug_tuple("Launch").field(&launch.id).finish(),
            Effect::Wake(id) => f.debug_tuple("Wake").field(id).finish(),
            Effect::Cancel(id) => f.debug_tuple("Cancel").field(id).finish(),
            Effect::Disarm { deadline_ms, id } => f
                .debug_struct("Disarm")
                .field("deadline_ms", deadline_ms)
                .field("id", id)
                .finish(),
            Effect::DisarmAll(id) => f.debug_tuple("DisarmAll").field(id).finish(),
            Effect::Finished(id) => f.debug_tuple("Finished").field(id).finish(),
            Effect::Changed(id) => f.debug_tuple("Changed").field(id).finish(),
            Effect::KeepCancel(id) => f.debug_tuple("KeepCancel").field(id).finish(),
        }
    }
}

/// Runs `effects`, in order. Called by the writer once their batch is durable; needs the
/// runtime entered, for the tasks it spawns.
pub(crate) fn run(inner: &Arc<Inner>, effects: Vec<Effect>) {
    for effect in effects {
        apply(inner, effect, None);
    }
}

/// Runs the effects of a workflow's transition to `record`, once its batch is durable: watchers
/// hear of the step, then `effects` run in order (result waiters are handed `record`).
pub(crate) fn committed(
    inner: &Arc<Inner>,
    id: &str,
    record: &WorkflowRecord,
    effects: Vec<Effect>,
) {
    events::committed(inner, id, record);
    for effect in effects {
        apply(inner, effect, Some(record));
    }
}

/// Runs one effect; `record` is the committed record of the workflow whose transition it
/// follows, if known.
fn apply(inner: &Arc<Inner>, effect: Effect, record: Option<&WorkflowRecord>) {
    match effect {
        Effect::Launch(launch) => self::launch(inner, *launch),
        Effect::Wake(id) => runner::wake(inner, &id),
        Effect::Cancel(id) => runner::wake_cancel(inner, &id),
        Effect::Disarm { deadline_ms, id } => inner.timers.disarm(deadline_ms, &id),
        Effect::DisarmAll(id) => inner.timers.disarm_all(&id),
        Effect::Finished(id) => match record {
            // The record as committed is what a waiter would read back: hand it over instead.
            Some(record) => inner.notify(&id, || Woken::Finished(Arc::new(record.clone()))),
            None => inner.notify(&id, || Woken::Changed),
        },
        Effect::Changed(id) => inner.notify(&id, || Woken::Changed),
        Effect::KeepCancel(id) => {
            inner.with_active(&id, |entry| entry.signals.keep_cancel());
        }
    }
}

/// Arms the new workflow's deadline, sets in motion what its first step started, and starts its
/// runner from the committed record (or pokes the runner a wake started meanwhile, which read
/// the same record from storage).
fn launch(inner: &Arc<Inner>, launch: Launch) {
    let Launch {
        id,
        record,
        workflow,
        deadline_ms,
        effects,
    } = launch;
    if inner.check_live().is_err() {
        return;
    }
    if let Some(deadline_ms) = deadline_ms {
        inner.timers.arm(deadline_ms, &id);
    }
    committed(inner, &id, &record, effects);
    runner::launch(
        inner,
        id,
        Loaded {
            record,
            workflow,
            // Its first step was committed just now: nothing of it has run.
            origin: super::execute::Origin::Committed,
        },
    );
}
