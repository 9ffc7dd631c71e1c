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
    let a = ctx.run(add_one, n + fetched).await?;
    Ok(a)
}

fn main() {}
