//! The fan-out example under weft-testing: a mocked stock check, the partial-shipment race on
//! virtual time, the child workflows, and the crash harness over every outcome.

use std::time::Duration;

use weft_examples::fan_out::{
    BulkOrder, Line, Outcome, PartialAnswer, Stock, bulk_order, check_stock, pack_line, sample,
};
use weft_runtime::engine::{Pending, WorkflowStatus};
use weft_runtime::{ActivityError, ListFilter, Resources};
use weft_testing::{CrashTest, Mock, Signals, TestEngine};

/// A day to answer: far longer than any test may take for real.
const ANSWER_WITHIN: Duration = Duration::from_secs(24 * 3600);

/// The sample order with five lines, the third short unless `all_in_stock`, and a quiet
/// warehouse whose activities take no time.
fn order(all_in_stock: bool) -> (BulkOrder, Resources) {
    let (order, warehouse) = sample("bulk-1", 5, ANSWER_WITHIN.as_millis() as u64, !all_in_stock);
    (order, Resources::new().with(warehouse.quiet()))
}

/// A stock-check mock with `check_stock`'s own signature: `Line` in, `Stock` out. Cables are
/// short; everything else has twice what is asked.
fn fake_stock() -> Mock<check_stock> {
    Mock::new(check_stock, |line: Line| async move {
        let on_hand = if line.sku.starts_with("CABLE") {
            1
        } else {
            line.quantity * 2
        };
        Ok(Stock {
            sku: line.sku,
            on_hand,
        })
    })
}

async fn engine(resources: Resources, stock: &Mock<check_stock>) -> TestEngine {
    TestEngine::builder()
        .register::<bulk_order>()
        .register::<pack_line>()
        .with_mock(stock)
        .resources(resources)
        .build()
        .await
        .unwrap()
}

/// The `pack_line` children of `parent`, with their status.
async fn children(engine: &TestEngine, parent: &str) -> Vec<(String, WorkflowStatus)> {
    let filter = ListFilter {
        workflow_type: Some("pack_line".to_string()),
        ..ListFilter::default()
    };
    let page = engine.engine().list(&filter, 100, None).await.unwrap();
    page.items
        .into_iter()
        .filter(|item| item.id.starts_with(&format!("{parent}/")))
        .map(|item| (item.id, item.status))
        .collect()
}

fn skus(lines: &[Line]) -> Vec<String> {
    let mut skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
    skus.sort();
    skus
}

#[tokio::test]
async fn a_short_line_asks_the_customer_and_an_accepted_answer_packs_the_rest_in_children() {
    let (order, resources) = order(false);
    let stock = fake_stock();
    let engine = engine(resources, &stock).await;
    let handle = engine.start::<bulk_order>(order.clone()).await.unwrap();
    let id = handle.id();

    // Every line was checked, each once (in whatever order the branches ran).
    assert_eq!(skus(&stock.calls()), skus(&order.lines));
    // Now the workflow waits on its race: the answer against the deadline, neither finished.
    let description = engine.describe(id).await.unwrap();
    assert_eq!(
        description.pending,
        Some(Pending::Group {
            race: true,
            branches: 2,
            finished: 0
        })
    );
    assert!(children(&engine, id).await.is_empty(), "nothing packed yet");

    engine
        .signal(id, PartialAnswer { accept: true })
        .await
        .unwrap();
    let outcome = engine.result::<bulk_order>(id).await.unwrap().unwrap();
    let Outcome::Packed { parcels, left_out } = outcome else {
        panic!("expected the in-stock lines to be packed: {outcome:?}");
    };
    assert_eq!(left_out, ["CABLE-USB-C"]);
    let packed: Vec<(String, u32)> = parcels
        .iter()
        .map(|p| (p.sku.clone(), p.quantity))
        .collect();
    let expected: Vec<(String, u32)> = order
        .lines
        .iter()
        .filter(|l| !l.sku.starts_with("CABLE"))
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    assert_eq!(
        packed, expected,
        "one parcel per line in stock, in line order"
    );

    // One child workflow per packed line, each with its own id, finished.
    let children = children(&engine, id).await;
    assert_eq!(children.len(), expected.len(), "{children:?}");
    assert!(
        children
            .iter()
            .all(|(_, status)| *status == WorkflowStatus::Completed),
        "{children:?}"
    );
    // The children's activities ran for real, once per line.
    let picks = engine
        .activity_calls()
        .iter()
        .filter(|call| call.activity == "warehouse.pick_items")
        .count();
    assert_eq!(picks, expected.len());
}

#[tokio::test]
async fn the_deadline_wins_the_race_when_the_customer_does_not_answer() {
    let (order, resources) = order(false);
    let stock = fake_stock();
    let engine = engine(resources, &stock).await;
    let handle = engine.start::<bulk_order>(order).await.unwrap();
    let id = handle.id();

    // A millisecond before the deadline the race is still open.
    engine
        .advance_time(ANSWER_WITHIN - Duration::from_millis(1))
        .await;
    assert!(
        matches!(
            engine.describe(id).await.unwrap().pending,
            Some(Pending::Group { race: true, .. })
        ),
        "still racing"
    );
    engine.advance_time(Duration::from_millis(1)).await;
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Completed);
    let outcome = engine.result::<bulk_order>(id).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Expired {
            short: vec!["CABLE-USB-C".to_string()]
        }
    );
    assert!(children(&engine, id).await.is_empty());

    // An answer after the deadline is refused: the workflow has finished.
    let late = engine.signal(id, PartialAnswer { accept: true }).await;
    assert!(late.is_err(), "{late:?}");
    assert_eq!(engine.result::<bulk_order>(id).await.unwrap(), Ok(outcome));
}

#[tokio::test]
async fn a_declined_partial_shipment_packs_nothing() {
    let (order, resources) = order(false);
    let stock = fake_stock();
    let engine = engine(resources, &stock).await;
    let handle = engine.start::<bulk_order>(order).await.unwrap();
    engine
        .signal(handle.id(), PartialAnswer { accept: false })
        .await
        .unwrap();
    let outcome = engine
        .result::<bulk_order>(handle.id())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Declined { .. }), "{outcome:?}");
    assert!(
        !engine
            .activity_calls()
            .iter()
            .any(|call| call.activity == "warehouse.pick_items"),
        "nothing was picked"
    );
}

#[tokio::test]
async fn with_everything_in_stock_no_question_is_asked() {
    let (order, resources) = order(true);
    let engine = TestEngine::builder()
        .register::<bulk_order>()
        .register::<pack_line>()
        .resources(resources)
        .build()
        .await
        .unwrap();
    let handle = engine.start::<bulk_order>(order.clone()).await.unwrap();
    let outcome = engine
        .result::<bulk_order>(handle.id())
        .await
        .unwrap()
        .unwrap();
    let Outcome::Packed { parcels, left_out } = outcome else {
        panic!("expected every line packed: {outcome:?}");
    };
    assert_eq!(parcels.len(), order.lines.len());
    assert!(left_out.is_empty());
    assert!(
        !engine
            .activity_calls()
            .iter()
            .any(|call| call.activity == "warehouse.notify_customer")
    );
}

#[tokio::test]
async fn a_failed_stock_check_fails_the_order_after_every_line_was_checked() {
    let (order, resources) = order(false);
    let stock = fake_stock();
    stock.fail_once(ActivityError::non_retryable("the stock database is down"));
    let engine = engine(resources, &stock).await;
    let handle = engine.start::<bulk_order>(order.clone()).await.unwrap();
    let error = engine
        .result::<bulk_order>(handle.id())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.code(), "activity.non_retryable", "{error}");
    // The failing branch did not stop the others: every line was checked, once.
    assert_eq!(stock.call_count(), order.lines.len());
    assert!(children(&engine, handle.id()).await.is_empty());
}

#[tokio::test]
async fn every_outcome_survives_a_crash_after_every_commit() {
    let cases: [(bool, Signals, &str); 4] = [
        (true, Signals::none(), "Packed"),
        (
            false,
            Signals::none().then(PartialAnswer { accept: true }),
            "Packed",
        ),
        (
            false,
            Signals::none().then(PartialAnswer { accept: false }),
            "Declined",
        ),
        // No answer: the harness skips the deadline on the virtual clock.
        (false, Signals::none(), "Expired"),
    ];
    for (all_in_stock, signals, expected) in cases {
        let (order, _) = order(all_in_stock);
        let report = CrashTest::<bulk_order>::new()
            .configure(|builder| builder.register::<pack_line>())
            .resources(order_resources(all_in_stock))
            .workflow_id(order.id.clone())
            .signals(signals)
            .run(order.clone())
            .await
            .unwrap_or_else(|failure| panic!("{expected}: {failure}"));
        assert!(
            report.output["Ok"].get(expected).is_some(),
            "{expected}: {}",
            report.output
        );
        assert!(report.crashed_runs >= 5, "{expected}: {report}");
        if expected == "Packed" {
            let parcels = report.output["Ok"]["Packed"]["parcels"].as_array().unwrap();
            let in_stock = if all_in_stock { 5 } else { 4 };
            assert_eq!(parcels.len(), in_stock, "{}", report.output);
        }
    }
}

fn order_resources(all_in_stock: bool) -> Resources {
    order(all_in_stock).1
}

fn fan_out_program(db: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fan_out"))
        .arg("--db")
        .arg(db)
        .args(extra)
        .output()
        .unwrap();
    eprintln!(
        "--- fan_out {extra:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_program_packs_the_lines_in_stock_and_a_rerun_shows_the_stored_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fan_out.redb");
    let first = fan_out_program(&db, &["--answer-within-ms", "5000"]);
    assert!(first.status.success());
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("Customer: accepts"), "{stdout}");
    assert!(stdout.contains("bulk-1: 4 parcels packed"), "{stdout}");
    assert!(stdout.contains("left out (short): CABLE-USB-C"), "{stdout}");
    assert_eq!(stdout.matches("Completed, 3 steps").count(), 4, "{stdout}");

    let again = fan_out_program(&db, &[]);
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("already in"), "{stdout}");
    assert!(
        !stdout.contains("check_stock"),
        "nothing runs again: {stdout}"
    );
    assert!(stdout.contains("bulk-1: 4 parcels packed"), "{stdout}");

    let silent = fan_out_program(
        &db,
        &["--fresh", "--answer", "none", "--answer-within-ms", "200"],
    );
    assert!(silent.status.success());
    let stdout = String::from_utf8_lossy(&silent.stdout);
    assert!(stdout.contains("the deadline won the race"), "{stdout}");
}

#[tokio::test]
async fn with_every_line_short_an_accepted_answer_packs_nothing_through_an_empty_group() {
    let (order, resources) = order(false);
    let empty = Mock::new(check_stock, |line: Line| async move {
        Ok(Stock {
            sku: line.sku,
            on_hand: 0,
        })
    });
    let engine = engine(resources, &empty).await;
    let handle = engine.start::<bulk_order>(order.clone()).await.unwrap();
    engine
        .signal(handle.id(), PartialAnswer { accept: true })
        .await
        .unwrap();
    // `ctx.all` over an empty `Vec` of children resumes at once with an empty `Vec`.
    let outcome = engine
        .result::<bulk_order>(handle.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Packed {
            parcels: Vec::new(),
            left_out: order.lines.iter().map(|l| l.sku.clone()).collect(),
        }
    );
    assert!(children(&engine, handle.id()).await.is_empty());
}

#[tokio::test]
async fn cancelling_while_racing_ends_the_order_as_cancelled_at_the_race() {
    let (order, resources) = order(false);
    let stock = fake_stock();
    let engine = engine(resources, &stock).await;
    let handle = engine.start::<bulk_order>(order).await.unwrap();
    let id = handle.id();
    engine.cancel(id).await.unwrap();
    // A group does not hand the cancellation to the workflow: it ends at the race.
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Cancelled);
    // The deadline's timer was disarmed: passing it changes nothing, and nothing was packed.
    engine.advance_time(ANSWER_WITHIN * 2).await;
    assert_eq!(engine.status(id).await.unwrap(), WorkflowStatus::Cancelled);
    assert!(children(&engine, id).await.is_empty());
    assert_eq!(stock.call_count(), 5);
}
