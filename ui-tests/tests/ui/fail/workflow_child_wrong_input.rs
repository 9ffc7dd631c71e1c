use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn doubled(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let plus = ctx.run(add_one, n).await?;
    Ok(plus * 2)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, name: String) -> Result<u64, WorkflowError> {
    let a = ctx.child(doubled, name).await?;
    Ok(a)
}

fn main() {}
