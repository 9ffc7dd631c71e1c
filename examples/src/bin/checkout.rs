//! The checkout example: runs a few orders through the `checkout` workflow on a redb file.
//!
//! ```text
//! cargo run -p weft-examples --bin checkout                       # 3 orders in ./checkout.redb
//! cargo run -p weft-examples --bin checkout -- --crash-after 4    # abort mid-way...
//! cargo run -p weft-examples --bin checkout                       # ...and resume
//! ```
//!
//! Run with `--help` for every option.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_examples::checkout::{
    Approval, Fulfilment, Order, Receipt, Shop, checkout, dollars, review, sample_orders,
};
use weft_examples::cli::{self, Flags};
use weft_runtime::engine::Pending;
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, ListFilter, Resources, Signal, StartOptions, WorkflowStatus};

const USAGE: &str = "\
Runs orders through a durable checkout workflow on a redb file.

usage: checkout [--db PATH] [--orders N] [--hold-ms MS] [--crash-after N] [--fresh]

  --db PATH         the redb file holding the workflows (default: checkout.redb in the current
                    directory); the payment provider's ledger goes next to it, in PATH with the
                    extension .payments.log
  --orders N        how many orders to run (default: 3); orders are numbered order-1..order-N
                    and started with their number as workflow id and idempotency key, so a
                    rerun never starts one twice
  --hold-ms MS      the durable fraud-review sleep of each order, in milliseconds (default: 1500)
  --crash-after N   abort the process (std::process::abort, as abrupt as kill -9) right after
                    the side effect of the N-th activity execution, before its result is
                    committed; rerun the same command without the flag to resume
  --fresh           delete the database and the ledger first, to start over
  -h, --help        print this help
";

struct Args {
    db: PathBuf,
    orders: u32,
    hold_ms: u64,
    crash_after: Option<u64>,
    fresh: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        db: PathBuf::from("checkout.redb"),
        orders: 3,
        hold_ms: 1_500,
        crash_after: None,
        fresh: false,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--db" => args.db = PathBuf::from(flags.value()?),
            "--orders" => args.orders = flags.number()?,
            "--hold-ms" => args.hold_ms = flags.number()?,
            "--crash-after" => args.crash_after = Some(flags.positive()?),
            "--fresh" => args.fresh = true,
            other => return Err(cli::unknown(other)),
        }
    }
    if args.orders == 0 {
        return Err("--orders must be at least 1".into());
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main("checkout", USAGE, parse_args, run).await
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let ledger = args.db.with_extension("payments.log");
    if args.fresh {
        cli::delete_fresh(&[&args.db, &ledger])?;
    }
    let existed = args.db.exists();
    let storage = RedbStorage::create(&args.db).map_err(|e| e.to_string())?;
    let mut shop = Shop::new(&ledger);
    if let Some(n) = args.crash_after {
        println!(
            "--crash-after {n}: this process will abort right after the side effect of its \
             activity execution number {n}"
        );
        shop = shop.crash_after(n);
    }

    let storage = Arc::new(storage);

    // A first look at what the file holds, with an engine that does not recover, so this
    // report comes before the resumed workflows start printing.
    let peek = Engine::builder(Arc::clone(&storage))
        .register::<checkout>()
        .recover(false)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let before = list_checkouts(&peek).await?;
    let in_flight: Vec<String> = before
        .iter()
        .filter(|(_, status)| !status.is_terminal())
        .map(|(id, _)| id.clone())
        .collect();
    let finished = before.len() - in_flight.len();
    if existed {
        println!(
            "Opened {}: {} workflows stored, {finished} of them finished.",
            args.db.display(),
            before.len()
        );
    } else {
        println!("Created {}.", args.db.display());
    }
    if !in_flight.is_empty() {
        println!(
            "Resuming {} in-flight workflows from their last committed step:",
            in_flight.len()
        );
        for id in &in_flight {
            let description = peek.describe(id).await.map_err(|e| e.to_string())?;
            println!(
                "  {id}: step {}, at {}, waiting on {}",
                description.step,
                description.state_name.unwrap_or("?"),
                pending_text(description.pending.as_ref())
            );
        }
    }
    peek.shutdown().await;

    // Building the engine takes ownership of the file and resumes every workflow that was in
    // flight when the last process stopped, crashed or not.
    let engine = Engine::builder(storage)
        .register::<checkout>()
        .resources(Resources::new().with(shop))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    if !in_flight.is_empty() {
        println!(
            "Resumed {} in-flight workflows (recovery runs when the engine is built).",
            in_flight.len()
        );
    }

    // Start the orders. A stored order keeps its workflow: the id and idempotency key make
    // `start_with` return the existing run instead of starting a duplicate.
    let known: BTreeSet<String> = before.iter().map(|(id, _)| id.clone()).collect();
    let mut orders: Vec<Order> = Vec::new();
    for order in sample_orders(args.orders, args.hold_ms) {
        if !known.contains(&order.id) {
            println!(
                "Starting {}: {} for {}, {} lines, fraud-review hold {} ms",
                order.id,
                dollars(order.total_cents()),
                order.customer,
                order.lines.len(),
                order.hold_ms
            );
        }
        let options = StartOptions {
            id: Some(order.id.clone()),
            idempotency_key: Some(order.id.clone()),
            ..Default::default()
        };
        engine
            .start_with::<checkout>(order.clone(), options)
            .await
            .map_err(|e| e.to_string())?;
        orders.push(order);
    }
    // Orders of an earlier run with a larger --orders are finished too.
    for id in &in_flight {
        if orders.iter().any(|order| &order.id == id) {
            continue;
        }
        let n: u32 = id
            .strip_prefix("order-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{id} is not an order of this example; use another --db"))?;
        println!("Also finishing {id} from an earlier run.");
        orders.extend(sample_orders(n, args.hold_ms).pop());
    }

    // The fraud desk decides each order once its workflow waits for the decision.
    let desks: Vec<_> = orders
        .iter()
        .map(|order| tokio::spawn(fraud_desk(engine.clone(), order.clone())))
        .collect();

    let mut receipts: Vec<Receipt> = Vec::new();
    for order in &orders {
        let id = &order.id;
        let receipt = engine
            .result::<checkout>(id)
            .await
            .map_err(|e| format!("{id}: {e}"))?
            .map_err(|e| format!("{id} failed: {e}"))?;
        receipts.push(receipt);
    }
    for desk in desks {
        desk.await
            .map_err(|e| format!("the fraud desk task failed: {e}"))??;
    }

    println!();
    println!("Receipts:");
    for receipt in &receipts {
        print_receipt(receipt);
    }
    let shipped = receipts
        .iter()
        .filter(|r| matches!(r.fulfilment, Fulfilment::Shipped(_)))
        .count();
    println!();
    println!(
        "{} orders done in {:.1} s: {shipped} shipped, {} refunded. Stats: {} steps committed in {} \
         storage transactions this run.",
        receipts.len(),
        started.elapsed().as_secs_f64(),
        receipts.len() - shipped,
        engine.stats().transitions,
        engine.stats().batches,
    );
    println!(
        "State is in {}; running again shows the stored receipts (pass --fresh to start over).",
        args.db.display()
    );
    engine.shutdown().await;
    Ok(())
}

/// Waits until the order's workflow waits for its approval (or has finished), then signals the
/// decision. Polls `describe`: the desk stands in for a person watching a review queue.
async fn fraud_desk(engine: Engine, order: Order) -> Result<(), String> {
    let id = &order.id;
    loop {
        let description = engine.describe(id).await.map_err(|e| e.to_string())?;
        if description.status.is_terminal() {
            return Ok(());
        }
        if let Some(Pending::Signal { name }) = &description.pending
            && name == <Approval as Signal>::NAME
        {
            let decision = review(order.total_cents());
            let verdict = if decision.approved {
                "approves"
            } else {
                "rejects"
            };
            println!("Fraud desk: {verdict} {id} ({})", decision.note);
            return engine
                .signal(id, decision)
                .await
                .map_err(|e| format!("{id}: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pending_text(pending: Option<&Pending>) -> String {
    match pending {
        Some(Pending::Activity {
            name,
            attempt,
            max_attempts,
        }) => format!(
            "activity {name} (attempt {attempt} of {max_attempts}; it runs again as the next attempt)"
        ),
        Some(Pending::Timer { deadline }) => {
            let left = deadline
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            format!("a timer firing in {} ms", left.as_millis())
        }
        Some(Pending::Signal { name }) => format!("signal {name}"),
        Some(other) => format!("{other:?}"),
        None => "nothing".to_string(),
    }
}

async fn list_checkouts(engine: &Engine) -> Result<Vec<(String, WorkflowStatus)>, String> {
    let filter = ListFilter {
        workflow_type: Some("checkout".to_string()),
        ..ListFilter::default()
    };
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .list(&filter, 100, token.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        all.extend(page.items.into_iter().map(|item| (item.id, item.status)));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return Ok(all),
        }
    }
}

fn print_receipt(receipt: &Receipt) {
    match &receipt.fulfilment {
        Fulfilment::Shipped(shipments) => {
            println!(
                "  {}: charged {} (charge {}), shipped to {}:",
                receipt.order_id,
                dollars(receipt.charge.cents),
                receipt.charge.id,
                receipt.email
            );
            for shipment in shipments {
                println!(
                    "      {} x {:<10} tracking {}",
                    shipment.quantity, shipment.sku, shipment.tracking
                );
            }
        }
        Fulfilment::Refunded { refund, reason } => println!(
            "  {}: charged {} (charge {}), refunded ({refund}): {reason}",
            receipt.order_id,
            dollars(receipt.charge.cents),
            receipt.charge.id
        ),
    }
}
