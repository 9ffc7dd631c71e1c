use weft_runtime::{WorkflowContext, WorkflowError, workflow};

#[workflow]
async fn doubled(_ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(n * 2)
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let children = [doubled];
    let a = ctx.child(children[0], n).await?;
    Ok(a)
}

fn main() {}
