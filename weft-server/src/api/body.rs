//! [`JsonBody`]: a JSON request body read within the size limit, whose errors are answered in
//! the API's error shape with serde's position of the fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`. An empty body reads as `null` (so a body whose fields are
/// all optional may be left out).
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(text).map(JsonBody).map_err(|e| {
            ApiError::bad_request(
                "request.invalid_json",
                format!("the body is not valid: {e}"),
            )
            .detail("line", e.line())
            .detail("column", e.column())
        })
    }
}
