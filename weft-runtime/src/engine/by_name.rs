//! Calls by name, with JSON: what a server, a CLI or a dashboard that does not know the Rust
//! types uses to start, signal, update, query and read workflows.
//!
//! Each call finds the registered code by name, turns its JSON into the payload the typed call
//! would have encoded (through the workflow's [`Interface`](crate::Interface), which
//! `#[workflow]` fills with the signals and updates the workflow waits for), and then takes the
//! same path as its typed twin: `start_by_name` that of [`Engine::start_with`], `signal_by_name`
//! that of [`Engine::signal_with`], `update_by_name` that of [`Engine::update`], `result_json`
//! that of [`Engine::result`]. What the typed call guarantees, the call by name does too.
//!
//! ```
//! use weft_runtime::storage::MemoryStorage;
//! use weft_runtime::{Engine, Signal, SignalOptions, StartOptions, WorkflowContext, WorkflowError, workflow};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Signal)]
//! struct Approval {
//!     by: String,
//! }
//!
//! #[workflow]
//! async fn expense(ctx: &mut WorkflowContext, amount: u32) -> Result<String, WorkflowError> {
//!     let approval = ctx.wait_for_signal::<Approval>().await;
//!     Ok(format!("{amount} approved by {}", approval.by))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder(MemoryStorage::new()).register::<expense>().build().await?;
//! let types = engine.workflow_types();
//! assert_eq!(types[0].signals[0].name, "Approval");
//!
//! let id = engine
//!     .start_by_name("expense", serde_json::json!(120), StartOptions::default())
//!     .await?;
//! let approval = serde_json::json!({ "by": "ada" });
//! engine
//!     .signal_by_name(&id, "Approval", approval, SignalOptions::id("webhook-1"))
//!     .await?;
//! assert_eq!(engine.result_json(&id).await?, Ok(serde_json::json!("120 approved by ada")));
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::interface::{JsonError, SchemaFn};

use super::error::EngineError;
use super::registry::{ErasedWorkflow, Lookup};
use super::{Engine, SignalOptions, StartOptions, UpdateOptions};

/// A registered workflow type, as [`Engine::workflow_types`] lists it: what it accepts by name
/// and, with the `schemars` feature, the JSON Schemas of its types (each `None` when the type
/// does not derive `schemars::JsonSchema`, and always without the feature).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowType {
    /// The workflow's `NAME`.
    pub name: String,
    /// The workflow's `VERSION`.
    pub version: u32,
    /// The workflow's `FINGERPRINT`.
    pub fingerprint: u64,
    /// Whether this is the newest registered version of its name: the one `start_by_name`
    /// starts.
    pub latest: bool,
    /// The signals its code waits for.
    pub signals: Vec<SignalType>,
    /// The updates its code waits for.
    pub updates: Vec<UpdateType>,
    /// The names of the queries registered for it with `EngineBuilder::query`.
    pub queries: Vec<String>,
    /// The input's JSON Schema.
    pub input_schema: Option<serde_json::Value>,
    /// The output's JSON Schema.
    pub output_schema: Option<serde_json::Value>,
    /// The error's JSON Schema.
    pub error_schema: Option<serde_json::Value>,
}

/// A signal a workflow type accepts by name.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalType {
    /// The signal's `NAME`, as `signal_by_name` takes it.
    pub name: String,
    /// The signal type's JSON Schema.
    pub schema: Option<serde_json::Value>,
}

/// An update a workflow type accepts by name.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateType {
    /// The update's `NAME`, as `update_by_name` takes it.
    pub name: String,
    /// The request type's JSON Schema.
    pub request_schema: Option<serde_json::Value>,
    /// The response type's JSON Schema.
    pub response_schema: Option<serde_json::Value>,
}

fn schema(f: Option<SchemaFn>) -> Option<serde_json::Value> {
    f.map(|f| f())
}

/// Turns a JSON decoding failure into the caller's error, saying what the JSON was for.
fn invalid(what: String, error: JsonError) -> EngineError {
    match error {
        JsonError::Invalid {
            type_name,
            path,
            message,
        } => EngineError::InvalidJson {
            what,
            type_name: type_name.to_string(),
            path,
            message,
        },
        JsonError::Panicked { type_name, message } => EngineError::Panicked {
            what: format!("the `Deserialize` impl of `{type_name}`, decoding {what}"),
            message,
        },
        JsonError::Codec(e) => EngineError::Codec(e),
    }
}

impl Engine {
    /// Every registered workflow version, by name then version, with what it accepts by name.
    pub fn workflow_types(&self) -> Vec<WorkflowType> {
        let registry = &self.inner.registry;
        registry
            .workflows()
            .into_iter()
            .map(|workflow| {
                let interface = workflow.interface();
                let io = interface.io_schemas();
                WorkflowType {
                    name: workflow.name().to_string(),
                    version: workflow.version(),
                    fingerprint: workflow.fingerprint(),
                    latest: registry
                        .latest(workflow.name())
                        .is_some_and(|latest| latest.version() == workflow.version()),
                    signals: interface
                        .signals()
                        .iter()
                        .map(|s| SignalType {
                            name: s.name.to_string(),
                            schema: schema(s.schema),
                        })
                        .collect(),
                    updates: interface
                        .updates()
                        .iter()
                        .map(|u| UpdateType {
                            name: u.name.to_string(),
                            request_schema: schema(u.request_schema),
                            response_schema: schema(u.response_schema),
                        })
                        .collect(),
                    queries: registry.query_names(workflow.name(), workflow.version()),
                    input_schema: schema(io.input),
                    output_schema: schema(io.output),
                    error_schema: schema(io.error),
                }
            })
            .collect()
    }

    /// Starts the newest registered version of workflow type `workflow_type` with `input` as
    /// JSON, and returns its id. Otherwise exactly like [`Engine::start_with`] (ids,
    /// idempotency keys and the execution timeout of `options` included).
    ///
    /// # Errors
    ///
    /// `UnknownWorkflowType` when no workflow of that name is registered; `InvalidJson` (with
    /// the path to the bad field) when `input` does not fit the workflow's input type;
    /// `PayloadTooLarge` when the encoded input is over the payload limit; and whatever
    /// [`Engine::start_with`] fails with.
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::start_with`], whose path this takes once the input is decoded.
    pub async fn start_by_name(
        &self,
        workflow_type: &str,
        input: serde_json::Value,
        options: StartOptions,
    ) -> Result<String, EngineError> {
        self.inner.check_live()?;
        let workflow = self.latest_named(workflow_type)?;
        let payload = workflow
            .input_from_json(input)
            .map_err(|e| invalid(format!("the input of workflow `{workflow_type}`"), e))?;
        self.start_encoded(&workflow, payload, options).await
    }

    /// Sends the signal named `signal`, given as JSON, to workflow `id`: like
    /// [`Engine::signal_with`] with the signal type the workflow's code waits for under that
    /// name.
    ///
    /// # Errors
    ///
    /// `NotFound` when no workflow has the id; `UnknownSignal` (listing the names it accepts)
    /// when the workflow's code waits for no signal of that name; `InvalidJson` (with the path
    /// to the bad field) when `payload` does not fit the signal type; `PayloadTooLarge`; and
    /// whatever [`Engine::signal_with`] fails with (`Finished`, ...).
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::signal_with`], whose path this takes once the JSON is decoded.
    pub async fn signal_by_name(
        &self,
        id: &str,
        signal: &str,
        payload: serde_json::Value,
        options: SignalOptions,
    ) -> Result<(), EngineError> {
        self.inner.check_live()?;
        let workflow = self.code_of(id).await?;
        let interface = workflow.interface();
        let Some(accepted) = interface.signal_named(signal) else {
            return Err(EngineError::UnknownSignal {
                id: id.to_string(),
                workflow: workflow.name().to_string(),
                signal: signal.to_string(),
                accepted: interface
                    .signals()
                    .iter()
                    .map(|s| s.name.to_string())
                    .collect(),
            });
        };
        let payload =
            (accepted.decode)(payload).map_err(|e| invalid(format!("signal `{signal}`"), e))?;
        self.send_signal(id, accepted.name, payload, options).await
    }

    /// Sends the update named `update`, given as JSON, to workflow `id` and waits for its
    /// answer, as JSON: like [`Engine::update`] with the update type the workflow's code waits
    /// for under that name (the same update id gets the same answer, typed or by name).
    ///
    /// # Errors
    ///
    /// `NotFound`; `UnknownUpdate` (listing the names it accepts); `InvalidJson` (with the path
    /// to the bad field); `PayloadTooLarge`; and whatever [`Engine::update`] fails with
    /// (`UpdateTimedOut`, `UpdateNotAnswered`, `Parked`, `Finished`, ...).
    ///
    /// # Cancel safety
    ///
    /// As for [`Engine::update`], whose path this takes once the JSON is decoded.
    pub async fn update_by_name(
        &self,
        id: &str,
        update: &str,
        request: serde_json::Value,
        options: UpdateOptions,
    ) -> Result<serde_json::Value, EngineError> {
        self.inner.check_live()?;
        let workflow = self.code_of(id).await?;
        let interface = workflow.interface();
        let Some(accepted) = interface.update_named(update) else {
            return Err(EngineError::UnknownUpdate {
                id: id.to_string(),
                workflow: workflow.name().to_string(),
                update: update.to_string(),
                accepted: interface
                    .updates()
                    .iter()
                    .map(|u| u.name.to_string())
                    .collect(),
            });
        };
        let payload = (accepted.decode)(request, &options.update_id)
            .map_err(|e| invalid(format!("update `{update}`"), e))?;
        let answer = self
            .send_update(id, accepted.queue, payload, options)
            .await?;
        Ok((accepted.response_json)(&answer)?)
    }

    /// Waits until workflow `id` finishes and returns what it returned, as JSON: `Ok(output)`
    /// or `Err(error)` (its `W::Error` value), like [`Engine::result`] for any type.
    ///
    /// # Errors
    ///
    /// As [`Engine::result`]: `NotFound`, `Parked`, `Cancelled`, `TimedOut`, ...; and
    /// `UnknownWorkflowType` when no code of the workflow's name is registered to render it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads and waits; dropping it changes nothing.
    pub async fn result_json(
        &self,
        id: &str,
    ) -> Result<Result<serde_json::Value, serde_json::Value>, EngineError> {
        let (record, outcome) = self.finished(id, None).await?;
        let workflow = self.code_for(&record.workflow_type, record.version, record.fingerprint)?;
        Ok(match outcome {
            Ok(output) => Ok(workflow.output_json(&output)?),
            Err(error) => Err(workflow.error_json(&error)?),
        })
    }

    /// The newest registered version named `name`.
    fn latest_named(&self, name: &str) -> Result<Arc<dyn ErasedWorkflow>, EngineError> {
        let registry = &self.inner.registry;
        registry
            .latest(name)
            .map(Arc::clone)
            .ok_or_else(|| EngineError::UnknownWorkflowType {
                workflow: name.to_string(),
                registered: registry.names(),
            })
    }

    /// The registered code that decodes messages for workflow `id`.
    async fn code_of(&self, id: &str) -> Result<Arc<dyn ErasedWorkflow>, EngineError> {
        let record = self.inner.load_record(id).await?;
        self.code_for(&record.workflow_type, record.version, record.fingerprint)
    }

    /// The code that wrote a stored workflow or, when that version is no longer registered
    /// (it is parked, or migrates when the engine is next built), the newest of its name.
    fn code_for(
        &self,
        name: &str,
        version: u32,
        fingerprint: u64,
    ) -> Result<Arc<dyn ErasedWorkflow>, EngineError> {
        match self.inner.registry.lookup(name, version, fingerprint) {
            Lookup::Found(workflow) => Ok(Arc::clone(workflow)),
            _ => self.latest_named(name),
        }
    }
}
