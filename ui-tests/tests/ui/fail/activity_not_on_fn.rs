use weft_runtime::activity;

#[activity]
struct Charge {
    cents: u64,
}

fn main() {}
