//! The registered workflows, with their types erased: name + version + fingerprint -> functions
//! that decode a stored state, step it, and encode the result.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::activity::DynActivity;
use crate::codec::{self, CodecError, Payload};
use crate::contain;
use crate::context::WorkflowContext;
use crate::interface::{self, Interface, JsonError};
use crate::workflow::{ActivitySet, Command, Resume, StepError, Transition, Workflow};

use super::error::EngineError;
use super::migration::{self, ErasedMigration, VersionKey};

/// The outcome of one step, with every value encoded.
pub(crate) enum Stepped {
    /// Persist `state`, then execute `command`.
    Suspend { state: Payload, command: Command },
    /// Returned `Ok`.
    Output(Payload),
    /// Returned `Err`.
    Error { payload: Payload, message: String },
    /// Ended by cancellation.
    Cancelled,
}

/// Why a step could not run; the engine parks the workflow with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepFault {
    pub code: String,
    pub message: String,
}

impl StepFault {
    fn state_decode(e: &CodecError) -> Self {
        StepFault {
            // A state whose `Deserialize` impl panicked is not corrupt: the code is at fault.
            code: match e {
                CodecError::Panicked { .. } => e.code(),
                _ => "state.corrupt",
            }
            .into(),
            message: format!("the stored state does not decode: {e}"),
        }
    }
    pub(crate) fn step(e: &StepError) -> Self {
        StepFault {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
    /// User code panicked while stepping at `step`, resumed by `resumed_by`.
    pub(crate) fn panicked(step: u64, resumed_by: &str, message: String) -> Self {
        StepFault {
            code: "workflow.panicked".into(),
            message: format!(
                "the workflow panicked in step {step} (resumed by {resumed_by}): {message}; nothing of the step was committed and the value that resumed it is kept; fix the code and retry it with `Engine::retry` or by building the engine again"
            ),
        }
    }
    /// A stored counter of the workflow is at its largest value.
    pub(crate) fn overflow(counter: &str) -> Self {
        StepFault {
            code: "engine.counter_overflow".into(),
            message: format!(
                "the workflow's {counter} is at its largest value and cannot count another step; it is parked with its state kept"
            ),
        }
    }
    fn encode(e: &CodecError) -> Self {
        StepFault {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// A start by JSON under way, answering the new workflow's id.
pub(crate) type StartFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, EngineError>> + Send + 'a>>;

/// A registered workflow type, operating on encoded values.
pub(crate) trait ErasedWorkflow: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    fn fingerprint(&self) -> u64;
    fn activities(&self) -> ActivitySet;
    /// Decodes `state` and steps it.
    fn step(
        &self,
        ctx: &mut WorkflowContext,
        state: &[u8],
        resume: Resume,
    ) -> Result<Stepped, StepFault>;
    /// The stored state's variant name.
    fn state_name(&self, state: &[u8]) -> Result<&'static str, CodecError>;
    /// The stored state rendered as JSON.
    fn state_json(&self, state: &[u8]) -> Result<serde_json::Value, String>;
    /// The encoded initial state for an encoded input (starting a child workflow).
    fn start(&self, input: &[u8]) -> Result<Vec<u8>, StepFault>;
    /// Starts this workflow with `input` as JSON (a durable schedule's fire): `Err` with the
    /// reason when the JSON does not fit the input type.
    fn start_json<'a>(
        &self,
        engine: &'a super::Engine,
        input: serde_json::Value,
        options: super::StartOptions,
    ) -> Result<StartFuture<'a>, String>;
    /// What the workflow accepts and returns by name (see [`Workflow::interface`]).
    fn interface(&self) -> &Interface;
    /// JSON input in, the encoded `W::Input` out.
    fn input_from_json(&self, json: serde_json::Value) -> Result<Payload, JsonError>;
    /// An encoded `W::Output` rendered as JSON.
    fn output_json(&self, output: &[u8]) -> Result<serde_json::Value, CodecError>;
    /// An encoded `W::Error` rendered as JSON.
    fn error_json(&self, error: &[u8]) -> Result<serde_json::Value, CodecError>;
}

/// Steps a typed state and encodes what comes out. A panic in the step (the user's code, or a
/// `Serialize` impl) is caught and returned as a `workflow.panicked` fault, which parks the
/// workflow with its state and the value that resumed it kept.
pub(crate) fn step_typed<W: Workflow>(
    ctx: &mut WorkflowContext,
    state: W::State,
    resume: Resume,
) -> Result<Stepped, StepFault> {
    let step = ctx.step();
    let resumed_by = resume.kind();
    contain::catch(|| step_unguarded::<W>(ctx, state, resume))
        .unwrap_or_else(|message| Err(StepFault::panicked(step, resumed_by, message)))
}

fn step_unguarded<W: Workflow>(
    ctx: &mut WorkflowContext,
    state: W::State,
    resume: Resume,
) -> Result<Stepped, StepFault> {
    match W::step(ctx, state, resume) {
        Err(e) => Err(StepFault::step(&e)),
        Ok(Transition::Suspend { state, command }) => Ok(Stepped::Suspend {
            state: codec::encode(&state).map_err(|e| StepFault::encode(&e))?,
            command,
        }),
        Ok(Transition::Complete(Ok(output))) => Ok(Stepped::Output(
            codec::encode(&output).map_err(|e| StepFault::encode(&e))?,
        )),
        Ok(Transition::Complete(Err(error))) => Ok(Stepped::Error {
            message: error.to_string(),
            payload: codec::encode(&error).map_err(|e| StepFault::encode(&e))?,
        }),
        Ok(Transition::Cancelled) => Ok(Stepped::Cancelled),
    }
}

struct Typed<W> {
    /// Collected once, at registration.
    interface: Interface,
    workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> ErasedWorkflow for Typed<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }
    fn version(&self) -> u32 {
        W::VERSION
    }
    fn fingerprint(&self) -> u64 {
        W::FINGERPRINT
    }
    fn activities(&self) -> ActivitySet {
        let mut set = ActivitySet::new();
        W::activities(&mut set);
        set
    }
    fn step(
        &self,
        ctx: &mut WorkflowContext,
        state: &[u8],
        resume: Resume,
    ) -> Result<Stepped, StepFault> {
        let state: W::State = codec::decode(state).map_err(|e| StepFault::state_decode(&e))?;
        step_typed::<W>(ctx, state, resume)
    }
    fn state_name(&self, state: &[u8]) -> Result<&'static str, CodecError> {
        let state: W::State = codec::decode(state)?;
        Ok(W::state_name(&state))
    }
    fn state_json(&self, state: &[u8]) -> Result<serde_json::Value, String> {
        let state: W::State = codec::decode(state).map_err(|e| e.to_string())?;
        contain::catch(|| serde_json::to_value(&state))
            .map_err(|message| format!("its `Serialize` impl panicked: {message}"))?
            .map_err(|e| e.to_string())
    }
    fn start(&self, input: &[u8]) -> Result<Vec<u8>, StepFault> {
        let input: W::Input = codec::decode(input).map_err(|e| StepFault::encode(&e))?;
        let state = contain::catch(|| W::start(input))
            .map_err(|message| StepFault::panicked(0, "start", message))?;
        codec::encode(&state).map_err(|e| StepFault::encode(&e))
    }
    fn start_json<'a>(
        &self,
        engine: &'a super::Engine,
        input: serde_json::Value,
        options: super::StartOptions,
    ) -> Result<StartFuture<'a>, String> {
        let input: W::Input = serde_json::from_value(input).map_err(|e| e.to_string())?;
        Ok(Box::pin(async move {
            let handle = engine.start_with::<W>(input, options).await?;
            Ok(handle.id().to_string())
        }))
    }
    fn interface(&self) -> &Interface {
        &self.interface
    }
    fn input_from_json(&self, json: serde_json::Value) -> Result<Payload, JsonError> {
        interface::payload_from_json::<W::Input>(json)
    }
    fn output_json(&self, output: &[u8]) -> Result<serde_json::Value, CodecError> {
        interface::payload_to_json::<W::Output>(output)
    }
    fn error_json(&self, error: &[u8]) -> Result<serde_json::Value, CodecError> {
        interface::payload_to_json::<W::Error>(error)
    }
}

/// Erases a workflow type.
pub(crate) fn erase<W: Workflow>() -> Arc<dyn ErasedWorkflow> {
    let mut interface = Interface::new();
    W::interface(&mut interface);
    Arc::new(Typed::<W> {
        interface,
        workflow: PhantomData,
    })
}

/// Decodes a stored state and answers a query about it in JSON.
pub(crate) type Answer = dyn Fn(&[u8]) -> Result<serde_json::Value, EngineError> + Send + Sync;

/// A query registered for by-name dispatch, with its types erased: encoded state in, JSON out.
pub(crate) struct ErasedQuery {
    /// The workflow version whose state it reads.
    pub workflow: VersionKey,
    /// The query's `NAME`.
    pub name: &'static str,
    /// Decodes the state and answers.
    pub answer: Box<Answer>,
}

/// What the engine knows how to run.
#[derive(Default)]
pub(crate) struct Registry {
    workflows: HashMap<(String, u32), Arc<dyn ErasedWorkflow>>,
    activities: HashMap<String, Arc<dyn DynActivity>>,
    /// Migrations by the version they migrate from.
    migrations: HashMap<VersionKey, Arc<ErasedMigration>>,
    /// By-name queries by (workflow name, workflow version, query name).
    queries: HashMap<(String, u32, String), ErasedQuery>,
}

/// How a stored record relates to the registered code.
#[derive(Clone, Copy)]
pub(crate) enum Lookup<'a> {
    Found(&'a Arc<dyn ErasedWorkflow>),
    UnknownType,
    FingerprintMismatch { registered: u64 },
}

impl Registry {
    /// Builds the registry: every workflow, and every activity they declare, with overrides
    /// taking precedence. Fails on a declared activity without an implementation.
    pub(crate) fn build(
        workflows: Vec<Arc<dyn ErasedWorkflow>>,
        overrides: HashMap<String, Arc<dyn DynActivity>>,
    ) -> Result<Registry, EngineError> {
        let mut registry = Registry {
            workflows: HashMap::new(),
            activities: overrides,
            migrations: HashMap::new(),
            queries: HashMap::new(),
        };
        let mut required = Vec::new();
        for workflow in workflows {
            let key = (workflow.name().to_string(), workflow.version());
            if let Some(existing) = registry.workflows.get(&key) {
                if existing.fingerprint() != workflow.fingerprint() {
                    return Err(EngineError::ConflictingRegistration {
                        workflow: key.0,
                        version: key.1,
                    });
                }
                continue;
            }
            for (name, implementation) in workflow.activities().iter() {
                match implementation {
                    Some(implementation) => {
                        registry
                            .activities
                            .entry(name.to_string())
                            .or_insert_with(|| implementation.clone());
                    }
                    None => required.push((workflow.name(), name)),
                }
            }
            registry.workflows.insert(key, workflow);
        }
        for (workflow, activity) in required {
            if !registry.activities.contains_key(activity) {
                return Err(EngineError::MissingActivity {
                    workflow: workflow.to_string(),
                    activity: activity.to_string(),
                });
            }
        }
        Ok(registry)
    }

    /// The registered code for a stored workflow.
    pub(crate) fn lookup(&self, name: &str, version: u32, fingerprint: u64) -> Lookup<'_> {
        match self.workflows.get(&(name.to_string(), version)) {
            None => Lookup::UnknownType,
            Some(w) if w.fingerprint() != fingerprint => Lookup::FingerprintMismatch {
                registered: w.fingerprint(),
            },
            Some(w) => Lookup::Found(w),
        }
    }

    /// Adds migrations, checking each: it goes to a newer version of the same name, nothing else
    /// migrates from its source, its source is not itself registered (records of a registered
    /// version run on it), and its chain ends at a registered version.
    pub(crate) fn add_migrations(
        &mut self,
        migrations: Vec<Arc<ErasedMigration>>,
    ) -> Result<(), EngineError> {
        let invalid = |m: &ErasedMigration, reason: &str| EngineError::InvalidMigration {
            from: migration::describe_key(&m.from),
            to: migration::describe_key(&m.to),
            reason: reason.to_string(),
        };
        for m in migrations {
            if m.from.0 != m.to.0 {
                return Err(invalid(&m, "a migration stays within one workflow name"));
            }
            if m.to.1 <= m.from.1 {
                return Err(invalid(
                    &m,
                    "a migration goes to a higher version; bump `version` of the new code",
                ));
            }
            if matches!(self.lookup(&m.from.0, m.from.1, m.from.2), Lookup::Found(_)) {
                return Err(invalid(
                    &m,
                    "its source version is also registered, so its instances would run on it; register either the old version or a migration from it",
                ));
            }
            if self.migrations.contains_key(&m.from) {
                return Err(invalid(&m, "another migration starts at the same version"));
            }
            self.migrations.insert(m.from.clone(), m);
        }
        for m in self.migrations.values() {
            let mut key = &m.to;
            let mut hops = 0;
            while let Some(next) = self.migrations.get(key) {
                key = &next.to;
                hops += 1;
                if hops > self.migrations.len() {
                    break;
                }
            }
            if !matches!(self.lookup(&key.0, key.1, key.2), Lookup::Found(_)) {
                return Err(invalid(
                    m,
                    &format!(
                        "its target {} is not registered; call `EngineBuilder::register` with it",
                        migration::describe_key(key)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The migration from a stored version, if one is registered.
    pub(crate) fn migration(&self, from: &VersionKey) -> Option<&Arc<ErasedMigration>> {
        self.migrations.get(from)
    }

    /// Whether any migration is registered.
    pub(crate) fn has_migrations(&self) -> bool {
        !self.migrations.is_empty()
    }

    /// Adds by-name queries. Each reads a registered workflow version; a name is used once per
    /// version.
    pub(crate) fn add_queries(&mut self, queries: Vec<ErasedQuery>) -> Result<(), EngineError> {
        for query in queries {
            let (name, version, fingerprint) = &query.workflow;
            if !matches!(self.lookup(name, *version, *fingerprint), Lookup::Found(_)) {
                return Err(EngineError::NotRegistered {
                    workflow: name.clone(),
                    version: *version,
                });
            }
            let key = (name.clone(), *version, query.name.to_string());
            if self.queries.contains_key(&key) {
                return Err(EngineError::ConflictingQuery {
                    workflow: name.clone(),
                    version: *version,
                    query: query.name.to_string(),
                });
            }
            self.queries.insert(key, query);
        }
        Ok(())
    }

    /// The by-name query `query` of workflow `name` version `version`.
    pub(crate) fn query(&self, name: &str, version: u32, query: &str) -> Option<&ErasedQuery> {
        self.queries
            .get(&(name.to_string(), version, query.to_string()))
    }

    /// Every registered version of workflow `name` with its fingerprint, oldest first.
    pub(crate) fn versions(&self, name: &str) -> Vec<(u32, u64)> {
        let mut versions: Vec<_> = self
            .workflows
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, version), w)| (*version, w.fingerprint()))
            .collect();
        versions.sort_unstable();
        versions
    }

    /// The newest registered version of workflow `name`.
    pub(crate) fn latest(&self, name: &str) -> Option<&Arc<dyn ErasedWorkflow>> {
        self.workflows
            .iter()
            .filter(|((n, _), _)| n == name)
            .max_by_key(|((_, version), _)| *version)
            .map(|(_, workflow)| workflow)
    }

    /// Every registered workflow version, by name then version.
    pub(crate) fn workflows(&self) -> Vec<&Arc<dyn ErasedWorkflow>> {
        let mut all: Vec<_> = self.workflows.values().collect();
        all.sort_by_key(|w| (w.name(), w.version()));
        all
    }

    /// Every registered workflow name, sorted, once.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.workflows.keys().map(|(n, _)| n.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The names of the by-name queries of workflow `name` version `version`, sorted.
    pub(crate) fn query_names(&self, name: &str, version: u32) -> Vec<String> {
        let mut names: Vec<String> = self
            .queries
            .keys()
            .filter(|(n, v, _)| n == name && *v == version)
            .map(|(_, _, query)| query.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// The implementation of an activity.
    pub(crate) fn activity(&self, name: &str) -> Option<&Arc<dyn DynActivity>> {
        self.activities.get(name)
    }
}
