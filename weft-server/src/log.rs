//! The request log: one `tracing` event per request with its principal, status, error code and
//! duration.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Principal;
use crate::error::ErrorCode;

/// Logs each request at info level (`target: "weft_server::request"`), server errors at warn.
pub(crate) async fn requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let principal = response
        .extensions()
        .get::<Principal>()
        .map_or("-", |p| p.name.as_str());
    let code = response
        .extensions()
        .get::<ErrorCode>()
        .map_or("-", |c| c.0.as_str());
    let micros = started.elapsed().as_micros() as u64;
    if status >= 500 {
        tracing::warn!(target: "weft_server::request", %method, path, status, code, principal, micros, "request");
    } else {
        tracing::info!(target: "weft_server::request", %method, path, status, code, principal, micros, "request");
    }
    response
}
