use weft_runtime::{ActivityError, activity};

struct Gateway;

impl Gateway {
    #[activity]
    async fn charge(&self, cents: u64) -> Result<u64, ActivityError> {
        Ok(cents)
    }
}

fn main() {}
