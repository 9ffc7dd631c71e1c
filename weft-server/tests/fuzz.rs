//! A seeded fuzz of the HTTP surface: random and mutated methods, paths, queries, headers and
//! bodies, spread over every route. No answer may be a 5xx other than a 503 from a limit, the
//! server must keep answering, and every stored workflow must still read back afterwards.
//!
//! `WEFT_FUZZ_REQUESTS` sets the number of requests (default 100,000 in CI, where `CI` is set,
//! and 10,000 in a developer's `cargo test`, to keep it quick on a shared machine) and
//! `WEFT_FUZZ_SEED` the seed (default 1); a failure prints the seed and the request that failed.
//!
//! Admin tokens are among the ones tried, so bulk cancels and purges may empty the store: what
//! is checked afterwards is that whatever is left reads back whole.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Method, StatusCode};
use support::*;
use weft_runtime::ListFilter;

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

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const IDS: &[&str] = &[
    "fuzz-0",
    "fuzz-1",
    "e-0",
    "missing",
    "",
    "%00",
    "%2e%2e",
    "a%2Fb",
    "%FF%FE",
    "..",
    "caf%C3%A9",
    "x%20y",
    "count",
];

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];

const QUERY_KEYS: &[&str] = &[
    "status",
    "type",
    "id_prefix",
    "page_size",
    "cursor",
    "group_by",
    "attr.customer",
    "attr_int.total",
    "attr_time_ms.at",
    "created_after_ms",
    "reviewer",
    "after",
    "target",
    "wait_ms",
    "bogus",
];

const QUERY_VALUES: &[&str] = &[
    "waiting",
    "parcel",
    "1",
    "0",
    "-1",
    "18446744073709551616",
    "99999999999999999999999",
    "zz",
    "abcd",
    "attribute:",
    "attribute:customer",
    "%00",
    "%FF",
    "",
    "type",
];

const BODIES: &[&str] = &[
    r#"{"decision":"approve","comment":"ok"}"#,
    r#"{"type":"parcel","input":"Lyon"}"#,
    r#"{"type":"hello","input":"ada","wait_ms":20}"#,
    r#"{"type":"tally","input":3,"id":"fuzz-t","idempotency_key":"k"}"#,
    r#"{"payload":{"carrier":"rail"},"signal_id":"s"}"#,
    r#"{"request":{"n":1},"update_id":"u","wait_ms":20}"#,
    r#"{"filter":{"id_prefix":"fuzz-"},"signal":"Ship","payload":{"carrier":"air"},"dry_run":true}"#,
    r#"{"decision":"reject"}"#,
    r#"{"filter":{"id_prefix":"none-"},"dry_run":true}"#,
    r#"{"filter":{"status":"completed","type":"parcel"},"limit":2}"#,
    r#"{"filter":{"attributes":{"customer":"ada","total":3,"at":{"time_ms":5}}},"dry_run":true}"#,
    r#"{"dry_run":true,"limit":0}"#,
    // Schedules: yearly, so that mutations stay sparse; ids the paths use too.
    r#"{"id":"fuzz-0","type":"hello","input":"ada","cron":"0 0 1 1 *","time_zone":"Europe/Berlin"}"#,
    r#"{"id":"fuzz-1","type":"hello","input":"bob","every_ms":31536000000,"overlap":"buffer_all","max_runs":5}"#,
    r#"{"type":"hello","input":"eve","cron":"0 0 1 1 *","overlap":"cancel_previous"}"#,
    r#"{"note":"maintenance"}"#,
    r#"{"from_ms":0,"to_ms":94608000000}"#,
    "{}",
    "[]",
    "null",
    "",
    "\"text\"",
    "{\"filter\":",
];

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Flips, deletes or inserts bytes of `body`, or nests it deeply.
fn mutate(rng: &mut Rng, body: &str) -> Vec<u8> {
    let mut bytes = body.as_bytes().to_vec();
    match rng.below(6) {
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
            let depth = 1 + rng.below(2_000);
            bytes = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
        }
        4 => {
            let len = rng.below(256);
            bytes = random_bytes(rng, len);
        }
        _ => {}
    }
    bytes
}

fn path(rng: &mut Rng, templates: &[(Method, String)]) -> (Method, String) {
    let (method, template) = rng.pick(templates).clone();
    let method = if rng.chance(10) {
        Method::from_bytes(rng.word(METHODS).as_bytes()).unwrap()
    } else {
        method
    };
    let mut path = template.replace("{id}", rng.word(IDS)).replace(
        "{name}",
        rng.word(&["destination", "Ship", "tally.add", "nope", "%00"]),
    );
    if rng.chance(5) {
        path = format!(
            "/v1/{}",
            rng.word(&[
                "workflows/a/b/c",
                "nothing",
                "workflows//cancel",
                "%",
                "bulk"
            ])
        );
    }
    if rng.chance(40) {
        let mut query = Vec::new();
        for _ in 0..1 + rng.below(3) {
            query.push(format!(
                "{}={}",
                rng.word(QUERY_KEYS),
                rng.word(QUERY_VALUES)
            ));
        }
        path = format!("{path}?{}", query.join("&"));
    }
    (method, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_never_break_the_server_or_its_workflows() {
    let requests: u64 = std::env::var("WEFT_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var_os("CI").is_some() {
            100_000
        } else {
            10_000
        });
    let seed: u64 = std::env::var("WEFT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let server = Arc::new(TestServer::start().await);
    for i in 0..2 {
        server.parcel(&format!("fuzz-{i}"), "Lyon").await;
    }
    server
        .engine
        .start_with::<expense>(
            "ada".into(),
            weft_runtime::StartOptions {
                id: Some("e-0".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let doc: serde_json::Value = server
        .get("/v1/openapi.json", Some(ADMIN))
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
    let templates = Arc::new(templates);
    let sent = Arc::new(AtomicU64::new(0));
    let workers = 16;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (server, templates, sent) = (
                Arc::clone(&server),
                Arc::clone(&templates),
                Arc::clone(&sent),
            );
            tokio::spawn(async move {
                let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (worker + 1));
                let http = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(30))
                    .build()
                    .unwrap();
                for _ in 0..requests / workers {
                    let (method, path) = path(&mut rng, &templates);
                    let mut request = http.request(method.clone(), server.url(&path));
                    match rng.below(6) {
                        0 => {}
                        1 => request = request.header("Authorization", "Bearer wrong-token"),
                        2 => request = request.header("Authorization", "Basic YWRhOmFkYQ=="),
                        3 => request = request.bearer_auth(WORKER),
                        4 => request = request.bearer_auth(OPERATOR),
                        _ => request = request.bearer_auth(ADMIN),
                    }
                    if rng.chance(10) {
                        request = request.header(
                            "Last-Event-ID",
                            rng.word(&["1", "0", "-5", "x", "99999999999999999999"]),
                        );
                    }
                    if rng.chance(10) {
                        request = request.header(
                            "Content-Type",
                            rng.word(&["text/plain", "application/json", "x/y"]),
                        );
                    }
                    if method != Method::GET && method != Method::HEAD {
                        let base = rng.word(BODIES);
                        let body = mutate(&mut rng, base);
                        request = request.body(body);
                    }
                    let response = request.send().await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    let response = match response {
                        Ok(response) => response,
                        Err(e) => panic!("seed {seed}: {method} {path}: no answer: {e}"),
                    };
                    let status = response.status();
                    assert!(
                        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                        "seed {seed}: {method} {path}: {status}: {:?}",
                        response.text().await
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(sent.load(Ordering::Relaxed), requests / workers * workers);
    // Still serving, and every stored workflow reads back.
    let health = server.get("/health", None).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let page = server
        .engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    let counted: u64 = server
        .engine
        .count(&ListFilter::default(), weft_runtime::GroupBy::Status)
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(counted, page.items.len() as u64);
    for item in page.items {
        let d = server.engine.describe(&item.id).await.unwrap();
        assert!(d.park_reason.is_none(), "{d:?}");
    }
}
