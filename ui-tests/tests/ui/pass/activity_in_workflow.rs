//! Activities made by `#[activity]` are what `ctx.run` in a `#[workflow]` expects: the workflow
//! compiles, and its first step issues the activity's command with its name and options.

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityError, Command, Resume, Signal, Transition, Workflow, WorkflowContext, WorkflowError,
    activity, workflow,
};

#[derive(Clone, Serialize, Deserialize)]
pub struct Payment {
    pub cents: u64,
}

#[derive(Serialize, Deserialize, Signal)]
pub struct Approved {
    pub by: String,
}

#[activity(name = "payments.charge", max_attempts = 2)]
async fn charge_card(payment: Payment) -> Result<String, ActivityError> {
    Ok(payment.cents.to_string())
}

#[activity]
async fn notify(to: String, text: String) -> Result<(), ActivityError> {
    let _ = (to, text);
    Ok(())
}

#[workflow]
async fn checkout(ctx: &mut WorkflowContext, payment: Payment) -> Result<String, WorkflowError> {
    let charge = ctx.run(charge_card, payment).await?;
    let approval = ctx.wait_for_signal::<Approved>().await;
    ctx.run(notify, (approval.by, charge.clone())).await?;
    Ok(charge)
}

fn main() {
    let mut ctx = WorkflowContext::new("wf-1", 0, std::time::SystemTime::UNIX_EPOCH);
    let state = checkout::start(Payment { cents: 5 });
    match checkout::step(&mut ctx, state, Resume::Start) {
        Ok(Transition::Suspend {
            command: Command::Activity { name, options, .. },
            ..
        }) => {
            assert_eq!(name, "payments.charge");
            assert_eq!(options.retry.max_attempts, 2);
        }
        _ => panic!("the first step must run the charge"),
    }
}
