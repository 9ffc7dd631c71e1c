use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn wf<T>(ctx: &mut WorkflowContext, n: T) -> Result<u64, WorkflowError> {
    Ok(1)
}

fn main() {}
