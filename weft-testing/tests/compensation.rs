//! A saga's compensations run with the retry policy of the compensating activity, as
//! `ctx.run` would run it, not a default one.

use weft_runtime::{ActivityError, Saga, WorkflowContext, WorkflowError, activity, workflow};
use weft_testing::TestEngine;

#[activity]
async fn book(what: String) -> Result<String, ActivityError> {
    if what == "car" {
        return Err(ActivityError::non_retryable("no cars left"));
    }
    Ok(what)
}

/// Fails every attempt with a retryable error; tried at most twice.
#[activity(max_attempts = 2, initial_backoff_ms = 10)]
async fn unbook(what: String) -> Result<(), ActivityError> {
    Err(ActivityError::failed(format!("cannot unbook {what}")))
}

#[workflow]
async fn trip(ctx: &mut WorkflowContext, items: Vec<String>) -> Result<u32, WorkflowError> {
    let mut saga: Saga = Saga::new();
    for item in items {
        if ctx.run(book, item.clone()).await.is_err() {
            let mut failed: u32 = 0;
            while let Some(undo) = saga.pop() {
                if ctx.compensate(undo).await.is_err() {
                    failed += 1;
                }
            }
            return Ok(failed);
        }
        saga.add(unbook, item);
    }
    Ok(0)
}

#[tokio::test]
async fn a_compensation_is_retried_as_its_activity_declares() {
    let engine = TestEngine::builder()
        .register::<trip>()
        .build()
        .await
        .unwrap();
    let items = vec!["flight".to_string(), "hotel".to_string(), "car".to_string()];
    let handle = engine.start::<trip>(items).await.unwrap();
    assert_eq!(engine.result::<trip>(handle.id()).await.unwrap(), Ok(2));
    let attempts: Vec<u32> = engine
        .activity_calls()
        .into_iter()
        .filter(|call| call.activity == "unbook")
        .map(|call| call.attempt)
        .collect();
    // Two compensations, two attempts each (the default policy would make five).
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert_eq!(attempts, [1, 2, 1, 2]);
}
