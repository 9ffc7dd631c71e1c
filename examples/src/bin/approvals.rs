//! Updates and human review, end to end: two expense reports collect lines through updates
//! (a retried update is answered once), wait in the pending-review list, and are approved
//! and rejected.
//!
//! ```text
//! cargo run -p weft-examples --bin approvals
//! ```

use std::time::Duration;

use weft_examples::approvals::{AddLine, Settlement, expense_report};
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{Decision, Engine, ReviewFilter, StartOptions, UpdateOptions};

fn once(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(10),
    }
}

fn line(what: &str, cents: u64, last: bool) -> AddLine {
    AddLine {
        what: what.to_string(),
        cents,
        last,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder(MemoryStorage::new())
        .register::<expense_report>()
        .build()
        .await?;
    for (id, employee) in [("report-ada", "ada"), ("report-bob", "bob")] {
        let options = StartOptions {
            id: Some(id.to_string()),
            ..StartOptions::default()
        };
        engine
            .start_with::<expense_report>(employee.to_string(), options)
            .await?;
    }

    let total = engine
        .update("report-ada", line("train", 4_200, false), once("ada-1"))
        .await?;
    println!("ada: train added, total {total} cents");
    // A client that lost the answer retries with the same update id: same answer, no new line.
    let retried = engine
        .update("report-ada", line("train", 4_200, false), once("ada-1"))
        .await?;
    println!("ada: retry of the same update answered {retried} cents (not added twice)");
    let total = engine
        .update("report-ada", line("hotel", 11_000, true), once("ada-2"))
        .await?;
    println!("ada: hotel added, total {total} cents, sent to review");
    let total = engine
        .update(
            "report-bob",
            line("gold-plated stapler", 99_900, true),
            once("bob-1"),
        )
        .await?;
    println!("bob: stapler added, total {total} cents, sent to review");

    let manager = ReviewFilter {
        reviewer: Some("manager".to_string()),
        ..ReviewFilter::default()
    };
    for review in engine.pending_reviews(&manager, 100, None).await?.items {
        println!(
            "pending review {}: {} (reviewers {:?})",
            review.id, review.title, review.reviewers
        );
    }
    engine
        .decide_review(
            "report-ada",
            Decision::Approved {
                by: "manager".to_string(),
                comment: "fine".to_string(),
            },
        )
        .await?;
    engine
        .decide_review(
            "report-bob",
            Decision::Rejected {
                by: "manager".to_string(),
                comment: "not a business expense".to_string(),
            },
        )
        .await?;
    for id in ["report-ada", "report-bob"] {
        match engine.result::<expense_report>(id).await?? {
            Settlement::Paid {
                cents, reference, ..
            } => println!("{id}: paid {cents} cents ({reference})"),
            Settlement::Rejected { by, comment } => println!("{id}: rejected by {by}: {comment}"),
            Settlement::Expired => println!("{id}: nobody decided in time"),
        }
    }
    println!(
        "pending reviews left: {}",
        engine
            .pending_reviews(&manager, 100, None)
            .await?
            .items
            .len()
    );
    engine.shutdown().await;
    Ok(())
}
