//! Corruption of what `tests/corruption.rs` leaves out: index entries whose keys do not parse
//! or name no workflow (`fin/`, `crt/`, `lus/`, `tm/`, `ty/`, `attr/`, `child/`, `live/`,
//! `idemx/`, `schedx/`, `sigid/`, `updq/`), keys under the record prefixes that name no
//! workflow or are not UTF-8 (`sig/`, `idem/`, `upd/`, `review/`, `attempt/`, `actres/`,
//! `wfattr/`, `cnt/`, `sched/`), damaged live counters (`lcnt/`), finish-index values that do
//! not decode, the index markers (`meta/live-index`, `meta/visibility-index`,
//! `meta/order-index`) and the two markers a build must read before it writes (`meta/epoch`,
//! `meta/format`).
//!
//! The promise checked for each: the engine does not stop (every listing, count and lookup
//! answers, an engine builds again on the store), every other workflow finishes, nothing
//! acknowledged is lost (each workflow is still listed, once, with its status), and a damaged
//! entry that is skipped is reported: counted in `EngineStats::damaged_entries` (and logged).
//! A damaged `meta/epoch` or `meta/format` refuses the build with a typed error that says what
//! to do, and changes nothing in the store.
//!
//! Left alone here: `parent/`, `cancel/`, `cancelled/`, `deadline/` and `timedout/`, which are
//! being folded into the workflow record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::record::{self, StoredValue};
use weft_runtime::engine::{
    ErrorKind, GroupBy, ListFilter, ListOrder, RetentionPolicy, StartOptions, VirtualClock,
    WorkflowStatus,
};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    AttributeValue, Engine, EngineError, OverlapPolicy, ReviewFilter, ScheduleSpec, Signal,
    Trigger, Update, UpdateOptions, WorkflowContext, WorkflowError, workflow,
};

/// Adds `n`; zero ends the tally.
#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "corruption_indexes.add")]
struct Add {
    n: u64,
}

/// Sent to tallies with a signal id, so each has a `sigid/` record.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Note;

/// Answers each update with the running total; stops at zero.
#[workflow]
async fn tally(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    ctx.set_attribute("region", "eu");
    let mut total: u64 = start;
    loop {
        let (add, reply) = ctx.wait_for_update::<Add>().await;
        total += add.n;
        ctx.respond(reply, total);
        if add.n == 0 {
            break;
        }
    }
    Ok(total)
}

/// Returns its input at once.
#[workflow]
async fn echo(_ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(n)
}

/// Sleeps a virtual minute, then returns its input.
#[workflow]
async fn sleeper(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(60)).await;
    Ok(n)
}

/// Bounds a call that must answer at once.
async fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call waited instead of answering")
}

fn opts(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(60),
    }
}

async fn build(storage: &MemoryStorage, clock: &VirtualClock) -> Result<Engine, EngineError> {
    Engine::builder(storage.clone())
        .register::<tally>()
        .register::<echo>()
        .register::<sleeper>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
}

/// Waits until workflow `id` has `status`.
async fn wait_for_status(engine: &Engine, id: &str, status: WorkflowStatus) {
    for _ in 0..10_000 {
        if engine.describe(id).await.unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{id} never reached {status:?}");
}

/// What a fresh store holds before it is damaged: three tallies waiting for updates (each with
/// a signal id and an attribute), two finished echoes (one started with an idempotency key),
/// and a sleeper waiting on its timer.
struct World {
    storage: MemoryStorage,
    clock: VirtualClock,
    engine: Engine,
}

const TALLIES: [&str; 3] = ["tally-0", "tally-1", "tally-2"];
const ECHOES: [&str; 2] = ["echo-0", "echo-1"];

async fn world() -> World {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await.unwrap();
    for id in TALLIES {
        let options = StartOptions {
            id: Some(id.to_string()),
            ..StartOptions::default()
        };
        engine.start_with::<tally>(0, options).await.unwrap();
        wait_for_status(&engine, id, WorkflowStatus::Waiting).await;
        engine
            .signal_with(id, Note, weft_runtime::SignalOptions::id("note"))
            .await
            .unwrap();
    }
    for (i, id) in ECHOES.iter().enumerate() {
        let options = StartOptions {
            id: Some(id.to_string()),
            idempotency_key: (i == 0).then(|| "echo-key".to_string()),
            ..StartOptions::default()
        };
        let handle = engine.start_with::<echo>(i as u64, options).await.unwrap();
        assert_eq!(at_once(handle.result()).await.unwrap().unwrap(), i as u64);
    }
    let options = StartOptions {
        id: Some("sleeper".to_string()),
        ..StartOptions::default()
    };
    engine.start_with::<sleeper>(9, options).await.unwrap();
    wait_for_status(&engine, "sleeper", WorkflowStatus::Waiting).await;
    World {
        storage,
        clock,
        engine,
    }
}

/// Every workflow of [`world`], with the status it must be listed with.
fn expected() -> BTreeMap<String, WorkflowStatus> {
    let mut all = BTreeMap::new();
    for id in TALLIES {
        all.insert(id.to_string(), WorkflowStatus::Waiting);
    }
    for id in ECHOES {
        all.insert(id.to_string(), WorkflowStatus::Completed);
    }
    all.insert("sleeper".to_string(), WorkflowStatus::Waiting);
    all
}

/// Lists every page of `filter`, failing the test on an error.
async fn list_all(
    engine: &Engine,
    filter: &ListFilter,
    what: &str,
) -> Vec<(String, WorkflowStatus)> {
    let mut items = Vec::new();
    let mut token = None;
    for _ in 0..100 {
        let page = at_once(engine.list(filter, 2, token.as_deref()))
            .await
            .unwrap_or_else(|e| panic!("{what}: listing {filter:?} failed: {e}"));
        items.extend(page.items.into_iter().map(|i| (i.id, i.status)));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return items,
        }
    }
    panic!("{what}: listing {filter:?} never ended");
}

/// Every listing, count and lookup answers, and lists each workflow once with its status.
async fn everything_answers(engine: &Engine, what: &str) {
    let all = expected();
    for order in [
        ListOrder::Id,
        ListOrder::CreatedAsc,
        ListOrder::CreatedDesc,
        ListOrder::UpdatedAsc,
        ListOrder::UpdatedDesc,
    ] {
        let filter = ListFilter {
            order,
            ..ListFilter::default()
        };
        let listed = list_all(engine, &filter, what).await;
        let mut ids: Vec<_> = listed.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        assert_eq!(
            ids,
            all.keys().cloned().collect::<Vec<_>>(),
            "{what}: listed in {order:?}"
        );
        for (id, status) in &listed {
            assert_eq!(Some(status), all.get(id), "{what}: {id} in {order:?}");
        }
        for status in [WorkflowStatus::Waiting, WorkflowStatus::Completed] {
            let filter = ListFilter {
                order,
                status: Some(status),
                ..ListFilter::default()
            };
            let mut ids: Vec<_> = list_all(engine, &filter, what)
                .await
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            let wanted: Vec<_> = all
                .iter()
                .filter(|(_, s)| **s == status)
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(ids, wanted, "{what}: {status:?} in {order:?}");
        }
    }
    let by_type = ListFilter {
        workflow_type: Some("tally".to_string()),
        ..ListFilter::default()
    };
    let ids: Vec<_> = list_all(engine, &by_type, what)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, TALLIES, "{what}: by type");
    let by_attribute = ListFilter {
        attributes: vec![("region".to_string(), AttributeValue::from("eu"))],
        ..ListFilter::default()
    };
    let ids: Vec<_> = list_all(engine, &by_attribute, what)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, TALLIES, "{what}: by attribute");
    let counts = at_once(engine.count(&ListFilter::default(), GroupBy::Status))
        .await
        .unwrap_or_else(|e| panic!("{what}: count by status: {e}"));
    assert_eq!(
        counts,
        vec![("Completed".to_string(), 2), ("Waiting".to_string(), 4)],
        "{what}"
    );
    let counts = at_once(engine.count(&ListFilter::default(), GroupBy::Type))
        .await
        .unwrap_or_else(|e| panic!("{what}: count by type: {e}"));
    assert_eq!(
        counts,
        vec![
            ("echo".to_string(), 2),
            ("sleeper".to_string(), 1),
            ("tally".to_string(), 3)
        ],
        "{what}"
    );
    let counts = at_once(engine.count(
        &ListFilter::default(),
        GroupBy::Attribute("region".to_string()),
    ))
    .await
    .unwrap_or_else(|e| panic!("{what}: count by attribute: {e}"));
    assert_eq!(counts, vec![("eu".to_string(), 3)], "{what}");
    let reviews = at_once(engine.pending_reviews(&ReviewFilter::default(), 10, None))
        .await
        .unwrap_or_else(|e| panic!("{what}: pending reviews: {e}"));
    assert!(reviews.items.is_empty(), "{what}: {:?}", reviews.items);
    let schedules = at_once(engine.list_schedules(10, None))
        .await
        .unwrap_or_else(|e| panic!("{what}: schedules: {e}"));
    assert!(schedules.items.is_empty(), "{what}");
    let children = at_once(engine.children("tally-0", 10, None))
        .await
        .unwrap_or_else(|e| panic!("{what}: children: {e}"));
    assert!(children.items.is_empty(), "{what}: {:?}", children.items);
    for id in all.keys() {
        let described = at_once(engine.describe(id))
            .await
            .unwrap_or_else(|e| panic!("{what}: describe {id}: {e}"));
        assert_eq!(Some(&described.status), all.get(id), "{what}: {id}");
    }
}

/// Every workflow still waiting finishes: the tallies by updates, the sleeper by its timer.
async fn all_finish(world: &World, engine: &Engine, what: &str) {
    for id in TALLIES {
        assert_eq!(
            at_once(engine.update(id, Add { n: 2 }, opts("two")))
                .await
                .unwrap_or_else(|e| panic!("{what}: update {id}: {e}")),
            2,
            "{what}"
        );
        at_once(engine.update(id, Add { n: 0 }, opts("end")))
            .await
            .unwrap_or_else(|e| panic!("{what}: update {id}: {e}"));
        assert_eq!(
            at_once(engine.result::<tally>(id)).await.unwrap().unwrap(),
            2,
            "{what}"
        );
    }
    world.clock.advance(Duration::from_secs(61));
    assert_eq!(
        at_once(engine.result::<sleeper>("sleeper"))
            .await
            .unwrap_or_else(|e| panic!("{what}: sleeper: {e}"))
            .unwrap(),
        9,
        "{what}"
    );
    // A start with a new key, and the first key's retry, answer as before.
    let fresh = StartOptions {
        idempotency_key: Some("fresh".to_string()),
        ..StartOptions::default()
    };
    let handle = at_once(engine.start_with::<echo>(5, fresh)).await.unwrap();
    assert_eq!(
        at_once(handle.result()).await.unwrap().unwrap(),
        5,
        "{what}"
    );
    let again = StartOptions {
        idempotency_key: Some("echo-key".to_string()),
        ..StartOptions::default()
    };
    let handle = at_once(engine.start_with::<echo>(0, again)).await.unwrap();
    assert_eq!(handle.id(), "echo-0", "{what}");
}

/// The promise for index entries `entries`, put into the store of a running engine: it and an
/// engine built again on the store answer everything, every workflow finishes, a retention
/// sweep runs, and (when `read` says the engine reads that index) the skip is reported.
async fn survives(what: &str, entries: Vec<(Vec<u8>, Vec<u8>)>, read: bool) {
    let world = world().await;
    for (key, value) in &entries {
        world.storage.put(key, value).unwrap();
    }
    everything_answers(&world.engine, what).await;
    world.engine.clone().shutdown().await;
    let engine = build(&world.storage, &world.clock)
        .await
        .unwrap_or_else(|e| panic!("{what}: an engine does not build on the store: {e}"));
    everything_answers(&engine, what).await;
    all_finish(&world, &engine, what).await;
    let policy = RetentionPolicy::keep_finished_for(Duration::from_secs(1));
    world.clock.advance(Duration::from_secs(3600));
    for _ in 0..3 {
        at_once(engine.sweep_retention(&policy))
            .await
            .unwrap_or_else(|e| panic!("{what}: retention sweep: {e}"));
    }
    world.clock.advance(Duration::from_secs(30 * 86_400));
    at_once(engine.sweep_retention(&policy))
        .await
        .unwrap_or_else(|e| panic!("{what}: retention sweep: {e}"));
    if read {
        assert!(
            engine.stats().damaged_entries > 0,
            "{what}: skipped without a report"
        );
    }
    engine.shutdown().await;
}

/// Keys under a time-ordered index `prefix` (`<prefix><ms: u64 BE><id>`) that do not parse or
/// name no workflow, each with `value`.
fn bad_time_keys(prefix: &[u8], value: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let now = 1_900_000_000_000u64.to_be_bytes();
    [
        prefix.to_vec(),
        [prefix, &[1, 2, 3]].concat(),
        [prefix, &now, &[0xff, 0xfe, 0x00]].concat(),
        [prefix, &now, b"ghost"].concat(),
        [prefix, &[0xff; 8], b"ghost-at-the-end-of-time"].concat(),
        [prefix, &[0; 8], b"ghost-at-the-epoch"].concat(),
        // Real workflows at times they do not have: a stale entry must not list one twice.
        [prefix, &[0; 8], b"echo-0"].concat(),
        [prefix, &[0; 8], b"tally-0"].concat(),
    ]
    .into_iter()
    .map(|key| (key, value.to_vec()))
    .collect()
}

/// A value of each damaged kind, for indexes whose values are empty: they must be ignored.
const GARBAGE: &[u8] = &[0x01, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_finish_index_entries_are_skipped_and_reported() {
    survives(
        "fin/ keys",
        bad_time_keys(record::FINISHED_PREFIX, GARBAGE),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_finish_index_value_is_skipped_and_reported() {
    /// The `fin/` entry of echo-0 in `world`.
    fn entry_of_echo_0(world: &World) -> (Vec<u8>, Vec<u8>) {
        world
            .storage
            .scan_prefix(record::FINISHED_PREFIX, None, 10)
            .unwrap()
            .into_iter()
            .find(|(key, _)| key.ends_with(b"echo-0"))
            .unwrap()
    }
    let damage = |valid: &[u8]| {
        let mut flipped = valid.to_vec();
        for byte in flipped.iter_mut().skip(1) {
            *byte ^= 0xff;
        }
        vec![
            ("fin/ value: nothing", Vec::new()),
            (
                "fin/ value: a wrong tag",
                [&[0x7f][..], &valid[1..]].concat(),
            ),
            ("fin/ value: the tag alone", vec![0x01]),
            ("fin/ value: truncated", valid[..valid.len() / 2].to_vec()),
            ("fin/ value: an oversized length", GARBAGE.to_vec()),
            ("fin/ value: flipped", flipped),
        ]
    };
    let first = world().await;
    let (_, valid) = entry_of_echo_0(&first);
    first.engine.clone().shutdown().await;
    for (what, value) in damage(&valid) {
        let world = world().await;
        world.engine.clone().shutdown().await;
        let (key, _) = entry_of_echo_0(&world);
        survives_in(world, what, vec![(key, value)], true).await;
    }
}

/// [`survives`] on a world already built (its engine shut down).
async fn survives_in(world: World, what: &str, entries: Vec<(Vec<u8>, Vec<u8>)>, read: bool) {
    for (key, value) in &entries {
        world.storage.put(key, value).unwrap();
    }
    let engine = build(&world.storage, &world.clock)
        .await
        .unwrap_or_else(|e| panic!("{what}: an engine does not build on the store: {e}"));
    everything_answers(&engine, what).await;
    all_finish(&world, &engine, what).await;
    let policy = RetentionPolicy::keep_finished_for(Duration::from_secs(1));
    world.clock.advance(Duration::from_secs(3600));
    at_once(engine.sweep_retention(&policy))
        .await
        .unwrap_or_else(|e| panic!("{what}: retention sweep: {e}"));
    if read {
        assert!(
            engine.stats().damaged_entries > 0,
            "{what}: skipped without a report"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_created_time_index_entries_are_skipped_and_reported() {
    survives(
        "crt/ keys",
        bad_time_keys(record::CREATED_PREFIX, GARBAGE),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_update_time_index_entries_are_skipped_and_reported() {
    survives(
        "lus/ keys",
        bad_time_keys(record::LIVE_UPDATED_PREFIX, GARBAGE),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_timer_index_entries_are_skipped_and_reported() {
    survives(
        "tm/ keys",
        // Within the one partition's timers, which recovery reads (`tm/<p>`).
        bad_time_keys(
            &record::partition_prefix(record::TIMER_PREFIX, record::Partition::ZERO),
            GARBAGE,
        ),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_idempotency_expiry_entries_are_skipped_and_reported() {
    survives(
        "idemx/ keys",
        bad_time_keys(record::IDEMPOTENCY_EXPIRY_PREFIX, GARBAGE),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_type_index_entries_are_skipped_and_reported() {
    let keys = [
        record::TYPE_INDEX_PREFIX.to_vec(),
        b"ty/tally".to_vec(),
        [b"ty/tally\0".as_slice(), &[0xff, 0xfe]].concat(),
        b"ty/tally\0ghost".to_vec(),
        b"ty/\0tally-0".to_vec(),
    ];
    survives(
        "ty/ keys",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_attribute_index_entries_are_skipped_and_reported() {
    let eu = record::attribute_value_prefix("region", &StoredValue::String("eu".to_string()));
    let keys = [
        record::ATTRIBUTE_INDEX_PREFIX.to_vec(),
        [record::ATTRIBUTE_INDEX_PREFIX, &[0xff, 0x00]].concat(),
        [eu.as_slice(), &[0xff, 0xfe]].concat(),
        [eu.as_slice(), b"ghost"].concat(),
        eu[..eu.len() - 1].to_vec(),
    ];
    survives(
        "attr/ keys",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_children_index_entries_are_skipped_and_reported() {
    let of_tally = record::children_prefix(record::Partition::ZERO, "tally-0");
    let keys = [
        record::CHILD_PREFIX.to_vec(),
        [of_tally.as_slice(), &[0xff, 0xfe]].concat(),
        b"child/tally-0".to_vec(),
    ];
    survives(
        "child/ keys",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_live_index_entries_are_skipped_and_reported() {
    let keys = [
        record::LIVE_PREFIX.to_vec(),
        [record::LIVE_PREFIX, &[0xff, 0xfe]].concat(),
        record::live_key(record::Partition::ZERO, "ghost"),
    ];
    survives(
        "live/ keys",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_signal_id_and_queued_update_keys_change_nothing() {
    // Only looked up by exact key and deleted with their workflow: never parsed.
    let keys = [
        record::SIGNAL_ID_PREFIX.to_vec(),
        [record::SIGNAL_ID_PREFIX, &[0xff, 0xfe]].concat(),
        b"sigid/tally-0".to_vec(),
        record::UPDATE_QUEUED_PREFIX.to_vec(),
        [record::UPDATE_QUEUED_PREFIX, &[0xff, 0xfe]].concat(),
        b"updq/tally-0".to_vec(),
        [b"updq/tally-0\0".as_slice(), &[0xff]].concat(),
    ];
    survives(
        "sigid/ and updq/ keys",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_index_markers_are_rebuilt_or_refused_typed() {
    for key in [
        record::LIVE_INDEX_KEY,
        record::VISIBILITY_INDEX_KEY,
        record::ORDER_INDEX_KEY,
        record::LIFECYCLE_KEY,
    ] {
        for value in [&[][..], &[0x7f], &[0x01, 0x02, 0x03], GARBAGE] {
            let what = format!("{} = {value:02x?}", String::from_utf8_lossy(key));
            let world = world().await;
            world.engine.clone().shutdown().await;
            world.storage.put(key, value).unwrap();
            match build(&world.storage, &world.clock).await {
                Ok(engine) => {
                    everything_answers(&engine, &what).await;
                    all_finish(&world, &engine, &what).await;
                    engine.shutdown().await;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Internal, "{what}: {e}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

/// The bytes of each damaged kind for an 8-byte (`meta/epoch`) or 4-byte (`meta/format`)
/// marker.
fn damaged_marker(body_len: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut valid = vec![record::FORMAT_V1];
    valid.extend(std::iter::repeat_n(0, body_len));
    vec![
        ("nothing", Vec::new()),
        ("a wrong tag", [&[0x7f][..], &valid[1..]].concat()),
        ("the tag alone", vec![record::FORMAT_V1]),
        ("truncated", valid[..body_len / 2 + 1].to_vec()),
        ("too long", [valid.as_slice(), &[0]].concat()),
        ("an oversized length", GARBAGE.to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_epoch_or_format_marker_refuses_the_build_typed_and_writes_nothing() {
    for (key, body_len) in [(record::EPOCH_KEY, 8), (record::FORMAT_KEY, 4)] {
        for (how, bytes) in damaged_marker(body_len) {
            let what = format!("{}: {how}", String::from_utf8_lossy(key));
            let world = world().await;
            world.engine.clone().shutdown().await;
            world.storage.put(key, &bytes).unwrap();
            let before = world.storage.scan_prefix(b"", None, usize::MAX).unwrap();
            match build(&world.storage, &world.clock).await {
                Err(e @ EngineError::DamagedStoreMarker { .. }) => {
                    assert_eq!(e.kind(), ErrorKind::Internal, "{what}");
                    assert_eq!(e.code(), "engine.damaged_store_marker", "{what}");
                    let message = e.to_string();
                    assert!(
                        message.contains(&*String::from_utf8_lossy(key))
                            && message.contains("weft restore")
                            && message.contains("weft doctor --store")
                            && message.contains("wrote nothing"),
                        "{what}: {message}"
                    );
                }
                Err(other) => panic!("{what}: expected DamagedStoreMarker, got {other:?}"),
                Ok(_) => panic!("{what}: built on a store whose marker does not decode"),
            }
            let after = world.storage.scan_prefix(b"", None, usize::MAX).unwrap();
            assert!(
                before == after,
                "{what}: the refused build wrote to the store"
            );
            // Once the marker is right again, the same store builds and nothing was lost.
            let good = if body_len == 8 {
                record::encode_epoch(7)
            } else {
                record::encode_store_format(weft_runtime::storage::STORE_FORMAT_VERSION)
            };
            world.storage.put(key, &good).unwrap();
            let engine = build(&world.storage, &world.clock).await.unwrap();
            everything_answers(&engine, &what).await;
            all_finish(&world, &engine, &what).await;
            engine.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_schedule_index_entries_are_skipped_reported_and_do_not_spin_the_scheduler() {
    let minute = Duration::from_secs(60);
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await.unwrap();
    let spec = ScheduleSpec::new("echo", serde_json::json!(7), Trigger::every(minute))
        .overlap(OverlapPolicy::AllowAll);
    engine.create_schedule("good", spec).await.unwrap();
    for (key, value) in bad_time_keys(b"schedx/", GARBAGE) {
        storage.put(&key, &value).unwrap();
    }
    for round in 1..=3u64 {
        clock.advance(minute);
        let fired = format!("good@2030-01-01T00:0{round}:00Z");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match engine.result::<echo>(&fired).await {
                Ok(result) => {
                    assert_eq!(result.unwrap(), 7);
                    break;
                }
                Err(EngineError::NotFound { .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(e) => panic!("round {round}: the good schedule did not fire: {e}"),
            }
        }
    }
    let listed = engine.list_schedules(100, None).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert!(
        engine.stats().damaged_entries > 0,
        "skipped without a report"
    );
    // The scheduler does not spin on the damaged entries: a pass reads the index twice, so
    // in 200 ms of nothing due the store sees few reads of it.
    let before = engine.stats().damaged_entries;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let skipped = engine.stats().damaged_entries - before;
    assert!(
        skipped <= 4 * 6,
        "{skipped} damaged entries skipped in 200 ms: the scheduler spins"
    );
    engine.shutdown().await;
    // And an engine builds again on the store.
    build(&storage, &clock).await.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_under_record_prefixes_that_name_nothing_are_skipped_and_reported() {
    // Ids that are not UTF-8, or that no workflow (or schedule) has; each with a damaged value.
    // A workflow's own records under a key that parses are `tests/corruption.rs`'s.
    let not_utf8: &[u8] = &[0xff, 0xfe];
    let keys = [
        [b"sig/".as_slice(), not_utf8].concat(),
        [b"sig/".as_slice(), not_utf8, b"\0", &[0; 16]].concat(),
        [b"sig/ghost\0".as_slice(), &[1, 2]].concat(),
        [b"idem/".as_slice(), not_utf8].concat(),
        [b"upd/".as_slice(), not_utf8, b"\0u"].concat(),
        b"upd/ghost\0u".to_vec(),
        [b"review/".as_slice(), not_utf8].concat(),
        b"review/ghost".to_vec(),
        [b"attempt/".as_slice(), not_utf8, b"\0"].concat(),
        [b"actres/".as_slice(), not_utf8].concat(),
        [b"wfattr/".as_slice(), not_utf8].concat(),
        b"wfattr/ghost".to_vec(),
        [b"cnt/".as_slice(), not_utf8].concat(),
        b"cnt/Completed".to_vec(),
        [b"sched/".as_slice(), not_utf8].concat(),
        b"sched/ghost".to_vec(),
    ];
    survives(
        "keys under record prefixes",
        keys.into_iter().map(|k| (k, GARBAGE.to_vec())).collect(),
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_damaged_under_a_running_engine_fences_it_and_loses_nothing() {
    // Every write of the engine is conditional on the epoch it took: damaged, the epoch no
    // longer proves the engine owns the store, so (as after a takeover) it writes nothing more
    // and stops. The next build refuses the store until the epoch is restored; then every
    // workflow acknowledged before goes on.
    let world = world().await;
    world.storage.put(record::EPOCH_KEY, GARBAGE).unwrap();
    let refused = at_once(world.engine.update("tally-0", Add { n: 2 }, opts("two"))).await;
    assert!(
        matches!(refused, Err(EngineError::Fenced { .. })),
        "{refused:?}"
    );
    assert!(world.engine.is_fenced());
    world.engine.clone().shutdown().await;
    match build(&world.storage, &world.clock).await {
        Err(EngineError::DamagedStoreMarker { key, .. }) => assert_eq!(key, "meta/epoch"),
        Err(other) => panic!("expected DamagedStoreMarker, got {other:?}"),
        Ok(_) => panic!("built on a store whose epoch does not decode"),
    }
    world
        .storage
        .put(record::EPOCH_KEY, &record::encode_epoch(1))
        .unwrap();
    let engine = build(&world.storage, &world.clock).await.unwrap();
    everything_answers(&engine, "epoch restored").await;
    all_finish(&world, &engine, "epoch restored").await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_live_counters_refuse_only_counts_and_every_workflow_finishes() {
    for (how, value) in [
        ("nothing", Vec::new()),
        ("a wrong tag", vec![0x7f, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("the tag alone", vec![0x01]),
        ("an oversized length", GARBAGE.to_vec()),
    ] {
        let what = format!("lcnt/ values: {how}");
        let world = world().await;
        let counters = world
            .storage
            .scan_prefix(b"lcnt/", None, usize::MAX)
            .unwrap();
        assert!(!counters.is_empty(), "{what}: no live counters to damage");
        for (key, _) in &counters {
            world.storage.put(key, &value).unwrap();
        }
        world
            .storage
            .put(&[b"lcnt/".as_slice(), &[0xff, 0xfe]].concat(), GARBAGE)
            .unwrap();
        // A count may be refused (typed); listings and lookups answer, and the writer, which
        // moves these counters with every status change, goes on.
        if let Err(e) = at_once(world.engine.count(&ListFilter::default(), GroupBy::Status)).await {
            assert_eq!(e.kind(), ErrorKind::Internal, "{what}: {e}");
        }
        let listed = list_all(&world.engine, &ListFilter::default(), &what).await;
        assert_eq!(listed.len(), expected().len(), "{what}");
        all_finish(&world, &world.engine, &what).await;
        world.engine.clone().shutdown().await;
        let engine = build(&world.storage, &world.clock)
            .await
            .unwrap_or_else(|e| panic!("{what}: an engine does not build on the store: {e}"));
        engine.shutdown().await;
    }
}
