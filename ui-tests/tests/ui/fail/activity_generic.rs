use weft_runtime::{ActivityError, activity};

#[activity]
async fn store<T: serde::Serialize>(value: T) -> Result<(), ActivityError> {
    let _ = value;
    Ok(())
}

#[activity]
async fn store_where(value: String) -> Result<(), ActivityError>
where
    String: Clone,
{
    let _ = value;
    Ok(())
}

fn main() {}
