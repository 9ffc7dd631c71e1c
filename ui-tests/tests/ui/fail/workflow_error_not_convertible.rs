use std::time::Duration;
use weft_runtime::{ActivityError, WorkflowContext, WorkflowError, activity, workflow};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, MyError> {
    let a = ctx.run(add_one, n).await?;
    Ok(a)
}

fn main() {}
