use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (index, first): (usize, Result<u64, ActivityError>) = ctx
        .race(vec![ctx.run(add_one, n), ctx.run(add_one, n + 1)])
        .await;
    Ok(first? + index as u64)
}

fn main() {}
