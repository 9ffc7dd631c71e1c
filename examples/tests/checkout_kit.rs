//! The checkout workflow under weft-testing: mocked and real activities, virtual time, typed
//! state, chaos against the retry policy, a failing store, and the crash harness.

use std::time::Duration;

use weft_examples::checkout::{
    Approval, Charge, CheckoutState, Fulfilment, Order, Payment, Shop, charge_card, checkout,
    review, sample_orders,
};
use weft_runtime::engine::WorkflowStatus;
use weft_runtime::{ActivityError, Resources};
use weft_testing::{CrashTest, Mock, Signals, TestEngine};

/// Two days of fraud review: far longer than any test may take for real.
const HOLD: Duration = Duration::from_secs(2 * 24 * 3600);

/// A quiet shop whose payment ledger lives in `dir`.
fn shop(dir: &tempfile::TempDir) -> Resources {
    Resources::new().with(Shop::new(dir.path().join("ledger")).quiet())
}

/// The sample orders, held for two days: the first is approved, the third rejected.
fn order(n: usize) -> Order {
    let mut order = sample_orders(3, 0).swap_remove(n - 1);
    order.hold_ms = HOLD.as_millis() as u64;
    order
}

/// A charge mock with `charge_card`'s own signature: `Payment` in, `Charge` out.
fn fake_charges() -> Mock<charge_card> {
    Mock::new(charge_card, |payment: Payment| async move {
        Ok(Charge {
            id: format!("ch_test_{}", payment.cents),
            cents: payment.cents,
        })
    })
}

#[tokio::test]
async fn an_approved_order_ships_after_its_review_window_on_virtual_time() {
    let dir = tempfile::tempdir().unwrap();
    let charges = fake_charges();
    let engine = TestEngine::builder()
        .register::<checkout>()
        .with_mock(&charges)
        .resources(shop(&dir))
        .build()
        .await
        .unwrap();
    let order = order(1);
    let handle = engine.start::<checkout>(order.clone()).await.unwrap();
    let id = handle.id();

    // Reserved and charged (by the mock), now in the fraud-review window.
    assert_eq!(
        charges.calls(),
        [Payment {
            card: order.card.clone(),
            cents: order.total_cents()
        }]
    );
    let state = engine.state::<checkout>(id).await.unwrap();
    assert!(
        matches!(state, CheckoutState::AwaitSleep { .. }),
        "{state:?}"
    );

    // One second short of the window nothing moves; at its end the workflow waits for review.
    engine.advance_time(HOLD - Duration::from_secs(1)).await;
    assert_eq!(engine.state_name(id).await.unwrap(), Some("AwaitSleep"));
    engine.advance_time(Duration::from_secs(1)).await;
    assert_eq!(
        engine.state_name(id).await.unwrap(),
        Some("AwaitSignalApproval")
    );

    engine
        .signal(id, review(order.total_cents()))
        .await
        .unwrap();
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Completed);
    let receipt = engine.result::<checkout>(id).await.unwrap().unwrap();
    assert_eq!(
        receipt.charge.id,
        format!("ch_test_{}", order.total_cents())
    );
    let Fulfilment::Shipped(shipments) = &receipt.fulfilment else {
        panic!("expected the order to ship: {receipt:?}");
    };
    assert_eq!(shipments.len(), order.lines.len());
    // Unmocked activities ran for real, once each: no retry, no duplicate.
    let real: Vec<_> = engine
        .activity_calls()
        .iter()
        .map(|call| call.activity)
        .filter(|name| *name != "shop.charge_card")
        .collect();
    let mut expected = vec!["shop.reserve_inventory"];
    expected.extend(order.lines.iter().map(|_| "shop.ship_line"));
    expected.push("shop.send_receipt");
    assert_eq!(real, expected);
}

#[tokio::test]
async fn a_declined_card_is_retried_and_a_rejected_order_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let charges = fake_charges();
    charges.fail_once(ActivityError::failed("card network busy"));
    let engine = TestEngine::builder()
        .register::<checkout>()
        .with_mock(&charges)
        .resources(shop(&dir))
        .build()
        .await
        .unwrap();
    let order = order(3);
    let handle = engine.start::<checkout>(order.clone()).await.unwrap();
    // The first attempt failed; the retry waits out its backoff on the virtual clock.
    assert_eq!(charges.call_count(), 1);
    assert_eq!(
        engine.state_name(handle.id()).await.unwrap(),
        Some("AwaitChargeCard")
    );

    let rejection = review(order.total_cents());
    assert!(!rejection.approved);
    // `result` skips the backoff and the review window, and stops at the signal wait.
    let stuck = engine.result::<checkout>(handle.id()).await.unwrap_err();
    assert_eq!(stuck.code(), "testing.stuck");
    assert_eq!(charges.call_count(), 2);
    engine.signal(handle.id(), rejection.clone()).await.unwrap();
    let receipt = engine
        .result::<checkout>(handle.id())
        .await
        .unwrap()
        .unwrap();
    let Fulfilment::Refunded { reason, .. } = &receipt.fulfilment else {
        panic!("expected a refund: {receipt:?}");
    };
    assert_eq!(*reason, rejection.note);
    let names: Vec<_> = engine.activity_calls().iter().map(|c| c.activity).collect();
    assert!(names.contains(&"shop.refund_card") && names.contains(&"shop.release_inventory"));
    assert!(!names.contains(&"shop.ship_line"), "{names:?}");
}

#[tokio::test]
async fn checkout_survives_a_crash_after_every_commit() {
    // Every activity runs for real, the payment provider included: a charge re-run after a
    // crash finds its idempotency key in the ledger and returns the first charge.
    for n in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let resources = shop(&dir);
        let order = order(n);
        let decision: Approval = review(order.total_cents());
        let report = CrashTest::<checkout>::new()
            .resources(resources.clone())
            .workflow_id(order.id.clone())
            .signals(Signals::none().then(decision.clone()))
            .run(order.clone())
            .await
            .unwrap_or_else(|failure| panic!("order {n}: {failure}"));
        assert!(report.crashed_runs >= 6, "order {n}: {report}");
        assert_eq!(
            report.chain_crashes, report.crashed_runs,
            "order {n}: {report}"
        );
        let shipped = report.output["Ok"]["fulfilment"].get("Shipped").is_some();
        assert_eq!(shipped, decision.approved, "order {n}: {}", report.output);
        // One charge, however many runs and crashes re-ran the charge activity.
        let shop = resources.get::<Shop>().unwrap();
        let charges = shop.payments().charges().unwrap();
        assert_eq!(charges.len(), 1, "order {n}: {charges:?}");
        let charge = charges.values().next().unwrap();
        assert_eq!(charge.cents, order.total_cents());
    }
}

#[tokio::test]
async fn transient_charge_failures_are_retried_and_charge_once() {
    use std::sync::Arc;
    use weft_testing::{Chaos, ChaosFault};

    // A seed whose schedule fails the first two calls transiently, then lets the third through:
    // charge_card allows three attempts.
    let rates = |chaos: Chaos| chaos.with_transient_rate(0.5);
    let seed = (0..10_000)
        .find(|seed| {
            let preview = rates(Chaos::wrap(charge_card, *seed)).preview(3);
            preview
                == [
                    Some(ChaosFault::Transient),
                    Some(ChaosFault::Transient),
                    None,
                ]
        })
        .expect("a seed below 10000 fails twice, then succeeds");
    let chaos = Arc::new(rates(Chaos::wrap(charge_card, seed)));
    let dir = tempfile::tempdir().unwrap();
    let resources = shop(&dir);
    let engine = TestEngine::builder()
        .register::<checkout>()
        .activity(chaos.clone())
        .resources(resources.clone())
        .build()
        .await
        .unwrap();
    let order = order(1);
    let handle = engine.start::<checkout>(order.clone()).await.unwrap();
    engine.advance_time(HOLD).await;
    engine
        .signal(handle.id(), review(order.total_cents()))
        .await
        .unwrap();
    let receipt = engine
        .result::<checkout>(handle.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chaos.calls(), 3);
    assert_eq!(chaos.injected().len(), 2);
    let charges = resources
        .get::<Shop>()
        .unwrap()
        .payments()
        .charges()
        .unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges.values().next(), Some(&receipt.charge));
}

#[tokio::test]
async fn a_failed_storage_write_loses_no_signal() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = TestEngine::builder()
        .register::<checkout>()
        .with_mock(&fake_charges())
        .resources(shop(&dir))
        .build()
        .await
        .unwrap();
    let order = order(2);
    let handle = engine.start::<checkout>(order.clone()).await.unwrap();
    engine.advance_time(HOLD).await;
    let approval = review(order.total_cents());
    // The signal's commit fails: the sender sees the error, nothing is stored.
    engine.faults().fail_next_write();
    let refused = engine
        .signal(handle.id(), approval.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "storage.backend");
    assert_eq!(
        engine.state_name(handle.id()).await.unwrap(),
        Some("AwaitSignalApproval")
    );
    // Sent again after a restart, it is delivered once.
    engine.restart().await.unwrap();
    engine.signal(handle.id(), approval).await.unwrap();
    let receipt = engine
        .result::<checkout>(handle.id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(receipt.fulfilment, Fulfilment::Shipped(_)),
        "{receipt:?}"
    );
}
