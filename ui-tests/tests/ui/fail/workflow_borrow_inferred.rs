use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, items: Vec<u64>) -> Result<u64, WorkflowError> {
    let first = &items[0];
    let a = ctx.run(add_one, 1).await?;
    Ok(a + *first)
}

fn main() {}
