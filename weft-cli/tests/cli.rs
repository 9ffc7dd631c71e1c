//! The `weft` binary against a real server on a loopback port: output formats, exit codes,
//! reviews, events and doctor.

#[path = "../../weft-server/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output, Stdio};

use support::*;

/// Runs `weft args` against `server` with `token`, off the async workers.
async fn weft(server: &TestServer, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(args)
        .env("WEFT_ADDR", server.url(""))
        .env_remove("WEFT_TOKEN")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("WEFT_TOKEN", token);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_describe_print_tables_and_json_lines() {
    let server = TestServer::start().await;
    server.parcel("order-1", "Lyon").await;
    server.parcel("o-2", "Oslo").await;
    let out = weft(&server, Some(OPERATOR), &["list"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID       TYPE    STATUS   STEP  UPDATED"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("o-2      parcel  waiting  1"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("order-1  parcel  waiting  1"),
        "{text}"
    );

    let out = weft(&server, Some(OPERATOR), &["list", "--output", "jsonl"]).await;
    let ids: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["o-2", "order-1"]);

    let out = weft(&server, Some(OPERATOR), &["describe", "order-1"]).await;
    let text = stdout(&out);
    assert!(
        text.contains("waiting on  waiting for signal `Ship` since "),
        "{text}"
    );
    assert!(text.contains("state (AwaitSignalShip):"), "{text}");
    assert!(
        text.contains("\"to\": \"Lyon\""),
        "the state is indented JSON: {text}"
    );

    let out = weft(&server, Some(OPERATOR), &["count", "-o", "json"]).await;
    let counts: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(counts["total"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_failures_apart() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let cases: [(Option<&str>, &[&str], i32); 7] = [
        (Some(OPERATOR), &["describe", "missing"], 3),
        (Some(ADMIN), &["purge", "p-1"], 4),
        (Some(OPERATOR), &["list", "--status", "sleeping"], 5),
        (None, &["list"], 6),
        (Some(WORKER), &["list"], 6),
        (Some(OPERATOR), &["list", "--bogus"], 2),
        (Some(OPERATOR), &["version"], 0),
    ];
    for (token, args, code) in cases {
        let out = weft(&server, token, args).await;
        assert_eq!(out.status.code(), Some(code), "weft {args:?}: {out:?}");
    }
    // Nobody listens there.
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command.args(["--addr", "http://127.0.0.1:1", "list"]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_is_listed_and_decided_from_the_command_line() {
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
    let out = weft(&server, Some(OPERATOR), &["reviews"]).await;
    assert!(
        stdout(&out).contains("e-1       expense of ada  manager"),
        "{}",
        stdout(&out)
    );
    let out = weft(
        &server,
        Some(OPERATOR),
        &["decide", "e-1", "approve", "--comment", "ok"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let result = server
        .engine
        .result::<expense>("e-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "approved by ops");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_a_workflow_until_it_finishes() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(["events", "p-1", "-o", "jsonl"])
        .env("WEFT_ADDR", server.url(""))
        .env("WEFT_TOKEN", OPERATOR)
        .stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let output = child.stdout.take().unwrap();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<String>();
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(output).lines();
        let first = lines.next().unwrap().unwrap();
        let _ = first_tx.send(first.clone());
        let mut all = vec![first];
        all.extend(lines.map(Result::unwrap));
        (child.wait().unwrap(), all)
    });
    // The CLI printed the description: it is subscribed, so the step cannot be missed.
    let first = first_rx.await.unwrap();
    server
        .engine
        .signal(
            "p-1",
            Ship {
                carrier: "rail".into(),
            },
        )
        .await
        .unwrap();
    let (status, lines) = reader.await.unwrap();
    assert!(status.success(), "{first}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "description");
    let last = events.last().unwrap();
    assert_eq!(last["data"]["status"], "completed", "{events:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_role_and_fails_with_a_fix_for_a_bad_token() {
    let server = TestServer::start().await;
    eventually(|| async {
        server.get("/ready", None).send().await.unwrap().status() == reqwest::StatusCode::OK
    })
    .await;
    let out = weft(&server, Some(OPERATOR), &["doctor"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("accepted with role operator"),
        "{}",
        stdout(&out)
    );
    let out = weft(&server, Some("wrong-token-0123456789"), &["doctor"]).await;
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    assert!(
        stdout(&out).contains("fix: set WEFT_TOKEN"),
        "{}",
        stdout(&out)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_signal_update_and_result_by_name_from_the_command_line() {
    let server = TestServer::start().await;
    let out = weft(
        &server,
        Some(OPERATOR),
        &[
            "start", "--type", "parcel", "--input", "\"Lyon\"", "--id", "p-1",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "started p-1 (parcel)\n");
    let out = weft(&server, Some(OPERATOR), &["result", "p-1", "-o", "json"]).await;
    let pending: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(pending["finished"], false);
    let out = weft(
        &server,
        Some(OPERATOR),
        &[
            "signal",
            "p-1",
            "Ship",
            "--payload",
            r#"{"carrier": "rail"}"#,
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = weft(
        &server,
        Some(OPERATOR),
        &["result", "p-1", "--wait-ms", "5000"],
    )
    .await;
    assert!(
        stdout(&out).contains("\"Lyon by rail\""),
        "{}",
        stdout(&out)
    );

    weft(
        &server,
        Some(OPERATOR),
        &["start", "--type", "tally", "--input", "5", "--id", "t-1"],
    )
    .await;
    let out = weft(
        &server,
        Some(OPERATOR),
        &[
            "update",
            "t-1",
            "tally.add",
            "--request",
            r#"{"n": 2}"#,
            "--update-id",
            "u-1",
        ],
    )
    .await;
    assert_eq!(stdout(&out), "2\n", "{out:?}");
    let out = weft(
        &server,
        Some(OPERATOR),
        &[
            "start",
            "--type",
            "hello",
            "--input",
            "\"ada\"",
            "--wait-ms",
            "5000",
        ],
    )
    .await;
    assert!(stdout(&out).contains("\"hello, ada\""), "{}", stdout(&out));
    let out = weft(
        &server,
        Some(OPERATOR),
        &["start", "--type", "parcel", "--input", "not json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_on_the_server_then_restore_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::with_backup_dir(dir.path()).await;
    server.parcel("order-9", "Rome").await;

    let out = weft(&server, Some(OPERATOR), &["backup", "b.redb"]).await;
    assert_eq!(out.status.code(), Some(6), "an operator may not: {out:?}");
    let out = weft(&server, Some(ADMIN), &["-o", "json", "backup", "b.redb"]).await;
    assert!(out.status.success(), "{out:?}");
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        answer["format_version"],
        weft_runtime::storage::STORE_FORMAT_VERSION
    );
    let backup = dir.path().join("b.redb");
    assert!(backup.exists());
    let out = weft(&server, Some(ADMIN), &["backup", "b.redb"]).await;
    assert_eq!(out.status.code(), Some(4), "exists: {out:?}");
    server.stop().await;

    let target = dir.path().join("store.redb");
    let (b, t) = (backup.to_str().unwrap(), target.to_str().unwrap());
    let out = weft_offline(&["restore", b, t]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("restored"), "{out:?}");
    let store = weft_runtime::storage::RedbStorage::open(&target).unwrap();
    use weft_runtime::storage::Storage;
    assert_eq!(store.scan_prefix(b"wf/", None, 10).unwrap().len(), 1);
    drop(store);
    // Over an existing store only with --replace; a file that is no backup is refused.
    let out = weft_offline(&["restore", b, t]).await;
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replace"),
        "{out:?}"
    );
    let out = weft_offline(&["restore", b, t, "--replace"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = weft_offline(&["restore", t, dir.path().join("x").to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(!dir.path().join("x").exists());
}

/// Runs `weft args` with no server (offline commands).
async fn weft_offline(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(args)
        .env_remove("WEFT_TOKEN")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Runs `weft -o json args` and parses what it prints.
async fn weft_json(server: &TestServer, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = weft(server, Some(token), &all).await;
    assert!(out.status.success(), "weft {args:?}: {out:?}");
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_from_the_command_line_with_the_roles_of_the_api() {
    let server = TestServer::start().await;
    let create: &[&str] = &[
        "schedule",
        "create",
        "hourly",
        "--type",
        "hello",
        "--input",
        "\"ada\"",
        "--every-ms",
        "3600000",
        "--overlap",
        "allow_all",
    ];
    // Operators read and trigger; only admins create, change and delete.
    let out = weft(&server, Some(OPERATOR), create).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let out = weft(&server, Some(ADMIN), create).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "schedule hourly created\n");
    let out = weft(&server, Some(ADMIN), create).await;
    assert_eq!(out.status.code(), Some(4), "taken: {out:?}");
    let out = weft(
        &server,
        Some(ADMIN),
        &[
            "schedule",
            "create",
            "bad",
            "--type",
            "hello",
            "--cron",
            "61 * * * *",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cron expression"),
        "{out:?}"
    );
    // Neither trigger nor both: clap refuses before anything is sent.
    let out = weft(
        &server,
        Some(ADMIN),
        &["schedule", "create", "x", "--type", "hello"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = weft(&server, Some(OPERATOR), &["schedule", "list"]).await;
    let text = stdout(&out);
    assert!(
        text.starts_with("ID      TYPE   STATE   NEXT FIRE"),
        "{text}"
    );
    assert!(text.contains("hourly  hello  active"), "{text}");

    // Backfill the first two hours of 1970, twice: the second run starts nothing new.
    let backfill: &[&str] = &[
        "schedule",
        "backfill",
        "hourly",
        "--from",
        "1970-01-01T00:00:00Z",
        "--to",
        "7200000",
    ];
    let runs = weft_json(&server, OPERATOR, backfill).await;
    let expected =
        serde_json::json!(["hourly@1970-01-01T00:00:00Z", "hourly@1970-01-01T01:00:00Z"]);
    assert_eq!(runs["workflow_ids"], expected);
    let again = weft_json(&server, OPERATOR, backfill).await;
    assert_eq!(again["workflow_ids"], expected);
    let triggered = weft_json(&server, OPERATOR, &["schedule", "trigger", "hourly"]).await;
    let now_run = triggered["workflow_ids"][0].as_str().unwrap().to_string();
    assert!(now_run.starts_with("hourly@20"), "{now_run}");
    for id in [
        "hourly@1970-01-01T00:00:00Z",
        "hourly@1970-01-01T01:00:00Z",
        now_run.as_str(),
    ] {
        let result = server.engine.result::<hello>(id).await.unwrap().unwrap();
        assert_eq!(result, "hello, ada");
    }

    let out = weft(
        &server,
        Some(OPERATOR),
        &["schedule", "pause", "hourly", "--note", "maintenance"],
    )
    .await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let out = weft(
        &server,
        Some(ADMIN),
        &["schedule", "pause", "hourly", "--note", "maintenance"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let d = weft_json(&server, OPERATOR, &["schedule", "describe", "hourly"]).await;
    assert_eq!(d["paused"], true);
    assert_eq!(d["note"], "maintenance");
    assert_eq!(d["next_fires_ms"], serde_json::json!([]));
    assert_eq!(d["started"], 3);
    assert_eq!(d["spec"]["overlap"], "allow_all");
    assert_eq!(d["recent_runs"][0]["workflow_id"], now_run.as_str());
    assert_eq!(d["recent_runs"].as_array().unwrap().len(), 3);

    let out = weft(
        &server,
        Some(ADMIN),
        &["schedule", "resume", "hourly", "--note", "done"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = weft(
        &server,
        Some(OPERATOR),
        &["schedule", "describe", "hourly", "--next", "2"],
    )
    .await;
    let text = stdout(&out);
    assert!(text.contains("state           active"), "{text}");
    assert!(text.contains("note            done"), "{text}");
    assert!(
        text.contains("every 3600000 ms from 1970-01-01T00:00:00Z"),
        "{text}"
    );
    let next: Vec<&str> = text
        .split("next fires:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(next.len(), 2, "{text}");
    assert!(
        next.iter().all(|l| l.trim_end().ends_with(":00:00Z")),
        "hourly fires fall on the hour: {text}"
    );
    let run = text
        .lines()
        .find(|l| l.starts_with("1970-01-01T01:00:00Z"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = run.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "1970-01-01T01:00:00Z",
            "hourly@1970-01-01T01:00:00Z",
            "completed"
        ]
    );

    // A change keeps the history.
    let out = weft(
        &server,
        Some(ADMIN),
        &[
            "schedule",
            "update",
            "hourly",
            "--type",
            "hello",
            "--input",
            "\"bob\"",
            "--cron",
            "0 9 * * *",
            "--time-zone",
            "Europe/Berlin",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let d = weft_json(&server, OPERATOR, &["schedule", "describe", "hourly"]).await;
    assert_eq!(d["spec"]["cron"], "0 9 * * *");
    assert_eq!(d["spec"]["time_zone"], "Europe/Berlin");
    assert_eq!(d["started"], 3);

    let out = weft(&server, Some(OPERATOR), &["schedule", "delete", "hourly"]).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let out = weft(&server, Some(ADMIN), &["schedule", "delete", "hourly"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = weft(&server, Some(OPERATOR), &["schedule", "describe", "hourly"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = weft(&server, Some(OPERATOR), &["schedule", "trigger", "hourly"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // The runs it started are not touched.
    assert!(
        server
            .engine
            .describe("hourly@1970-01-01T00:00:00Z")
            .await
            .is_ok()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_confirms_a_deploy_and_fails_on_workflows_it_could_not_resume() {
    use weft_runtime::storage::MemoryStorage;
    let storage = MemoryStorage::new();
    let before = weft_runtime::Engine::builder(storage.clone())
        .register::<parcel>()
        .register::<expense>()
        .build()
        .await
        .unwrap();
    for (id, to) in [("p-1", "Lyon"), ("p-2", "Oslo")] {
        before
            .start_with::<parcel>(
                to.into(),
                weft_runtime::StartOptions {
                    id: Some(id.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    before
        .start_with::<expense>(
            "ada".into(),
            weft_runtime::StartOptions {
                id: Some("e-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    before.shutdown().await;

    // The new release forgot to register `expense`.
    let after = weft_runtime::Engine::builder(storage.clone())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    let server = TestServer::with_engine(after).await;
    let out = weft(&server, Some(WORKER), &["recovery"]).await;
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let out = weft(&server, Some(OPERATOR), &["recovery"]).await;
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("in flight                3"), "{text}");
    assert!(text.contains("waiting                  2"), "{text}");
    assert!(text.contains("parked                   1"), "{text}");
    assert!(text.contains("armed (timer or signal)  2"), "{text}");
    assert!(text.contains("e-1"), "{text}");
    assert!(text.contains("`expense`"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 workflow(s) could not be resumed"),
        "{out:?}"
    );
    let out = weft(&server, Some(OPERATOR), &["-o", "json", "recovery"]).await;
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["ran"], true);
    assert_eq!(report["waiting"], 2);
    assert_eq!(report["unresolved_workflows"][0]["id"], "e-1");
    assert_eq!(report["ownership_epoch"], 2);
    server.stop().await;

    // A deploy with every type registered recovers everything: exit 0.
    let fixed = weft_runtime::Engine::builder(storage.clone())
        .register::<parcel>()
        .register::<expense>()
        .build()
        .await
        .unwrap();
    let server = TestServer::with_engine(fixed).await;
    let out = weft(&server, Some(OPERATOR), &["-o", "json", "recovery"]).await;
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (report["waiting"].as_u64(), report["unresolved"].as_u64()),
        (Some(3), Some(0))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_and_doctor_store_work_offline_and_refuse_a_store_in_use() {
    use weft_runtime::storage::{Batch, RedbStorage, Storage};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let p = path.to_str().unwrap();
    {
        let engine = weft_runtime::Engine::builder(RedbStorage::create(&path).unwrap())
            .register::<parcel>()
            .build()
            .await
            .unwrap();
        engine.shutdown().await;
    }
    // Fill, then purge 90%, so there is space to give back.
    let storage = RedbStorage::open(&path).unwrap();
    let mut batch = Batch::new();
    for i in 0..1000 {
        batch.put(format!("x/{i:04}").into_bytes(), vec![7u8; 4096]);
    }
    storage.apply(batch).unwrap();
    let mut batch = Batch::new();
    for i in (0..1000).filter(|i| i % 10 != 0) {
        batch.delete(format!("x/{i:04}").into_bytes());
    }
    storage.apply(batch).unwrap();

    // This test process holds the file: the CLI, another process, is refused.
    let out = weft_offline(&["compact", p]).await;
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop the server"),
        "{out:?}"
    );
    let out = weft_offline(&["doctor", "--store", p]).await;
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("not in use  FAIL"), "{text}");
    assert!(text.contains("stop the server that owns it"), "{text}");
    storage.close().unwrap();

    let out = weft_offline(&["-o", "json", "compact", p]).await;
    assert!(out.status.success(), "{out:?}");
    let done: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (before, after) = (
        done["bytes_before"].as_u64().unwrap(),
        done["bytes_after"].as_u64().unwrap(),
    );
    assert!(after * 2 < before, "{before} -> {after}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), after);

    let out = weft_offline(&["doctor", "--store", p]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let format = weft_runtime::storage::STORE_FORMAT_VERSION;
    let format_line = format!(
        "format      ok      store format {format}; this binary understands up to {format}"
    );
    for line in [
        "not in use  ok",
        "weft store  ok",
        "integrity   ok",
        format_line.as_str(),
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // A store a newer release wrote: the check fails with the fix.
    let storage = RedbStorage::open(&path).unwrap();
    storage
        .put(
            weft_runtime::engine::record::FORMAT_KEY,
            &weft_runtime::engine::record::encode_store_format(9),
        )
        .unwrap();
    storage.close().unwrap();
    let out = weft_offline(&["-o", "json", "doctor", "--store", p]).await;
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let supported = weft_runtime::storage::STORE_FORMAT_VERSION;
    let format = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "format")
        .unwrap();
    assert_eq!(format["ok"], false);
    assert_eq!(
        format["detail"],
        format!("this store was written by format 9; this binary understands up to {supported}")
    );
    assert_eq!(
        format["fix"],
        "run a newer weft (the release that wrote it, or later)"
    );

    let missing = dir.path().join("missing.redb");
    let out = weft_offline(&["doctor", "--store", missing.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let out = weft_offline(&["compact", missing.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
