//! Bad input: corrupt records, unknown types, fingerprint mismatches and failing steps park the
//! one workflow concerned (reported by describe and list, nothing deleted) while the rest run;
//! oversized payloads are refused before they reach storage; build-time registration errors.

#![allow(non_camel_case_types)]

mod engine_support;

use engine_support::*;
use weft_runtime::engine::record;
use weft_runtime::engine::{Engine, EngineError, ListFilter, WorkflowStatus};
use weft_runtime::storage::{MemoryStorage, Storage};
use weft_runtime::{
    ActivityError, ActivitySet, Resume, Signal, StepError, Transition, Workflow, WorkflowContext,
    WorkflowError,
};

/// `waiter` as changed code would see it: same name and version, another state machine shape.
struct waiter_changed;

/// `waiter` version 2, registered beside version 1.
struct waiter_v2;

fn relabel<A: Workflow, B: Workflow<State = A::State, Output = A::Output, Error = A::Error>>(
    t: Transition<A>,
) -> Transition<B> {
    match t {
        Transition::Suspend { state, command } => Transition::Suspend { state, command },
        Transition::Complete(r) => Transition::Complete(r),
        Transition::Cancelled => Transition::Cancelled,
    }
}

macro_rules! waiter_like {
    ($ty:ident, $version:expr, $fingerprint:expr) => {
        impl Workflow for $ty {
            type Input = u32;
            type Output = Vec<String>;
            type Error = WorkflowError;
            type State = WaiterState;
            const NAME: &'static str = "waiter";
            const VERSION: u32 = $version;
            const FINGERPRINT: u64 = $fingerprint;
            fn start(count: u32) -> WaiterState {
                waiter::start(count)
            }
            fn step(
                ctx: &mut WorkflowContext,
                state: WaiterState,
                resume: Resume,
            ) -> Result<Transition<Self>, StepError> {
                waiter::step(ctx, state, resume).map(relabel::<waiter, Self>)
            }
            fn state_name(state: &WaiterState) -> &'static str {
                waiter::state_name(state)
            }
            fn activities(_set: &mut ActivitySet) {}
        }
    };
}

waiter_like!(waiter_changed, 1, 0xdead_beef);

/// `single` deployed without its `greet` activity (it no longer declares it).
struct single_without_greet;

impl Workflow for single_without_greet {
    type Input = String;
    type Output = String;
    type Error = WorkflowError;
    type State = SingleState;
    const NAME: &'static str = single::NAME;
    const FINGERPRINT: u64 = single::FINGERPRINT;
    fn start(name: String) -> SingleState {
        single::start(name)
    }
    fn step(
        ctx: &mut WorkflowContext,
        state: SingleState,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        single::step(ctx, state, resume).map(relabel::<single, Self>)
    }
    fn state_name(state: &SingleState) -> &'static str {
        single::state_name(state)
    }
    fn activities(_set: &mut ActivitySet) {}
}
waiter_like!(waiter_v2, 2, 0xfeed_f00d);

async fn others_still_run(engine: &Engine) {
    let h = engine.start::<single>("other".into()).await.unwrap();
    assert_eq!(h.result().await.unwrap().unwrap(), "hello, other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_is_parked_and_kept_while_others_run() {
    let storage = MemoryStorage::new();
    storage
        .put(
            &record::workflow_key(record::Partition::ZERO, "broken"),
            b"\x01\xff\xff\xff garbage",
        )
        .unwrap();
    storage
        .put(
            &record::workflow_key(record::Partition::ZERO, "alien"),
            b"\x7fwritten by the future",
        )
        .unwrap();
    let engine = engine_for::<single>(storage.clone()).await;
    others_still_run(&engine).await;

    let d = engine.describe("broken").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "record.corrupt");
    let d = engine.describe("alien").await.unwrap();
    assert!(d.park_reason.unwrap().message.contains("format tag"));
    let parked = engine
        .list(
            &ListFilter {
                status: Some(WorkflowStatus::Parked),
                workflow_type: None,
                ..ListFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    let ids: Vec<_> = parked.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["alien", "broken"]);
    assert!(matches!(
        engine.result::<single>("broken").await,
        Err(EngineError::Parked { .. })
    ));
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, "broken"))
            .unwrap()
            .as_deref(),
        Some(&b"\x01\xff\xff\xff garbage"[..]),
        "nothing is deleted or rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_and_fingerprint_mismatches_park_until_the_right_code_is_registered() {
    let storage = MemoryStorage::new();
    let first = engine_for::<waiter>(storage.clone()).await;
    let id = first.start::<waiter>(1).await.unwrap().id().to_string();
    wait_status(&first, &id, WorkflowStatus::Waiting).await;
    first.shutdown().await;
    let stored = storage
        .get(&record::workflow_key(record::Partition::ZERO, &id))
        .unwrap();

    // Another deployment without `waiter`: it is parked as unknown, the rest runs.
    let without = engine_for::<single>(storage.clone()).await;
    others_still_run(&without).await;
    let d = without.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.park_reason.unwrap().code, "workflow.unknown_type");
    without
        .signal(&id, Approval { by: "r".into() })
        .await
        .unwrap();
    without.shutdown().await;

    // A deployment whose `waiter` changed shape without a new version.
    let changed = Engine::builder(storage.clone())
        .register::<waiter_changed>()
        .register::<single>()
        .build()
        .await
        .unwrap();
    others_still_run(&changed).await;
    let err = changed.result::<waiter_changed>(&id).await.unwrap_err();
    match &err {
        EngineError::Parked { code, .. } => assert_eq!(code, "workflow.fingerprint_mismatch"),
        other => panic!("expected parked, got {other:?}"),
    }
    assert_eq!(err.code(), "engine.parked");
    changed.shutdown().await;
    assert_eq!(
        storage
            .get(&record::workflow_key(record::Partition::ZERO, &id))
            .unwrap(),
        stored
    );

    // The original code again, with version 2 beside it: the old instance finishes on version
    // 1 with the signal that waited for it meanwhile; new starts can use version 2.
    let fixed = Engine::builder(storage.clone())
        .register::<waiter>()
        .register::<waiter_v2>()
        .build()
        .await
        .unwrap();
    assert_eq!(
        fixed.result::<waiter>(&id).await.unwrap().unwrap(),
        vec!["r"]
    );
    let v2 = fixed.start::<waiter_v2>(0).await.unwrap();
    assert_eq!(v2.describe().await.unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_activity_without_an_implementation_parks_the_workflow() {
    let storage = MemoryStorage::new();
    let never = FnActivity::new("greet", |_ctx, _input| std::future::pending());
    let first = Engine::builder(storage.clone())
        .register::<single>()
        .activity_override("greet", never)
        .build()
        .await
        .unwrap();
    let id = first
        .start::<single>("t".into())
        .await
        .unwrap()
        .id()
        .to_string();
    first.shutdown().await;
    let second = Engine::builder(storage.clone())
        .register::<single_without_greet>()
        .register::<waiter>()
        .build()
        .await
        .unwrap();
    let err = second
        .result::<single_without_greet>(&id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Parked { code, .. } if code == "activity.not_registered"),
        "{err:?}"
    );
    let d = second.describe(&id).await.unwrap();
    assert_eq!(d.state_name, Some("AwaitGreet"), "the pending call is kept");
    let w = second.start::<waiter>(0).await.unwrap();
    assert!(w.result().await.unwrap().unwrap().is_empty());
}

/// A signal stored under `approval`'s name with a payload of another type.
#[derive(serde::Serialize, serde::Deserialize)]
struct Impostor(u8);

impl Signal for Impostor {
    const NAME: &'static str = "approval";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_cannot_run_parks_the_workflow_and_keeps_its_input() {
    let storage = MemoryStorage::new();
    let engine = Engine::builder(storage.clone())
        .register::<waiter>()
        .register::<single>()
        .build()
        .await
        .unwrap();
    let handle = engine.start::<waiter>(1).await.unwrap();
    handle.signal(Impostor(5)).await.unwrap();
    let err = handle.result().await.unwrap_err();
    assert!(matches!(&err, EngineError::Parked { code, .. } if code == "codec.decode"));
    let d = handle.describe().await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Parked);
    assert_eq!(d.state_name, Some("AwaitApproval"), "the state is kept");
    assert_eq!(
        storage
            .scan_prefix(
                &record::signal_queue_prefix(record::Partition::ZERO, handle.id()),
                None,
                10
            )
            .unwrap()
            .len(),
        1,
        "the signal that could not be read is kept"
    );
    others_still_run(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_before_storage() {
    let storage = MemoryStorage::new();
    let big_output = FnActivity::new("greet", |_ctx, input| async move {
        let name: String = dec(&input);
        Ok(enc(&name.repeat(40)))
    });
    let engine = Engine::builder(storage.clone())
        .register::<single>()
        .register::<waiter>()
        .payload_limit(64)
        .activity_override("greet", big_output)
        .build()
        .await
        .unwrap();
    let before = dump(&storage);
    let err = engine.start::<single>("x".repeat(100)).await.unwrap_err();
    assert!(matches!(
        err,
        EngineError::PayloadTooLarge {
            what: "the workflow input",
            limit: 64,
            ..
        }
    ));
    assert_eq!(err.code(), "engine.payload_too_large");
    assert_eq!(dump(&storage), before);

    let w = engine.start::<waiter>(10).await.unwrap();
    let err = w
        .signal(Approval {
            by: "y".repeat(100),
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::PayloadTooLarge {
            what: "the signal",
            ..
        }
    ));

    // An activity output over the limit is the activity's error, not a stored payload.
    let h = engine.start::<single>("abc".into()).await.unwrap();
    match h.result().await.unwrap() {
        Err(WorkflowError::Activity(ActivityError::Payload { .. })) => {}
        other => panic!("expected a payload error, got {other:?}"),
    }

    // A state that outgrows the limit parks the workflow instead of being stored.
    for i in 0..10 {
        if w.signal(Approval {
            by: format!("approver-{i}"),
        })
        .await
        .is_err()
        {
            break;
        }
    }
    let err = w.result().await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Parked { code, .. } if code == "engine.payload_too_large"),
        "{err:?}"
    );
}

/// A workflow that needs an activity it does not implement.
struct needs_ghost;

impl Workflow for needs_ghost {
    type Input = ();
    type Output = ();
    type Error = WorkflowError;
    type State = ();
    const NAME: &'static str = "needs_ghost";
    const FINGERPRINT: u64 = 1;
    fn start(_: ()) {}
    fn step(
        _ctx: &mut WorkflowContext,
        _state: (),
        _resume: Resume,
    ) -> Result<Transition<Self>, StepError> {
        Ok(Transition::Complete(Ok(())))
    }
    fn state_name(_: &()) -> &'static str {
        "Start"
    }
    fn activities(set: &mut ActivitySet) {
        set.require("ghost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_errors_fail_the_build() {
    let err = Engine::builder(MemoryStorage::new())
        .register::<needs_ghost>()
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::MissingActivity {
            workflow: "needs_ghost".into(),
            activity: "ghost".into()
        }
    );
    assert_eq!(err.code(), "engine.missing_activity");
    let ghost = FnActivity::new("ghost", |_ctx, _input| async { Ok(enc(&())) });
    Engine::builder(MemoryStorage::new())
        .register::<needs_ghost>()
        .activity_override("ghost", ghost)
        .build()
        .await
        .unwrap();

    let err = Engine::builder(MemoryStorage::new())
        .register::<waiter>()
        .register::<waiter_changed>()
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "engine.conflicting_registration");
}
