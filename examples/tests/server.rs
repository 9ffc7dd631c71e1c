//! The `server` example as a process: it serves on the address it logs, reports ready, and
//! drains and exits cleanly at SIGTERM.

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

#[test]
fn the_server_example_serves_reports_ready_and_drains_at_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("server.redb"))
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
            break rest.trim().to_string();
        }
    };
    assert_eq!(get(&addr, "/health"), Some(200));
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&addr, "/ready") != Some(200) {
        assert!(Instant::now() < deadline, "not ready within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("server stopped")),
        "{rest:?}"
    );
}
