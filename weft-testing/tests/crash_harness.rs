//! The crash harness on the representative workflows, and on workflows that do not survive.

use weft_testing::{CrashTest, Signals, survives_crashes};
use weft_ui_tests::representative::{
    Approval, Line, approval_chain, deep_nesting, early_return, for_loops, hoisted, if_else,
    labelled_loops, match_result, shadowing, straight_line, while_loops,
};

fn approve(by: &str) -> Approval {
    Approval {
        approved: true,
        by: by.to_string(),
    }
}

#[tokio::test]
async fn straight_line_survives_a_crash_after_every_commit() {
    let report = survives_crashes::<straight_line>(4, Signals::none().then(approve("ada"))).await;
    assert_eq!(report.output, serde_json::json!({ "Ok": 10 }));
    assert_eq!(report.crashed_runs, report.commits - 1);
    // The chained run crashed after each commit but the last, too.
    assert_eq!(report.chain_crashes, report.commits - 1, "{report}");
    assert_eq!(report.activity_results, 2);
}

#[tokio::test]
async fn loops_and_branches_survive_crashes() {
    let r = survives_crashes::<labelled_loops>(3, Signals::none()).await;
    assert!(r.crashed_runs >= 5, "{r}");
    survives_crashes::<while_loops>(100, Signals::none()).await;
    survives_crashes::<if_else>(9, Signals::none()).await;
    survives_crashes::<if_else>(7, Signals::none()).await;
    survives_crashes::<deep_nesting>(5, Signals::none()).await;
    survives_crashes::<hoisted>(5, Signals::none()).await;
    survives_crashes::<shadowing>(5, Signals::none()).await;
    let lines = vec![
        Line {
            sku: "a".into(),
            quantity: 1,
        },
        Line {
            sku: "b".into(),
            quantity: 0,
        },
    ];
    survives_crashes::<for_loops>(lines, Signals::none()).await;
}

#[tokio::test]
async fn error_paths_survive_crashes() {
    // double fails permanently above 1000: the workflow catches it and sleeps.
    let r = survives_crashes::<match_result>(2000, Signals::none()).await;
    assert_eq!(
        r.output,
        serde_json::json!({ "Ok": "FAILED ACTIVITY.NON_RETRYABLE" })
    );
    let rejected = Approval {
        approved: false,
        by: "bob".into(),
    };
    let r = survives_crashes::<early_return>(1, Signals::none().then(rejected)).await;
    assert_eq!(
        r.output,
        serde_json::json!({ "Err": { "Rejected": "bob" } })
    );
}

#[tokio::test]
async fn signals_are_sent_in_order_as_the_workflow_waits() {
    let reviewers = vec!["ada".to_string(), "bob".to_string()];
    let signals = Signals::none().then(approve("ada")).then(approve("bob"));
    let r = survives_crashes::<approval_chain>(reviewers, signals).await;
    assert_eq!(r.output, serde_json::json!({ "Ok": ["ada", "bob"] }));
}

#[tokio::test]
async fn a_missing_signal_is_reported_not_hung() {
    let failure = CrashTest::<straight_line>::new().run(4).await.unwrap_err();
    assert_eq!(failure.code(), "crash.stuck");
    assert!(
        failure.to_string().contains("signal `Approval`"),
        "{failure}"
    );
}

#[tokio::test]
async fn every_crash_drops_the_work_after_the_last_commit() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use weft_ui_tests::representative::add_one;

    let runs = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&runs);
    let report = CrashTest::<straight_line>::new()
        .mock(add_one, move |n| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(n + 1) }
        })
        .signals(Signals::none().then(approve("ada")))
        .run(4)
        .await
        .unwrap();
    let all_runs = report.crashed_runs + 2;
    // Once per run, plus again in the run that crashed right after the start: its result
    // was never committed, so the recovered engine ran the activity again.
    assert!(
        runs.load(Ordering::SeqCst) > all_runs,
        "{} calls in {all_runs} runs",
        runs.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn an_activity_result_that_changes_after_a_crash_is_reported_with_its_step() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use weft_ui_tests::representative::add_one;

    // A non-idempotent activity: each execution returns something new.
    let executions = Arc::new(AtomicU64::new(0));
    let failure = CrashTest::<straight_line>::new()
        .mock(add_one, move |n| {
            let seen = executions.fetch_add(1, Ordering::SeqCst);
            async move { Ok(n + 1 + seen) }
        })
        .signals(Signals::none().then(approve("ada")))
        .run(4)
        .await
        .unwrap_err();
    assert_eq!(failure.code(), "crash.activity_differs");
    let message = failure.to_string();
    assert!(message.contains("crashed after commit 1"), "{message}");
    assert!(message.contains("`add_one` at step 1"), "{message}");
}

#[tokio::test]
async fn groups_races_children_and_sagas_survive_crashes() {
    use weft_ui_tests::representative::{composition, line_check};

    let lines = || {
        vec![
            Line {
                sku: "a".into(),
                quantity: 1,
            },
            Line {
                sku: "b".into(),
                quantity: 0,
            },
        ]
    };
    let approved = CrashTest::<composition>::new()
        .configure(|b| b.register::<line_check>())
        .signals(Signals::none().then(approve("ada")))
        .run(lines())
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(approved.output, serde_json::json!({ "Ok": "2:GO:2" }));
    assert!(approved.crashed_runs >= 5, "{approved}");

    // No approval: the race's hour-long deadline wins on virtual time, the saga compensates.
    let timed_out = CrashTest::<composition>::new()
        .configure(|b| b.register::<line_check>())
        .run(lines())
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(
        timed_out.output["Err"]
            .to_string()
            .contains("not approved in time"),
        "{}",
        timed_out.output
    );
}
