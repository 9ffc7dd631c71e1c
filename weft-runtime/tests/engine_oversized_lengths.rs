//! Issue 12, item 1, end to end: stored records whose length prefixes claim terabytes. Before
//! decoding was bounded, each of these aborted the process (in `build()`, in the writer thread,
//! or in the caller of `describe`); now each is a typed error for that call or that workflow,
//! and the engine keeps serving every other.

use std::time::Duration;

use weft_runtime::engine::record::{self, RecordStatus, WorkflowRecord};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    Engine, StartOptions, WorkflowContext, WorkflowError, WorkflowStatus, workflow,
};

/// Returns its input at once.
#[workflow]
async fn echo(_ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(n)
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<echo>()
        .build()
        .await
        .unwrap()
}

/// A fresh workflow still starts and finishes: the writer and the runners are alive.
async fn still_serves(engine: &Engine, n: u64) {
    let handle = engine.start::<echo>(n).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), handle.result())
        .await
        .expect("the engine answers");
    assert_eq!(result.unwrap().unwrap(), n);
}

/// `bytes` with its first length prefix (one byte, right after the format tag) replaced by a
/// claim of 2^40 bytes.
fn with_terabyte_length(bytes: &[u8]) -> Vec<u8> {
    assert!(bytes[1] < 251, "a one-byte length");
    let claim = (1u64 << 40).to_le_bytes();
    [&[bytes[0], 0xfd], claim.as_slice(), &bytes[2..]].concat()
}

fn a_record(status: RecordStatus) -> WorkflowRecord {
    WorkflowRecord {
        workflow_type: "echo".into(),
        version: 1,
        fingerprint: 0,
        status,
        step: 1,
        state: None,
        pending: None,
        created_ms: 1,
        updated_ms: 1,
        outcome: None,
        idempotency_key: None,
        last_resume: None,
        signals_consumed: 0,
        lifecycle: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_idempotency_record_claims_a_terabyte_gets_an_error() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    // The 10 bytes of the issue, decoded in the writer thread.
    let idem = [0x01, 0xfd, 0, 0, 0, 0, 0, 0x01, 0, 0];
    storage.put(&record::idempotency_key("k"), &idem).unwrap();
    let options = StartOptions {
        idempotency_key: Some("k".into()),
        ..StartOptions::default()
    };
    let err = engine.start_with::<echo>(1, options).await.unwrap_err();
    assert_eq!(err.code(), "codec.decode", "{err}");
    still_serves(&engine, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_workflow_record_with_a_terabyte_type_name_does_not_stop_build() {
    let storage = MemoryStorage::new();
    {
        let engine = build(&storage).await;
        still_serves(&engine, 1).await;
        engine.shutdown().await;
    }
    let bad =
        with_terabyte_length(&record::encode_record(&a_record(RecordStatus::Running)).unwrap());
    storage
        .put(&record::workflow_key(record::Partition::ZERO, "bad"), &bad)
        .unwrap();
    storage
        .put(&record::live_key(record::Partition::ZERO, "bad"), &[])
        .unwrap();
    let finished =
        with_terabyte_length(&record::encode_record(&a_record(RecordStatus::Completed)).unwrap());
    storage
        .put(
            &record::workflow_key(record::Partition::ZERO, "done"),
            &finished,
        )
        .unwrap();

    let engine = build(&storage).await;
    // `describe` shows each parked as corrupt, kept as stored; it does not panic.
    for id in ["bad", "done"] {
        let described = engine.describe(id).await.unwrap();
        assert_eq!(described.status, WorkflowStatus::Parked);
        assert_eq!(described.park_reason.unwrap().code, "record.corrupt");
    }
    // Starting with a taken id reads the finished record in the writer: still taken.
    let options = StartOptions {
        id: Some("done".into()),
        ..StartOptions::default()
    };
    assert!(engine.start_with::<echo>(3, options).await.is_err());
    still_serves(&engine, 4).await;
}
