//! The fan-out example: a bulk order whose lines are checked in parallel, a customer asked
//! (with a deadline) whether a partial shipment will do, and one child workflow per line to pack
//! it.
//!
//! - `ctx.all` over a `Vec`: one `check_stock` activity per line, all running at once. Each
//!   line's result is committed as soon as it arrives, so after a crash only the checks still
//!   running are run again.
//! - `ctx.race` of a signal against a sleep: wait for the customer's answer, but not forever.
//! - `ctx.all` over child workflows: one `pack_line` workflow per line, each with its own id
//!   (`{order id}/{step}.{line}`), state and history.
//!
//! [`Warehouse`] is the resource every activity reads: the stock, how long each activity takes
//! (so the parallelism shows), and whether to print.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityContext, ActivityError, ChildError, Race2, Signal, WorkflowContext, WorkflowError,
    activity, workflow,
};

/// One line of a bulk order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product's stock-keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// A bulk order, as the shop's front end submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOrder {
    /// The order number, also used as the workflow id.
    pub id: String,
    /// What was ordered.
    pub lines: Vec<Line>,
    /// How long the customer has to accept a partial shipment, in milliseconds.
    pub answer_within_ms: u64,
}

/// What the warehouse has of one line's product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The product.
    pub sku: String,
    /// Units on the shelf.
    pub on_hand: u32,
}

/// The customer's answer to "some lines are short: ship the rest?", sent as a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Signal)]
pub struct PartialAnswer {
    /// Whether to ship the lines that are in stock.
    pub accept: bool,
}

/// What the customer is told when lines are short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortNotice {
    /// The order.
    pub order_id: String,
    /// The products that are short.
    pub short: Vec<String>,
}

/// A request to pack one line: the input of the [`pack_line`] child workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRequest {
    /// The order the line belongs to.
    pub order_id: String,
    /// The line.
    pub line: Line,
}

/// Items taken off the shelf for one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picked {
    /// The line.
    pub line: Line,
    /// The shelf they came from.
    pub bin: String,
}

/// One packed, labelled parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The carrier label.
    pub label: String,
}

/// How a bulk order ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The lines in stock were packed; `left_out` are the short ones, if the customer accepted
    /// a partial shipment.
    Packed {
        /// One parcel per packed line, in order.
        parcels: Vec<Parcel>,
        /// The products left out.
        left_out: Vec<String>,
    },
    /// Lines were short and the customer declined a partial shipment.
    Declined {
        /// The products that were short.
        short: Vec<String>,
    },
    /// Lines were short and the customer did not answer in time.
    Expired {
        /// The products that were short.
        short: Vec<String>,
    },
}

/// The bulk order: check every line's stock at once, ask about a partial shipment if needed,
/// then pack every line in stock with its own child workflow, all at once.
#[workflow]
pub async fn bulk_order(
    ctx: &mut WorkflowContext,
    order: BulkOrder,
) -> Result<Outcome, WorkflowError> {
    // One stock check per line, concurrently. Written without `.await` inside: the group is
    // awaited as a whole, and resumes with one result per line, in line order.
    let checks: Vec<Result<Stock, ActivityError>> = ctx
        .all(
            order
                .lines
                .iter()
                .map(|line| ctx.run(check_stock, line.clone()))
                .collect::<Vec<_>>(),
        )
        .await;
    let mut ready: Vec<Line> = Vec::new();
    let mut short: Vec<String> = Vec::new();
    for (line, check) in order.lines.iter().zip(checks) {
        let stock = check?;
        if stock.on_hand >= line.quantity {
            ready.push(line.clone());
        } else {
            short.push(line.sku.clone());
        }
    }

    if !short.is_empty() {
        let notice = ShortNotice {
            order_id: order.id.clone(),
            short: short.clone(),
        };
        ctx.run(notify_customer, notice).await?;
        // Wait for the answer with a deadline: whichever finishes first wins, the other is
        // cancelled (the timer is disarmed).
        let answer = ctx
            .race((
                ctx.wait_for_signal::<PartialAnswer>(),
                ctx.sleep(Duration::from_millis(order.answer_within_ms)),
            ))
            .await;
        match answer {
            Race2::First(PartialAnswer { accept: true }) => {}
            Race2::First(PartialAnswer { accept: false }) => {
                return Ok(Outcome::Declined { short });
            }
            Race2::Second(()) => return Ok(Outcome::Expired { short }),
        }
    }

    // One child workflow per line in stock, concurrently.
    let packed: Vec<Result<Parcel, ChildError>> = ctx
        .all(
            ready
                .iter()
                .map(|line| {
                    ctx.child(
                        pack_line,
                        PackRequest {
                            order_id: order.id.clone(),
                            line: line.clone(),
                        },
                    )
                })
                .collect::<Vec<_>>(),
        )
        .await;
    let mut parcels: Vec<Parcel> = Vec::new();
    for parcel in packed {
        parcels.push(parcel?);
    }
    Ok(Outcome::Packed {
        parcels,
        left_out: short,
    })
}

/// Packs one line: a child workflow of [`bulk_order`], with its own id and history.
#[workflow]
pub async fn pack_line(
    ctx: &mut WorkflowContext,
    request: PackRequest,
) -> Result<Parcel, WorkflowError> {
    let picked = ctx.run(pick_items, request).await?;
    let parcel = ctx.run(print_label, picked).await?;
    Ok(parcel)
}

/// Looks up how many units of the line's product are on the shelf.
///
/// Every line is checked at once, so a crash cuts off every check still in flight, and an
/// attempt cut off by a crash counts against `max_attempts` (attempts are durable, so an
/// activity that kills the process is not retried forever). Ten leave room for a crash per line.
#[activity(name = "warehouse.check_stock", max_attempts = 10)]
pub async fn check_stock(ctx: ActivityContext, line: Line) -> Result<Stock, ActivityError> {
    let warehouse = warehouse(&ctx)?;
    let on_hand = warehouse.on_hand(&line.sku);
    warehouse.work(&ctx, &line.sku).await;
    let verdict = if on_hand >= line.quantity {
        "enough"
    } else {
        "SHORT"
    };
    warehouse.say(format!(
        "check_stock {:<12} wants {:>2}, {on_hand:>2} on hand: {verdict}",
        line.sku, line.quantity
    ));
    Ok(Stock {
        sku: line.sku,
        on_hand,
    })
}

/// Tells the customer which lines are short and asks whether to ship the rest.
#[activity(name = "warehouse.notify_customer")]
pub async fn notify_customer(
    ctx: ActivityContext,
    notice: ShortNotice,
) -> Result<(), ActivityError> {
    let warehouse = warehouse(&ctx)?;
    warehouse.say(format!(
        "notify_customer: {} is short of {}; ship the rest?",
        notice.order_id,
        notice.short.join(", ")
    ));
    Ok(())
}

/// Takes a line's items off the shelf.
///
/// Lines are packed side by side, so a crash cuts off the attempts of every line in flight;
/// like `check_stock`, it has room for that.
#[activity(name = "warehouse.pick_items", max_attempts = 10)]
pub async fn pick_items(
    ctx: ActivityContext,
    request: PackRequest,
) -> Result<Picked, ActivityError> {
    let warehouse = warehouse(&ctx)?;
    warehouse.work(&ctx, &request.line.sku).await;
    let bin = format!("bin-{:02}", fnv1a(&request.line.sku) % 40);
    warehouse.say(format!(
        "pick_items  {:<12} {:>2} units from {bin} (workflow {})",
        request.line.sku,
        request.line.quantity,
        ctx.workflow_id()
    ));
    Ok(Picked {
        line: request.line,
        bin,
    })
}

/// Packs the picked items and prints the carrier label.
///
/// Lines are packed side by side, so a crash cuts off the attempts of every line in flight;
/// like `check_stock`, it has room for that.
#[activity(name = "warehouse.print_label", max_attempts = 10)]
pub async fn print_label(ctx: ActivityContext, picked: Picked) -> Result<Parcel, ActivityError> {
    let warehouse = warehouse(&ctx)?;
    let label = format!("LBL{:08}", fnv1a(&ctx.idempotency_key()) % 100_000_000);
    warehouse.say(format!(
        "print_label {:<12} parcel {label}",
        picked.line.sku
    ));
    Ok(Parcel {
        sku: picked.line.sku,
        quantity: picked.line.quantity,
        label,
    })
}

/// What the activities share: the stock on the shelves, how long an activity takes, and
/// whether to print.
///
/// Give one to the engine with `Resources::new().with(warehouse)`.
#[derive(Debug, Clone, Default)]
pub struct Warehouse {
    stock: HashMap<String, u32>,
    work: Duration,
    quiet: bool,
}

impl Warehouse {
    /// An empty warehouse: every product has 0 on hand.
    pub fn new() -> Self {
        Warehouse::default()
    }

    /// Puts `units` of `sku` on the shelf.
    pub fn with_stock(mut self, sku: impl Into<String>, units: u32) -> Self {
        self.stock.insert(sku.into(), units);
        self
    }

    /// Makes each stock check and pick take between 1 and 4 times `base` (depending on the
    /// product), so the program shows branches finishing out of order.
    pub fn working_for(mut self, base: Duration) -> Self {
        self.work = base;
        self
    }

    /// Stops the activities from printing (for tests).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Units of `sku` on hand.
    pub fn on_hand(&self, sku: &str) -> u32 {
        self.stock.get(sku).copied().unwrap_or(0)
    }

    async fn work(&self, ctx: &ActivityContext, sku: &str) {
        if self.work.is_zero() {
            return;
        }
        let took = self.work * (1 + (fnv1a(sku) % 4) as u32);
        tokio::select! {
            () = tokio::time::sleep(took) => {}
            () = ctx.cancelled() => {}
        }
    }

    fn say(&self, message: String) {
        if !self.quiet {
            println!("  {message}");
        }
    }
}

fn warehouse(ctx: &ActivityContext) -> Result<std::sync::Arc<Warehouse>, ActivityError> {
    ctx.resource::<Warehouse>().ok_or_else(|| {
        ActivityError::non_retryable(
            "the engine has no `Warehouse` resource; build it with `.resources(Resources::new().with(Warehouse::new()..))`",
        )
    })
}

/// The sample order of the `fan_out` program: `lines` lines (at most 8), and a warehouse that
/// has enough of everything but the third product when `one_short` is set.
pub fn sample(
    id: &str,
    lines: usize,
    answer_within_ms: u64,
    one_short: bool,
) -> (BulkOrder, Warehouse) {
    const PRODUCTS: [(&str, u32); 8] = [
        ("DESK-OAK", 4),
        ("CHAIR-MESH", 12),
        ("CABLE-USB-C", 40),
        ("LAMP-LED", 6),
        ("MONITOR-27", 8),
        ("DOCK-TB4", 3),
        ("MAT-CORK", 10),
        ("HUB-USB", 5),
    ];
    let mut warehouse = Warehouse::new();
    let mut order_lines = Vec::new();
    for (i, (sku, quantity)) in PRODUCTS.iter().take(lines).enumerate() {
        let on_hand = if one_short && i == 2 {
            quantity / 4
        } else {
            quantity * 3
        };
        warehouse = warehouse.with_stock(*sku, on_hand);
        order_lines.push(Line {
            sku: sku.to_string(),
            quantity: *quantity,
        });
    }
    let order = BulkOrder {
        id: id.to_string(),
        lines: order_lines,
        answer_within_ms,
    };
    (order, warehouse)
}

/// FNV-1a: a stable hash for deriving ids and delays from text.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
