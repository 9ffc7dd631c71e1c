use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

fn count() -> u64 {
    3
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let limit = count();
    let mut sum: u64 = n;
    for i in 0..limit {
        sum += ctx.run(add_one, i).await?;
    }
    Ok(sum)
}

fn main() {}
