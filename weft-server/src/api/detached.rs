//! Engine calls that run to their end even when the client goes away.
//!
//! axum drops a handler's future when its client disconnects. An engine call dropped between
//! its durable commit and what follows it (starting the new workflow's runner, waking the one
//! signalled) could leave an acknowledged write without its effect until a restart; so every
//! call that writes runs in a task of its own, which the handler only awaits.

use std::future::Future;

use crate::error::ApiError;
use axum::http::StatusCode;

/// Runs `call` in its own task and waits for it; the task finishes even if this future is
/// dropped.
///
/// # Errors
///
/// `500 server.panic` when the call panicked.
///
/// # Cancel safety
///
/// Cancel safe: dropping it leaves `call` running to its end.
pub(crate) async fn detached<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(call).await.map_err(|_| {
        tracing::error!("an engine call panicked");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server.panic",
            "the server failed on this request; it keeps serving others",
        )
    })
}
