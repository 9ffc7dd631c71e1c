//! # Weft: durable execution for Rust
//!
//! A workflow is a plain `async fn`. [`#[workflow]`](macro@workflow) compiles it into an
//! explicit enum state machine whose variants carry the locals still live at each durable
//! await. The [`Engine`] persists that enum after every step and resumes it after a crash:
//! nothing is replayed, workflow code has no determinism rules, and recovery costs the same at
//! step 10 as at step 10,000.
//!
//! ## A first workflow
//!
//! ```
//! use std::time::Duration;
//!
//! use serde::{Deserialize, Serialize};
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{
//!     ActivityError, Engine, ListFilter, Signal, WorkflowContext, WorkflowError, WorkflowStatus,
//!     activity, workflow,
//! };
//!
//! /// An activity: any async code with side effects. Its result is recorded exactly once.
//! #[activity]
//! async fn charge(cents: u64) -> Result<String, ActivityError> {
//!     Ok(format!("ch_{cents}"))
//! }
//!
//! /// A message from outside, delivered to the workflow that waits for it.
//! #[derive(Debug, Clone, Serialize, Deserialize, Signal)]
//! struct Shipped {
//!     tracking: String,
//! }
//!
//! /// The workflow: every `.await` is a durable point the engine persists.
//! #[workflow]
//! async fn order(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
//!     let receipt = ctx.run(charge, cents).await?;
//!     ctx.sleep(Duration::from_millis(1)).await;
//!     let shipped = ctx.wait_for_signal::<Shipped>().await;
//!     Ok(format!("{receipt}, shipped as {}", shipped.tracking))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Registering `order` registers `charge`. Use `RedbStorage` to survive restarts.
//! let engine = Engine::builder(MemoryStorage::new()).register::<order>().build().await?;
//! let handle = engine.start::<order>(4200).await?;
//! handle.signal(Shipped { tracking: "1Z999".into() }).await?;
//! assert_eq!(handle.result().await??, "ch_4200, shipped as 1Z999");
//!
//! // Every listing answers a `Page`; pass its `next_page_token` back for the next one.
//! let done = ListFilter { status: Some(WorkflowStatus::Completed), ..ListFilter::default() };
//! let page = engine.list(&done, 50, None).await?;
//! assert_eq!(page.items[0].id, handle.id());
//! assert_eq!(page.next_page_token, None);
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## The parts
//!
//! - **Writing workflows.** [`#[workflow]`](macro@workflow) and [`#[activity]`](macro@activity)
//!   turn `async fn`s into a [`Workflow`] and an [`Activity`]. Inside a workflow,
//!   [`WorkflowContext`] offers the durable operations: [`run`](WorkflowContext::run) an
//!   activity, [`sleep`](WorkflowContext::sleep), wait for a [`Signal`] or an [`Update`], start
//!   a [`child`](WorkflowContext::child) workflow, wait for [`all`](WorkflowContext::all) or the
//!   first ([`race`](WorkflowContext::race), answering a [`Race2`]..[`Race4`]) of several,
//!   ask a person for a [`review`](WorkflowContext::review), and run a [`Saga`]'s
//!   compensations. A [`Query`] reads a workflow's persisted state without waking it.
//! - **Running them.** [`Engine::builder`] takes a [`storage`] backend (redb on disk, or memory)
//!   and the workflow types; the [`Engine`] starts, signals, updates, cancels, describes and
//!   lists workflows, runs [schedules](ScheduleSpec), applies a [`RetentionPolicy`], and
//!   recovers every workflow in flight when it is built again. The same calls exist by name with
//!   JSON ([`Engine::start_by_name`], [`Engine::describe`], ...) for servers and tools.
//! - **Reading what is stored.** [`Engine::list`], [`Engine::pending_reviews`] and
//!   [`Engine::list_schedules`] answer one [`Page`] at a time; [`Engine::count`] groups by
//!   status, type or search attribute ([`AttributeValue`]).
//! - **Errors.** Every engine call fails with an [`EngineError`] (schedule calls with a
//!   [`ScheduleError`]): a stable [`code`](EngineError::code) and an [`ErrorKind`] (not found,
//!   conflict, invalid input, unavailable, internal) that maps onto an HTTP status.
//! - **Time.** The engine reads time from a [`Clock`]: the [`SystemClock`] by default, a
//!   [`VirtualClock`] in tests, where moving it fires every due timer at once (the
//!   `weft-testing` crate's `TestEngine` runs on it).
//!
//! Every async method of [`Engine`] and [`WorkflowHandle`] is cancel safe once acknowledged:
//! its `# Cancel safety` section says what dropping its future does. What a call does after its
//! commit is durable is driven by the engine, not by the caller's future.

// The modules are private or hidden: the crate's surface is the flat set of re-exports below,
// plus `storage` (the backends). Hidden modules stay reachable for the macros' expansions, the
// test kit and the workspace's tools, which read stored records.
#[doc(hidden)]
pub mod activity;
#[doc(hidden)]
pub mod attribute;
#[doc(hidden)]
pub mod child;
#[doc(hidden)]
pub mod codec;
mod contain;
#[doc(hidden)]
pub mod context;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod error;
// For the workspace's fuzzer: it reaches crate-private decoders through this module alone.
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod group;
#[doc(hidden)]
pub mod interface;
#[doc(hidden)]
pub mod migration;
#[doc(hidden)]
pub mod query;
#[doc(hidden)]
pub mod review;
#[doc(hidden)]
pub mod saga;
#[doc(hidden)]
pub mod signal;
pub mod storage;
#[doc(hidden)]
pub mod update;
#[doc(hidden)]
pub mod workflow;

/// The versioning guide's Rust code, compiled and run as doctests so it cannot drift from the API.
#[doc = include_str!("../../docs/versioning.md")]
#[cfg(doctest)]
pub struct VersioningGuide;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use activity::{
    Activity, ActivityContext, ActivityError, ActivityOptions, BoxFuture, DynActivity, Resources,
    RetryPolicy,
};
pub use attribute::AttributeValue;
pub use child::{ChildError, ChildOptions, ParentClosePolicy};
pub use codec::{CodecError, Payload};
pub use context::{Durable, WorkflowContext};
pub use engine::{
    Clock, DEFAULT_MAX_QUEUED_REQUESTS, DEFAULT_PAYLOAD_LIMIT, DEFAULT_SIGNAL_ID_WINDOW,
    DESCRIBED_CHILDREN, Engine, EngineBuilder, EngineError, EngineStats, ErrorKind, GroupBy,
    ListFilter, ListOrder, MAX_ID_LEN, MAX_UNRESOLVED_LISTED, OverlapPolicy, Page, ParkReason,
    Pending, PendingReview, RecoveryReport, RetentionPolicy, ReviewFilter, ScheduleDescription,
    ScheduleError, ScheduleRun, ScheduleSpec, ScheduleSummary, SignalOptions, SignalType,
    SignalWithStart, StartOptions, StepEvent, SweepReport, SystemClock, Trigger,
    UnresolvedWorkflow, UpdateOptions, UpdateType, VirtualClock, WindowCounts, WorkflowDescription,
    WorkflowHandle, WorkflowStatus, WorkflowSummary, WorkflowType,
};
pub use error::WorkflowError;
pub use group::{DurableGroup, Race2, Race3, Race4};
pub use interface::{Interface, IoSchemas, JsonError, SchemaFn, SignalCodec, UpdateCodec};
pub use migration::MigrationError;
pub use query::Query;
pub use review::{Decision, ReviewOutcome, ReviewRequest};
pub use saga::{Compensation, Saga};
pub use signal::Signal;
pub use update::{Update, UpdateReply};
pub use weft_macros::{Signal, Update, activity, workflow};
pub use workflow::{ActivitySet, Command, Resume, StepError, Transition, Workflow};
