//! Updates and reviews in a workflow: a reply token kept across an await, a review's three
//! outcomes, an update in a race, and `#[derive(Update)]` with and without a pinned name.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    Race2, ReviewOutcome, ReviewRequest, Update, WorkflowContext, WorkflowError, workflow,
};

#[derive(Serialize, Deserialize, Update)]
#[update(response = u64)]
pub struct Add {
    pub n: u64,
}

#[derive(Serialize, Deserialize, Update)]
#[update(response = String, name = "cart.rename")]
pub enum Rename {
    To(String),
}

#[workflow]
async fn wf(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let (add, reply) = ctx.wait_for_update::<Add>().await;
    ctx.sleep(Duration::from_secs(1)).await;
    ctx.respond(reply, n + add.n);
    let renamed = ctx
        .race((ctx.wait_for_update::<Rename>(), ctx.sleep(Duration::from_secs(5))))
        .await;
    let name: String = match renamed {
        Race2::First((Rename::To(name), reply)) => {
            ctx.respond(reply, name.clone());
            name
        }
        Race2::Second(()) => "unnamed".to_string(),
    };
    let outcome: ReviewOutcome = ctx
        .review(ReviewRequest {
            title: name.clone(),
            reviewers: vec!["ann".to_string()],
            timeout: Duration::from_secs(60),
        })
        .await;
    Ok(match outcome {
        ReviewOutcome::Approved { by, .. } => by,
        ReviewOutcome::Rejected { comment, .. } => comment,
        ReviewOutcome::TimedOut => name,
    })
}

fn main() {
    assert_eq!(<Add as Update>::NAME, "Add");
    assert_eq!(<Rename as Update>::QUEUE, "weft.update/cart.rename");
}
