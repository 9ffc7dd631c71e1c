//! Workflows written as a user ports them, with no annotation the macro can infer: every binding
//! below is held across a durable await, so the workflow compiles only because its type is
//! known from what is written. Each runs to completion on the engine.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{ActivityError, Engine, Saga, WorkflowContext, WorkflowError, activity, workflow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub seen: u64,
}

impl Tally {
    fn new() -> Self {
        Tally::default()
    }
}

pub mod billing {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct Invoice {
        pub total: u64,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    Indexing,
    Done { at: u64 },
    Failed(u64),
}

#[activity]
async fn list_documents(n: u64) -> Result<Vec<Document>, ActivityError> {
    Ok((1..=n).map(|id| Document { id }).collect())
}

#[activity]
async fn index(doc: Document) -> Result<u64, ActivityError> {
    Ok(doc.id)
}

#[activity]
async fn release(id: u64) -> Result<(), ActivityError> {
    assert!(id > 0);
    Ok(())
}

/// `while let Some(doc) = queue.pop_front()` over an annotated `VecDeque`, and the other ways of
/// taking one item out of a known collection.
#[workflow]
async fn queue_drain(ctx: &mut WorkflowContext, docs: Vec<Document>) -> Result<u64, WorkflowError> {
    let mut queue: VecDeque<Document> = docs.clone().into();
    let mut sum: u64 = 0;
    while let Some(doc) = queue.pop_front() {
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    let mut stack: Vec<Document> = docs.clone();
    if let Some(top) = stack.pop() {
        ctx.sleep(Duration::from_millis(1)).await;
        sum += top.id;
    }
    let last = docs.clone().pop().unwrap();
    let first = docs.iter().next().cloned();
    let head = docs.first().cloned().expect("not empty");
    let owned = docs.clone().into_iter().next();
    let at = docs[0].clone();
    ctx.sleep(Duration::from_millis(1)).await;
    sum += last.id + first.map_or(0, |d| d.id) + head.id + owned.map_or(0, |d| d.id) + at.id;
    Ok(sum)
}

/// A suspending `for` over an activity's `Vec` output, an annotated `VecDeque` and an array.
#[workflow]
async fn for_outputs(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let docs = ctx.run(list_documents, n).await?;
    let mut sum: u64 = 0;
    for doc in docs {
        sum += ctx.run(index, doc.clone()).await?;
        sum += doc.id;
    }
    for doc in ctx.run(list_documents, n).await? {
        ctx.sleep(Duration::from_millis(1)).await;
        sum += doc.id;
    }
    let again: VecDeque<Document> = VecDeque::from(vec![Document { id: 100 }]);
    for doc in again {
        ctx.sleep(Duration::from_millis(1)).await;
        sum += doc.id;
    }
    let ids: [u64; 2] = [1000, 2000];
    for id in ids {
        ctx.sleep(Duration::from_millis(1)).await;
        sum += id;
    }
    for doc in [Document { id: 7 }, Document { id: 8 }].into_iter() {
        ctx.sleep(Duration::from_millis(1)).await;
        sum += doc.id;
    }
    Ok(sum)
}

/// `Type::new()`, `Type::default()`, `Type::with_capacity(..)`, struct literals and variants.
#[workflow]
async fn constructors(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut saga = Saga::new();
    saga.add(release, n);
    let mut tally = Tally::new();
    let defaults = Tally::default();
    let name = String::with_capacity(8);
    let invoice = billing::Invoice { total: n };
    let mut phase = Phase::Indexing;
    let failed = Phase::Failed(n);
    let buffer = Vec::<u64>::with_capacity(4);
    ctx.sleep(Duration::from_millis(1)).await;
    tally.seen += 1;
    if phase == Phase::Indexing {
        phase = Phase::Done { at: n };
    }
    while let Some(step) = saga.pop() {
        ctx.compensate(step).await?;
    }
    let done = matches!(phase, Phase::Done { .. }) && failed != phase;
    Ok(tally.seen + defaults.seen + name.len() as u64 + invoice.total + u64::from(done) + buffer.len() as u64)
}

/// `vec![..]` of a known element type.
#[workflow]
async fn vectors(ctx: &mut WorkflowContext, doc: Document) -> Result<u64, WorkflowError> {
    let docs = vec![doc.clone(), Document { id: 2 }];
    let names = vec![String::from("a"), "b".to_string()];
    let flags = vec![true; 3];
    let counts = vec![1u64, 2, 3];
    let pair = [doc.id, 5u64];
    ctx.sleep(Duration::from_millis(1)).await;
    let total = docs.iter().map(|d| d.id).sum::<u64>() + counts.iter().sum::<u64>();
    Ok(total + names.len() as u64 + flags.len() as u64 + pair[1])
}

/// The value of `ctx.all(..)` and `ctx.race(..)` without an annotation, over a tuple and a `Vec`,
/// used right away (rustc's E0282 without the inference) and held across an await.
#[workflow]
async fn groups(ctx: &mut WorkflowContext, docs: Vec<Document>) -> Result<u64, WorkflowError> {
    let each = ctx
        .all(docs.iter().map(|d| ctx.run(index, d.clone())).collect::<Vec<_>>())
        .await;
    let used_now: u64 = each.iter().filter_map(|r| r.as_ref().ok()).sum();
    let held = ctx
        .all(docs.iter().map(|d| ctx.run(index, d.clone())).collect::<Vec<_>>())
        .await;
    let pair = ctx
        .all((ctx.run(index, Document { id: 1 }), ctx.sleep(Duration::from_millis(1))))
        .await;
    let first = ctx
        .race(docs.iter().map(|d| ctx.run(index, d.clone())).collect::<Vec<_>>())
        .await;
    let listed = ctx
        .all(Vec::from([
            ctx.run(index, Document { id: 10 }),
            ctx.run(index, Document { id: 20 }),
        ]))
        .await;
    ctx.sleep(Duration::from_millis(1)).await;
    let held_sum: u64 = held.into_iter().map(|r| r.unwrap_or(0)).sum();
    let listed_sum: u64 = listed.into_iter().map(|r| r.unwrap_or(0)).sum();
    Ok(used_now + held_sum + pair.0.unwrap_or(0) + first.1.unwrap_or(0) + listed_sum)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let engine = Engine::builder(MemoryStorage::new())
            .register::<queue_drain>()
            .register::<for_outputs>()
            .register::<constructors>()
            .register::<vectors>()
            .register::<groups>()
            .build()
            .await
            .expect("the engine builds");
        let docs = vec![Document { id: 1 }, Document { id: 2 }];
        let q = engine.start::<queue_drain>(docs.clone()).await.unwrap();
        // 2 * (1 + 2) from the queue, 2 from the stack, then 2 + 1 + 1 + 1 + 1.
        assert_eq!(q.result().await.unwrap().unwrap(), 6 + 2 + 6);
        let f = engine.start::<for_outputs>(2).await.unwrap();
        assert_eq!(f.result().await.unwrap().unwrap(), 6 + 3 + 100 + 3000 + 15);
        let c = engine.start::<constructors>(5).await.unwrap();
        assert_eq!(c.result().await.unwrap().unwrap(), 1 + 5 + 1);
        let v = engine.start::<vectors>(Document { id: 1 }).await.unwrap();
        assert_eq!(v.result().await.unwrap().unwrap(), 3 + 6 + 2 + 3 + 5);
        let g = engine.start::<groups>(docs).await.unwrap();
        let won = g.result().await.unwrap().unwrap();
        assert!(won == 3 + 3 + 1 + 1 + 30 || won == 3 + 3 + 1 + 2 + 30, "{won}");
        engine.shutdown().await;
    });
}
