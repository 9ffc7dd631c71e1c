use serde::{Deserialize, Serialize};
use weft_runtime::Signal;

#[derive(Serialize, Deserialize, Signal)]
pub struct Envelope<T> {
    pub body: T,
}

#[derive(Signal)]
pub struct Borrowed<'a> {
    pub by: &'a str,
}

fn main() {}
