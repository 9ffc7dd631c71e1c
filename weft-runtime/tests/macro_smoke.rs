//! Smoke test: a workflow compiled by `#[workflow]` runs through its steps with a state round trip at every suspension.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    Activity, ActivityContext, ActivityError, Resume, Signal, Transition, Workflow,
    WorkflowContext, WorkflowError, workflow,
};

#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
struct charge_card;
impl Activity for charge_card {
    type Input = u64;
    type Output = String;
    const NAME: &'static str = "charge_card";
    async fn execute(&self, _ctx: ActivityContext, input: u64) -> Result<String, ActivityError> {
        Ok(format!("charge-{input}"))
    }
}
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
struct ship_line;
impl Activity for ship_line {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "ship_line";
    async fn execute(&self, _ctx: ActivityContext, input: u32) -> Result<u32, ActivityError> {
        Ok(input)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Order {
    amount: u64,
    lines: Vec<u32>,
}
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Receipt {
    charge: String,
    shipped: u32,
    approved: bool,
}
#[derive(Serialize, Deserialize)]
pub struct Approval {
    approved: bool,
}
impl Signal for Approval {
    const NAME: &'static str = "Approval";
}

#[workflow]
async fn checkout(ctx: &mut WorkflowContext, order: Order) -> Result<Receipt, WorkflowError> {
    let charge = ctx.run(charge_card, order.amount).await?;
    ctx.sleep(Duration::from_secs(3600)).await;
    let approval = ctx.wait_for_signal::<Approval>().await;
    if !approval.approved {
        return Ok(Receipt {
            charge,
            shipped: 0,
            approved: false,
        });
    }
    let mut shipped: u32 = 0;
    for line in 0..order.lines.len() {
        shipped += ctx.run(ship_line, order.lines[line]).await?;
    }
    Ok(Receipt {
        charge,
        shipped,
        approved: true,
    })
}

#[test]
fn smoke() {
    let mut ctx = WorkflowContext::new("wf", 0, std::time::SystemTime::now());
    let mut state = checkout::start(Order {
        amount: 5,
        lines: vec![1, 2, 3],
    });
    let mut resume = Resume::Start;
    let mut commands = Vec::new();
    loop {
        match checkout::step(&mut ctx, state, resume).unwrap() {
            Transition::Suspend { state: s, command } => {
                commands.push(command.kind());
                resume = match command {
                    weft_runtime::Command::Activity {
                        name: "charge_card",
                        input,
                        ..
                    } => {
                        let v: u64 = weft_runtime::codec::decode(&input).unwrap();
                        Resume::Activity(Ok(
                            weft_runtime::codec::encode(&format!("charge-{v}")).unwrap()
                        ))
                    }
                    weft_runtime::Command::Activity { input, .. } => Resume::Activity(Ok(input)),
                    weft_runtime::Command::Sleep { .. } => Resume::Timer,
                    weft_runtime::Command::WaitForSignal { .. } => Resume::Signal(
                        weft_runtime::codec::encode(&Approval { approved: true }).unwrap(),
                    ),
                };
                state =
                    weft_runtime::codec::decode(&weft_runtime::codec::encode(&s).unwrap()).unwrap();
            }
            Transition::Complete(r) => {
                assert_eq!(
                    r.unwrap(),
                    Receipt {
                        charge: "charge-5".into(),
                        shipped: 6,
                        approved: true
                    }
                );
                break;
            }
            Transition::Cancelled => panic!(),
        }
    }
    assert_eq!(
        commands,
        [
            "activity", "sleep", "signal", "activity", "activity", "activity"
        ]
    );
}
