//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! `chromedriver`, against a real server with real workflows on redb. Logs in, filters the
//! list, sorts it by creation time from its column header, follows a parent's link to its child
//! and back, watches a workflow change live (over SSE, without a reload) when a signal is sent
//! with the `weft` binary, sends a signal from the page, approves a review from the inbox and
//! sees another vanish when decided elsewhere, and sees a page refused to the wrong role.
//! Screenshots of each page land in `target/ui-screenshots`.
//!
//! It lives here, not in weft-server, because only weft-cli's tests have the `weft` binary
//! (`CARGO_BIN_EXE_weft`). The WebDriver client is weft-server's test support, included by path
//! so there is one copy.
//!
//! Without chromium and chromedriver the test says why and passes, except under `CI=true`,
//! where `.ci/run` installs them and a missing browser is a failure.

#[path = "../../weft-server/tests/support/mod.rs"]
mod support;
#[path = "../../weft-server/tests/ui_support/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;
use tokio::sync::oneshot;
use webdriver::{Driver, browser_available};
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, StartOptions, WorkflowStatus};
use weft_server::Server;

/// Runs the `weft` binary with `args` against the server at `base` as the operator, off the
/// async workers (the server under test runs on them).
async fn weft(base: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(args)
        .env("WEFT_ADDR", base)
        .env("WEFT_TOKEN", OPERATOR)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ui-screenshots")
}

async fn start<W: weft_runtime::Workflow>(engine: &Engine, id: &str, input: W::Input) {
    engine
        .start_with::<W>(
            input,
            StartOptions {
                id: Some(id.to_string()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
}

async fn wait_for_status(engine: &Engine, id: &str, status: WorkflowStatus) {
    eventually(|| async { engine.describe(id).await.map(|d| d.status).ok() == Some(status) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    if !browser_available("the browser tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder(RedbStorage::create(dir.path().join("ui.redb")).unwrap())
        .register::<parcel>()
        .register::<expense>()
        .register::<hello>()
        .register::<dispatch>()
        .build()
        .await
        .unwrap();
    start::<parcel>(&engine, "p-live", "Lyon".into()).await;
    // p-form is created in a later millisecond than p-live, so oldest first puts p-live (the
    // later id) first: an order the id order cannot give.
    let live_created = engine.describe("p-live").await.unwrap().created_at;
    eventually(|| async { std::time::SystemTime::now() > live_created + Duration::from_millis(1) })
        .await;
    start::<parcel>(&engine, "p-form", "Oslo".into()).await;
    start::<dispatch>(&engine, "d-1", "Rome".into()).await;
    wait_for_status(&engine, "d-1/1", WorkflowStatus::Waiting).await;
    start::<hello>(&engine, "h-1", "ada".into()).await;
    start::<expense>(&engine, "e-approve", "ada".into()).await;
    start::<expense>(&engine, "e-elsewhere", "bob".into()).await;
    wait_for_status(&engine, "e-elsewhere", WorkflowStatus::Waiting).await;
    wait_for_status(&engine, "h-1", WorkflowStatus::Completed).await;

    let listening = Server::builder(engine.clone())
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let base = format!("http://{}", listening.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(listening.serve_until(async {
        let _ = stopped.await;
    }));
    let api = reqwest::Client::new();
    let shots = screenshots();

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(profile.path()).await;

    // Log in: the login form, then the overview.
    browser
        .goto(&format!("{base}/ui/workflows?status=waiting"))
        .await;
    browser
        .wait_for_url("redirected to log in", |url| url.contains("/ui/login"))
        .await;
    browser.screenshot(&shots, "login").await;
    browser.type_in("#token", OPERATOR).await;
    browser.click_on("button[type=submit]").await;
    assert!(browser.text("#whoami").await.contains("ops"));
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/ui/workflows?status=waiting"),
        "back where the login interrupted"
    );
    browser.goto(&format!("{base}/ui")).await;
    assert_eq!(browser.text("#total").await, "7");
    browser.screenshot(&shots, "overview").await;

    // Filter the list by id prefix, through the form.
    browser.goto(&format!("{base}/ui/workflows")).await;
    browser.type_in("#f-id", "p-").await;
    browser.click_on("form.filters button[type=submit]").await;
    browser
        .wait_for_url("the filter is in the URL", |url| {
            url.contains("id_prefix=p-")
        })
        .await;
    let listed = browser.text("#workflows").await;
    assert!(
        listed.contains("p-live") && listed.contains("p-form"),
        "{listed}"
    );
    assert!(
        !listed.contains("e-approve") && !listed.contains("h-1"),
        "{listed}"
    );
    browser.screenshot(&shots, "workflows").await;

    // Sort by creation time from the column header: newest first, then oldest first.
    browser.click_on("#sort-created").await;
    browser
        .wait_for_url("the sort is in the URL", |url| {
            url.contains("id_prefix=p-") && url.contains("sort=created_desc")
        })
        .await;
    browser.click_on("#sort-created").await;
    browser
        .wait_for_url("the sort turned round", |url| {
            url.contains("sort=created_asc")
        })
        .await;
    let sorted = browser.text("#workflows").await;
    let (live_at, form_at) = (
        sorted.find("p-live").unwrap(),
        sorted.find("p-form").unwrap(),
    );
    assert!(live_at < form_at, "oldest created first: {sorted}");
    assert_eq!(
        browser.text("#f-sort option:checked").await,
        "oldest created first"
    );
    browser.screenshot(&shots, "workflows-sorted").await;

    // A parent's page links its children; the child's page links back to its parent.
    browser.goto(&format!("{base}/ui/workflows/d-1")).await;
    assert!(browser.text("#children").await.contains("d-1/1"));
    browser.screenshot(&shots, "workflow-children").await;
    browser.click_on("#children a").await;
    browser
        .wait_for_url("the child's page", |url| {
            url.ends_with("/ui/workflows/d-1%2F1")
        })
        .await;
    assert_eq!(browser.text("#state-name").await, "AwaitSignalShip");
    assert_eq!(browser.text("#parent").await, "d-1");
    browser.click_on("#parent a").await;
    browser
        .wait_for_url("back on the parent's page", |url| {
            url.ends_with("/ui/workflows/d-1")
        })
        .await;
    browser
        .goto(&format!("{base}/ui/workflows?id_prefix=p-"))
        .await;

    // Open a workflow; a signal sent with the `weft` CLI shows up live, over SSE.
    browser.click_on("a[href='/ui/workflows/p-live']").await;
    assert_eq!(browser.text("#state-name").await, "AwaitSignalShip");
    assert!(
        browser
            .text("#waiting-on")
            .await
            .contains("for signal `Ship`")
    );
    browser.screenshot(&shots, "workflow-waiting").await;
    let url_before = browser.current_url().await;
    // A marker on the loaded document (a reload or any navigation makes a new document without
    // it) and a log of the SSE messages htmx receives from here on, by event name.
    browser
        .execute(
            "window.weftNotReloaded = true; window.weftSse = []; \
             document.addEventListener('htmx:sseMessage', \
                 function (e) { window.weftSse.push(e.detail && e.detail.type); }); \
             return null;",
        )
        .await;
    let sent = weft(
        &base,
        &[
            "signal",
            "p-live",
            "Ship",
            "--payload",
            r#"{"carrier": "rail"}"#,
        ],
    )
    .await;
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(
        String::from_utf8_lossy(&sent.stdout),
        "signal Ship stored for p-live\n"
    );
    browser
        .wait_for(
            "the page shows the workflow completed, and no signal form",
            |html| {
                html.contains("status-completed")
                    && html.contains("Lyon by rail")
                    && !html.contains(r#"id="signal-Ship""#)
            },
        )
        .await;
    assert_eq!(
        browser.current_url().await,
        url_before,
        "updated in place, not reloaded"
    );
    let seen = browser
        .execute("return { same: window.weftNotReloaded === true, sse: window.weftSse };")
        .await;
    assert_eq!(
        seen["same"], true,
        "the same document, not reloaded: {seen}"
    );
    assert!(
        seen["sse"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == "step")),
        "the update came as an SSE `step` event: {seen}"
    );
    browser.screenshot(&shots, "workflow-live").await;

    // Send a signal from the form the page built from the signal's JSON Schema.
    browser.goto(&format!("{base}/ui/workflows/p-form")).await;
    browser.type_in("#signal-Ship-carrier", "sea").await;
    browser.click_on("#signal-Ship button[type=submit]").await;
    assert!(browser.text("#notice").await.contains("Signal sent"));
    browser
        .wait_for("the form's signal finishes the workflow", |html| {
            html.contains("Oslo by sea")
        })
        .await;

    // The review inbox: approve one here; another, decided through the API, disappears live.
    browser.goto(&format!("{base}/ui/reviews")).await;
    let inbox = browser.text("#reviews").await;
    assert!(
        inbox.contains("expense of ada") && inbox.contains("expense of bob"),
        "{inbox}"
    );
    browser.screenshot(&shots, "reviews").await;
    let decided = api
        .post(format!("{base}/v1/workflows/e-elsewhere/review"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "decision": "reject", "comment": "no" }))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), reqwest::StatusCode::OK);
    wait_for_status(&engine, "e-elsewhere", WorkflowStatus::Completed).await;
    browser
        .wait_for("the review decided elsewhere leaves the inbox", |html| {
            !html.contains("expense of bob") && html.contains("expense of ada")
        })
        .await;
    browser.type_in("#comment-e-approve", "within budget").await;
    browser
        .click_on("#review-e-approve button[value=approve]")
        .await;
    assert!(browser.text("#notice").await.contains("Review decided"));
    wait_for_status(&engine, "e-approve", WorkflowStatus::Completed).await;
    assert_eq!(
        engine
            .result::<expense>("e-approve")
            .await
            .unwrap()
            .unwrap(),
        "approved by ops"
    );

    // An operator may not act in bulk, and the page says which role may.
    browser.goto(&format!("{base}/ui/workflows")).await;
    assert!(
        browser
            .source()
            .await
            .contains("Bulk cancel, signal and purge need role admin")
    );
    // Logged out, then in as a worker: every page is refused, naming the roles needed.
    browser.click_on("form.logout button").await;
    browser
        .wait_for_url("logged out", |url| url.contains("/ui/login"))
        .await;
    browser.type_in("#token", WORKER).await;
    browser.click_on("button[type=submit]").await;
    assert!(
        browser
            .text("[role=alert]")
            .await
            .contains("this needs role operator or admin")
    );
    browser.screenshot(&shots, "refused").await;

    browser.close().await;
    drop(driver);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
