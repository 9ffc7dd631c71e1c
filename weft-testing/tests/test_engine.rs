//! The test engine: virtual time, settling, results, state inspection and restarts.

use std::time::Duration;

use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};
use weft_testing::TestEngine;
use weft_ui_tests::representative::{Approval, StraightLineState, straight_line};

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Counts down the days of a week-long trial.
#[activity]
async fn send_reminder(day: u32) -> Result<u32, ActivityError> {
    Ok(day)
}

/// Sleeps a week, reminding on the way, then reports how many reminders went out.
#[workflow]
async fn trial(ctx: &mut WorkflowContext, days: u32) -> Result<u32, WorkflowError> {
    let mut sent: u32 = 0;
    for day in 0..days {
        ctx.sleep(WEEK / days).await;
        let reminded = ctx.run(send_reminder, day).await?;
        sent = sent.max(reminded + 1);
    }
    ctx.sleep(WEEK).await;
    Ok(sent)
}

#[tokio::test]
async fn a_workflow_that_sleeps_for_a_week_completes_on_virtual_time() {
    let engine = TestEngine::builder()
        .register::<trial>()
        .build()
        .await
        .unwrap();
    let start = engine.now();
    let handle = engine.start::<trial>(7).await.unwrap();
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Waiting
    );

    engine.advance_time(WEEK).await;
    // Every daily timer fired on the way, each at its own deadline; the final week remains.
    assert_eq!(engine.activity_calls().len(), 7);
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Waiting
    );

    engine.advance_time(WEEK).await;
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Completed
    );
    assert_eq!(engine.result::<trial>(handle.id()).await.unwrap(), Ok(7));
    assert_eq!(engine.now(), start + 2 * WEEK);
}

#[tokio::test]
async fn result_skips_time_to_the_next_timer() {
    let engine = TestEngine::builder()
        .register::<trial>()
        .build()
        .await
        .unwrap();
    let start = engine.now();
    let handle = engine.start::<trial>(2).await.unwrap();
    assert_eq!(engine.result::<trial>(handle.id()).await.unwrap(), Ok(2));
    assert_eq!(engine.now(), start + 2 * WEEK);
}

#[tokio::test]
async fn signals_and_typed_state_follow_the_workflow() {
    let engine = TestEngine::builder()
        .register::<straight_line>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<straight_line>(4).await.unwrap();
    let id = handle.id();
    // add_one ran for real, then the workflow sleeps a minute.
    let state = engine.state::<straight_line>(id).await.unwrap();
    assert!(
        matches!(state, StraightLineState::AwaitSleep { a: 5 }),
        "{state:?}"
    );
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Waiting);

    engine.advance_time(Duration::from_secs(59)).await;
    let state = engine.state::<straight_line>(id).await.unwrap();
    assert!(
        matches!(state, StraightLineState::AwaitSleep { a: 5 }),
        "{state:?}"
    );
    engine.advance_time(Duration::from_secs(1)).await;
    let state = engine.state::<straight_line>(id).await.unwrap();
    assert!(
        matches!(state, StraightLineState::AwaitSignalApproval { a: 5 }),
        "{state:?}"
    );
    assert_eq!(
        engine.state_name(id).await.unwrap(),
        Some("AwaitSignalApproval")
    );

    let stuck = engine.result::<straight_line>(id).await.unwrap_err();
    assert_eq!(stuck.code(), "testing.stuck");
    assert!(stuck.to_string().contains("signal `Approval`"), "{stuck}");

    engine
        .signal(
            id,
            Approval {
                approved: true,
                by: "ada".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Completed);
    assert_eq!(engine.result::<straight_line>(id).await.unwrap(), Ok(10));
    let names: Vec<_> = engine.activity_calls().iter().map(|c| c.activity).collect();
    assert_eq!(names, ["add_one", "double"]);
}

#[tokio::test]
async fn many_workflows_settle_together_and_timers_fire_in_deadline_order() {
    let engine = TestEngine::builder()
        .register::<trial>()
        .build()
        .await
        .unwrap();
    let mut handles = Vec::new();
    for days in 1..=20u32 {
        handles.push(engine.start::<trial>(days).await.unwrap());
    }
    // Each of them is now asleep; nothing runs until time passes.
    assert!(engine.is_settled());
    for handle in &handles {
        assert_eq!(
            engine.status(handle.id()).await.unwrap(),
            WorkflowStatus::Waiting
        );
    }
    engine.advance_time(2 * WEEK).await;
    for (days, handle) in (1..=20u32).zip(&handles) {
        assert_eq!(
            engine.status(handle.id()).await.unwrap(),
            WorkflowStatus::Completed
        );
        assert_eq!(engine.result::<trial>(handle.id()).await.unwrap(), Ok(days));
    }
    // Every daily timer fired at its own deadline, in deadline order across the workflows.
    let calls = engine.activity_calls();
    assert_eq!(calls.len(), (1..=20).sum::<usize>());
    let times: Vec<_> = calls.iter().map(|c| c.started_at).collect();
    assert!(times.is_sorted(), "{times:?}");
    let distinct: std::collections::BTreeSet<_> = times.iter().collect();
    assert!(
        distinct.len() > 20,
        "{} distinct firing times",
        distinct.len()
    );
}

#[tokio::test]
async fn restart_drops_memory_and_resumes_from_the_store() {
    let mut engine = TestEngine::builder()
        .register::<straight_line>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<straight_line>(1).await.unwrap();
    let id = handle.id().to_string();
    let epoch = engine.engine().epoch();
    engine.restart().await.unwrap();
    assert!(engine.engine().epoch() > epoch);
    // The timer was re-armed from the store at its stored deadline.
    let state = engine.state::<straight_line>(&id).await.unwrap();
    assert!(
        matches!(state, StraightLineState::AwaitSleep { a: 2 }),
        "{state:?}"
    );
    engine.advance_time(Duration::from_secs(60)).await;
    engine.restart().await.unwrap();
    assert_eq!(
        engine.state_name(&id).await.unwrap(),
        Some("AwaitSignalApproval")
    );
    engine
        .signal(
            &id,
            Approval {
                approved: false,
                by: "eve".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(engine.result::<straight_line>(&id).await.unwrap(), Ok(2));
    // add_one ran once: no step was run twice across the restarts.
    assert_eq!(engine.activity_calls().len(), 2);
}

#[tokio::test]
async fn cancel_cuts_a_sleep_short_and_the_next_activity_reports_it() {
    let engine = TestEngine::builder()
        .register::<trial>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<trial>(3).await.unwrap();
    engine.cancel(handle.id()).await.unwrap();
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Cancelled
    );
    // The sleep returned at once; the reminder after it saw the cancellation instead of running,
    // and `?` passed it on.
    let result = engine.result::<trial>(handle.id()).await.unwrap();
    assert_eq!(
        result,
        Err(WorkflowError::Activity(
            weft_runtime::ActivityError::Cancelled
        ))
    );
    assert!(engine.activity_calls().is_empty(), "no reminder was sent");
}

/// The running total `straight_line` carries while it waits.
struct Carried;

impl weft_runtime::Query for Carried {
    type Workflow = straight_line;
    type Output = Option<u64>;
    const NAME: &'static str = "carried";
    fn answer(state: &StraightLineState) -> Option<u64> {
        match state {
            StraightLineState::AwaitSleep { a } | StraightLineState::AwaitSignalApproval { a } => {
                Some(*a)
            }
            _ => None,
        }
    }
}

#[tokio::test]
async fn a_query_reads_a_waiting_workflow_without_a_write() {
    let engine = TestEngine::builder()
        .register::<straight_line>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<straight_line>(4).await.unwrap();
    engine.advance_time(Duration::from_secs(60)).await;
    assert_eq!(
        engine.state_name(handle.id()).await.unwrap(),
        Some("AwaitSignalApproval")
    );
    let writes = engine.faults().writes();
    assert_eq!(engine.query::<Carried>(handle.id()).await.unwrap(), Some(5));
    assert_eq!(engine.faults().writes(), writes);
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Waiting
    );
}
