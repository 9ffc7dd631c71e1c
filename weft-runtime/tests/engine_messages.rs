//! Updates (`ctx.wait_for_update` / `ctx.respond` / `Engine::update`) and human review
//! (`ctx.review` / `Engine::pending_reviews` / `Engine::decide_review`), across restarts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::engine::VirtualClock;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    Decision, Engine, EngineError, ReviewFilter, ReviewOutcome, ReviewRequest, Signal, Update,
    UpdateOptions, WorkflowContext, WorkflowError, workflow,
};

/// Adds `n` items to the cart; zero checks out.
#[derive(Debug, Clone, Serialize, Deserialize, Update)]
#[update(response = u64, name = "cart.add")]
struct AddItem {
    n: u64,
}

/// Never sent: keeps a workflow busy elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Poke;

/// Answers each update with the running total; stops at zero.
#[workflow]
async fn cart(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = start;
    loop {
        let (item, reply) = ctx.wait_for_update::<AddItem>().await;
        total += item.n;
        ctx.respond(reply, total);
        if item.n == 0 {
            break;
        }
    }
    Ok(total)
}

/// Waits for a signal, then for one update.
#[workflow]
async fn busy(ctx: &mut WorkflowContext, _input: ()) -> Result<u64, WorkflowError> {
    let _poke = ctx.wait_for_signal::<Poke>().await;
    let (item, reply) = ctx.wait_for_update::<AddItem>().await;
    ctx.respond(reply, item.n);
    Ok(item.n)
}

/// Asks for a review and reports how it ended.
#[workflow]
async fn approval(ctx: &mut WorkflowContext, title: String) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(ReviewRequest {
            title,
            reviewers: vec!["ana".to_string(), "bo".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    Ok(match outcome {
        ReviewOutcome::Approved { by, comment } => format!("approved by {by}: {comment}"),
        ReviewOutcome::Rejected { by, comment } => format!("rejected by {by}: {comment}"),
        ReviewOutcome::TimedOut => "timed out".to_string(),
    })
}

fn opts(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(30),
    }
}

async fn build(storage: &MemoryStorage, clock: &VirtualClock) -> Engine {
    Engine::builder(storage.clone())
        .register::<cart>()
        .register::<busy>()
        .register::<approval>()
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

/// How many reviews are pending, over every workflow.
async fn pending(engine: &Engine) -> usize {
    engine
        .pending_reviews(&ReviewFilter::default(), 100, None)
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_answered_and_a_duplicate_gets_the_first_answer_after_a_restart() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await;
    let id = engine.start::<cart>(100).await.unwrap().id().to_string();
    assert_eq!(
        engine
            .update(&id, AddItem { n: 5 }, opts("a"))
            .await
            .unwrap(),
        105
    );
    // The same update id again, even with another request, is not applied twice.
    assert_eq!(
        engine
            .update(&id, AddItem { n: 50 }, opts("a"))
            .await
            .unwrap(),
        105
    );
    assert_eq!(
        engine
            .update(&id, AddItem { n: 2 }, opts("b"))
            .await
            .unwrap(),
        107
    );
    engine.shutdown().await;

    let engine = build(&storage, &clock).await;
    assert_eq!(
        engine
            .update(&id, AddItem { n: 9 }, opts("b"))
            .await
            .unwrap(),
        107
    );
    assert_eq!(
        engine
            .update(&id, AddItem { n: 0 }, opts("c"))
            .await
            .unwrap(),
        107
    );
    assert_eq!(engine.result::<cart>(&id).await.unwrap().unwrap(), 107);
    // Answers outlive the workflow; a new update to a finished workflow is refused.
    assert_eq!(
        engine
            .update(&id, AddItem { n: 1 }, opts("a"))
            .await
            .unwrap(),
        105
    );
    let late = engine.update(&id, AddItem { n: 1 }, opts("d")).await;
    assert!(
        matches!(late, Err(EngineError::Finished { .. })),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_update_times_out_stays_queued_and_is_answered_later() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await;
    let id = engine.start::<busy>(()).await.unwrap().id().to_string();
    let short = UpdateOptions {
        update_id: "u1".to_string(),
        timeout: Duration::from_millis(20),
    };
    let timed_out = engine.update(&id, AddItem { n: 4 }, short).await;
    match timed_out {
        Err(e @ EngineError::UpdateTimedOut { .. }) => {
            assert_eq!(e.code(), "engine.update_timed_out")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    engine.signal(&id, Poke).await.unwrap();
    // The queued update is delivered once the workflow waits for it; a retry gets the answer.
    assert_eq!(
        engine
            .update(&id, AddItem { n: 99 }, opts("u1"))
            .await
            .unwrap(),
        4
    );
    assert_eq!(engine.result::<busy>(&id).await.unwrap().unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_is_listed_decided_once_and_resumes_the_workflow_across_a_restart() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await;
    let id = engine
        .start::<approval>("refund #7".to_string())
        .await
        .unwrap()
        .id()
        .to_string();
    let other = engine
        .start::<approval>("refund #8".to_string())
        .await
        .unwrap()
        .id()
        .to_string();
    engine.shutdown().await;

    let engine = build(&storage, &clock).await;
    let all = engine
        .pending_reviews(&ReviewFilter::default(), 100, None)
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 2);
    let mine = all.iter().find(|r| r.workflow_id == id).unwrap();
    assert_eq!(mine.title, "refund #7");
    assert_eq!(mine.reviewers, vec!["ana".to_string(), "bo".to_string()]);
    assert_eq!(mine.deadline, mine.requested_at + Duration::from_secs(3600));
    let nobody = ReviewFilter {
        reviewer: Some("cy".to_string()),
        ..ReviewFilter::default()
    };
    let none = engine.pending_reviews(&nobody, 100, None).await.unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.next_page_token, None);
    let all = ReviewFilter::default();
    let page = engine.pending_reviews(&all, 1, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.next_page_token.as_deref();
    assert!(token.is_some(), "a full page continues");
    let page2 = engine.pending_reviews(&all, 1, token).await.unwrap();
    assert_eq!(page2.items.len(), 1);
    let page3 = engine
        .pending_reviews(&all, 1, page2.next_page_token.as_deref())
        .await
        .unwrap();
    assert!(page3.items.is_empty(), "two reviews in all");
    assert_eq!(page3.next_page_token, None);
    assert!(matches!(
        engine.pending_reviews(&all, 1, Some("")).await,
        Err(EngineError::InvalidPageToken)
    ));
    let (page, page2) = (page.items, page2.items);
    assert_ne!(page[0].workflow_id, page2[0].workflow_id);

    let approve = Decision::Approved {
        by: "ana".to_string(),
        comment: "ok".to_string(),
    };
    engine.decide_review(&id, approve.clone()).await.unwrap();
    let twice = engine.decide_review(&id, approve).await;
    assert!(
        matches!(twice, Err(EngineError::ReviewNotPending { .. })),
        "{twice:?}"
    );
    assert_eq!(
        engine.result::<approval>(&id).await.unwrap().unwrap(),
        "approved by ana: ok"
    );
    engine
        .decide_review(
            &other,
            Decision::Rejected {
                by: "bo".to_string(),
                comment: "no receipt".to_string(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        engine.result::<approval>(&other).await.unwrap().unwrap(),
        "rejected by bo: no receipt"
    );
    assert_eq!(pending(&engine).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_without_a_decision_times_out_and_can_no_longer_be_decided() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await;
    let id = engine
        .start::<approval>("refund #9".to_string())
        .await
        .unwrap()
        .id()
        .to_string();
    assert_eq!(pending(&engine).await, 1);
    clock.advance(Duration::from_secs(3601));
    assert_eq!(
        engine.result::<approval>(&id).await.unwrap().unwrap(),
        "timed out"
    );
    assert_eq!(pending(&engine).await, 0);
    let late = engine
        .decide_review(
            &id,
            Decision::Approved {
                by: "ana".to_string(),
                comment: "late".to_string(),
            },
        )
        .await;
    assert!(
        matches!(late, Err(EngineError::ReviewNotPending { .. })),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_workflow_at_a_review_ends_it_and_removes_the_review() {
    let storage = MemoryStorage::new();
    let clock = VirtualClock::default();
    let engine = build(&storage, &clock).await;
    let id = engine
        .start::<approval>("refund #10".to_string())
        .await
        .unwrap()
        .id()
        .to_string();
    assert_eq!(pending(&engine).await, 1);
    engine.cancel(&id).await.unwrap();
    let ended = engine.result::<approval>(&id).await;
    assert!(
        matches!(ended, Err(EngineError::Cancelled { .. })),
        "{ended:?}"
    );
    assert_eq!(pending(&engine).await, 0);
}
