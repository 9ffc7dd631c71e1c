//! Every route, walked with no token, a wrong token and each role: the statuses the OpenAPI
//! document's roles promise, and a forbidden answer that says nothing about what exists.

mod support;

use reqwest::{Method, StatusCode};
use support::*;

fn concrete(path: &str) -> String {
    path.replace("{id}", "auth-probe")
        .replace("{name}", "destination")
}

fn body_for(path: &str) -> serde_json::Value {
    if path.starts_with("/v1/bulk/") {
        serde_json::json!({ "dry_run": true })
    } else if path == "/v1/workflows" {
        serde_json::json!({ "type": "parcel", "input": "Lyon" })
    } else if path == "/v1/schedules" {
        serde_json::json!({ "id": "auth-created", "type": "hello", "input": "x", "every_ms": 3_600_000 })
    } else if path == "/v1/schedules/{id}" {
        serde_json::json!({ "type": "hello", "input": "y", "every_ms": 3_600_000 })
    } else if path.ends_with("/backfill") {
        serde_json::json!({ "from_ms": 0, "to_ms": 1 })
    } else if path.ends_with("/review") {
        serde_json::json!({ "decision": "approve" })
    } else {
        serde_json::json!({})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_token_as_its_roles_say() {
    let server = TestServer::start().await;
    server.parcel("auth-probe", "Lyon").await;
    server
        .engine
        .create_schedule(
            "auth-probe",
            weft_runtime::ScheduleSpec::new(
                "hello",
                serde_json::json!("x"),
                weft_runtime::Trigger::every(std::time::Duration::from_secs(3600)),
            ),
        )
        .await
        .unwrap();
    let doc: serde_json::Value = server
        .get("/v1/openapi.json", Some(WORKER))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let roles: Vec<&str> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["bearer"].as_array().unwrap())
                .map(|r| r.as_str().unwrap())
                .collect();
            let url = concrete(path);
            let send = |token: Option<&'static str>| {
                server
                    .request(method.clone(), &url, token)
                    .json(&body_for(path))
                    .send()
            };
            let public = roles.is_empty();
            let none = send(None).await.unwrap();
            let wrong = send(Some("not-a-token-of-this-server")).await.unwrap();
            if public {
                assert!(
                    none.status().is_success(),
                    "{method} {path}: {}",
                    none.status()
                );
                continue;
            }
            assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            let error: serde_json::Value = none.json().await.unwrap();
            assert_eq!(error["code"], "auth.missing_token");
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            for (role, token) in [("worker", WORKER), ("operator", OPERATOR), ("admin", ADMIN)] {
                let response = send(Some(token)).await.unwrap();
                let status = response.status();
                if roles.contains(&role) {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{method} {path} as {role}: {status}"
                    );
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role}");
                    let error: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(error["code"], "auth.forbidden");
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 20, "walked {walked} routes");
    // The backup route is in the walk, for admins only.
    assert_eq!(
        doc["paths"]["/v1/admin/backup"]["post"]["security"][0]["bearer"],
        serde_json::json!(["admin"])
    );
    // A token without the role cannot tell an existing workflow from a missing one.
    let existing = server
        .get("/v1/workflows/auth-probe", Some(WORKER))
        .send()
        .await
        .unwrap();
    let missing = server
        .get("/v1/workflows/no-such-workflow", Some(WORKER))
        .send()
        .await
        .unwrap();
    assert_eq!(existing.status(), missing.status());
    assert_eq!(
        existing.text().await.unwrap(),
        missing.text().await.unwrap()
    );
    // The walk reached the engine only with admitted roles: the operator's cancel did.
    let d: serde_json::Value = server
        .get("/v1/workflows/auth-probe", Some(OPERATOR))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["status"], "cancelled");
    // Every schedule route is in the walk, with the roles the issue gives: operators read and
    // trigger, admins create, change and delete.
    let roles =
        |method: &str, path: &str| doc["paths"][path][method]["security"][0]["bearer"].clone();
    let operator = serde_json::json!(["operator", "admin"]);
    let admin = serde_json::json!(["admin"]);
    for (method, path, want) in [
        ("get", "/v1/schedules", &operator),
        ("get", "/v1/schedules/{id}", &operator),
        ("post", "/v1/schedules/{id}/trigger", &operator),
        ("post", "/v1/schedules/{id}/backfill", &operator),
        ("post", "/v1/schedules", &admin),
        ("put", "/v1/schedules/{id}", &admin),
        ("delete", "/v1/schedules/{id}", &admin),
        ("post", "/v1/schedules/{id}/pause", &admin),
        ("post", "/v1/schedules/{id}/resume", &admin),
    ] {
        assert_eq!(&roles(method, path), want, "{method} {path}");
    }
    // The walk reached the engine with the admin's create and delete, and with no other token.
    let schedules = server.engine.list_schedules(100, None).await.unwrap().items;
    let ids: Vec<&str> = schedules.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["auth-created"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_under_v1_need_a_token_too() {
    let server = TestServer::start().await;
    let response = server.get("/v1/nothing-here", None).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .get("/v1/nothing-here", Some(WORKER))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["code"], "route.not_found");
    server.stop().await;
}
