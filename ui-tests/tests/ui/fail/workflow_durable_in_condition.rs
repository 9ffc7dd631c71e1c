use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    if n > 1 && ctx.run(add_one, n).await? > 5 {
        return Ok(1);
    }
    Ok(n)
}

fn main() {}
