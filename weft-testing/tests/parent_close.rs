//! Parent-close policies when the parent's execution timeout passes: a `Wait` child is waited
//! for, as it is when the parent is cancelled; the default policy cancels the child.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::{StartOptions, WorkflowStatus};
use weft_runtime::{
    ActivityError, ChildError, ChildOptions, ParentClosePolicy, Signal, WorkflowContext,
    WorkflowError, activity, workflow,
};
use weft_testing::TestEngine;

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
struct Go;

#[activity]
async fn after_child(done: String) -> Result<String, ActivityError> {
    Ok(done)
}

/// Ends when it is told to go.
#[workflow]
async fn gated(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let Go = ctx.wait_for_signal::<Go>().await;
    Ok(format!("{name} done"))
}

/// Waits for its child under `policy`, then runs one more step, reporting what it saw.
#[workflow]
async fn parent(
    ctx: &mut WorkflowContext,
    policy: ParentClosePolicy,
) -> Result<String, WorkflowError> {
    let options = ChildOptions {
        policy,
        execution_timeout: None,
    };
    let done: String = match ctx.child_with(gated, "kid".to_string(), options).await {
        Ok(done) => done,
        Err(ChildError::Cancelled) => "kid cancelled".to_string(),
        Err(e) => return Err(e.into()),
    };
    match ctx.run(after_child, done.clone()).await {
        Ok(next) => Ok(format!("{next}, then ran on")),
        Err(ActivityError::Cancelled) => Ok(format!("{done}, then timed out")),
        Err(e) => Err(e.into()),
    }
}

async fn engine() -> TestEngine {
    TestEngine::builder()
        .register::<gated>()
        .register::<parent>()
        .build()
        .await
        .unwrap()
}

fn with_timeout() -> StartOptions {
    StartOptions {
        execution_timeout: Some(MINUTE),
        ..StartOptions::default()
    }
}

#[tokio::test]
async fn a_timed_out_parent_waits_for_its_wait_child_then_sees_the_timeout() {
    let engine = engine().await;
    let handle = engine
        .start_with::<parent>(ParentClosePolicy::Wait, with_timeout())
        .await
        .unwrap();
    let child = format!("{}/1", handle.id());
    assert_eq!(
        engine.status(&child).await.unwrap(),
        WorkflowStatus::Waiting
    );

    engine.advance_time(2 * MINUTE).await;
    // The deadline has passed, but a `Wait` child is not cancelled and the parent waits on.
    assert_eq!(
        engine.status(&child).await.unwrap(),
        WorkflowStatus::Waiting
    );
    assert!(!engine.status(handle.id()).await.unwrap().is_terminal());

    engine.signal(&child, Go).await.unwrap();
    assert_eq!(
        engine.status(&child).await.unwrap(),
        WorkflowStatus::Completed
    );
    // The parent resumed with the child's result; the timeout reached its next await.
    assert_eq!(
        engine.result::<parent>(handle.id()).await.unwrap(),
        Ok("kid done, then timed out".to_string())
    );
    assert!(
        engine.activity_calls().is_empty(),
        "the last step never ran"
    );
}

#[tokio::test]
async fn a_timed_out_parent_cancels_a_child_under_the_default_policy() {
    let engine = engine().await;
    let handle = engine
        .start_with::<parent>(ParentClosePolicy::RequestCancel, with_timeout())
        .await
        .unwrap();
    let child = format!("{}/1", handle.id());
    engine.advance_time(2 * MINUTE).await;
    assert_eq!(
        engine.status(&child).await.unwrap(),
        WorkflowStatus::Cancelled
    );
    // The parent's child await ended with the cancellation the timeout delivered.
    assert_eq!(
        engine.result::<parent>(handle.id()).await.unwrap(),
        Ok("kid cancelled, then ran on".to_string())
    );
}
