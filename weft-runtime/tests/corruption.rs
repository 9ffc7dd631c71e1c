//! Corruption: a damaged stored record parks only its own workflow (or refuses only the call
//! about it) with a typed error, and every other workflow keeps being listed, counted,
//! described, updated and finished.
//!
//! The `a_damaged_*` tests go over the record kinds a workflow or a call owns (`wf/`, with its
//! lifecycle section apart, `wfattr/`, `idem/`, `sigid/`, `sig/` for plain and race waits,
//! `review/`, `upd/`, `attempt/`, `actres/`, `sched/`), each damaged in every way of
//! [`damaged`]: a wrong format tag, nothing at all, the tag alone, a truncated body, a length
//! prefix claiming a terabyte, and every body byte flipped. Each case asserts the call about
//! the damaged record answers at once with a typed error (or the workflow is parked with
//! `record.corrupt` or the decoder's code), every other workflow finishes, and (for most kinds)
//! an engine built again on the store starts. Not in it: aggregates over workflows rather than
//! one workflow's records (`cnt/` and `lcnt/` counters, `meta/` keys), and index and marker keys whose
//! value is never decoded (`live/`, `ty/`, `tm/`, `idemx/`, `updq/`: only their presence
//! counts). `tests/corruption_indexes.rs` covers the indexes' keys that do not parse or name
//! no workflow, the `fin/` values, and the `meta/` markers. Damage that happens to be a valid
//! encoding of another
//! record (see [`damaged_one_integer`]) is beyond any decoder: records carry no checksum.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::record::{self, WorkflowRecord};
use weft_runtime::engine::{
    ErrorKind, GroupBy, ListFilter, SignalOptions, StartOptions, WorkflowStatus,
};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    Activity, ActivityContext, ActivityError, ActivityOptions, Decision, Engine, EngineError,
    Race2, RetryPolicy, ReviewFilter, ReviewOutcome, ReviewRequest, Signal, Update, UpdateOptions,
    WorkflowContext, WorkflowError, workflow,
};

/// Adds `n`; zero ends the tally.
#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "corruption.add")]
struct Add {
    n: u64,
}

/// Answers each update with the running total; stops at zero.
#[workflow]
async fn tally(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    // So that every tally has an attributes record (`wfattr/`).
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

fn opts(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(60),
    }
}

/// Bounds a call that must answer at once, so a call that waits fails the test instead of
/// hanging it (the engine's own timeouts are far longer).
async fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call waited instead of answering")
}

fn parked_code(result: Result<impl std::fmt::Debug, EngineError>) -> String {
    match result {
        Err(EngineError::Parked { code, .. }) => code,
        other => panic!("expected a parked error, got {other:?}"),
    }
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<tally>()
        .register::<echo>()
        .register::<relay>()
        .register::<racer>()
        .register::<approval>()
        .register::<retried>()
        .register::<fragile>()
        .register::<gated_tally>()
        .build()
        .await
        .unwrap()
}

/// Starts `n` tallies and waits until each waits for an update.
async fn tallies(engine: &Engine, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("tally-{i}");
        let options = StartOptions {
            id: Some(id.clone()),
            ..StartOptions::default()
        };
        engine.start_with::<tally>(0, options).await.unwrap();
        ids.push(id);
    }
    for id in &ids {
        for _ in 0..10_000 {
            if engine.describe(id).await.unwrap().status == WorkflowStatus::Waiting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ids
}

/// Every tally but `skip` is answered and finishes.
async fn others_finish(engine: &Engine, ids: &[String], skip: &str) {
    for id in ids.iter().filter(|id| *id != skip) {
        assert_eq!(
            at_once(engine.update(id, Add { n: 2 }, opts("two")))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            at_once(engine.update(id, Add { n: 0 }, opts("end")))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            at_once(engine.result::<tally>(id)).await.unwrap().unwrap(),
            2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_attributes_record_parks_only_its_workflow_in_every_listing_and_lookup() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let ids = tallies(&engine, 3).await;
    let bad = ids[1].clone();
    // A truncated body: the format tag and nothing after it.
    storage
        .put(
            &record::attributes_key(record::Partition::ZERO, &bad),
            &[record::FORMAT_V1],
        )
        .unwrap();

    let page = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    for item in &page.items {
        if item.id == bad {
            assert_eq!(item.status, WorkflowStatus::Parked);
            assert_eq!(item.park_reason.as_ref().unwrap().code, "record.corrupt");
            assert!(
                item.park_reason
                    .as_ref()
                    .unwrap()
                    .message
                    .contains("wfattr/")
            );
        } else {
            assert_eq!(item.status, WorkflowStatus::Waiting);
        }
    }
    // A count reads the counters, kept by status as records are written: a record damaged in
    // place is still counted as it was written (listing and describe report it parked).
    let counts = engine
        .count(&ListFilter::default(), GroupBy::Status)
        .await
        .unwrap();
    assert_eq!(counts, vec![("Waiting".to_string(), 3)]);
    let d = engine.describe(&bad).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "record.corrupt");
    assert_eq!(
        parked_code(at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await),
        "record.corrupt"
    );
    assert_eq!(
        parked_code(at_once(engine.result::<tally>(&bad)).await),
        "record.corrupt"
    );
    others_finish(&engine, &ids, &bad).await;
}

/// Released by the test once the activity has begun, so its runner is held until then.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// Tells the test the activity has begun: its workflow's runner is active.
static ENTERED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[allow(non_camel_case_types)] // named like the `#[activity]` structs
struct gated;

impl Activity for gated {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "corruption.gated";

    async fn execute(&self, _ctx: ActivityContext, _input: ()) -> Result<(), ActivityError> {
        ENTERED.add_permits(1);
        GATE.acquire().await.unwrap().forget();
        Ok(())
    }
}

/// Sets an attribute, runs `gated`, then waits for one update.
#[workflow]
async fn gated_tally(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    ctx.set_attribute("region", "eu");
    ctx.run(gated, ()).await?;
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.respond(reply, add.n);
    Ok(add.n)
}

/// A result waiter that finds a runner driving the workflow waits on it without reading the
/// store; when the attributes were damaged behind the runner's back, it learns of them once
/// the runner lets go (here: when the workflow goes on to wait for an update) instead of
/// waiting forever. A waiter for the wrong type is refused at once all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_damaged_while_a_runner_drives_park_the_result_once_it_lets_go() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let id = "gated-0".to_string();
    let options = StartOptions {
        id: Some(id.clone()),
        ..StartOptions::default()
    };
    engine.start_with::<gated_tally>((), options).await.unwrap();
    ENTERED.acquire().await.unwrap().forget();
    // A result call for the wrong type is refused at once, runner or not.
    assert!(matches!(
        at_once(engine.result::<tally>(&id)).await,
        Err(EngineError::WrongType { .. })
    ));
    storage
        .put(
            &record::attributes_key(record::Partition::ZERO, &id),
            &[record::FORMAT_V1],
        )
        .unwrap();
    let mut result = std::pin::pin!(engine.result::<gated_tally>(&id));
    // It cannot answer while the runner holds the workflow inside its activity.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut result)
            .await
            .is_err()
    );
    GATE.add_permits(1);
    assert_eq!(parked_code(at_once(result).await), "record.corrupt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_workflow_record_is_listed_as_parked_and_its_update_answers_at_once() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let ids = tallies(&engine, 3).await;
    let bad = ids[0].clone();
    storage
        .put(
            &record::workflow_key(record::Partition::ZERO, &bad),
            &[0x7f, 1, 2],
        )
        .unwrap();

    let page = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let listed = page.items.iter().find(|i| i.id == bad).unwrap();
    assert_eq!(listed.status, WorkflowStatus::Parked);
    assert_eq!(listed.park_reason.as_ref().unwrap().code, "record.corrupt");
    assert_eq!(
        engine
            .describe(&bad)
            .await
            .unwrap()
            .park_reason
            .unwrap()
            .code,
        "record.corrupt"
    );
    assert_eq!(
        parked_code(at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await),
        "record.corrupt"
    );
    others_finish(&engine, &ids, &bad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_record_without_an_outcome_answers_parked_instead_of_waiting_forever() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let done = engine.start::<echo>(7).await.unwrap();
    assert_eq!(done.result().await.unwrap().unwrap(), 7);
    let key = record::workflow_key(record::Partition::ZERO, done.id());
    let mut stored: WorkflowRecord =
        record::decode_record(&storage.get(&key).unwrap().unwrap()).unwrap();
    stored.outcome = None;
    storage
        .put(&key, &record::encode_record(&stored).unwrap())
        .unwrap();

    assert_eq!(
        parked_code(at_once(engine.result::<echo>(done.id())).await),
        "record.corrupt"
    );
    let d = engine.describe(done.id()).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    // Another workflow still runs to its end.
    let other = engine.start::<echo>(8).await.unwrap();
    assert_eq!(at_once(other.result()).await.unwrap().unwrap(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_to_a_workflow_of_an_unregistered_type_answers_parked_at_once() {
    let storage = MemoryStorage::new();
    let first = build(&storage).await;
    let id = tallies(&first, 1).await.remove(0);
    first.shutdown().await;
    // The same store, without `tally`.
    let engine = Engine::builder(storage.clone())
        .register::<echo>()
        .build()
        .await
        .unwrap();
    assert_eq!(
        parked_code(at_once(engine.update(&id, Add { n: 1 }, opts("one"))).await),
        "workflow.unknown_type"
    );
    assert_eq!(
        parked_code(at_once(engine.result::<tally>(&id)).await),
        "workflow.unknown_type"
    );
}

/// Queued for `relay`, and sent to others where nobody waits for it.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Poke {
    n: u64,
}

/// Answers one update, then waits for a `Poke` and returns its number.
#[workflow]
async fn relay(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.respond(reply, add.n);
    let poke = ctx.wait_for_signal::<Poke>().await;
    Ok(poke.n)
}

/// Answers one update, then races a `Poke` against an hour's sleep.
#[workflow]
async fn racer(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.respond(reply, add.n);
    let raced = ctx
        .race((
            ctx.wait_for_signal::<Poke>(),
            ctx.sleep(Duration::from_secs(3600)),
        ))
        .await;
    Ok(match raced {
        Race2::First(poke) => poke.n,
        Race2::Second(()) => 0,
    })
}

/// Asks for a review and reports who decided it.
#[workflow]
async fn approval(ctx: &mut WorkflowContext, title: String) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(ReviewRequest {
            title,
            reviewers: vec!["ana".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    Ok(match outcome {
        ReviewOutcome::Approved { by, .. } => format!("approved by {by}"),
        ReviewOutcome::Rejected { by, .. } => format!("rejected by {by}"),
        ReviewOutcome::TimedOut => "timed out".to_string(),
    })
}

/// Every way a record is damaged in this suite, named, from a valid record.
fn damaged(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    assert!(
        matches!(valid.first(), Some(&record::FORMAT_V1 | &record::FORMAT_V2)),
        "a valid record to damage"
    );
    let mut wrong_tag = valid.to_vec();
    wrong_tag[0] = 0x7f;
    let mut flipped = valid.to_vec();
    for byte in flipped.iter_mut().skip(1) {
        *byte ^= 0xff;
    }
    // bincode's varint marker for a u64, then 2^40: a length no allocation may trust, with
    // nothing after it.
    let oversized = [&valid[..1], &[0xfd, 0, 0, 0, 0, 0, 1, 0, 0][..]].concat();
    vec![
        ("a wrong tag", wrong_tag),
        ("nothing", Vec::new()),
        ("the tag alone", valid[..1].to_vec()),
        (
            "a truncated body",
            valid[..valid.len().div_ceil(2)].to_vec(),
        ),
        ("an oversized length", oversized),
        ("every body byte flipped", flipped),
    ]
}

/// [`damaged`] for a record that holds one integer and nothing else (`sigid/`, and `deadline/` of store format 2):
/// there, the oversized length prefix is a valid encoding of a large integer (2^40), so the
/// bytes decode as another record of the kind (a deadline in 2004, a signal id accepted then)
/// and no decoder can tell. Only a checksum over the record could; records of format v1 carry
/// none. That one damage is left out for such records.
fn damaged_one_integer(damage: Vec<(&'static str, Vec<u8>)>) -> Vec<(&'static str, Vec<u8>)> {
    damage
        .into_iter()
        .filter(|(what, _)| *what != "an oversized length")
        .collect()
}

/// A typed error about stored data: a record error, or the workflow parked for one.
fn assert_record_error<T: std::fmt::Debug>(what: &str, result: Result<T, EngineError>) {
    match result {
        // Parked for stored data: `record.corrupt`, or the decoder's own code.
        Err(EngineError::Parked { code, .. }) => assert!(
            code.starts_with("record.") || code.starts_with("codec."),
            "{what}: parked with {code}"
        ),
        // Its code is the decoder's (`record.*`, `codec.*`); its kind says an operator must look.
        Err(e @ EngineError::Record { .. }) => assert_eq!(e.kind(), ErrorKind::Internal, "{what}"),
        other => panic!("{what}: expected a typed record error, got {other:?}"),
    }
}

/// Builds an engine again on `storage` (the damaged record still there): it must start.
async fn rebuild(engine: Engine, storage: &MemoryStorage, what: &str) -> Engine {
    engine.shutdown().await;
    match Engine::builder(storage.clone())
        .register::<tally>()
        .register::<echo>()
        .register::<relay>()
        .register::<racer>()
        .register::<approval>()
        .register::<retried>()
        .register::<fragile>()
        .build()
        .await
    {
        Ok(engine) => engine,
        Err(e) => panic!("{what}: an engine does not build on the store: {e}"),
    }
}

/// The stored value at `key`, which must exist.
fn stored(storage: &MemoryStorage, key: &[u8]) -> Vec<u8> {
    storage
        .get(key)
        .unwrap()
        .unwrap_or_else(|| panic!("no record at {}", String::from_utf8_lossy(key)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_workflow_record_of_every_kind_parks_only_its_workflow() {
    let setup = |engine: Engine| -> Setup {
        Box::pin(async move {
            tallies(&engine, 1).await;
        })
    };
    for (what, bytes) in damage_of(
        &record::workflow_key(record::Partition::ZERO, "tally-0"),
        setup,
    )
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 3).await;
        let bad = ids[0].clone();
        storage
            .put(&record::workflow_key(record::Partition::ZERO, &bad), &bytes)
            .unwrap();

        let page = engine
            .list(&ListFilter::default(), 100, None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 3, "{what}");
        let listed = page.items.iter().find(|i| i.id == bad).unwrap();
        assert_eq!(listed.status, WorkflowStatus::Parked, "{what}");
        let described = engine.describe(&bad).await.unwrap();
        assert_eq!(described.status, WorkflowStatus::Parked, "{what}");
        assert_record_error(
            what,
            at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await,
        );
        assert_record_error(what, at_once(engine.result::<tally>(&bad)).await);
        others_finish(&engine, &ids, &bad).await;
        let engine = rebuild(engine, &storage, what).await;
        assert_record_error(what, at_once(engine.result::<tally>(&bad)).await);
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_attributes_record_of_every_kind_parks_only_its_workflow() {
    let setup = |engine: Engine| -> Setup {
        Box::pin(async move {
            tallies(&engine, 1).await;
        })
    };
    for (what, bytes) in damage_of(
        &record::attributes_key(record::Partition::ZERO, "tally-0"),
        setup,
    )
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 3).await;
        let bad = ids[0].clone();
        storage
            .put(
                &record::attributes_key(record::Partition::ZERO, &bad),
                &bytes,
            )
            .unwrap();
        let page = engine
            .list(&ListFilter::default(), 100, None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 3, "{what}");
        for item in &page.items {
            let expected = if item.id == bad {
                WorkflowStatus::Parked
            } else {
                WorkflowStatus::Waiting
            };
            assert_eq!(item.status, expected, "{what}: {}", item.id);
        }
        // Counted from the counters, as written (see the test above).
        let counts = engine
            .count(&ListFilter::default(), GroupBy::Status)
            .await
            .unwrap();
        assert_eq!(counts, vec![("Waiting".to_string(), 3)], "{what}");
        assert_record_error(
            what,
            at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await,
        );
        others_finish(&engine, &ids, &bad).await;
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_idempotency_record_refuses_only_the_start_with_its_key() {
    let keyed = |key: &str| StartOptions {
        idempotency_key: Some(key.to_string()),
        ..StartOptions::default()
    };
    for (what, bytes) in damage_of(&record::idempotency_key("victim"), |engine| {
        Box::pin(async move {
            let started = engine.start_with::<echo>(1, keyed("victim")).await.unwrap();
            started.result().await.unwrap().unwrap();
        })
    })
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let victim = engine.start_with::<echo>(1, keyed("victim")).await.unwrap();
        assert_eq!(victim.result().await.unwrap().unwrap(), 1);
        storage
            .put(&record::idempotency_key("victim"), &bytes)
            .unwrap();
        assert_record_error(
            what,
            at_once(engine.start_with::<echo>(1, keyed("victim")))
                .await
                .map(|h| h.id().to_string()),
        );
        // Other keys, and the workflow the key named, are unaffected.
        let other = engine.start_with::<echo>(2, keyed("other")).await.unwrap();
        assert_eq!(at_once(other.result()).await.unwrap().unwrap(), 2);
        assert_eq!(at_once(victim.result()).await.unwrap().unwrap(), 1);
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_signal_id_record_refuses_only_the_signal_with_that_id() {
    let key = |id: &str| record::signal_id_key(record::Partition::ZERO, id, "s1");
    for (what, bytes) in damaged_one_integer(
        damage_of(&key("tally-0"), |engine| {
            Box::pin(async move {
                let ids = tallies(&engine, 1).await;
                let sent = engine.signal_with(&ids[0], Poke { n: 1 }, SignalOptions::id("s1"));
                sent.await.unwrap();
            })
        })
        .await,
    ) {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 3).await;
        let bad = ids[1].clone();
        engine
            .signal_with(&bad, Poke { n: 1 }, SignalOptions::id("s1"))
            .await
            .unwrap();
        storage.put(&key(&bad), &bytes).unwrap();
        assert_record_error(
            what,
            at_once(engine.signal_with(&bad, Poke { n: 1 }, SignalOptions::id("s1"))).await,
        );
        at_once(engine.signal_with(&bad, Poke { n: 2 }, SignalOptions::id("s2")))
            .await
            .unwrap();
        // The workflow itself is fine: it finishes, as do the others.
        others_finish(&engine, &ids, "").await;
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_queued_signal_parks_only_the_workflow_that_waits_for_it() {
    for (what, bytes) in damage_of_first(
        &record::signal_queue_prefix(record::Partition::ZERO, "relay-0"),
        |engine| -> Setup {
            Box::pin(async move {
                relays(&engine, 1).await;
                engine.signal("relay-0", Poke { n: 1 }).await.unwrap();
            })
        },
    )
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = relays(&engine, 3).await;
        let bad = ids[0].clone();
        // Queued while the workflow waits for an update, then damaged.
        engine.signal(&bad, Poke { n: 7 }).await.unwrap();
        let queue = storage
            .scan_prefix(
                &record::signal_queue_prefix(record::Partition::ZERO, &bad),
                None,
                10,
            )
            .unwrap();
        assert_eq!(queue.len(), 1, "{what}");
        storage.put(&queue[0].0, &bytes).unwrap();
        // Updates travel through the same queue, behind the damaged signal, which might be
        // what the workflow waits for: the update is refused as the workflow parks (nothing
        // out of order is delivered), and the result says why.
        assert_record_error(
            what,
            at_once(engine.update(&bad, Add { n: 1 }, opts("go"))).await,
        );
        assert_record_error(what, at_once(engine.result::<relay>(&bad)).await);
        assert_eq!(
            engine.describe(&bad).await.unwrap().status,
            WorkflowStatus::Parked,
            "{what}"
        );
        for id in ids.iter().filter(|id| **id != bad) {
            at_once(engine.update(id, Add { n: 1 }, opts("go")))
                .await
                .unwrap();
            engine.signal(id, Poke { n: 5 }).await.unwrap();
            assert_eq!(
                at_once(engine.result::<relay>(id)).await.unwrap().unwrap(),
                5
            );
        }
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_queued_signal_parks_only_the_workflow_racing_for_it() {
    let setup = |engine: Engine| -> Setup {
        Box::pin(async move {
            relays(&engine, 1).await;
            engine.signal("relay-0", Poke { n: 1 }).await.unwrap();
        })
    };
    for (what, bytes) in damage_of_first(
        &record::signal_queue_prefix(record::Partition::ZERO, "relay-0"),
        setup,
    )
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = racers(&engine, 3).await;
        let bad = ids[2].clone();
        // A damaged signal queued ahead of everything this engine sends (epoch 0, number 0),
        // then a good one, which wakes the racer: it must not skip the damaged one.
        storage
            .put(
                &record::signal_key(record::Partition::ZERO, &bad, 0, 0),
                &bytes,
            )
            .unwrap();
        engine.signal(&bad, Poke { n: 7 }).await.unwrap();
        assert_record_error(what, at_once(engine.result::<racer>(&bad)).await);
        assert_eq!(
            engine.describe(&bad).await.unwrap().status,
            WorkflowStatus::Parked,
            "{what}"
        );
        for id in ids.iter().filter(|id| **id != bad) {
            engine.signal(id, Poke { n: 5 }).await.unwrap();
            assert_eq!(
                at_once(engine.result::<racer>(id)).await.unwrap().unwrap(),
                5
            );
        }
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

/// Starts `n` racers and waits until each races (its update answered).
async fn racers(engine: &Engine, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("racer-{i}");
        let options = StartOptions {
            id: Some(id.clone()),
            ..StartOptions::default()
        };
        engine.start_with::<racer>((), options).await.unwrap();
        wait_for_status(engine, &id, WorkflowStatus::Waiting).await;
        at_once(engine.update(&id, Add { n: 1 }, opts("go")))
            .await
            .unwrap();
        wait_for_status(engine, &id, WorkflowStatus::Waiting).await;
        ids.push(id);
    }
    ids
}

/// Every way the lifecycle section of a workflow record (format `0x02`) is damaged here: its
/// record's bytes with the section starting at `at`.
fn damaged_lifecycle(valid: &[u8], at: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut unknown_version = valid.to_vec();
    unknown_version[at] = 0x09;
    let mut bad_bool = valid.to_vec();
    // The section: version, `cancel_requested_ms` (None), `cancelled` (a bool).
    assert_eq!(&valid[at..at + 3], &[0, 0, 0], "an empty cancellation");
    bad_bool[at + 2] = 0x02;
    vec![
        ("an unknown section version", unknown_version),
        ("a truncated section", valid[..at + 4].to_vec()),
        ("a bool that is not one", bad_bool),
        ("bytes after the section", [valid, &[0x01]].concat()),
        ("no section", valid[..at].to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_lifecycle_section_parks_only_its_workflow() {
    let timed = |id: &str| StartOptions {
        id: Some(id.to_string()),
        execution_timeout: Some(Duration::from_secs(3600)),
        ..StartOptions::default()
    };
    let (valid, at) = {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        engine.start_with::<tally>(0, timed("timed")).await.unwrap();
        wait_for_status(&engine, "timed", WorkflowStatus::Waiting).await;
        let valid = stored(
            &storage,
            &record::workflow_key(record::Partition::ZERO, "timed"),
        );
        engine.shutdown().await;
        let mut decoded: record::WorkflowRecord = record::decode_record(&valid).unwrap();
        assert!(decoded.lifecycle.deadline_ms.is_some(), "a deadline kept");
        // The section is the record's tail: it starts where the same record with an empty
        // section (seven bytes) would end it.
        decoded.lifecycle = record::Lifecycle::default();
        let at = record::encode_record(&decoded).unwrap().len() - 7;
        (valid, at)
    };
    for (what, bytes) in damaged_lifecycle(&valid, at) {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 2).await;
        engine.start_with::<tally>(0, timed("timed")).await.unwrap();
        wait_for_status(&engine, "timed", WorkflowStatus::Waiting).await;
        storage
            .put(
                &record::workflow_key(record::Partition::ZERO, "timed"),
                &bytes,
            )
            .unwrap();
        // Nothing can tell its deadline or whether it was cancelled: the workflow is parked
        // (its bytes kept as stored), calls about it get a typed error, the others run on.
        let described = engine.describe("timed").await.unwrap();
        assert_eq!(described.status, WorkflowStatus::Parked, "{what}");
        assert_record_error(
            what,
            at_once(engine.update("timed", Add { n: 1 }, opts("one"))).await,
        );
        assert_record_error(what, at_once(engine.cancel("timed")).await);
        assert_record_error(what, at_once(engine.result::<tally>("timed")).await);
        others_finish(&engine, &ids, "").await;
        assert_eq!(
            stored(
                &storage,
                &record::workflow_key(record::Partition::ZERO, "timed")
            ),
            bytes
        );
        // The next build starts, and reports it.
        let engine = rebuild(engine, &storage, what).await;
        assert_eq!(engine.recovery_report().unreadable, 1, "{what}");
        assert_record_error(what, at_once(engine.result::<tally>("timed")).await);
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_review_record_refuses_only_calls_about_its_review() {
    for (what, bytes) in damage_of(&record::review_key("review-0"), |engine| {
        Box::pin(async move {
            reviews(&engine, 1).await;
        })
    })
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = reviews(&engine, 3).await;
        let bad = ids[1].clone();
        storage.put(&record::review_key(&bad), &bytes).unwrap();
        // The others are still listed, and decided.
        let pending = engine
            .pending_reviews(&ReviewFilter::default(), 100, None)
            .await
            .unwrap_or_else(|e| panic!("{what}: listing failed for every review: {e}"))
            .items;
        let listed: Vec<_> = pending.iter().map(|r| r.workflow_id.clone()).collect();
        assert_eq!(listed, ["review-0", "review-2"], "{what}");
        assert_record_error(what, at_once(engine.decide_review(&bad, approve())).await);
        for id in ids.iter().filter(|id| **id != bad) {
            at_once(engine.decide_review(id, approve())).await.unwrap();
            assert_eq!(
                at_once(engine.result::<approval>(id))
                    .await
                    .unwrap()
                    .unwrap(),
                "approved by ana"
            );
        }
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_update_response_refuses_only_the_repeat_of_that_update() {
    let key = |id: &str| record::update_response_key(record::Partition::ZERO, id, "one");
    for (what, bytes) in damage_of(&key("tally-0"), |engine| {
        Box::pin(async move {
            let ids = tallies(&engine, 1).await;
            engine
                .update(&ids[0], Add { n: 1 }, opts("one"))
                .await
                .unwrap();
        })
    })
    .await
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 3).await;
        let bad = ids[0].clone();
        at_once(engine.update(&bad, Add { n: 1 }, opts("one")))
            .await
            .unwrap();
        storage.put(&key(&bad), &bytes).unwrap();
        assert_record_error(
            what,
            at_once(engine.update(&bad, Add { n: 1 }, opts("one"))).await,
        );
        // A new update of the same workflow goes on.
        assert_eq!(
            at_once(engine.update(&bad, Add { n: 0 }, opts("end")))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            at_once(engine.result::<tally>(&bad))
                .await
                .unwrap()
                .unwrap(),
            1
        );
        others_finish(&engine, &ids, &bad).await;
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}

/// What a test does on a fresh engine to have the engine write the record it damages.
type Setup = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The damaged versions of the record at `key`, as `setup` leaves it on a fresh engine.
async fn damage_of(
    key: &[u8],
    setup: impl FnOnce(Engine) -> Setup,
) -> Vec<(&'static str, Vec<u8>)> {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    setup(engine.clone()).await;
    let valid = stored(&storage, key);
    engine.shutdown().await;
    damaged(&valid)
}

/// [`damage_of`] for the first record under `prefix`.
async fn damage_of_first(
    prefix: &[u8],
    setup: impl FnOnce(Engine) -> Setup,
) -> Vec<(&'static str, Vec<u8>)> {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    setup(engine.clone()).await;
    let first = storage.scan_prefix(prefix, None, 1).unwrap();
    engine.shutdown().await;
    damaged(&first[0].1)
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

/// Starts `n` relays and waits until each waits for its update.
async fn relays(engine: &Engine, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("relay-{i}");
        let options = StartOptions {
            id: Some(id.clone()),
            ..StartOptions::default()
        };
        engine.start_with::<relay>((), options).await.unwrap();
        wait_for_status(engine, &id, WorkflowStatus::Waiting).await;
        ids.push(id);
    }
    ids
}

/// Starts `n` approvals and waits until each review is pending.
async fn reviews(engine: &Engine, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("review-{i}");
        let options = StartOptions {
            id: Some(id.clone()),
            ..StartOptions::default()
        };
        engine
            .start_with::<approval>(format!("change {i}"), options)
            .await
            .unwrap();
        wait_for_status(engine, &id, WorkflowStatus::Waiting).await;
        ids.push(id);
    }
    ids
}

fn approve() -> Decision {
    Decision::Approved {
        by: "ana".to_string(),
        comment: String::new(),
    }
}

/// Counts scans of the schedules' fire-time index: one per scheduler pass.
#[derive(Clone)]
struct CountingStorage {
    inner: MemoryStorage,
    due_scans: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Storage for CountingStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, weft_runtime::storage::StorageError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<weft_runtime::storage::Entry>, weft_runtime::storage::StorageError> {
        if let std::ops::Bound::Included(start) = start
            && start.starts_with(b"schedx/")
        {
            self.due_scans
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.scan(start, end, limit)
    }

    fn apply_if(
        &self,
        conditions: &[weft_runtime::storage::Condition],
        batch: &weft_runtime::storage::Batch,
    ) -> Result<(), weft_runtime::storage::StorageError> {
        self.inner.apply_if(conditions, batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_schedule_record_refuses_only_calls_about_its_schedule() {
    use weft_runtime::engine::VirtualClock;
    use weft_runtime::{OverlapPolicy, ScheduleError, ScheduleSpec, Trigger};
    let minute = Duration::from_secs(60);
    let spec = || {
        ScheduleSpec::new("echo", serde_json::json!(7), Trigger::every(minute))
            .overlap(OverlapPolicy::AllowAll)
    };
    let valid = {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        engine.create_schedule("bad", spec()).await.unwrap();
        let valid = stored(&storage, b"sched/bad");
        engine.shutdown().await;
        valid
    };
    for (what, bytes) in damaged(&valid) {
        let clock = VirtualClock::default();
        let memory = MemoryStorage::new();
        let storage = CountingStorage {
            inner: memory.clone(),
            due_scans: Default::default(),
        };
        let engine = Engine::builder(storage.clone())
            .register::<echo>()
            .clock(std::sync::Arc::new(clock.clone()))
            .build()
            .await
            .unwrap();
        engine.create_schedule("good", spec()).await.unwrap();
        engine.create_schedule("bad", spec()).await.unwrap();
        memory.put(b"sched/bad", &bytes).unwrap();

        let listed = engine
            .list_schedules(100, None)
            .await
            .unwrap_or_else(|e| panic!("{what}: listing failed for every schedule: {e}"))
            .items;
        let ids: Vec<_> = listed.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["good"], "{what}");
        match engine.describe_schedule("bad", 1).await {
            Err(ScheduleError::Engine(e)) => assert_eq!(e.kind(), ErrorKind::Internal, "{what}"),
            other => panic!("{what}: expected a record error, got {other:?}"),
        }
        // The good schedule fires; the damaged one does not take the scheduler with it.
        clock.advance(minute);
        let fired = format!("good@{}", "2030-01-01T00:01:00Z");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let result = loop {
            match engine.result::<echo>(&fired).await {
                Ok(result) => break result,
                Err(EngineError::NotFound { .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(e) => panic!("{what}: the good schedule did not fire: {e}"),
            }
        };
        assert_eq!(result.unwrap(), 7, "{what}");
        // And the scheduler does not spin on the damaged one: passes stay few while nothing
        // changes.
        let before = storage.due_scans.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let passes = storage.due_scans.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(passes <= 4, "{what}: {passes} scheduler passes in 200 ms");
        engine.shutdown().await;
    }
}

#[allow(non_camel_case_types)] // named like the `#[activity]` structs
struct second_hangs;

impl Activity for second_hangs {
    type Input = ();
    type Output = u32;
    const NAME: &'static str = "corruption.second_hangs";

    fn options(&self) -> ActivityOptions {
        ActivityOptions {
            retry: RetryPolicy {
                max_attempts: 5,
                initial_backoff: Duration::from_millis(1),
                backoff_percent: 100,
                max_backoff: Duration::from_millis(1),
            },
            attempt_timeout: None,
        }
    }

    /// The first attempt fails; the second hangs, so its attempt record stays stored.
    async fn execute(&self, ctx: ActivityContext, _input: ()) -> Result<u32, ActivityError> {
        if ctx.attempt() < 2 {
            return Err(ActivityError::failed("not yet"));
        }
        std::future::pending::<()>().await;
        Ok(ctx.attempt())
    }
}

/// Runs `second_hangs`.
#[workflow]
async fn retried(ctx: &mut WorkflowContext, _input: ()) -> Result<u32, WorkflowError> {
    let attempt = ctx.run(second_hangs, ()).await?;
    Ok(attempt)
}

/// Starts `retried` as `id` and waits until its second attempt is stored.
async fn retried_once(engine: &Engine, storage: &MemoryStorage, id: &str) {
    let options = StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    };
    engine.start_with::<retried>((), options).await.unwrap();
    for _ in 0..10_000 {
        if storage
            .get(&record::attempt_key(record::Partition::ZERO, id, None))
            .unwrap()
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{id}: no attempt record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_attempt_record_parks_only_its_workflow() {
    let valid = {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        retried_once(&engine, &storage, "retried").await;
        let valid = stored(
            &storage,
            &record::attempt_key(record::Partition::ZERO, "retried", None),
        );
        engine.shutdown().await;
        valid
    };
    for (what, bytes) in damaged(&valid) {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 2).await;
        retried_once(&engine, &storage, "retried").await;
        engine.shutdown().await;
        storage
            .put(
                &record::attempt_key(record::Partition::ZERO, "retried", None),
                &bytes,
            )
            .unwrap();
        // The engine built again resumes it and reads the attempt it was at.
        let engine = build(&storage).await;
        assert_record_error(what, at_once(engine.result::<retried>("retried")).await);
        assert_eq!(
            engine.describe("retried").await.unwrap().status,
            WorkflowStatus::Parked,
            "{what}"
        );
        others_finish(&engine, &ids, "").await;
        engine.shutdown().await;
    }
}

/// Set while `fragile` is to panic after its activity.
static FRAGILE_PANICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Returns one.
#[weft_runtime::activity]
async fn one(_input: ()) -> Result<u64, ActivityError> {
    Ok(1)
}

/// Runs `one`, then panics while `FRAGILE_PANICS` is set: it parks, keeping the activity's
/// result (`actres/`) so a retry does not run it again.
#[workflow]
async fn fragile(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let got = ctx.run(one, ()).await?;
    if FRAGILE_PANICS.load(std::sync::atomic::Ordering::SeqCst) {
        panic!("fragile panics after its activity");
    }
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_kept_activity_result_parks_only_its_workflow() {
    let parked_fragile = |engine: Engine| async move {
        let options = StartOptions {
            id: Some("fragile".to_string()),
            ..StartOptions::default()
        };
        let handle = engine.start_with::<fragile>((), options).await.unwrap();
        match at_once(handle.result()).await {
            Err(EngineError::Parked { code, .. }) => assert_eq!(code, "workflow.panicked"),
            other => panic!("expected fragile to park, got {other:?}"),
        }
    };
    let valid = {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        parked_fragile(engine.clone()).await;
        let valid = stored(
            &storage,
            &record::activity_result_key(record::Partition::ZERO, "fragile"),
        );
        engine.shutdown().await;
        valid
    };
    for (what, bytes) in damaged(&valid) {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 2).await;
        parked_fragile(engine.clone()).await;
        storage
            .put(
                &record::activity_result_key(record::Partition::ZERO, "fragile"),
                &bytes,
            )
            .unwrap();
        // Retried, it would resume with the kept result, which is unreadable: running the
        // activity again could repeat its side effect, so it parks again, saying why.
        engine.retry("fragile").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match engine.result::<fragile>("fragile").await {
                Err(EngineError::Parked { code, .. }) if code == "workflow.panicked" => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{what}: still parked as panicked, so the retry ran the activity again \
                         instead of finding its kept result unreadable"
                    );
                    tokio::task::yield_now().await;
                }
                other => {
                    assert_record_error(what, other);
                    break;
                }
            }
        }
        others_finish(&engine, &ids, "").await;
        engine.shutdown().await;
    }
}

/// Finishes an `echo` of `n`.
async fn echoed(engine: &Engine, n: u64) {
    let handle = engine.start::<echo>(n).await.unwrap();
    assert_eq!(at_once(handle.result()).await.unwrap().unwrap(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_counter_refuses_only_the_count_and_the_next_finish_rewrites_it() {
    let key = record::counter_key("Completed", "echo");
    let damage = damage_of(&key, |engine| {
        Box::pin(async move {
            echoed(&engine, 1).await;
        })
    })
    .await;
    // A counter is eight bytes after its tag: flipped, they are another count, which no
    // decoder can tell (see `damaged_one_integer`).
    for (what, bytes) in damage
        .into_iter()
        .filter(|(what, _)| *what != "every body byte flipped")
    {
        let storage = MemoryStorage::new();
        let engine = build(&storage).await;
        let ids = tallies(&engine, 2).await;
        echoed(&engine, 1).await;
        storage.put(&key, &bytes).unwrap();
        // Counts of finished workflows come from the counters: that call alone is refused.
        assert_record_error(
            what,
            engine.count(&ListFilter::default(), GroupBy::Status).await,
        );
        let listed = engine.list(&ListFilter::default(), 10, None).await.unwrap();
        assert_eq!(listed.items.len(), 3, "{what}");
        others_finish(&engine, &ids, "").await;
        // The writer never stops on it: the next finish of the kind writes the counter again.
        echoed(&engine, 2).await;
        let counts = engine
            .count(&ListFilter::default(), GroupBy::Status)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            counts
                .iter()
                .any(|(status, n)| status == "Completed" && *n >= 3),
            "{what}: {counts:?}"
        );
        rebuild(engine, &storage, what).await.shutdown().await;
    }
}
