use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (a, ()) = ctx
        .all((ctx.run(add_one, n).await, ctx.sleep(Duration::from_secs(1))))
        .await;
    Ok(a?)
}

fn main() {}
