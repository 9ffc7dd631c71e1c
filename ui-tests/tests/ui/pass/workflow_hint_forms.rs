//! Every fix the "cannot tell the type" errors suggest, applied as written in the message, to the
//! workflows of `fail/workflow_hint_while_let.rs` and `fail/workflow_hint_patterns.rs`: each
//! form compiles (rustc and the macro both read the type from it) and runs.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{ActivityError, Engine, WorkflowContext, WorkflowError, activity, workflow};

#[derive(Clone, Serialize, Deserialize)]
struct Document {
    id: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    lines: Vec<u64>,
}

#[activity]
async fn index(doc: Document) -> Result<u64, ActivityError> {
    Ok(doc.id)
}

fn next_document(after: u64) -> Option<Document> {
    (after < 10).then(|| Document { id: after + 1 })
}

fn load_queue(n: u64) -> VecDeque<Document> {
    (1..=n).map(|id| Document { id }).collect()
}

fn find(n: u64) -> Option<Order> {
    Some(Order { id: n, lines: vec![n] })
}

fn lookup(n: u64) -> Result<u64, String> {
    Ok(n)
}

fn split(n: u64) -> (u64, u64) {
    (n, n + 1)
}

/// `while let Some::<Type>(doc) = ..`
#[workflow]
async fn turbofish_while_let(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut sum: u64 = n;
    while let Some::<Document>(doc) = next_document(sum) {
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    Ok(sum)
}

/// `let doc: Type = doc;` as the first statement of the loop body.
#[workflow]
async fn rebound_while_let(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut sum: u64 = n;
    while let Some(doc) = next_document(sum) {
        let doc: Document = doc;
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    Ok(sum)
}

/// `let mut queue: VecDeque<Type> = ..`: the queue's annotation types the item too.
#[workflow]
async fn annotated_queue(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut queue: VecDeque<Document> = load_queue(n);
    let mut sum: u64 = 0;
    while let Some(doc) = queue.pop_front() {
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    Ok(sum)
}

/// `let Some(order): Option<Type> = .. else { .. }`
#[workflow]
async fn let_else(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let Some(order): Option<Order> = find(n) else {
        return Ok(0);
    };
    ctx.sleep(Duration::from_millis(1)).await;
    Ok(order.id)
}

/// `if let Ok::<Type, _>(found) = ..`, and `let found: Type = found;` in the block.
#[workflow]
async fn if_let(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    if let Ok::<u64, _>(found) = lookup(n) {
        ctx.sleep(Duration::from_millis(1)).await;
        if let Ok(again) = lookup(found) {
            let again: u64 = again;
            ctx.sleep(Duration::from_millis(1)).await;
            return Ok(found + again);
        }
    }
    Ok(0)
}

/// `Some::<Type>(order) => ..`, and `let order: Type = order;` in the arm.
#[workflow]
async fn match_arm(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let first: u64 = match find(n) {
        Some::<Order>(order) => {
            ctx.sleep(Duration::from_millis(1)).await;
            order.id
        }
        None => 0,
    };
    match find(first) {
        Some(order) => {
            let order: Order = order;
            ctx.sleep(Duration::from_millis(1)).await;
            Ok(first + order.id)
        }
        None => Ok(0),
    }
}

/// `let (low, high): (Type, _) = ..`, `let (low, high): (_, Type) = ..` merged, and
/// `let id: Type = id;` after a struct pattern.
#[workflow]
async fn destructured(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (low, high): (u64, u64) = split(n);
    let (only_low, unused): (u64, _) = split(n);
    assert!(unused > only_low);
    let Order { id, lines } = find(n).unwrap();
    let id: u64 = id;
    let lines: Vec<u64> = lines;
    ctx.sleep(Duration::from_millis(1)).await;
    Ok(low + high + only_low + id + lines.len() as u64)
}

fn refuse(n: u64) -> Result<u64, String> {
    Err(format!("no {n}"))
}

/// `if let Err::<_, Type>(e) = ..`
#[workflow]
async fn err_turbofish(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    if let Err::<_, String>(reason) = refuse(n) {
        ctx.sleep(Duration::from_millis(1)).await;
        return Ok(reason.len() as u64);
    }
    Ok(0)
}

/// `let id: Type = id;` as the first statement of a `for` body.
#[workflow]
async fn for_pattern(ctx: &mut WorkflowContext, orders: Vec<Order>) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    for Order { id, .. } in orders {
        let id: u64 = id;
        ctx.sleep(Duration::from_millis(1)).await;
        sum += id;
    }
    Ok(sum)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let engine = Engine::builder(MemoryStorage::new())
            .register::<turbofish_while_let>()
            .register::<rebound_while_let>()
            .register::<annotated_queue>()
            .register::<let_else>()
            .register::<if_let>()
            .register::<match_arm>()
            .register::<destructured>()
            .register::<for_pattern>()
            .register::<err_turbofish>()
            .build()
            .await
            .expect("the engine builds");
        // 0 -> 2 (index(1) twice) -> 8 (index(3) twice) -> 26.
        let t = engine.start::<turbofish_while_let>(0).await.unwrap();
        assert_eq!(t.result().await.unwrap().unwrap(), 26);
        let r = engine.start::<rebound_while_let>(0).await.unwrap();
        assert_eq!(r.result().await.unwrap().unwrap(), 26);
        let q = engine.start::<annotated_queue>(3).await.unwrap();
        assert_eq!(q.result().await.unwrap().unwrap(), 12);
        let e = engine.start::<let_else>(4).await.unwrap();
        assert_eq!(e.result().await.unwrap().unwrap(), 4);
        let i = engine.start::<if_let>(4).await.unwrap();
        assert_eq!(i.result().await.unwrap().unwrap(), 8);
        let m = engine.start::<match_arm>(4).await.unwrap();
        assert_eq!(m.result().await.unwrap().unwrap(), 8);
        let d = engine.start::<destructured>(4).await.unwrap();
        assert_eq!(d.result().await.unwrap().unwrap(), 4 + 5 + 4 + 4 + 1);
        let orders = vec![find(3).unwrap(), find(4).unwrap()];
        let f = engine.start::<for_pattern>(orders).await.unwrap();
        assert_eq!(f.result().await.unwrap().unwrap(), 7);
        let r = engine.start::<err_turbofish>(12).await.unwrap();
        assert_eq!(r.result().await.unwrap().unwrap(), "no 12".len() as u64);
        engine.shutdown().await;
    });
}
