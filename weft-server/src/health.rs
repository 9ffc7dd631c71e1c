//! Liveness and readiness, Durable Workflow v2's contract: `/health` proves the process serves
//! HTTP (no auth, no storage access); `/ready` says whether traffic may be sent here, with each
//! check, its result and what to do.
//!
//! Readiness reads the result of a storage probe that runs on a heartbeat
//! (`Engine::probe`: a read and an epoch-fenced write), never storage itself, so probing
//! `/ready` often costs nothing.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use weft_runtime::Engine;

use crate::server::Shared;

/// A probe older than this many heartbeats counts as unanswered.
const STALE_AFTER_BEATS: u32 = 3;

/// What the last storage probe found.
#[derive(Debug, Clone)]
struct ProbeResult {
    at: Instant,
    error: Option<(String, String)>,
}

/// The server's view of its own readiness.
#[derive(Debug)]
pub(crate) struct Readiness {
    interval: Duration,
    last: Mutex<Option<ProbeResult>>,
    draining: AtomicBool,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// `storage`, `ownership`, `recovery` or `serving`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do when it failed; absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// The body of `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadyReport {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

/// The body of `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// Always `ok`: the process answers HTTP.
    pub status: String,
}

impl Readiness {
    pub(crate) fn new(interval: Duration) -> Self {
        Readiness {
            interval,
            last: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    /// Marks the server as shutting down: `/ready` answers 503 from now on.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn store(&self, result: ProbeResult) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    }

    /// Probes the engine's storage every `interval` until the engine stops.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only records probe results.
    pub(crate) async fn heartbeat(self: Arc<Self>, engine: Engine) {
        loop {
            let error = match engine.probe().await {
                Ok(()) => None,
                Err(e) => Some((e.code().to_string(), e.to_string())),
            };
            self.store(ProbeResult {
                at: Instant::now(),
                error,
            });
            tokio::time::sleep(self.interval).await;
        }
    }

    pub(crate) fn report(&self, engine: &Engine) -> ReadyReport {
        let mut checks = Vec::new();
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let stale = self.interval * STALE_AFTER_BEATS + Duration::from_secs(1);
        checks.push(match last {
            None => Check {
                name: "storage".into(),
                ok: false,
                detail: "the storage has not been probed yet".into(),
                action: Some("wait for the first probe (a second or so after start)".into()),
            },
            Some(ProbeResult { error: Some((code, message)), .. }) => Check {
                name: "storage".into(),
                ok: false,
                detail: format!("the last probe failed ({code}): {message}"),
                action: Some(
                    "check the store (disk space, permissions, the database file) and the server log"
                        .into(),
                ),
            },
            Some(ProbeResult { at, error: None }) if at.elapsed() > stale => Check {
                name: "storage".into(),
                ok: false,
                detail: format!(
                    "the last probe answered {}s ago; the next has not come back",
                    at.elapsed().as_secs()
                ),
                action: Some(
                    "the store is slow or stuck: check disk latency and the server log".into(),
                ),
            },
            Some(ProbeResult { at, error: None }) => Check {
                name: "storage".into(),
                ok: true,
                detail: format!(
                    "read and fenced write answered {}ms ago",
                    at.elapsed().as_millis()
                ),
                action: None,
            },
        });
        checks.push(if engine.is_fenced() {
            Check {
                name: "ownership".into(),
                ok: false,
                detail: format!(
                    "another engine took the store over; this one (epoch {}) has stopped",
                    engine.epoch()
                ),
                action: Some(
                    "stop this process: only one engine may own a store; the newer one serves it"
                        .into(),
                ),
            }
        } else {
            Check {
                name: "ownership".into(),
                ok: true,
                detail: format!("this engine owns the store at epoch {}", engine.epoch()),
                action: None,
            }
        });
        checks.push(Check {
            name: "recovery".into(),
            ok: true,
            detail: "recovery finished when the engine was built".into(),
            action: None,
        });
        checks.push(if self.draining.load(Ordering::SeqCst) {
            Check {
                name: "serving".into(),
                ok: false,
                detail: "the server is shutting down and finishing requests in flight".into(),
                action: Some("send new traffic to another instance".into()),
            }
        } else {
            Check {
                name: "serving".into(),
                ok: true,
                detail: "accepting requests".into(),
                action: None,
            }
        });
        ReadyReport {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

/// Liveness: the process answers HTTP. No auth, no storage access.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process serves HTTP", body = HealthReport)))]
pub(crate) async fn health() -> Json<HealthReport> {
    Json(HealthReport {
        status: "ok".into(),
    })
}

/// Readiness: `200` only when the store answered its last probe, this engine owns it, recovery
/// finished and the server is not shutting down; else `503` with each check.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = ReadyReport),
        (status = 503, description = "Not ready; each check says why and what to do", body = ReadyReport)))]
pub(crate) async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let report = shared.readiness.report(&shared.engine);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}
