//! Live events over SSE: a workflow's stream from its description to its end, resuming with
//! `Last-Event-ID` without a miss or a repeat, the window's edge, and streams ending at shutdown.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_stream_starts_with_its_description_and_ends_when_it_finishes() {
    let server = TestServer::start().await;
    server.parcel("p-1", "Lyon").await;
    let mut events = SseReader::new(
        server
            .get("/v1/workflows/p-1/events", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    );
    let first = events.next().await.unwrap();
    assert_eq!(first.event, "description");
    assert_eq!(first.data["status"], "waiting");
    assert!(
        first.data["waiting_on"]
            .as_str()
            .unwrap()
            .starts_with("waiting for signal `Ship` since "),
        "{}",
        first.data
    );
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
    let step = events.next().await.unwrap();
    assert_eq!(step.event, "step");
    assert_eq!(step.data["status"], "completed");
    assert_eq!(step.data["workflow_id"], "p-1");
    assert_eq!(step.id, step.data["event_id"].as_u64());
    assert_eq!(
        events.next().await,
        None,
        "the stream ends after the last step"
    );
    let missing = server
        .get("/v1/workflows/nope/events", Some(OPERATOR))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice() {
    let server = TestServer::start().await;
    let mut events = SseReader::new(
        server
            .get("/v1/events?type=parcel", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    );
    server.parcel("a", "Lyon").await;
    let first = events.next().await.unwrap();
    assert_eq!(first.data["workflow_id"], "a");
    drop(events); // the client goes away
    for id in ["b", "c"] {
        server.parcel(id, "Lyon").await;
    }
    server
        .engine
        .signal(
            "a",
            Ship {
                carrier: "rail".into(),
            },
        )
        .await
        .unwrap();
    let mut resumed = SseReader::new(
        server
            .get("/v1/events?type=parcel", Some(OPERATOR))
            .header("Last-Event-ID", first.id.unwrap().to_string())
            .send()
            .await
            .unwrap(),
    );
    let mut seen = Vec::new();
    let mut ids = vec![first.id.unwrap()];
    while seen.len() < 3 {
        let event = resumed.next().await.unwrap();
        assert_eq!(event.event, "step");
        ids.push(event.id.unwrap());
        seen.push((
            event.data["workflow_id"].as_str().unwrap().to_string(),
            event.data["status"].as_str().unwrap().to_string(),
        ));
    }
    let mut expected = vec![
        ("b".to_string(), "waiting".to_string()),
        ("c".to_string(), "waiting".to_string()),
        ("a".to_string(), "completed".to_string()),
    ];
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_event_id_outside_the_window_is_told_so_and_gets_the_description() {
    let engine = engine().await;
    let listening = weft_server::Server::builder(engine.clone())
        .address("127.0.0.1:0".parse().unwrap())
        .tokens(tokens())
        .event_window(2)
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
    let http = reqwest::Client::new();
    let mut all = SseReader::new(
        http.get(format!("http://{addr}/v1/events"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap(),
    );
    let start = |id: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .start_with::<parcel>(
                    "Lyon".into(),
                    weft_runtime::StartOptions {
                        id: Some(id.into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
    };
    start("w-1").await;
    let oldest = all.next().await.unwrap().id.unwrap();
    for id in ["w-2", "w-3", "w-4"] {
        start(id).await;
    }
    for _ in 0..3 {
        all.next().await.unwrap();
    }
    let mut late = SseReader::new(
        http.get(format!("http://{addr}/v1/workflows/w-1/events"))
            .bearer_auth(OPERATOR)
            .header("Last-Event-ID", oldest.to_string())
            .send()
            .await
            .unwrap(),
    );
    let gap = late.next().await.unwrap();
    assert_eq!(gap.event, "gap");
    assert!(gap.data["message"].as_str().unwrap().contains("no longer"));
    let description = late.next().await.unwrap();
    assert_eq!(description.event, "description");
    assert_eq!(description.data["id"], "w-1");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_open_streams_and_completes() {
    let server = TestServer::start().await;
    let mut events = SseReader::new(
        server
            .get("/v1/events", Some(OPERATOR))
            .send()
            .await
            .unwrap(),
    );
    server.parcel("p-1", "Lyon").await;
    assert_eq!(events.next().await.unwrap().event, "step");
    let stopping = tokio::spawn(server.stop());
    assert_eq!(events.next().await, None);
    tokio::time::timeout(std::time::Duration::from_secs(5), stopping)
        .await
        .expect("the server stopped within its grace period")
        .unwrap();
}
