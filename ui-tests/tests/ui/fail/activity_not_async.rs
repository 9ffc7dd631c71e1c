use weft_runtime::{ActivityError, activity};

#[activity]
fn charge_card(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

fn main() {}
