//! `#[derive(Signal)]` names a message type by its own name, or by the pinned one.

use serde::{Deserialize, Serialize};
use weft_runtime::Signal;

#[derive(Debug, Serialize, Deserialize, Signal)]
struct Approved {
    by: String,
}

#[derive(Debug, Serialize, Deserialize, Signal)]
#[signal(name = "order.decision")]
enum Decision {
    Approve,
    Reject { reason: String },
}

fn name_of<S: Signal>() -> &'static str {
    S::NAME
}

#[test]
fn the_name_defaults_to_the_type_name() {
    assert_eq!(name_of::<Approved>(), "Approved");
}

#[test]
fn signal_name_pins_the_name() {
    assert_eq!(name_of::<Decision>(), "order.decision");
}
