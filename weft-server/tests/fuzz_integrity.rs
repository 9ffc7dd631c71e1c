//! A seeded fuzz of the HTTP surface that checks what it must not touch is untouched.
//!
//! Two sets of workflows live in one server: a kept set (`keep-*`: waiting on a signal, waiting
//! on a review, completed, cancelled) and the fuzz's own set (`fz-*`). Requests that can read
//! (GET and HEAD) name either set, with any token; requests that could write name only the fuzz's
//! set (or ids that exist nowhere) and carry no admin token, so no bulk operation runs (those
//! are exercised, with admin tokens, by `fuzz.rs` on a server of their own). Paths, query
//! strings, headers and bodies are random or mutated from valid ones; the routes come from the
//! server's own `GET /v1/openapi.json`.
//!
//! Afterwards: no answer was a 5xx other than a 503 from a limit (a panic in a handler would be
//! a 500), every request got an answer, `/health` and `/ready` answer `200`, every kept
//! workflow describes exactly as before (same status, step, state, pending command and
//! `updated_at`, which any write would move), and every workflow of the fuzz's set still reads
//! back unparked.
//!
//! `WEFT_FUZZ_REQUESTS` sets the number of requests (default 50,000 in CI, where `CI` is set,
//! which with `fuzz.rs`'s 100,000 makes 150,000; 10,000 in a developer's `cargo test`),
//! `WEFT_FUZZ_SEED` the seed (default 7). The run is bounded: it fails, rather than hangs, when
//! it takes longer than `WEFT_FUZZ_SECONDS` (default 600). A failure prints the seed and the
//! request.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use support::*;
use weft_runtime::engine::WorkflowDescription;
use weft_runtime::{ListFilter, StartOptions};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn word<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The kept workflows: reads may name them, writes never.
const KEPT: &[&str] = &[
    "keep-0",
    "keep-1",
    "keep-review",
    "keep-done",
    "keep-cancelled",
];

/// Ids a write may name: the fuzz's own workflows, ids that exist nowhere, and odd encodings.
const WRITABLE: &[&str] = &[
    "fz-0",
    "fz-1",
    "fz-2",
    "fz-review",
    "fz-new",
    "nowhere",
    "",
    "%00",
    "%2e%2e",
    "fz%2F0",
    "%FF%FE",
    "..",
    "fz-%C3%A9",
    "fz%20x",
    "count",
];

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];

const NAMES: &[&str] = &["destination", "Ship", "ship", "nope", "%00", "go"];

const QUERY_KEYS: &[&str] = &[
    "status",
    "type",
    "id_prefix",
    "page_size",
    "cursor",
    "group_by",
    "attr.customer",
    "attr_int.total",
    "created_after_ms",
    "reviewer",
    "wait_ms",
    "dry_run",
    "",
    "status[]",
];

const QUERY_VALUES: &[&str] = &[
    "waiting",
    "completed",
    "parcel",
    "expense",
    "1",
    "0",
    "-1",
    "1e3",
    "18446744073709551616",
    "zz",
    "abcd",
    "%00",
    "%FF",
    "",
    "keep-",
    "true",
];

/// Valid and nearly valid bodies of the routes that take one; ids are the fuzz's own.
const BODIES: &[&str] = &[
    r#"{"decision":"approve","comment":"ok"}"#,
    r#"{"decision":"reject","comment":""}"#,
    r#"{"type":"parcel","input":"Lyon","id":"fz-new"}"#,
    r#"{"type":"parcel","input":"Lyon","id":"fz-0","idempotency_key":"k"}"#,
    r#"{"type":"expense","input":"ada","wait_ms":5}"#,
    r#"{"type":"parcel","input":7}"#,
    r#"{"type":"nope","input":null}"#,
    r#"{"signal":{"carrier":"post"},"signal_id":"s-1"}"#,
    r#"{"carrier":"post"}"#,
    r#"{"update":{},"wait_ms":1}"#,
    r#"{"filter":{"id_prefix":"fz-"},"dry_run":true}"#,
    r#"{"filter":{"status":"waiting","type":"parcel","id_prefix":"fz-"},"limit":1}"#,
    "{}",
    "[]",
    "null",
    "",
    "\"text\"",
    "{\"type\":",
    "{\"a\":1,\"a\":2}",
    "1e999999",
];

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Flips, deletes, duplicates or inserts bytes of `body`, nests it deeply, or replaces it.
fn mutate(rng: &mut Rng, body: &str) -> Vec<u8> {
    let mut bytes = body.as_bytes().to_vec();
    match rng.below(8) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] = rng.next() as u8;
        }
        1 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes.truncate(at);
        }
        2 => {
            let at = rng.below(bytes.len() + 1);
            let len = 1 + rng.below(8);
            let junk = random_bytes(rng, len);
            bytes.splice(at..at, junk);
        }
        3 => {
            let depth = 1 + rng.below(5_000);
            let open = rng.word(&["[", "{\"a\":"]);
            let close = if open == "[" { "]" } else { "}" };
            bytes = format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes();
        }
        4 => {
            let len = rng.below(512);
            bytes = random_bytes(rng, len);
        }
        5 if !bytes.is_empty() => {
            // A slice of itself spliced in elsewhere: keys and values out of place.
            let (a, b) = (rng.below(bytes.len()), rng.below(bytes.len()));
            let piece = bytes[a.min(b)..a.max(b)].to_vec();
            let at = rng.below(bytes.len() + 1);
            bytes.splice(at..at, piece);
        }
        6 => {
            // A long string value; the longest are over the 1 MiB body limit.
            let len = rng.word(&["1000", "60000", "1100000"]).parse().unwrap();
            bytes = format!("{{\"input\":\"{}\"}}", "x".repeat(len)).into_bytes();
        }
        _ => {}
    }
    bytes
}

/// Percent-encodes every byte, so any byte can reach the server inside a path or query.
fn encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A request: method, path with query, and whether it may only read.
fn target(rng: &mut Rng, templates: &[(Method, String)]) -> (Method, String) {
    let (mut method, template) = templates[rng.below(templates.len())].clone();
    if rng.chance(10) {
        method = Method::from_bytes(rng.word(METHODS).as_bytes()).unwrap();
    }
    let reads = method == Method::GET || method == Method::HEAD;
    let id = if reads && rng.chance(50) {
        rng.word(KEPT).to_string()
    } else if rng.chance(5) {
        let len = rng.below(24);
        format!("fz-{}", encoded(&random_bytes(rng, len)))
    } else {
        rng.word(WRITABLE).to_string()
    };
    let mut path = template
        .replace("{id}", &id)
        .replace("{name}", rng.word(NAMES));
    match rng.below(20) {
        0 => path.push('/'),
        1 => path = path.replacen("/v1/", "/v1//", 1),
        2 => path.push_str(&format!("/{}", "a".repeat(rng.below(4_000)))),
        3 => path = path.to_uppercase(),
        _ => {}
    }
    if rng.chance(40) {
        let mut query = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let key = rng.word(QUERY_KEYS);
            let value = if rng.chance(10) {
                let len = rng.below(16);
                encoded(&random_bytes(rng, len))
            } else {
                rng.word(QUERY_VALUES).to_string()
            };
            query.push(match rng.below(10) {
                0 => key.to_string(),
                _ => format!("{key}={value}"),
            });
        }
        path = format!("{path}?{}", query.join("&"));
    }
    (method, path)
}

/// Every kept workflow's description, by id.
async fn describe_kept(server: &TestServer) -> Vec<WorkflowDescription> {
    let mut all = Vec::new();
    for id in KEPT {
        all.push(server.engine.describe(id).await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_requests_leave_the_workflows_they_may_not_touch_as_they_were() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let requests = env("WEFT_FUZZ_REQUESTS").unwrap_or(if std::env::var_os("CI").is_some() {
        50_000
    } else {
        10_000
    });
    let seed = env("WEFT_FUZZ_SEED").unwrap_or(7);
    let bound = Duration::from_secs(env("WEFT_FUZZ_SECONDS").unwrap_or(600));
    let server = Arc::new(TestServer::start().await);

    let start = |id: &'static str| StartOptions {
        id: Some(id.to_string()),
        ..StartOptions::default()
    };
    for id in ["keep-0", "keep-1", "keep-done", "keep-cancelled"] {
        server.parcel(id, "Lyon").await;
    }
    for id in ["fz-0", "fz-1", "fz-2"] {
        server.parcel(id, "Nantes").await;
    }
    for id in ["keep-review", "fz-review"] {
        server
            .engine
            .start_with::<expense>("ada".into(), start(id))
            .await
            .unwrap();
    }
    server
        .engine
        .signal(
            "keep-done",
            Ship {
                carrier: "post".into(),
            },
        )
        .await
        .unwrap();
    server.engine.cancel("keep-cancelled").await.unwrap();
    // The kept set settles (the review opened, the signal and the cancel consumed) first.
    eventually(|| {
        let server = Arc::clone(&server);
        async move {
            let d = describe_kept(&server).await;
            d[2].pending.is_some() && d[3].status.is_terminal() && d[4].status.is_terminal()
        }
    })
    .await;
    let before = describe_kept(&server).await;

    let doc: serde_json::Value = server
        .get("/v1/openapi.json", Some(OPERATOR))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut templates = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            templates.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path.clone(),
            ));
        }
    }
    assert!(
        templates.len() >= 10,
        "too few routes documented: {templates:?}"
    );
    let templates = Arc::new(templates);

    let sent = Arc::new(AtomicU64::new(0));
    let workers = 16u64;
    let run = {
        let (server, templates, sent) = (
            Arc::clone(&server),
            Arc::clone(&templates),
            Arc::clone(&sent),
        );
        async move {
            let tasks: Vec<_> = (0..workers)
                .map(|worker| {
                    let (server, templates, sent) = (
                        Arc::clone(&server),
                        Arc::clone(&templates),
                        Arc::clone(&sent),
                    );
                    tokio::spawn(async move {
                        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (worker + 1));
                        let client = |pooled: bool| {
                            reqwest::Client::builder()
                                .timeout(Duration::from_secs(30))
                                .pool_max_idle_per_host(if pooled { usize::MAX } else { 0 })
                                .build()
                                .unwrap()
                        };
                        let http = [client(true), client(false)];
                        for _ in 0..requests / workers {
                            fuzz_one(&mut rng, &http, &server, &templates, seed).await;
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    if tokio::time::timeout(bound, run).await.is_err() {
        panic!(
            "seed {seed}: the fuzz did not finish within {bound:?} ({} of {requests} requests sent)",
            sent.load(Ordering::Relaxed)
        );
    }
    assert_eq!(sent.load(Ordering::Relaxed), requests / workers * workers);

    for path in ["/health", "/ready"] {
        let status = server.get(path, None).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{path} after the fuzz");
    }
    assert_eq!(
        describe_kept(&server).await,
        before,
        "seed {seed}: a kept workflow changed"
    );
    // The fuzz's own workflows (and any it started) may have moved on, but all read back.
    let page = server
        .engine
        .list(&ListFilter::default(), 1_000, None)
        .await
        .unwrap();
    assert!(page.items.len() >= KEPT.len() + 4);
    for item in page.items {
        let d = server.engine.describe(&item.id).await.unwrap();
        assert!(d.park_reason.is_none(), "seed {seed}: {d:?}");
    }
    // And the server still does real work: the kept review can be decided through it.
    let decided = server
        .post("/v1/workflows/keep-review/review", Some(OPERATOR))
        .json(&serde_json::json!({"decision": "approve", "comment": "after the fuzz"}))
        .send()
        .await
        .unwrap();
    assert!(decided.status().is_success(), "{:?}", decided.text().await);
}

/// Sends one fuzzed request and checks its answer.
async fn fuzz_one(
    rng: &mut Rng,
    http: &[reqwest::Client; 2],
    server: &TestServer,
    templates: &[(Method, String)],
    seed: u64,
) {
    let (method, path) = target(rng, templates);
    let reads = method == Method::GET || method == Method::HEAD;
    let body = (!reads).then(|| {
        let base = rng.word(BODIES);
        mutate(rng, base)
    });
    // A server may answer a request before reading all its body (a 401, a 413) and close the
    // connection; a long body goes on a connection of its own, so that close hits no other
    // request, and the client may see its write cut off.
    let long = body.as_ref().is_some_and(|b| b.len() > 16 * 1024);
    let mut request = http[usize::from(long)].request(method.clone(), server.url(&path));
    let tokens = if reads { 7 } else { 6 };
    match rng.below(tokens) {
        0 => {}
        1 => request = request.header("Authorization", "Bearer wrong-token"),
        2 => request = request.header("Authorization", "Basic YWRhOmFkYQ=="),
        3 => request = request.header("Authorization", format!("Bearer {OPERATOR}x")),
        4 => request = request.bearer_auth(WORKER),
        5 => request = request.bearer_auth(OPERATOR),
        _ => request = request.bearer_auth(ADMIN),
    }
    for _ in 0..rng.below(3) {
        let (name, value) = match rng.below(6) {
            0 => (
                "Last-Event-ID",
                rng.word(&["1", "0", "-5", "x", "99999999999999999999"])
                    .to_string(),
            ),
            1 => (
                "Content-Type",
                rng.word(&[
                    "text/plain",
                    "application/json",
                    "application/json; charset=latin1",
                    "x/y",
                    "",
                ])
                .to_string(),
            ),
            2 => (
                "Accept",
                rng.word(&["text/event-stream", "*/*", "x"]).to_string(),
            ),
            3 => ("X-Junk", "v".repeat(rng.below(16_000))),
            4 => (
                "Content-Encoding",
                rng.word(&["gzip", "br", "identity"]).to_string(),
            ),
            _ => (
                "Authorization",
                rng.word(&["Bearer", "Bearer ", "bearer x", ""]).to_string(),
            ),
        };
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if long && format!("{e:?}").contains("BodyWrite") => return,
        Err(e) => panic!(
            "seed {seed}: {method} {path}: no answer: {:?}",
            std::error::Error::source(&e)
        ),
    };
    let status = response.status();
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "seed {seed}: {method} {path}: {status}: {:?}",
        response.text().await
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let body = response.text().await.unwrap_or_default();
        let code =
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["code"].clone();
        assert!(
            [
                "server.overloaded",
                "server.timeout",
                "server.too_many_streams"
            ]
            .iter()
            .any(|limit| code == *limit),
            "seed {seed}: {method} {path}: a 503 not from a limit: {body}"
        );
    }
}
