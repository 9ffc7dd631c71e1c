use weft_runtime::{WorkflowContext, WorkflowError, workflow};

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let five: u64 = ctx.all(5).await;
    Ok(n + five)
}

fn main() {}
