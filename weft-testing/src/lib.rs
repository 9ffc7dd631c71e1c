//! # weft-testing: a test kit for Weft workflows
//!
//! Tools for testing workflows, and the engine itself, against the failures durable execution
//! exists to survive:
//!
//! - [`FaultyStorage`] wraps any [`Storage`](weft_runtime::storage::Storage) and fails reads or
//!   writes at scripted points, including the ambiguous commit (the write landed, the caller saw
//!   an error).
//! - [`Chaos`] wraps an activity and, on a seeded, reproducible schedule, makes its attempts fail
//!   transiently, time out or fail permanently, to prove that retry policies do their job.
//!
//! A virtual-clock test engine, activity mocks and a crash harness are planned; they build on the
//! engine and are not here yet.

pub mod chaos;
pub mod storage_faults;

pub use chaos::{Chaos, ChaosFault, Injection, ScheduleKey, TimeoutMode};
pub use storage_faults::{FaultControl, FaultyStorage, InjectedFault, WriteFault};
