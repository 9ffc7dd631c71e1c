// A broken activity reports its own error once; code that uses it still type-checks, so no
// "cannot find value" or "is not an activity" errors pile up behind it.
use weft_runtime::{Activity, ActivityError, activity};

#[activity]
fn charge_card(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

#[activity(retries = 3)]
async fn refund(cents: u64) -> Result<u64, ActivityError> {
    Ok(cents)
}

#[activity]
async fn capture(cents: u64) {
    let _ = cents;
}

fn run<A: Activity>(_: A, _: A::Input) -> &'static str {
    A::NAME
}

fn main() {
    let output: <charge_card as Activity>::Output = 5u64;
    let _ = (output, run(charge_card, 1), run(refund, 2));
    let _ = capture;
}
