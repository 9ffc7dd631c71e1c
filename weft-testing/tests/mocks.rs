//! Activity mocks under the test engine: typed closures, recorded calls, per-call overrides,
//! and real activities running beside mocked ones.

use serde::{Deserialize, Serialize};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};
use weft_testing::{Mock, TestEngine};

/// What to charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// The amount.
    pub cents: u64,
    /// The card token.
    pub card: String,
}

/// A charge the provider made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// The provider's id.
    pub id: String,
    /// The amount charged.
    pub cents: u64,
}

/// The real provider is not reachable from tests: an unmocked call fails permanently.
#[activity(max_attempts = 3, initial_backoff_ms = 1000)]
async fn charge_card(_payment: Payment) -> Result<Charge, ActivityError> {
    Err(ActivityError::non_retryable(
        "the payment provider is not reachable from tests",
    ))
}

/// Runs for real in these tests.
#[activity]
async fn write_receipt(charge: Charge) -> Result<String, ActivityError> {
    Ok(format!("receipt {} for {} cents", charge.id, charge.cents))
}

/// Charges, then writes a receipt.
#[workflow]
async fn pay(ctx: &mut WorkflowContext, payment: Payment) -> Result<String, WorkflowError> {
    let charge = ctx.run(charge_card, payment).await?;
    let receipt = ctx.run(write_receipt, charge).await?;
    Ok(receipt)
}

fn payment(cents: u64) -> Payment {
    Payment {
        cents,
        card: "tok_visa".into(),
    }
}

#[tokio::test]
async fn a_typed_closure_replaces_the_activity_and_records_its_inputs() {
    let engine = TestEngine::builder()
        .register::<pay>()
        .mock(charge_card, |p| async move {
            Ok(Charge {
                id: format!("ch_{}", p.cents),
                cents: p.cents,
            })
        })
        .build()
        .await
        .unwrap();
    let first = engine.start::<pay>(payment(500)).await.unwrap();
    let second = engine.start::<pay>(payment(700)).await.unwrap();
    assert_eq!(
        engine.result::<pay>(first.id()).await.unwrap(),
        Ok("receipt ch_500 for 500 cents".to_string())
    );
    assert_eq!(
        engine.result::<pay>(second.id()).await.unwrap(),
        Ok("receipt ch_700 for 700 cents".to_string())
    );
    let charge = engine.mock(charge_card);
    assert_eq!(charge.call_count(), 2);
    assert_eq!(charge.calls(), [payment(500), payment(700)]);
    // write_receipt is not mocked: it ran for real, and the log decodes its calls.
    let receipts: Vec<Charge> = engine
        .activity_calls()
        .iter()
        .filter_map(|call| call.input_as::<write_receipt>())
        .collect();
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts[0],
        Charge {
            id: "ch_500".into(),
            cents: 500
        }
    );
}

#[tokio::test]
async fn an_unmocked_activity_runs_for_real() {
    let engine = TestEngine::builder()
        .register::<pay>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<pay>(payment(100)).await.unwrap();
    let result = engine.result::<pay>(handle.id()).await.unwrap();
    let error = result.unwrap_err();
    assert!(
        error.to_string().contains("not reachable from tests"),
        "{error}"
    );
}

#[tokio::test]
async fn fail_once_is_retried_under_the_activity_policy_on_virtual_time() {
    let charge = Mock::new(charge_card, |p: Payment| async move {
        Ok(Charge {
            id: "ch_ok".into(),
            cents: p.cents,
        })
    });
    charge.fail_once(ActivityError::failed("card network busy"));
    let engine = TestEngine::builder()
        .register::<pay>()
        .with_mock(&charge)
        .build()
        .await
        .unwrap();
    let start = engine.now();
    let handle = engine.start::<pay>(payment(900)).await.unwrap();
    // The first attempt failed; the retry waits out its 1 s backoff on the virtual clock.
    assert_eq!(charge.call_count(), 1);
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Running
    );
    engine.advance_time(std::time::Duration::from_secs(1)).await;
    assert_eq!(charge.call_count(), 2);
    assert_eq!(
        engine.status(handle.id()).await.unwrap(),
        WorkflowStatus::Completed
    );
    assert_eq!(
        engine.result::<pay>(handle.id()).await.unwrap(),
        Ok("receipt ch_ok for 900 cents".to_string())
    );
    assert_eq!(engine.now(), start + std::time::Duration::from_secs(1));
    assert_eq!(charge.pending_overrides(), 0);
}

#[tokio::test]
async fn return_once_and_permanent_failures_apply_to_one_call_each() {
    let charge = Mock::new(charge_card, |p: Payment| async move {
        Ok(Charge {
            id: "ch_closure".into(),
            cents: p.cents,
        })
    });
    charge
        .return_once(Charge {
            id: "ch_override".into(),
            cents: 1,
        })
        .fail_once(ActivityError::non_retryable("card stolen"));
    let engine = TestEngine::builder()
        .register::<pay>()
        .with_mock(&charge)
        .build()
        .await
        .unwrap();
    let overridden = engine.start::<pay>(payment(10)).await.unwrap();
    let refused = engine.start::<pay>(payment(20)).await.unwrap();
    let normal = engine.start::<pay>(payment(30)).await.unwrap();
    assert_eq!(
        engine.result::<pay>(overridden.id()).await.unwrap(),
        Ok("receipt ch_override for 1 cents".to_string())
    );
    let refusal = engine
        .result::<pay>(refused.id())
        .await
        .unwrap()
        .unwrap_err();
    assert!(refusal.to_string().contains("card stolen"), "{refusal}");
    assert_eq!(
        engine.result::<pay>(normal.id()).await.unwrap(),
        Ok("receipt ch_closure for 30 cents".to_string())
    );
    // The permanent failure was not retried: one call per workflow.
    assert_eq!(charge.call_count(), 3);
    assert_eq!(charge.last_call(), Some(payment(30)));
}
