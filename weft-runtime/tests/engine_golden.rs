//! Golden records for the engine's stored formats (`weft_runtime::engine::record`).
//!
//! Every `tests/golden/engine_*.bin` file holds the bytes the engine wrote for one record (format
//! tag first) or one key when the file was committed. Each test checks that those bytes still
//! decode to that record, and that encoding it today gives the same bytes.
//!
//! The workflow records of format `0x01` (`engine_workflow_*.bin`, from before the lifecycle
//! moved into the record) are kept as old-format goldens: they must still decode, and
//! `record::encode_workflow_v1` must still write them; `engine_workflow_v2_*.bin` pin format
//! `0x02`. `tests/store_upgrade.rs` builds a store of format 2 from them and upgrades it.
//!
//! Per-workflow keys carry their partition since store format 5 (`wf/<p><id>`, ...): the
//! `*_key.bin` files of those keys written before it pin the format-4 layout (what
//! `engine::key_upgrade` reads: the same key without the partition), and `*_key_v5.bin` pin
//! format 5, with partition 0x0102 so that the partition's byte order is pinned too.
//!
//! A missing or different file fails; normal runs never write. After adding a case, or changing
//! a format on purpose (which needs a new format tag and a migration), regenerate with
//!
//! ```text
//! WEFT_BLESS=1 cargo test -p weft-runtime --test engine_golden
//! ```

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use weft_runtime::engine::record::Partition;
use weft_runtime::engine::record::{
    self, ActivityResultRecord, AttemptRecord, CancelRecord, DeadlineRecord, IdempotencyRecord,
    Lifecycle, Outcome, PendingCommand, Record, RecordStatus, ResumeKind, SignalRecord,
    WorkflowRecord,
};
use weft_runtime::{ActivityOptions, RetryPolicy};

/// The partition the format-5 key goldens are written with.
const P: Partition = Partition(0x0102);

/// `key` (of partition 0) as format 4 laid it out: without the partition.
fn format_4(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let (p, rest) = record::split_partition(prefix, key).unwrap();
    assert_eq!(p, Partition::ZERO);
    [prefix, rest].concat()
}

const BLESS_VAR: &str = "WEFT_BLESS";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("engine_{name}.bin"))
}

fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1")
}

/// Checks (or, when blessing, writes) `bytes` as golden file `name`; returns the stored bytes.
fn golden_bytes(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = golden_path(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{name}: cannot read golden file {}: {e}; for a new case, run with {BLESS_VAR}=1 and commit the file",
            path.display()
        )
    });
    assert_eq!(
        bytes,
        stored.as_slice(),
        "{name}: now encodes to different bytes than {}; existing records need a new format tag",
        path.display()
    );
    stored
}

fn golden<T: Record + PartialEq + Debug>(name: &str, value: &T) {
    let encoded = record::encode_record(value).unwrap();
    assert_eq!(encoded[0], T::FORMAT, "{name}: format tag first");
    let stored = golden_bytes(name, &encoded);
    let decoded: T = record::decode_record(&stored)
        .unwrap_or_else(|e| panic!("{name}: the committed bytes no longer decode: {e}"));
    assert_eq!(&decoded, value, "{name}: decodes to a different record");
}

/// A workflow record of format `0x01`: the committed bytes decode to `value` (whose lifecycle,
/// kept in side keys then, is empty), and the old encoder still writes them.
fn golden_v1(name: &str, value: &WorkflowRecord) {
    assert!(
        value.lifecycle.is_empty(),
        "{name}: format 0x01 has no lifecycle"
    );
    let encoded = record::encode_workflow_v1(value).unwrap();
    assert_eq!(encoded[0], record::FORMAT_V1, "{name}: format tag first");
    let stored = golden_bytes(name, &encoded);
    let decoded: WorkflowRecord = record::decode_record(&stored)
        .unwrap_or_else(|e| panic!("{name}: the committed bytes no longer decode: {e}"));
    assert_eq!(&decoded, value, "{name}: decodes to a different record");
}

fn base() -> WorkflowRecord {
    WorkflowRecord {
        workflow_type: "checkout".into(),
        version: 2,
        fingerprint: 0x0123_4567_89ab_cdef,
        status: RecordStatus::Running,
        step: 3,
        state: Some(vec![1, 2, 3, 250, 255]),
        pending: None,
        created_ms: 1_893_456_000_000,
        updated_ms: 1_893_456_001_234,
        outcome: None,
        idempotency_key: Some("order-42".into()),
        last_resume: Some(ResumeKind::Activity),
        signals_consumed: 1,
        lifecycle: Lifecycle::default(),
    }
}

#[test]
fn workflow_record_running_an_activity() {
    let record = WorkflowRecord {
        pending: Some(PendingCommand::Activity {
            name: "charge_card".into(),
            input: vec![9, 8, 7],
            options: ActivityOptions {
                retry: RetryPolicy {
                    max_attempts: 4,
                    initial_backoff: Duration::from_millis(250),
                    backoff_percent: 150,
                    max_backoff: Duration::from_secs(30),
                },
                attempt_timeout: Some(Duration::from_secs(10)),
            },
        }),
        ..base()
    };
    golden_v1("workflow_activity", &record);
}

#[test]
fn workflow_record_waiting_on_a_timer() {
    let record = WorkflowRecord {
        status: RecordStatus::Waiting,
        pending: Some(PendingCommand::Timer {
            deadline_ms: 1_893_456_060_000,
        }),
        last_resume: Some(ResumeKind::Start),
        idempotency_key: None,
        ..base()
    };
    golden_v1("workflow_timer", &record);
}

#[test]
fn workflow_record_waiting_on_a_signal() {
    let record = WorkflowRecord {
        status: RecordStatus::Waiting,
        pending: Some(PendingCommand::Signal {
            name: "approval".into(),
        }),
        last_resume: Some(ResumeKind::Timer),
        ..base()
    };
    golden_v1("workflow_signal", &record);
}

#[test]
fn workflow_records_that_finished() {
    let done = |status, outcome, resume| WorkflowRecord {
        status,
        state: None,
        pending: None,
        outcome: Some(outcome),
        last_resume: Some(resume),
        ..base()
    };
    golden_v1(
        "workflow_completed",
        &done(
            RecordStatus::Completed,
            Outcome::Output(vec![4, 5]),
            ResumeKind::Signal,
        ),
    );
    golden_v1(
        "workflow_failed",
        &done(
            RecordStatus::Failed,
            Outcome::Error {
                payload: vec![2, 0],
                message: "card declined".into(),
            },
            ResumeKind::Activity,
        ),
    );
    golden_v1(
        "workflow_cancelled",
        &done(
            RecordStatus::Cancelled,
            Outcome::Cancelled,
            ResumeKind::Cancelled,
        ),
    );
    // Appended variants: a timed-out record, and one timed out without an error of its own.
    golden_v1(
        "workflow_timed_out",
        &done(
            RecordStatus::TimedOut,
            Outcome::TimedOut,
            ResumeKind::TimedOut,
        ),
    );
    golden_v1(
        "workflow_timed_out_with_error",
        &done(
            RecordStatus::TimedOut,
            Outcome::Error {
                payload: vec![3],
                message: "workflow timed out".into(),
            },
            ResumeKind::Activity,
        ),
    );
}

#[test]
fn workflow_record_parked() {
    let record = WorkflowRecord {
        status: RecordStatus::Parked {
            code: "step.unexpected_resume".into(),
            message: "state `AwaitCharge` waits for a activity result but was resumed with a timer"
                .into(),
        },
        pending: Some(PendingCommand::Signal {
            name: "approval".into(),
        }),
        ..base()
    };
    golden_v1("workflow_parked", &record);
}

/// Format `0x02`: the record with its lifecycle section (version 1, the enum's variant 0).
#[test]
fn workflow_records_of_format_2() {
    golden("workflow_v2_no_lifecycle", &base());
    let full = WorkflowRecord {
        status: RecordStatus::Waiting,
        pending: Some(PendingCommand::Timer {
            deadline_ms: 1_893_456_060_000,
        }),
        lifecycle: Lifecycle {
            cancel_requested_ms: Some(1_893_456_003_000),
            cancelled: true,
            deadline_ms: Some(1_893_459_600_000),
            timed_out: true,
            parent: Some("order-42/3".into()),
            trace_context: Some(
                b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
            ),
        },
        ..base()
    };
    golden("workflow_v2_lifecycle", &full);
    let child = WorkflowRecord {
        status: RecordStatus::Completed,
        state: None,
        outcome: Some(Outcome::Output(vec![4, 5])),
        lifecycle: Lifecycle {
            parent: Some("order-42".into()),
            ..Lifecycle::default()
        },
        ..base()
    };
    golden("workflow_v2_finished_child", &child);
    // The section is the record's tail: `[0x00 variant][None][false][None][false][None][None]`.
    let empty = record::encode_record(&base()).unwrap();
    assert!(empty.ends_with(&[0, 0, 0, 0, 0, 0, 0]), "{empty:?}");
    let unknown_section = [&empty[..empty.len() - 7], &[1, 0, 0, 0, 0, 0, 0]].concat();
    assert!(record::decode_record::<WorkflowRecord>(&unknown_section).is_err());
}

#[test]
fn kept_activity_results_and_their_key() {
    golden(
        "activity_result_ok",
        &ActivityResultRecord {
            step: 3,
            result: Ok(vec![7, 0, 255]),
        },
    );
    golden(
        "activity_result_error",
        &ActivityResultRecord {
            step: u64::MAX,
            result: Err(weft_runtime::ActivityError::NonRetryable {
                message: "card declined".into(),
            }),
        },
    );
    golden_bytes(
        "activity_result_key",
        &format_4(
            record::ACTIVITY_RESULT_PREFIX,
            &record::activity_result_key(Partition::ZERO, "order-42"),
        ),
    );
    golden_bytes(
        "activity_result_key_v5",
        &record::activity_result_key(P, "order-42"),
    );
}

#[test]
fn signal_idempotency_and_cancel_records() {
    golden(
        "signal",
        &SignalRecord {
            name: "approval".into(),
            payload: vec![3, 98, 111, 98],
            sent_ms: 1_893_456_002_000,
        },
    );
    golden(
        "idempotency",
        &IdempotencyRecord {
            workflow_id: "checkout-1-7".into(),
        },
    );
    golden(
        "cancel",
        &CancelRecord {
            requested_ms: 1_893_456_003_000,
        },
    );
    golden(
        "deadline",
        &DeadlineRecord {
            deadline_ms: 1_893_459_600_000,
        },
    );
}

#[test]
fn epoch_and_index_keys() {
    let stored = golden_bytes("epoch", &record::encode_epoch(0x0102_0304));
    assert_eq!(record::decode_epoch(&stored).unwrap(), 0x0102_0304);
    golden_bytes(
        "timer_key",
        &format_4(
            record::TIMER_PREFIX,
            &record::timer_key(Partition::ZERO, 1_893_456_060_000, "wf-1"),
        ),
    );
    let timer = golden_bytes(
        "timer_key_v5",
        &record::timer_key(P, 1_893_456_060_000, "wf-1"),
    );
    assert_eq!(
        record::parse_timer_key(&timer),
        Some(record::TimerEntry {
            partition: P,
            deadline_ms: 1_893_456_060_000,
            id: "wf-1".to_string()
        })
    );
    golden_bytes(
        "signal_key",
        &format_4(
            record::SIGNAL_PREFIX,
            &record::signal_key(Partition::ZERO, "wf-1", 3, 17),
        ),
    );
    golden_bytes("signal_key_v5", &record::signal_key(P, "wf-1", 3, 17));
    assert_eq!(record::workflow_key(P, "wf-1"), b"wf/\x01\x02wf-1");
    assert_eq!(
        record::partition_prefix(record::WORKFLOW_PREFIX, P),
        b"wf/\x01\x02"
    );
    assert_eq!(record::idempotency_key("k"), b"idem/k");
    assert_eq!(record::cancel_key("wf-1"), b"cancel/wf-1");
    assert_eq!(record::deadline_key("wf-1"), b"deadline/wf-1");
    assert_eq!(record::timedout_key("wf-1"), b"timedout/wf-1");
    assert_eq!(record::EPOCH_KEY, b"meta/epoch");
}

/// `attempt/<id>\0[<branch BE>]` -> `[0x01][AttemptRecord]`: added after the first release.
/// Stores without it read as attempt 1 (see `tests/engine_attempts.rs`).
#[test]
fn attempt_record_and_keys() {
    golden(
        "attempt",
        &AttemptRecord {
            step: 3,
            attempt: 2,
        },
    );
    assert_eq!(
        record::attempt_key(P, "wf-1", None),
        b"attempt/\x01\x02wf-1\0"
    );
    golden_bytes(
        "attempt_branch_key",
        &format_4(
            record::ATTEMPT_PREFIX,
            &record::attempt_key(Partition::ZERO, "wf-1", Some(258)),
        ),
    );
    golden_bytes(
        "attempt_branch_key_v5",
        &record::attempt_key(P, "wf-1", Some(258)),
    );
    assert!(
        record::attempt_key(P, "wf-1", Some(0)).starts_with(&record::attempt_key(P, "wf-1", None))
    );
}

#[test]
fn signal_id_record_and_key() {
    golden(
        "signal_id",
        &record::SignalIdRecord {
            accepted_ms: 1_893_456_004_000,
        },
    );
    golden_bytes(
        "signal_id_key",
        &format_4(
            record::SIGNAL_ID_PREFIX,
            &record::signal_id_key(Partition::ZERO, "wf-1", "hook-7"),
        ),
    );
    let key = golden_bytes(
        "signal_id_key_v5",
        &record::signal_id_key(P, "wf-1", "hook-7"),
    );
    assert_eq!(key, b"sigid/\x01\x02wf-1\0hook-7");
    assert!(key.starts_with(&record::signal_id_prefix(P, "wf-1")));
    // Not inside any workflow's signal queue, whose keys all start `sig/`.
    assert!(!key.starts_with(record::SIGNAL_PREFIX));
}

#[test]
fn live_index_key_and_marker() {
    assert_eq!(record::live_key(P, "wf-1"), b"live/\x01\x02wf-1");
    assert_eq!(record::LIVE_INDEX_KEY, b"meta/live-index");
    golden_bytes("live_index_marker", record::LIVE_INDEX_V1);
}

#[test]
fn attributes_record_and_index_keys() {
    use record::{AttributesRecord, StoredValue};
    let stored = AttributesRecord {
        values: [
            ("customer".to_string(), StoredValue::String("ada\0x".into())),
            ("placed".to_string(), StoredValue::TimeMs(1_893_456_000_000)),
            ("total".to_string(), StoredValue::Int(-4200)),
        ]
        .into_iter()
        .collect(),
    };
    golden("attributes", &stored);
    assert_eq!(record::attributes_key(P, "wf-1"), b"wfattr/\x01\x02wf-1");
    golden_bytes(
        "attr_key_string",
        &record::attribute_index_key("customer", &StoredValue::String("ada\0x".into()), "wf-1"),
    );
    golden_bytes(
        "attr_key_int",
        &record::attribute_index_key("total", &StoredValue::Int(-4200), "wf-1"),
    );
    golden_bytes(
        "attr_key_time",
        &record::attribute_index_key("placed", &StoredValue::TimeMs(1_893_456_000_000), "wf-1"),
    );
}

#[test]
fn update_answer_and_review_records_and_keys() {
    golden(
        "update_response",
        &record::UpdateResponseRecord {
            payload: vec![1, 2, 3],
            answered_ms: 1_893_456_000_000,
        },
    );
    golden(
        "review",
        &record::ReviewRecord {
            workflow_id: "wf-1".to_string(),
            step: 4,
            title: "refund #7".to_string(),
            reviewers: vec!["ana".to_string(), "bo".to_string()],
            created_ms: 1_893_456_000_000,
            deadline_ms: 1_893_459_600_000,
            decided_by: Some("ana".to_string()),
        },
    );
    assert_eq!(
        record::update_response_key(P, "wf-1", "u1"),
        b"upd/\x01\x02wf-1\0u1"
    );
    assert_eq!(
        record::update_queued_key(P, "wf-1", "u1"),
        b"updq/\x01\x02wf-1\0u1"
    );
    assert_eq!(record::review_key("wf-1"), b"review/wf-1");
}

#[test]
fn visibility_index_keys_records_and_marker() {
    assert_eq!(record::type_index_key("order", "wf-1"), b"ty/order\0wf-1");
    assert_eq!(
        record::counter_key("Completed", "order"),
        b"cnt/Completed\0order"
    );
    assert_eq!(
        record::parse_counter_key(b"cnt/Completed\0order"),
        Some(("Completed".to_string(), "order".to_string()))
    );
    golden_bytes(
        "finished_key",
        &record::finished_key(1_893_456_060_000, "wf-1"),
    );
    golden_bytes(
        "idempotency_expiry_key",
        &record::idempotency_expiry_key(1_893_456_060_000, "checkout-1"),
    );
    golden(
        "finished",
        &record::FinishedRecord {
            status: "Completed".into(),
            workflow_type: "order".into(),
        },
    );
    let counter = golden_bytes("counter", &record::encode_counter(1_000_001));
    assert_eq!(record::decode_counter(&counter).unwrap(), 1_000_001);
    assert_eq!(record::VISIBILITY_INDEX_KEY, b"meta/visibility-index");
    golden_bytes("visibility_index_marker", record::VISIBILITY_INDEX_V1);
}

/// `lcnt/<status>\0<type>\0<version u32 BE><fingerprint u64 BE>` -> `[0x01][u64 BE]`, and
/// `meta/live-counters` -> `[0x01]`.
#[test]
fn live_counter_key_value_and_marker() {
    let key = golden_bytes(
        "live_counter_key",
        &record::live_counter_key("Waiting", "order", 3, 0x0123_4567_89ab_cdef),
    );
    assert_eq!(
        key,
        [
            b"lcnt/Waiting\0order\0".as_slice(),
            &[0, 0, 0, 3],
            &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        ]
        .concat()
    );
    assert_eq!(
        record::parse_live_counter_key(&key),
        Some(record::LiveCounterKey {
            status: "Waiting".into(),
            workflow_type: "order".into(),
            version: 3,
            fingerprint: 0x0123_4567_89ab_cdef,
        })
    );
    // A type name may hold any byte but NUL; the fixed-width tail is found from the end.
    let odd = record::live_counter_key("Parked", "a/b c", 1, 0);
    assert_eq!(
        record::parse_live_counter_key(&odd).map(|k| k.workflow_type),
        Some("a/b c".to_string())
    );
    assert_eq!(record::parse_live_counter_key(b"lcnt/Waiting\0order"), None);
    let value = golden_bytes("live_counter", &record::encode_counter(42));
    assert_eq!(value, [0x01, 0, 0, 0, 0, 0, 0, 0, 42]);
    assert_eq!(record::decode_counter(&value).unwrap(), 42);
    assert_eq!(record::LIVE_COUNTERS_KEY, b"meta/live-counters");
    golden_bytes("live_counters_marker", record::LIVE_COUNTERS_V1);
}

#[test]
fn created_time_update_time_and_children_index_keys_and_marker() {
    let created = golden_bytes(
        "created_key",
        &record::created_key(1_893_456_060_000, "wf-1"),
    );
    assert_eq!(
        record::parse_time_key(record::CREATED_PREFIX, &created),
        Some((1_893_456_060_000, "wf-1".to_string()))
    );
    // Keyed by the second: any time within it gives the same key.
    let updated = golden_bytes(
        "live_updated_second_key",
        &record::live_updated_key(1_893_456_060_999, "wf-1"),
    );
    assert_eq!(updated, record::live_updated_key(1_893_456_060_000, "wf-1"));
    assert_eq!(
        record::parse_time_key(record::LIVE_UPDATED_PREFIX, &updated),
        Some((1_893_456_060, "wf-1".to_string()))
    );
    golden_bytes(
        "child_key",
        &format_4(
            record::CHILD_PREFIX,
            &record::child_key(Partition::ZERO, "parent-1", "child-1"),
        ),
    );
    golden_bytes("child_key_v5", &record::child_key(P, "parent-1", "child-1"));
    assert_eq!(record::ORDER_INDEX_KEY, b"meta/order-index");
    golden_bytes("order_index_marker", record::ORDER_INDEX_V1);
    golden_bytes("order_index_marker_v2", record::ORDER_INDEX_V2);
    assert_eq!(record::LIVE_UPDATED_V1_PREFIX, b"lupd/");
}

#[test]
fn schedule_records_and_their_index() {
    use weft_runtime::engine::schedule::store::{self, ScheduleRecord};
    use weft_runtime::{OverlapPolicy, Trigger};

    assert_eq!(store::schedule_key("nightly"), b"sched/nightly");
    golden_bytes(
        "schedule_due_key",
        &store::schedule_due_key(1_893_456_060_000, "nightly"),
    );
    let cron = ScheduleRecord {
        workflow_type: "report".into(),
        input_json: r#"{"team":"ops"}"#.into(),
        trigger: Trigger::cron_in("30 2 * * *", "Europe/Berlin"),
        overlap: OverlapPolicy::BufferAll,
        catchup_window_ms: 3_600_000,
        jitter_ms: 30_000,
        paused: true,
        note: Some("maintenance".into()),
        remaining_runs: Some(5),
        next_fire_ms: Some(1_893_461_400_000),
        due_ms: None,
        missed: 2,
        skipped: 1,
        started: 3,
        buffered: vec![1_893_375_000_000],
        running: Some("nightly@2030-01-01T01:30:00Z".into()),
        recent: vec![(1_893_461_400_000, "nightly@2030-01-01T01:30:00Z".into())],
        last_error: Some("workflow type `report` is not registered".into()),
        revision: 9,
        created_ms: 1_893_456_000_000,
    };
    golden("schedule_cron", &cron);
    let interval = ScheduleRecord {
        trigger: Trigger::every(Duration::from_secs(90)),
        overlap: OverlapPolicy::Skip,
        paused: false,
        note: None,
        remaining_runs: None,
        due_ms: Some(1_893_461_400_000),
        buffered: Vec::new(),
        running: None,
        last_error: None,
        ..cron
    };
    golden("schedule_interval", &interval);
}

/// `meta/format` -> `[0x01][u32 BE]`: the store format marker, added after the first release.
/// Stores without it are format 1 and get it at their next build (see `tests/engine_boot.rs`).
#[test]
fn store_format_marker() {
    let stored = golden_bytes("store_format", &record::encode_store_format(1));
    assert_eq!(stored, [0x01, 0, 0, 0, 1]);
    assert_eq!(record::decode_store_format(&stored).unwrap(), 1);
    assert_eq!(record::FORMAT_KEY, b"meta/format");
    assert!(record::decode_store_format(&[0x01, 0, 1]).is_err());
    assert!(record::decode_store_format(&[0x02, 0, 0, 0, 1]).is_err());
}

/// `meta/partitions` -> `[0x01][u16 BE]`, and the partition function it feeds (FNV-1a of the
/// id modulo the count): both are stored facts a later build must read the same way.
#[test]
fn partition_count_and_function() {
    let stored = golden_bytes("partitions", &record::encode_partitions(1));
    assert_eq!(stored, [0x01, 0, 1]);
    assert_eq!(record::decode_partitions(&stored).unwrap(), 1);
    assert_eq!(record::PARTITIONS_KEY, b"meta/partitions");
    assert!(record::decode_partitions(&[0x01, 0, 0]).is_err());
    use weft_runtime::engine::partition::{fnv1a, partition_of};
    assert_eq!(fnv1a(b"order-42"), 0x7d1d_eb86_a056_62d4);
    assert_eq!(partition_of("order-42", 1), 0);
    assert_eq!(partition_of("order-42", 64), 20);
    // The one function every key's partition comes from.
    use weft_runtime::engine::partition::Partitions;
    assert_eq!(Partitions::new(64).of("order-42"), Partition(20));
    assert_eq!(Partitions::new(1).of("order-42"), Partition::ZERO);
}

/// `meta/partition-keys`: how far the move of per-workflow keys into their partition (store
/// format 5) has gone.
#[test]
fn partition_keys_marker() {
    assert_eq!(record::PARTITION_KEYS_KEY, b"meta/partition-keys");
    golden_bytes("partition_keys_timers", record::PARTITION_KEYS_TIMERS);
    golden_bytes("partition_keys_done", record::PARTITION_KEYS_DONE);
}
