use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, items: Vec<u64>) -> Result<u64, WorkflowError> {
    let doubled: Vec<u64> = items.iter().map(|n| ctx.run(add_one, *n).await.unwrap()).collect();
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(doubled.len() as u64)
}

fn main() {}
