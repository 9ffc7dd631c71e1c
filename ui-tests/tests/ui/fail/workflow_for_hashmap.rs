use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

use std::collections::HashMap;

#[workflow]
async fn wf(ctx: &mut WorkflowContext, prices: HashMap<String, u64>) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    for (_, price) in prices {
        sum += ctx.run(add_one, price).await?;
    }
    Ok(sum)
}

fn main() {}
