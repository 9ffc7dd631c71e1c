//! # Weft: durable execution for Rust
//!
//! A workflow is a plain `async fn`. `#[workflow]` compiles it into an explicit enum state machine
//! whose variants carry the locals still live at each durable await. The engine persists that
//! enum after every step and resumes it after a crash: nothing is replayed, workflow code has no
//! determinism rules, and recovery costs the same at step 10 as at step 10,000.

pub mod activity;
pub mod attribute;
pub mod child;
pub mod codec;
mod contain;
pub mod context;
pub mod engine;
pub mod error;
pub mod group;
pub mod interface;
pub mod migration;
pub mod query;
pub mod review;
pub mod saga;
pub mod signal;
pub mod storage;
pub mod update;
pub mod workflow;

/// The versioning guide's Rust code, compiled and run as doctests so it cannot drift from the API.
#[doc = include_str!("../../docs/versioning.md")]
#[cfg(doctest)]
pub struct VersioningGuide;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use activity::{
    Activity, ActivityContext, ActivityError, ActivityOptions, DynActivity, Resources, RetryPolicy,
};
pub use attribute::AttributeValue;
pub use child::{ChildError, ChildOptions, ParentClosePolicy};
pub use context::{Durable, StepEffects, WorkflowContext};
pub use engine::{
    Engine, EngineBuilder, EngineError, ErrorKind, GroupBy, ListFilter, OverlapPolicy, Page,
    PendingReview, RecoveryReport, RetentionPolicy, ReviewFilter, ScheduleDescription,
    ScheduleError, ScheduleRun, ScheduleSpec, ScheduleSummary, SignalOptions, SignalWithStart,
    StartOptions, SweepReport, Trigger, UpdateOptions, WorkflowHandle, WorkflowStatus,
    WorkflowType,
};
pub use error::WorkflowError;
pub use group::{Race2, Race3, Race4};
pub use interface::Interface;
pub use migration::MigrationError;
pub use query::Query;
pub use review::{Decision, ReviewOutcome, ReviewRequest};
pub use saga::{Compensation, Saga};
pub use signal::Signal;
pub use update::{Update, UpdateReply};
pub use weft_macros::{Signal, Update, activity, workflow};
pub use workflow::{ActivitySet, Command, Resume, StepError, Transition, Workflow};
