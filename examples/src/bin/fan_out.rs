//! The fan-out example: a bulk order's lines checked in parallel, a partial-shipment question
//! raced against a deadline, and a child workflow per line, on a redb file.
//!
//! ```text
//! cargo run -p weft-examples --bin fan_out                        # one line short, customer accepts
//! cargo run -p weft-examples --bin fan_out -- --fresh --answer none   # ...the deadline wins
//! cargo run -p weft-examples --bin fan_out -- --fresh --all-in-stock  # no question asked
//! ```
//!
//! Run with `--help` for every option.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_examples::cli::{self, Flags};
use weft_examples::fan_out::{Outcome, PartialAnswer, bulk_order, pack_line, sample};
use weft_runtime::engine::Pending;
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, ListFilter, Resources, StartOptions};

const USAGE: &str = "\
Runs a bulk order through a durable fan-out workflow on a redb file: every line's stock is
checked at once (ctx.all over a Vec); if a line is short, the customer's answer is raced
against a deadline (ctx.race); every line in stock is packed by its own child workflow, all at
once (ctx.all over ctx.child).

usage: fan_out [--db PATH] [--order ID] [--lines N] [--answer accept|decline|none]
               [--answer-within-ms MS] [--all-in-stock] [--fresh]

  --db PATH              the redb file holding the workflows (default: fan_out.redb)
  --order ID             the order's id, also its workflow id (default: bulk-1); an order
                         already in the file is not started again: its stored outcome is shown
  --lines N              how many lines the order has, 1 to 8 (default: 5)
  --answer WHAT          what the customer answers when a line is short: accept, decline, or
                         none (never answers, so the deadline wins) (default: accept)
  --answer-within-ms MS  the deadline for the answer, in milliseconds (default: 1500)
  --all-in-stock         stock every product (default: the third line is short)
  --fresh                delete the database first, to start over
  -h, --help             print this help
";

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Accept,
    Decline,
    Never,
}

struct Args {
    db: PathBuf,
    order: String,
    lines: usize,
    answer: Answer,
    answer_within_ms: u64,
    all_in_stock: bool,
    fresh: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        db: PathBuf::from("fan_out.redb"),
        order: "bulk-1".to_string(),
        lines: 5,
        answer: Answer::Accept,
        answer_within_ms: 1_500,
        all_in_stock: false,
        fresh: false,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--db" => args.db = PathBuf::from(flags.value()?),
            "--order" => args.order = flags.value()?,
            "--lines" => args.lines = flags.number()?,
            "--answer" => {
                args.answer = match flags.value()?.as_str() {
                    "accept" => Answer::Accept,
                    "decline" => Answer::Decline,
                    "none" => Answer::Never,
                    other => {
                        return Err(format!(
                            "--answer takes accept, decline or none, not `{other}`"
                        ));
                    }
                }
            }
            "--answer-within-ms" => args.answer_within_ms = flags.number()?,
            "--all-in-stock" => args.all_in_stock = true,
            "--fresh" => args.fresh = true,
            other => return Err(cli::unknown(other)),
        }
    }
    if !(1..=8).contains(&args.lines) {
        return Err("--lines must be between 1 and 8".into());
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main("fan_out", USAGE, parse_args, run).await
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    if args.fresh {
        cli::delete_fresh(&[&args.db])?;
    }
    let (order, warehouse) = sample(
        &args.order,
        args.lines,
        args.answer_within_ms,
        !args.all_in_stock,
    );
    let warehouse = warehouse.working_for(Duration::from_millis(150));
    let storage = Arc::new(RedbStorage::create(&args.db).map_err(|e| e.to_string())?);
    // Building the engine resumes whatever a previous process left in flight.
    let engine = Engine::builder(storage)
        .register::<bulk_order>()
        .register::<pack_line>()
        .resources(Resources::new().with(warehouse))
        .build()
        .await
        .map_err(|e| e.to_string())?;

    let stored = engine.describe(&order.id).await.is_ok();
    if stored {
        println!(
            "{} is already in {}; showing its outcome (pass --fresh to start over).",
            order.id,
            args.db.display()
        );
    } else {
        println!(
            "Starting {} with {} lines; checking every line's stock at once:",
            order.id,
            order.lines.len()
        );
    }
    engine
        .start_with::<bulk_order>(
            order.clone(),
            StartOptions {
                id: Some(order.id.clone()),
                idempotency_key: Some(order.id.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let customer = tokio::spawn(customer(engine.clone(), order.id.clone(), args.answer));

    let outcome = engine
        .result::<bulk_order>(&order.id)
        .await
        .map_err(|e| format!("{}: {e}", order.id))?
        .map_err(|e| format!("{} failed: {e}", order.id))?;
    customer.abort();

    println!();
    match &outcome {
        Outcome::Packed { parcels, left_out } => {
            println!("{}: {} parcels packed", order.id, parcels.len());
            for parcel in parcels {
                println!(
                    "    {} x {:<12} label {}",
                    parcel.quantity, parcel.sku, parcel.label
                );
            }
            if !left_out.is_empty() {
                println!("  left out (short): {}", left_out.join(", "));
            }
        }
        Outcome::Declined { short } => println!(
            "{}: the customer declined a partial shipment; nothing packed (short: {})",
            order.id,
            short.join(", ")
        ),
        Outcome::Expired { short } => println!(
            "{}: no answer within {} ms, the deadline won the race; nothing packed (short: {})",
            order.id,
            order.answer_within_ms,
            short.join(", ")
        ),
    }

    // The children are workflows of their own, listed with the engine's other workflows.
    let filter = ListFilter {
        workflow_type: Some("pack_line".to_string()),
        ..ListFilter::default()
    };
    let page = engine
        .list(&filter, 100, None)
        .await
        .map_err(|e| e.to_string())?;
    let prefix = format!("{}/", order.id);
    let children: Vec<_> = page
        .items
        .iter()
        .filter(|item| item.id.starts_with(&prefix))
        .collect();
    if !children.is_empty() {
        println!("Child workflows of {}:", order.id);
        for child in children {
            println!(
                "    {:<14} {:?}, {} steps",
                child.id, child.status, child.step
            );
        }
    }
    println!(
        "Done in {:.1} s; the workflows are in {}.",
        started.elapsed().as_secs_f64(),
        args.db.display()
    );
    engine.shutdown().await;
    Ok(())
}

/// The customer: once the order waits on its race (the answer against the deadline), answers
/// after a moment, or never. Polls `describe`, standing in for a person reading an e-mail.
async fn customer(engine: Engine, id: String, answer: Answer) -> Result<(), String> {
    loop {
        let description = engine.describe(&id).await.map_err(|e| e.to_string())?;
        if description.status.is_terminal() {
            return Ok(());
        }
        if let Some(Pending::Group { race: true, .. }) = description.pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accept = match answer {
        Answer::Accept => true,
        Answer::Decline => false,
        Answer::Never => {
            println!("Customer: (does not answer)");
            return Ok(());
        }
    };
    println!(
        "Customer: {} the partial shipment",
        if accept { "accepts" } else { "declines" }
    );
    engine
        .signal(&id, PartialAnswer { accept })
        .await
        .map_err(|e| e.to_string())
}
