//! # weft-server: Weft as a service
//!
//! An HTTP server over a Weft [`Engine`](weft_runtime::Engine): a JSON API under `/v1`,
//! `/health` and `/ready` for orchestrators, live events resumable with `Last-Event-ID`, named bearer tokens with roles, an audit log, and
//! an OpenAPI document generated from the same types as the routes.
//!
//! A user's own binary registers its workflows with the engine and serves them:
//!
//! ```no_run
//! # async fn run(engine: weft_runtime::Engine) -> Result<(), Box<dyn std::error::Error>> {
//! use weft_server::{Server, TokenSet};
//! Server::builder(engine)
//!     .address("0.0.0.0:8080".parse()?)
//!     .tokens(TokenSet::from_env()?) // WEFT_ADMIN_TOKEN, WEFT_OPERATOR_TOKEN, WEFT_TOKENS_FILE
//!     .build()?
//!     .serve() // until SIGTERM or Ctrl-C, then a graceful drain
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Routes
//!
//! | route | role |
//! | --- | --- |
//! | `GET /health`, `GET /ready` | none |
//! | `GET /v1/cluster/info`, `GET /v1/openapi.json` | any |
//! | `POST /v1/workflows` (start by type name; `wait_ms` waits for the result too) | operator |
//! | `GET /v1/workflows/{id}/result`, `POST /v1/workflows/{id}/signals/{name}`, `POST /v1/workflows/{id}/updates/{name}` | operator |
//! | `GET /v1/workflows`, `GET /v1/workflow-counts`, `GET /v1/workflows/{id}`, `GET /v1/workflows/{id}/children`, `GET /v1/workflow-types` | operator |
//! | `POST /v1/workflows/{id}/cancel`, `POST /v1/workflows/{id}/retry`, `GET /v1/workflows/{id}/queries/{name}` | operator |
//! | `GET /v1/reviews`, `POST /v1/workflows/{id}/review` | operator |
//! | `GET /v1/recovery` (what recovery at build found and resumed) | operator |
//! | `GET /v1/workflows/{id}/events`, `GET /v1/events` (Server-Sent Events) | operator |
//! | `DELETE /v1/workflows/{id}`, `POST /v1/bulk/{cancel,signal,purge}`, `GET /v1/audit` | admin |
//! | `POST /v1/admin/backup` (into [`ServerBuilder::backup_dir`]) | admin |
//! | `GET /v1/schedules`, `GET /v1/schedules/{id}`, `POST /v1/schedules/{id}/trigger`, `POST /v1/schedules/{id}/backfill` | operator |
//! | `POST /v1/schedules`, `PUT /v1/schedules/{id}`, `DELETE /v1/schedules/{id}`, `POST /v1/schedules/{id}/{pause,resume}` | admin |
//! | `/ui/...`: the dashboard, behind a browser session (see [`ui`]) | operator, admin |
//!
//! Admins may do everything operators may. Every engine call that writes runs in a task of its
//! own, so a client that disconnects mid-request never leaves an acknowledged write half done.
//! Errors are one JSON shape, [`ErrorBody`] (`{code, message, details}`), with the engine's
//! stable code and a status from `EngineError::kind()`: not found 404, conflict 409, invalid
//! input 400 (an oversized payload 413), unavailable 503 with `Retry-After`, internal 500.
//!
//! ## Security
//!
//! Authentication fails closed: a `/v1` request without a valid token is answered `401` before
//! routing, and the role check runs before any extractor or engine call, so a token without the
//! role learns nothing about what exists. Tokens come from the environment or a file
//! ([`TokenSet::from_env`]), never the command line, and only their SHA-256 hashes are kept,
//! compared in constant time. Without tokens the server binds loopback only, unless
//! `insecure_no_auth` is set. Given a certificate and key ([`ServerBuilder::tls`]) it serves
//! HTTPS with rustls; a non-loopback address served as plain HTTP is warned about at start
//! (tokens cross in clear unless a TLS-terminating proxy is in front).

pub mod api;
pub mod audit;
pub mod auth;
pub mod error;
pub mod events;
pub mod health;
pub mod limits;
mod log;
pub mod server;
mod tls;
pub mod ui;

pub use api::openapi::ApiDoc;
pub use audit::{AuditEntry, AuditLog};
pub use auth::{Access, Principal, Role, TokenError, TokenSet};
pub use error::{ApiError, ErrorBody};
pub use limits::Limits;
pub use server::{DEFAULT_ADDRESS, Listening, Server, ServerBuilder, ServerError};
pub use tls::TlsFiles;
