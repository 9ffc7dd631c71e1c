//! The one error shape of the API, `{code, message, details}`, and how engine errors map onto
//! HTTP statuses (through `EngineError::kind()`).

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use weft_runtime::{EngineError, ErrorKind};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code: the engine's (`engine.not_found`) or the server's
    /// (`auth.missing_token`, `request.invalid_json`, `server.overloaded`, ...).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Structured facts about the error; always an object, `{"kind": ...}` at least.
    pub details: serde_json::Value,
}

/// An error answered by the API: a status and an [`ErrorBody`], and `Retry-After` when waiting
/// helps.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

/// The stable code of an error response, left in the response's extensions for the request log.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCode(pub String);

impl ApiError {
    /// An error with this status, code and message; `details` says its kind.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let kind = match status {
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => "unavailable",
            s if s.is_client_error() => "invalid_input",
            _ => "internal",
        };
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                details: serde_json::json!({ "kind": kind }),
            },
            retry_after: None,
        }
    }

    /// Asks the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds a fact to `details`.
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let Some(map) = self.body.details.as_object_mut() {
            map.insert(key.to_string(), value.into());
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// A request whose input is wrong (400).
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

/// The status an engine error kind answers with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let kind = error.kind();
        let status = match &error {
            EngineError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => status_of(kind),
        };
        let mut api = ApiError {
            status,
            body: ErrorBody {
                code: error.code().to_string(),
                message: error.to_string(),
                details: serde_json::json!({ "kind": kind.as_str() }),
            },
            retry_after: None,
        };
        if kind == ErrorKind::Unavailable {
            api.retry_after = Some(1);
        }
        if kind == ErrorKind::Internal {
            tracing::error!(code = error.code(), %error, "engine error");
        }
        api
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("request.invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("request.invalid_path", rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "request.body_too_large",
                "the request body is over the server's size limit; send less data",
            )
        } else {
            ApiError::new(status, "request.body_unreadable", rejection.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = ErrorCode(self.body.code.clone());
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        response.extensions_mut().insert(code);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_error_kinds_map_onto_statuses_and_keep_the_engine_code() {
        let cases = [
            (
                EngineError::NotFound { id: "a".into() },
                StatusCode::NOT_FOUND,
            ),
            (
                EngineError::Finished { id: "a".into() },
                StatusCode::CONFLICT,
            ),
            (EngineError::InvalidPageToken, StatusCode::BAD_REQUEST),
            (EngineError::Shutdown, StatusCode::SERVICE_UNAVAILABLE),
            (
                EngineError::ReviewConflict { id: "a".into() },
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                EngineError::PayloadTooLarge {
                    what: "the signal",
                    size: 2,
                    limit: 1,
                },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!(api.status(), status, "{code}");
            assert_eq!(api.body().code, code);
            assert!(api.body().details["kind"].is_string());
        }
        assert_eq!(ApiError::from(EngineError::Shutdown).retry_after, Some(1));
    }
}
