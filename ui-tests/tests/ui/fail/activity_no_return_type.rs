use weft_runtime::activity;

#[activity]
async fn notify(user: String) {
    println!("{user}");
}

fn main() {}
