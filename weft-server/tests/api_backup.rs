//! `POST /v1/admin/backup`: an admin's backup lands, verified and restorable, in the configured
//! directory under a plain file name; paths, overwrites and an unconfigured server are refused.

mod support;

use reqwest::StatusCode;
use support::*;
use weft_runtime::storage::{RedbStorage, RestoreOptions, Storage, restore};
use weft_server::Server;

async fn serve(backup_dir: Option<&std::path::Path>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let engine = engine().await;
    engine.start::<parcel>("Oslo".to_string()).await.unwrap();
    let mut builder = Server::builder(engine)
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens());
    if let Some(dir) = backup_dir {
        builder = builder.backup_dir(dir);
    }
    let listening = builder.build().unwrap().bind().await.unwrap();
    let base = format!("http://{}", listening.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

async fn post(base: &str, token: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/admin/backup"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_backs_up_into_the_backup_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _stop) = serve(Some(dir.path())).await;

    let (status, body) = post(&base, ADMIN, serde_json::json!({ "name": "nightly.redb" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "nightly.redb");
    assert_eq!(
        body["format_version"],
        weft_runtime::storage::STORE_FORMAT_VERSION
    );
    assert!(body["entries"].as_u64().unwrap() > 0);
    let file = dir.path().join("nightly.redb");
    assert!(file.exists());

    // The file restores to a store holding the workflow.
    let restored = dir.path().join("restored.redb");
    restore(&file, &restored, RestoreOptions::default()).unwrap();
    let store = RedbStorage::open(&restored).unwrap();
    assert_eq!(store.scan_prefix(b"wf/", None, 10).unwrap().len(), 1);

    // The same name again is a conflict, and the first file is kept.
    let before = std::fs::read(&file).unwrap();
    let (status, body) = post(&base, ADMIN, serde_json::json!({ "name": "nightly.redb" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "backup.exists");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // No name: one is made up from the time.
    let (status, body) = post(&base, ADMIN, serde_json::json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let name = body["name"].as_str().unwrap();
    assert!(
        name.starts_with("weft-") && dir.path().join(name).exists(),
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_name_is_never_a_path() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, _stop) = serve(Some(dir.path())).await;
    let escape = outside.path().join("x.redb");
    for name in [
        "../x.redb".to_string(),
        escape.display().to_string(),
        "a/b.redb".to_string(),
        ".hidden".to_string(),
        String::new(),
    ] {
        let (status, body) = post(&base, ADMIN, serde_json::json!({ "name": name })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["code"], "backup.invalid_name");
    }
    assert!(!escape.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let (status, body) = post(&base, ADMIN, serde_json::json!({ "path": "/tmp/x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_for_admins_and_off_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _stop) = serve(Some(dir.path())).await;
    let (status, body) = post(&base, OPERATOR, serde_json::json!({ "name": "ops.redb" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!dir.path().join("ops.redb").exists());

    let (base, _stop) = serve(None).await;
    let (status, body) = post(&base, ADMIN, serde_json::json!({ "name": "x.redb" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "backup.not_configured");
}
