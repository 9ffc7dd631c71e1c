use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<usize, WorkflowError> {
    let results: Vec<Result<u64, ActivityError>> = ctx
        .all(ns.iter().map(|n| ctx.run(add_one, *n).await).collect::<Vec<_>>())
        .await;
    Ok(results.len())
}

fn main() {}
