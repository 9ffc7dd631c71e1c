//! Applying checked migrations: the type-erased migration functions, the chain from a stored
//! record's version to a registered one, and the pass at build that commits migrated records
//! before recovery resumes anything. The user-facing side is [`crate::migration`].

use std::sync::Arc;

use crate::codec;
use crate::migration::MigrationError;
use crate::storage::Batch;
use crate::workflow::Workflow;

use super::clock::to_millis;
use super::core::Inner;
use super::error::EngineError;
use super::record::{self, RecordStatus, WorkflowRecord};
use super::registry::{self, ErasedWorkflow, StepFault};
use super::visibility;

/// A workflow version exactly: name, version, fingerprint.
pub(crate) type VersionKey = (String, u32, u64);

/// The key of workflow `W`.
pub(crate) fn key_of<W: Workflow>() -> VersionKey {
    (W::NAME.to_string(), W::VERSION, W::FINGERPRINT)
}

/// The key a stored record was written by.
pub(crate) fn key_of_record(record: &WorkflowRecord) -> VersionKey {
    (
        record.workflow_type.clone(),
        record.version,
        record.fingerprint,
    )
}

type Apply = dyn Fn(&[u8]) -> Result<Vec<u8>, StepFault> + Send + Sync;

/// One migration with its types erased: encoded old state in, encoded new state out.
pub(crate) struct ErasedMigration {
    pub from: VersionKey,
    pub to: VersionKey,
    /// The source version's code, not registered: describe renders a stored state that has not
    /// been migrated (its migration failed) with it. Never stepped.
    pub source: Arc<dyn ErasedWorkflow>,
    apply: Box<Apply>,
}

/// Erases `f`, a migration from `From`'s state to `To`'s.
pub(crate) fn erase<From, To, F>(f: F) -> Arc<ErasedMigration>
where
    From: Workflow,
    To: Workflow,
    F: Fn(From::State) -> Result<To::State, MigrationError> + Send + Sync + 'static,
{
    let apply = move |bytes: &[u8]| -> Result<Vec<u8>, StepFault> {
        let old: From::State = codec::decode(bytes).map_err(|e| StepFault {
            code: "state.corrupt".into(),
            message: format!(
                "the stored state of `{}` version {} does not decode, so it cannot be migrated: {e}",
                From::NAME,
                From::VERSION
            ),
        })?;
        // A panicking migration parks its workflow (the record stays as stored, reported with
        // this reason) instead of taking `build` down with it.
        let migrated = crate::contain::catch(|| f(old)).map_err(|message| StepFault {
            code: "migration.panicked".into(),
            message: format!(
                "migrating `{}` from version {} to version {} panicked: {message}; the record is kept as stored, deploy a fixed migration to resume it",
                From::NAME,
                From::VERSION,
                To::VERSION
            ),
        })?;
        let new = migrated.map_err(|e| StepFault {
            code: e.code().into(),
            message: format!(
                "migrating `{}` from version {} to version {} failed: {e}; the record is kept as stored, deploy a fixed migration to resume it",
                From::NAME,
                From::VERSION,
                To::VERSION
            ),
        })?;
        codec::encode(&new).map_err(|e| StepFault {
            code: e.code().into(),
            message: e.to_string(),
        })
    };
    Arc::new(ErasedMigration {
        from: key_of::<From>(),
        to: key_of::<To>(),
        source: registry::erase::<From>(),
        apply: Box::new(apply),
    })
}

/// Formats a version key for messages.
pub(crate) fn describe_key((name, version, fingerprint): &VersionKey) -> String {
    format!("`{name}` version {version} ({fingerprint:#018x})")
}

/// Runs the migration chain that starts at `record`'s version, if any: `None` when no migration
/// applies, else the migrated record (not yet stored) or why it cannot be migrated. Pure: reads
/// and writes nothing.
pub(crate) fn upgrade(
    inner: &Inner,
    record: &WorkflowRecord,
) -> Option<Result<WorkflowRecord, StepFault>> {
    let mut key = key_of_record(record);
    let mut migration = inner.registry.migration(&key)?;
    let state = record.state.as_deref()?;
    if !matches!(record.status, RecordStatus::Running | RecordStatus::Waiting) {
        return None;
    }
    let mut state = state.to_vec();
    loop {
        state = match (migration.apply)(&state) {
            Ok(state) => state,
            Err(fault) => return Some(Err(fault)),
        };
        key = migration.to.clone();
        match inner.registry.migration(&key) {
            Some(next) => migration = next,
            None => break,
        }
    }
    if let Some(fault) =
        super::plan::too_large(inner.payload_limit, "the migrated workflow state", &state)
    {
        return Some(Err(fault));
    }
    let mut next = record.clone();
    let (workflow_type, version, fingerprint) = key;
    next.workflow_type = workflow_type;
    next.version = version;
    next.fingerprint = fingerprint;
    next.state = Some(state);
    next.updated_ms = to_millis(inner.clock.now());
    Some(Ok(next))
}

const PAGE: usize = 256;

/// Migrates every stored workflow a registered migration applies to, committing each page of
/// migrated records in one fenced batch. A migration that fails leaves its record as it is
/// (describe and list report it parked with the migration's error). Returns how many records
/// were migrated.
pub(crate) async fn upgrade_all(inner: &Arc<Inner>) -> Result<usize, EngineError> {
    if !inner.registry.has_migrations() {
        return Ok(0);
    }
    let mut migrated = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = inner
            .read_page(record::WORKFLOW_PREFIX, after.clone(), PAGE)
            .await?;
        let done = page.len() < PAGE;
        let mut batch = Batch::new();
        for (key, value) in &page {
            let Ok(stored) = record::decode_record::<WorkflowRecord>(value) else {
                continue;
            };
            if let Some(Ok(next)) = upgrade(inner, &stored) {
                if let Some((_, id)) = record::parse_id_key(record::WORKFLOW_PREFIX, key) {
                    visibility::stage_rewrite(id, Some(&stored), &next, &mut batch);
                }
                batch.put(key.clone(), record::encode_record(&next)?);
                migrated += 1;
            }
        }
        if !batch.is_empty() {
            // A request, not a transition the engine acknowledged: a storage failure fails the
            // build (nothing is migrated) instead of being retried until storage heals.
            inner.commit_checked(move |_| Ok(Some(batch))).await?;
        }
        if done {
            return Ok(migrated);
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}
