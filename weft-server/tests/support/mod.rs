//! A real server on a loopback port, a real HTTP client, and small workflows to drive.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use weft_runtime::query::Query;
use weft_runtime::storage::MemoryStorage;
use weft_runtime::{
    Engine, ReviewOutcome, ReviewRequest, Signal, StartOptions, Update, WorkflowContext,
    WorkflowError, workflow,
};
use weft_server::{Limits, Server, ServerError, TokenSet};

pub const ADMIN: &str = "admin-token-0123456789";
pub const OPERATOR: &str = "operator-token-0123456789";
pub const WORKER: &str = "worker-token-0123456789";

/// Lets a parcel go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Signal, schemars::JsonSchema)]
pub struct Ship {
    pub carrier: String,
}

/// Waits for `Ship`, then says where it went.
#[workflow]
pub async fn parcel(ctx: &mut WorkflowContext, to: String) -> Result<String, WorkflowError> {
    let ship = ctx.wait_for_signal::<Ship>().await;
    Ok(format!("{to} by {}", ship.carrier))
}

/// Where a waiting parcel goes.
pub struct Destination;

impl Query for Destination {
    type Workflow = parcel;
    type Output = String;
    const NAME: &'static str = "destination";
    fn answer(state: &ParcelState) -> String {
        match state {
            ParcelState::AwaitSignalShip { to, .. } => to.clone(),
            _ => String::new(),
        }
    }
}

/// Asks a manager to review an expense.
#[workflow]
pub async fn expense(ctx: &mut WorkflowContext, who: String) -> Result<String, WorkflowError> {
    let outcome = ctx
        .review(ReviewRequest {
            title: format!("expense of {who}"),
            reviewers: vec!["manager".to_string()],
            timeout: Duration::from_secs(3600),
        })
        .await;
    // Used after the review, so the claimant is in the state at the review await: the
    // artifact the inbox shows its reviewers.
    let _claimant: String = who;
    match outcome {
        ReviewOutcome::Approved { by, .. } => {
            let by: String = by;
            Ok(format!("approved by {by}"))
        }
        ReviewOutcome::Rejected { by, .. } => {
            let by: String = by;
            Ok(format!("rejected by {by}"))
        }
        ReviewOutcome::TimedOut => Ok("expired".to_string()),
    }
}

/// Greets at once: no durable await.
#[workflow]
pub async fn hello(_ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    Ok(format!("hello, {name}"))
}

/// An update: adds to a tally; answered with the total so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Update)]
#[update(response = u64, name = "tally.add")]
pub struct Add {
    pub n: u64,
}

/// Adds up updates until the total reaches `target`.
#[workflow]
pub async fn tally(ctx: &mut WorkflowContext, target: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = 0;
    while total < target {
        let (add, reply) = ctx.wait_for_update::<Add>().await;
        total += add.n;
        ctx.respond(reply, total);
    }
    Ok(total)
}

/// Sends a parcel as a child workflow and says where it went once the child has.
#[workflow]
pub async fn dispatch(ctx: &mut WorkflowContext, to: String) -> Result<String, WorkflowError> {
    let sent = ctx.child(parcel, to).await?;
    Ok(format!("dispatched: {sent}"))
}

/// While set, `fragile` panics in its first step (and so parks).
pub static BREAK_FRAGILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Panics in its first step while `BREAK_FRAGILE` is set.
#[workflow]
pub async fn fragile(_ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    if BREAK_FRAGILE.load(std::sync::atomic::Ordering::SeqCst) {
        panic!("fragile is broken");
    }
    Ok(n + 1)
}

pub fn tokens() -> TokenSet {
    TokenSet::parse(&format!(
        "root admin {ADMIN}\nops operator {OPERATOR}\nrunner worker {WORKER}\n"
    ))
    .unwrap()
}

pub async fn engine() -> Engine {
    Engine::builder(MemoryStorage::new())
        .register::<parcel>()
        .register::<expense>()
        .register::<hello>()
        .register::<tally>()
        .register::<fragile>()
        .register::<dispatch>()
        .query::<Destination>()
        .build()
        .await
        .unwrap()
}

/// A server serving on a free loopback port, stopped (gracefully) on drop of `stop`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> TestServer {
        TestServer::configured(limits, None).await
    }

    /// A server whose `POST /v1/admin/backup` writes into `dir`.
    pub async fn with_backup_dir(dir: &std::path::Path) -> TestServer {
        TestServer::configured(Limits::default(), Some(dir)).await
    }

    /// A server over `engine` (built by the test, on storage it prepared).
    pub async fn with_engine(engine: Engine) -> TestServer {
        TestServer::over(engine, Limits::default(), None).await
    }

    async fn configured(limits: Limits, backup_dir: Option<&std::path::Path>) -> TestServer {
        TestServer::over(engine().await, limits, backup_dir).await
    }

    async fn over(
        engine: Engine,
        limits: Limits,
        backup_dir: Option<&std::path::Path>,
    ) -> TestServer {
        let mut builder = Server::builder(engine.clone())
            .address("127.0.0.1:0".parse().unwrap())
            .tokens(tokens())
            .limits(limits)
            .probe_interval(Duration::from_millis(50));
        if let Some(dir) = backup_dir {
            builder = builder.backup_dir(dir);
        }
        let listening = builder.build().unwrap().bind().await.unwrap();
        let addr = listening.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listening.serve_until(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            engine,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path, token)
    }

    pub fn post(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path, token)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Starts a parcel (typed, through the engine) that waits for its signal.
    pub async fn parcel(&self, id: &str, to: &str) {
        self.engine
            .start_with::<parcel>(
                to.to_string(),
                StartOptions {
                    id: Some(id.to_string()),
                    ..StartOptions::default()
                },
            )
            .await
            .unwrap();
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Waits until `check` holds, polling; fails after 10 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One Server-Sent Event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// Reads Server-Sent Events from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, skipping keep-alive comments; `None` when the stream ended. Fails after
    /// 10 s without one.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    id: None,
                    event: "message".into(),
                    data: serde_json::Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        sse.id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        sse.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && sse.id.is_none() {
                    continue;
                }
                sse.data = serde_json::from_str(&data).unwrap();
                return Some(sse);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("no event within 10 s")
                .unwrap();
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }
}
