//! Differential tests: every representative workflow's generated state machine is driven with
//! scripted resume values, with its state encoded and decoded at every suspension as if the
//! process restarted there, and compared with the same logic written by hand as a plain
//! function: both must issue the same durable operations in the same order, with the same
//! inputs, and reach the same result.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use weft_runtime::codec::{decode, encode};
use weft_runtime::group;
use weft_runtime::review::REVIEW_QUEUE;
use weft_runtime::{
    Activity, ActivityContext, ActivityError, ActivitySet, ChildError, Command, Decision, Race2,
    Resume, ReviewOutcome, Saga, Signal, Transition, Update, UpdateReply, Workflow,
    WorkflowContext, WorkflowError,
};
use weft_ui_tests::representative::*;

/// One durable operation, as issued.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Run {
        name: String,
        input: Vec<u8>,
    },
    Sleep(Duration),
    Signal(String),
    /// An update answered with `ctx.respond`: the update id and the encoded response.
    Respond(String, Vec<u8>),
}

type ChildRunner = fn(&mut Script, Vec<u8>) -> Result<Vec<u8>, ChildError>;

/// Decides the outcome of each durable operation: activities run for real unless their call
/// number is scripted to fail; signals come from a queue.
struct Script {
    activities: ActivitySet,
    /// How to run a child workflow by name: the child's generated machine, driven inline.
    children: Vec<(&'static str, ChildRunner)>,
    signals: VecDeque<Approval>,
    /// Updates and review decisions, each with the queue it arrives on.
    messages: VecDeque<(String, Vec<u8>)>,
    fail_calls: HashSet<usize>,
    calls: usize,
    events: Vec<Event>,
}

impl Script {
    fn new<W: Workflow>(signals: Vec<Approval>, fail_calls: &[usize]) -> Self {
        let mut activities = ActivitySet::new();
        W::activities(&mut activities);
        Script {
            activities,
            children: Vec::new(),
            signals: signals.into(),
            messages: VecDeque::new(),
            fail_calls: fail_calls.iter().copied().collect(),
            calls: 0,
            events: Vec::new(),
        }
    }

    /// Adds a child workflow type: its activities, and how to run it.
    fn with_child<W: Workflow>(mut self, run: ChildRunner) -> Self {
        W::activities(&mut self.activities);
        self.children.push((W::NAME, run));
        self
    }

    fn run_encoded(&mut self, name: &str, input: Vec<u8>) -> Result<Vec<u8>, ActivityError> {
        self.events.push(Event::Run {
            name: name.to_string(),
            input: input.clone(),
        });
        self.calls += 1;
        if self.fail_calls.contains(&self.calls) {
            return Err(ActivityError::failed(format!(
                "scripted failure of call {}",
                self.calls
            )));
        }
        let activity = self
            .activities
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, imp)| imp.cloned())
            .unwrap_or_else(|| panic!("activity {name} is not declared by the workflow"));
        let ctx = ActivityContext::detached("differential", self.calls as u64);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(activity.call(ctx, input))
    }

    /// Queues the messages (updates, review decisions) the workflow receives, in order.
    fn with_messages(mut self, queued: Vec<(String, Vec<u8>)>) -> Self {
        self.messages = queued.into();
        self
    }

    /// Whether a signal or message for queue `name` is waiting.
    fn has_signal(&self, name: &str) -> bool {
        if name.starts_with("weft.") {
            self.messages
                .front()
                .is_some_and(|(queue, _)| queue == name)
        } else {
            !self.signals.is_empty()
        }
    }

    fn signal_encoded(&mut self, name: &str) -> Vec<u8> {
        self.events.push(Event::Signal(name.to_string()));
        if name.starts_with("weft.") {
            let (queue, payload) = self
                .messages
                .pop_front()
                .expect("the script has a message left");
            assert_eq!(
                queue, name,
                "the workflow waits on another queue than scripted"
            );
            return payload;
        }
        let next = self
            .signals
            .pop_front()
            .expect("the script has a signal left");
        encode(&next).unwrap()
    }

    fn sleep(&mut self, duration: Duration) {
        self.events.push(Event::Sleep(duration));
    }

    /// Completes a command the way the engine would, recording what ran.
    fn complete(&mut self, command: Command) -> Resume {
        match command {
            Command::Activity { name, input, .. } => {
                Resume::Activity(self.run_encoded(name, input))
            }
            Command::Compensate { activity, input } => {
                Resume::Activity(self.run_encoded(&activity, input))
            }
            Command::Sleep { duration } => {
                self.sleep(duration);
                Resume::Timer
            }
            Command::WaitForSignal { name } => Resume::Signal(self.signal_encoded(name)),
            Command::Child {
                workflow, input, ..
            } => {
                let run = self
                    .children
                    .iter()
                    .find(|(name, _)| *name == workflow)
                    .map(|(_, run)| *run)
                    .unwrap_or_else(|| panic!("no child runner for {workflow}"));
                Resume::Child(run(self, input))
            }
            Command::All { branches, shape } => {
                let values: Vec<Vec<u8>> = branches
                    .into_iter()
                    .map(|b| group::branch_value(&self.complete(b)).unwrap())
                    .collect();
                Resume::Group(group::all_value(shape, &values).unwrap())
            }
            Command::Race { branches, shape } => {
                // The script's rule: a signal wins if one is queued, else the first sleep.
                let winner = branches
                    .iter()
                    .position(
                        |b| matches!(b, Command::WaitForSignal { name } if self.has_signal(name)),
                    )
                    .or_else(|| {
                        branches
                            .iter()
                            .position(|b| matches!(b, Command::Sleep { .. }))
                    })
                    .unwrap_or(0);
                let branch = branches.into_iter().nth(winner).expect("the winner exists");
                let value = group::branch_value(&self.complete(branch)).unwrap();
                Resume::Group(group::race_value(shape, winner, &value).unwrap())
            }
        }
    }

    // The plain-function side of the comparison.

    fn run<A: Activity>(
        &mut self,
        _activity: A,
        input: A::Input,
    ) -> Result<A::Output, ActivityError> {
        let bytes = self.run_encoded(A::NAME, encode(&input).unwrap())?;
        Ok(decode(&bytes).unwrap())
    }

    fn signal<S: Signal>(&mut self) -> S {
        let bytes = self.signal_encoded(S::NAME);
        decode(&bytes).unwrap()
    }

    fn update<U: Update>(&mut self) -> (U, UpdateReply<U>) {
        let bytes = self.signal_encoded(U::QUEUE);
        decode(&bytes).unwrap()
    }

    fn respond<U: Update>(&mut self, reply: UpdateReply<U>, response: U::Response) {
        self.events.push(Event::Respond(
            reply.update_id().to_string(),
            encode(&response).unwrap(),
        ));
    }

    fn review(&mut self, timeout: Duration) -> ReviewOutcome {
        if self.has_signal(REVIEW_QUEUE) {
            let bytes = self.signal_encoded(REVIEW_QUEUE);
            decode::<Decision>(&bytes).unwrap().into()
        } else {
            self.sleep(timeout);
            ReviewOutcome::TimedOut
        }
    }
}

/// Drives the generated state machine to completion, restarting from bytes at every suspension.
fn drive<W: Workflow>(input: W::Input, script: &mut Script) -> Result<W::Output, W::Error> {
    let mut state_bytes = encode(&W::start(input)).unwrap();
    let mut resume = Resume::Start;
    for step in 0..10_000u64 {
        // A fresh decode at every step: nothing survives between steps but the bytes.
        let state: W::State = decode(&state_bytes).unwrap();
        let mut ctx = WorkflowContext::new("differential", step, SystemTime::UNIX_EPOCH);
        let transition = W::step(&mut ctx, state, resume).expect("the step runs");
        for response in ctx.take_effects().responses {
            let (update_id, payload) = response.expect("the response encodes");
            script.events.push(Event::Respond(update_id, payload));
        }
        match transition {
            Transition::Suspend { state, command } => {
                state_bytes = encode(&state).unwrap();
                resume = script.complete(command);
            }
            Transition::Complete(result) => return result,
            Transition::Cancelled => panic!("not cancelled in these tests"),
        }
    }
    panic!("the workflow did not finish in 10,000 steps");
}

/// Runs both sides with the same script and compares events and results.
fn compare<W, F>(input: W::Input, signals: Vec<Approval>, fail_calls: &[usize], reference: F)
where
    W: Workflow,
    W::Input: Clone,
    W::Output: PartialEq + std::fmt::Debug,
    W::Error: PartialEq,
    F: FnOnce(&mut Script, W::Input) -> Result<W::Output, W::Error>,
{
    let mut machine = Script::new::<W>(signals.clone(), fail_calls);
    let got = drive::<W>(input.clone(), &mut machine);
    let mut plain = Script::new::<W>(signals, fail_calls);
    let want = reference(&mut plain, input);
    assert_eq!(machine.events, plain.events, "durable operations differ");
    match (&got, &want) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert!(a == b, "errors differ: {a} vs {b}"),
        _ => panic!(
            "outcomes differ: machine {:?}, plain {:?}",
            got.as_ref().map_err(|e| e.to_string()),
            want.as_ref().map_err(|e| e.to_string())
        ),
    }
    assert!(
        !machine.events.is_empty(),
        "the workflow issued no durable operation"
    );
}

fn yes(by: &str) -> Approval {
    Approval {
        approved: true,
        by: by.to_string(),
    }
}

fn no(by: &str) -> Approval {
    Approval {
        approved: false,
        by: by.to_string(),
    }
}

#[test]
fn straight_line_matches() {
    let reference = |s: &mut Script, start: u64| -> Result<u64, WorkflowError> {
        let a = s.run(add_one, start)?;
        s.sleep(Duration::from_secs(60));
        let approval = s.signal::<Approval>();
        let b = s.run(double, a)?;
        if approval.approved { Ok(b) } else { Ok(a) }
    };
    compare::<straight_line, _>(4, vec![yes("ann")], &[], reference);
    compare::<straight_line, _>(4, vec![no("bob")], &[], reference);
    compare::<straight_line, _>(4, vec![yes("ann")], &[1], reference);
}

#[test]
fn if_else_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<u64, WorkflowError> {
        let mut total = n;
        if n.is_multiple_of(2) {
            total = s.run(double, total)?;
        } else if n.is_multiple_of(3) {
            total = s.run(add_one, total)?;
            total += 10;
        } else {
            s.sleep(Duration::from_millis(5));
        }
        let last = s.run(add_one, total)?;
        Ok(last)
    };
    for n in [4, 9, 7] {
        compare::<if_else, _>(n, vec![], &[], reference);
    }
    compare::<if_else, _>(9, vec![], &[2], reference);
}

#[test]
fn match_result_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<String, WorkflowError> {
        let label = match s.run(double, n) {
            Ok(v) if v > 100 => format!("big {v}"),
            Ok(v) => {
                let again = s.run(add_one, v)?;
                format!("small {again}")
            }
            Err(e) => {
                s.sleep(Duration::from_secs(1));
                format!("failed {}", e.code())
            }
        };
        let loud = s.run(shout, label)?;
        Ok(loud)
    };
    compare::<match_result, _>(70, vec![], &[], reference);
    compare::<match_result, _>(3, vec![], &[], reference);
    compare::<match_result, _>(3, vec![], &[1], reference);
    compare::<match_result, _>(2000, vec![], &[], reference);
    compare::<match_result, _>(3, vec![], &[2], reference);
}

#[test]
fn labelled_loops_match() {
    let reference = |s: &mut Script, rounds: u64| -> Result<u64, WorkflowError> {
        let mut sum = 0u64;
        let mut i = 0u64;
        'outer: loop {
            i += 1;
            let mut j = 0u64;
            loop {
                j += 1;
                if j > 3 {
                    continue 'outer;
                }
                sum = s.run(add_one, sum)?;
                if sum > rounds * 2 {
                    break 'outer;
                }
                if j == 2 {
                    break;
                }
            }
            if i >= rounds {
                break;
            }
        }
        Ok(sum * 100 + i)
    };
    for rounds in [1, 2, 5] {
        compare::<labelled_loops, _>(rounds, vec![], &[], reference);
    }
}

#[test]
fn while_loops_match() {
    let reference = |s: &mut Script, limit: u64| -> Result<u64, WorkflowError> {
        let mut value = 1u64;
        while value < limit {
            value = s.run(double, value)?;
        }
        let mut queue: VecDeque<u64> = VecDeque::new();
        queue.push_back(value);
        queue.push_back(limit);
        let mut seen = 0u64;
        while let Some(next) = queue.pop_front() {
            seen += s.run(add_one, next)?;
        }
        Ok(seen)
    };
    for limit in [0, 1, 40] {
        compare::<while_loops, _>(limit, vec![], &[], reference);
    }
}

#[test]
fn for_loops_match() {
    let reference = |s: &mut Script, lines: Vec<Line>| -> Result<u32, WorkflowError> {
        let mut ok_lines = 0u32;
        for line in lines {
            if s.run(check_line, line)? {
                ok_lines += 1;
            }
        }
        let mut total = 0u64;
        for i in 0..3u64 {
            total += s.run(add_one, i)?;
        }
        let words: VecDeque<String> = VecDeque::from(vec!["a".to_string(), "b".to_string()]);
        for word in words {
            let loud = s.run(shout, word)?;
            total += loud.len() as u64;
        }
        Ok(ok_lines * 1000 + total as u32)
    };
    let lines = vec![
        Line {
            sku: "a".into(),
            quantity: 1,
        },
        Line {
            sku: "b".into(),
            quantity: 0,
        },
        Line {
            sku: "c".into(),
            quantity: 3,
        },
    ];
    compare::<for_loops, _>(lines.clone(), vec![], &[], reference);
    compare::<for_loops, _>(Vec::new(), vec![], &[], reference);
    compare::<for_loops, _>(lines, vec![], &[5], reference);
}

#[test]
fn early_return_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<u64, OrderError> {
        let mut value = n;
        for round in 1..=5u32 {
            value = s.run(double, value)?;
            if value > 50 {
                return Ok(value + u64::from(round));
            }
        }
        let approval = s.signal::<Approval>();
        if !approval.approved {
            return Err(OrderError::Rejected(approval.by));
        }
        Ok(value)
    };
    compare::<early_return, _>(7, vec![], &[], reference);
    compare::<early_return, _>(0, vec![no("carol")], &[], reference);
    compare::<early_return, _>(0, vec![yes("dan")], &[], reference);
    compare::<early_return, _>(1, vec![], &[3], reference);
    compare::<early_return, _>(600, vec![], &[], reference);
}

#[test]
fn shadowing_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<String, WorkflowError> {
        let x = n;
        let x = s.run(add_one, x)?;
        let label = format!("outer {x}");
        {
            let label = format!("inner {x}");
            let x = s.run(shout, label.clone())?;
            s.sleep(Duration::from_secs(1));
            if x.len() > 100 {
                return Ok(label);
            }
        }
        let done = s.run(shout, label)?;
        Ok(format!("{done}/{x}"))
    };
    compare::<shadowing, _>(41, vec![], &[], reference);
}

#[test]
fn deep_nesting_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<u64, WorkflowError> {
        let mut acc = 0u64;
        let mut round = 0u64;
        loop {
            round += 1;
            {
                let step = round * 10;
                if round % 2 == 1 {
                    match round {
                        1 => {
                            acc += s.run(add_one, step)?;
                        }
                        _ => {
                            let doubled = s.run(double, step)?;
                            acc += doubled;
                        }
                    }
                } else {
                    s.sleep(Duration::from_secs(round));
                }
            }
            if round >= n {
                break;
            }
        }
        Ok(acc)
    };
    for n in [1, 4, 7] {
        compare::<deep_nesting, _>(n, vec![], &[], reference);
    }
}

#[test]
fn macro_uses_match() {
    let reference = |s: &mut Script, name: String| -> Result<String, WorkflowError> {
        let total = 41u64;
        let greeting = format!("hello {name}");
        let total = s.run(add_one, total)?;
        let count = s.run(double, 2)?;
        assert!(count == 4, "count was {count}");
        Ok(format!("{greeting}: {total} {}", count))
    };
    compare::<macro_uses, _>("weft".to_string(), vec![], &[], reference);
}

#[test]
fn hoisted_matches() {
    let reference = |s: &mut Script, n: u64| -> Result<u64, WorkflowError> {
        let sum = s.run(add_one, n)? + s.run(double, n)?;
        let values: Vec<u64> = Vec::from([s.run(add_one, sum)?, sum]);
        Ok(values.iter().sum::<u64>() + s.run(add_one, 0)?)
    };
    compare::<hoisted, _>(5, vec![], &[], reference);
    compare::<hoisted, _>(5, vec![], &[1], reference);
}

#[test]
fn approval_chain_matches() {
    let reference =
        |s: &mut Script, reviewers: Vec<String>| -> Result<Vec<String>, WorkflowError> {
            let mut approved_by = Vec::new();
            for reviewer in reviewers {
                let note = s.run(shout, reviewer.clone())?;
                let approval = s.signal::<Approval>();
                if !approval.approved {
                    return Err(WorkflowError::failed(format!(
                        "{reviewer} rejected ({note})"
                    )));
                }
                approved_by.push(approval.by);
            }
            Ok(approved_by)
        };
    let reviewers = vec!["ann".to_string(), "bob".to_string()];
    compare::<approval_chain, _>(
        reviewers.clone(),
        vec![yes("ann"), yes("bob")],
        &[],
        reference,
    );
    compare::<approval_chain, _>(reviewers, vec![yes("ann"), no("bob")], &[], reference);
}

#[test]
fn inputs_of_every_arity_match() {
    compare::<no_input, _>((), vec![], &[], |s, ()| Ok(s.run(add_one, 0)?));
    compare::<several_inputs, _>((21, "x".to_string()), vec![], &[], |s, (a, b)| {
        let a2 = s.run(double, a)?;
        let b2 = s.run(shout, b)?;
        Ok(format!("{b2}{a2}"))
    });
}

fn run_line_check(s: &mut Script, input: Vec<u8>) -> Result<Vec<u8>, ChildError> {
    let line: Line = decode(&input).unwrap();
    drive::<line_check>(line, s)
        .map(|ok| encode(&ok).unwrap())
        .map_err(|e| ChildError::Failed {
            message: e.to_string(),
        })
}

#[test]
fn composition_matches() {
    let reference = |s: &mut Script, lines: Vec<Line>| -> Result<String, WorkflowError> {
        let mut saga = Saga::new();
        let first = s.run(add_one, 1);
        s.sleep(Duration::from_secs(1));
        let loud = s.run(shout, "go".to_string());
        saga.add(double, 0);
        let checks: Vec<Result<bool, ActivityError>> =
            lines.iter().map(|l| s.run(check_line, l.clone())).collect();
        let children: Vec<Result<bool, ChildError>> = lines
            .into_iter()
            .map(|l| {
                s.run(check_line, l).map_err(|e| ChildError::Failed {
                    message: WorkflowError::from(e).to_string(),
                })
            })
            .collect();
        let decision: Race2<Approval, ()> = if s.signals.is_empty() {
            s.sleep(Duration::from_secs(3600));
            Race2::Second(())
        } else {
            Race2::First(s.signal::<Approval>())
        };
        let approved = match decision {
            Race2::First(approval) => approval.approved,
            Race2::Second(()) => false,
        };
        if !approved {
            while let Some(step) = saga.pop() {
                let input: u64 = decode(step.input.as_ref().unwrap()).unwrap();
                s.run(double, input)?;
            }
            return Err(WorkflowError::failed("not approved in time"));
        }
        let ok = checks.iter().filter(|c| matches!(c, Ok(true))).count()
            + children.iter().filter(|c| matches!(c, Ok(true))).count();
        Ok(format!("{}:{}:{ok}", first?, loud?))
    };
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
    for (signals, fail) in [
        (vec![yes("ann")], vec![]),
        (vec![], vec![]),
        (vec![no("bob")], vec![1, 4]),
    ] {
        let mut machine = Script::new::<composition>(signals.clone(), &fail)
            .with_child::<line_check>(run_line_check);
        let got = drive::<composition>(lines.clone(), &mut machine);
        let mut plain =
            Script::new::<composition>(signals, &fail).with_child::<line_check>(run_line_check);
        let want = reference(&mut plain, lines.clone());
        assert_eq!(machine.events, plain.events, "durable operations differ");
        assert_eq!(got, want);
    }
}

/// A scripted update or review decision: its queue and payload.
type Message = (String, Vec<u8>);

fn update_message(n: u64, update_id: &str) -> (String, Vec<u8>) {
    let request = (AddAmount { n }, UpdateReply::<AddAmount>::new(update_id));
    (AddAmount::QUEUE.to_string(), encode(&request).unwrap())
}

fn decision_message(decision: Decision) -> (String, Vec<u8>) {
    (REVIEW_QUEUE.to_string(), encode(&decision).unwrap())
}

#[test]
fn messages_match() {
    let reference = |s: &mut Script, limit: u64| -> Result<String, WorkflowError> {
        let mut total = 0;
        while total < limit {
            let (amount, reply) = s.update::<AddAmount>();
            total = s.run(add_one, total + amount.n)? - 1;
            s.respond(reply, total);
        }
        match s.review(Duration::from_secs(60)) {
            ReviewOutcome::Approved { by, .. } => Ok(format!("{total} approved by {by}")),
            ReviewOutcome::Rejected { by, comment } => Err(WorkflowError::failed(format!(
                "{total} rejected by {by}: {comment}"
            ))),
            ReviewOutcome::TimedOut => Ok(format!("{total} unreviewed")),
        }
    };
    let approved = Decision::Approved {
        by: "ann".to_string(),
        comment: "fine".to_string(),
    };
    let rejected = Decision::Rejected {
        by: "ann".to_string(),
        comment: "too much".to_string(),
    };
    let cases: Vec<(Vec<Message>, &[usize])> = vec![
        (
            vec![
                update_message(3, "a"),
                update_message(4, "b"),
                decision_message(approved),
            ],
            &[],
        ),
        (
            vec![update_message(9, "a"), decision_message(rejected)],
            &[],
        ),
        (vec![update_message(2, "a"), update_message(5, "b")], &[]),
        (vec![update_message(2, "a")], &[1]),
    ];
    for (queued, fail) in cases {
        let mut machine = Script::new::<messages>(Vec::new(), fail).with_messages(queued.clone());
        let got = drive::<messages>(5, &mut machine);
        let mut plain = Script::new::<messages>(Vec::new(), fail).with_messages(queued);
        let want = reference(&mut plain, 5);
        assert_eq!(machine.events, plain.events, "durable operations differ");
        assert!(
            machine
                .events
                .iter()
                .any(|e| matches!(e, Event::Respond(..)))
                || !fail.is_empty(),
            "the workflow answered no update"
        );
        match (&got, &want) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("outcomes differ"),
        }
    }
}
