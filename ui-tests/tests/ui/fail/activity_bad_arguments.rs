use weft_runtime::{ActivityError, activity};

#[activity(nmae = "payments.charge", max_attempts = 0, timeout_ms = "5s", name)]
async fn charge(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

const RETRIES: u32 = 3;

#[activity(name = "", max_attempts = RETRIES, backoff_percent = 50, timeout_ms = 1, timeout_ms = 2)]
async fn refund(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

#[activity(max_attempts = 5_000_000_000)]
async fn capture(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

fn main() {}
