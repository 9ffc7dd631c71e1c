//! Typed signals: messages sent to a running workflow with `Engine::signal`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::interface::SchemaFn;

/// A message type a workflow waits for with `ctx.wait_for_signal::<S>()`.
///
/// Derive it with `#[derive(Signal)]`; the name defaults to the type's name and can be pinned
/// with `#[signal(name = "...")]`, so renaming the type does not strand parked workflows.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a signal",
    label = "not a signal type",
    note = "add `#[derive(Signal, Serialize, Deserialize)]` to the type"
)]
pub trait Signal: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name under which signals of this type are stored and matched.
    const NAME: &'static str;

    /// This type's JSON Schema, for callers by name. `#[derive(Signal)]` provides it with the
    /// `schemars` feature when the type derives `schemars::JsonSchema`; `None` otherwise.
    fn json_schema() -> Option<SchemaFn> {
        None
    }
}
