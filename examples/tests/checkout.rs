//! The checkout example: the workflow on a memory store, and the program crashing mid-way with
//! `--crash-after` and finishing on the rerun.

use std::path::Path;
use std::process::{Command, Output};

use weft_examples::checkout::{
    APPROVAL_LIMIT_CENTS, Fulfilment, Shop, checkout, review, sample_orders,
};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{Engine, Resources, StartOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_ship_or_refund_by_the_fraud_desk_decision() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::new(dir.path().join("payments.log")).quiet();
    let engine = Engine::builder(MemoryStorage::new())
        .register::<checkout>()
        .resources(Resources::new().with(shop))
        .build()
        .await
        .unwrap();
    let orders = sample_orders(4, 10);
    assert!(
        orders
            .iter()
            .any(|o| o.total_cents() > APPROVAL_LIMIT_CENTS)
            && orders
                .iter()
                .any(|o| o.total_cents() <= APPROVAL_LIMIT_CENTS),
        "the sample has orders on both sides of the limit"
    );
    for order in &orders {
        let handle = engine
            .start_with::<checkout>(
                order.clone(),
                StartOptions {
                    id: Some(order.id.clone()),
                    idempotency_key: Some(order.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // Stored durably even though the workflow is not waiting for it yet.
        handle.signal(review(order.total_cents())).await.unwrap();
    }
    for order in &orders {
        let receipt = engine.result::<checkout>(&order.id).await.unwrap().unwrap();
        assert_eq!(receipt.order_id, order.id);
        assert_eq!(receipt.charge.cents, order.total_cents());
        match receipt.fulfilment {
            Fulfilment::Shipped(shipments) => {
                assert!(order.total_cents() <= APPROVAL_LIMIT_CENTS);
                let shipped: Vec<(String, u32)> =
                    shipments.into_iter().map(|s| (s.sku, s.quantity)).collect();
                let ordered: Vec<(String, u32)> = order
                    .lines
                    .iter()
                    .map(|l| (l.sku.clone(), l.quantity))
                    .collect();
                assert_eq!(shipped, ordered, "{} ships every line once", order.id);
            }
            Fulfilment::Refunded { .. } => assert!(order.total_cents() > APPROVAL_LIMIT_CENTS),
        }
    }
    // A start retried with the same id and key returns the same run, charging nothing more.
    let again = engine
        .start_with::<checkout>(
            orders[0].clone(),
            StartOptions {
                id: Some(orders[0].id.clone()),
                idempotency_key: Some(orders[0].id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(again.result().await.unwrap().is_ok());
    let charges = Shop::new(dir.path().join("payments.log"))
        .payments()
        .charges()
        .unwrap();
    assert_eq!(charges.len(), orders.len(), "one charge per order");
}

fn checkout_program(db: &Path, extra: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_checkout"))
        .arg("--db")
        .arg(db)
        .args(["--hold-ms", "100"])
        .args(extra)
        .output()
        .unwrap();
    eprintln!(
        "--- checkout {extra:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_program_crashes_with_crash_after_and_the_rerun_finishes_every_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("checkout.redb");

    let crashed = checkout_program(&db, &["--crash-after", "5"]);
    assert!(
        !crashed.status.success(),
        "--crash-after aborts the process"
    );
    let stdout = String::from_utf8_lossy(&crashed.stdout);
    assert!(stdout.contains("aborting the process now"), "{stdout}");
    assert!(!stdout.contains("Receipts:"));

    let resumed = checkout_program(&db, &[]);
    assert!(resumed.status.success());
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("Resumed "), "{stdout}");
    for id in ["order-1", "order-2", "order-3"] {
        assert!(stdout.contains(&format!("  {id}: charged")), "{stdout}");
    }
    assert!(stdout.contains("2 shipped, 1 refunded"), "{stdout}");

    // However the crash fell, every card was charged exactly once.
    let charges = Shop::new(db.with_extension("payments.log"))
        .payments()
        .charges()
        .unwrap();
    assert_eq!(charges.len(), 3);
    let ledger = std::fs::read_to_string(db.with_extension("payments.log")).unwrap();
    assert_eq!(ledger.lines().count(), 3, "no charge was made twice");

    // A third run starts nothing and shows the stored receipts.
    let again = checkout_program(&db, &[]);
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("3 of them finished"), "{stdout}");
    assert!(!stdout.contains("Starting order"), "{stdout}");
    assert!(stdout.contains("2 shipped, 1 refunded"), "{stdout}");
}
