use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let a = ctx.child(add_one, n).await?;
    Ok(a)
}

fn main() {}
