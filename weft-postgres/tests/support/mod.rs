//! What weft-postgres's tests share: the database they run against, and fresh schemas in it.
//!
//! The tests need a real PostgreSQL server, named by `WEFT_TEST_POSTGRES` (libpq's
//! `host=… port=… user=… dbname=…` form). To run them locally:
//!
//! ```text
//! eval "$(.ci/postgres start)"   # a throw-away cluster on 127.0.0.1:55432
//! cargo test -p weft-postgres
//! .ci/postgres stop
//! ```
//!
//! Without it they skip with that advice printed, except under CI (`CI` set), where `.ci/run`
//! starts the server and a missing variable is a failure.

#![allow(dead_code)] // Each test file uses a part.

use std::sync::atomic::{AtomicU64, Ordering};

use weft_postgres::{PostgresOptions, PostgresStorage};
use weft_testing::conformance::Backend;

/// The test database's connection settings; `None` (after saying why) when there is none.
pub fn database() -> Option<String> {
    match std::env::var("WEFT_TEST_POSTGRES") {
        Ok(config) if !config.is_empty() => Some(config),
        _ if std::env::var_os("CI").is_some() => panic!(
            "WEFT_TEST_POSTGRES is unset under CI: .ci/run starts PostgreSQL and sets it (see .ci/postgres)"
        ),
        _ => {
            eprintln!(
                "skipped: WEFT_TEST_POSTGRES is unset; run `eval \"$(.ci/postgres start)\"` first to test against a real PostgreSQL"
            );
            None
        }
    }
}

/// Whether there is a database to test against.
pub fn available() -> bool {
    database().is_some()
}

/// A schema name no other test uses, in this run or an earlier one.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for schema `schema` of the test database.
pub fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::new(database().expect("a test database")).schema(schema)
}

/// Runs `future` to its end on a thread of its own, so it works from synchronous code and from
/// async code alike (where blocking on a runtime of its own would panic).
fn run_apart<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    })
    .join()
    .expect("the helper thread panicked")
}

/// Connects, from synchronous code.
pub fn connect_blocking(options: PostgresOptions) -> PostgresStorage {
    run_apart(PostgresStorage::connect(options)).expect("connect to the test database")
}

/// Runs SQL on the test database from synchronous code.
pub fn execute(sql: &str) {
    let config = database().expect("a test database");
    let sql = sql.to_string();
    run_apart(async move {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        let driver = tokio::spawn(connection);
        client.batch_execute(&sql).await.expect("run the SQL");
        drop(client);
        let _ = driver.await;
    });
}

/// The one `bigint` the query `sql` answers, from synchronous code.
pub fn query_i64(sql: &str) -> i64 {
    let config = database().expect("a test database");
    let sql = sql.to_string();
    run_apart(async move {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        let driver = tokio::spawn(connection);
        let value: i64 = client
            .query_one(&sql, &[])
            .await
            .expect("run the query")
            .get(0);
        drop(client);
        let _ = driver.await;
        value
    })
}

/// Drops its schema when dropped, after the storage in the same [`Backend`].
pub struct DropSchema(pub String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
    }
}

/// A fresh, empty store in a schema of its own, dropped with the backend.
pub fn fresh() -> Backend {
    let schema = fresh_schema();
    let storage = connect_blocking(options(&schema));
    Backend::new(storage).keeping(DropSchema(schema))
}
