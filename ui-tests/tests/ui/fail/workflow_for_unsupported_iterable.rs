use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

struct Order {
    lines: Vec<u64>,
}

fn load() -> Order {
    Order { lines: vec![1, 2] }
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let order = load();
    let mut sum: u64 = n;
    for line in order.lines {
        sum += ctx.run(add_one, line).await?;
    }
    Ok(sum)
}

fn main() {}
