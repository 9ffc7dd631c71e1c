use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

async fn add_twice(ctx: &mut WorkflowContext, n: u64) -> u64 {
    let _ = (ctx, n);
    n + 2
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let twice = add_twice(ctx, n).await;
    let a = ctx.run(add_one, twice).await?;
    Ok(a)
}

fn main() {}
