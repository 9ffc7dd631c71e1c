use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

async fn fetch() -> u64 {
    7
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let fetched = fetch().await;
    let first = &n;
    ctx.sleep(Duration::from_secs(1)).await;
    let pending = ctx.run(add_one, fetched);
    Ok(*first)
}

// Uses of the workflow elsewhere still type-check: no cascade of unrelated errors.
fn uses() -> &'static str {
    <wf as weft_runtime::Workflow>::NAME
}

fn main() {}
