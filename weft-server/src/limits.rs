//! Limits that keep a busy or abused server answering: body size, request time, requests in
//! flight, page and bulk sizes. Over a limit the server answers at once, with `503` and
//! `Retry-After` (or `413` for a body), instead of queueing without bound.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::error::ApiError;
use tokio::sync::Semaphore;

/// The server's limits; `Limits::default()` suits a small service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body read, in bytes: a coarse bound before the engine's own payload
    /// limit decides. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long a request may take before it is answered `503` (the work it acknowledged
    /// goes on in the engine). Default 30 s.
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered `503` with `Retry-After`. Default 512.
    pub max_in_flight: usize,
    /// The longest wait a request may ask for (a result or an update's answer); kept below
    /// `request_timeout`. Default 25 s.
    pub max_wait: Duration,
    /// The largest page of a list. Default 1,000.
    pub max_page_size: usize,
    /// The most workflows one bulk request acts on. Default 1,000.
    pub max_bulk: usize,
    /// Event streams open at once; more are answered `503`. Default 256.
    pub max_event_streams: usize,
    /// How long a shutdown waits for requests in flight before it stops anyway. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            max_in_flight: 512,
            max_wait: Duration::from_secs(25),
            max_page_size: 1_000,
            max_bulk: 1_000,
            max_event_streams: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Answers `503 server.overloaded` when `max_in_flight` requests are already being handled.
pub(crate) async fn concurrency(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server.overloaded",
            "the server is handling as many requests as it allows; retry after the delay given",
        )
        .retry_after(1)
        .into_response();
    };
    next.run(request).await
}

/// Answers `503 server.timeout` when a request takes longer than `request_timeout`.
pub(crate) async fn timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server.timeout",
            "the request took longer than the server allows; what it acknowledged goes on, retry to see the outcome",
        )
        .retry_after(1)
        .into_response(),
    }
}

/// Turns a panic in a handler into `500 server.panic`, so one bad request never drops others.
pub(crate) async fn catch_panic(request: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("a request handler panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server.panic",
                "the server failed on this request; it keeps serving others",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    async fn status_of(router: &Router) -> (StatusCode, Option<String>) {
        let response = router
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status(), retry)
    }

    #[tokio::test]
    async fn over_the_in_flight_limit_a_request_is_answered_503_at_once() {
        let release = Arc::new(Notify::new());
        let entered = Arc::new(Notify::new());
        let router = {
            let (release, entered) = (release.clone(), entered.clone());
            Router::new()
                .route(
                    "/slow",
                    get(move || async move {
                        entered.notify_one();
                        release.notified().await;
                        "done"
                    }),
                )
                .layer(from_fn_with_state(Arc::new(Semaphore::new(1)), concurrency))
        };
        let first = tokio::spawn({
            let router = router.clone();
            async move { status_of(&router).await }
        });
        entered.notified().await;
        assert_eq!(
            status_of(&router).await,
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_string()))
        );
        release.notify_one();
        assert_eq!(first.await.unwrap().0, StatusCode::OK);
        // The permit came back: the next request is served (and parks until released).
        let again = tokio::spawn({
            let router = router.clone();
            async move { status_of(&router).await }
        });
        entered.notified().await;
        release.notify_one();
        assert_eq!(again.await.unwrap().0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_over_its_time_is_answered_503_with_retry_after() {
        let router = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .layer(from_fn_with_state(Duration::from_millis(20), timeout));
        assert_eq!(
            status_of(&router).await,
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_string()))
        );
    }
}
