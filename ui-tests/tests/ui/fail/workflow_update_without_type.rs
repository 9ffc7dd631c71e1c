use weft_runtime::{WorkflowContext, WorkflowError, workflow};

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (s, _reply): (u64, ()) = ctx.wait_for_update().await;
    Ok(s + n)
}

fn main() {}
