//! The `server` example on PostgreSQL, as `deploy/kubernetes-postgres` runs it: with
//! `WEFT_DATABASE_URL` set it keeps its workflows in that database (no redb file is created),
//! reports ready, and exits cleanly at SIGTERM. Needs the server named by `WEFT_TEST_POSTGRES`
//! (`eval "$(.ci/postgres start)"`); skips with the reason printed when it is unset outside CI.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GETs `path` from `addr` over HTTP/1.1 and returns the status code.
fn get(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `sql` on the test database and returns the first column of each row, as text.
fn query(conn: &str, sql: &str) -> Vec<String> {
    let (conn, sql) = (conn.to_string(), sql.to_string());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .simple_query(&sql)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                    _ => None,
                })
                .collect()
        })
}

/// Drops the test's schema when dropped, so a failing test leaves none behind.
struct DropSchema<'a>(&'a str, String);

impl Drop for DropSchema<'_> {
    fn drop(&mut self) {
        query(
            self.0,
            &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.1),
        );
    }
}

#[test]
fn the_server_example_runs_on_postgres_when_given_a_database_url() {
    let conn = match std::env::var("WEFT_TEST_POSTGRES") {
        Ok(conn) if !conn.is_empty() => conn,
        _ if std::env::var_os("CI").is_some() => {
            panic!("WEFT_TEST_POSTGRES is unset under CI: .ci/run starts PostgreSQL and sets it")
        }
        _ => {
            eprintln!(
                "skipped: WEFT_TEST_POSTGRES is unset; run `eval \"$(.ci/postgres start)\"` first"
            );
            return;
        }
    };
    let schema = format!("server_example_{}", std::process::id());
    let _drop = DropSchema(&conn, schema.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("WEFT_DATABASE_URL", &conn)
        .env("WEFT_DATABASE_SCHEMA", &schema)
        .env_remove("WEFT_ADMIN_TOKEN")
        .env_remove("WEFT_OPERATOR_TOKEN")
        .env_remove("WEFT_WORKER_TOKEN")
        .env_remove("WEFT_TOKENS_FILE")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("address=").nth(1)
            && line.contains("listening")
        {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&addr, "/ready") != Some(200) {
        assert!(Instant::now() < deadline, "not ready within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The store is the schema in PostgreSQL, owned by this engine; no redb file was made.
    let epoch = query(
        &conn,
        &format!(
            "SELECT encode(value, 'hex') FROM \"{schema}\".weft_kv WHERE key = 'meta/epoch'::bytea"
        ),
    );
    assert_eq!(epoch.len(), 1, "the engine took ownership in {schema}");
    assert!(!db.exists(), "no redb file on PostgreSQL");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest:?}");
}
