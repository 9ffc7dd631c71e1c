//! Search attributes: committed with the step that set them, indexed for list filters and
//! paging, and counted by `Engine::count`.

mod engine_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine_support::{FlakyStorage, engine_for, eventually};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use weft_runtime::engine::{GroupBy, ListFilter, VirtualClock, WorkflowStatus};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    ActivityError, AttributeValue, Engine, EngineError, Signal, WorkflowContext, WorkflowError,
    activity, workflow,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
/// Moves `order_flow` and `phases` on.
pub struct Advance;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// The input of `order_flow`.
pub struct Order {
    /// Becomes the `customer` attribute.
    pub customer: String,
    /// Becomes the `cents` attribute.
    pub cents: i64,
}

const PLACED_MS: i64 = 1_893_456_000_000;

/// Sets attributes at three different steps.
#[workflow]
async fn order_flow(ctx: &mut WorkflowContext, order: Order) -> Result<(), WorkflowError> {
    ctx.set_attribute("customer", order.customer.clone());
    ctx.set_attribute("cents", order.cents);
    ctx.set_attribute("stage", "received");
    ctx.wait_for_signal::<Advance>().await;
    ctx.set_attribute("stage", "paid");
    ctx.set_attribute(
        "placed",
        UNIX_EPOCH + Duration::from_millis(PLACED_MS as u64),
    );
    ctx.wait_for_signal::<Advance>().await;
    ctx.set_attribute("stage", "shipped");
    Ok(())
}

fn attrs(pairs: &[(&str, AttributeValue)]) -> BTreeMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn by(key: &str, value: impl Into<AttributeValue>) -> ListFilter {
    ListFilter {
        attributes: vec![(key.to_string(), value.into())],
        ..ListFilter::default()
    }
}

async fn ids(engine: &Engine, filter: &ListFilter, page_size: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .list(filter, page_size, token.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= page_size);
        all.extend(page.items.into_iter().map(|item| item.id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return all,
        }
    }
}

/// Polls until workflow `id` has committed `step` steps (bounded, so a broken engine fails).
async fn wait_step(engine: &Engine, id: &str, step: u64) {
    for _ in 0..10_000 {
        match engine.describe(id).await {
            Ok(d) if d.step >= step => return,
            Ok(_) | Err(EngineError::NotFound { .. }) => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Err(e) => panic!("describe failed: {e}"),
        }
    }
    panic!("workflow {id} never reached step {step}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_set_at_each_step_are_committed_with_it_and_reindexed() {
    let engine = engine_for::<order_flow>(MemoryStorage::new()).await;
    let order = Order {
        customer: "ada".into(),
        cents: 4200,
    };
    let handle = engine.start::<order_flow>(order).await.unwrap();
    let id = handle.id().to_string();
    // `start` returns after the first step's commit: its attributes are in it.
    assert_eq!(
        handle.describe().await.unwrap().attributes,
        attrs(&[
            ("cents", 4200.into()),
            ("customer", "ada".into()),
            ("stage", "received".into()),
        ])
    );
    assert_eq!(
        ids(&engine, &by("stage", "received"), 10).await,
        vec![id.clone()]
    );

    handle.signal(Advance).await.unwrap();
    wait_step(&engine, &id, 2).await;
    let placed = UNIX_EPOCH + Duration::from_millis(PLACED_MS as u64);
    assert_eq!(
        handle.describe().await.unwrap().attributes,
        attrs(&[
            ("cents", 4200.into()),
            ("customer", "ada".into()),
            ("placed", placed.into()),
            ("stage", "paid".into()),
        ])
    );
    // The old value's index entry went with the step that replaced it.
    assert!(ids(&engine, &by("stage", "received"), 10).await.is_empty());
    assert_eq!(
        ids(&engine, &by("stage", "paid"), 10).await,
        vec![id.clone()]
    );
    assert_eq!(
        ids(&engine, &by("placed", placed), 10).await,
        vec![id.clone()]
    );
    assert_eq!(ids(&engine, &by("cents", 4200), 10).await, vec![id.clone()]);
    assert!(ids(&engine, &by("cents", 4201), 10).await.is_empty());

    handle.signal(Advance).await.unwrap();
    handle.result().await.unwrap().unwrap();
    // Attributes outlive the workflow, so finished work can be found and counted.
    let finished = ListFilter {
        status: Some(WorkflowStatus::Completed),
        ..by("stage", "shipped")
    };
    assert_eq!(ids(&engine, &finished, 10).await, vec![id.clone()]);
    let summary = engine
        .list(&finished, 10, None)
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(summary.attributes["stage"], AttributeValue::from("shipped"));
}

static GATE: Semaphore = Semaphore::const_new(0);

#[activity]
async fn gated(_unit: ()) -> Result<(), ActivityError> {
    GATE.acquire()
        .await
        .expect("the gate is never closed")
        .forget();
    Ok(())
}

#[workflow]
async fn phases(ctx: &mut WorkflowContext, _unit: ()) -> Result<(), WorkflowError> {
    ctx.set_attribute("phase", "before");
    ctx.run(gated, ()).await?;
    ctx.set_attribute("phase", "after");
    ctx.wait_for_signal::<Advance>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_set_in_a_step_that_did_not_commit_is_not_visible() {
    let memory = MemoryStorage::new();
    let storage = FlakyStorage::new(memory.clone());
    let engine = engine_for::<phases>(storage.clone()).await;
    let handle = engine.start::<phases>(()).await.unwrap();
    let id = handle.id().to_string();
    // The step after the activity sets `phase = after`; its commit fails, and the writer holds
    // it for a retry while the fault lasts.
    storage.fail(true);
    GATE.add_permits(1);
    eventually(|| engine.transitions_awaiting_storage() == 1).await;
    assert!(ids(&engine, &by("phase", "after"), 10).await.is_empty());
    assert_eq!(
        ids(&engine, &by("phase", "before"), 10).await,
        vec![id.clone()]
    );
    assert_eq!(
        engine.describe(&id).await.unwrap().attributes,
        attrs(&[("phase", "before".into())])
    );

    // Once storage heals, the same engine commits the step and its attribute together.
    storage.fail(false);
    wait_step(&engine, &id, 2).await;
    assert_eq!(
        ids(&engine, &by("phase", "after"), 10).await,
        vec![id.clone()]
    );
    assert!(ids(&engine, &by("phase", "before"), 10).await.is_empty());
}

#[workflow]
async fn tagged(ctx: &mut WorkflowContext, tags: (String, i64, bool)) -> Result<(), WorkflowError> {
    let (region, tier, finish) = tags;
    ctx.set_attribute("region", region);
    ctx.set_attribute("tier", tier);
    if !finish {
        ctx.wait_for_signal::<Advance>().await;
    }
    Ok(())
}

/// A started `tagged` workflow: id, region, tier, whether it finished, when it was created.
type Row = (String, &'static str, i64, bool, SystemTime);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_attributes_status_type_prefix_and_time_and_pages_through() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Arc::new(VirtualClock::new(t0));
    let engine = Engine::builder(MemoryStorage::new())
        .register::<tagged>()
        .register::<order_flow>()
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    // (id, region, tier, finishes, created at t0 + i minutes)
    let mut expected: Vec<Row> = Vec::new();
    for i in 0..9u64 {
        let id = if i % 3 == 0 {
            format!("b-{i}")
        } else {
            format!("a-{i}")
        };
        let region = if i % 2 == 0 { "eu" } else { "us" };
        let tier = (i % 3) as i64;
        let finish = i % 4 == 0;
        let created = t0 + Duration::from_secs(60 * i);
        clock.set(created);
        engine
            .start_with::<tagged>(
                (region.to_string(), tier, finish),
                weft_runtime::StartOptions {
                    id: Some(id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        expected.push((id, region, tier, finish, created));
    }
    engine
        .start::<order_flow>(Order {
            customer: "ada".into(),
            cents: 1,
        })
        .await
        .unwrap();
    for (id, _, _, finish, _) in &expected {
        if *finish {
            let done = engine.handle::<tagged>(id);
            done.result().await.unwrap().unwrap();
        }
    }
    let want = |pick: &dyn Fn(&Row) -> bool| -> Vec<String> {
        let mut ids: Vec<String> = expected
            .iter()
            .filter(|e| pick(e))
            .map(|e| e.0.clone())
            .collect();
        ids.sort();
        ids
    };

    for page_size in [1, 2, 4, 100] {
        assert_eq!(
            ids(&engine, &by("region", "eu"), page_size).await,
            want(&|e| e.1 == "eu")
        );
        let two = ListFilter {
            attributes: vec![("region".into(), "us".into()), ("tier".into(), 1.into())],
            ..ListFilter::default()
        };
        assert_eq!(
            ids(&engine, &two, page_size).await,
            want(&|e| e.1 == "us" && e.2 == 1)
        );
        let prefix = ListFilter {
            id_prefix: Some("a-".into()),
            status: Some(WorkflowStatus::Waiting),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(&engine, &prefix, page_size).await,
            want(&|e| e.0.starts_with("a-") && !e.3)
        );
        let prefixed_attr = ListFilter {
            id_prefix: Some("b-".into()),
            ..by("region", "eu")
        };
        assert_eq!(
            ids(&engine, &prefixed_attr, page_size).await,
            want(&|e| e.0.starts_with("b-") && e.1 == "eu")
        );
        let window = ListFilter {
            workflow_type: Some("tagged".into()),
            created_after: Some(t0 + Duration::from_secs(120)),
            created_before: Some(t0 + Duration::from_secs(360)),
            ..ListFilter::default()
        };
        assert_eq!(
            ids(&engine, &window, page_size).await,
            want(&|e| e.4 >= t0 + Duration::from_secs(120) && e.4 < t0 + Duration::from_secs(360))
        );
    }
    // A token from outside the prefix range starts the range at its beginning or ends it.
    let prefix = ListFilter {
        id_prefix: Some("b-".into()),
        ..ListFilter::default()
    };
    let page = engine.list(&prefix, 100, Some("a-zzz")).await.unwrap();
    assert_eq!(page.items.len(), want(&|e| e.0.starts_with("b-")).len());
    assert!(
        engine
            .list(&prefix, 100, Some("c"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let count = |pick: &dyn Fn(&Row) -> bool| expected.iter().filter(|e| pick(e)).count() as u64;
    assert_eq!(
        engine
            .count(&ListFilter::default(), GroupBy::Status)
            .await
            .unwrap(),
        vec![
            ("Completed".to_string(), count(&|e| e.3)),
            ("Waiting".to_string(), count(&|e| !e.3) + 1),
        ]
    );
    assert_eq!(
        engine
            .count(&ListFilter::default(), GroupBy::Type)
            .await
            .unwrap(),
        vec![
            ("order_flow".to_string(), 1),
            ("tagged".to_string(), expected.len() as u64),
        ]
    );
    assert_eq!(
        engine
            .count(&ListFilter::default(), GroupBy::Attribute("region".into()))
            .await
            .unwrap(),
        vec![
            ("eu".to_string(), count(&|e| e.1 == "eu")),
            ("us".to_string(), count(&|e| e.1 == "us")),
        ]
    );
    assert_eq!(
        engine
            .count(&by("region", "eu"), GroupBy::Attribute("tier".into()))
            .await
            .unwrap(),
        (0..3)
            .map(|t| (t.to_string(), count(&|e| e.1 == "eu" && e.2 == t)))
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>()
    );
}
