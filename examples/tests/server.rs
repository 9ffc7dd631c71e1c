//! The `server` example as a process: it serves on the address it logs, reports ready, drains
//! and exits cleanly at SIGTERM, and keeps every acknowledged call through a SIGKILL or a
//! SIGTERM under load.

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
            break rest.split_whitespace().next().unwrap().to_string();
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

/// A server process of the example on `db`, with an operator token, and its address. Killed
/// when dropped, so a failing test leaves no server behind.
struct Served {
    child: std::process::Child,
    addr: String,
    /// The rest of its log, read on a thread so the pipe never fills.
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const OPERATOR: &str = "operator-token-for-the-kill-tests";

fn serve(db: &std::path::Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .env_remove("WEFT_ADMIN_TOKEN")
        .env_remove("WEFT_WORKER_TOKEN")
        .env_remove("WEFT_TOKENS_FILE")
        .env("WEFT_OPERATOR_TOKEN", OPERATOR)
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
    let log = Some(std::thread::spawn(move || {
        lines.map_while(Result::ok).collect()
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&addr, "/ready") != Some(200) {
        assert!(Instant::now() < deadline, "not ready within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Served { child, addr, log }
}

/// POSTs `body` to `path` with the operator token; the status and the body's JSON, or `None`
/// when the connection failed or was cut before a whole answer (as when the server is killed).
fn post(addr: &str, path: &str, body: &serde_json::Value) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    let body = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {OPERATOR}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let json = serde_json::from_str(response.split("\r\n\r\n").nth(1)?).ok()?;
    Some((status, json))
}

/// What one load thread had acknowledged: per workflow it started, the updates answered `200`.
type Acknowledged = Vec<(String, u64)>;

/// Runs `threads` load threads against the server, each starting expense reports and adding
/// lines of 100 cents to them, until `stop` is set or the server stops answering.
fn load(
    addr: &str,
    threads: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    answered: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<std::thread::JoinHandle<Acknowledged>> {
    use std::sync::atomic::Ordering;
    (0..threads)
        .map(|t| {
            let (addr, stop, answered) = (addr.to_string(), stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut acknowledged: Acknowledged = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("report-{t}-{n}");
                    let start =
                        serde_json::json!({"type": "expense_report", "input": "ada", "id": id});
                    match post(&addr, "/v1/workflows", &start) {
                        Some((s, _)) if (200..300).contains(&s) => {}
                        _ => break,
                    }
                    acknowledged.push((id.clone(), 0));
                    answered.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..3 {
                        let line = serde_json::json!({
                            "request": {"what": "train", "cents": 100, "last": false}
                        });
                        let path = format!("/v1/workflows/{id}/updates/expense.add_line");
                        match post(&addr, &path, &line) {
                            Some((200, _)) => acknowledged.last_mut().unwrap().1 += 1,
                            _ => return acknowledged,
                        }
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
                acknowledged
            })
        })
        .collect()
}

/// Stops the server with `signal` once `calls` calls were answered under load, restarts it on
/// the same file and checks that every acknowledged start and update is there.
fn every_acknowledged_call_survives(signal: &str, calls: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.redb");
    let served = serve(&db);
    let (stop, answered) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let threads = load(&served.addr, 8, &stop, &answered);
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < calls {
        assert!(
            Instant::now() < deadline,
            "{calls} calls not answered within 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Command::new("kill")
        .args([signal, &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut served = served;
    let status = served.child.wait().unwrap();
    let log = served.log.take().unwrap().join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let acknowledged: Acknowledged = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    if signal == "-TERM" {
        assert!(status.success(), "{status:?}: {log:?}");
    }

    let served = serve(&db);
    for (id, lines) in &acknowledged {
        // The last line closes the report; its answer is the total of every line it holds.
        let last = serde_json::json!({"request": {"what": "taxi", "cents": 0, "last": true}});
        let path = format!("/v1/workflows/{id}/updates/expense.add_line");
        let (status, answer) = post(&served.addr, &path, &last).unwrap();
        assert_eq!(status, 200, "{id}: {answer}");
        let total = answer["result"].as_u64().unwrap();
        // Every acknowledged line is there; one more may be, whose answer the kill cut off.
        assert!(
            total == lines * 100 || total == (lines + 1) * 100,
            "{id}: {lines} lines acknowledged, total {total}"
        );
    }
    assert!(acknowledged.len() >= calls / 4, "{}", acknowledged.len());
}

#[test]
fn every_call_acknowledged_before_a_sigkill_under_load_is_there_after_a_restart() {
    every_acknowledged_call_survives("-KILL", 300);
}

#[test]
fn every_call_acknowledged_before_a_sigterm_under_load_is_there_after_a_restart() {
    every_acknowledged_call_survives("-TERM", 300);
}
