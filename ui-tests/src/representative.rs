//! Representative workflows: one per construct the compiler supports, each small enough to
//! read in its expansion snapshot. Every `#[workflow]` here is snapshot-tested by `weft-macros`
//! and differential-tested in `tests/differential.rs`.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityError, ChildError, Race2, ReviewOutcome, ReviewRequest, Saga, Signal, Update,
    WorkflowContext, WorkflowError, activity, workflow,
};

/// Adds one to its input.
#[activity]
pub async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

/// Doubles its input, failing permanently above 1000.
#[activity]
pub async fn double(n: u64) -> Result<u64, ActivityError> {
    if n > 1000 {
        return Err(ActivityError::non_retryable("too large"));
    }
    Ok(n * 2)
}

/// Echoes a string back, upper-cased.
#[activity]
pub async fn shout(text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

/// Checks a line of an order.
#[activity]
pub async fn check_line(line: Line) -> Result<bool, ActivityError> {
    Ok(line.quantity > 0)
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// A reviewer's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
pub struct Approval {
    /// Whether it was approved.
    pub approved: bool,
    /// Who decided.
    pub by: String,
}

/// An update: adds to a running total, answered with the new total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Update)]
#[update(response = u64)]
pub struct AddAmount {
    /// How much to add.
    pub n: u64,
}

/// A workflow-defined error: activity errors convert into it, so `?` works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderError {
    /// An activity failed.
    Activity(String),
    /// The order was rejected.
    Rejected(String),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::Activity(m) => write!(f, "activity failed: {m}"),
            OrderError::Rejected(m) => write!(f, "rejected: {m}"),
        }
    }
}

impl From<ActivityError> for OrderError {
    fn from(e: ActivityError) -> Self {
        OrderError::Activity(e.to_string())
    }
}

/// Straight-line code: activities, a sleep and a signal in sequence.
#[workflow]
pub async fn straight_line(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let a = ctx.run(add_one, start).await?;
    ctx.sleep(Duration::from_secs(60)).await;
    let approval = ctx.wait_for_signal::<Approval>().await;
    let b = ctx.run(double, a).await?;
    if approval.approved { Ok(b) } else { Ok(a) }
}

/// `if`/`else` with awaits in both branches and an `else if`.
#[workflow]
pub async fn if_else(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = n;
    if n.is_multiple_of(2) {
        total = ctx.run(double, total).await?;
    } else if n.is_multiple_of(3) {
        total = ctx.run(add_one, total).await?;
        total += 10;
    } else {
        ctx.sleep(Duration::from_millis(5)).await;
    }
    let last = ctx.run(add_one, total).await?;
    Ok(last)
}

/// `match` on an awaited result, catching the error and carrying on.
#[workflow]
pub async fn match_result(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let label: String = match ctx.run(double, n).await {
        Ok(v) if v > 100 => format!("big {v}"),
        Ok(v) => {
            let again = ctx.run(add_one, v).await?;
            format!("small {again}")
        }
        Err(e) => {
            ctx.sleep(Duration::from_secs(1)).await;
            format!("failed {}", e.code())
        }
    };
    let loud = ctx.run(shout, label).await?;
    Ok(loud)
}

/// `loop` with labelled `break` and `continue` across nested loops.
#[workflow]
pub async fn labelled_loops(ctx: &mut WorkflowContext, rounds: u64) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    let mut i: u64 = 0;
    'outer: loop {
        i += 1;
        let mut j: u64 = 0;
        loop {
            j += 1;
            if j > 3 {
                continue 'outer;
            }
            sum = ctx.run(add_one, sum).await?;
            if sum > rounds * 2 {
                break 'outer;
            }
            if j == 2 {
                break;
            }
        }
        if i >= rounds {
            break;
        }
    }
    Ok(sum * 100 + i)
}

/// `while` with an await in the condition's loop body and a `while let` over a queue.
#[workflow]
pub async fn while_loops(ctx: &mut WorkflowContext, limit: u64) -> Result<u64, WorkflowError> {
    let mut value: u64 = 1;
    while value < limit {
        value = ctx.run(double, value).await?;
    }
    let mut queue: VecDeque<u64> = VecDeque::new();
    queue.push_back(value);
    queue.push_back(limit);
    let mut seen: u64 = 0;
    while let Some(next) = queue.pop_front() {
        seen += ctx.run(add_one, next).await?;
    }
    Ok(seen)
}

/// `for` over a typed range, an owned `Vec` and a `VecDeque`.
#[workflow]
pub async fn for_loops(ctx: &mut WorkflowContext, lines: Vec<Line>) -> Result<u32, WorkflowError> {
    let mut ok_lines: u32 = 0;
    for line in lines {
        if ctx.run(check_line, line).await? {
            ok_lines += 1;
        }
    }
    let mut total: u64 = 0;
    for i in 0..3u64 {
        total += ctx.run(add_one, i).await?;
    }
    let words: VecDeque<String> = VecDeque::from(vec!["a".to_string(), "b".to_string()]);
    for word in words {
        let loud = ctx.run(shout, word).await?;
        total += loud.len() as u64;
    }
    Ok(ok_lines * 1000 + total as u32)
}

/// Early `return` from inside a loop, and `?` into a workflow-defined error.
#[workflow]
pub async fn early_return(ctx: &mut WorkflowContext, n: u64) -> Result<u64, OrderError> {
    let mut value: u64 = n;
    for round in 1..=5u32 {
        value = ctx.run(double, value).await?;
        if value > 50 {
            return Ok(value + u64::from(round));
        }
    }
    let approval = ctx.wait_for_signal::<Approval>().await;
    if !approval.approved {
        return Err(OrderError::Rejected(approval.by));
    }
    Ok(value)
}

/// Shadowing: sequential shadowing, and an inner binding shadowing an outer one that is still
/// needed after the inner scope, both held across awaits.
#[workflow]
pub async fn shadowing(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let x: u64 = n;
    let x = ctx.run(add_one, x).await?;
    let label: String = format!("outer {x}");
    {
        let label: String = format!("inner {x}");
        let x: String = ctx.run(shout, label.clone()).await?;
        ctx.sleep(Duration::from_secs(1)).await;
        if x.len() > 100 {
            return Ok(label);
        }
    }
    let done = ctx.run(shout, label).await?;
    Ok(format!("{done}/{x}"))
}

/// Nested blocks and deep nesting: an await inside a `match` inside an `if` inside a loop.
#[workflow]
pub async fn deep_nesting(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut acc: u64 = 0;
    let mut round: u64 = 0;
    loop {
        round += 1;
        {
            let step: u64 = round * 10;
            if round % 2 == 1 {
                match round {
                    1 => {
                        acc += ctx.run(add_one, step).await?;
                    }
                    _ => {
                        let doubled = ctx.run(double, step).await?;
                        acc += doubled;
                    }
                }
            } else {
                ctx.sleep(Duration::from_secs(round)).await;
            }
        }
        if round >= n {
            break;
        }
    }
    Ok(acc)
}

/// Variables used only inside macros, including format-string captures, are kept.
#[workflow]
pub async fn macro_uses(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let total: u64 = 41;
    let greeting: String = format!("hello {name}");
    let total = ctx.run(add_one, total).await?;
    let count = ctx.run(double, 2).await?;
    assert!(count == 4, "count was {count}");
    Ok(format!("{greeting}: {total} {}", count))
}

/// Awaits inside larger expressions are hoisted in evaluation order.
#[workflow]
pub async fn hoisted(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let sum: u64 = ctx.run(add_one, n).await? + ctx.run(double, n).await?;
    let values: Vec<u64> = Vec::from([ctx.run(add_one, sum).await?, sum]);
    Ok(values.iter().sum::<u64>() + ctx.run(add_one, 0).await?)
}

/// A signal wait with a deadline built from a loop: the usual approval chain.
#[workflow]
pub async fn approval_chain(
    ctx: &mut WorkflowContext,
    reviewers: Vec<String>,
) -> Result<Vec<String>, WorkflowError> {
    let mut approved_by: Vec<String> = Vec::new();
    for reviewer in reviewers {
        let note = ctx.run(shout, reviewer.clone()).await?;
        let approval = ctx.wait_for_signal::<Approval>().await;
        if !approval.approved {
            return Err(WorkflowError::failed(format!(
                "{reviewer} rejected ({note})"
            )));
        }
        approved_by.push(approval.by);
    }
    Ok(approved_by)
}

/// A workflow with no input and two inputs-like fields through a tuple-free signature.
#[workflow]
pub async fn no_input(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let one = ctx.run(add_one, 0).await?;
    Ok(one)
}

/// A workflow with several inputs, stored as one tuple input.
#[workflow]
pub async fn several_inputs(
    ctx: &mut WorkflowContext,
    a: u64,
    b: String,
) -> Result<String, WorkflowError> {
    let a2 = ctx.run(double, a).await?;
    let b2 = ctx.run(shout, b).await?;
    Ok(format!("{b2}{a2}"))
}

/// Checks one line and reports whether it can ship.
#[workflow]
pub async fn line_check(ctx: &mut WorkflowContext, line: Line) -> Result<bool, WorkflowError> {
    let ok = ctx.run(check_line, line).await?;
    Ok(ok)
}

/// Fan-out and races: a tuple `all`, a `Vec` `all` over a list, a child workflow per line, a
/// signal raced against a deadline, and a saga compensated on failure.
#[workflow]
pub async fn composition(
    ctx: &mut WorkflowContext,
    lines: Vec<Line>,
) -> Result<String, WorkflowError> {
    let mut saga: Saga = Saga::new();
    let (first, _, loud) = ctx
        .all((
            ctx.run(add_one, 1),
            ctx.sleep(Duration::from_secs(1)),
            ctx.run(shout, "go".to_string()),
        ))
        .await;
    saga.add(double, 0);
    let checks: Vec<Result<bool, ActivityError>> = ctx
        .all(
            lines
                .iter()
                .map(|l| ctx.run(check_line, l.clone()))
                .collect::<Vec<_>>(),
        )
        .await;
    let children: Vec<Result<bool, ChildError>> = ctx
        .all(
            lines
                .into_iter()
                .map(|l| ctx.child(line_check, l))
                .collect::<Vec<_>>(),
        )
        .await;
    let decision = ctx
        .race((
            ctx.wait_for_signal::<Approval>(),
            ctx.sleep(Duration::from_secs(3600)),
        ))
        .await;
    let approved = match decision {
        Race2::First(approval) => approval.approved,
        Race2::Second(()) => false,
    };
    if !approved {
        while let Some(step) = saga.pop() {
            ctx.compensate(step).await?;
        }
        return Err(WorkflowError::failed("not approved in time"));
    }
    let ok = checks.iter().filter(|c| matches!(c, Ok(true))).count()
        + children.iter().filter(|c| matches!(c, Ok(true))).count();
    Ok(format!("{}:{}:{ok}", first?, loud?))
}

/// Messages: updates answered in a loop (the reply token kept across a durable await), then a
/// human review whose three outcomes are handled.
#[workflow]
pub async fn messages(ctx: &mut WorkflowContext, limit: u64) -> Result<String, WorkflowError> {
    let mut total: u64 = 0;
    while total < limit {
        let (amount, reply) = ctx.wait_for_update::<AddAmount>().await;
        total = ctx.run(add_one, total + amount.n).await? - 1;
        ctx.respond(reply, total);
    }
    let outcome = ctx
        .review(ReviewRequest {
            title: format!("total {total}"),
            reviewers: vec!["ann".to_string()],
            timeout: Duration::from_secs(60),
        })
        .await;
    match outcome {
        ReviewOutcome::Approved { by, .. } => Ok(format!("{total} approved by {by}")),
        ReviewOutcome::Rejected { by, comment } => Err(WorkflowError::failed(format!(
            "{total} rejected by {by}: {comment}"
        ))),
        ReviewOutcome::TimedOut => Ok(format!("{total} unreviewed")),
    }
}
