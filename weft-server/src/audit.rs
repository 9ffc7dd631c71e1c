//! The audit log: every operator or admin action that changes something, with who did it.
//!
//! Kept in a bounded in-memory ring per server (the oldest entries fall out first, and a
//! restart empties it); a durable audit trail is later work. Review decisions also carry their
//! principal into the engine's review record (`decided_by`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Role};

/// One action in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increases by one per entry over the server's life.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The token's name.
    pub principal: String,
    /// The token's role.
    pub role: Role,
    /// What was done: `workflow.cancel`, `workflow.purge`, `review.decide`, `bulk.cancel`, ...
    pub action: String,
    /// The workflow id, or the filter of a bulk action.
    pub target: String,
    /// `ok`, or the error code the action failed with.
    pub outcome: String,
}

/// A bounded ring of [`AuditEntry`]s.
#[derive(Debug)]
pub struct AuditLog {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<AuditEntry>)>,
}

impl AuditLog {
    /// A log keeping the last `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        AuditLog {
            capacity: capacity.max(1),
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    /// Records an action and logs it at info level.
    pub fn record(&self, principal: &Principal, action: &str, target: &str, outcome: &str) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        tracing::info!(
            target: "weft_server::audit",
            principal = %principal.name,
            role = principal.role.as_str(),
            action,
            target_id = target,
            outcome,
            "audit"
        );
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0 += 1;
        let entry = AuditEntry {
            seq: inner.0,
            at_ms,
            principal: principal.name.clone(),
            role: principal.role,
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
        };
        if inner.1.len() == self.capacity {
            inner.1.pop_front();
        }
        inner.1.push_back(entry);
    }

    /// The kept entries, oldest first, only those about `target` when given.
    pub fn entries(&self, target: Option<&str>) -> Vec<AuditEntry> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .1
            .iter()
            .filter(|e| target.is_none_or(|t| e.target == t))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_entries_in_order() {
        let log = AuditLog::new(2);
        let who = Principal {
            name: "ada".into(),
            role: Role::Admin,
        };
        for id in ["a", "b", "c"] {
            log.record(&who, "workflow.cancel", id, "ok");
        }
        let kept = log.entries(None);
        assert_eq!(
            kept.iter()
                .map(|e| (e.seq, e.target.as_str()))
                .collect::<Vec<_>>(),
            [(2, "b"), (3, "c")]
        );
        assert_eq!(log.entries(Some("c")).len(), 1);
    }
}
