//! Versioning: several versions of one workflow side by side, the version-mismatch park and its
//! repair, and checked migrations applied (and committed) before a migrated workflow resumes.

#![allow(non_camel_case_types)]

mod engine_support;

use engine_support::*;
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use weft_runtime::engine::{ListFilter, WorkflowStatus, record};
use weft_runtime::storage::{MemoryStorage, Storage};

use weft_runtime::storage::{Batch, Condition, Entry, StorageError};
use weft_runtime::{
    ActivityError, Engine, EngineError, MigrationError, Signal, StartOptions, Workflow,
    WorkflowContext, WorkflowError, activity, workflow,
};

/// What a checkout waits for.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Approve {
    by: String,
}

/// Version 1: waits for an approval.
#[workflow(name = "checkout", version = 1)]
async fn checkout_v1(ctx: &mut WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let approval = ctx.wait_for_signal::<Approve>().await;
    Ok(format!("v1: {order} approved by {}", approval.by))
}

/// Version 2 also carries a note across the wait: its state enum has another shape.
#[workflow(name = "checkout", version = 2)]
async fn checkout_v2(ctx: &mut WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let note: String = format!("{} items", order.len());
    let approval = ctx.wait_for_signal::<Approve>().await;
    Ok(format!("v2: {order} ({note}) approved by {}", approval.by))
}

/// Version 3 keeps version 2's await and counts approvals it waited for.
#[workflow(name = "checkout", version = 3)]
async fn checkout_v3(ctx: &mut WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let note: String = format!("{} items", order.len());
    let waited: u32 = 1;
    let approval = ctx.wait_for_signal::<Approve>().await;
    Ok(format!(
        "v3: {order} ({note}, {waited} wait) approved by {}",
        approval.by
    ))
}

/// The checked migration from version 1 to version 2: one arm per old variant, no catch-all, so
/// a variant added to version 1 would be a compile error here.
fn v1_to_v2(old: CheckoutV1State) -> Result<CheckoutV2State, MigrationError> {
    match old {
        CheckoutV1State::Start { order } => Ok(CheckoutV2State::Start { order }),
        CheckoutV1State::AwaitSignalApprove { order } => Ok(CheckoutV2State::AwaitSignalApprove {
            order,
            note: "migrated".into(),
        }),
    }
}

fn v2_to_v3(old: CheckoutV2State) -> Result<CheckoutV3State, MigrationError> {
    match old {
        CheckoutV2State::Start { order } => Ok(CheckoutV3State::Start { order }),
        CheckoutV2State::AwaitSignalApprove { order, note } => {
            Ok(CheckoutV3State::AwaitSignalApprove {
                order,
                note,
                waited: 2,
            })
        }
    }
}

/// Starts a version 1 checkout on `storage` and leaves it waiting for its approval.
async fn parked_v1(storage: &MemoryStorage, order: &str) -> String {
    let engine = engine_for::<checkout_v1>(storage.clone()).await;
    let id = engine
        .start::<checkout_v1>(order.into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&engine, &id, "AwaitSignalApprove").await;
    engine.shutdown().await;
    id
}

fn stored(storage: &MemoryStorage, id: &str) -> record::WorkflowRecord {
    record::decode_record(
        &storage
            .get(&record::workflow_key(record::Partition::ZERO, id))
            .unwrap()
            .unwrap(),
    )
    .unwrap()
}

fn approve(by: &str) -> Approve {
    Approve { by: by.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_side_by_side_new_starts_use_the_latest_and_old_instances_finish_on_theirs() {
    let storage = MemoryStorage::new();
    let old = parked_v1(&storage, "tea").await;

    let engine = Engine::builder(storage.clone())
        .register::<checkout_v1>()
        .register::<checkout_v2>()
        .build()
        .await
        .unwrap();
    let err = engine
        .start::<checkout_v1>("cups".into())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::NotLatest {
            workflow: "checkout".into(),
            version: 1,
            latest: 2
        }
    );
    assert_eq!(err.code(), "engine.not_latest");
    let new = engine.start::<checkout_v2>("cups".into()).await.unwrap();
    let pinned = engine
        .start_pinned::<checkout_v1>("pot".into(), StartOptions::default())
        .await
        .unwrap();

    engine.signal(&old, approve("ann")).await.unwrap();
    new.signal(approve("bob")).await.unwrap();
    pinned.signal(approve("cy")).await.unwrap();
    assert_eq!(
        engine.result::<checkout_v1>(&old).await.unwrap().unwrap(),
        "v1: tea approved by ann"
    );
    assert_eq!(
        new.result().await.unwrap().unwrap(),
        "v2: cups (4 items) approved by bob"
    );
    assert_eq!(
        pinned.result().await.unwrap().unwrap(),
        "v1: pot approved by cy"
    );
    assert_eq!(engine.describe(&old).await.unwrap().version, 1);
    assert_eq!(new.describe().await.unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_no_registered_code_matches_is_parked_and_resumes_once_it_is_registered() {
    let storage = MemoryStorage::new();
    let id = parked_v1(&storage, "tea").await;
    let before = storage
        .get(&record::workflow_key(record::Partition::ZERO, &id))
        .unwrap();

    let v2_only = engine_for::<checkout_v2>(storage.clone()).await;
    let d = v2_only.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    let reason = d.park_reason.unwrap();
    assert_eq!(reason.code, "workflow.version_mismatch");
    assert!(reason.message.contains("version 2"), "{}", reason.message);
    let parked = v2_only
        .list(
            &ListFilter {
                status: Some(WorkflowStatus::Parked),
                workflow_type: Some("checkout".into()),
                ..ListFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(parked.items.len(), 1);
    assert_eq!(
        parked.items[0].park_reason.as_ref().unwrap().code,
        "workflow.version_mismatch"
    );
    // A signal sent meanwhile is stored, not lost; the state is not touched.
    v2_only.signal(&id, approve("ann")).await.unwrap();
    match v2_only.result::<checkout_v1>(&id).await {
        Err(EngineError::Parked { code, .. }) => assert_eq!(code, "workflow.version_mismatch"),
        other => panic!("expected parked, got {other:?}"),
    }
    v2_only.shutdown().await;
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, &id))
            .unwrap(),
        before
    );

    let both = Engine::builder(storage.clone())
        .register::<checkout_v1>()
        .register::<checkout_v2>()
        .build()
        .await
        .unwrap();
    assert_eq!(
        both.result::<checkout_v1>(&id).await.unwrap().unwrap(),
        "v1: tea approved by ann"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_workflow_is_upgraded_through_a_migration_committed_before_it_resumes() {
    let storage = MemoryStorage::new();
    let id = parked_v1(&storage, "tea").await;
    let finished = {
        let engine = engine_for::<checkout_v1>(storage.clone()).await;
        let h = engine.start::<checkout_v1>("done".into()).await.unwrap();
        h.signal(approve("zed")).await.unwrap();
        h.result().await.unwrap().unwrap();
        let id = h.id().to_string();
        engine.shutdown().await;
        id
    };
    let before = stored(&storage, &id);
    let finished_before = storage
        .get(&record::workflow_key(record::Partition::ZERO, &finished))
        .unwrap();

    // Built with recovery off, so nothing can resume: the migrated record is what build wrote.
    let engine = Engine::builder(storage.clone())
        .register::<checkout_v2>()
        .migrate::<checkout_v1, checkout_v2>(v1_to_v2)
        .recover(false)
        .build()
        .await
        .unwrap();
    let after = stored(&storage, &id);
    assert_eq!(after.workflow_type, "checkout");
    assert_eq!(after.version, 2);
    assert_eq!(after.fingerprint, checkout_v2::FINGERPRINT);
    assert_eq!(after.step, before.step, "migrating is not a step");
    assert_eq!(after.status, before.status);
    assert_eq!(after.pending, before.pending, "the pending wait is kept");
    match engine.state::<checkout_v2>(&id).await.unwrap() {
        CheckoutV2State::AwaitSignalApprove { order, note } => {
            assert_eq!((order.as_str(), note.as_str()), ("tea", "migrated"));
        }
        other => panic!("unexpected state {other:?}"),
    }
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, &finished))
            .unwrap(),
        finished_before,
        "finished workflows keep the record their version wrote"
    );
    engine.signal(&id, approve("ann")).await.unwrap();
    assert_eq!(
        engine.result::<checkout_v2>(&id).await.unwrap().unwrap(),
        "v2: tea (migrated) approved by ann"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_chain_to_the_registered_version() {
    let storage = MemoryStorage::new();
    let id = parked_v1(&storage, "tea").await;
    let engine = Engine::builder(storage.clone())
        .register::<checkout_v3>()
        .migrate::<checkout_v1, checkout_v2>(v1_to_v2)
        .migrate::<checkout_v2, checkout_v3>(v2_to_v3)
        .build()
        .await
        .unwrap();
    assert_eq!(stored(&storage, &id).version, 3);
    engine.signal(&id, approve("ann")).await.unwrap();
    assert_eq!(
        engine.result::<checkout_v3>(&id).await.unwrap().unwrap(),
        "v3: tea (migrated, 2 wait) approved by ann"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_parks_the_workflow_until_a_fixed_one_is_deployed() {
    let storage = MemoryStorage::new();
    let id = parked_v1(&storage, "tea").await;
    let before = storage
        .get(&record::workflow_key(record::Partition::ZERO, &id))
        .unwrap();

    let engine = Engine::builder(storage.clone())
        .register::<checkout_v2>()
        .migrate::<checkout_v1, checkout_v2>(|old: CheckoutV1State| match old {
            CheckoutV1State::AwaitSignalApprove { order } if order == "tea" => {
                Err(MigrationError::new("tea orders need a manual check"))
            }
            other => v1_to_v2(other),
        })
        .build()
        .await
        .unwrap();
    let d = engine.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(
        d.state_name,
        Some("AwaitSignalApprove"),
        "the unmigrated state is shown"
    );
    assert_eq!(d.state.unwrap()["AwaitSignalApprove"]["order"], "tea");
    let reason = d.park_reason.unwrap();
    assert_eq!(reason.code, "migration.failed");
    assert!(
        reason.message.contains("tea orders need a manual check"),
        "{}",
        reason.message
    );
    let parked = engine
        .list(
            &ListFilter {
                status: Some(WorkflowStatus::Parked),
                workflow_type: None,
                ..ListFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(parked.items[0].id, id);
    engine.signal(&id, approve("ann")).await.unwrap();
    assert!(matches!(
        engine.result::<checkout_v2>(&id).await,
        Err(EngineError::Parked { code, .. }) if code == "migration.failed"
    ));
    engine.shutdown().await;
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, &id))
            .unwrap(),
        before,
        "nothing of the record is lost or rewritten"
    );

    let fixed = Engine::builder(storage.clone())
        .register::<checkout_v2>()
        .migrate::<checkout_v1, checkout_v2>(v1_to_v2)
        .build()
        .await
        .unwrap();
    assert_eq!(
        fixed.result::<checkout_v2>(&id).await.unwrap().unwrap(),
        "v2: tea (migrated) approved by ann",
        "the signal sent while it was parked is delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_migrations_fail_the_build() {
    let cases: [(&str, weft_runtime::EngineBuilder); 3] = [
        (
            "target not registered",
            Engine::builder(MemoryStorage::new())
                .register::<checkout_v3>()
                .migrate::<checkout_v1, checkout_v2>(v1_to_v2),
        ),
        (
            "source registered",
            Engine::builder(MemoryStorage::new())
                .register::<checkout_v1>()
                .register::<checkout_v2>()
                .migrate::<checkout_v1, checkout_v2>(v1_to_v2),
        ),
        (
            "backwards",
            Engine::builder(MemoryStorage::new())
                .register::<checkout_v1>()
                .migrate::<checkout_v2, checkout_v1>(|_| Err(MigrationError::new("never"))),
        ),
    ];
    for (case, builder) in cases {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.code(), "engine.invalid_migration", "{case}: {err}");
    }
}

/// Prices an order (its test double never answers in the first deployment).
#[activity]
async fn price(order: String) -> Result<u64, ActivityError> {
    Ok(order.len() as u64 * 100)
}

/// Version 1 of an invoice: waits on the `price` activity.
#[workflow(name = "invoice", version = 1)]
async fn invoice_v1(ctx: &mut WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let cents = ctx.run(price, order.clone()).await?;
    Ok(format!("v1: {order} {cents}"))
}

/// Version 2 carries a currency across the same activity call.
#[workflow(name = "invoice", version = 2)]
async fn invoice_v2(ctx: &mut WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let currency: String = "EUR".to_string();
    let cents = ctx.run(price, order.clone()).await?;
    Ok(format!("v2: {order} {cents} {currency}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_waiting_on_an_activity_is_migrated_and_resumed_by_the_same_call() {
    let storage = MemoryStorage::new();
    let hanging = FnActivity::new("price", |_ctx, _input| std::future::pending());
    let first = Engine::builder(storage.clone())
        .register::<invoice_v1>()
        .activity_override("price", hanging)
        .build()
        .await
        .unwrap();
    let id = first
        .start::<invoice_v1>("tea".into())
        .await
        .unwrap()
        .id()
        .to_string();
    wait_state(&first, &id, "AwaitPrice").await;
    first.shutdown().await;
    let before = stored(&storage, &id);

    let second = Engine::builder(storage.clone())
        .register::<invoice_v2>()
        .migrate::<invoice_v1, invoice_v2>(|old| {
            Ok(match old {
                InvoiceV1State::Start { order } => InvoiceV2State::Start { order },
                InvoiceV1State::AwaitPrice { order } => InvoiceV2State::AwaitPrice {
                    order,
                    currency: "USD".into(),
                },
            })
        })
        .build()
        .await
        .unwrap();
    assert_eq!(
        second.result::<invoice_v2>(&id).await.unwrap().unwrap(),
        "v2: tea 300 USD",
        "the stored call ran again and its result resumed the migrated state"
    );
    let after = second.describe(&id).await.unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.step, before.step + 1, "one step after the migration");
}

/// Fails the `n`-th write (counting from 1), then works again.
#[derive(Clone)]
struct FailNth {
    inner: MemoryStorage,
    n: usize,
    writes: Arc<AtomicUsize>,
}

impl Storage for FailNth {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(start, end, limit)
    }
    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            return Err(StorageError::backend("injected write failure"));
        }
        self.inner.apply_if(conditions, batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_commit_fails_the_build_and_changes_nothing() {
    let storage = MemoryStorage::new();
    let id = parked_v1(&storage, "tea").await;
    let before = storage
        .get(&record::workflow_key(record::Partition::ZERO, &id))
        .unwrap();
    // Write 1 takes ownership, write 2 is the migration's batch.
    let failing = FailNth {
        inner: storage.clone(),
        n: 2,
        writes: Arc::new(AtomicUsize::new(0)),
    };
    let err = Engine::builder(failing)
        .register::<checkout_v2>()
        .migrate::<checkout_v1, checkout_v2>(v1_to_v2)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Storage(_)), "{err:?}");
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, &id))
            .unwrap(),
        before
    );

    let engine = Engine::builder(storage.clone())
        .register::<checkout_v2>()
        .migrate::<checkout_v1, checkout_v2>(v1_to_v2)
        .build()
        .await
        .unwrap();
    engine.signal(&id, approve("ann")).await.unwrap();
    assert_eq!(
        engine.result::<checkout_v2>(&id).await.unwrap().unwrap(),
        "v2: tea (migrated) approved by ann"
    );
}
