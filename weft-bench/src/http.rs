//! HTTP: W(N, K) through `weft-server`, paired round by round with Restate's ingress.
//!
//! The server runs in a child process (`weft-bench http-server`: this binary, serving the
//! benchmark workflows on a fresh redb store with an operator token), and this process is the
//! load generator: C tasks share one HTTP/1.1 keep-alive connection pool, and each starts a
//! workflow (`POST /v1/workflows`), then waits for its result
//! (`GET /v1/workflows/{id}/result?wait_ms=…`), checking it returned K. Restate's driver does
//! the same through its ingress (one blocking call per workflow), so both sides pay for HTTP,
//! JSON and a separate client process. The embedded engine runs the same workload in each
//! round, which gives the cost of the HTTP layer.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_runtime::Engine;
use weft_runtime::storage::RedbStorage;
use weft_server::{Limits, Role, Server, TokenSet};

use crate::BenchResult;
use crate::report::{Table, median, ms, percentile};
use crate::versus::{self, Variant};
use crate::workload::steps;

/// The environment variable the parent passes the operator token in (never the command line).
const TOKEN_ENV: &str = "WEFT_BENCH_TOKEN";

/// The longest wait one result request asks for; the client asks again on a `202`.
const WAIT_MS: u64 = 20_000;

/// How the client waits for a workflow's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /v1/workflows`, then `GET /v1/workflows/{id}/result?wait_ms=…`: two requests.
    StartThenResult,
    /// `POST /v1/workflows` with `wait_ms`: one request, as Restate's blocking ingress call.
    StartAndWait,
}

impl Call {
    /// Parses `two` or `one`.
    pub fn parse(name: &str) -> Result<Call, String> {
        match name {
            "two" => Ok(Call::StartThenResult),
            "one" => Ok(Call::StartAndWait),
            other => Err(format!(
                "`--call` is `two` (start, then result) or `one` (start and wait), not `{other}`"
            )),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Call::StartThenResult => "start, then result",
            Call::StartAndWait => "start and wait, one request",
        }
    }
}

/// The `http-server` subcommand: serves the benchmark workflows on a fresh store at `store`
/// on a free loopback port, prints `listening ADDRESS` on stdout, and serves until its stdin
/// closes (so it cannot outlive the load process that started it), then drains and exits.
pub async fn server_main(store: &Path) -> BenchResult<()> {
    let token = std::env::var(TOKEN_ENV)
        .map_err(|_| format!("http-server needs the operator token in {TOKEN_ENV}"))?;
    let storage = Arc::new(RedbStorage::create(store)?);
    let engine = Engine::builder(storage).register::<steps>().build().await?;
    let mut tokens = TokenSet::new();
    tokens.add("weft-bench", Role::Operator, &token)?;
    let listening = Server::builder(engine)
        .address(SocketAddr::from(([127, 0, 0, 1], 0)))
        .tokens(tokens)
        .limits(Limits {
            max_wait: Duration::from_millis(WAIT_MS),
            ..Limits::default()
        })
        .build()?
        .bind()
        .await?;
    println!("listening {}", listening.local_addr());
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        })
        .await;
    };
    listening.serve_until(stdin_closed).await?;
    Ok(())
}

/// A `weft-bench http-server` child process on a fresh store; stopped (drained) on
/// [`ServerProcess::stop`], killed if dropped before.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    _store: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the child and waits until it listens.
    fn spawn(dir: &Path, token: &str) -> BenchResult<ServerProcess> {
        let store = tempfile::tempdir_in(dir)?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("http-server")
            .arg("--store")
            .arg(store.path().join("http.redb"))
            .env(TOKEN_ENV, token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the server's stdout is not piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = match line.trim().strip_prefix("listening ") {
            Some(addr) => addr.parse()?,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the server did not start (it printed {line:?})").into());
            }
        };
        Ok(ServerProcess {
            child,
            addr,
            _store: store,
        })
    }

    /// Closes its stdin, which makes it drain and exit; kills it after 30 s.
    fn stop(mut self) -> BenchResult<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the server exited with {status}").into())
                };
            }
            if Instant::now() > deadline {
                return Err("the server did not stop within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP/1.1 keep-alive client of one server.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: Arc<str>,
}

impl Client {
    fn new(addr: SocketAddr, token: &str, c: u64) -> BenchResult<Client> {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(c as usize)
            .tcp_nodelay(true)
            .timeout(Duration::from_millis(WAIT_MS + 10_000))
            .build()?;
        Ok(Client {
            http,
            base: format!("http://{addr}"),
            token: token.into(),
        })
    }

    /// Runs one workflow of `k` steps to its end; returns its end-to-end time in ms.
    async fn one(&self, k: u64, call: Call) -> BenchResult<f64> {
        let t = Instant::now();
        let wait = match call {
            Call::StartThenResult => String::new(),
            Call::StartAndWait => format!(",\"wait_ms\":{WAIT_MS}"),
        };
        let body = format!("{{\"type\":\"steps\",\"input\":{{\"k\":{k},\"pad\":0}}{wait}}}");
        let started = self
            .send(
                self.http
                    .post(format!("{}/v1/workflows", self.base))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await?;
        let mut result = match call {
            Call::StartAndWait => started["result"].clone(),
            Call::StartThenResult => serde_json::Value::Null,
        };
        while result["finished"] != serde_json::Value::Bool(true) {
            let id = started["id"]
                .as_str()
                .ok_or_else(|| format!("a start answered without an id: {started}"))?;
            result = self
                .send(
                    self.http
                        .get(format!("{}/v1/workflows/{id}/result", self.base))
                        .query(&[("wait_ms", WAIT_MS)]),
                )
                .await?;
        }
        if result["output"] != serde_json::json!(k) {
            return Err(format!("workflow answered {result}, expected output {k}").into());
        }
        Ok(ms(t.elapsed()))
    }

    /// Sends with the token; a 2xx answer's JSON, or the error it answered.
    async fn send(&self, request: reqwest::RequestBuilder) -> BenchResult<serde_json::Value> {
        let response = request.bearer_auth(&*self.token).send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)).into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Runs `n` workflows with at most `c` in flight; returns each one's time in ms.
    async fn run_n(&self, n: u64, k: u64, c: u64, call: Call) -> BenchResult<Vec<f64>> {
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..c.min(n.max(1)))
            .map(|_| {
                let (client, next) = (self.clone(), Arc::clone(&next));
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        latencies.push(client.one(k, call).await?);
                    }
                    BenchResult::Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n as usize);
        for task in tasks {
            all.extend(task.await??);
        }
        Ok(all)
    }
}

/// What one HTTP run measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Workflows finished per second, C in flight.
    pub workflows_per_s: f64,
    /// End-to-end time of one workflow under load, p50, ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
}

/// The token of a run: fresh per process, so nothing guessable is ever served.
fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("weft-bench-{}-{nanos:x}", std::process::id())
}

/// One throughput run through a fresh server process: warm-up, then N workflows, C in flight.
pub async fn throughput_once(
    dir: &Path,
    n: u64,
    k: u64,
    c: u64,
    call: Call,
) -> BenchResult<Figures> {
    let token = token();
    let server = ServerProcess::spawn(dir, &token)?;
    let client = Client::new(server.addr, &token, c)?;
    client.run_n(crate::throughput::WARMUP, k, c, call).await?;
    crate::report::settle_io();
    let t = Instant::now();
    let latencies = client.run_n(n, k, c, call).await?;
    let secs = t.elapsed().as_secs_f64();
    drop(client);
    server.stop()?;
    Ok(Figures {
        workflows_per_s: n as f64 / secs,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}

/// One latency run through a fresh server process: `runs` workflows one after another;
/// returns their p50 and p99 in ms.
pub async fn latency_once(dir: &Path, k: u64, runs: u64, call: Call) -> BenchResult<(f64, f64)> {
    let token = token();
    let server = ServerProcess::spawn(dir, &token)?;
    let client = Client::new(server.addr, &token, 1)?;
    client.run_n(crate::throughput::WARMUP, k, 1, call).await?;
    crate::report::settle_io();
    let latencies = client.run_n(runs, k, 1, call).await?;
    drop(client);
    server.stop()?;
    Ok((percentile(&latencies, 50.0), percentile(&latencies, 99.0)))
}

/// What the scenario runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Workflows per throughput run.
    pub n: u64,
    /// Steps per workflow.
    pub k: u64,
    /// Workflows in flight.
    pub c: u64,
    /// Workflows one after another in a latency run.
    pub runs: u64,
    /// Rounds; each runs every side once.
    pub rounds: usize,
    /// How the client waits for results.
    pub call: Call,
    /// The Restate variant to pair with, or none.
    pub peer: Option<Variant>,
}

/// Per round: Restate, weft through HTTP and weft embedded on W(N, K) at C (the order rotates
/// each round), then one workflow alone through HTTP and embedded. Returns the throughput
/// table and the latency table.
pub async fn run(dir: &Path, peers_dir: &Path, plan: &Plan) -> BenchResult<(Table, Table)> {
    let (n, k, c) = (plan.n, plan.k, plan.c);
    let peer = plan.peer.map(|mut v: Variant| {
        (v.n, v.k, v.c) = (n, k, c);
        v
    });
    let (mut restate, mut http, mut embedded) = (Vec::new(), Vec::new(), Vec::new());
    let (mut http_alone, mut embedded_alone) = (Vec::new(), Vec::new());
    for round in 1..=plan.rounds {
        for side in 0..3 {
            match (side + round) % 3 {
                0 => {
                    if let Some(v) = peer {
                        restate.push(versus::run_peer(peers_dir, v).await?);
                    }
                }
                1 => http.push(throughput_once(dir, n, k, c, plan.call).await?),
                _ => embedded.push(crate::throughput::once(dir, n, k, c, 0).await?),
            }
            crate::report::settle_io();
        }
        http_alone.push(latency_once(dir, k, plan.runs, plan.call).await?);
        embedded_alone.push(crate::latency::once(dir, k, plan.runs, 0).await?);
        let (h, e) = (http[round - 1], &embedded[round - 1]);
        eprintln!(
            "http round {round}: restate {} wf/s, weft http {:.0} wf/s (p50 {:.2} ms), embedded {:.0} wf/s; alone: http p50 {:.2} ms, embedded p50 {:.2} ms",
            restate
                .get(round - 1)
                .map_or("–".to_string(), |r| format!("{r:.1}")),
            h.workflows_per_s,
            h.p50_ms,
            e.workflows_per_s,
            http_alone[round - 1].0,
            embedded_alone[round - 1].e2e_p50,
        );
    }
    let ratio = |a: &[f64], b: &[f64]| -> Vec<f64> {
        if a.len() == b.len() {
            a.iter().zip(b).map(|(a, b)| a / b).collect()
        } else {
            vec![f64::NAN]
        }
    };
    let http_wfs: Vec<f64> = http.iter().map(|f| f.workflows_per_s).collect();
    let embedded_wfs: Vec<f64> = embedded.iter().map(|f| f.workflows_per_s).collect();
    let or_dash = |v: Vec<f64>| if v.is_empty() { vec![f64::NAN] } else { v };
    let mut throughput = Table::new(
        &format!(
            "Through HTTP: W(N={n}, K={k}), C={c}, a separate load process over HTTP/1.1 keep-alive ({}); per round Restate's ingress, weft-server and the embedded engine back to back (rounds: {}; median and range of the rounds)",
            plan.call.label(),
            plan.rounds
        ),
        &[
            ("workflows/s", 0),
            ("workflow p50 ms", 2),
            ("workflow p99 ms", 2),
            ("weft-server / this, per round", 1),
        ],
    );
    if let Some(v) = peer {
        throughput.row(
            format!("Restate {} (ingress)", v.name),
            vec![
                or_dash(restate.clone()),
                vec![f64::NAN],
                vec![f64::NAN],
                ratio(&http_wfs, &restate),
            ],
        );
    }
    throughput.row(
        "weft-server (HTTP)",
        vec![
            http_wfs.clone(),
            http.iter().map(|f| f.p50_ms).collect(),
            http.iter().map(|f| f.p99_ms).collect(),
            vec![1.0],
        ],
    );
    throughput.row(
        "weft embedded (same process)",
        vec![
            embedded_wfs.clone(),
            embedded.iter().map(|f| f.p50_ms).collect(),
            embedded.iter().map(|f| f.p99_ms).collect(),
            ratio(&http_wfs, &embedded_wfs),
        ],
    );
    let mut latency = Table::new(
        &format!(
            "Through HTTP: one workflow of K={k} steps alone, {} runs per round ({})",
            plan.runs,
            plan.call.label()
        ),
        &[
            ("workflow p50 ms", 2),
            ("workflow p99 ms", 2),
            ("HTTP cost, p50 ms", 2),
        ],
    );
    let http_p50: Vec<f64> = http_alone.iter().map(|l| l.0).collect();
    let embedded_p50: Vec<f64> = embedded_alone.iter().map(|f| f.e2e_p50).collect();
    latency.row(
        "weft-server (HTTP)",
        vec![
            http_p50.clone(),
            http_alone.iter().map(|l| l.1).collect(),
            http_p50
                .iter()
                .zip(&embedded_p50)
                .map(|(h, e)| h - e)
                .collect(),
        ],
    );
    latency.row(
        "weft embedded (same process)",
        vec![
            embedded_p50,
            embedded_alone.iter().map(|f| f.e2e_p99).collect(),
            vec![0.0],
        ],
    );
    if !restate.is_empty() {
        eprintln!(
            "http: weft-server / Restate, median of per-round ratios: {:.1}×",
            median(&ratio(&http_wfs, &restate))
        );
    }
    Ok((throughput, latency))
}
