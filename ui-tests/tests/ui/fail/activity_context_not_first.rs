use weft_runtime::{ActivityContext, ActivityError, activity};

#[activity]
async fn charge(cents: u64, ctx: ActivityContext) -> Result<String, ActivityError> {
    Ok(format!("{cents} {}", ctx.idempotency_key()))
}

fn main() {}
