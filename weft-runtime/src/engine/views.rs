//! Typed queries against a workflow's persisted state: read-only, never waking the workflow or
//! writing anything. The user-facing trait is [`crate::query::Query`].

use crate::codec;
use crate::query::Query;
use crate::workflow::Workflow;

use super::Engine;
use super::error::EngineError;
use super::migration::{self, VersionKey};
use super::record::WorkflowRecord;

impl Engine {
    /// Answers query `Q` from workflow `id`'s persisted state: the state of its last commit,
    /// whether it is running, waiting or parked. Reads one record; never wakes the workflow and
    /// never writes.
    ///
    /// Fails with `EngineError::UnknownQuery` when the workflow is not the exact version
    /// (name, version, fingerprint) `Q` reads, and with `EngineError::Finished` once it has
    /// finished and holds no state.
    ///
    /// # Errors
    ///
    /// `UnknownQuery` and `Finished` as said above; `NotFound` when no workflow has the id; `Codec`
    /// or `Record` when the stored state does not decode; `Shutdown` or `Fenced` when the engine no
    /// longer serves; `Storage` when the store fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn query<Q: Query>(&self, id: &str) -> Result<Q::Output, EngineError> {
        self.inner.check_live()?;
        let record = self.inner.load_record(id).await?;
        check_target(id, Q::NAME, &record, &migration::key_of::<Q::Workflow>())?;
        let state = record
            .state
            .ok_or_else(|| EngineError::Finished { id: id.to_string() })?;
        let state: <Q::Workflow as Workflow>::State = codec::decode(&state)?;
        answer_guarded::<Q>(&state)
    }

    /// Answers the query named `query`, registered with `EngineBuilder::query` for the version
    /// of workflow `id`, as JSON: for tools and gateways that do not know the Rust types. Like
    /// [`Engine::query`], it reads and never writes.
    ///
    /// # Errors
    ///
    /// `UnknownQuery` when no query of that name is registered for the workflow's version;
    /// otherwise as [`Engine::query`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads, so dropping it changes nothing.
    pub async fn query_by_name(
        &self,
        id: &str,
        query: &str,
    ) -> Result<serde_json::Value, EngineError> {
        self.inner.check_live()?;
        let record = self.inner.load_record(id).await?;
        let Some(registered) =
            self.inner
                .registry
                .query(&record.workflow_type, record.version, query)
        else {
            return Err(EngineError::UnknownQuery {
                id: id.to_string(),
                query: query.to_string(),
                reason: format!(
                    "no query of that name is registered for `{}` version {}; register one with `EngineBuilder::query`",
                    record.workflow_type, record.version
                ),
            });
        };
        check_target(id, query, &record, &registered.workflow)?;
        let state = record
            .state
            .ok_or_else(|| EngineError::Finished { id: id.to_string() })?;
        (registered.answer)(&state)
    }
}

/// Decodes a stored state of `Q::Workflow` and answers `Q` about it as JSON: what
/// [`Engine::query_by_name`] runs for a query registered with `EngineBuilder::query`. The
/// state's bytes come from the store, so they are decoded under the codec's limits, and user
/// code (the answer, its `Serialize` impl) runs guarded.
pub(crate) fn answer_json<Q>(bytes: &[u8]) -> Result<serde_json::Value, EngineError>
where
    Q: Query,
    Q::Output: serde::Serialize,
{
    let state: <Q::Workflow as Workflow>::State = codec::decode(bytes)?;
    let answer = answer_guarded::<Q>(&state)?;
    crate::contain::catch(|| serde_json::to_value(answer))
        .map_err(|message| EngineError::Panicked {
            what: format!("the `Serialize` impl of query `{}`'s answer", Q::NAME),
            message,
        })?
        .map_err(|e| {
            EngineError::Codec(crate::codec::CodecError::Encode {
                type_name: std::any::type_name::<Q::Output>(),
                reason: e.to_string(),
            })
        })
}

/// Runs `Q::answer`, user code, turning a panic into `EngineError::Panicked` for this caller
/// alone.
pub(crate) fn answer_guarded<Q: Query>(
    state: &<Q::Workflow as Workflow>::State,
) -> Result<Q::Output, EngineError> {
    crate::contain::catch(|| Q::answer(state)).map_err(|message| EngineError::Panicked {
        what: format!("query `{}`", Q::NAME),
        message,
    })
}

/// Checks that `record` was written by exactly the version the query reads.
fn check_target(
    id: &str,
    query: &str,
    record: &WorkflowRecord,
    reads: &VersionKey,
) -> Result<(), EngineError> {
    let stored = migration::key_of_record(record);
    if stored == *reads {
        return Ok(());
    }
    Err(EngineError::UnknownQuery {
        id: id.to_string(),
        query: query.to_string(),
        reason: format!(
            "the query reads the state of {}, but the workflow was written by {}",
            migration::describe_key(reads),
            migration::describe_key(&stored)
        ),
    })
}
