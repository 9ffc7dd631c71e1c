use std::rc::Rc;

use weft_runtime::{ActivityError, activity};

async fn pause() {}

#[activity]
async fn count(cents: u64) -> Result<u64, ActivityError> {
    let shared = Rc::new(cents);
    pause().await;
    Ok(*shared)
}

fn main() {}
