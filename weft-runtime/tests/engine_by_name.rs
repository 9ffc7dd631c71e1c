//! Calls by name, with JSON (`Engine::start_by_name`, `signal_by_name`, `update_by_name`,
//! `query_by_name`, `result_json`, `describe`, `workflow_types`), each against its typed twin,
//! and every error a bad name or bad JSON gets.
//!
//! Run with `--features schemars` too: the schema test checks both builds.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::wait_state;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_runtime::engine::{VirtualClock, WorkflowStatus};
use weft_runtime::query::Query;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    Engine, EngineError, ErrorKind, Race2, Signal, SignalOptions, StartOptions, Update,
    UpdateOptions, WorkflowContext, workflow,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Claim {
    employee: String,
    lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Line {
    what: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Signal, JsonSchema)]
#[signal(name = "expense.approval")]
struct Approval {
    by: String,
}

/// Has no JSON Schema: by-name calls work without one.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
struct Reject {
    reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Update, JsonSchema)]
#[update(response = u64, name = "expense.add_line")]
struct AddLine {
    line: Line,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Receipt {
    employee: String,
    total_cents: u64,
    approved_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
enum ExpenseError {
    #[error("rejected: {reason}")]
    Rejected { reason: String },
}

/// Takes lines by update until one of zero cents, then races an approval against a rejection.
#[workflow]
async fn expense(ctx: &mut WorkflowContext, claim: Claim) -> Result<Receipt, ExpenseError> {
    let mut total: u64 = claim.lines.iter().map(|l| l.cents).sum();
    loop {
        let (add, reply) = ctx.wait_for_update::<AddLine>().await;
        total += add.line.cents;
        ctx.respond(reply, total);
        if add.line.cents == 0 {
            break;
        }
    }
    let decision: Race2<Approval, Reject> = ctx
        .race((
            ctx.wait_for_signal::<Approval>(),
            ctx.wait_for_signal::<Reject>(),
        ))
        .await;
    match decision {
        Race2::First(approval) => Ok(Receipt {
            employee: claim.employee,
            total_cents: total,
            approved_by: approval.by,
        }),
        Race2::Second(reject) => Err(ExpenseError::Rejected {
            reason: reject.reason,
        }),
    }
}

/// The running total, while lines are added.
struct Total;

impl Query for Total {
    type Workflow = expense;
    type Output = u64;
    const NAME: &'static str = "total";
    fn answer(state: &ExpenseState) -> u64 {
        match state {
            ExpenseState::AwaitUpdateAddLine { total, .. } => *total,
            _ => 0,
        }
    }
}

/// Accepts nothing by name.
#[workflow]
async fn idle(ctx: &mut WorkflowContext, seconds: u64) -> Result<u64, ExpenseError> {
    ctx.sleep(Duration::from_secs(seconds)).await;
    Ok(seconds)
}

fn claim() -> Claim {
    Claim {
        employee: "ada".into(),
        lines: vec![Line {
            what: "train".into(),
            cents: 4200,
        }],
    }
}

fn add(update_id: &str) -> UpdateOptions {
    UpdateOptions {
        update_id: update_id.to_string(),
        timeout: Duration::from_secs(30),
    }
}

async fn build(storage: &MemoryStorage) -> Engine {
    Engine::builder(storage.clone())
        .register::<expense>()
        .register::<idle>()
        .query::<Total>()
        .payload_limit(512)
        .clock(Arc::new(VirtualClock::default()))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_call_by_name_does_what_its_typed_twin_does() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let typed = engine.start::<expense>(claim()).await.unwrap();
    let by_name = engine
        .start_by_name(
            "expense",
            serde_json::to_value(claim()).unwrap(),
            StartOptions::default(),
        )
        .await
        .unwrap();
    wait_state(&engine, typed.id(), "AwaitUpdateAddLine").await;
    wait_state(&engine, &by_name, "AwaitUpdateAddLine").await;
    let (a, b) = (
        engine.describe(typed.id()).await.unwrap(),
        engine.describe(&by_name).await.unwrap(),
    );
    assert_eq!(b.workflow_type, "expense");
    assert_eq!(a.state, b.state);
    assert_eq!(a.pending_text, b.pending_text);

    // Update: the same answer, typed and as JSON; the same update id answers the same again.
    let line = Line {
        what: "hotel".into(),
        cents: 10_000,
    };
    let answer = engine
        .update(typed.id(), AddLine { line: line.clone() }, add("u1"))
        .await
        .unwrap();
    let json_answer = engine
        .update_by_name(
            &by_name,
            "expense.add_line",
            json!({ "line": line }),
            add("u1"),
        )
        .await
        .unwrap();
    assert_eq!(json_answer, json!(answer));
    assert_eq!(answer, 14_200);
    let retried = engine
        .update_by_name(
            &by_name,
            "expense.add_line",
            json!({ "line": { "what": "ignored", "cents": 1 } }),
            add("u1"),
        )
        .await
        .unwrap();
    assert_eq!(retried, json!(14_200));

    // Query: the registered query by name reads what the typed one reads.
    assert_eq!(engine.query::<Total>(typed.id()).await.unwrap(), 14_200);
    assert_eq!(
        engine.query_by_name(&by_name, "total").await.unwrap(),
        json!(14_200)
    );

    let zero = json!({ "line": { "what": "done", "cents": 0 } });
    engine
        .update(
            typed.id(),
            AddLine {
                line: Line {
                    what: "done".into(),
                    cents: 0,
                },
            },
            add("u2"),
        )
        .await
        .unwrap();
    engine
        .update_by_name(&by_name, "expense.add_line", zero, add("u2"))
        .await
        .unwrap();
    wait_state(&engine, &by_name, "AwaitRace").await;
    // A signal in a race is accepted by name too.
    typed.signal(Approval { by: "bo".into() }).await.unwrap();
    engine
        .signal_by_name(
            &by_name,
            "expense.approval",
            json!({ "by": "bo" }),
            SignalOptions::default(),
        )
        .await
        .unwrap();

    let typed_result = typed.result().await.unwrap();
    let json_result = engine.result_json(&by_name).await.unwrap();
    assert_eq!(
        json_result,
        Ok(serde_json::to_value(typed_result.unwrap()).unwrap())
    );
    assert_eq!(
        json_result.unwrap(),
        json!({ "employee": "ada", "total_cents": 14_200, "approved_by": "bo" })
    );
}

#[tokio::test]
async fn a_workflow_error_comes_back_as_json_in_err() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let id = engine
        .start_by_name(
            "expense",
            json!({ "employee": "ada", "lines": [] }),
            StartOptions {
                id: Some("exp-err".into()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(id, "exp-err");
    engine
        .update_by_name(
            &id,
            "expense.add_line",
            json!({ "line": { "what": "x", "cents": 0 } }),
            add("u"),
        )
        .await
        .unwrap();
    engine
        .signal_by_name(
            &id,
            "Reject",
            json!({ "reason": "no receipt" }),
            SignalOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        engine.result_json(&id).await.unwrap(),
        Err(json!({ "Rejected": { "reason": "no receipt" } }))
    );
    // The typed result of the same workflow agrees.
    assert_eq!(
        engine.result::<expense>(&id).await.unwrap(),
        Err(ExpenseError::Rejected {
            reason: "no receipt".into()
        })
    );
}

#[tokio::test]
async fn describe_says_what_is_pending_in_words_and_counts_queued_signals() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let id = engine
        .start_by_name("expense", json!(claim()), StartOptions::default())
        .await
        .unwrap();
    wait_state(&engine, &id, "AwaitUpdateAddLine").await;
    // Signals sent before the workflow waits for them stay queued.
    for by in ["x", "y"] {
        engine
            .signal_by_name(
                &id,
                "expense.approval",
                json!({ "by": by }),
                SignalOptions::default(),
            )
            .await
            .unwrap();
    }
    let described = engine.describe(&id).await.unwrap();
    assert_eq!(described.status, WorkflowStatus::Waiting);
    assert_eq!(described.signals_queued, 2);
    assert_eq!(
        described.pending_text.as_deref(),
        Some("waiting for update `expense.add_line` since 2030-01-01 00:00:00 UTC")
    );
    assert_eq!(
        described.state.as_ref().unwrap()["AwaitUpdateAddLine"]["total"],
        json!(4200)
    );
    engine
        .update_by_name(
            &id,
            "expense.add_line",
            json!({ "line": { "what": "x", "cents": 0 } }),
            add("u"),
        )
        .await
        .unwrap();
    // The race takes the first queued approval; the other stays queued until the end.
    assert_eq!(
        engine.result_json(&id).await.unwrap().unwrap()["approved_by"],
        json!("x")
    );
    assert_eq!(engine.describe(&id).await.unwrap().signals_queued, 0);
}

#[tokio::test]
async fn workflow_types_list_what_each_type_accepts() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let types = engine.workflow_types();
    let names: Vec<_> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["expense", "idle"]);
    let expense_type = &types[0];
    assert_eq!(expense_type.version, 1);
    assert_eq!(
        expense_type.fingerprint,
        <expense as weft_runtime::Workflow>::FINGERPRINT
    );
    assert!(expense_type.latest);
    let signals: Vec<_> = expense_type
        .signals
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(signals, ["expense.approval", "Reject"]);
    let updates: Vec<_> = expense_type
        .updates
        .iter()
        .map(|u| u.name.as_str())
        .collect();
    assert_eq!(updates, ["expense.add_line"]);
    assert_eq!(expense_type.queries, ["total"]);
    assert!(types[1].signals.is_empty() && types[1].updates.is_empty());
}

#[tokio::test]
async fn json_schemas_come_with_the_schemars_feature_for_types_that_derive_them() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;
    let types = engine.workflow_types();
    let expense_type = &types[0];
    let approval = &expense_type.signals[0];
    let reject = &expense_type.signals[1];
    // `Reject` and `u64`-less types aside, nothing here needs a schema to work.
    assert_eq!(reject.schema, None);
    if cfg!(feature = "schemars") {
        let input = expense_type.input_schema.as_ref().unwrap();
        assert_eq!(
            input["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema")
        );
        assert_eq!(input["title"], json!("Claim"));
        assert_eq!(input["required"], json!(["employee", "lines"]));
        // `Line` is a definition the input refers to.
        assert_eq!(
            input["properties"]["lines"]["items"]["$ref"],
            json!("#/$defs/Line")
        );
        assert!(input["$defs"]["Line"]["properties"]["cents"].is_object());
        let output = expense_type.output_schema.as_ref().unwrap();
        assert_eq!(output["title"], json!("Receipt"));
        assert!(expense_type.error_schema.is_some());
        let approval_schema = approval.schema.as_ref().unwrap();
        assert_eq!(approval_schema["properties"]["by"]["type"], json!("string"));
        let update = &expense_type.updates[0];
        assert_eq!(update.request_schema.as_ref().unwrap()["title"], "AddLine");
        assert_eq!(
            update.response_schema.as_ref().unwrap()["type"],
            json!("integer")
        );
        // `idle` takes a `u64`, which has a schema too.
        assert_eq!(
            types[1].input_schema.as_ref().unwrap()["type"],
            json!("integer")
        );
    } else {
        assert_eq!(expense_type.input_schema, None);
        assert_eq!(expense_type.output_schema, None);
        assert_eq!(approval.schema, None);
        assert_eq!(expense_type.updates[0].request_schema, None);
    }
}

#[tokio::test]
async fn bad_names_and_bad_json_get_typed_errors_and_write_nothing() {
    let storage = MemoryStorage::new();
    let engine = build(&storage).await;

    let error = engine
        .start_by_name("expenses", json!(claim()), StartOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        EngineError::UnknownWorkflowType {
            workflow: "expenses".into(),
            registered: vec!["expense".into(), "idle".into()],
        }
    );
    assert_eq!(error.code(), "engine.unknown_workflow_type");
    assert_eq!(error.kind(), ErrorKind::InvalidInput);

    let error = engine
        .start_by_name(
            "expense",
            json!({ "employee": "ada", "lines": [{ "what": "x", "cents": "12" }] }),
            StartOptions::default(),
        )
        .await
        .unwrap_err();
    match &error {
        EngineError::InvalidJson {
            what,
            type_name,
            path,
            message,
        } => {
            assert_eq!(what, "the input of workflow `expense`");
            assert!(type_name.ends_with("Claim"), "{type_name}");
            assert_eq!(path, "lines[0].cents");
            assert!(message.contains("invalid type: string"), "{message}");
        }
        other => panic!("expected InvalidJson, got {other:?}"),
    }
    assert_eq!(error.code(), "engine.invalid_json");
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let error = engine
        .start_by_name("expense", json!({ "lines": [] }), StartOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::InvalidJson { path, message, .. } if path == "." && message.contains("missing field `employee`")),
        "{error:?}"
    );
    let big = "x".repeat(1000);
    let error = engine
        .start_by_name(
            "expense",
            json!({ "employee": big, "lines": [] }),
            StartOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::PayloadTooLarge {
                what: "the workflow input",
                limit: 512,
                ..
            }
        ),
        "{error:?}"
    );
    // Nothing of the refused starts was stored.
    assert!(
        engine
            .list(&Default::default(), 10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let id = engine
        .start_by_name("expense", json!(claim()), StartOptions::default())
        .await
        .unwrap();
    wait_state(&engine, &id, "AwaitUpdateAddLine").await;
    let error = engine
        .signal_by_name(
            &id,
            "Approval",
            json!({ "by": "x" }),
            SignalOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        EngineError::UnknownSignal {
            id: id.clone(),
            workflow: "expense".into(),
            signal: "Approval".into(),
            accepted: vec!["expense.approval".into(), "Reject".into()],
        }
    );
    assert_eq!(error.code(), "engine.unknown_signal");
    let error = engine
        .signal_by_name(
            &id,
            "expense.approval",
            json!({ "by": 7 }),
            SignalOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::InvalidJson { what, path, .. } if what == "signal `expense.approval`" && path == "by"),
        "{error:?}"
    );
    let error = engine
        .signal_by_name(
            &id,
            "expense.approval",
            json!({ "by": big }),
            SignalOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::PayloadTooLarge {
                what: "the signal",
                ..
            }
        ),
        "{error:?}"
    );
    let error = engine
        .update_by_name(&id, "add_line", json!({}), add("u"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        EngineError::UnknownUpdate {
            id: id.clone(),
            workflow: "expense".into(),
            update: "add_line".into(),
            accepted: vec!["expense.add_line".into()],
        }
    );
    assert_eq!(error.code(), "engine.unknown_update");
    let error = engine
        .update_by_name(
            &id,
            "expense.add_line",
            json!({ "line": { "what": "x" } }),
            add("u"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::InvalidJson { what, path, message, .. } if what == "update `expense.add_line`" && path == "line" && message.contains("missing field `cents`")),
        "{error:?}"
    );
    let error = engine
        .update_by_name(
            &id,
            "expense.add_line",
            json!({ "line": { "what": big, "cents": 1 } }),
            add("u"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::PayloadTooLarge {
                what: "the update",
                ..
            }
        ),
        "{error:?}"
    );
    // None of the refused messages was queued.
    assert_eq!(engine.describe(&id).await.unwrap().signals_queued, 0);
    assert_eq!(engine.query::<Total>(&id).await.unwrap(), 4200);

    let missing = engine
        .signal_by_name("nobody", "Reject", json!({}), SignalOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        missing,
        EngineError::NotFound {
            id: "nobody".into()
        }
    );
    assert!(matches!(
        engine.result_json("nobody").await,
        Err(EngineError::NotFound { .. })
    ));
    // A workflow that waits for nothing by name accepts no signal.
    let idle_id = engine
        .start_by_name("idle", json!(60), StartOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        engine
            .signal_by_name(&idle_id, "Reject", json!({"reason": "r"}), SignalOptions::default())
            .await,
        Err(EngineError::UnknownSignal { accepted, .. }) if accepted.is_empty()
    ));
}
