//! The checkout workflow: reserve stock, charge the card, hold for a fraud-review window, wait
//! for the fraud desk's decision, ship each line, send a receipt.
//!
//! The activities stand in for real services and print what they do. The card charge goes to a
//! [`PaymentProvider`] that remembers charges by idempotency key in a file, as a real payment
//! API does: an activity re-run after a crash charges nothing twice.
//!
//! [`Shop`] is the resource every activity reads; it also carries the `--crash-after` switch of
//! the `checkout` program, which aborts the process right after an activity's side effect, the
//! worst moment for a crash: the effect happened but its result is not committed yet.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityContext, ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow,
};

use crate::crash_point::CrashPoint;

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product's stock-keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_cents: u64,
}

/// An order, as the shop's front end submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order number, also used as the workflow id.
    pub id: String,
    /// Who ordered.
    pub customer: String,
    /// Where the receipt goes.
    pub email: String,
    /// The card to charge (a token, never a card number).
    pub card: String,
    /// What was ordered.
    pub lines: Vec<Line>,
    /// How long the charge is held before fulfilment, in milliseconds: the fraud-review window.
    pub hold_ms: u64,
}

impl Order {
    /// The order's total, in cents.
    pub fn total_cents(&self) -> u64 {
        self.lines
            .iter()
            .map(|line| u64::from(line.quantity) * line.unit_cents)
            .sum()
    }
}

/// Stock set aside for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The warehouse's reservation id.
    pub id: String,
    /// Units reserved, over all lines.
    pub units: u32,
}

/// What to charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The card token.
    pub card: String,
    /// The amount, in cents.
    pub cents: u64,
}

/// A completed charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The payment provider's charge id.
    pub id: String,
    /// The amount charged, in cents.
    pub cents: u64,
}

/// The fraud desk's decision on an order, sent to its workflow as a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Signal)]
pub struct Approval {
    /// Whether the order may ship.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// Why, for the receipt.
    pub note: String,
}

/// One line handed to the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The product shipped.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The carrier's tracking number.
    pub tracking: String,
}

/// What happened to an order in the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fulfilment {
    /// Every line shipped.
    Shipped(Vec<Shipment>),
    /// The fraud desk rejected the order; the charge was refunded and the stock released.
    Refunded {
        /// The refund's id at the payment provider.
        refund: String,
        /// The fraud desk's note.
        reason: String,
    },
}

/// The receipt e-mailed to the customer, and the workflow's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order number.
    pub order_id: String,
    /// Where it was sent.
    pub email: String,
    /// The charge.
    pub charge: Charge,
    /// Shipped or refunded.
    pub fulfilment: Fulfilment,
}

/// A request to ship one line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipRequest {
    /// The order the line belongs to.
    pub order_id: String,
    /// The line.
    pub line: Line,
}

/// The checkout itself. Every `ctx.run`, `ctx.sleep` and `ctx.wait_for_signal` is a durable
/// step: the engine commits the workflow's state there, and a crash resumes from the last one.
#[workflow]
pub async fn checkout(ctx: &mut WorkflowContext, order: Order) -> Result<Receipt, WorkflowError> {
    let reservation = ctx.run(reserve_inventory, order.clone()).await?;
    let payment = Payment {
        card: order.card.clone(),
        cents: order.total_cents(),
    };
    let charge = ctx.run(charge_card, payment).await?;

    // The fraud-review window: a durable timer, so a restart does not extend it.
    ctx.sleep(Duration::from_millis(order.hold_ms)).await;
    let approval = ctx.wait_for_signal::<Approval>().await;

    if !approval.approved {
        let refund = ctx.run(refund_card, charge.clone()).await?;
        ctx.run(release_inventory, reservation).await?;
        let receipt = Receipt {
            order_id: order.id.clone(),
            email: order.email.clone(),
            charge,
            fulfilment: Fulfilment::Refunded {
                refund,
                reason: approval.note,
            },
        };
        ctx.run(send_receipt, receipt.clone()).await?;
        return Ok(receipt);
    }

    let lines: Vec<Line> = order.lines.clone();
    let mut shipments: Vec<Shipment> = Vec::new();
    for line in lines {
        let request = ShipRequest {
            order_id: order.id.clone(),
            line,
        };
        let shipment = ctx.run(ship_line, request).await?;
        shipments.push(shipment);
    }
    let receipt = Receipt {
        order_id: order.id.clone(),
        email: order.email.clone(),
        charge,
        fulfilment: Fulfilment::Shipped(shipments),
    };
    ctx.run(send_receipt, receipt.clone()).await?;
    Ok(receipt)
}

/// Sets stock aside for every line of the order.
#[activity(name = "shop.reserve_inventory")]
pub async fn reserve_inventory(
    ctx: ActivityContext,
    order: Order,
) -> Result<Reservation, ActivityError> {
    let shop = shop(&ctx)?;
    let units = order.lines.iter().map(|line| line.quantity).sum();
    let reservation = Reservation {
        id: format!("rsv_{:08x}", fnv1a(&ctx.idempotency_key()) as u32),
        units,
    };
    shop.say(
        &ctx,
        format!(
            "reserve_inventory: {units} units over {} lines, reservation {}",
            order.lines.len(),
            reservation.id
        ),
    );
    shop.after_side_effect();
    Ok(reservation)
}

/// Charges the card through the payment provider, with the call's idempotency key, so a re-run
/// after a crash returns the first charge instead of charging again.
#[activity(name = "shop.charge_card", max_attempts = 3)]
pub async fn charge_card(ctx: ActivityContext, payment: Payment) -> Result<Charge, ActivityError> {
    let shop = shop(&ctx)?;
    let key = ctx.idempotency_key();
    let (charge, fresh) = shop.payments.charge(&key, &payment)?;
    if fresh {
        shop.say(
            &ctx,
            format!(
                "charge_card: charged {} to {} (charge {}, idempotency key {key})",
                dollars(charge.cents),
                payment.card,
                charge.id
            ),
        );
    } else {
        shop.say(
            &ctx,
            format!(
                "charge_card: key {key} was already charged (charge {}); the provider returned \
                 it instead of charging again",
                charge.id
            ),
        );
    }
    shop.after_side_effect();
    Ok(charge)
}

/// Refunds a charge; returns the refund's id.
#[activity(name = "shop.refund_card")]
pub async fn refund_card(ctx: ActivityContext, charge: Charge) -> Result<String, ActivityError> {
    let shop = shop(&ctx)?;
    let refund = format!("re_{:08x}", fnv1a(&ctx.idempotency_key()) as u32);
    shop.say(
        &ctx,
        format!(
            "refund_card: refunded {} of charge {} (refund {refund})",
            dollars(charge.cents),
            charge.id
        ),
    );
    shop.after_side_effect();
    Ok(refund)
}

/// Puts reserved stock back.
#[activity(name = "shop.release_inventory")]
pub async fn release_inventory(
    ctx: ActivityContext,
    reservation: Reservation,
) -> Result<(), ActivityError> {
    let shop = shop(&ctx)?;
    shop.say(
        &ctx,
        format!(
            "release_inventory: released {} units of reservation {}",
            reservation.units, reservation.id
        ),
    );
    shop.after_side_effect();
    Ok(())
}

/// Hands one line to the carrier.
#[activity(name = "shop.ship_line")]
pub async fn ship_line(
    ctx: ActivityContext,
    request: ShipRequest,
) -> Result<Shipment, ActivityError> {
    let shop = shop(&ctx)?;
    let shipment = Shipment {
        sku: request.line.sku,
        quantity: request.line.quantity,
        tracking: format!("TRK{:010}", fnv1a(&ctx.idempotency_key()) % 10_000_000_000),
    };
    shop.say(
        &ctx,
        format!(
            "ship_line: {} x {} handed to the carrier, tracking {}",
            shipment.quantity, shipment.sku, shipment.tracking
        ),
    );
    shop.after_side_effect();
    Ok(shipment)
}

/// E-mails the receipt.
#[activity(name = "shop.send_receipt")]
pub async fn send_receipt(ctx: ActivityContext, receipt: Receipt) -> Result<(), ActivityError> {
    let shop = shop(&ctx)?;
    let what = match &receipt.fulfilment {
        Fulfilment::Shipped(shipments) => format!("{} shipments", shipments.len()),
        Fulfilment::Refunded { .. } => "a refund".to_string(),
    };
    shop.say(
        &ctx,
        format!(
            "send_receipt: e-mailed {} the receipt for {what}",
            receipt.email
        ),
    );
    shop.after_side_effect();
    Ok(())
}

/// What the activities share: the payment provider, whether to print, and the crash switch.
///
/// Give one to the engine with `Resources::new().with(shop)`.
#[derive(Debug)]
pub struct Shop {
    payments: PaymentProvider,
    quiet: bool,
    crash: CrashPoint,
}

impl Shop {
    /// A shop whose payment provider keeps its ledger at `ledger`.
    pub fn new(ledger: impl Into<PathBuf>) -> Self {
        Shop {
            payments: PaymentProvider::new(ledger),
            quiet: false,
            crash: CrashPoint::default(),
        }
    }

    /// Stops the activities from printing (for tests).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Aborts the process (`std::process::abort`, as abrupt as `kill -9`) right after the
    /// side effect of the `n`-th activity execution in this process, before its result is
    /// committed.
    pub fn crash_after(mut self, n: u64) -> Self {
        self.crash = CrashPoint::after(n);
        self
    }

    /// The payment provider.
    pub fn payments(&self) -> &PaymentProvider {
        &self.payments
    }

    fn say(&self, ctx: &ActivityContext, message: String) {
        if !self.quiet {
            let attempt = match ctx.attempt() {
                1 => String::new(),
                n => format!(" (attempt {n})"),
            };
            // A closed stdout (`| head`) must not fail the activity: the output is a courtesy.
            let _ = writeln!(
                std::io::stdout().lock(),
                "  [{}] {message}{attempt}",
                ctx.idempotency_key()
            );
        }
    }

    fn after_side_effect(&self) {
        self.crash.after_side_effect();
    }
}

fn shop(ctx: &ActivityContext) -> Result<std::sync::Arc<Shop>, ActivityError> {
    ctx.resource::<Shop>().ok_or_else(|| {
        ActivityError::non_retryable(
            "the engine has no `Shop` resource; build it with `.resources(Resources::new().with(Shop::new(..)))`",
        )
    })
}

/// A stand-in for a payment API that deduplicates by idempotency key, as real ones do. Its
/// ledger is an append-only file of `key charge_id cents` lines, synced after every charge.
#[derive(Debug)]
pub struct PaymentProvider {
    path: PathBuf,
    lock: Mutex<()>,
}

impl PaymentProvider {
    /// A provider keeping its ledger at `path` (created on the first charge).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PaymentProvider {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// Charges `payment` once per `key`: returns the charge and whether it is new (`false`: the
    /// key was charged before and this is that charge).
    pub fn charge(&self, key: &str, payment: &Payment) -> Result<(Charge, bool), ActivityError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(charge) = self.charges()?.remove(key) {
            return Ok((charge, false));
        }
        let charge = Charge {
            id: format!("ch_{:08x}", fnv1a(key) as u32),
            cents: payment.cents,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{key} {} {}\n", charge.id, charge.cents).as_bytes())?;
        file.sync_data()?;
        Ok((charge, true))
    }

    /// Every charge in the ledger, by idempotency key.
    pub fn charges(&self) -> Result<HashMap<String, Charge>, ActivityError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(e.into()),
        };
        let mut charges = HashMap::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            let mut fields = line.split(' ');
            if let (Some(key), Some(id), Some(cents)) =
                (fields.next(), fields.next(), fields.next())
            {
                let cents = cents.parse().map_err(|_| {
                    ActivityError::non_retryable(format!(
                        "the payment ledger {} has a malformed line: {line:?}",
                        self.path.display()
                    ))
                })?;
                charges.insert(
                    key.to_string(),
                    Charge {
                        id: id.to_string(),
                        cents,
                    },
                );
            }
        }
        Ok(charges)
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The demo's orders: `count` of them, numbered from 1, every third one large enough for the
/// fraud desk to reject.
pub fn sample_orders(count: u32, hold_ms: u64) -> Vec<Order> {
    const CUSTOMERS: [(&str, &str); 4] = [
        ("Ada Lovelace", "ada@example.com"),
        ("Grace Hopper", "grace@example.com"),
        ("Alan Turing", "alan@example.com"),
        ("Barbara Liskov", "barbara@example.com"),
    ];
    const PRODUCTS: [(&str, u64); 5] = [
        ("MUG-001", 1_250),
        ("TEE-042", 2_400),
        ("BOOK-RUST", 4_999),
        ("KBD-MECH", 13_900),
        ("LAMP-LED", 3_575),
    ];
    (1..=count)
        .map(|n| {
            let (customer, email) = CUSTOMERS[(n as usize - 1) % CUSTOMERS.len()];
            let mut lines: Vec<Line> = (0..(n % 3 + 1))
                .map(|i| {
                    let (sku, unit_cents) = PRODUCTS[(n as usize + i as usize) % PRODUCTS.len()];
                    Line {
                        sku: sku.to_string(),
                        quantity: (n + i) % 3 + 1,
                        unit_cents,
                    }
                })
                .collect();
            if n % 3 == 0 {
                lines.push(Line {
                    sku: "KBD-MECH".to_string(),
                    quantity: 5,
                    unit_cents: 13_900,
                });
            }
            Order {
                id: format!("order-{n}"),
                customer: customer.to_string(),
                email: email.to_string(),
                card: format!("tok_visa_{:04}", 4242 + n),
                lines,
                hold_ms,
            }
        })
        .collect()
}

/// The fraud desk's rule: orders up to this amount (in cents) are approved, larger ones are not.
pub const APPROVAL_LIMIT_CENTS: u64 = 50_000;

/// What the fraud desk decides for `order`.
pub fn review(order_total_cents: u64) -> Approval {
    if order_total_cents <= APPROVAL_LIMIT_CENTS {
        Approval {
            approved: true,
            by: "fraud-desk".to_string(),
            note: "within the automatic approval limit".to_string(),
        }
    } else {
        Approval {
            approved: false,
            by: "fraud-desk".to_string(),
            note: format!(
                "{} is over the {} limit and the card holder could not be reached",
                dollars(order_total_cents),
                dollars(APPROVAL_LIMIT_CENTS)
            ),
        }
    }
}

/// Formats cents as dollars: `$12.50`.
pub fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// FNV-1a: a stable hash for deriving ids from idempotency keys, so a re-run derives the same.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
