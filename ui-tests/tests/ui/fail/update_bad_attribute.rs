use serde::{Deserialize, Serialize};
use weft_runtime::Update;

#[derive(Serialize, Deserialize, Update)]
pub struct NoResponse {
    pub n: u64,
}

#[derive(Serialize, Deserialize, Update)]
#[update(response = u64, name = "", colour = "red")]
pub struct BadArgs {
    pub n: u64,
}

#[derive(Serialize, Deserialize, Update)]
#[update(response = u64)]
pub struct Generic<T> {
    pub n: T,
}

fn main() {}
