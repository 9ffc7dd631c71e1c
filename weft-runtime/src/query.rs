//! Queries: typed, read-only views of a workflow's persisted state.
//!
//! A query reads the state enum the engine stored at the workflow's last commit. It works while
//! the workflow waits on a timer, a signal or an activity, and while it is parked; it never wakes
//! the workflow and never writes to storage.
//!
//! ```
//! use weft_runtime::query::Query;
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{Engine, Signal, Workflow, WorkflowContext, WorkflowError, workflow};
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Signal)]
//! struct Item(String);
//!
//! #[workflow]
//! async fn basket(ctx: &mut WorkflowContext, limit: usize) -> Result<Vec<String>, WorkflowError> {
//!     let mut items: Vec<String> = Vec::new();
//!     while items.len() < limit {
//!         let item = ctx.wait_for_signal::<Item>().await;
//!         items.push(item.0);
//!     }
//!     Ok(items)
//! }
//!
//! /// How many items the basket holds so far.
//! struct ItemCount;
//!
//! impl Query for ItemCount {
//!     type Workflow = basket;
//!     type Output = usize;
//!     const NAME: &'static str = "item_count";
//!     fn answer(state: &BasketState) -> usize {
//!         match state {
//!             BasketState::AwaitSignalItem { items, .. } => items.len(),
//!             _ => 0,
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(MemoryStorage::new()).register::<basket>().build().await?;
//! let handle = engine.start::<basket>(3).await?;
//! handle.signal(Item("tea".into())).await?;
//! # while engine.active_workflows() > 0 { tokio::task::yield_now().await; }
//! assert_eq!(engine.query::<ItemCount>(handle.id()).await?, 1);
//! # Ok(())
//! # }
//! ```

use crate::workflow::Workflow;

/// A read-only view of one workflow type's persisted state.
///
/// `answer` gets the state enum exactly as stored; it must not assume the workflow is at a
/// particular await. A query is tied to one version of its workflow (name, version and
/// fingerprint): asking it of an instance of another type or version is an
/// `EngineError::UnknownQuery`, never a misread state.
pub trait Query: 'static {
    /// The workflow whose state this query reads.
    type Workflow: Workflow;
    /// What the query returns.
    type Output;
    /// The query's stable name, for `Engine::query_by_name` once registered with
    /// `EngineBuilder::query`.
    const NAME: &'static str;

    /// Computes the answer from the stored state.
    fn answer(state: &<Self::Workflow as Workflow>::State) -> Self::Output;
}
