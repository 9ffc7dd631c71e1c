//! Every composition operation survives a crash after each of its commits, and one after every
//! commit: `ctx.all` over a tuple and over a `Vec`, `ctx.race` of a signal against a timer and
//! of two activities, a child workflow, children in parallel, cancellation with cleanup, an
//! execution timeout (of a workflow and of a child), and a saga compensating.
//!
//! Each run must reach the same result and status with the same activity results (per step,
//! group branch and child workflow). The harness also fails a run in which an activity whose
//! result (or group branch value) was committed before a crash runs again after it, so these
//! tests prove that finished branches and finished compensations are not repeated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{
    ActivityContext, ActivityError, ChildError, ChildOptions, Race2, Resources, Saga, Signal,
    WorkflowContext, WorkflowError, activity, workflow,
};
use weft_testing::{CrashReport, CrashTest, Signals};

const HOUR: Duration = Duration::from_secs(3600);

/// Attempts per activity input, over every run of a crash test.
#[derive(Default)]
struct Attempts(Mutex<HashMap<String, u32>>);

impl Attempts {
    fn hit(ctx: &ActivityContext, key: String) {
        if let Some(attempts) = ctx.resource::<Attempts>() {
            *attempts.0.lock().unwrap().entry(key).or_default() += 1;
        }
    }
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.0.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }
}

// Attempts are durable, and an attempt cut off by a crash counts: the run that crashes after
// every commit cuts off the unfinished branches of a six-branch group once per engine, so
// `square` gets more than the default five attempts.
#[activity(max_attempts = 10)]
async fn square(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    Attempts::hit(&ctx, format!("square {n}"));
    if n == 13 {
        return Err(ActivityError::non_retryable("unlucky"));
    }
    Ok(n * n)
}

#[activity]
async fn label(ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
    Attempts::hit(&ctx, format!("label {text}"));
    Ok(format!("<{text}>"))
}

/// Loses every race: it finishes only when the engine cancels it.
#[activity]
async fn never_first(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Attempts::hit(&ctx, format!("never_first {name}"));
    ctx.cancelled().await;
    Err(ActivityError::Cancelled)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Go {
    ok: bool,
}

#[workflow]
async fn all_tuple(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let (a, b, ()) = ctx
        .all((
            ctx.run(square, n),
            ctx.run(label, "tuple".to_string()),
            ctx.sleep(Duration::from_secs(60)),
        ))
        .await;
    let after = ctx.run(square, 3).await?;
    Ok(format!("{} {} {after}", a?, b?))
}

#[workflow]
async fn all_vec(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<(u64, u32), WorkflowError> {
    let results: Vec<Result<u64, ActivityError>> = ctx
        .all(ns.iter().map(|n| ctx.run(square, *n)).collect::<Vec<_>>())
        .await;
    let failed: u32 = results.iter().filter(|r| r.is_err()).count() as u32;
    let sum: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum::<u64>();
    let checked = ctx.run(square, 2).await?;
    Ok((sum + checked, failed))
}

#[workflow]
async fn signal_or_timer(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    let before = ctx.run(label, "waiting".to_string()).await?;
    let raced = ctx
        .race((
            ctx.wait_for_signal::<Go>(),
            ctx.sleep(Duration::from_secs(secs)),
        ))
        .await;
    let outcome = match raced {
        Race2::First(go) => format!("signal {}", go.ok),
        Race2::Second(()) => "deadline".to_string(),
    };
    let after = ctx.run(label, outcome).await?;
    Ok(format!("{before} {after}"))
}

#[workflow]
async fn activity_race(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let raced = ctx
        .race((ctx.run(never_first, name.clone()), ctx.run(square, 4)))
        .await;
    let won = match raced {
        Race2::First(slow) => slow?,
        Race2::Second(squared) => format!("square {}", squared?),
    };
    let after = ctx.run(label, won).await?;
    Ok(after)
}

#[workflow]
async fn square_child(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let first = ctx.run(square, n).await?;
    let second = ctx.run(square, n + 1).await?;
    Ok(first + second)
}

#[workflow]
async fn one_child(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let before = ctx.run(square, n + 10).await?;
    let child = ctx.child(square_child, n).await?;
    let after = ctx.run(square, 5).await?;
    Ok(before + child + after)
}

#[workflow]
async fn children_in_parallel(
    ctx: &mut WorkflowContext,
    ns: Vec<u64>,
) -> Result<(u64, u32), WorkflowError> {
    let results: Vec<Result<u64, ChildError>> = ctx
        .all(
            ns.iter()
                .map(|n| ctx.child(square_child, *n))
                .collect::<Vec<_>>(),
        )
        .await;
    let failed: u32 = results.iter().filter(|r| r.is_err()).count() as u32;
    let sum: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum::<u64>();
    Ok((sum, failed))
}

#[workflow]
async fn sleeper(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(secs)).await;
    let woke = ctx.run(label, "woke".to_string()).await?;
    Ok(woke)
}

/// Reserves, waits on a long child, and on cancellation (or timeout) releases what it holds.
#[workflow]
async fn holds_and_releases(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    let held = ctx.run(label, "reserve".to_string()).await?;
    match ctx.child(sleeper, secs).await {
        Ok(woke) => Ok(format!("{held} {woke}")),
        Err(ChildError::Cancelled) => {
            ctx.run(label, "release a".to_string()).await?;
            ctx.run(label, "release b".to_string()).await?;
            Err(WorkflowError::Cancelled)
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs a step and waits for a signal that never comes.
#[workflow]
async fn waits_for_go(ctx: &mut WorkflowContext, _n: u64) -> Result<String, WorkflowError> {
    let first = ctx.run(label, "first".to_string()).await?;
    let go = ctx.wait_for_signal::<Go>().await;
    Ok(format!("{first} {}", go.ok))
}

/// Gives a sleeping child an hour: it times out and the parent goes on.
#[workflow]
async fn bounded_child(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    let outcome = match ctx
        .child_with(sleeper, secs, ChildOptions::timeout(HOUR))
        .await
    {
        Ok(woke) => woke,
        Err(ChildError::TimedOut) => "child timed out".to_string(),
        Err(e) => return Err(e.into()),
    };
    let noted = ctx.run(label, outcome).await?;
    Ok(noted)
}

/// Runs a step, then sleeps past its deadline: no cleanup.
#[workflow]
async fn overslept(ctx: &mut WorkflowContext, secs: u64) -> Result<String, WorkflowError> {
    let first = ctx.run(label, "first".to_string()).await?;
    ctx.sleep(Duration::from_secs(secs)).await;
    let second = ctx.run(label, "second".to_string()).await?;
    Ok(format!("{first} {second}"))
}

#[activity]
async fn book_flight(ctx: ActivityContext, who: String) -> Result<String, ActivityError> {
    Attempts::hit(&ctx, format!("book_flight {who}"));
    Ok(format!("flight for {who}"))
}

#[activity]
async fn book_hotel(ctx: ActivityContext, who: String) -> Result<String, ActivityError> {
    Attempts::hit(&ctx, format!("book_hotel {who}"));
    Ok(format!("hotel for {who}"))
}

#[activity]
async fn book_car(ctx: ActivityContext, who: String) -> Result<String, ActivityError> {
    Attempts::hit(&ctx, format!("book_car {who}"));
    Err(ActivityError::non_retryable("no cars left"))
}

#[activity]
async fn cancel_flight(ctx: ActivityContext, booking: String) -> Result<(), ActivityError> {
    Attempts::hit(&ctx, format!("cancel_flight {booking}"));
    Ok(())
}

#[activity]
async fn cancel_hotel(ctx: ActivityContext, booking: String) -> Result<(), ActivityError> {
    Attempts::hit(&ctx, format!("cancel_hotel {booking}"));
    Ok(())
}

#[workflow]
async fn trip(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let mut saga: Saga = Saga::new();
    let flight = ctx.run(book_flight, name.clone()).await?;
    saga.add(cancel_flight, flight);
    let hotel = ctx.run(book_hotel, name.clone()).await?;
    saga.add(cancel_hotel, hotel);
    match ctx.run(book_car, name).await {
        Ok(car) => Ok(car),
        Err(e) => {
            while let Some(undo) = saga.pop() {
                ctx.compensate(undo).await?;
            }
            Err(WorkflowError::failed(format!("trip undone: {e}")))
        }
    }
}

/// Runs `test`, failing with the harness's explanation; checks it really crashed at every
/// commit but the last, and in a chain.
async fn survives<W>(test: CrashTest<W>, input: W::Input) -> CrashReport
where
    W: weft_runtime::Workflow,
    W::Input: Clone,
{
    let report = test
        .run(input)
        .await
        .unwrap_or_else(|failure| panic!("`{}`: {failure}", W::NAME));
    eprintln!("{}: {report}", W::NAME);
    // Children commit side by side, grouped differently from run to run, so a crash point may
    // lie past the end of a run; the harness tries every point of the normal run regardless.
    assert!(report.crashed_runs + 1 >= report.commits / 2, "{report}");
    assert!(report.chain_crashes >= 2, "{report}");
    report
}

fn with_attempts<W: weft_runtime::Workflow>(attempts: &Arc<Attempts>) -> CrashTest<W> {
    CrashTest::<W>::new().resources(Resources::new().with_arc(Arc::clone(attempts)))
}

#[tokio::test]
async fn all_over_a_tuple_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(with_attempts::<all_tuple>(&attempts), 7).await;
    assert_eq!(report.output, serde_json::json!({ "Ok": "49 <tuple> 9" }));
    // The two activity branches and the step after the group.
    assert_eq!(report.activities, ["square", "label", "square"]);
}

#[tokio::test]
async fn all_over_a_vec_survives_crashes_and_keeps_failed_branches() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<all_vec>(&attempts),
        vec![1, 13, 3, 4, 13, 6],
    )
    .await;
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": [1 + 9 + 16 + 36 + 4, 2] })
    );
    assert_eq!(report.activity_results, 7, "six branches and one step");
}

#[tokio::test]
async fn a_race_of_a_signal_against_a_timer_survives_crashes_either_way() {
    let attempts = Arc::default();
    let signalled = survives(
        with_attempts::<signal_or_timer>(&attempts).signals(Signals::none().then(Go { ok: true })),
        3600,
    )
    .await;
    assert_eq!(
        signalled.output,
        serde_json::json!({ "Ok": "<waiting> <signal true>" })
    );
    let silent = survives(with_attempts::<signal_or_timer>(&attempts), 3600).await;
    assert_eq!(
        silent.output,
        serde_json::json!({ "Ok": "<waiting> <deadline>" })
    );
}

#[tokio::test]
async fn a_race_of_activities_survives_crashes_and_cancels_its_loser() {
    let attempts = Arc::default();
    let report = survives(with_attempts::<activity_race>(&attempts), "slow".into()).await;
    assert_eq!(report.output, serde_json::json!({ "Ok": "<square 16>" }));
    // The loser ran (and was cancelled: it cannot finish otherwise, and every run finished).
    assert_eq!(report.activities, ["never_first", "square", "label"]);
}

#[tokio::test]
async fn a_child_workflow_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<one_child>(&attempts).configure(|b| b.register::<square_child>()),
        2,
    )
    .await;
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": 144 + (4 + 9) + 25 })
    );
    // The parent's two steps, then the child's two.
    assert_eq!(report.activity_results, 4);
}

#[tokio::test]
async fn children_in_parallel_survive_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<children_in_parallel>(&attempts)
            .configure(|b| b.register::<square_child>()),
        vec![1, 12, 3],
    )
    .await;
    // 12 + 1 = 13 fails its child.
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": [(1 + 4) + (9 + 16), 1] })
    );
    assert_eq!(
        report.activity_results, 6,
        "two steps per child, one failing"
    );
}

#[tokio::test]
async fn cancellation_with_cleanup_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<holds_and_releases>(&attempts)
            .configure(|b| b.register::<sleeper>())
            .cancel_at(2),
        2 * 3600,
    )
    .await;
    assert_eq!(report.output, serde_json::json!({ "Err": "Cancelled" }));
    assert_eq!(report.status, WorkflowStatus::Cancelled);
    assert_eq!(report.activities, ["label", "label", "label"]);
}

#[tokio::test]
async fn a_timeout_with_cleanup_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<holds_and_releases>(&attempts)
            .configure(|b| b.register::<sleeper>())
            .execution_timeout(HOUR),
        2 * 3600,
    )
    .await;
    assert_eq!(report.output, serde_json::json!({ "Err": "Cancelled" }));
    assert_eq!(report.status, WorkflowStatus::TimedOut);
    assert_eq!(report.activities, ["label", "label", "label"]);
}

#[tokio::test]
async fn a_timeout_during_a_sleep_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<overslept>(&attempts).execution_timeout(HOUR),
        2 * 3600,
    )
    .await;
    // Like a cancellation: the sleep is cut short, the next `ctx.run` reports it, `?` ends.
    assert_eq!(
        report.output,
        serde_json::json!({ "Err": { "Activity": "Cancelled" } })
    );
    assert_eq!(report.status, WorkflowStatus::TimedOut);
    assert_eq!(report.activities, ["label"]);
    // A signal wait past the deadline ends without a result of its own.
    let waiting = survives(
        with_attempts::<waits_for_go>(&attempts).execution_timeout(HOUR),
        1,
    )
    .await;
    assert_eq!(waiting.output, serde_json::json!("TimedOut"));
    assert_eq!(waiting.status, WorkflowStatus::TimedOut);
    // In time, the deadline changes nothing.
    let in_time = survives(
        with_attempts::<overslept>(&attempts).execution_timeout(HOUR),
        60,
    )
    .await;
    assert_eq!(
        in_time.output,
        serde_json::json!({ "Ok": "<first> <second>" })
    );
    assert_eq!(in_time.status, WorkflowStatus::Completed);
}

#[tokio::test]
async fn a_child_timeout_survives_crashes() {
    let attempts = Arc::default();
    let report = survives(
        with_attempts::<bounded_child>(&attempts).configure(|b| b.register::<sleeper>()),
        2 * 3600,
    )
    .await;
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": "<child timed out>" })
    );
    assert_eq!(report.status, WorkflowStatus::Completed);
}

#[tokio::test]
async fn a_saga_compensating_survives_crashes_in_reverse_order_without_repeats() {
    let attempts: Arc<Attempts> = Arc::default();
    let report = survives(with_attempts::<trip>(&attempts), "rome".into()).await;
    assert_eq!(
        report.output,
        serde_json::json!({ "Err": { "Failed": { "message": "trip undone: activity failed permanently: no cars left" } } })
    );
    assert_eq!(report.status, WorkflowStatus::Failed);
    // Every run compensated the hotel, then the flight, each once in its committed history: the
    // harness fails a run in which a compensation committed before a crash runs again.
    assert_eq!(
        report.activities,
        [
            "book_flight",
            "book_hotel",
            "book_car",
            "cancel_hotel",
            "cancel_flight"
        ]
    );
    assert_eq!(
        attempts.keys(),
        [
            "book_car rome",
            "book_flight rome",
            "book_hotel rome",
            "cancel_flight flight for rome",
            "cancel_hotel hotel for rome",
        ]
    );
}
