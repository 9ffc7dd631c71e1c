use weft_runtime::activity;

#[derive(Debug)]
pub struct GatewayError;

#[activity]
async fn charge(cents: u64) -> Result<u64, GatewayError> {
    if cents == 0 {
        return Err(GatewayError);
    }
    Ok(cents)
}

fn main() {}
