//! Connecting: the schema is created and migrated once, a newer one is refused, bad settings
//! get errors that say what to do. Needs a real PostgreSQL (see `support`).

mod support;

use support::{DropSchema, available, fresh_schema, options};
use weft_postgres::{ConnectError, PostgresOptions, PostgresStorage, SCHEMA_VERSION};
use weft_runtime::storage::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_creates_the_schema_once_and_keeps_data_across_connects() {
    if !available() {
        return;
    }
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    // Four processes' worth of connects at once on a schema that does not exist yet: the
    // migration's advisory lock lets one create it; the others find it done.
    let connects = (0..4).map(|_| tokio::spawn(PostgresStorage::connect(options(&schema))));
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(
            connect
                .await
                .unwrap()
                .expect("every concurrent connect succeeds"),
        );
    }
    let first = stores.remove(0);
    tokio::task::spawn_blocking(move || {
        first.put(b"k", b"v").unwrap();
        drop(first);
        for other in &stores {
            assert_eq!(other.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        }
    })
    .await
    .unwrap();
    // One version row, at this release's version.
    let again = PostgresStorage::connect(options(&schema)).await.unwrap();
    tokio::task::spawn_blocking(move || {
        assert_eq!(again.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    })
    .await
    .unwrap();
    let version = tokio::task::spawn_blocking(move || {
        support::query_i64(&format!(
            "SELECT count(*)::bigint * 1000 + max(version) FROM \"{schema}\".weft_schema_version"
        ))
    })
    .await
    .unwrap();
    assert_eq!(version, 1000 + i64::from(SCHEMA_VERSION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_written_by_a_newer_release_is_refused_and_left_alone() {
    if !available() {
        return;
    }
    let schema = fresh_schema();
    let _drop = DropSchema(schema.clone());
    drop(PostgresStorage::connect(options(&schema)).await.unwrap());
    let newer = SCHEMA_VERSION + 1;
    let bump = format!("UPDATE \"{schema}\".weft_schema_version SET version = {newer}");
    tokio::task::spawn_blocking(move || support::execute(&bump))
        .await
        .unwrap();
    match PostgresStorage::connect(options(&schema)).await {
        Err(ConnectError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let error = PostgresStorage::connect(options(&schema))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "postgres.newer_schema");
    assert!(
        error.to_string().contains("run the newer release"),
        "{error}"
    );
}

#[tokio::test]
async fn bad_settings_get_errors_that_say_what_to_do() {
    // No server needed: these fail before or at the connection.
    match PostgresStorage::connect(PostgresOptions::new("host=127.0.0.1 port=notaport")).await {
        Err(error @ ConnectError::InvalidConfig { .. }) => {
            assert_eq!(error.code(), "postgres.invalid_config");
            assert!(error.to_string().contains("host=… port=…"), "{error}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    match PostgresStorage::connect(PostgresOptions::new("host=127.0.0.1").schema("Weft-1")).await {
        Err(ConnectError::InvalidSchema { name }) => assert_eq!(name, "Weft-1"),
        other => panic!("expected InvalidSchema, got {other:?}"),
    }
    // Port 1 on loopback: nothing listens there.
    match PostgresStorage::connect(PostgresOptions::new(
        "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=5",
    ))
    .await
    {
        Err(error @ ConnectError::Connect { .. }) => {
            assert_eq!(error.code(), "postgres.connect");
            assert!(
                error.to_string().contains("check that the server runs"),
                "{error}"
            );
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}
