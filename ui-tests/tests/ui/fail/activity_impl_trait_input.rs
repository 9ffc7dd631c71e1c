use weft_runtime::{ActivityError, activity};

#[activity]
async fn greet(name: impl Into<String>) -> Result<String, ActivityError> {
    Ok(name.into())
}

fn main() {}
