//! The workflow, review, bulk and cluster routes against a real server, and the one error shape.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;
use weft_runtime::WorkflowStatus;

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_live_checkpoint_and_the_pending_command_in_words() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let (status, d) = json_of(
        server
            .get("/v1/workflows/p-1", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["type"], "parcel");
    assert_eq!(d["status"], "waiting");
    assert_eq!(d["state_name"], "AwaitSignalShip");
    assert_eq!(d["state"]["AwaitSignalShip"]["to"], "Lyon", "{d}");
    assert_eq!(d["pending"], json!({"kind": "signal", "name": "Ship"}));
    assert!(
        d["waiting_on"]
            .as_str()
            .unwrap()
            .starts_with("waiting for signal `Ship` since "),
        "{d}"
    );

    let (status, q) = json_of(
        server
            .get("/v1/workflows/p-1/queries/destination", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, q["result"].clone()),
        (StatusCode::OK, json!("Lyon"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_with_the_engine_code_and_a_status_from_its_kind() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let cases = [
        (
            server.get("/v1/workflows/missing", Some(OPERATOR)),
            StatusCode::NOT_FOUND,
            "engine.not_found",
        ),
        (
            server.get("/v1/workflows?status=sleeping", Some(OPERATOR)),
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
        ),
        (
            server.get("/v1/workflows?stauts=waiting", Some(OPERATOR)),
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
        ),
        (
            server.get("/v1/workflows?cursor=zz", Some(OPERATOR)),
            StatusCode::BAD_REQUEST,
            "request.invalid_cursor",
        ),
        (
            server
                .post("/v1/workflows/p-1/review", Some(OPERATOR))
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
        ),
        (
            server
                .post("/v1/workflows/p-1/review", Some(OPERATOR))
                .json(&json!({"decision": "approve"})),
            StatusCode::NOT_FOUND,
            "engine.review_not_pending",
        ),
        (
            server.request(reqwest::Method::DELETE, "/v1/workflows/p-1", Some(ADMIN)),
            StatusCode::CONFLICT,
            "engine.not_finished",
        ),
        (
            server.get("/v1/workflows/p-1/queries/nope", Some(OPERATOR)),
            StatusCode::BAD_REQUEST,
            "engine.unknown_query",
        ),
        (
            server.request(reqwest::Method::PUT, "/v1/workflows/p-1", Some(OPERATOR)),
            StatusCode::METHOD_NOT_ALLOWED,
            "route.method_not_allowed",
        ),
        (
            server.get("/nowhere", None),
            StatusCode::NOT_FOUND,
            "route.not_found",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(
            (got, body["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["details"]["kind"].is_string(), "{body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_an_opaque_cursor_and_count_groups() {
    let server = TestServer::start().await;
    for i in 0..5 {
        server.parcel(&format!("p-{i}"), "Lyon").await;
    }
    server.engine.cancel("p-4").await.unwrap();
    eventually(|| async {
        server.engine.describe("p-4").await.unwrap().status == WorkflowStatus::Cancelled
    })
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workflows?type=parcel&page_size=2&cursor={c}"),
            None => "/v1/workflows?type=parcel&page_size=2".to_string(),
        };
        let (status, page) = json_of(server.get(&path, Some(OPERATOR)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["p-0", "p-1", "p-2", "p-3", "p-4"]);
    let (_, waiting) = json_of(
        server
            .get("/v1/workflows?status=waiting", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(waiting["items"].as_array().unwrap().len(), 4);
    let (status, counts) = json_of(
        server
            .get("/v1/workflow-counts?group_by=status", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts["total"], 5);
    assert_eq!(
        counts["groups"],
        json!([{"group": "Cancelled", "count": 1}, {"group": "Waiting", "count": 4}])
    );
    server.stop().await;
}

/// Waits until the wall clock's millisecond moves on, so the next write gets a later time than
/// the last (a condition on the clock, not a guess at a duration).
async fn next_ms() {
    let ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let start = ms();
    while ms() == start {
        tokio::task::yield_now().await;
    }
}

/// Every id of `path` (a list URL without a cursor), page by page.
async fn ids_of(server: &TestServer, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = json_of(server.get(&url, Some(OPERATOR)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sorts_by_created_and_updated_time_and_pages_in_that_order() {
    let server = TestServer::start().await;
    // Started against id order, each in a later millisecond.
    for id in ["c-3", "c-2", "c-1", "c-0"] {
        next_ms().await;
        server.parcel(id, "Lyon").await;
    }
    next_ms().await;
    server.engine.cancel("c-2").await.unwrap();
    eventually(|| async {
        server.engine.describe("c-2").await.unwrap().status == WorkflowStatus::Cancelled
    })
    .await;
    let list = |sort: &str| format!("/v1/workflows?type=parcel&page_size=2&sort={sort}");
    assert_eq!(
        ids_of(&server, &list("created_asc")).await,
        ["c-3", "c-2", "c-1", "c-0"]
    );
    assert_eq!(
        ids_of(&server, &list("created_desc")).await,
        ["c-0", "c-1", "c-2", "c-3"]
    );
    assert_eq!(
        ids_of(&server, &list("updated_desc")).await,
        ["c-2", "c-0", "c-1", "c-3"]
    );
    assert_eq!(
        ids_of(&server, &list("updated_asc")).await,
        ["c-3", "c-1", "c-0", "c-2"]
    );
    assert_eq!(
        ids_of(&server, &list("id")).await,
        ["c-0", "c-1", "c-2", "c-3"]
    );
    let (status, error) = json_of(
        server
            .get("/v1/workflows?sort=newest", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "request.invalid_query", "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_children_are_listed_a_page_at_a_time_and_named_in_its_description() {
    let server = TestServer::start().await;
    for id in ["d-1", "d-2"] {
        server
            .engine
            .start_with::<dispatch>(
                "Lyon".to_string(),
                weft_runtime::StartOptions {
                    id: Some(id.to_string()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    eventually(|| async { server.engine.describe("d-2/1").await.is_ok() }).await;
    let (status, page) = json_of(
        server
            .get("/v1/workflows/d-1/children?page_size=1", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!(["d-1/1"]));
    // A full page has a cursor; the page after it is empty.
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = json_of(
        server
            .get(
                &format!("/v1/workflows/d-1/children?page_size=1&cursor={cursor}"),
                Some(OPERATOR),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest["items"], json!([]), "{rest}");
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, none) = json_of(
        server
            .get("/v1/workflows/d-1%2F1/children", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none["items"], json!([]), "{none}");
    let (_, described) = json_of(
        server
            .get("/v1/workflows/d-2", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(described["children"], json!(["d-2/1"]), "{described}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_purge_are_audited_with_their_principal() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let (status, body) = json_of(
        server
            .post("/v1/workflows/p-1/cancel", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually(|| async {
        server.engine.describe("p-1").await.unwrap().status == WorkflowStatus::Cancelled
    })
    .await;
    let (status, _) = json_of(
        server
            .request(reqwest::Method::DELETE, "/v1/workflows/p-1", Some(ADMIN))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(
        server.engine.describe("p-1").await,
        Err(weft_runtime::EngineError::NotFound { .. })
    ));
    let (_, audit) = json_of(
        server
            .get("/v1/audit?target=p-1", Some(ADMIN))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let entries: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("ops".into(), "workflow.cancel".into(), "ok".into()),
            ("root".into(), "workflow.purge".into(), "ok".into())
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_is_listed_and_decided_in_the_name_of_the_token() {
    let server = TestServer::start().await;
    server
        .engine
        .start_with::<expense>(
            "ada".into(),
            weft_runtime::StartOptions {
                id: Some("e-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, list) = json_of(
        server
            .get("/v1/reviews?reviewer=manager", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["workflow_id"], "e-1");
    assert_eq!(list["items"][0]["title"], "expense of ada");
    let (_, d) = json_of(
        server
            .get("/v1/workflows/e-1", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let words = d["waiting_on"].as_str().unwrap();
    assert!(words.contains("for a review decision"), "{words}");
    let (status, body) = json_of(
        server
            .post("/v1/workflows/e-1/review", Some(OPERATOR))
            .json(&json!({"decision": "approve", "comment": "fine"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = server
        .engine
        .result::<expense>("e-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "approved by ops");
    // Decided once: a second decision finds no pending review.
    let (status, body) = json_of(
        server
            .post("/v1/workflows/e-1/review", Some(ADMIN))
            .json(&json!({"decision": "reject"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("engine.review_not_pending"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_counts_in_a_dry_run_then_acts_within_its_limit() {
    let server = TestServer::start().await;
    for i in 0..5 {
        server.parcel(&format!("bulk-{i}"), "Lyon").await;
    }
    server.parcel("other-1", "Lyon").await;
    let filter = json!({"id_prefix": "bulk-", "status": "waiting"});
    let (status, dry) = json_of(
        server
            .post("/v1/bulk/cancel", Some(ADMIN))
            .json(&json!({"filter": filter, "dry_run": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["matched"].clone(), dry["succeeded"].clone()),
        (json!(5), json!(0))
    );
    assert_eq!(
        server.engine.describe("bulk-0").await.unwrap().status,
        WorkflowStatus::Waiting,
        "a dry run changes nothing"
    );
    let (_, first) = json_of(
        server
            .post("/v1/bulk/cancel", Some(ADMIN))
            .json(&json!({"filter": filter, "limit": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["succeeded"], 3, "{first}");
    assert_eq!(first["truncated"], true);
    let (_, bad) = json_of(
        server
            .post("/v1/bulk/cancel", Some(ADMIN))
            .json(&json!({"filter": {"colour": "red"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad["code"], "request.invalid_json");
    for i in 0..3 {
        let id = format!("bulk-{i}");
        eventually(|| async {
            server.engine.describe(&id).await.unwrap().status == WorkflowStatus::Cancelled
        })
        .await;
    }
    assert_eq!(
        server.engine.describe("other-1").await.unwrap().status,
        WorkflowStatus::Waiting
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_nothing_ready_reports_each_check_and_cluster_info_any_role() {
    let server = TestServer::start().await;
    let (status, health) = json_of(server.get("/health", None).send().await.unwrap()).await;
    assert_eq!(
        (status, health["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    eventually(|| async {
        server.get("/ready", None).send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    let (_, ready) = json_of(server.get("/ready", None).send().await.unwrap()).await;
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["storage", "ownership", "recovery", "serving"]);
    let (status, info) = json_of(
        server
            .get("/v1/cluster/info", Some(WORKER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["api_version"], "v1");
    assert_eq!(info["ownership_epoch"], server.engine.epoch());
    assert_eq!(
        info["store_format_version"],
        weft_runtime::storage::STORE_FORMAT_VERSION
    );

    // A second engine takes the store over: this one is fenced and /ready says so, with why.
    let storage = weft_runtime::storage::MemoryStorage::new();
    let first = weft_runtime::Engine::builder(storage.clone())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    let listening = weft_server::Server::builder(first.clone())
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .probe_interval(std::time::Duration::from_millis(20))
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let addr = listening.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    let ready_url = format!("http://{addr}/ready");
    let http = reqwest::Client::new();
    eventually(|| async { http.get(&ready_url).send().await.unwrap().status() == StatusCode::OK })
        .await;
    let _second = weft_runtime::Engine::builder(storage.clone())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    eventually(|| async {
        http.get(&ready_url).send().await.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let report: Value = http
        .get(&ready_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ownership = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ownership")
        .unwrap()
        .clone();
    assert_eq!(ownership["ok"], false, "{report}");
    assert!(
        ownership["action"]
            .as_str()
            .unwrap()
            .contains("stop this process")
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_without_tokens_is_refused_unless_insecure_is_explicit() {
    let engine = engine().await;
    let refused = weft_server::Server::builder(engine.clone())
        .address("0.0.0.0:0".parse().unwrap())
        .build();
    assert!(matches!(
        refused,
        Err(weft_server::ServerError::InsecureBind { .. })
    ));
    assert!(
        weft_server::Server::builder(engine.clone())
            .address("0.0.0.0:0".parse().unwrap())
            .insecure_no_auth(true)
            .build()
            .is_ok()
    );
    assert!(
        weft_server::Server::builder(engine)
            .address("0.0.0.0:0".parse().unwrap())
            .tokens(tokens())
            .build()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_with_413_before_it_is_read_whole() {
    let server = TestServer::with_limits(weft_server::Limits {
        max_body_bytes: 64,
        ..weft_server::Limits::default()
    })
    .await;
    let comment = "x".repeat(1_000);
    let (status, body) = json_of(
        server
            .post("/v1/workflows/p-1/review", Some(OPERATOR))
            .json(&json!({"decision": "approve", "comment": comment}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!("request.body_too_large")
        )
    );
    server.stop().await;
}

/// Every id in a list route, walked `page_size` at a time by `next_cursor`.
async fn walk(server: &TestServer, route: &str, page_size: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if route.contains('?') { '&' } else { '?' };
        let path = match &cursor {
            Some(c) => format!("{route}{sep}page_size={page_size}&cursor={c}"),
            None => format!("{route}{sep}page_size={page_size}"),
        };
        let (status, page) = json_of(server.get(&path, Some(OPERATOR)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= page_size, "{path}: {page}");
        seen.extend(items.iter().map(|i| {
            i.get("workflow_id")
                .unwrap_or(&i["id"])
                .as_str()
                .unwrap()
                .to_string()
        }));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_and_schedules_page_like_workflows() {
    let server = TestServer::start().await;
    for id in ["e-2", "e-1", "e-3"] {
        server
            .engine
            .start_with::<expense>(
                "ada".into(),
                weft_runtime::StartOptions {
                    id: Some(id.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    for id in ["s-b", "s-c", "s-a"] {
        server
            .engine
            .create_schedule(
                id,
                weft_runtime::ScheduleSpec::new(
                    "hello",
                    json!("x"),
                    weft_runtime::Trigger::every(std::time::Duration::from_secs(3600)),
                ),
            )
            .await
            .unwrap();
    }
    eventually(|| async {
        server
            .engine
            .pending_reviews(&Default::default(), 10, None)
            .await
            .unwrap()
            .items
            .len()
            == 3
    })
    .await;
    assert_eq!(walk(&server, "/v1/reviews", 2).await, ["e-1", "e-2", "e-3"]);
    assert_eq!(
        walk(&server, "/v1/reviews?reviewer=manager", 1).await,
        ["e-1", "e-2", "e-3"]
    );
    assert_eq!(
        walk(&server, "/v1/schedules", 2).await,
        ["s-a", "s-b", "s-c"]
    );
    for route in ["/v1/reviews", "/v1/schedules", "/v1/workflows"] {
        let (status, body) = json_of(
            server
                .get(&format!("{route}?cursor=zz"), Some(OPERATOR))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(body["code"], "request.invalid_cursor", "{route}: {body}");
    }
    server.stop().await;
}
