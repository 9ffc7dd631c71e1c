use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{WorkflowContext, WorkflowError, workflow};

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    lines: Vec<u64>,
}

fn find(n: u64) -> Option<Order> {
    Some(Order { id: n, lines: vec![n] })
}

fn lookup(n: u64) -> Result<u64, String> {
    Ok(n)
}

fn split(n: u64) -> (u64, u64) {
    (n, n + 1)
}

#[workflow]
async fn let_else(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let Some(order) = find(n) else {
        return Ok(0);
    };
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(order.id)
}

#[workflow]
async fn if_let(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    if let Ok(found) = lookup(n) {
        ctx.sleep(Duration::from_secs(1)).await;
        return Ok(found);
    }
    Ok(0)
}

#[workflow]
async fn match_arm(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    match find(n) {
        Some(order) => {
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(order.id)
        }
        None => Ok(0),
    }
}

#[workflow]
async fn destructured(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (low, high) = split(n);
    let Order { id, lines } = find(n).unwrap();
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(low + high + id + lines.len() as u64)
}

#[workflow]
async fn placeholder(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let (low, high): (u64, _) = split(n);
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(low + high)
}

#[workflow]
async fn for_pattern(ctx: &mut WorkflowContext, orders: Vec<Order>) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    for Order { id, .. } in orders {
        ctx.sleep(Duration::from_secs(1)).await;
        sum += id;
    }
    Ok(sum)
}

fn main() {}
