use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[derive(Clone, Serialize, Deserialize)]
struct Document {
    id: u64,
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

// The item comes from a function: the pattern can name its type.
#[workflow]
async fn from_function(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut sum: u64 = n;
    while let Some(doc) = next_document(sum) {
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    Ok(sum)
}

// The item comes from a queue whose type is not written: annotating the queue fixes both.
#[workflow]
async fn from_queue(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut queue = load_queue(n);
    let mut sum: u64 = 0;
    while let Some(doc) = queue.pop_front() {
        sum += ctx.run(index, doc.clone()).await?;
        sum += ctx.run(index, doc).await?;
    }
    Ok(sum)
}

fn main() {}
