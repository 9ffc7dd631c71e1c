use weft_runtime::activity;

#[activity]
async fn total(cents: Vec<u64>) -> u64 {
    cents.iter().sum()
}

fn main() {}
