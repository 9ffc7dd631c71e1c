use weft_runtime::{ActivityError, activity};

pub struct Payment {
    pub cents: u64,
}

#[activity]
async fn charge(payment: Payment) -> Result<u64, ActivityError> {
    Ok(payment.cents)
}

fn main() {}
