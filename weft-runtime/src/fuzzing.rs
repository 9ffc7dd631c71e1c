//! Entry points for the workspace's fuzzer (`weft-fuzz`) into decoders that are otherwise
//! crate-private.
//!
//! Hidden and not part of the API: the fuzzer must drive the very functions the engine runs on
//! untrusted bytes (a cron expression from a caller, a backup file handed to a restore, a
//! stored state a by-name query answers from), and those are `pub(crate)` so that the engine's
//! public surface stays small. Each function here only forwards.

use std::path::Path;

use crate::engine::EngineError;
use crate::engine::schedule::Trigger;
use crate::query::Query;
use crate::storage::{BackupError, BackupManifest};

/// Compiles `trigger` as `create_schedule` does and computes what the scheduler asks of it from
/// `from_ms`: the first fire at or after it and up to `fires` fires after that, then how many
/// fall in the following day, as a catch-up counts them (a cron expression one fire at a time,
/// at most `fires`; an interval arithmetically).
///
/// # Errors
///
/// The reason the trigger is refused, as `create_schedule` reports it.
pub fn schedule_fires(trigger: &Trigger, from_ms: u64, fires: usize) -> Result<Vec<u64>, String> {
    let compiled = trigger.compile()?;
    let mut times = Vec::new();
    let mut at = compiled.first_at_or_after(from_ms);
    while let Some(fire) = at {
        times.push(fire);
        if times.len() > fires {
            break;
        }
        at = compiled.next_after(fire);
    }
    let day = from_ms.saturating_add(86_400_000);
    compiled.count_between(from_ms, day, fires as u64);
    Ok(times)
}

/// Decodes a backup's manifest JSON as `restore` and `read_manifest` do.
///
/// # Errors
///
/// [`BackupError::NotABackup`] when it does not decode, [`BackupError::NewerFormat`] when it
/// names a newer format.
pub fn decode_backup_manifest(json: &[u8]) -> Result<BackupManifest, BackupError> {
    crate::storage::decode_manifest(json, Path::new("fuzz-input"))
}

/// Answers query `Q` as JSON from the encoded state `state`, as `Engine::query_by_name` does
/// for a query registered with `EngineBuilder::query`.
///
/// # Errors
///
/// A codec error when the state does not decode or the answer does not encode; `Panicked`
/// when the answer or its `Serialize` impl panics.
pub fn query_answer_json<Q>(state: &[u8]) -> Result<serde_json::Value, EngineError>
where
    Q: Query,
    Q::Output: serde::Serialize,
{
    crate::engine::answer_json::<Q>(state)
}
