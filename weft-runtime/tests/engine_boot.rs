//! Boot checks: the store format marker (written on create, upgraded into stores from before
//! it, a newer one refused before anything is written), a store file another handle holds,
//! and the recovery report that confirms a deploy.

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{Engine, EngineError, VirtualClock, WorkflowStatus};
use weft_runtime::storage::{
    MemoryStorage, RedbStorage, STORE_FORMAT_VERSION, Storage, StorageError,
};

async fn start<W: weft_runtime::Workflow>(engine: &Engine, id: &str, input: W::Input) {
    engine
        .start_with::<W>(
            input,
            weft_runtime::StartOptions {
                id: Some(id.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn marker(storage: &dyn Storage) -> Option<u32> {
    storage
        .get(record::FORMAT_KEY)
        .unwrap()
        .map(|bytes| record::decode_store_format(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_gets_the_format_marker_of_this_build() {
    let storage = MemoryStorage::new();
    assert_eq!(marker(&storage), None);
    let engine = engine_for::<waiter>(storage.clone()).await;
    assert_eq!(marker(&storage), Some(STORE_FORMAT_VERSION));
    engine.shutdown().await;
    // Building again keeps it.
    let engine = engine_for::<waiter>(storage.clone()).await;
    assert_eq!(marker(&storage), Some(STORE_FORMAT_VERSION));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_the_marker_is_upgraded_at_its_first_build_and_its_workflows_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    {
        let storage = Arc::new(RedbStorage::create(&path).unwrap());
        let engine = engine_for::<waiter>(Arc::clone(&storage)).await;
        start::<waiter>(&engine, "w-1", 1).await;
        engine.shutdown().await;
        // What a release before the marker left: the same records, no `meta/format`.
        storage.delete(record::FORMAT_KEY).unwrap();
        assert_eq!(marker(&*storage), None);
    }
    let storage = Arc::new(RedbStorage::open(&path).unwrap());
    let engine = engine_for::<waiter>(Arc::clone(&storage)).await;
    assert_eq!(marker(&*storage), Some(STORE_FORMAT_VERSION));
    assert_eq!(engine.recovery_report().waiting, 1);
    engine
        .signal("w-1", Approval { by: "kim".into() })
        .await
        .unwrap();
    assert_eq!(
        engine.result::<waiter>("w-1").await.unwrap().unwrap(),
        vec!["kim".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_a_newer_format_is_refused_with_the_fix_and_left_untouched() {
    let storage = MemoryStorage::new();
    let engine = engine_for::<waiter>(storage.clone()).await;
    engine.shutdown().await;
    let newer = STORE_FORMAT_VERSION + 1;
    storage
        .put(record::FORMAT_KEY, &record::encode_store_format(newer))
        .unwrap();
    let before = dump(&storage);
    let error = Engine::builder(storage.clone())
        .register::<waiter>()
        .build()
        .await
        .expect_err("a newer store is refused");
    assert_eq!(
        error,
        EngineError::NewerStoreFormat {
            found: newer,
            supported: STORE_FORMAT_VERSION
        }
    );
    assert_eq!(error.code(), "engine.newer_store_format");
    let message = error.to_string();
    assert!(
        message.contains(&format!("this store was written by format {newer}"))
            && message.contains(&format!(
                "this binary understands up to {STORE_FORMAT_VERSION}"
            ))
            && message.contains("run a newer weft"),
        "{message}"
    );
    // Refused before any write: the epoch of the engine that owns it is not raised.
    assert_eq!(dump(&storage), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_open_elsewhere_cannot_be_owned_and_the_error_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let first = RedbStorage::create(&path).unwrap();
    for second in [RedbStorage::create(&path), RedbStorage::open(&path)] {
        let error = second.expect_err("the file is taken");
        assert_eq!(error, StorageError::InUse { path: path.clone() });
        assert_eq!(error.code(), "storage.in_use");
        let message = error.to_string();
        assert!(
            message.contains("only one engine may own a store")
                && message.contains("stop the other engine"),
            "{message}"
        );
    }
    first.close().unwrap();
    RedbStorage::open(&path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_report_counts_what_was_in_flight_by_status_and_what_resumed() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let pending = |name: &'static str| {
        let calls = Arc::clone(&calls);
        FnActivity::new(name, move |_ctx, _input| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending()
        })
    };
    let first = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .register::<call_flaky>()
        .activity_override("greet", pending("greet"))
        .activity_override("flaky", pending("flaky"))
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let fresh = first.recovery_report();
    assert!(fresh.ran);
    assert_eq!(fresh.in_flight(), 0);
    start::<single>(&first, "running-1", "ivy".into()).await;
    start::<waiter>(&first, "waiting-1", 1).await;
    start::<waiter>(&first, "done-1", 1).await;
    first
        .signal("done-1", Approval { by: "kim".into() })
        .await
        .unwrap();
    first.result::<waiter>("done-1").await.unwrap().unwrap();
    start::<call_flaky>(&first, "unknown-1", 3).await;
    eventually(|| calls.load(Ordering::SeqCst) == 2).await;
    first.shutdown().await;

    // The next release no longer registers `call_flaky`.
    let welcome = FnActivity::new("greet", |_ctx, input| async move {
        Ok(enc(&format!("welcome back, {}", dec::<String>(&input))))
    });
    let second = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .activity_override("greet", welcome)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let report = second.recovery_report();
    assert!(report.ran);
    assert_eq!(
        (report.running, report.waiting, report.parked),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!((report.resumed, report.armed), (1, 1), "{report:?}");
    assert_eq!(report.unresolved, 1, "{report:?}");
    assert_eq!(report.in_flight(), 3, "{report:?}");
    let unresolved = &report.unresolved_workflows[0];
    assert_eq!(unresolved.id, "unknown-1");
    assert!(
        unresolved.reason.contains("`call_flaky`") && unresolved.reason.contains("register it"),
        "{}",
        unresolved.reason
    );
    assert_eq!(
        second.result::<single>("running-1").await.unwrap().unwrap(),
        "welcome back, ivy"
    );
    // Reported, never dropped: it is still there for the release that registers it, and
    // describe shows it parked, as the report counts it.
    assert_eq!(
        second.describe("unknown-1").await.unwrap().status,
        WorkflowStatus::Parked
    );
    second.shutdown().await;

    let without = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .recover(false)
        .build()
        .await
        .unwrap();
    let report = without.recovery_report();
    assert!(!report.ran);
    assert_eq!(report.in_flight(), 0);
}

fn partitions(storage: &dyn Storage) -> Option<u16> {
    storage
        .get(record::PARTITIONS_KEY)
        .unwrap()
        .map(|bytes| record::decode_partitions(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_gets_one_partition_and_a_damaged_count_refuses_the_build_untouched() {
    let storage = MemoryStorage::new();
    let engine = engine_for::<waiter>(storage.clone()).await;
    assert_eq!(partitions(&storage), Some(1));
    assert_eq!(engine.partitions(), 1);
    assert_eq!(engine.partition_of("anything"), 0);
    engine.shutdown().await;
    // A store from before the count (store format 2 and older) gets it at its next build.
    storage.delete(record::PARTITIONS_KEY).unwrap();
    let engine = engine_for::<waiter>(storage.clone()).await;
    assert_eq!(partitions(&storage), Some(1));
    engine.shutdown().await;
    // A count that does not decode (or is zero) refuses the build before anything is written.
    for damaged in [
        &[][..],
        &[0x01, 0x00, 0x00],
        &[0x01, 0x01],
        &[0x7f, 0x00, 0x01],
    ] {
        storage.put(record::PARTITIONS_KEY, damaged).unwrap();
        let epoch = storage.get(record::EPOCH_KEY).unwrap();
        let refused = Engine::builder(storage.clone())
            .register::<waiter>()
            .build()
            .await;
        match refused {
            Err(e @ EngineError::DamagedStoreMarker { .. }) => {
                assert!(e.to_string().contains("meta/partitions"), "{e}");
            }
            other => panic!("{damaged:02x?}: {:?}", other.err()),
        }
        assert_eq!(storage.get(record::EPOCH_KEY).unwrap(), epoch, "not owned");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_ids_are_time_ordered_across_engines_and_do_not_name_the_epoch() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let engine = Engine::builder(storage.clone())
            .register::<waiter>()
            .clock(Arc::new(clock.clone()))
            .build()
            .await
            .unwrap();
        for _ in 0..3 {
            ids.push(engine.start::<waiter>(1).await.unwrap().id().to_string());
            clock.advance(std::time::Duration::from_millis(1));
        }
        let epoch = engine.epoch();
        engine.shutdown().await;
        // `<type>-<26 characters of Crockford base32>`, no epoch in it.
        for id in &ids[ids.len() - 3..] {
            let ulid = id.strip_prefix("waiter-").expect(id);
            assert_eq!(ulid.len(), 26, "{id}");
            assert!(
                ulid.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{id}"
            );
            assert!(!id.contains(&format!("-{epoch}-")), "{id}");
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "in the order they were made");
}
