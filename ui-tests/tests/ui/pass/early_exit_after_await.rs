//! A branch that awaits and then leaves early (`return`, `break`, `continue`) compiles, and the
//! code after the branch still sees its variables: resuming inside the branch must not emit the
//! statements after it, whose variables that resume point does not carry.

use weft_runtime::codec::{decode, encode};
use weft_runtime::{
    ActivityError, Command, Resume, Transition, Workflow, WorkflowContext, WorkflowError,
    activity, workflow,
};

#[activity]
async fn inc(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[workflow]
async fn return_in_if(ctx: &mut WorkflowContext, x: u64) -> Result<u64, WorkflowError> {
    let c = ctx.run(inc, x).await?;
    if c > 5 {
        let d = ctx.run(inc, c).await?;
        return Ok(d * 100);
    }
    let e = ctx.run(inc, x).await?;
    Ok(e + c)
}

#[workflow]
async fn return_in_match(ctx: &mut WorkflowContext, x: u64) -> Result<u64, WorkflowError> {
    let c = ctx.run(inc, x).await?;
    match c % 2 {
        0 => {
            let d = ctx.run(inc, c).await?;
            return Ok(d * 100);
        }
        _ => {}
    }
    let e = ctx.run(inc, c).await?;
    Ok(e + x)
}

#[workflow]
async fn break_and_continue(ctx: &mut WorkflowContext, x: u64) -> Result<u64, WorkflowError> {
    let mut i: u64 = x;
    let mut total: u64 = 0;
    loop {
        i = ctx.run(inc, i).await?;
        if i % 3 == 0 {
            let d = ctx.run(inc, i).await?;
            total += d * 10;
            continue;
        }
        if i > x + 4 {
            let d = ctx.run(inc, i).await?;
            total += d * 1000;
            break;
        }
        total += i;
    }
    Ok(total + x)
}

/// Drives a workflow to the end, answering every `inc` call.
fn drive<W: Workflow<Input = u64, Output = u64, Error = WorkflowError>>(x: u64) -> u64 {
    let mut ctx = WorkflowContext::new("wf", 0, std::time::SystemTime::UNIX_EPOCH);
    let mut state = W::start(x);
    let mut resume = Resume::Start;
    loop {
        match W::step(&mut ctx, state, resume) {
            Ok(Transition::Suspend {
                state: next,
                command: Command::Activity { input, .. },
            }) => {
                // Round-trip the state, as a restart would.
                state = decode(&encode(&next).unwrap()).unwrap();
                let n: u64 = decode(&input).unwrap();
                resume = Resume::Activity(Ok(encode(&(n + 1)).unwrap()));
            }
            Ok(Transition::Complete(result)) => return result.unwrap(),
            _ => panic!("unexpected transition"),
        }
    }
}

fn main() {
    // c = 11 > 5: d = 12, returned early.
    assert_eq!(drive::<return_in_if>(10), 1200);
    // c = 2: e = 2, falls through.
    assert_eq!(drive::<return_in_if>(1), 4);
    // c = 4 is even: d = 5, returned early.
    assert_eq!(drive::<return_in_match>(3), 500);
    // c = 3 is odd: e = 4, falls through.
    assert_eq!(drive::<return_in_match>(2), 6);
    // i = 1, 2, 3 (continue with d = 4), 4, then 5 > 4: d = 6, break.
    assert_eq!(drive::<break_and_continue>(0), 1 + 2 + 40 + 4 + 6000);
    // i = 4, 5, 6 (continue with d = 7), 7, then 8 > 7: d = 9, break.
    assert_eq!(drive::<break_and_continue>(3), 4 + 5 + 70 + 7 + 9000 + 3);
}
