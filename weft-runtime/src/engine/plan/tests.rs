//! The planner driven without a store: each test states a record and what happened, and
//! checks the record, the writes and the effects the planner decides.

use std::time::{Duration, UNIX_EPOCH};

use crate::child::ChildError;
use crate::group::GroupShape;
use crate::storage::Write;
use crate::workflow::Resume;

use super::*;

const ID: &str = "w";
/// The partition of the workflows these tests plan for.
const P: Partition = Partition::ZERO;

/// A configuration: a small payload limit, compensations with a recognisable policy.
struct TestEnv;

impl Env for TestEnv {
    fn payload_limit(&self) -> usize {
        64
    }

    fn compensation_options(&self, _name: &str) -> ActivityOptions {
        ActivityOptions {
            attempt_timeout: Some(Duration::from_secs(7)),
            ..ActivityOptions::default()
        }
    }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A stored record at step 3, running activity `charge`.
fn running() -> WorkflowRecord {
    WorkflowRecord {
        workflow_type: "t".into(),
        version: 1,
        fingerprint: 0,
        status: RecordStatus::Running,
        step: 3,
        state: Some(vec![1]),
        pending: Some(activity("charge")),
        created_ms: 1,
        updated_ms: 1,
        outcome: None,
        idempotency_key: None,
        last_resume: None,
        signals_consumed: 0,
        lifecycle: record::Lifecycle::default(),
    }
}

fn waiting_on(pending: PendingCommand) -> WorkflowRecord {
    WorkflowRecord {
        status: status_of(&pending),
        pending: Some(pending),
        ..running()
    }
}

fn activity(name: &str) -> PendingCommand {
    PendingCommand::Activity {
        name: name.into(),
        input: vec![0],
        options: ActivityOptions::default(),
    }
}

fn suspend(command: Command) -> Result<Stepped, StepFault> {
    Ok(Stepped::Suspend {
        state: vec![2],
        command,
    })
}

/// Plans a step of `prev` (which stays with the test: the planner takes a copy).
fn plan(
    prev: &WorkflowRecord,
    stepped: Result<Stepped, StepFault>,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    facts: Facts,
) -> Planned {
    planned(prev, stepped, kind, consumed, facts, None)
}

/// As [`plan`], for a step a runner resumed with `resumed`.
fn plan_resumed(
    prev: &WorkflowRecord,
    stepped: Result<Stepped, StepFault>,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    facts: Facts,
    resumed: Resumed,
) -> Planned {
    planned(prev, stepped, kind, consumed, facts, Some(resumed))
}

fn planned(
    prev: &WorkflowRecord,
    stepped: Result<Stepped, StepFault>,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    facts: Facts,
    resumed: Option<Resumed>,
) -> Planned {
    run(
        prev.clone(),
        Input {
            stored: true,
            stepped,
            effects: StepEffects::default(),
            kind,
            consumed,
            now: at(1_000),
            resumed,
            facts,
        },
    )
}

/// The inputs of a step but its record (which [`run`] takes) and its attributes (none).
struct Input {
    stored: bool,
    stepped: Result<Stepped, StepFault>,
    effects: StepEffects,
    kind: ResumeKind,
    consumed: Vec<Vec<u8>>,
    now: SystemTime,
    resumed: Option<Resumed>,
    facts: Facts,
}

/// A plan with the record it rewrote.
struct Planned {
    record: WorkflowRecord,
    batch: Batch,
    expect: Vec<Expect>,
    sweep: Option<Vec<u8>>,
    effects: Vec<Effect>,
}

/// Plans a step of `record`.
fn run(mut record: WorkflowRecord, input: Input) -> Planned {
    let plan = super::step(
        &TestEnv,
        Step {
            id: ID,
            partition: P,
            record: &mut record,
            stored: input.stored,
            stepped: input.stepped,
            effects: input.effects,
            attributes: BTreeMap::new(),
            kind: input.kind,
            consumed: input.consumed,
            now: input.now,
            resumed: input.resumed,
        },
        input.facts,
    )
    .unwrap();
    Planned {
        record,
        batch: plan.batch,
        expect: plan.expect,
        sweep: plan.sweep,
        effects: plan.effects,
    }
}

fn effects(plan: &Planned) -> Vec<String> {
    plan.effects.iter().map(|e| format!("{e:?}")).collect()
}

fn puts(batch: &Batch, key: &[u8]) -> bool {
    batch
        .writes
        .iter()
        .any(|w| matches!(w, Write::Put(k, _) if k == key))
}

fn deletes(batch: &Batch, key: &[u8]) -> bool {
    batch
        .writes
        .iter()
        .any(|w| matches!(w, Write::Delete(k) if k == key))
}

/// The record the batch writes is the plan's record.
fn written(plan: &Planned) -> WorkflowRecord {
    let key = record::workflow_key(P, ID);
    plan.batch
        .writes
        .iter()
        .find_map(|w| match w {
            Write::Put(k, v) if *k == key => Some(record::decode_record(v).unwrap()),
            _ => None,
        })
        .expect("the record is written")
}

#[test]
fn a_step_that_completes_finishes_the_workflow_and_tells_its_waiters() {
    let plan = plan(
        &running(),
        Ok(Stepped::Output(vec![9])),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(plan.record.status, RecordStatus::Completed);
    assert_eq!(plan.record.outcome, Some(Outcome::Output(vec![9])));
    assert_eq!(plan.record.step, 4);
    assert_eq!(plan.record.state, None);
    assert_eq!(plan.record.pending, None);
    assert_eq!(plan.record.updated_ms, 1_000);
    assert_eq!(written(&plan), plan.record);
    // It leaves the live index, its kept activity result goes, its queue is swept.
    assert!(deletes(&plan.batch, &record::live_key(P, ID)));
    assert!(deletes(&plan.batch, &record::activity_result_key(P, ID)));
    assert_eq!(plan.sweep, Some(record::signal_queue_prefix(P, ID)));
    assert!(plan.expect.is_empty());
    assert_eq!(effects(&plan), ["Finished(\"w\")", "DisarmAll(\"w\")"]);
}

#[test]
fn a_finished_child_wakes_its_parent() {
    let mut prev = running();
    prev.lifecycle.parent = Some("p".into());
    prev.lifecycle.deadline_ms = Some(5_000);
    let plan = plan(
        &prev,
        Ok(Stepped::Error {
            payload: vec![1],
            message: "no".into(),
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(plan.record.status, RecordStatus::Failed);
    // The link stays (the parent reads the result); the deadline goes with the workflow.
    assert_eq!(plan.record.lifecycle.parent.as_deref(), Some("p"));
    assert_eq!(plan.record.lifecycle.deadline_ms, None);
    assert_eq!(
        effects(&plan),
        ["Finished(\"w\")", "DisarmAll(\"w\")", "Wake(\"p\")"]
    );
}

#[test]
fn a_step_that_runs_an_activity_sets_nothing_in_motion() {
    let plan = plan(
        &running(),
        suspend(Command::Activity {
            name: "ship",
            input: vec![3],
            options: ActivityOptions::default(),
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(plan.record.status, RecordStatus::Running);
    assert_eq!(plan.record.pending, Some(activity_with("ship", vec![3])));
    assert_eq!(plan.record.state, Some(vec![2]));
    assert_eq!(plan.record.last_resume, Some(ResumeKind::Activity));
    assert_eq!(plan.sweep, None);
    // The hot path: nothing to run after the commit, not even an allocation for it.
    assert!(plan.effects.is_empty());
    assert_eq!(plan.effects.capacity(), 0);
}

fn activity_with(name: &str, input: Vec<u8>) -> PendingCommand {
    PendingCommand::Activity {
        name: name.into(),
        input,
        options: ActivityOptions::default(),
    }
}

#[test]
fn a_compensation_takes_the_options_of_its_activity() {
    let plan = plan(
        &running(),
        suspend(Command::Compensate {
            activity: "refund".into(),
            input: vec![4],
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    match plan.record.pending {
        Some(PendingCommand::Activity { name, options, .. }) => {
            assert_eq!(name, "refund");
            assert_eq!(options.attempt_timeout, Some(Duration::from_secs(7)));
        }
        other => panic!("not an activity: {other:?}"),
    }
}

#[test]
fn a_step_that_waits_on_a_signal_waits() {
    let plan = plan(
        &running(),
        suspend(Command::WaitForSignal { name: "approve" }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(plan.record.status, RecordStatus::Waiting);
    assert_eq!(
        plan.record.pending,
        Some(PendingCommand::Signal {
            name: "approve".into()
        })
    );
    assert!(plan.effects.is_empty());
}

#[test]
fn a_signal_wait_is_ready_once_its_signal_is_queued() {
    let pending = PendingCommand::Signal {
        name: "approve".into(),
    };
    // Not yet queued: it waits.
    assert!(
        ready(P, ID, &pending, false, 0, Observed::Nothing)
            .unwrap()
            .is_none()
    );
    // Queued: it resumes with the payload and consumes the signal.
    let key = record::signal_key(P, ID, 1, 1);
    let ready = ready(
        P,
        ID,
        &pending,
        false,
        0,
        Observed::Signal(key.clone(), vec![5]),
    )
    .unwrap()
    .expect("ready");
    assert_eq!(ready.resume, Resume::Signal(vec![5]));
    assert_eq!(ready.consumes, Some(key.clone()));
    assert_eq!(ready.signal_key, Some(key.clone()));
    // Resuming with it consumes it and counts it.
    let prev = waiting_on(pending);
    let plan = plan(
        &prev,
        Ok(Stepped::Output(vec![])),
        ResumeKind::Signal,
        vec![key.clone()],
        Facts::default(),
    );
    assert!(deletes(&plan.batch, &key));
    assert_eq!(plan.record.signals_consumed, 1);
}

#[test]
fn an_unreadable_signal_before_any_of_the_name_parks() {
    let pending = PendingCommand::Signal { name: "s".into() };
    let key = record::signal_key(P, ID, 1, 1);
    let observed = || Observed::UnreadableSignal(key.clone(), record::RecordError::Empty);
    let fault = ready(P, ID, &pending, false, 0, observed()).unwrap_err();
    assert_eq!(fault.code, "record.corrupt");
    assert!(
        fault
            .message
            .starts_with("the workflow waits for signal `s`")
    );
    let fault = ready(P, ID, &pending, true, 0, observed()).unwrap_err();
    assert!(fault.message.starts_with("a branch waits for signal `s`"));
}

#[test]
fn a_timer_is_armed_by_its_step_and_fired_by_the_clock() {
    let plan = plan(
        &running(),
        suspend(Command::Sleep {
            duration: Duration::from_secs(5),
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    let timer = PendingCommand::Timer { deadline_ms: 6_000 };
    assert_eq!(plan.record.pending, Some(timer.clone()));
    assert_eq!(plan.record.status, RecordStatus::Waiting);
    assert!(puts(&plan.batch, &record::timer_key(P, 6_000, ID)));
    // Armed in memory by the runner that finds it not yet due: no effect of the commit.
    assert!(plan.effects.is_empty());

    // Due at its deadline, not a millisecond before.
    assert!(
        ready(P, ID, &timer, false, 5_999, Observed::Nothing)
            .unwrap()
            .is_none()
    );
    let fired = ready(P, ID, &timer, false, 6_000, Observed::Nothing)
        .unwrap()
        .expect("due");
    assert_eq!(fired.resume, Resume::Timer);
    assert_eq!(fired.consumes, Some(record::timer_key(P, 6_000, ID)));

    // The step it resumes deletes its entry, and the in-memory timer is disarmed.
    let prev = plan.record;
    let next = run(
        prev.clone(),
        Input {
            stored: true,
            stepped: suspend(Command::WaitForSignal { name: "s" }),
            effects: StepEffects::default(),
            kind: ResumeKind::Timer,
            consumed: fired.consumes.into_iter().collect(),
            now: at(6_000),
            resumed: None,
            facts: Facts::default(),
        },
    );
    assert!(deletes(&next.batch, &record::timer_key(P, 6_000, ID)));
    assert_eq!(effects(&next), ["Disarm { deadline_ms: 6000, id: \"w\" }"]);
}

#[test]
fn a_sleep_that_reschedules_its_own_timer_keeps_it_armed() {
    // A timer deleted and put again in one batch is not disarmed.
    let prev = waiting_on(PendingCommand::Timer { deadline_ms: 2_000 });
    let plan = run(
        prev.clone(),
        Input {
            stored: true,
            stepped: suspend(Command::Sleep {
                duration: Duration::from_millis(1_000),
            }),
            effects: StepEffects::default(),
            kind: ResumeKind::Cancelled,
            consumed: Vec::new(),
            now: at(1_000),
            resumed: None,
            facts: Facts::default(),
        },
    );
    assert!(puts(&plan.batch, &record::timer_key(P, 2_000, ID)));
    assert!(plan.effects.is_empty());
}

#[test]
fn a_delivered_cancellation_is_folded_out_of_the_record() {
    let mut prev = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
    prev.lifecycle.cancel_requested_ms = Some(500);
    let consumed = vec![record::cancel_key(ID), record::timer_key(P, 9_000, ID)];
    let plan = plan_resumed(
        &prev,
        suspend(Command::WaitForSignal { name: "s" }),
        ResumeKind::Cancelled,
        consumed,
        Facts::default(),
        Resumed {
            followup: Followup {
                keep_cancel: true,
                ..Followup::default()
            },
            activity_result: None,
            expect: Vec::new(),
        },
    );
    assert_eq!(plan.record.lifecycle.cancel_requested_ms, None);
    // Not finished: it goes on knowing it was cancelled.
    assert!(plan.record.lifecycle.cancelled);
    // The request's key stays as a delete: the writer learns it was delivered.
    assert!(deletes(&plan.batch, &record::cancel_key(ID)));
    // Cut short as a sleep, the cancellation stays pending for the next await.
    assert_eq!(
        effects(&plan),
        [
            "Disarm { deadline_ms: 9000, id: \"w\" }",
            "KeepCancel(\"w\")"
        ]
    );
}

#[test]
fn a_cancelled_workflow_that_fails_ends_cancelled_or_timed_out() {
    let prev = running();
    let error = || {
        Ok(Stepped::Error {
            payload: vec![],
            message: "stop".into(),
        })
    };
    let cancelled = plan(
        &prev,
        error(),
        ResumeKind::Cancelled,
        vec![],
        Facts::default(),
    );
    assert_eq!(cancelled.record.status, RecordStatus::Cancelled);
    let timed_out = plan(
        &prev,
        error(),
        ResumeKind::TimedOut,
        vec![],
        Facts::default(),
    );
    assert_eq!(timed_out.record.status, RecordStatus::TimedOut);
    let ended = plan(
        &prev,
        Ok(Stepped::Cancelled),
        ResumeKind::Cancelled,
        vec![],
        Facts::default(),
    );
    assert_eq!(ended.record.outcome, Some(Outcome::Cancelled));
}

#[test]
fn a_cancellation_stops_a_group_s_timers_and_cancels_its_children_per_policy() {
    let pending = PendingCommand::Group {
        race: true,
        shape: GroupShape::Tuple,
        branches: vec![
            Branch {
                pending: PendingCommand::Timer { deadline_ms: 7_000 },
                value: None,
            },
            Branch {
                pending: PendingCommand::Child {
                    child_id: "w/3.1".into(),
                    policy: ParentClosePolicy::RequestCancel,
                },
                value: None,
            },
            Branch {
                pending: PendingCommand::Child {
                    child_id: "w/3.2".into(),
                    policy: ParentClosePolicy::Abandon,
                },
                value: None,
            },
            Branch {
                // Finished already: nothing to stop.
                pending: PendingCommand::Timer { deadline_ms: 1_000 },
                value: Some(vec![]),
            },
        ],
    };
    let mut consumed = vec![record::cancel_key(ID)];
    let followup = on_cancel(P, ID, Some(&pending), at(2_000), &mut consumed).unwrap();
    assert_eq!(
        consumed,
        [record::cancel_key(ID), record::timer_key(P, 7_000, ID)]
    );
    assert_eq!(followup.cancel_children, ["w/3.1"]);
    assert!(puts(&followup.writes, &record::cancel_key("w/3.1")));
    assert_eq!(followup.writes.writes.len(), 1);

    let prev = waiting_on(pending);
    let plan = plan_resumed(
        &prev,
        Ok(Stepped::Cancelled),
        ResumeKind::Cancelled,
        consumed,
        Facts::default(),
        Resumed {
            followup,
            activity_result: None,
            expect: Vec::new(),
        },
    );
    assert!(puts(&plan.batch, &record::cancel_key("w/3.1")));
    assert_eq!(
        effects(&plan),
        [
            "Disarm { deadline_ms: 7000, id: \"w\" }",
            "Finished(\"w\")",
            "DisarmAll(\"w\")",
            "Cancel(\"w/3.1\")",
        ]
    );
}

#[test]
fn a_step_that_starts_a_child_creates_it_and_wakes_it_once_durable() {
    let mut child = Batch::new();
    child.put(record::workflow_key(P, "w/4"), vec![1]);
    let plan = plan(
        &running(),
        suspend(Command::Child {
            workflow: "c",
            input: vec![],
            policy: ParentClosePolicy::Wait,
            execution_timeout: None,
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts {
            children: vec![ChildStart::Created(child)],
            ..Facts::default()
        },
    );
    assert_eq!(parent_child_id(ID, 4, None), "w/4");
    assert_eq!(
        plan.record.pending,
        Some(PendingCommand::Child {
            child_id: "w/4".into(),
            policy: ParentClosePolicy::Wait,
        })
    );
    assert_eq!(plan.record.status, RecordStatus::Waiting);
    assert!(puts(&plan.batch, &record::workflow_key(P, "w/4")));
    assert!(puts(&plan.batch, &record::child_key(P, ID, "w/4")));
    assert_eq!(effects(&plan), ["Wake(\"w/4\")"]);
}

#[test]
fn a_child_taken_again_is_not_created_again_and_one_that_cannot_start_parks() {
    let command = || {
        suspend(Command::Child {
            workflow: "c",
            input: vec![],
            policy: ParentClosePolicy::Wait,
            execution_timeout: None,
        })
    };
    let exists = plan(
        &running(),
        command(),
        ResumeKind::Activity,
        Vec::new(),
        Facts {
            children: vec![ChildStart::Exists],
            ..Facts::default()
        },
    );
    assert!(!puts(&exists.batch, &record::child_key(P, ID, "w/4")));
    let fault = StepFault {
        code: "child.not_registered".into(),
        message: "no".into(),
    };
    let parked = plan(
        &running(),
        command(),
        ResumeKind::Activity,
        Vec::new(),
        Facts {
            children: vec![ChildStart::Fault(fault)],
            ..Facts::default()
        },
    );
    assert!(matches!(
        &parked.record.status,
        RecordStatus::Parked { code, .. } if code == "child.not_registered"
    ));
    // Parked where it stood: state and pending command kept, step not taken.
    assert_eq!(parked.record.step, 3);
    assert_eq!(parked.record.pending, running().pending);
    assert_eq!(effects(&parked), ["Changed(\"w\")"]);
}

#[test]
fn a_finished_child_is_ready_with_its_result() {
    let pending = PendingCommand::Child {
        child_id: "w/4".into(),
        policy: ParentClosePolicy::Wait,
    };
    assert!(
        ready(P, ID, &pending, false, 0, Observed::Nothing)
            .unwrap()
            .is_none()
    );
    let done = ready(
        P,
        ID,
        &pending,
        false,
        0,
        Observed::Child(Err(ChildError::Cancelled)),
    )
    .unwrap()
    .expect("ready");
    assert_eq!(done.resume, Resume::Child(Err(ChildError::Cancelled)));
    assert_eq!(done.consumes, None);
}

fn signal_ready(key: Vec<u8>) -> Ready {
    Ready {
        resume: Resume::Signal(vec![]),
        consumes: Some(key.clone()),
        signal_key: Some(key),
    }
}

fn timer_ready() -> Ready {
    Ready {
        resume: Resume::Timer,
        consumes: None,
        signal_key: None,
    }
}

#[test]
fn a_race_of_signals_takes_the_one_that_arrived_first() {
    let approve = record::signal_key(P, ID, 1, 2);
    let reject = record::signal_key(P, ID, 1, 1);
    // `approve` is listed first, `reject` was sent first.
    let candidates = [(0, signal_ready(approve)), (1, signal_ready(reject))];
    assert_eq!(race_winner(&candidates), Some(1));
    // A ready signal beats a timer listed before it.
    let candidates = [
        (0, timer_ready()),
        (1, signal_ready(record::signal_key(P, ID, 1, 3))),
    ];
    assert_eq!(race_winner(&candidates), Some(1));
    // Otherwise the first listed wins.
    assert_eq!(
        race_winner(&[(0, timer_ready()), (1, timer_ready())]),
        Some(0)
    );
    assert_eq!(race_winner::<usize>(&[]), None);
}

#[test]
fn a_group_resumes_when_its_race_is_won_or_all_its_branches_finished() {
    let branch = |value: Option<Vec<u8>>| Branch {
        pending: PendingCommand::Timer { deadline_ms: 1 },
        value,
    };
    let shape = GroupShape::Tuple;
    let none = [branch(None), branch(None)];
    let one = [branch(None), branch(Some(vec![7]))];
    let both = [branch(Some(vec![1])), branch(Some(vec![2]))];
    assert!(group_value(true, shape, &none).is_none());
    assert_eq!(
        group_value(true, shape, &one).unwrap().unwrap(),
        crate::group::race_value(shape, 1, &[7]).unwrap()
    );
    assert!(group_value(false, shape, &one).is_none());
    assert_eq!(
        group_value(false, shape, &both).unwrap().unwrap(),
        crate::group::all_value(shape, &[vec![1], vec![2]]).unwrap()
    );
}

#[test]
fn a_step_that_awaits_a_group_plans_each_branch() {
    let plan = plan(
        &running(),
        suspend(Command::Race {
            branches: vec![
                Command::WaitForSignal { name: "approve" },
                Command::Sleep {
                    duration: Duration::from_secs(1),
                },
                Command::Child {
                    workflow: "c",
                    input: vec![],
                    policy: ParentClosePolicy::RequestCancel,
                    execution_timeout: None,
                },
            ],
            shape: GroupShape::Tuple,
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts {
            children: vec![ChildStart::Created(Batch::new())],
            ..Facts::default()
        },
    );
    // Signals, timers and children only: the workflow waits (listed as Waiting).
    assert_eq!(plan.record.status, RecordStatus::Waiting);
    let Some(PendingCommand::Group { race, branches, .. }) = &plan.record.pending else {
        panic!("not a group: {:?}", plan.record.pending);
    };
    assert!(race);
    assert_eq!(
        branches
            .iter()
            .map(|b| b.pending.clone())
            .collect::<Vec<_>>(),
        [
            PendingCommand::Signal {
                name: "approve".into()
            },
            PendingCommand::Timer { deadline_ms: 2_000 },
            PendingCommand::Child {
                child_id: "w/4.2".into(),
                policy: ParentClosePolicy::RequestCancel,
            },
        ]
    );
    assert!(puts(&plan.batch, &record::timer_key(P, 2_000, ID)));
    assert!(puts(&plan.batch, &record::child_key(P, ID, "w/4.2")));
    assert_eq!(effects(&plan), ["Wake(\"w/4.2\")"]);
}

#[test]
fn an_all_with_an_activity_runs_and_malformed_groups_park() {
    let all = plan(
        &running(),
        suspend(Command::All {
            branches: vec![
                Command::Activity {
                    name: "a",
                    input: vec![],
                    options: ActivityOptions::default(),
                },
                Command::WaitForSignal { name: "s" },
            ],
            shape: GroupShape::List,
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(all.record.status, RecordStatus::Running);
    let code = |plan: &Planned| match &plan.record.status {
        RecordStatus::Parked { code, .. } => code.clone(),
        other => panic!("not parked: {other:?}"),
    };
    let empty_race = plan(
        &running(),
        suspend(Command::Race {
            branches: vec![],
            shape: GroupShape::List,
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(code(&empty_race), "engine.empty_race");
    let nested = plan(
        &running(),
        suspend(Command::All {
            branches: vec![Command::All {
                branches: vec![],
                shape: GroupShape::List,
            }],
            shape: GroupShape::List,
        }),
        ResumeKind::Activity,
        Vec::new(),
        Facts::default(),
    );
    assert_eq!(code(&nested), "engine.nested_group");
}

#[test]
fn finished_branches_are_recorded_before_the_group_resumes() {
    let key = record::signal_key(P, ID, 1, 1);
    let prev = waiting_on(PendingCommand::Group {
        race: false,
        shape: GroupShape::Tuple,
        branches: vec![Branch {
            pending: PendingCommand::Signal { name: "s".into() },
            value: None,
        }],
    });
    let progressed = PendingCommand::Group {
        race: false,
        shape: GroupShape::Tuple,
        branches: vec![Branch {
            pending: PendingCommand::Signal { name: "s".into() },
            value: Some(vec![1]),
        }],
    };
    let mut record = prev.clone();
    let plan = group_progress(
        P,
        ID,
        &mut record,
        progressed.clone(),
        vec![key.clone()],
        at(50),
    )
    .unwrap()
    .unwrap();
    let plan = Planned {
        record,
        batch: plan.batch,
        expect: plan.expect,
        sweep: plan.sweep,
        effects: plan.effects,
    };
    // No step is taken; the branch's value and its signal are committed.
    assert_eq!(plan.record.step, prev.step);
    assert_eq!(plan.record.pending, Some(progressed.clone()));
    assert_eq!(plan.record.signals_consumed, 1);
    assert!(deletes(&plan.batch, &key));
    assert_eq!(written(&plan), plan.record);
    // A counter at its largest value parks instead of wrapping.
    let full = WorkflowRecord {
        signals_consumed: u64::MAX,
        ..prev
    };
    let mut record = full.clone();
    let fault = group_progress(P, ID, &mut record, progressed, vec![key], at(50))
        .unwrap()
        .unwrap_err();
    assert_eq!(fault.code, "engine.counter_overflow");
    // Left as it was.
    assert_eq!(record, full);
}

#[test]
fn an_activity_result_is_kept_when_its_step_parks_and_its_attempts_go_when_it_commits() {
    let result = Ok(vec![1]);
    // The state is over the payload limit: the step parks.
    let too_big = Ok(Stepped::Suspend {
        state: vec![0; 65],
        command: Command::WaitForSignal { name: "s" },
    });
    let prev = running();
    let parked = plan_resumed(
        &prev,
        too_big,
        ResumeKind::Activity,
        vec![],
        Facts::default(),
        Resumed {
            followup: Followup::default(),
            activity_result: Some(result.clone()),
            expect: Vec::new(),
        },
    );
    assert!(matches!(
        &parked.record.status,
        RecordStatus::Parked { code, .. } if code == "engine.payload_too_large"
    ));
    assert!(puts(&parked.batch, &record::activity_result_key(P, ID)));

    let expect = vec![Expect {
        key: record::review_key(ID),
        value: None,
    }];
    let committed = plan_resumed(
        &prev,
        Ok(Stepped::Output(vec![])),
        ResumeKind::Activity,
        vec![],
        Facts::default(),
        Resumed {
            followup: Followup::default(),
            activity_result: Some(result),
            expect: expect.clone(),
        },
    );
    assert!(!puts(&committed.batch, &record::activity_result_key(P, ID)));
    assert!(deletes(&committed.batch, &record::attempt_key(P, ID, None)));
    assert_eq!(committed.expect, expect);
}

#[test]
fn an_update_is_answered_once() {
    let answer = |answered: Vec<String>| {
        run(
            running(),
            Input {
                stored: true,
                stepped: suspend(Command::WaitForSignal { name: "s" }),
                effects: StepEffects {
                    responses: vec![Ok(("u1".into(), vec![8]))],
                    review: None,
                },
                kind: ResumeKind::Signal,
                consumed: Vec::new(),
                now: at(1_000),
                resumed: None,
                facts: Facts {
                    answered,
                    ..Facts::default()
                },
            },
        )
    };
    let first = answer(Vec::new());
    assert!(puts(
        &first.batch,
        &record::update_response_key(P, ID, "u1")
    ));
    // Its caller waits on the workflow's waiters.
    assert_eq!(effects(&first), ["Changed(\"w\")"]);
    let again = answer(vec!["u1".into()]);
    assert!(!puts(
        &again.batch,
        &record::update_response_key(P, ID, "u1")
    ));
}

#[test]
fn a_first_step_joins_the_live_index_and_a_fault_parks_it_there() {
    let created = WorkflowRecord {
        step: 0,
        pending: None,
        ..running()
    };
    let start = |stepped| {
        run(
            created.clone(),
            Input {
                stored: false,
                stepped,
                effects: StepEffects::default(),
                kind: ResumeKind::Start,
                consumed: Vec::new(),
                now: at(1_000),
                resumed: None,
                facts: Facts::default(),
            },
        )
    };
    let started = start(suspend(Command::WaitForSignal { name: "s" }));
    assert!(puts(&started.batch, &record::live_key(P, ID)));
    assert_eq!(started.record.step, 1);
    let faulted = start(Err(StepFault {
        code: "workflow.panicked".into(),
        message: "boom".into(),
    }));
    assert!(puts(&faulted.batch, &record::live_key(P, ID)));
    assert!(matches!(faulted.record.status, RecordStatus::Parked { .. }));
    assert_eq!(faulted.record.step, 0);
}

#[test]
fn status_follows_what_the_pending_command_runs() {
    assert_eq!(status_of(&activity("a")), RecordStatus::Running);
    assert_eq!(
        status_of(&PendingCommand::Timer { deadline_ms: 1 }),
        RecordStatus::Waiting
    );
    let group = |value: Option<Vec<u8>>| PendingCommand::Group {
        race: false,
        shape: GroupShape::List,
        branches: vec![Branch {
            pending: activity("a"),
            value,
        }],
    };
    assert_eq!(status_of(&group(None)), RecordStatus::Running);
    // Its activity finished: only waiting is left.
    assert_eq!(status_of(&group(Some(vec![]))), RecordStatus::Waiting);
}

fn resume_of(interruption: Interruption) -> (Resume, Vec<Vec<u8>>, Followup) {
    match interruption {
        Interruption::Resume(resume, consumed, followup) => (resume, consumed, followup),
        other => panic!("not a resume: {other:?}"),
    }
}

#[test]
fn an_execution_deadline_cuts_a_sleep_short_once_then_is_delivered() {
    let mut deadline = Some(5_000);
    let sleeping = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
    // Not yet passed: nothing.
    assert!(
        on_deadline(P, ID, &sleeping, at(4_999), &mut deadline)
            .unwrap()
            .is_none()
    );
    // Passed: the sleep is cut short, the deadline stays for the next await.
    let (resume, consumed, followup) = resume_of(
        on_deadline(P, ID, &sleeping, at(5_000), &mut deadline)
            .unwrap()
            .unwrap(),
    );
    assert_eq!(resume, Resume::Interrupted);
    assert_eq!(consumed, [record::timer_key(P, 9_000, ID)]);
    assert!(followup.timed_out);
    assert_eq!(deadline, Some(5_000));
    // Once cut short, the next sleep gets the timeout itself, delivered once.
    let mut again = sleeping.clone();
    again.lifecycle.timed_out = true;
    let (resume, consumed, followup) = resume_of(
        on_deadline(P, ID, &again, at(5_000), &mut deadline)
            .unwrap()
            .unwrap(),
    );
    assert_eq!(resume, Resume::Cancelled);
    // (The sleep's own timer goes with the step, as the pending command it leaves.)
    assert_eq!(consumed, [record::deadline_key(ID)]);
    assert!(followup.timed_out);
    assert_eq!(deadline, None);
    assert!(
        on_deadline(P, ID, &again, at(6_000), &mut deadline)
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_interruption_waits_for_a_child_the_workflow_must_wait_for() {
    let child = |policy| {
        waiting_on(PendingCommand::Child {
            child_id: "w/3".into(),
            policy,
        })
    };
    let mut deadline = Some(1);
    let waiting = child(ParentClosePolicy::Wait);
    assert!(matches!(
        on_deadline(P, ID, &waiting, at(2), &mut deadline).unwrap(),
        Some(Interruption::AwaitChild(Followup {
            keep_cancel: false,
            ..
        }))
    ));
    // Kept until the child ends.
    assert_eq!(deadline, Some(1));
    assert!(matches!(
        on_cancel_request(P, ID, &waiting, at(2)).unwrap(),
        Interruption::AwaitChild(Followup {
            keep_cancel: true,
            ..
        })
    ));
    // A child under `RequestCancel` is cancelled with its parent.
    let cancelling = child(ParentClosePolicy::RequestCancel);
    let (resume, consumed, followup) =
        resume_of(on_cancel_request(P, ID, &cancelling, at(2)).unwrap());
    assert_eq!(resume, Resume::Cancelled);
    assert_eq!(consumed, [record::cancel_key(ID)]);
    assert_eq!(followup.cancel_children, ["w/3"]);
}

#[test]
fn a_cancellation_cuts_a_sleep_short_once_and_reaches_an_activity_at_once() {
    let sleeping = waiting_on(PendingCommand::Timer { deadline_ms: 9_000 });
    let (resume, consumed, followup) =
        resume_of(on_cancel_request(P, ID, &sleeping, at(1)).unwrap());
    assert_eq!(resume, Resume::Interrupted);
    assert_eq!(consumed, [record::timer_key(P, 9_000, ID)]);
    assert!(followup.keep_cancel);
    let mut again = sleeping;
    again.lifecycle.cancelled = true;
    let (resume, consumed, _) = resume_of(on_cancel_request(P, ID, &again, at(1)).unwrap());
    assert_eq!(resume, Resume::Cancelled);
    assert_eq!(consumed, [record::cancel_key(ID)]);
    let (resume, consumed, followup) =
        resume_of(on_cancel_request(P, ID, &running(), at(1)).unwrap());
    assert_eq!(resume, Resume::Cancelled);
    assert_eq!(consumed, [record::cancel_key(ID)]);
    assert!(!followup.keep_cancel && followup.writes.is_empty());
}

#[test]
fn a_failed_attempt_is_retried_after_its_backoff_until_the_attempts_are_spent() {
    let policy = crate::activity::RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        backoff_percent: 200,
        max_backoff: Duration::from_secs(1),
    };
    let failed = ActivityError::failed("down");
    assert_eq!(
        retry(&policy, &failed, 1, false, at(1_000)),
        Retry::At(at(1_100))
    );
    assert_eq!(
        retry(&policy, &failed, 2, false, at(1_000)),
        Retry::At(at(1_200))
    );
    // The third attempt was the last.
    assert_eq!(retry(&policy, &failed, 3, false, at(1_000)), Retry::Final);
    // Not retryable, or cancelled: final at once.
    let fatal = ActivityError::non_retryable("bad input");
    assert_eq!(retry(&policy, &fatal, 1, false, at(1_000)), Retry::Final);
    assert_eq!(retry(&policy, &failed, 1, true, at(1_000)), Retry::Final);
    // A policy of zero attempts runs one.
    let none = crate::activity::RetryPolicy {
        max_attempts: 0,
        ..policy
    };
    assert_eq!(retry(&none, &failed, 1, false, at(1_000)), Retry::Final);
}

#[test]
fn most_steps_plan_without_reading_anything() {
    let needs = |stepped, kind| {
        let mut record = running();
        needs_facts(&Step {
            id: ID,
            partition: P,
            record: &mut record,
            stored: true,
            stepped,
            effects: StepEffects::default(),
            attributes: BTreeMap::new(),
            kind,
            consumed: Vec::new(),
            now: at(1),
            resumed: None,
        })
    };
    let run = || {
        suspend(Command::Activity {
            name: "a",
            input: vec![],
            options: ActivityOptions::default(),
        })
    };
    assert!(!needs(run(), ResumeKind::Activity));
    assert!(!needs(Ok(Stepped::Output(vec![])), ResumeKind::Signal));
    // A group's resume may end a review; a child is prepared.
    assert!(needs(run(), ResumeKind::Group));
    let child = Command::Child {
        workflow: "c",
        input: vec![],
        policy: ParentClosePolicy::Wait,
        execution_timeout: None,
    };
    let all = Command::All {
        branches: vec![child],
        shape: GroupShape::List,
    };
    assert!(needs(suspend(all), ResumeKind::Activity));
    // A step that cannot run parks: nothing to read.
    let fault = Err(StepFault {
        code: "x".into(),
        message: "y".into(),
    });
    assert!(!needs(fault, ResumeKind::Group));
}

#[test]
fn a_step_that_parks_still_spends_its_attempts_and_cancels_what_its_resume_cancelled() {
    let prev = running();
    let mut followup = Followup::default();
    followup.writes.put(record::cancel_key("w/2"), vec![1]);
    followup.cancel_children.push("w/2".into());
    let parked = plan_resumed(
        &prev,
        Err(StepFault {
            code: "workflow.panicked".into(),
            message: "boom".into(),
        }),
        ResumeKind::Cancelled,
        vec![record::cancel_key(ID)],
        Facts::default(),
        Resumed {
            followup,
            activity_result: None,
            expect: Vec::new(),
        },
    );
    assert!(matches!(parked.record.status, RecordStatus::Parked { .. }));
    // Parked where it stood: the cancellation it was resumed with is not consumed.
    assert!(!deletes(&parked.batch, &record::cancel_key(ID)));
    assert!(deletes(&parked.batch, &record::attempt_key(P, ID, None)));
    assert!(puts(&parked.batch, &record::cancel_key("w/2")));
    assert_eq!(effects(&parked), ["Changed(\"w\")", "Cancel(\"w/2\")"]);
}
