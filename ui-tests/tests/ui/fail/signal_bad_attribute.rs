use serde::{Deserialize, Serialize};
use weft_runtime::Signal;

#[derive(Serialize, Deserialize, Signal)]
#[signal(nmae = "order.approved")]
pub struct Approved;

#[derive(Serialize, Deserialize, Signal)]
#[signal(name = order_rejected)]
pub struct Rejected;

#[derive(Serialize, Deserialize, Signal)]
#[signal(name = "", name = "x")]
pub struct Cancelled;

#[derive(Serialize, Deserialize, Signal)]
#[signal]
pub struct Paused;

#[derive(Serialize, Deserialize, Signal)]
#[signal(name)]
pub struct Resumed;

fn main() {}
