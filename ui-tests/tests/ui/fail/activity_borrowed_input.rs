use weft_runtime::{ActivityError, activity};

#[activity]
async fn greet(name: &str, tags: Vec<&'static str>) -> Result<String, ActivityError> {
    Ok(format!("hello {name} {tags:?}"))
}

fn main() {}
