//! Checked migrations: move a stored workflow from an old version's state enum to a newer one's.
//!
//! A migration is ordinary Rust over both generated enums, so the compiler checks that every
//! old variant is handled and that every new variant is built with the fields it needs:
//!
//! ```
//! use weft_runtime::migration::MigrationError;
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{Engine, Signal, Workflow, WorkflowContext, WorkflowError, workflow};
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Signal)]
//! struct Approval {
//!     by: String,
//! }
//!
//! /// Version 1: waits for one approval.
//! #[workflow(name = "review", version = 1)]
//! async fn review_v1(ctx: &mut WorkflowContext, doc: String) -> Result<String, WorkflowError> {
//!     let approval = ctx.wait_for_signal::<Approval>().await;
//!     Ok(format!("{doc} approved by {}", approval.by))
//! }
//!
//! /// Version 2 also remembers how many times the document was revised.
//! #[workflow(name = "review", version = 2)]
//! async fn review_v2(ctx: &mut WorkflowContext, doc: String) -> Result<String, WorkflowError> {
//!     let revisions: u32 = 0;
//!     let approval = ctx.wait_for_signal::<Approval>().await;
//!     Ok(format!("{doc} (r{revisions}) approved by {}", approval.by))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(MemoryStorage::new())
//!     .register::<review_v2>()
//!     .migrate::<review_v1, review_v2>(|old| match old {
//!         // No catch-all arm: a variant the migration forgets is a compile error.
//!         ReviewV1State::Start { doc } => Ok(ReviewV2State::Start { doc }),
//!         // Each old variant maps to the new variant that waits on the same operation.
//!         ReviewV1State::AwaitSignalApproval { doc } => {
//!             if doc.is_empty() {
//!                 // Parks this one workflow (code `migration.failed`), keeping its record.
//!                 return Err(MigrationError::new("an empty document cannot be migrated"));
//!             }
//!             Ok(ReviewV2State::AwaitSignalApproval { doc, revisions: 0 })
//!         }
//!     })
//!     .build()
//!     .await?;
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
//!
//! The engine applies migrations when it is built, before it resumes anything: every stored
//! workflow whose name, version and fingerprint are a migration's source is migrated (through a
//! chain `v1 -> v2 -> v3` when there is one), and its record, now naming the new version and
//! fingerprint with the new state, is committed before the workflow takes another step. The
//! pending command (the activity call, timer or signal wait the old state was suspended on) is
//! kept as it is, so **a migration must map each old variant to a new variant that waits on the
//! same kind of operation** (the same activity, so its stored result decodes as the new
//! variant's; the same signal type; a timer). A migration that returns an error leaves the
//! record untouched: the workflow is reported parked with code `migration.failed`, and it
//! resumes once a fixed migration is deployed. A migration must be pure: it may run more than
//! once (describe and list re-run a failing one to report why).

/// A migration could not map a stored state to the new version.
///
/// The stored record is kept unchanged and reported parked (`migration.failed`) until a fixed
/// migration is deployed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MigrationError {
    message: String,
}

impl MigrationError {
    /// A migration error that says why this state cannot be migrated.
    pub fn new(message: impl Into<String>) -> Self {
        MigrationError {
            message: message.into(),
        }
    }

    /// Why the state cannot be migrated.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        "migration.failed"
    }
}
