//! Sample workflows whose generated code decodes stored bytes: the state enum (read back at
//! every resume, and by a migration from the older version) and each kind of resume payload
//! (an activity's output, a signal, a race's and an `all`'s value, a child's output, an update
//! with its reply token, a review's decision).
//!
//! Their code never panics on any value it can be given, so a panic the fuzzer sees is in
//! decoding or in the runtime.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use weft_runtime::codec;
use weft_runtime::update::UpdateReply;
use weft_runtime::{
    ActivityContext, ActivityError, ChildError, Decision, Race2, Resume, ReviewOutcome,
    ReviewRequest, Signal, Transition, Update, Workflow, WorkflowContext, WorkflowError, activity,
    workflow,
};

use crate::generate;
use crate::rng::Rng;

/// An order to fulfil.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: String,
    /// What was ordered.
    pub lines: Vec<Line>,
    /// Whether it ships express.
    pub express: bool,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The item.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price per item, in cents.
    pub cents: u64,
}

/// The priced order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Priced {
    /// The total, in cents.
    pub total_cents: u64,
    /// Discounts by name.
    pub discounts: Vec<(String, u64)>,
    /// The currency, if not the default.
    pub currency: Option<String>,
}

/// An approval, sent as a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
pub struct Approval {
    /// Who approved.
    pub by: String,
    /// Their notes.
    pub notes: Vec<String>,
    /// The approval level.
    pub level: u8,
}

/// A new address, sent as an update; answered with the label text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Update)]
#[update(response = String, name = "fuzz.change_address")]
pub struct ChangeAddress {
    /// The address lines.
    pub lines: Vec<String>,
    /// The postcode, if any.
    pub postcode: Option<String>,
}

/// Prices an order.
#[activity]
pub async fn price(_ctx: ActivityContext, order: Order) -> Result<Priced, ActivityError> {
    Ok(Priced {
        total_cents: order.lines.iter().fold(0u64, |sum, line| {
            sum.saturating_add(line.cents.saturating_mul(u64::from(line.quantity)))
        }),
        discounts: Vec::new(),
        currency: None,
    })
}

/// Ships one line.
#[activity]
pub async fn ship(_ctx: ActivityContext, line: Line) -> Result<u64, ActivityError> {
    Ok(u64::from(line.quantity))
}

/// Prints a shipping label, as a child workflow.
#[workflow(name = "fuzz_label")]
pub async fn make_label(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(format!("label {id}"))
}

/// Version 1 of the order workflow: the source of a migration.
#[workflow(name = "fuzz_order", version = 1)]
pub async fn order_v1(ctx: &mut WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    let priced: Priced = ctx.run(price, order.clone()).await?;
    let approval: Approval = ctx.wait_for_signal::<Approval>().await;
    Ok(format!(
        "{} {} {}",
        order.id, priced.total_cents, approval.by
    ))
}

/// Version 2 of the order workflow: every kind of durable await.
#[workflow(name = "fuzz_order", version = 2)]
pub async fn order_v2(ctx: &mut WorkflowContext, order: Order) -> Result<String, WorkflowError> {
    let priced: Priced = ctx.run(price, order.clone()).await?;
    let approval: Approval = ctx.wait_for_signal::<Approval>().await;
    let raced: Race2<Approval, ()> = ctx
        .race((
            ctx.wait_for_signal::<Approval>(),
            ctx.sleep(Duration::from_secs(60)),
        ))
        .await;
    let shipped: Vec<Result<u64, ActivityError>> = ctx
        .all(
            order
                .lines
                .iter()
                .map(|line| ctx.run(ship, line.clone()))
                .collect::<Vec<_>>(),
        )
        .await;
    let label: Result<String, ChildError> = ctx.child(make_label, order.id.clone()).await;
    let (change, reply) = ctx.wait_for_update::<ChangeAddress>().await;
    ctx.respond(reply, format!("{} lines", change.lines.len()));
    let verdict: ReviewOutcome = ctx
        .review(ReviewRequest {
            title: order.id.clone(),
            reviewers: vec![approval.by.clone()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    let second: String = match raced {
        Race2::First(again) => again.by,
        Race2::Second(()) => String::new(),
    };
    let units: u64 = shipped
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .fold(0u64, |sum, n| sum.saturating_add(*n));
    Ok(format!(
        "{} {} {} {second} {units} {:?} {:?} {verdict:?}",
        order.id,
        priced.total_cents,
        approval.by,
        label.ok(),
        change.postcode
    ))
}

/// Answers with the whole state of [`order_v2`], so a by-name query's JSON encoding goes over
/// every variant and every payload a state can hold.
pub struct Progress;

impl weft_runtime::Query for Progress {
    type Workflow = order_v2;
    type Output = Option<<order_v2 as Workflow>::State>;
    const NAME: &'static str = "fuzz.progress";

    /// A copy of the state (the generated enum is not `Clone`): encoded and decoded again.
    fn answer(state: &<order_v2 as Workflow>::State) -> Self::Output {
        codec::encode(state)
            .ok()
            .and_then(|bytes| codec::decode(&bytes).ok())
    }
}

/// A random order, with at least one line.
pub fn order(rng: &mut Rng) -> Order {
    Order {
        id: rng.string(),
        lines: (0..1 + rng.below(3))
            .map(|_| Line {
                sku: rng.string(),
                quantity: rng.int() as u32,
                cents: rng.int(),
            })
            .collect(),
        express: rng.flip(),
    }
}

/// A random approval.
pub fn approval(rng: &mut Rng) -> Approval {
    Approval {
        by: rng.string(),
        notes: rng.strings(),
        level: rng.next_u64() as u8,
    }
}

/// The durable awaits of [`order_v2`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Await {
    /// `ctx.run(price, ..)`: resumed by a `Priced`.
    Price,
    /// `ctx.wait_for_signal::<Approval>()`.
    Approval,
    /// The race of a second approval and a sleep.
    Race,
    /// `ctx.all` over the shipments.
    Ship,
    /// `ctx.child(make_label, ..)`.
    Label,
    /// `ctx.wait_for_update::<ChangeAddress>()`.
    Update,
    /// `ctx.review(..)`.
    Review,
}

impl Await {
    /// Every await, in the order the workflow reaches them.
    pub const ALL: [Await; 7] = [
        Await::Price,
        Await::Approval,
        Await::Race,
        Await::Ship,
        Await::Label,
        Await::Update,
        Await::Review,
    ];

    /// A random valid payload of this await's resume value, encoded.
    pub fn payload(self, rng: &mut Rng, lines: usize) -> Vec<u8> {
        let encoded = match self {
            Await::Price => codec::encode(&Priced {
                total_cents: rng.int(),
                discounts: (0..rng.below(3))
                    .map(|_| (rng.string(), rng.int()))
                    .collect(),
                currency: rng.option(Rng::string),
            }),
            Await::Approval => codec::encode(&approval(rng)),
            Await::Race => {
                let raced: Race2<Approval, ()> = if rng.flip() {
                    Race2::First(approval(rng))
                } else {
                    Race2::Second(())
                };
                codec::encode(&raced)
            }
            Await::Ship => {
                let shipped: Vec<Result<u64, ActivityError>> = (0..lines)
                    .map(|_| {
                        if rng.flip() {
                            Ok(rng.int())
                        } else {
                            Err(generate::activity_error(rng))
                        }
                    })
                    .collect();
                codec::encode(&shipped)
            }
            Await::Label => codec::encode(&rng.string()),
            Await::Update => {
                let change = ChangeAddress {
                    lines: rng.strings(),
                    postcode: rng.option(Rng::string),
                };
                codec::encode(&(change, UpdateReply::<ChangeAddress>::new(rng.string())))
            }
            Await::Review => {
                let (by, comment) = (rng.string(), rng.string());
                let decided: Race2<Decision, ()> = match rng.below(3) {
                    0 => Race2::First(Decision::Approved { by, comment }),
                    1 => Race2::First(Decision::Rejected { by, comment }),
                    _ => Race2::Second(()),
                };
                codec::encode(&decided)
            }
        };
        encoded.unwrap_or_default()
    }

    /// The resume value that carries `payload` to this await.
    pub fn resume(self, payload: Vec<u8>) -> Resume {
        match self {
            Await::Price => Resume::Activity(Ok(payload)),
            Await::Approval => Resume::Signal(payload),
            Await::Race | Await::Ship | Await::Review => Resume::Group(payload),
            Await::Label => Resume::Child(Ok(payload)),
            Await::Update => Resume::Signal(payload),
        }
    }
}

fn context(step: u64) -> WorkflowContext {
    WorkflowContext::new(
        "fuzz/1",
        step,
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    )
}

/// Steps `W` from its start through `resumes`; the state it then waits in, if it still waits.
pub fn drive<W: Workflow>(input: W::Input, resumes: Vec<Resume>) -> Option<W::State> {
    let mut state = W::start(input);
    let mut resume = Resume::Start;
    let mut resumes = resumes.into_iter();
    for step in 0.. {
        match W::step(&mut context(step), state, resume).ok()? {
            Transition::Suspend { state: next, .. } => state = next,
            Transition::Complete(_) | Transition::Cancelled => return None,
        }
        match resumes.next() {
            Some(next) => resume = next,
            None => return Some(state),
        }
    }
    None
}

/// The state of [`order_v2`] waiting at `at`, reached with random valid resumes.
pub fn state_at(rng: &mut Rng, at: Await) -> Option<<order_v2 as Workflow>::State> {
    let order = order(rng);
    let lines = order.lines.len();
    let resumes = Await::ALL
        .iter()
        .take_while(|a| **a != at)
        .map(|a| a.resume(a.payload(rng, lines)))
        .collect();
    drive::<order_v2>(order, resumes)
}

/// Steps `state` with `resume`, as the engine does; whatever the values, this must not panic.
pub fn step<W: Workflow>(state: W::State, resume: Resume) -> bool {
    W::step(&mut context(9), state, resume).is_ok()
}
