use weft_runtime::activity;

#[activity(name = 1)]
fn charge<T>(payment: &T, ctx: weft_runtime::ActivityContext) {}

fn main() {}
