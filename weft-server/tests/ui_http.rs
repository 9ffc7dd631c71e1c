//! The dashboard over plain HTTP: login and its cookie, CSRF refusals, logout, every route by
//! every role and without a session, each page on real workflows, and each action.

mod support;
mod ui_support;

use reqwest::{Method, StatusCode, header};
use support::*;
use ui_support::*;
use weft_runtime::{StartOptions, WorkflowStatus};

async fn start_named<W: weft_runtime::Workflow>(server: &TestServer, id: &str, input: W::Input) {
    server
        .engine
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

async fn status_of(server: &TestServer, id: &str) -> Option<WorkflowStatus> {
    server.engine.describe(id).await.ok().map(|d| d.status)
}

async fn wait_for_status(server: &TestServer, id: &str, status: WorkflowStatus) {
    eventually(|| async { status_of(server, id).await == Some(status) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_http_only_session_cookie_and_never_echoes_the_token() {
    let server = TestServer::start().await;
    let browser = Browser::new(server.addr);

    let form = browser.get("/ui/login").await;
    assert_eq!(form.status(), StatusCode::OK);
    let login_cookie = set_cookie(&form, "weft_login_csrf").unwrap();
    assert!(login_cookie.contains("HttpOnly"), "{login_cookie}");
    assert!(login_cookie.contains("SameSite=Strict"), "{login_cookie}");

    let response = browser.try_login(OPERATOR).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ui");
    let cookie = set_cookie(&response, "weft_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/ui"), "{cookie}");
    let id = cookie_value(&cookie);
    assert_eq!(id.len(), 64, "256 random bits, hex: {id}");
    assert!(!cookie.contains(OPERATOR) && !location(&response).contains(OPERATOR));

    let ops = Browser::login(server.addr, OPERATOR).await;
    let (status, html) = ops.page("/ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Logged in as <strong>ops</strong> (operator)"),
        "{html}"
    );
    assert!(
        !html.contains(OPERATOR),
        "the token must never reach a page"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_a_forged_login_form_opens_no_session() {
    let server = TestServer::start().await;
    let browser = Browser::new(server.addr);

    let wrong = browser.try_login("not-a-token-of-this-server").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "weft_session").is_none());

    // A form posted from elsewhere has no login CSRF cookie (SameSite=Strict keeps it home).
    let forged = browser
        .post_raw(
            "/ui/login",
            &[("csrf", "0".repeat(64).as_str()), ("token", ADMIN)],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&forged, "weft_session").is_none());
    assert!(forged.text().await.unwrap().contains("CSRF"));

    // A made-up session id is no session.
    let mut guess = Browser::new(server.addr);
    guess.session = Some("0".repeat(64));
    let response = guess.get("/ui").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_pages_redirect_to_login_and_actions_are_refused() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let anonymous = Browser::new(server.addr);
    let page = anonymous.get("/ui/workflows?status=waiting").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&page),
        "/ui/login?next=%2Fui%2Fworkflows%3Fstatus%3Dwaiting"
    );
    let cancel = anonymous
        .post_raw("/ui/workflows/p-1/cancel", &[("csrf", "x")])
        .await;
    assert_eq!(cancel.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of(&server, "p-1").await,
        Some(WorkflowStatus::Waiting)
    );
    // A bearer token is for the API: the dashboard takes only its session cookie.
    let bearer = server.get("/ui", Some(ADMIN)).send().await.unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::OK,
        "redirects are followed here"
    );
    assert!(bearer.url().path().starts_with("/ui/login"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let other = Browser::login(server.addr, ADMIN).await;

    let missing = ops.post_raw("/ui/workflows/p-1/cancel", &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let foreign = ops
        .post_raw(
            "/ui/workflows/p-1/cancel",
            &[("csrf", other.csrf.as_deref().unwrap())],
        )
        .await;
    assert_eq!(
        foreign.status(),
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    assert!(foreign.text().await.unwrap().contains("CSRF token"));
    assert_eq!(
        status_of(&server, "p-1").await,
        Some(WorkflowStatus::Waiting)
    );

    let done = ops.post("/ui/workflows/p-1/cancel", &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    wait_for_status(&server, "p-1", WorkflowStatus::Cancelled).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let server = TestServer::start().await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    assert_eq!(ops.get("/ui").await.status(), StatusCode::OK);
    let forged = ops.post_raw("/ui/logout", &[]).await;
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "logout needs the CSRF token too"
    );
    assert_eq!(ops.get("/ui").await.status(), StatusCode::OK);

    let out = ops.post("/ui/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/ui/login?message=logged_out");
    let cleared = set_cookie(&out, "weft_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old id no longer names a session, even if a browser kept it.
    let after = ops.get("/ui").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(location(&after).starts_with("/ui/login"));
    server.stop().await;
}

fn concrete(path: &str) -> String {
    // A cancel that got through would end the probe: it goes to a workflow that does not exist.
    let id = if path.ends_with("/cancel") {
        "no-such-workflow"
    } else {
        "auth-probe"
    };
    path.replace("{id}", id).replace("{action}", "cancel")
}

async fn send(browser: &Browser, method: &Method, url: &str) -> reqwest::Response {
    if *method == Method::GET {
        browser.get(url).await
    } else {
        // Fields that keep each action harmless: a dry-run bulk, a signal whose JSON is bad.
        browser
            .post(url, &[("name", "Ship"), ("payload", "{not json")])
            .await
    }
}

fn browser_token(role: weft_server::Role) -> &'static str {
    match role {
        weft_server::Role::Worker => WORKER,
        weft_server::Role::Operator => OPERATOR,
        weft_server::Role::Admin => ADMIN,
    }
}

/// Every route behind a session, walked with no session, a worker, an operator and an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_route_admits_exactly_the_roles_of_its_api_twin() {
    let server = TestServer::start().await;
    server.parcel("auth-probe", "Lyon").await;
    let anonymous = Browser::new(server.addr);
    let worker = Browser::login(server.addr, WORKER).await;
    let operator = Browser::login(server.addr, OPERATOR).await;
    let admin = Browser::login(server.addr, ADMIN).await;
    let table = weft_server::ui::route_table();
    assert!(table.len() >= 16, "{table:?}");
    for (method, path, access) in table {
        let url = concrete(path);
        let none = send(&anonymous, &method, &url).await;
        if method == Method::GET {
            assert_eq!(none.status(), StatusCode::SEE_OTHER, "{method} {path}");
        } else {
            assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        }
        for (browser, role) in [
            (&worker, weft_server::Role::Worker),
            (&operator, weft_server::Role::Operator),
            (&admin, weft_server::Role::Admin),
        ] {
            // Logging out would end the session the rest of the walk uses: use a fresh one.
            let fresh;
            let browser = if path == "/ui/logout" {
                fresh = Browser::login(server.addr, browser_token(role)).await;
                &fresh
            } else {
                browser
            };
            let response = send(browser, &method, &url).await;
            let status = response.status();
            if access.admits(role) {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} as {role:?}: {status}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role:?}");
                let html = response.text().await.unwrap();
                let needed = access.roles().join(" or ");
                assert!(
                    html.contains(&format!("this needs role {needed}")),
                    "{method} {path} as {role:?}: {html}"
                );
            }
        }
    }
    // The walk left the probe as it was: every POST that got through was harmless.
    assert_eq!(
        status_of(&server, "auth-probe").await,
        Some(WorkflowStatus::Waiting)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_by_status_and_type_and_lists_the_oldest_waiting() {
    let server = TestServer::start().await;
    server.parcel("p-old", "Lyon").await;
    // Ages are kept in milliseconds: let the clock pass p-old's before starting p-new, which
    // sorts first by id, so only its age can put it second.
    let old_at = server.engine.describe("p-old").await.unwrap().updated_at;
    eventually(|| async {
        std::time::SystemTime::now() > old_at + std::time::Duration::from_millis(1)
    })
    .await;
    server.parcel("a-new", "Oslo").await;
    start_named::<hello>(&server, "h-1", "ada".into()).await;
    wait_for_status(&server, "h-1", WorkflowStatus::Completed).await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let (status, html) = ops.page("/ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-status="waiting">2<"#), "{html}");
    assert!(html.contains(r#"data-status="completed">1<"#), "{html}");
    assert!(html.contains(r#"<td id="total">3</td>"#), "{html}");
    assert!(
        html.contains(r#"href="/ui/workflows?type=parcel">parcel</a></td><td>2</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"<dd id="started-hour">3</dd>"#), "{html}");
    assert!(html.contains(r#"<dd id="finished-hour">1</dd>"#), "{html}");
    // Oldest first, each with its pending command in words.
    let old = html.find("/ui/workflows/p-old").unwrap();
    let new = html.find("/ui/workflows/a-new").unwrap();
    assert!(old < new, "oldest waiting first");
    assert!(html.contains("for signal `Ship`"), "{html}");
    assert!(html.contains("No workflow is parked."), "{html}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_from_the_url_and_pages_with_the_engines_cursor() {
    let server = TestServer::start().await;
    for i in 0..55 {
        start_named::<hello>(&server, &format!("h-{i:03}"), "x".into()).await;
    }
    server.parcel("p-1", "Lyon").await;
    let ops = Browser::login(server.addr, OPERATOR).await;

    let (_, waiting) = ops.page("/ui/workflows?status=waiting").await;
    assert!(waiting.contains("/ui/workflows/p-1"), "{waiting}");
    assert!(!waiting.contains("/ui/workflows/h-000"), "{waiting}");
    assert!(
        waiting.contains(r#"<option value="waiting" selected>"#),
        "the filter stays in the form"
    );

    let (_, first) = ops.page("/ui/workflows?id_prefix=h-").await;
    assert_eq!(
        first.matches("<tr><td><a href=\"/ui/workflows/h-").count(),
        50
    );
    let at = first.find("id=\"next-page\" href=\"").unwrap() + "id=\"next-page\" href=\"".len();
    let next = first[at..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(
        next.starts_with("/ui/workflows?id_prefix=h-&cursor="),
        "{next}"
    );
    let (_, second) = ops.page(&next).await;
    assert_eq!(
        second.matches("<tr><td><a href=\"/ui/workflows/h-").count(),
        5
    );
    assert!(second.contains("/ui/workflows/h-054") && !second.contains("next-page"));

    let (_, none) = ops
        .page("/ui/workflows?created_before=1970-01-02T00:00")
        .await;
    assert!(none.contains("No workflow matches."), "{none}");
    let (status, _) = ops.page("/ui/workflows?attr=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_sorts_by_time_from_the_url_and_its_pages_keep_the_order() {
    let server = TestServer::start().await;
    // Started in id order: newest created first is the reverse of id order (ties in time go
    // by id, so it holds within one millisecond too).
    for i in 0..55 {
        start_named::<hello>(&server, &format!("h-{i:03}"), "x".into()).await;
    }
    let ops = Browser::login(server.addr, OPERATOR).await;
    let rows = |html: &str| -> Vec<String> {
        html.split("<tr><td><a href=\"/ui/workflows/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let (status, first) = ops
        .page("/ui/workflows?id_prefix=h-&sort=created_desc")
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let ids = rows(&first);
    assert_eq!(ids.len(), 50);
    assert_eq!(ids[0], "h-054");
    assert_eq!(ids[49], "h-005");
    assert!(
        first.contains(r#"<option value="created_desc" selected>"#),
        "{first}"
    );
    assert!(first.contains(r#"aria-sort="descending""#), "{first}");
    // The column header turns the order round.
    assert!(
        first.contains(
            r#"id="sort-created" href="/ui/workflows?id_prefix=h-&amp;sort=created_asc""#
        ),
        "{first}"
    );
    let at = first.find("id=\"next-page\" href=\"").unwrap() + "id=\"next-page\" href=\"".len();
    let next = first[at..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(
        next.starts_with("/ui/workflows?id_prefix=h-&sort=created_desc&cursor="),
        "{next}"
    );
    let (_, second) = ops.page(&next).await;
    assert_eq!(rows(&second), ["h-004", "h-003", "h-002", "h-001", "h-000"]);

    let (_, oldest) = ops.page("/ui/workflows?sort=updated_asc").await;
    assert_eq!(rows(&oldest)[0], "h-000");
    let (status, _) = ops.page("/ui/workflows?sort=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_page_links_its_children_and_a_childs_page_links_its_parent() {
    let server = TestServer::start().await;
    start_named::<dispatch>(&server, "d-1", "Lyon".into()).await;
    let child = "d-1/1";
    eventually(|| async { status_of(&server, child).await == Some(WorkflowStatus::Waiting) }).await;
    // The API's describe names the children from the engine's children index.
    let (status, view) = {
        let response = server
            .get("/v1/workflows/d-1", Some(OPERATOR))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["children"], serde_json::json!([child]), "{view}");
    let ops = Browser::login(server.addr, OPERATOR).await;
    let (_, parent_page) = ops.page("/ui/workflows/d-1").await;
    assert!(
        parent_page.contains(
            r#"<dd id="children"><ul><li><a href="/ui/workflows/d-1%2F1">d-1/1</a></li></ul></dd>"#
        ),
        "{parent_page}"
    );
    let (_, child_page) = ops.page("/ui/workflows/d-1%2F1").await;
    assert!(
        child_page.contains(r#"<dd id="parent"><a href="/ui/workflows/d-1">d-1</a></dd>"#),
        "{child_page}"
    );
    assert!(!child_page.contains(r#"id="children""#), "{child_page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_page_shows_its_checkpoint_and_a_signal_from_the_form_reaches_it() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let (status, html) = ops.page("/ui/workflows/p-1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<code id="state-name">AwaitSignalShip</code>"#),
        "{html}"
    );
    assert!(html.contains("waiting for signal `Ship` since"), "{html}");
    assert!(
        html.contains(
            r#"<span class="key">to</span>: <code class="value">&quot;Lyon&quot;</code>"#
        ),
        "{html}"
    );
    assert!(html.contains(r#"<option value="Ship">"#), "{html}");
    assert!(
        html.contains("JSON Schema of Ship"),
        "the signal's schema is offered"
    );
    assert!(
        html.contains(r#"sse-connect="/ui/workflows/p-1/events""#),
        "{html}"
    );

    let bad = ops
        .post(
            "/ui/workflows/p-1/signal",
            &[("name", "Ship"), ("payload", "{oops")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("not valid JSON"));
    let wrong_shape = ops
        .post(
            "/ui/workflows/p-1/signal",
            &[("name", "Ship"), ("payload", r#"{"carrier": 7}"#)],
        )
        .await;
    assert_eq!(wrong_shape.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        status_of(&server, "p-1").await,
        Some(WorkflowStatus::Waiting)
    );

    let sent = ops
        .post(
            "/ui/workflows/p-1/signal",
            &[("name", "Ship"), ("payload", r#"{"carrier": "rail"}"#)],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&sent), "/ui/workflows/p-1?done=signal");
    wait_for_status(&server, "p-1", WorkflowStatus::Completed).await;
    let (_, actions) = ops.page("/ui/workflows/p-1/actions").await;
    assert!(
        !actions.contains("signal-Ship") && !actions.contains("<nav"),
        "{actions}"
    );
    assert!(
        actions.contains(r#"id="purge""#),
        "a finished workflow can be purged: {actions}"
    );
    let (_, done) = ops.page("/ui/workflows/p-1?done=signal").await;
    assert!(done.contains("Signal sent"), "{done}");
    assert!(
        done.contains("&quot;Lyon by rail&quot;"),
        "the result is shown: {done}"
    );
    assert!(
        done.contains("workflow.signal"),
        "the audit shows who signalled"
    );
    let (_, missing) = ops.page("/ui/workflows/nobody").await;
    assert!(
        missing.contains("engine.not_found") || missing.contains("not_found"),
        "{missing}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_opens_with_ready_and_carries_the_workflows_steps() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let response = ops
        .http
        .get(ops.url("/ui/workflows/p-1/events"))
        .header(
            header::COOKIE,
            format!("weft_session={}", ops.session.as_deref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(response);
    assert_eq!(events.next().await.unwrap().event, "ready");
    server
        .engine
        .signal(
            "p-1",
            Ship {
                carrier: "air".into(),
            },
        )
        .await
        .unwrap();
    let step = events.next().await.unwrap();
    assert_eq!(step.event, "step");
    assert_eq!(step.data["workflow_id"], "p-1");
    let (_, live) = ops.page("/ui/workflows/p-1/live").await;
    assert!(live.contains("Lyon by air"), "{live}");
    assert!(
        !live.contains("<nav"),
        "the live part is a fragment, not a page"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_from_the_form_is_answered_on_the_page() {
    let server = TestServer::start().await;
    start_named::<tally>(&server, "t-1", 10).await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let (_, html) = ops.page("/ui/workflows/t-1").await;
    assert!(html.contains(r#"<option value="tally.add">"#), "{html}");
    assert!(
        !html.contains("schema-form"),
        "no schema, no form: only the JSON editor"
    );
    let answered = ops
        .post(
            "/ui/workflows/t-1/update",
            &[("name", "tally.add"), ("request", r#"{"n": 4}"#)],
        )
        .await;
    assert_eq!(answered.status(), StatusCode::OK);
    let page = answered.text().await.unwrap();
    assert!(
        page.contains(r#"<span class="key">answer</span>: <code class="value">4</code>"#),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_inbox_filters_by_reviewer_and_records_the_sessions_principal() {
    let server = TestServer::start().await;
    start_named::<expense>(&server, "e-1", "ada".into()).await;
    wait_for_status(&server, "e-1", WorkflowStatus::Waiting).await;
    start_named::<expense>(&server, "e-2", "bob".into()).await;
    wait_for_status(&server, "e-2", WorkflowStatus::Waiting).await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    // From the workflow's own page too.
    let (_, page) = ops.page("/ui/workflows/e-2").await;
    assert!(page.contains(r#"id="review-form""#), "{page}");
    let rejected = ops
        .post(
            "/ui/workflows/e-2/review",
            &[("decision", "reject"), ("comment", "no")],
        )
        .await;
    assert_eq!(location(&rejected), "/ui/workflows/e-2?done=review");
    wait_for_status(&server, "e-2", WorkflowStatus::Completed).await;
    assert_eq!(
        server
            .engine
            .result::<expense>("e-2")
            .await
            .unwrap()
            .unwrap(),
        "rejected by ops"
    );
    let (status, inbox) = ops.page("/ui/reviews").await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox.contains("expense of ada"), "{inbox}");
    // The artifact: what the workflow holds at its review await, as a JSON tree.
    let row = &inbox[inbox.find(r#"id="review-e-1""#).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(r#"<details class="json" open><summary><span class="key">AwaitReview"#),
        "{row}"
    );
    assert!(
        row.contains(r#"<span class="key">who</span>: <code class="value">&quot;ada&quot;</code>"#),
        "{row}"
    );
    assert!(inbox.contains(r#"sse-connect="/ui/events""#), "{inbox}");
    let (_, mine) = ops.page("/ui/reviews?reviewer=manager").await;
    assert!(mine.contains("expense of ada"));
    let (_, theirs) = ops.page("/ui/reviews?reviewer=nobody").await;
    assert!(theirs.contains("No review is waiting"), "{theirs}");

    let decided = ops
        .post(
            "/ui/workflows/e-1/review",
            &[
                ("decision", "approve"),
                ("comment", "fine"),
                ("next", "/ui/reviews"),
            ],
        )
        .await;
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&decided), "/ui/reviews?done=review");
    wait_for_status(&server, "e-1", WorkflowStatus::Completed).await;
    let result = server
        .engine
        .result::<expense>("e-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "approved by ops");
    let (_, table) = ops.page("/ui/reviews/table").await;
    assert!(table.contains("No review is waiting"), "{table}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_actions_count_first_then_act_and_only_for_admins() {
    let server = TestServer::start().await;
    for i in 0..3 {
        server.parcel(&format!("bulk-{i}"), "Lyon").await;
    }
    server.parcel("keep-1", "Oslo").await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let admin = Browser::login(server.addr, ADMIN).await;

    let (_, list) = ops.page("/ui/workflows?id_prefix=bulk-").await;
    assert!(
        list.contains("Bulk cancel, signal and purge need role admin"),
        "{list}"
    );
    let refused = ops
        .post("/ui/bulk/cancel", &[("filter", "id_prefix=bulk-")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("this needs role admin")
    );

    let dry = admin
        .post("/ui/bulk/cancel", &[("filter", "id_prefix=bulk-")])
        .await;
    assert_eq!(dry.status(), StatusCode::OK);
    let confirm = dry.text().await.unwrap();
    assert!(
        confirm.contains("<strong>3</strong> workflows match"),
        "{confirm}"
    );
    assert!(
        confirm.contains(r#"name="confirm" value="yes""#),
        "{confirm}"
    );
    assert_eq!(
        status_of(&server, "bulk-0").await,
        Some(WorkflowStatus::Waiting),
        "a dry run"
    );

    let done = admin
        .post(
            "/ui/bulk/cancel",
            &[("filter", "id_prefix=bulk-"), ("confirm", "yes")],
        )
        .await;
    let html = done.text().await.unwrap();
    assert!(
        html.contains("Acted on 3 workflows: 3 succeeded, 0 failed."),
        "{html}"
    );
    for i in 0..3 {
        wait_for_status(&server, &format!("bulk-{i}"), WorkflowStatus::Cancelled).await;
    }
    assert_eq!(
        status_of(&server, "keep-1").await,
        Some(WorkflowStatus::Waiting)
    );

    let signalled = admin
        .post(
            "/ui/bulk/signal",
            &[
                ("filter", "id_prefix=keep-"),
                ("signal", "Ship"),
                ("payload", r#"{"carrier":"sea"}"#),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert!(signalled.text().await.unwrap().contains("1 succeeded"));
    wait_for_status(&server, "keep-1", WorkflowStatus::Completed).await;

    let purged = admin
        .post(
            "/ui/bulk/purge",
            &[("filter", "status=cancelled"), ("confirm", "yes")],
        )
        .await;
    assert!(purged.text().await.unwrap().contains("3 succeeded"));
    assert_eq!(status_of(&server, "bulk-0").await, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_is_for_admins_and_retry_brings_a_parked_workflow_back() {
    let server = TestServer::start().await;
    start_named::<hello>(&server, "h-1", "ada".into()).await;
    wait_for_status(&server, "h-1", WorkflowStatus::Completed).await;
    let ops = Browser::login(server.addr, OPERATOR).await;
    let admin = Browser::login(server.addr, ADMIN).await;
    let (_, page) = ops.page("/ui/workflows/h-1").await;
    assert!(page.contains("Purging needs role admin."), "{page}");
    let refused = ops.post("/ui/workflows/h-1/purge", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(status_of(&server, "h-1").await.is_some());
    let purged = admin.post("/ui/workflows/h-1/purge", &[]).await;
    assert_eq!(purged.status(), StatusCode::OK);
    assert_eq!(status_of(&server, "h-1").await, None);
    let again = admin.post("/ui/workflows/h-1/purge", &[]).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    BREAK_FRAGILE.store(true, std::sync::atomic::Ordering::SeqCst);
    start_named::<fragile>(&server, "f-1", 1).await;
    wait_for_status(&server, "f-1", WorkflowStatus::Parked).await;
    let (_, overview) = ops.page("/ui").await;
    assert!(overview.contains("/ui/workflows/f-1"), "{overview}");
    let (_, parked) = ops.page("/ui/workflows/f-1").await;
    assert!(parked.contains(r#"id="park-reason""#), "{parked}");
    assert!(parked.contains(r#"id="retry""#), "{parked}");
    BREAK_FRAGILE.store(false, std::sync::atomic::Ordering::SeqCst);
    let retried = ops.post("/ui/workflows/f-1/retry", &[]).await;
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    wait_for_status(&server, "f-1", WorkflowStatus::Completed).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assets_are_embedded_and_public() {
    let server = TestServer::start().await;
    let browser = Browser::new(server.addr);
    let htmx = browser.get("/ui/assets/htmx.min.js").await;
    assert_eq!(htmx.status(), StatusCode::OK);
    assert!(
        htmx.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        htmx.text().await.unwrap().starts_with("/*! htmx 2."),
        "the license header is kept"
    );
    assert_eq!(
        browser.get("/ui/assets/style.css").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        browser.get("/ui/assets/htmx-ext-sse.js").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        browser.get("/ui/assets/nope.js").await.status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}
