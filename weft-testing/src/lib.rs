//! # weft-testing: a test kit for Weft workflows
//!
//! Test your workflows fast and deterministically, including what happens when the process
//! dies, on the real engine (not an imitation of it):
//!
//! - [`TestEngine`] is the real engine on memory storage (or on redb, with
//!   [`TestEngineBuilder::storage`]) with the engine's own [`VirtualClock`]. Timers and
//!   retry backoffs fire when the test calls [`TestEngine::advance_time`], so a workflow that
//!   sleeps for a week finishes in milliseconds; every call that changes something returns once
//!   the engine has settled, so assertions never race the engine. [`TestEngine::state`] reads a
//!   running workflow's state enum as a typed value.
//! - [`Mock`] replaces an activity with a closure of the same typed signature, checked by the
//!   compiler; it records its calls and takes per-call overrides ("return this once", "fail
//!   once"). Activities you do not mock run for real.
//! - [`survives_crashes`] (and its builder [`CrashTest`]) runs a workflow once normally, then
//!   once per commit, crashing the engine right after that commit, then once crashing after
//!   every commit, and checks that every run reaches the same result with the same activity
//!   results.
//! - [`Chaos`] makes an activity's attempts fail transiently, time out or fail permanently on a
//!   seeded schedule, to prove that retry policies do their job.
//! - [`FaultyStorage`] fails reads or writes at scripted points, including the ambiguous commit
//!   (the write landed, the caller saw an error); every [`TestEngine`] runs on one
//!   ([`TestEngine::faults`]).
//! - [`conformance`] is the storage contract as public checks, with
//!   [`storage_conformance!`] to run them all as tests: a new storage backend proves there
//!   that it can carry the engine's fenced writes.
//!
//! ## A complete test
//!
//! ```
//! use std::time::Duration;
//!
//! use serde::{Deserialize, Serialize};
//! use weft_runtime::{ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow};
//! use weft_testing::{CrashTest, Signals, TestEngine};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! pub struct Order {
//!     pub id: String,
//!     pub cents: u64,
//! }
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Signal)]
//! pub struct Shipped {
//!     pub tracking: String,
//! }
//!
//! #[activity(max_attempts = 3, initial_backoff_ms = 500)]
//! async fn charge_card(order: Order) -> Result<String, ActivityError> {
//!     unimplemented!("calls the payment provider; mocked in tests")
//! }
//!
//! const COOLING_OFF: Duration = Duration::from_secs(3 * 24 * 3600);
//!
//! #[workflow]
//! async fn fulfil(ctx: &mut WorkflowContext, order: Order) -> Result<String, WorkflowError> {
//!     let charge = ctx.run(charge_card, order).await?;
//!     ctx.sleep(COOLING_OFF).await;
//!     let shipped = ctx.wait_for_signal::<Shipped>().await;
//!     Ok(format!("{charge} shipped as {}", shipped.tracking))
//! }
//!
//! // In your crate this is a `#[tokio::test] async fn`.
//! async fn fulfils_an_order() -> Result<(), Box<dyn std::error::Error>> {
//!     let engine = TestEngine::builder()
//!         .register::<fulfil>()
//!         // Same signature as `charge_card`, checked by the compiler: `Order` in, `String` out.
//!         .mock(charge_card, |order| async move { Ok(format!("ch_{}", order.cents)) })
//!         .build()
//!         .await?;
//!     let order = Order { id: "o-1".into(), cents: 4200 };
//!     let handle = engine.start::<fulfil>(order.clone()).await?;
//!
//!     // `start` returns once the workflow waits: charged, now in its cooling-off sleep.
//!     assert_eq!(engine.mock(charge_card).calls(), [order.clone()]);
//!     let state = engine.state::<fulfil>(handle.id()).await?;
//!     assert!(matches!(state, FulfilState::AwaitSleep { .. }), "{state:?}");
//!
//!     // Three days pass at once; the timer fires and the workflow waits for the signal.
//!     engine.advance_time(COOLING_OFF).await;
//!     assert_eq!(engine.state_name(handle.id()).await?, Some("AwaitSignalShipped"));
//!     engine.signal(handle.id(), Shipped { tracking: "1Z999".into() }).await?;
//!     assert_eq!(
//!         engine.result::<fulfil>(handle.id()).await?,
//!         Ok("ch_4200 shipped as 1Z999".to_string())
//!     );
//!
//!     // The same result however the engine crashes: once after each of the workflow's commits.
//!     let report = CrashTest::<fulfil>::new()
//!         .mock(charge_card, |order| async move { Ok(format!("ch_{}", order.cents)) })
//!         .signals(Signals::none().then(Shipped { tracking: "1Z999".into() }))
//!         .run(order)
//!         .await?;
//!     assert_eq!(report.output, serde_json::json!({ "Ok": "ch_4200 shipped as 1Z999" }));
//!     Ok(())
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     fulfils_an_order().await.unwrap();
//! # }
//! ```
//!
//! ## How the test engine knows the engine has settled
//!
//! Every activity runs through the kit's recorder and every wait on time goes through the
//! virtual clock, so the kit sees, without any wall-clock wait, when each workflow that still
//! has a task is only waiting out a retry backoff, no timer is due and no attempt is running;
//! see [`TestEngine::settle`]. The test engine is built for tokio's current-thread runtime, the
//! `#[tokio::test]` default.

pub mod activity_log;
pub mod chaos;
pub mod conformance;
pub mod crash;
pub mod mock;
pub mod storage_faults;
pub mod test_engine;

pub use activity_log::ActivityCall;
pub use chaos::{Chaos, ChaosFault, Injection, ScheduleKey, TimeoutMode};
pub use crash::{CrashFailure, CrashPoint, CrashReport, CrashTest, Signals, survives_crashes};
pub use mock::Mock;
pub use storage_faults::{FaultControl, FaultyStorage, InjectedFault, WriteFault};
pub use test_engine::{TestEngine, TestEngineBuilder, TestError};
/// The engine's virtual clock, the one [`TestEngine`] runs on (re-exported for convenience).
pub use weft_runtime::VirtualClock;
