use std::time::Duration;
use weft_runtime::{ActivityError, Durable, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

// The operations are built outside the workflow body, where the macro cannot see them.
fn additions(ctx: &WorkflowContext, ns: &[u64]) -> Vec<Durable<Result<u64, ActivityError>>> {
    ns.iter().map(|n| ctx.run(add_one, *n)).collect()
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, ns: Vec<u64>) -> Result<u64, WorkflowError> {
    let results = ctx.all(additions(ctx, &ns)).await;
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(results.into_iter().filter_map(|r| r.ok()).sum())
}

fn main() {}
