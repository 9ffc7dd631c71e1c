//! The dashboard's benchmark in a real browser: Debian's Chromium, headless, driven over
//! WebDriver by `chromedriver`, loads the first pages over 10,000 workflows on redb. The
//! dashboard's behaviour in the browser (login, filters, live updates on a signal sent with the
//! `weft` CLI, reviews, roles) is tested from `weft-cli/tests/ui_browser.rs`, where the `weft`
//! binary is at hand; both share `ui_support/webdriver.rs`.
//!
//! Without chromium and chromedriver the test says why and passes, except under `CI=true`,
//! where `.ci/run` installs them and a missing browser is a failure.

mod support;
mod ui_support;

use std::time::Duration;

use support::*;
use tokio::sync::oneshot;
use ui_support::webdriver::{Driver, browser_available};
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, StartOptions};
use weft_server::Server;

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

/// A benchmark figure, not an assertion: how long the browser takes to load the first page of
/// the list, and the overview, over 10,000 workflows on redb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_page_of_ten_thousand_workflows_loads_in_bounded_time() {
    if !browser_available("the browser benchmark") {
        return;
    }
    const WORKFLOWS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder(RedbStorage::create(dir.path().join("big.redb")).unwrap())
        .register::<parcel>()
        .build()
        .await
        .unwrap();
    let filled = std::time::Instant::now();
    // Started 500 at a time, so the engine's writer commits them in batches.
    for chunk in (0..WORKFLOWS).collect::<Vec<_>>().chunks(500) {
        let starts = chunk.iter().map(|i| {
            let engine = engine.clone();
            async move { start::<parcel>(&engine, &format!("big-{i:05}"), "Lyon".into()).await }
        });
        futures_util::future::join_all(starts).await;
    }
    println!("filled {WORKFLOWS} workflows in {:?}", filled.elapsed());
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
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.session(profile.path()).await;
    browser.goto(&format!("{base}/ui/login")).await;
    browser.type_in("#token", OPERATOR).await;
    browser.click_on("button[type=submit]").await;
    // The click returns before the login's answer: timing a page before the session cookie is
    // set would time the login page (and count nothing).
    assert!(browser.text("#whoami").await.contains("ops"));
    for (page, path) in [
        ("the list's first page", "/ui/workflows"),
        (
            "the waiting list's first page",
            "/ui/workflows?status=waiting",
        ),
        ("the overview", "/ui"),
    ] {
        let started = std::time::Instant::now();
        browser.goto(&format!("{base}{path}")).await;
        let took = started.elapsed();
        println!("benchmark: {page} over {WORKFLOWS} workflows loaded in {took:?}");
    }
    assert!(
        browser
            .source()
            .await
            .contains(&format!("<td id=\"total\">{WORKFLOWS}</td>"))
    );
    browser.goto(&format!("{base}/ui/workflows")).await;
    assert_eq!(browser.find_all("#workflows tbody tr").await.len(), 50);
    browser.close().await;
    drop(driver);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
