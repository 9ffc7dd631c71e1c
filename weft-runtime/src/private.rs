//! Support for the code `#[workflow]`, `#[activity]` and `#[derive(Signal)]` generate.
//!
//! Not public API: reached as `::weft_runtime::__private`, so users need one dependency, and may
//! change in any release together with the macros.

pub use serde;
pub use std::collections::VecDeque;
pub use std::result::Result::{Err, Ok};

pub use crate::activity::RetryPolicy;
pub use crate::activity::{Activity, ActivityContext, ActivityError, ActivityOptions};
pub use crate::child::ChildError;
pub use crate::codec::{decode, encode};
pub use crate::context::WorkflowContext;
pub use crate::interface::{
    Interface, MessageProbe, NotAMessage, SchemaFn, SchemaProbe, ViaJsonSchema, ViaSignal,
    ViaUpdate, WithoutJsonSchema,
};
pub use crate::signal::Signal;
pub use crate::update::{Update, UpdateReply};
pub use crate::workflow::{ActivitySet, Command, Resume, StepError, Transition, Workflow};

use serde::{Deserialize, Serialize};

/// Where the body of a step ended.
pub enum Next<S, O> {
    /// At a durable await.
    Suspend(S, Command),
    /// At a `return` or the tail expression, with the `Ok` value.
    Return(O),
    /// The resume value did not fit the state.
    Fault(StepError),
    /// Cancellation reached an await whose result cannot carry it.
    Cancelled,
}

/// Turns the body's result into the step's transition.
pub fn finish<W: Workflow>(
    body: Result<Next<W::State, W::Output>, W::Error>,
) -> Result<Transition<W>, StepError> {
    match body {
        Ok(Next::Suspend(state, command)) => Ok(Transition::Suspend { state, command }),
        Ok(Next::Return(output)) => Ok(Transition::Complete(Ok(output))),
        Ok(Next::Fault(e)) => Err(e),
        Ok(Next::Cancelled) => Ok(Transition::Cancelled),
        Err(e) => Ok(Transition::Complete(Err(e))),
    }
}

/// The value a resume point receives, or how the step must end instead.
pub enum Resumed<T, S, O> {
    /// Continue with this value.
    Value(T),
    /// End the step with this.
    Exit(Next<S, O>),
}

fn unexpected<S, O>(state: &'static str, expected: &'static str, got: &Resume) -> Next<S, O> {
    Next::Fault(StepError::UnexpectedResume {
        state,
        expected,
        got: got.kind(),
    })
}

/// Checks that a fresh instance is started with [`Resume::Start`].
pub fn resume_start<S, O>(state: &'static str, resume: Resume) -> Resumed<(), S, O> {
    match resume {
        Resume::Start => Resumed::Value(()),
        Resume::Cancelled | Resume::Interrupted => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "start", &other)),
    }
}

/// Decodes an activity result. Cancellation arrives as `Err(ActivityError::Cancelled)`, so a
/// workflow can catch it.
pub fn resume_activity<A: Activity, S, O>(
    _activity: &A,
    state: &'static str,
    resume: Resume,
) -> Resumed<Result<A::Output, ActivityError>, S, O> {
    match resume {
        Resume::Activity(Ok(bytes)) => match decode::<A::Output>(&bytes) {
            Ok(value) => Resumed::Value(Ok(value)),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Activity(Err(e)) => Resumed::Value(Err(e)),
        Resume::Cancelled | Resume::Interrupted => Resumed::Value(Err(ActivityError::Cancelled)),
        other => Resumed::Exit(unexpected(state, "activity", &other)),
    }
}

/// Accepts a fired timer.
pub fn resume_timer<S, O>(state: &'static str, resume: Resume) -> Resumed<(), S, O> {
    match resume {
        Resume::Timer | Resume::Interrupted => Resumed::Value(()),
        Resume::Cancelled => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "timer", &other)),
    }
}

/// Decodes a delivered signal.
pub fn resume_signal<T: Signal, S, O>(state: &'static str, resume: Resume) -> Resumed<T, S, O> {
    match resume {
        Resume::Signal(bytes) => match decode::<T>(&bytes) {
            Ok(value) => Resumed::Value(value),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Cancelled | Resume::Interrupted => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "signal", &other)),
    }
}

/// Decodes a delivered update: the request and the token to answer it with.
pub fn resume_update<U: Update, S, O>(
    state: &'static str,
    resume: Resume,
) -> Resumed<(U, UpdateReply<U>), S, O> {
    match resume {
        Resume::Signal(bytes) => match decode::<(U, UpdateReply<U>)>(&bytes) {
            Ok(value) => Resumed::Value(value),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Cancelled | Resume::Interrupted => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "update", &other)),
    }
}

/// Decodes the end of a review: the decision, or the timer that won the race against it.
pub fn resume_review<S, O>(
    state: &'static str,
    resume: Resume,
) -> Resumed<crate::review::ReviewOutcome, S, O> {
    use crate::group::Race2;
    use crate::review::{Decision, ReviewOutcome};
    match resume {
        Resume::Group(bytes) => match decode::<Race2<Decision, ()>>(&bytes) {
            Ok(Race2::First(decision)) => Resumed::Value(decision.into()),
            Ok(Race2::Second(())) => Resumed::Value(ReviewOutcome::TimedOut),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Cancelled | Resume::Interrupted => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "review", &other)),
    }
}

/// Decodes a child workflow's result. Cancellation of the parent arrives as
/// `Err(ChildError::Cancelled)`, so the workflow can catch it.
pub fn resume_child<W: Workflow, S, O>(
    _workflow: &W,
    state: &'static str,
    resume: Resume,
) -> Resumed<Result<W::Output, ChildError>, S, O> {
    match resume {
        Resume::Child(Ok(bytes)) => match decode::<W::Output>(&bytes) {
            Ok(value) => Resumed::Value(Ok(value)),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Child(Err(e)) => Resumed::Value(Err(e)),
        Resume::Cancelled | Resume::Interrupted => Resumed::Value(Err(ChildError::Cancelled)),
        other => Resumed::Exit(unexpected(state, "child", &other)),
    }
}

/// Accepts a compensation's completion; its output is not needed.
pub fn resume_compensation<S, O>(
    state: &'static str,
    resume: Resume,
) -> Resumed<Result<(), ActivityError>, S, O> {
    match resume {
        Resume::Activity(Ok(_)) => Resumed::Value(Ok(())),
        Resume::Activity(Err(e)) => Resumed::Value(Err(e)),
        Resume::Cancelled | Resume::Interrupted => Resumed::Value(Err(ActivityError::Cancelled)),
        other => Resumed::Exit(unexpected(state, "activity", &other)),
    }
}

/// Decodes the value of `ctx.all`/`ctx.race`, whose type the binding decides.
pub fn resume_group<T: serde::de::DeserializeOwned, S, O>(
    state: &'static str,
    resume: Resume,
) -> Resumed<T, S, O> {
    match resume {
        Resume::Group(bytes) => match decode::<T>(&bytes) {
            Ok(value) => Resumed::Value(value),
            Err(e) => Resumed::Exit(Next::Fault(e.into())),
        },
        Resume::Cancelled | Resume::Interrupted => Resumed::Exit(Next::Cancelled),
        other => Resumed::Exit(unexpected(state, "group", &other)),
    }
}

/// The command of a durable operation the workflow suspends at.
pub fn command<T>(operation: crate::context::Durable<T>) -> Result<Command, StepError> {
    operation.into_command()
}

/// An integer range being iterated by a `for` loop that suspends. Unlike `RangeInclusive`, it
/// serializes its position exactly, so a resumed loop neither repeats nor skips an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "serde")]
pub struct DurableRange<T> {
    next: T,
    end: T,
    inclusive: bool,
    done: bool,
}

/// Integer types a suspending `for` loop may range over.
pub trait RangeItem: Copy + PartialOrd {
    /// `self + 1`, or `None` at the type's maximum.
    fn successor(self) -> Option<Self>;
}

macro_rules! range_items {
    ($($t:ty),*) => {$(
        impl RangeItem for $t {
            fn successor(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    )*};
}
range_items!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

impl<T: RangeItem> DurableRange<T> {
    /// Yields the next item, advancing the stored position.
    pub fn next_item(&mut self) -> Option<T> {
        if self.done {
            return None;
        }
        let current = self.next;
        let in_range = if self.inclusive {
            current <= self.end
        } else {
            current < self.end
        };
        if !in_range {
            self.done = true;
            return None;
        }
        match current.successor() {
            Some(next) => self.next = next,
            None => self.done = true,
        }
        Some(current)
    }
}

/// What a suspending `for` loop can iterate: integer ranges and owned `Vec`/`VecDeque`.
#[diagnostic::on_unimplemented(
    message = "a `for` loop that suspends cannot iterate over `{Self}`",
    label = "unsupported iterable",
    note = "iterate over an integer range (`0..n`) or an owned `Vec` or `VecDeque`, whose position can be saved in the workflow state"
)]
pub trait DurableIterable {
    /// The saved iteration position.
    type Iter;
    /// Starts iterating.
    fn into_durable(self) -> Self::Iter;
}

impl<T: RangeItem> DurableIterable for std::ops::Range<T> {
    type Iter = DurableRange<T>;
    fn into_durable(self) -> DurableRange<T> {
        DurableRange {
            next: self.start,
            end: self.end,
            inclusive: false,
            done: false,
        }
    }
}

impl<T: RangeItem> DurableIterable for std::ops::RangeInclusive<T> {
    type Iter = DurableRange<T>;
    fn into_durable(self) -> DurableRange<T> {
        let (start, end) = self.into_inner();
        DurableRange {
            next: start,
            end,
            inclusive: true,
            done: false,
        }
    }
}

impl<T> DurableIterable for Vec<T> {
    type Iter = VecDeque<T>;
    fn into_durable(self) -> VecDeque<T> {
        VecDeque::from(self)
    }
}

impl<T> DurableIterable for VecDeque<T> {
    type Iter = VecDeque<T>;
    fn into_durable(self) -> VecDeque<T> {
        self
    }
}

/// Starts a suspending `for` loop.
pub fn durable_iter<I: DurableIterable>(iterable: I) -> I::Iter {
    iterable.into_durable()
}

/// Advances a saved iteration position.
pub trait DurableIter {
    /// The item type.
    type Item;
    /// The next item, or `None` when the loop is done.
    fn next_item(&mut self) -> Option<Self::Item>;
}

impl<T: RangeItem> DurableIter for DurableRange<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        DurableRange::next_item(self)
    }
}

impl<T> DurableIter for VecDeque<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        self.pop_front()
    }
}

/// FNV-1a, used by the macro's fingerprint and re-exported so tests can recompute one.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `Debug` for generated state enums, rendered through serde as JSON, so state fields need no
/// `Debug` impl of their own.
pub fn debug_state<T: Serialize>(state: &T, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match serde_json::to_string(state) {
        Ok(json) => f.write_str(&json),
        Err(_) => f.write_str("<state not representable as JSON>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_range_survives_a_round_trip_at_its_end() {
        let mut range = durable_iter(3u8..=4);
        assert_eq!(range.next_item(), Some(3));
        assert_eq!(range.next_item(), Some(4));
        let mut restored: DurableRange<u8> = decode(&encode(&range).unwrap()).unwrap();
        assert_eq!(restored.next_item(), None);
        let mut full = durable_iter(254u8..=255);
        assert_eq!(full.next_item(), Some(254));
        assert_eq!(full.next_item(), Some(255));
        assert_eq!(full.next_item(), None);
    }
}
