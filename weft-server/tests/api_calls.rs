//! Calls by name with JSON over HTTP: start (and start-and-wait), result with a wait, signal,
//! update, bulk signal; their errors; and a client that disconnects mid-request losing nothing.

mod support;

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_signal_and_result_by_name() {
    let server = TestServer::start().await;
    let (status, started) = json_of(
        server
            .post("/v1/workflows", Some(OPERATOR))
            .json(&json!({"type": "parcel", "input": "Lyon", "id": "p-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["id"], "p-1");
    // Not finished: the wait runs out and the answer says where it stands.
    let (status, pending) = json_of(
        server
            .get("/v1/workflows/p-1/result?wait_ms=50", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (pending["status"].clone(), pending["finished"].clone()),
        (json!("waiting"), json!(false))
    );
    let (status, sent) = json_of(
        server
            .post("/v1/workflows/p-1/signals/Ship", Some(OPERATOR))
            .json(&json!({"payload": {"carrier": "rail"}, "signal_id": "hook-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let (status, done) = json_of(
        server
            .get("/v1/workflows/p-1/result?wait_ms=5000", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], "Lyon by rail");
    // The same signal id again answers as the first did; a new signal finds it finished.
    let again = server
        .post("/v1/workflows/p-1/signals/Ship", Some(OPERATOR))
        .json(&json!({"payload": {"carrier": "rail"}, "signal_id": "hook-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let (status, finished) = json_of(
        server
            .post("/v1/workflows/p-1/signals/Ship", Some(OPERATOR))
            .json(&json!({"payload": {"carrier": "road"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, finished["code"].clone()),
        (StatusCode::CONFLICT, json!("engine.finished"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_can_wait_for_its_result_in_the_same_request() {
    let server = TestServer::start().await;
    let (status, body) = json_of(
        server
            .post("/v1/workflows", Some(OPERATOR))
            .json(&json!({"type": "hello", "input": "ada", "wait_ms": 5000}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["output"], "hello, ada");
    let (status, body) = json_of(
        server
            .post("/v1/workflows", Some(OPERATOR))
            .json(&json!({"type": "parcel", "input": "Oslo", "wait_ms": 20}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["result"]["status"], "waiting");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_by_name_are_answered_and_a_retry_gets_the_same_answer() {
    let server = TestServer::start().await;
    server
        .post("/v1/workflows", Some(OPERATOR))
        .json(&json!({"type": "tally", "input": 10, "id": "t-1"}))
        .send()
        .await
        .unwrap();
    let update = |n: u64, id: &str| {
        server
            .post("/v1/workflows/t-1/updates/tally.add", Some(OPERATOR))
            .json(&json!({"request": {"n": n}, "update_id": id}))
            .send()
    };
    let (status, first) = json_of(update(4, "u-1").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["result"], 4);
    let (_, retried) = json_of(update(4, "u-1").await.unwrap()).await;
    assert_eq!(retried["result"], 4, "a retry is not added twice");
    let (_, second) = json_of(update(6, "u-2").await.unwrap()).await;
    assert_eq!(second["result"], 10);
    let (status, done) = json_of(
        server
            .get("/v1/workflows/t-1/result?wait_ms=5000", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, done["output"].clone()),
        (StatusCode::OK, json!(10))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_by_name_are_refused_with_the_engine_code() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let cases = [
        (
            json!({"type": "nope", "input": 1}),
            StatusCode::BAD_REQUEST,
            "engine.unknown_workflow_type",
        ),
        (
            json!({"type": "parcel", "input": {"to": 3}}),
            StatusCode::BAD_REQUEST,
            "engine.invalid_json",
        ),
        (
            json!({"type": "parcel", "input": "x", "id": "p-1"}),
            StatusCode::CONFLICT,
            "engine.already_exists",
        ),
        (
            json!({"type": "parcel", "input": "x", "id": ""}),
            StatusCode::BAD_REQUEST,
            "engine.invalid_id",
        ),
        (
            json!({"input": 1}),
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let (got, error) = json_of(
            server
                .post("/v1/workflows", Some(OPERATOR))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (got, error["code"].as_str().unwrap()),
            (status, code),
            "{body}: {error}"
        );
    }
    let (status, error) = json_of(
        server
            .post("/v1/workflows/p-1/signals/Nope", Some(OPERATOR))
            .json(&json!({"payload": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("engine.unknown_signal"))
    );
    assert!(
        error["message"].as_str().unwrap().contains("Ship"),
        "{error}"
    );
    let (status, _) = json_of(
        server
            .get("/v1/workflows/missing/result", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_signal_reaches_every_match_and_shows_in_the_event_stream() {
    let server = TestServer::start().await;
    for i in 0..3 {
        server.parcel(&format!("b-{i}"), "Lyon").await;
    }
    let mut events = SseReader::new(
        server
            .get("/v1/events?id_prefix=b-", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    );
    let (status, done) = json_of(
        server
            .post("/v1/bulk/signal", Some(ADMIN))
            .json(&json!({"filter": {"id_prefix": "b-"}, "signal": "Ship", "payload": {"carrier": "air"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["succeeded"], 3);
    let mut signals = 0;
    let mut completed = 0;
    while signals < 3 || completed < 3 {
        let event = events.next().await.unwrap();
        match event.event.as_str() {
            "signal" => signals += 1,
            "step" if event.data["status"] == "completed" => completed += 1,
            _ => {}
        }
    }
    for i in 0..3 {
        let (_, result) = json_of(
            server
                .get(
                    &format!("/v1/workflows/b-{i}/result?wait_ms=5000"),
                    Some(OPERATOR),
                )
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(result["output"], "Lyon by air");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_request_loses_nothing() {
    let server = TestServer::start().await;
    // Each start is sent whole, and the connection is closed before any answer is read.
    for i in 0..20 {
        let body = json!({"type": "parcel", "input": "Lyon", "id": format!("d-{i}"), "idempotency_key": format!("key-{i}")}).to_string();
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        write!(
            stream,
            "POST /v1/workflows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        drop(stream);
    }
    // The client retries with its idempotency keys: each start happened exactly once, whether
    // or not the first attempt got through, and each workflow runs to its end.
    for i in 0..20 {
        let (status, started) = json_of(
            server
                .post("/v1/workflows", Some(OPERATOR))
                .json(&json!({"type": "parcel", "input": "Lyon", "id": format!("d-{i}"), "idempotency_key": format!("key-{i}")}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        assert_eq!(started["id"], format!("d-{i}"));
        let sent = server
            .post(&format!("/v1/workflows/d-{i}/signals/Ship"), Some(OPERATOR))
            .json(&json!({"payload": {"carrier": "rail"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
    }
    for i in 0..20 {
        let (status, done) = json_of(
            server
                .get(
                    &format!("/v1/workflows/d-{i}/result?wait_ms=5000"),
                    Some(OPERATOR),
                )
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, done["output"].clone()),
            (StatusCode::OK, json!("Lyon by rail"))
        );
    }
    let (_, count) = json_of(
        server
            .get("/v1/workflow-counts?id_prefix=d-", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(count["total"], 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_types_list_what_each_accepts_by_name() {
    let server = TestServer::start().await;
    let (status, types) = json_of(
        server
            .get("/v1/workflow-types", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let parcel_type = types["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "parcel")
        .unwrap();
    assert_eq!(parcel_type["signals"][0]["name"], "Ship");
    assert_eq!(parcel_type["queries"], json!(["destination"]));
    let tally_type = types["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "tally")
        .unwrap();
    assert_eq!(tally_type["updates"][0]["name"], "tally.add");
    let (_, info) = json_of(
        server
            .get("/v1/cluster/info", Some(WORKER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        info["workflow_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "hello")
    );
    // The signal's JSON Schema is in the type list and merged into the OpenAPI document.
    assert_eq!(
        parcel_type["signals"][0]["schema"]["properties"]["carrier"]["type"], "string",
        "{parcel_type}"
    );
    let (_, doc) = json_of(
        server
            .get("/v1/openapi.json", Some(WORKER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let schema = &doc["components"]["schemas"]["workflow.parcel.v1.signal.Ship"];
    assert_eq!(
        schema["properties"]["carrier"]["type"], "string",
        "{schema}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_workflow_is_retried_once_its_cause_is_fixed() {
    let server = TestServer::start().await;
    BREAK_FRAGILE.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, started) = json_of(
        server
            .post("/v1/workflows", Some(OPERATOR))
            .json(&json!({"type": "fragile", "input": 1, "id": "f-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(started["id"], "f-1", "{started}");
    let (_, d) = json_of(
        server
            .get("/v1/workflows/f-1", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(d["status"], "parked", "{d}");
    BREAK_FRAGILE.store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = json_of(
        server
            .post("/v1/workflows/f-1/retry", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, done) = json_of(
        server
            .get("/v1/workflows/f-1/result?wait_ms=5000", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, done["output"].clone()), (StatusCode::OK, json!(2)));
    // Retrying what is not parked is a conflict.
    let (status, body) = json_of(
        server
            .post("/v1/workflows/f-1/retry", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    server.stop().await;
}
