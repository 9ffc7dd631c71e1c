//! `#[derive(Signal)]` compiles on structs and enums, with or without a pinned name.

use serde::{Deserialize, Serialize};
use weft_runtime::Signal;

#[derive(Serialize, Deserialize, Signal)]
pub struct Approved {
    pub by: String,
}

#[derive(Serialize, Deserialize, Signal)]
#[signal(name = "order.decision")]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

#[derive(Serialize, Deserialize, Signal)]
pub struct Ping;

fn name_of<S: Signal>() -> &'static str {
    S::NAME
}

fn main() {
    assert_eq!(name_of::<Approved>(), "Approved");
    assert_eq!(name_of::<Decision>(), "order.decision");
    assert_eq!(name_of::<Ping>(), "Ping");
}
