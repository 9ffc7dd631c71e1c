//! Panics in user code and exhausted counters and times stay with one workflow: a panicking
//! step, signal decode or migration parks that workflow with a typed reason (keeping the value
//! that resumed it, so no activity runs twice) while the rest run on; `Engine::retry` and the
//! next build retry it; counters at their maximum and durations too long to represent never
//! panic.

#![allow(non_camel_case_types)]

mod engine_support;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_support::*;
use serde::{Deserialize, Deserializer, Serialize};
use weft_runtime::engine::{VirtualClock, WorkflowStatus, record};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    ActivityContext, ActivityError, ActivityOptions, Engine, EngineError, MigrationError, Query,
    Signal, StartOptions, Workflow, WorkflowContext, WorkflowError, activity, workflow,
};

/// Waits for `future`, failing the test when it does not settle: the old engine left a
/// panicked workflow's waiters waiting forever.
async fn settled<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("never settled: the workflow was stranded")
}

// ---------------------------------------------------------------------------------------------
// A workflow that panics after a durable await, and its fixed version.

/// How often `count` ran, per key: the side effect that must not repeat.
static CALLS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn calls(key: &str) -> usize {
    CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|calls| calls.get(key).copied())
        .unwrap_or(0)
}

/// Counts its runs for `key` and answers how many items the key has: none.
#[activity]
async fn count(key: String) -> Result<u32, ActivityError> {
    *CALLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default() += 1;
    Ok(3)
}

/// The bug: indexes a list of `n` items at `n`.
#[workflow(name = "fragile")]
async fn fragile_broken(ctx: &mut WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    let n = ctx.run(count, key).await?;
    let items: Vec<u32> = (0..n).collect();
    Ok(items[n as usize])
}

/// The fix, deployed under the same name with the same state machine.
#[workflow(name = "fragile")]
async fn fragile_fixed(ctx: &mut WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    let n = ctx.run(count, key).await?;
    let items: Vec<u32> = (0..n).collect();
    Ok(items.last().copied().unwrap_or_default())
}

/// Keys whose workflow `switchy` panics on, until the test removes them: a bug fixed without
/// a restart (say, in a resource the step reads).
static BUGGY: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn set_buggy(key: &str, buggy: bool) {
    let mut set = BUGGY.lock().unwrap();
    let set = set.get_or_insert_with(HashSet::new);
    if buggy {
        set.insert(key.to_string());
    } else {
        set.remove(key);
    }
}

fn is_buggy(key: &str) -> bool {
    BUGGY
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|set| set.contains(key))
}

#[workflow]
async fn switchy(ctx: &mut WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    let n = ctx.run(count, key.clone()).await?;
    let found: Option<u32> = (!is_buggy(&key)).then_some(n);
    Ok(found.unwrap())
}

/// A well-behaved neighbour.
#[workflow]
async fn steady(ctx: &mut WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    let n = ctx.run(count, key).await?;
    Ok(n * 2)
}

/// The signal `fragile_broken`'s id gets while it is parked.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Nudge;

fn parked_code(error: EngineError) -> String {
    match error {
        EngineError::Parked { code, .. } => code,
        other => panic!("expected a parked workflow, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_after_a_durable_await_parks_only_that_workflow_and_a_fixed_build_finishes_it() {
    assert_eq!(fragile_broken::FINGERPRINT, fragile_fixed::FINGERPRINT);
    let storage = MemoryStorage::new();
    let engine = Engine::builder(storage.clone())
        .register::<fragile_broken>()
        .register::<steady>()
        .build()
        .await
        .unwrap();
    assert!(engine.panics_contained());
    let broken = engine
        .start::<fragile_broken>("fragile-a".into())
        .await
        .unwrap();
    let error = settled(broken.result()).await.unwrap_err();
    let EngineError::Parked { code, message, .. } = error else {
        panic!("expected Parked, got {error:?}");
    };
    assert_eq!(code, "workflow.panicked");
    assert!(message.contains("index out of bounds"), "{message}");
    assert!(message.contains("step 1"), "{message}");
    assert_eq!(calls("fragile-a"), 1);

    let d = engine.describe(broken.id()).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "workflow.panicked");
    assert_eq!(d.step, 1, "nothing of the panicked step was committed");
    // Its runner slot was given back, other workflows run, and it still takes signals.
    eventually(|| engine.active_workflows() == 0).await;
    let other = engine.start::<steady>("steady-a".into()).await.unwrap();
    assert_eq!(settled(other.result()).await.unwrap().unwrap(), 6);
    engine.signal(broken.id(), Nudge).await.unwrap();

    // Retried on the same, still broken code: it parks again, and the activity's kept result
    // is what it resumes with.
    engine.retry(broken.id()).await.unwrap();
    eventually(|| engine.active_workflows() == 0).await;
    assert_eq!(
        parked_code(settled(broken.result()).await.unwrap_err()),
        "workflow.panicked"
    );
    assert_eq!(calls("fragile-a"), 1);
    let id = broken.id().to_string();
    engine.shutdown().await;

    // Deployed with the fix: the build retries it, and it finishes on the activity result
    // stored before the panic.
    let engine = Engine::builder(storage.clone())
        .register::<fragile_fixed>()
        .build()
        .await
        .unwrap();
    let fixed = engine.handle::<fragile_fixed>(&id);
    assert_eq!(settled(fixed.result()).await.unwrap().unwrap(), 2);
    assert_eq!(calls("fragile-a"), 1, "the activity did not run again");
    assert!(
        storage
            .get(&record::activity_result_key(record::Partition::ZERO, &id))
            .unwrap()
            .is_none(),
        "the kept result is consumed with the step"
    );
    // The signal sent while it was parked is cleared with the finished workflow.
    assert!(
        storage
            .scan_prefix(
                &record::signal_queue_prefix(record::Partition::ZERO, &id),
                None,
                10
            )
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_resumes_a_parked_workflow_without_a_restart_and_refuses_what_it_cannot_help() {
    let engine = Engine::builder(MemoryStorage::new())
        .register::<switchy>()
        .build()
        .await
        .unwrap();
    set_buggy("switchy-a", true);
    let handle = engine.start::<switchy>("switchy-a".into()).await.unwrap();
    let error = settled(handle.result()).await.unwrap_err();
    assert_eq!(parked_code(error.clone()), "workflow.panicked");
    assert!(error.to_string().contains("None"), "{error}");
    assert_eq!(calls("switchy-a"), 1);

    set_buggy("switchy-a", false);
    engine.retry(handle.id()).await.unwrap();
    assert_eq!(settled(handle.result()).await.unwrap().unwrap(), 3);
    assert_eq!(calls("switchy-a"), 1, "the activity ran once in all");

    assert_eq!(
        engine.retry(handle.id()).await,
        Err(EngineError::Finished {
            id: handle.id().into()
        })
    );
    assert_eq!(
        engine.retry("nobody").await,
        Err(EngineError::NotFound {
            id: "nobody".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_refuses_a_workflow_that_is_not_parked() {
    let engine = engine_for::<touchy_waiter>(MemoryStorage::new()).await;
    let handle = engine.start::<touchy_waiter>("calm".into()).await.unwrap();
    wait_state(&engine, handle.id(), "AwaitSignalTouchy").await;
    assert_eq!(
        engine.retry(handle.id()).await,
        Err(EngineError::NotParked {
            id: handle.id().into()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// A signal whose `Deserialize` panics.

/// A signal that cannot be read back when it says "explode".
#[derive(Debug, Clone, Serialize, Signal)]
struct Touchy(String);

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "explode" {
            panic!("cannot read a {text} signal");
        }
        Ok(Touchy(text))
    }
}

#[workflow]
async fn touchy_waiter(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let signal = ctx.wait_for_signal::<Touchy>().await;
    Ok(format!("{name}: {}", signal.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_signal_decode_parks_only_that_workflow() {
    let engine = engine_for::<touchy_waiter>(MemoryStorage::new()).await;
    let bad = engine.start::<touchy_waiter>("bad".into()).await.unwrap();
    let good = engine.start::<touchy_waiter>("good".into()).await.unwrap();
    bad.signal(Touchy("explode".into())).await.unwrap();
    let error = settled(bad.result()).await.unwrap_err();
    let EngineError::Parked { code, message, .. } = error else {
        panic!("expected Parked, got {error:?}");
    };
    assert_eq!(code, "codec.panicked");
    assert!(
        message.contains("cannot read a explode signal"),
        "{message}"
    );
    // The signal stays queued with the parked workflow; a later one is accepted too.
    bad.signal(Touchy("later".into())).await.unwrap();

    good.signal(Touchy("fine".into())).await.unwrap();
    assert_eq!(settled(good.result()).await.unwrap().unwrap(), "good: fine");
    eventually(|| engine.active_workflows() == 0).await;
}

// ---------------------------------------------------------------------------------------------
// A panicking migration.

#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Go;

#[workflow(name = "migrant", version = 1)]
async fn migrant_v1(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    ctx.wait_for_signal::<Go>().await;
    Ok(format!("v1 {name}"))
}

#[workflow(name = "migrant", version = 2)]
async fn migrant_v2(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let tag: u32 = 2;
    ctx.wait_for_signal::<Go>().await;
    Ok(format!("v2 {name} {tag}"))
}

fn exploding(_: MigrantV1State) -> Result<MigrantV2State, MigrationError> {
    panic!("the migration was not finished")
}

fn working(old: MigrantV1State) -> Result<MigrantV2State, MigrationError> {
    Ok(match old {
        MigrantV1State::Start { name } => MigrantV2State::Start { name },
        MigrantV1State::AwaitSignalGo { name } => MigrantV2State::AwaitSignalGo { name, tag: 7 },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_migration_parks_its_workflow_instead_of_failing_the_build() {
    let storage = MemoryStorage::new();
    let id = {
        let engine = engine_for::<migrant_v1>(storage.clone()).await;
        let handle = engine.start::<migrant_v1>("ann".into()).await.unwrap();
        wait_state(&engine, handle.id(), "AwaitSignalGo").await;
        let id = handle.id().to_string();
        engine.shutdown().await;
        id
    };

    let engine = Engine::builder(storage.clone())
        .register::<migrant_v2>()
        .migrate::<migrant_v1, migrant_v2>(exploding)
        .build()
        .await
        .expect("a panicking migration does not fail the build");
    let d = engine.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    let reason = d.park_reason.unwrap();
    assert_eq!(reason.code, "migration.panicked");
    assert!(
        reason.message.contains("not finished"),
        "{}",
        reason.message
    );
    let handle = engine.handle::<migrant_v2>(&id);
    assert_eq!(
        parked_code(settled(handle.result()).await.unwrap_err()),
        "migration.panicked"
    );
    // Others run on the new version meanwhile.
    let other = engine.start::<migrant_v2>("bo".into()).await.unwrap();
    other.signal(Go).await.unwrap();
    assert_eq!(settled(other.result()).await.unwrap().unwrap(), "v2 bo 2");
    engine.shutdown().await;

    let engine = Engine::builder(storage.clone())
        .register::<migrant_v2>()
        .migrate::<migrant_v1, migrant_v2>(working)
        .build()
        .await
        .unwrap();
    let handle = engine.handle::<migrant_v2>(&id);
    handle.signal(Go).await.unwrap();
    assert_eq!(settled(handle.result()).await.unwrap().unwrap(), "v2 ann 7");
}

// ---------------------------------------------------------------------------------------------
// Queries.

struct Exploding;

impl Query for Exploding {
    type Workflow = touchy_waiter;
    type Output = u32;
    const NAME: &'static str = "exploding";
    fn answer(_state: &TouchyWaiterState) -> u32 {
        panic!("no answer today")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_query_fails_that_call_alone() {
    let engine = Engine::builder(MemoryStorage::new())
        .register::<touchy_waiter>()
        .query::<Exploding>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<touchy_waiter>("asked".into()).await.unwrap();
    let panicked = |error: EngineError| match error {
        EngineError::Panicked { message, .. } => assert_eq!(message, "no answer today"),
        other => panic!("expected Panicked, got {other:?}"),
    };
    panicked(engine.query::<Exploding>(handle.id()).await.unwrap_err());
    panicked(
        engine
            .query_by_name(handle.id(), "exploding")
            .await
            .unwrap_err(),
    );
    handle.signal(Touchy("still fine".into())).await.unwrap();
    assert_eq!(
        settled(handle.result()).await.unwrap().unwrap(),
        "asked: still fine"
    );
}

// ---------------------------------------------------------------------------------------------
// Counters at their maximum.

/// Rewrites the stored record of `id` with `change`.
fn rewrite(storage: &MemoryStorage, id: &str, change: impl FnOnce(&mut record::WorkflowRecord)) {
    let key = record::workflow_key(record::Partition::ZERO, id);
    let mut stored: record::WorkflowRecord =
        record::decode_record(&storage.get(&key).unwrap().unwrap()).unwrap();
    change(&mut stored);
    storage
        .put(&key, &record::encode_record(&stored).unwrap())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_at_their_maximum_park_the_workflow_instead_of_wrapping() {
    let storage = MemoryStorage::new();
    let (at_step, at_signals) = {
        let engine = engine_for::<touchy_waiter>(storage.clone()).await;
        let a = engine.start::<touchy_waiter>("a".into()).await.unwrap();
        let b = engine.start::<touchy_waiter>("b".into()).await.unwrap();
        wait_state(&engine, a.id(), "AwaitSignalTouchy").await;
        wait_state(&engine, b.id(), "AwaitSignalTouchy").await;
        let ids = (a.id().to_string(), b.id().to_string());
        engine.shutdown().await;
        ids
    };
    rewrite(&storage, &at_step, |r| r.step = u64::MAX);
    rewrite(&storage, &at_signals, |r| r.signals_consumed = u64::MAX);

    let engine = engine_for::<touchy_waiter>(storage.clone()).await;
    for id in [&at_step, &at_signals] {
        let handle = engine.handle::<touchy_waiter>(id);
        handle.signal(Touchy("one more".into())).await.unwrap();
        let error = settled(handle.result()).await.unwrap_err();
        assert_eq!(parked_code(error), "engine.counter_overflow");
        let d = engine.describe(id).await.unwrap();
        assert_eq!(d.state_name, Some("AwaitSignalTouchy"), "the state is kept");
    }
    assert_eq!(engine.describe(&at_step).await.unwrap().step, u64::MAX);
    let other = engine.start::<touchy_waiter>("c".into()).await.unwrap();
    other.signal(Touchy("x".into())).await.unwrap();
    assert_eq!(settled(other.result()).await.unwrap().unwrap(), "c: x");
    engine.shutdown().await;

    // An owner epoch at its maximum refuses to build rather than wrap to an old epoch.
    storage
        .put(record::EPOCH_KEY, &record::encode_epoch(u64::MAX))
        .unwrap();
    let error = Engine::builder(storage.clone())
        .register::<touchy_waiter>()
        .build()
        .await
        .unwrap_err();
    assert_eq!(error.code(), "engine.counter_overflow");
}

// ---------------------------------------------------------------------------------------------
// Durations too long to represent.

#[workflow]
async fn sleeps_forever(ctx: &mut WorkflowContext, _unused: u32) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::MAX).await;
    Ok(())
}

/// An activity whose stored attempt timeout is `Duration::MAX`.
struct patient;

impl weft_runtime::Activity for patient {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "patient";

    fn options(&self) -> ActivityOptions {
        ActivityOptions {
            attempt_timeout: Some(Duration::MAX),
            ..ActivityOptions::default()
        }
    }

    async fn execute(&self, _ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n + 1)
    }
}

#[workflow]
async fn waits_patiently(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let next = ctx.run(patient, n).await?;
    Ok(next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_too_long_to_represent_saturate_instead_of_panicking() {
    let clock = VirtualClock::default();
    let engine = Engine::builder(MemoryStorage::new())
        .register::<sleeps_forever>()
        .register::<waits_patiently>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    // The sleep's deadline is "never": the start returns, and the timer never fires.
    let sleeper = engine.start::<sleeps_forever>(0).await.unwrap();
    let d = engine.describe(sleeper.id()).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Waiting);
    clock.advance(Duration::from_secs(1 << 40));
    assert_eq!(
        engine.describe(sleeper.id()).await.unwrap().status,
        WorkflowStatus::Waiting
    );
    // An execution timeout that long is no deadline either.
    let timed = engine
        .start_with::<sleeps_forever>(
            0,
            StartOptions {
                execution_timeout: Some(Duration::MAX),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        engine.describe(timed.id()).await.unwrap().status,
        WorkflowStatus::Waiting
    );
    // A cancellation cuts the endless sleep short; the workflow then returns.
    timed.cancel().await.unwrap();
    settled(timed.result()).await.unwrap().unwrap();
    // An attempt timeout that long lets the attempt run to its end.
    let patient_one = engine.start::<waits_patiently>(41).await.unwrap();
    assert_eq!(settled(patient_one.result()).await.unwrap().unwrap(), 42);
}

// ---------------------------------------------------------------------------------------------
// Update handlers and reviews.

/// Adds `n`; the handler panics on 13.
#[derive(Debug, Clone, Serialize, Deserialize, weft_runtime::Update)]
#[update(response = u64, name = "panics.add")]
struct Add {
    n: u64,
}

#[workflow]
async fn superstitious(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = start;
    loop {
        let (add, reply) = ctx.wait_for_update::<Add>().await;
        assert_ne!(add.n, 13, "unlucky");
        total += add.n;
        ctx.respond(reply, total);
        if add.n == 0 {
            break;
        }
    }
    Ok(total)
}

fn forever(update_id: &str) -> weft_runtime::UpdateOptions {
    weft_runtime::UpdateOptions {
        update_id: update_id.into(),
        timeout: Duration::MAX,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_update_handler_parks_the_workflow_and_endless_timeouts_are_no_deadline() {
    let engine = engine_for::<superstitious>(MemoryStorage::new()).await;
    let handle = engine.start::<superstitious>(1).await.unwrap();
    // A timeout too long to represent waits for the answer instead of panicking.
    let answer = settled(engine.update(handle.id(), Add { n: 2 }, forever("first")))
        .await
        .unwrap();
    assert_eq!(answer, 3);
    let error = settled(engine.update(handle.id(), Add { n: 13 }, forever("second")))
        .await
        .unwrap_err();
    let EngineError::Parked { code, message, .. } = error else {
        panic!("expected Parked, got {error:?}");
    };
    assert_eq!(code, "workflow.panicked");
    assert!(message.contains("unlucky"), "{message}");
    assert_eq!(
        parked_code(settled(handle.result()).await.unwrap_err()),
        "workflow.panicked"
    );
}

#[workflow]
async fn reviewed(ctx: &mut WorkflowContext, title: String) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(weft_runtime::ReviewRequest {
            title,
            reviewers: vec!["ops".into()],
            timeout: Duration::MAX,
        })
        .await;
    Ok(format!("{outcome:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_that_never_times_out_starts_and_takes_its_decision() {
    let engine = engine_for::<reviewed>(MemoryStorage::new()).await;
    let handle = engine.start::<reviewed>("deploy".into()).await.unwrap();
    assert_eq!(
        engine.describe(handle.id()).await.unwrap().status,
        WorkflowStatus::Waiting
    );
    engine
        .decide_review(
            handle.id(),
            weft_runtime::Decision::Approved {
                by: "ops".into(),
                comment: "fine".into(),
            },
        )
        .await
        .unwrap();
    let text = settled(handle.result()).await.unwrap().unwrap();
    assert!(text.contains("Approved"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The engine's own tasks.

/// A manual clock whose `sleep_until` panics the first `hiccups` times it is called.
struct HiccupClock {
    clock: VirtualClock,
    hiccups: std::sync::atomic::AtomicUsize,
}

impl weft_runtime::engine::Clock for HiccupClock {
    fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    fn sleep_until(
        &self,
        deadline: std::time::SystemTime,
    ) -> weft_runtime::activity::BoxFuture<()> {
        use std::sync::atomic::Ordering;
        let hiccup = self
            .hiccups
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        assert!(!hiccup, "the clock hiccuped");
        self.clock.sleep_until(deadline)
    }
}

#[workflow]
async fn naps(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_service_survives_a_panic_and_still_fires_timers() {
    let clock = VirtualClock::default();
    let engine = Engine::builder(MemoryStorage::new())
        .register::<naps>()
        .clock(Arc::new(HiccupClock {
            clock: clock.clone(),
            hiccups: 1.into(),
        }))
        .build()
        .await
        .unwrap();
    // Arming the nap's timer makes the service wait on the clock, which panics once.
    let handle = engine.start::<naps>(5).await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(settled(handle.result()).await.unwrap().unwrap(), 5);
}

/// Panics in its first step, before any durable await, while its key is buggy.
#[workflow]
async fn eager(ctx: &mut WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    let found: Option<u32> = (!is_buggy(&key)).then_some(1);
    let first: u32 = found.unwrap();
    let counted = ctx.run(count, key).await?;
    Ok(first + counted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_first_step_parks_the_new_workflow_and_retry_starts_it() {
    let engine = engine_for::<eager>(MemoryStorage::new()).await;
    set_buggy("eager-a", true);
    // The first step runs in the caller of `start`: the panic is caught there too.
    let handle = engine.start::<eager>("eager-a".into()).await.unwrap();
    let error = settled(handle.result()).await.unwrap_err();
    let EngineError::Parked { code, message, .. } = error else {
        panic!("expected Parked, got {error:?}");
    };
    assert_eq!(code, "workflow.panicked");
    assert!(message.contains("step 0"), "{message}");
    assert_eq!(engine.describe(handle.id()).await.unwrap().step, 0);
    assert_eq!(calls("eager-a"), 0);

    set_buggy("eager-a", false);
    engine.retry(handle.id()).await.unwrap();
    assert_eq!(settled(handle.result()).await.unwrap().unwrap(), 4);
    assert_eq!(calls("eager-a"), 1);
}
