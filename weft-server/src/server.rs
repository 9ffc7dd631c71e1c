//! [`Server`]: configuration, the router with its layers, binding, and graceful shutdown.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use weft_runtime::Engine;

use crate::api;
use crate::audit::AuditLog;
use crate::auth::{self, TokenSet};
use crate::error::ApiError;
use crate::events::Events;
use crate::health::{self, Readiness};
use crate::limits::{self, Limits};
use crate::tls::{TlsFiles, TlsListener};

/// The default address: loopback only, port 8080.
pub const DEFAULT_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A non-loopback address without tokens would let anyone drive the engine.
    #[error(
        "refusing to listen on {address} without tokens: anyone who reaches it could start, cancel and purge workflows; set WEFT_ADMIN_TOKEN / WEFT_OPERATOR_TOKEN or WEFT_TOKENS_FILE, or pass `insecure_no_auth` explicitly"
    )]
    InsecureBind {
        /// The address asked for.
        address: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error(
        "cannot use {path} for TLS: {reason}; give a PEM certificate chain (leaf first) and its PEM private key"
    )]
    Tls {
        /// The file at fault.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Serving failed.
    #[error("the server failed: {0}")]
    Io(#[source] std::io::Error),
}

/// What every handler shares.
pub(crate) struct Shared {
    pub engine: Engine,
    pub tokens: TokenSet,
    pub insecure_no_auth: bool,
    pub limits: Limits,
    pub audit: AuditLog,
    pub readiness: Arc<Readiness>,
    pub events: Arc<Events>,
    pub in_flight: Arc<Semaphore>,
    pub started: Instant,
    /// Whether this server serves HTTPS itself (the dashboard's cookies are then `Secure`).
    pub tls: bool,
    /// Where `POST /v1/admin/backup` writes; none: backups over HTTP are off.
    pub backup_dir: Option<std::path::PathBuf>,
    /// The dashboard's browser sessions.
    pub ui_sessions: crate::ui::session::Sessions,
}

/// Configures a [`Server`]; see [`Server::builder`].
#[derive(Debug)]
pub struct ServerBuilder {
    engine: Engine,
    address: SocketAddr,
    tokens: TokenSet,
    insecure_no_auth: bool,
    limits: Limits,
    probe_interval: Duration,
    audit_capacity: usize,
    event_window: usize,
    backup_dir: Option<std::path::PathBuf>,
    tls: Option<TlsFiles>,
}

impl ServerBuilder {
    /// The address to listen on; default [`DEFAULT_ADDRESS`] (loopback). Port 0 picks a free
    /// port ([`Listening::local_addr`] says which).
    pub fn address(mut self, address: SocketAddr) -> Self {
        self.address = address;
        self
    }

    /// The tokens accepted (see [`TokenSet::from_env`]). Without tokens the server listens on
    /// loopback only, unless [`ServerBuilder::insecure_no_auth`] is set.
    pub fn tokens(mut self, tokens: TokenSet) -> Self {
        self.tokens = tokens;
        self
    }

    /// Serves without tokens, even on a non-loopback address, treating every caller as an
    /// admin named `anonymous`. For a trusted network or a proxy that authenticates; never the
    /// default. Ignored when tokens are configured.
    pub fn insecure_no_auth(mut self, insecure: bool) -> Self {
        self.insecure_no_auth = insecure;
        self
    }

    /// The limits (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How often the storage is probed for `/ready`; default 2 s.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// How many audit entries are kept in memory; default 10,000.
    pub fn audit_capacity(mut self, capacity: usize) -> Self {
        self.audit_capacity = capacity;
        self
    }

    /// How many events the catch-up ring keeps for clients that reconnect with
    /// `Last-Event-ID`; default 10,000.
    pub fn event_window(mut self, events: usize) -> Self {
        self.event_window = events;
        self
    }

    /// The directory `POST /v1/admin/backup` writes backups into (the client names only the
    /// file); default none, which turns that route off. Keep it on another disk than the store.
    pub fn backup_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }

    /// Serves HTTPS with this certificate chain and key (PEM files, read by
    /// [`ServerBuilder::build`]); default plain HTTP.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ServerError::InsecureBind`] for a non-loopback address without tokens and without
    /// `insecure_no_auth`; [`ServerError::Tls`] when the TLS files cannot be read or do not fit.
    pub fn build(self) -> Result<Server, ServerError> {
        let loopback = self.address.ip().is_loopback();
        if !loopback && self.tokens.is_empty() && !self.insecure_no_auth {
            return Err(ServerError::InsecureBind {
                address: self.address,
            });
        }
        if self.tokens.is_empty() {
            tracing::warn!(
                address = %self.address,
                "no tokens configured: every caller is treated as an admin"
            );
        } else if !loopback && self.tls.is_none() {
            tracing::warn!(
                address = %self.address,
                "serving plain HTTP on a non-loopback address: bearer tokens cross the network in clear unless a TLS-terminating proxy is in front"
            );
        }
        let tls = self.tls.as_ref().map(TlsFiles::load).transpose()?;
        let shared = Arc::new(Shared {
            in_flight: Arc::new(Semaphore::new(self.limits.max_in_flight.max(1))),
            engine: self.engine,
            tokens: self.tokens,
            insecure_no_auth: self.insecure_no_auth,
            audit: AuditLog::new(self.audit_capacity),
            readiness: Arc::new(Readiness::new(self.probe_interval)),
            events: Events::new(self.event_window, self.limits.max_event_streams),
            limits: self.limits,
            started: Instant::now(),
            backup_dir: self.backup_dir,
            ui_sessions: Default::default(),
            tls: tls.is_some(),
        });
        Ok(Server {
            address: self.address,
            shared,
            tls,
        })
    }
}

/// An HTTP server over an [`Engine`]: the JSON API under `/v1`, `/health`, `/ready`, role
/// tokens and live events.
///
/// ```no_run
/// # async fn run(engine: weft_runtime::Engine) -> Result<(), Box<dyn std::error::Error>> {
/// use weft_server::{Server, TokenSet};
/// Server::builder(engine)
///     .address("0.0.0.0:8080".parse()?)
///     .tokens(TokenSet::from_env()?)
///     .build()?
///     .serve()
///     .await?;
/// # Ok(()) }
/// ```
pub struct Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish()
    }
}

impl Server {
    /// Starts configuring a server over `engine` (built with every workflow it serves).
    pub fn builder(engine: Engine) -> ServerBuilder {
        ServerBuilder {
            engine,
            address: DEFAULT_ADDRESS,
            tokens: TokenSet::new(),
            insecure_no_auth: false,
            limits: Limits::default(),
            probe_interval: Duration::from_secs(2),
            audit_capacity: 10_000,
            event_window: 10_000,
            backup_dir: None,
            tls: None,
        }
    }

    /// The router with every route and layer, for embedding in another axum application or
    /// serving on a listener of your own. Readiness probes and events need the tasks
    /// [`Server::bind`] starts.
    pub fn router(&self) -> Router {
        let shared = &self.shared;
        let api = api::routes()
            .into_iter()
            .fold(Router::new(), |router, route| {
                router.route(
                    route.path,
                    route
                        .handler
                        .route_layer(from_fn_with_state(route.access, auth::require)),
                )
            })
            .route("/v1/{*rest}", axum::routing::any(not_found))
            .method_not_allowed_fallback(method_not_allowed)
            .layer(from_fn_with_state(Arc::clone(shared), auth::authenticate))
            .layer(DefaultBodyLimit::max(shared.limits.max_body_bytes))
            .layer(from_fn_with_state(
                shared.limits.request_timeout,
                limits::timeout,
            ))
            .layer(from_fn_with_state(
                Arc::clone(&shared.in_flight),
                limits::concurrency,
            ));
        Router::new()
            .route("/health", get(health::health))
            .route("/ready", get(health::ready))
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(Arc::clone(shared))
            .merge(api.with_state(Arc::clone(shared)))
            .merge(crate::ui::router(shared))
            .fallback(not_found)
            .layer(from_fn(limits::catch_panic))
            .layer(from_fn(crate::log::requests))
    }

    /// Binds the address and starts the storage heartbeat that `/ready` reports.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] when the address cannot be bound.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it before it returns leaves nothing bound.
    pub async fn bind(self) -> Result<Listening, ServerError> {
        let listener =
            TcpListener::bind(self.address)
                .await
                .map_err(|source| ServerError::Bind {
                    address: self.address,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(ServerError::Io)?;
        let heartbeat =
            tokio::spawn(Arc::clone(&self.shared.readiness).heartbeat(self.shared.engine.clone()));
        let pump = tokio::spawn(Arc::clone(&self.shared.events).pump(self.shared.engine.clone()));
        tracing::info!(tls = self.tls.is_some(), address = %local_addr, "weft server listening");
        Ok(Listening {
            router: self.router(),
            listener,
            tls: self.tls,
            local_addr,
            shared: self.shared,
            tasks: [heartbeat, pump],
        })
    }

    /// Binds and serves until SIGTERM or Ctrl-C, then shuts down gracefully (see
    /// [`Listening::serve_until`]).
    ///
    /// # Errors
    ///
    /// See [`Server::bind`] and [`Listening::serve_until`].
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping it stops serving at once, without the graceful drain.
    pub async fn serve(self) -> Result<(), ServerError> {
        let signal = shutdown_signal();
        self.bind().await?.serve_until(signal).await
    }
}

/// A bound server, not yet serving.
pub struct Listening {
    router: Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Listening {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then: `/ready` turns `503`, no new connection is
    /// accepted, event streams end, requests in flight get up to `Limits::shutdown_grace` to
    /// finish, and the engine shuts down (letting its current commit finish). Everything a
    /// `2xx` acknowledged is durable by then.
    ///
    /// # Errors
    ///
    /// [`ServerError::Io`] when accepting connections fails.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping it stops serving at once, without the graceful drain; the
    /// engine then stops when its last handle is dropped.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let shared = Arc::clone(&self.shared);
        let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
        let drain = {
            let shared = Arc::clone(&shared);
            async move {
                shutdown.await;
                tracing::info!("shutting down: draining requests in flight");
                shared.readiness.drain();
                shared.events.close();
                let _ = begun_tx.send(());
            }
        };
        // Without TCP_NODELAY an answer written in two segments waits for the client's delayed
        // ACK (~40 ms) under Nagle's algorithm: a request served in well under a millisecond
        // would take 40.
        let serving = match self.tls {
            Some(config) => {
                let listener = TlsListener::new(self.listener, config).map_err(ServerError::Io)?;
                let serving = axum::serve(listener, self.router).with_graceful_shutdown(drain);
                futures_util::future::Either::Left(serving.into_future())
            }
            None => {
                let listener = self.listener.tap_io(|tcp| {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
                    }
                });
                let serving = axum::serve(listener, self.router).with_graceful_shutdown(drain);
                futures_util::future::Either::Right(serving.into_future())
            }
        };
        let grace = shared.limits.shutdown_grace;
        let result = tokio::select! {
            result = serving => result.map_err(ServerError::Io),
            () = async {
                let _ = begun_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "requests still in flight after the grace period; stopping anyway");
                Ok(())
            }
        };
        // Awaited after the abort, so their engine handles are gone when this returns.
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        shared.engine.clone().shutdown().await;
        tracing::info!("server stopped");
        result
    }
}

/// A future that completes at SIGTERM or Ctrl-C (SIGINT). The handlers are installed when
/// this is called, not when the future is first polled, so a signal that arrives while the
/// server is still binding is not lost (nor does it kill the process before it drains).
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(terminate) => {}
                () = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        "no such route; see /v1/openapi.json",
    )
}

async fn method_not_allowed() -> axum::response::Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "route.method_not_allowed",
        "this route does not take that method; see /v1/openapi.json",
    )
    .into_response()
}
