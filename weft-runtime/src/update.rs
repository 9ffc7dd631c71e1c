//! Updates: typed requests sent to a running workflow with `Engine::update`, answered by the
//! workflow with `ctx.respond(reply, response)`.
//!
//! An update travels like a signal (it is queued durably under its own queue name and waited for
//! with `ctx.wait_for_update::<U>()`), but it carries a reply token. The workflow's answer is
//! buffered in the step's context and committed in the same transaction as the workflow's next
//! state, so an answer is never visible for a state that was not committed.
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::interface::SchemaFn;

/// A request type a workflow waits for with `ctx.wait_for_update::<U>()` and answers with a
/// [`Update::Response`].
///
/// Derive it with `#[derive(Update)]` and `#[update(response = T)]`; the name defaults to the
/// type's name and can be pinned with `#[update(response = T, name = "...")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an update",
    label = "not an update type",
    note = "add `#[derive(Update, Serialize, Deserialize)]` and `#[update(response = YourResponse)]` to the type"
)]
pub trait Update: Serialize + DeserializeOwned + Send + 'static {
    /// What the workflow answers with.
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// The stable name of the update type.
    const NAME: &'static str;
    /// The name of the queue updates of this type are stored in: `weft.update/{NAME}`, kept apart
    /// from signal names so a signal can never be taken for an update.
    const QUEUE: &'static str;

    /// The request type's JSON Schema, for callers by name. `#[derive(Update)]` provides it with
    /// the `schemars` feature when the type derives `schemars::JsonSchema`; `None` otherwise.
    fn request_schema() -> Option<SchemaFn> {
        None
    }

    /// The response type's JSON Schema, as [`Update::request_schema`] for `Response`.
    fn response_schema() -> Option<SchemaFn> {
        None
    }
}

/// The token a workflow answers an update with: `ctx.respond(reply, response)`.
///
/// It is serializable, so the workflow may keep it across durable awaits and answer later. Each
/// update is answered once: a second answer with the same token is ignored by the engine
/// (the first committed answer is the one callers get).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct UpdateReply<U> {
    update_id: String,
    #[serde(skip)]
    update: PhantomData<fn() -> U>,
}

impl<U> UpdateReply<U> {
    /// A token for the update with id `update_id` (the engine builds these).
    pub fn new(update_id: impl Into<String>) -> Self {
        UpdateReply {
            update_id: update_id.into(),
            update: PhantomData,
        }
    }

    /// The id of the update this token answers.
    pub fn update_id(&self) -> &str {
        &self.update_id
    }
}

impl<U> Clone for UpdateReply<U> {
    fn clone(&self) -> Self {
        UpdateReply::new(self.update_id.clone())
    }
}

impl<U> std::fmt::Debug for UpdateReply<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UpdateReply").field(&self.update_id).finish()
    }
}

impl<U> PartialEq for UpdateReply<U> {
    fn eq(&self, other: &Self) -> bool {
        self.update_id == other.update_id
    }
}

impl<U> Eq for UpdateReply<U> {}
