//! Parallel groups: `ctx.all(..)` and `ctx.race(..)` over durable operations.
//!
//! A group is a fixed tuple of operations of different types, or a `Vec` of operations of one
//! type. The engine runs the branches concurrently and persists each branch's outcome as it
//! completes; when the group is done (all branches, or the first one for a race) it resumes the
//! workflow with the group's value, encoded exactly as the typed value would be:
//!
//! - a branch's value: an activity or child result is a `Result<T, E>`, a timer is `()`, a
//!   signal is the signal value;
//! - `all` of a tuple is the tuple of branch values; of a `Vec`, the `Vec` of branch values;
//! - `race` of a tuple is a [`Race2`]/[`Race3`]/[`Race4`] naming the winner; of a `Vec`,
//!   `(index, value)`.
//!
//! So the engine never needs the branch types: it assembles the bytes from the branch payloads
//! (see [`branch_value`], [`all_value`], [`race_value`]), and the golden tests in this module pin
//! that the assembled bytes equal the typed encoding.

use serde::{Deserialize, Serialize};

use crate::codec::{Payload, encode};
use crate::context::Durable;
use crate::workflow::{Command, Resume, StepError};

/// Whether a group was written as a tuple or as a `Vec`: it decides how its value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupShape {
    /// A fixed tuple of operations, possibly of different types.
    Tuple,
    /// A `Vec` of operations of one type.
    List,
}

/// What `ctx.race` over a tuple of two operations resumes with: which branch finished
/// first, with its value (`Result<T, ActivityError>` for an activity, `Result<T, ChildError>`
/// for a child, `()` for a sleep, the signal for a signal wait).
///
/// Only the winner's value is committed; the losers were stopped when it won (see
/// [`WorkflowContext::race`](crate::WorkflowContext::race)). Match on it:
/// `Race2::First(value) => ..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Race2<A, B> {
    /// The first operation finished first.
    First(A),
    /// The second operation finished first.
    Second(B),
}

/// What `ctx.race` over a tuple of three operations resumes with: which branch finished
/// first, with its value (`Result<T, ActivityError>` for an activity, `Result<T, ChildError>`
/// for a child, `()` for a sleep, the signal for a signal wait).
///
/// Only the winner's value is committed; the losers were stopped when it won (see
/// [`WorkflowContext::race`](crate::WorkflowContext::race)). Match on it:
/// `Race3::First(value) => ..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Race3<A, B, C> {
    /// The first operation finished first.
    First(A),
    /// The second operation finished first.
    Second(B),
    /// The third operation finished first.
    Third(C),
}

/// What `ctx.race` over a tuple of four operations resumes with: which branch finished
/// first, with its value (`Result<T, ActivityError>` for an activity, `Result<T, ChildError>`
/// for a child, `()` for a sleep, the signal for a signal wait).
///
/// Only the winner's value is committed; the losers were stopped when it won (see
/// [`WorkflowContext::race`](crate::WorkflowContext::race)). Match on it:
/// `Race4::First(value) => ..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Race4<A, B, C, D> {
    /// The first operation finished first.
    First(A),
    /// The second operation finished first.
    Second(B),
    /// The third operation finished first.
    Third(C),
    /// The fourth operation finished first.
    Fourth(D),
}

/// Operations that `ctx.all` and `ctx.race` accept: tuples of two to four [`Durable`]s, or a
/// `Vec` of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a group of durable operations",
    label = "expected a tuple or a `Vec` of durable operations",
    note = "write the operations without `.await`, for example `ctx.all((ctx.run(a, x), ctx.sleep(d)))`"
)]
pub trait DurableGroup {
    /// What `ctx.all` resumes with.
    type All;
    /// What `ctx.race` resumes with.
    type Race;
    /// The branches' commands, in order, and the group's shape.
    #[doc(hidden)]
    fn into_branches(self) -> Result<(Vec<Command>, GroupShape), StepError>;
}

impl<T> DurableGroup for Vec<Durable<T>> {
    type All = Vec<T>;
    type Race = (usize, T);
    fn into_branches(self) -> Result<(Vec<Command>, GroupShape), StepError> {
        let commands = self
            .into_iter()
            .map(Durable::into_command)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((commands, GroupShape::List))
    }
}

macro_rules! tuple_group {
    ($race:ident; $($t:ident $v:ident),+) => {
        impl<$($t),+> DurableGroup for ($(Durable<$t>,)+) {
            type All = ($($t,)+);
            type Race = $race<$($t),+>;
            fn into_branches(self) -> Result<(Vec<Command>, GroupShape), StepError> {
                let ($($v,)+) = self;
                Ok((vec![$($v.into_command()?),+], GroupShape::Tuple))
            }
        }
    };
}
tuple_group!(Race2; A a, B b);
tuple_group!(Race3; A a, B b, C c);
tuple_group!(Race4; A a, B b, C c, D d);

/// The encoded value of a single operation from the resume value that completed it.
pub fn branch_value(resume: &Resume) -> Result<Payload, StepError> {
    let tagged = |index: u32, body: &[u8]| -> Result<Payload, StepError> {
        let mut out = encode(&index)?;
        out.extend_from_slice(body);
        Ok(out)
    };
    match resume {
        Resume::Activity(Ok(bytes)) => tagged(0, bytes),
        Resume::Activity(Err(e)) => tagged(1, &encode(e)?),
        Resume::Child(Ok(bytes)) => tagged(0, bytes),
        Resume::Child(Err(e)) => tagged(1, &encode(e)?),
        Resume::Timer => Ok(Vec::new()),
        Resume::Signal(bytes) => Ok(bytes.clone()),
        other => Err(StepError::UnexpectedResume {
            state: "group branch",
            expected: "activity, child, timer or signal",
            got: other.kind(),
        }),
    }
}

/// The encoded value of `ctx.all` from its branch values, in branch order.
pub fn all_value(shape: GroupShape, branches: &[Payload]) -> Result<Payload, StepError> {
    let mut out = match shape {
        GroupShape::Tuple => Vec::new(),
        GroupShape::List => encode(&(branches.len() as u64))?,
    };
    for b in branches {
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// The encoded value of `ctx.race` from the winning branch.
pub fn race_value(shape: GroupShape, index: usize, branch: &[u8]) -> Result<Payload, StepError> {
    let mut out = match shape {
        GroupShape::Tuple => encode(&(index as u32))?,
        GroupShape::List => encode(&(index as u64))?,
    };
    out.extend_from_slice(branch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ActivityError;
    use crate::child::ChildError;
    use crate::codec::decode;

    fn activity_ok<T: Serialize>(v: &T) -> Resume {
        Resume::Activity(Ok(encode(v).unwrap()))
    }

    #[test]
    fn assembled_all_of_a_tuple_is_the_typed_encoding() {
        let branches = [
            branch_value(&activity_ok(&300u64)).unwrap(),
            branch_value(&Resume::Timer).unwrap(),
            branch_value(&Resume::Signal(encode(&"yes".to_string()).unwrap())).unwrap(),
            branch_value(&Resume::Activity(Err(ActivityError::failed("no")))).unwrap(),
        ];
        let bytes = all_value(GroupShape::Tuple, &branches).unwrap();
        type All = (
            Result<u64, ActivityError>,
            (),
            String,
            Result<bool, ActivityError>,
        );
        let expected: All = (Ok(300), (), "yes".into(), Err(ActivityError::failed("no")));
        assert_eq!(bytes, encode(&expected).unwrap());
        assert_eq!(decode::<All>(&bytes).unwrap(), expected);
    }

    #[test]
    fn assembled_all_of_a_list_is_the_typed_encoding() {
        let values: Vec<Result<String, ActivityError>> = (0..300)
            .map(|i| {
                if i % 7 == 0 {
                    Err(ActivityError::non_retryable(format!("{i}")))
                } else {
                    Ok(format!("item {i}"))
                }
            })
            .collect();
        let branches: Vec<Payload> = values
            .iter()
            .map(|v| {
                let resume = match v {
                    Ok(s) => activity_ok(s),
                    Err(e) => Resume::Activity(Err(e.clone())),
                };
                branch_value(&resume).unwrap()
            })
            .collect();
        let bytes = all_value(GroupShape::List, &branches).unwrap();
        assert_eq!(bytes, encode(&values).unwrap());
    }

    #[test]
    fn assembled_race_values_are_the_typed_encoding() {
        let winner = branch_value(&Resume::Child(Err(ChildError::Cancelled))).unwrap();
        let bytes = race_value(GroupShape::Tuple, 2, &winner).unwrap();
        let expected: Race3<(), String, Result<u8, ChildError>> =
            Race3::Third(Err(ChildError::Cancelled));
        assert_eq!(bytes, encode(&expected).unwrap());

        let winner = branch_value(&Resume::Timer).unwrap();
        let bytes = race_value(GroupShape::List, 260, &winner).unwrap();
        assert_eq!(bytes, encode(&(260usize, ())).unwrap());
    }

    #[test]
    fn only_completions_are_branch_values() {
        assert!(branch_value(&Resume::Start).is_err());
        assert!(branch_value(&Resume::Cancelled).is_err());
    }
}
