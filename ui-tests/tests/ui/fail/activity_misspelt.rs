use weft_runtime::{Activity, ActivityError, activity};

#[activity]
async fn charge_card(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

fn name_of<A: Activity>(_: A) -> &'static str {
    A::NAME
}

fn main() {
    name_of(charge_crad);
}
