//! # weft-testing: a test kit for Weft workflows
//!
//! Tools for testing workflows, and the engine itself, against the failures durable execution
//! exists to survive:
//!
//! - [`TestEngine`] is the real engine on memory storage with a [`VirtualClock`]: timers fire when
//!   the test calls [`TestEngine::advance_time`], and every call returns once the engine has
//!   settled, so assertions never race the engine.
//! - [`Mock`] replaces an activity with a closure of the same typed signature, records its calls
//!   and takes per-call overrides ("return this once", "fail once").
//! - [`FaultyStorage`] wraps any [`Storage`](weft_runtime::storage::Storage) and fails reads or
//!   writes at scripted points, including the ambiguous commit (the write landed, the caller saw
//!   an error).
//! - [`Chaos`] wraps an activity and, on a seeded, reproducible schedule, makes its attempts fail
//!   transiently, time out or fail permanently, to prove that retry policies do their job.

pub mod activity_log;
pub mod chaos;
pub mod crash;
pub mod mock;
pub mod storage_faults;
pub mod test_engine;
pub mod virtual_clock;

pub use activity_log::ActivityCall;
pub use chaos::{Chaos, ChaosFault, Injection, ScheduleKey, TimeoutMode};
pub use crash::{CrashFailure, CrashReport, CrashTest, Signals, survives_crashes};
pub use mock::Mock;
pub use storage_faults::{FaultControl, FaultyStorage, InjectedFault, WriteFault};
pub use test_engine::{TestEngine, TestEngineBuilder, TestError};
pub use virtual_clock::VirtualClock;
