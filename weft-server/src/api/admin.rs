//! Admin operations on the store: an online backup into the server's backup directory.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::server::Shared;

/// The longest backup file name accepted, in bytes.
const MAX_NAME: usize = 128;

/// A backup request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The file name inside the server's backup directory: letters, digits, `.`, `-` and `_`,
    /// not starting with `.`. Default `weft-<ms since the Unix epoch>.redb`. A path is refused:
    /// where backups go is the server's configuration, never the client's choice.
    #[serde(default)]
    pub name: Option<String>,
}

/// A backup written and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupResponse {
    /// The file name inside the backup directory.
    pub name: String,
    /// The file's path on the server.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Entries the store held in the snapshot.
    pub entries: u64,
    /// SHA-256 of the entries, lowercase hex.
    pub checksum: String,
    /// The store format version it holds.
    pub format_version: u32,
    /// The Weft version that wrote it.
    pub weft_version: String,
    /// The owner epoch of the engine that took it.
    pub owner_epoch: Option<u64>,
    /// When it was taken, in ms since the Unix epoch.
    pub created_at_ms: u64,
}

/// Why `name` cannot be a backup file name, if it cannot.
fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        Some("it must be 1 to 128 bytes long")
    } else if name.starts_with('.') {
        Some("it must not start with `.`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        Some("it may hold only letters, digits, `.`, `-` and `_` (no path)")
    } else {
        None
    }
}

/// Writes a verified backup of the store into the server's backup directory while the engine
/// runs (see `Engine::backup`). An existing file is never overwritten. A backup that outlasts
/// the request timeout still completes on the server; its file appears when it is verified.
#[utoipa::path(post, path = "/v1/admin/backup", tag = "admin",
    request_body = BackupRequest,
    responses(
        (status = 200, description = "The backup, written and verified", body = BackupResponse),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 409, description = "A file of that name exists, or no backup directory is configured", body = ErrorBody)),
    security(("bearer" = ["admin"])))]
pub(crate) async fn backup(
    State(shared): State<Arc<Shared>>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(request): JsonBody<Option<BackupRequest>>,
) -> Result<Json<BackupResponse>, ApiError> {
    let Some(dir) = shared.backup_dir.as_ref() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backup.not_configured",
            "this server has no backup directory; configure one with `ServerBuilder::backup_dir`",
        ));
    };
    let name = match request.unwrap_or_default().name {
        Some(name) => name,
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            format!("weft-{ms}.redb")
        }
    };
    if let Some(reason) = invalid_name(&name) {
        return Err(ApiError::bad_request(
            "backup.invalid_name",
            format!("invalid backup name {name:?}: {reason}"),
        ));
    }
    let path: PathBuf = dir.join(&name);
    match shared.engine.backup(&path).await {
        Ok(report) => {
            shared.audit.record(&principal, "admin.backup", &name, "ok");
            let manifest = report.manifest;
            Ok(Json(BackupResponse {
                name,
                path: report.path.display().to_string(),
                bytes: report.bytes,
                entries: manifest.entries,
                checksum: manifest.checksum,
                format_version: manifest.meta.format_version,
                weft_version: manifest.meta.weft_version,
                owner_epoch: manifest.meta.owner_epoch,
                created_at_ms: manifest.meta.created_at_ms,
            }))
        }
        Err(e) => {
            shared
                .audit
                .record(&principal, "admin.backup", &name, e.code());
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::invalid_name;

    #[test]
    fn names_are_plain_file_names() {
        for good in ["nightly.redb", "weft-1700000000000.redb", "a_b-c.1"] {
            assert_eq!(invalid_name(good), None, "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "../etc/passwd",
            "/abs.redb",
            "dir/x.redb",
            "a\\b",
            "sp ace",
            "ü.redb",
        ] {
            assert!(invalid_name(bad).is_some(), "{bad:?}");
        }
        assert!(invalid_name(&"x".repeat(129)).is_some());
    }
}
