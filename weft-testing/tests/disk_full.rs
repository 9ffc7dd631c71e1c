//! A full disk under the real engine on a real redb file: while the disk is full, writes fail
//! with a typed error and nothing acknowledged is lost; once space is freed, the same engine
//! (no restart) recovers by itself and every workflow finishes.
//!
//! The store lives on its own 8 MiB tmpfs, mounted for the test. Mounting needs root (CI runs as
//! root); elsewhere the test is skipped with a printed reason. The mount is undone in every case,
//! by a guard, even when an assertion fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use weft_runtime::engine::{Engine, ErrorKind, ListFilter, WorkflowStatus};
use weft_runtime::storage::RedbStorage;
use weft_runtime::{
    ActivityError, StartOptions, WorkflowContext, WorkflowError, activity, workflow,
};

/// Held shut until the disk is full, so the workflows' next transitions land on a full disk.
static GATE: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn gate() -> &'static watch::Sender<bool> {
    GATE.get_or_init(|| watch::channel(false).0)
}

/// How large each step's result is: large enough that the transitions that follow need pages the
/// file does not have yet, so they meet the full disk rather than reuse freed pages.
const BLOB: usize = 48 * 1024;

/// A large result, once the gate opens.
#[activity]
async fn blob(n: u64) -> Result<String, ActivityError> {
    let mut open = gate().subscribe();
    let _ = open.wait_for(|open| *open).await;
    Ok(format!("{n:08}{}", "x".repeat(BLOB)))
}

/// Two large results, the first held in the state across the second step.
#[workflow]
async fn grow(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let first = ctx.run(blob, n).await?;
    let second = ctx.run(blob, n + 1).await?;
    Ok(n + (first.len() + second.len()) as u64)
}

const WORKFLOWS: u64 = 16;

fn expected(n: u64) -> u64 {
    n + 2 * (8 + BLOB as u64)
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mounts an 8 MiB tmpfs at `dir`, or says why it cannot.
    fn tmpfs(dir: &Path) -> Result<Mount, String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .and_then(|line| line.split_whitespace().nth(2))
            == Some("0");
        if !root {
            return Err("mounting a tmpfs needs root (CI runs as root)".into());
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // A file still open (an engine task not yet gone) makes a plain unmount fail; a lazy one
        // detaches the mount at once and frees it when the last file closes.
        let plain = Command::new("umount").arg(&self.0).status();
        if !plain.is_ok_and(|status| status.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes `path` until the file system refuses more, and returns that error.
fn fill(path: &Path) -> std::io::Error {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        // Down to single bytes, so no space is left over for a small write to slip into.
        let mut size = chunk.len();
        loop {
            match file.write_all(&chunk[..size]) {
                Ok(()) => break,
                Err(e) if size == 1 => return e,
                Err(_) => size /= 2,
            }
        }
        if let Err(e) = file.sync_all() {
            return e;
        }
    }
}

/// Waits for `condition`, failing the test after `limit`.
async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn build(path: &Path) -> Engine {
    Engine::builder(RedbStorage::create(path).unwrap())
        .register::<grow>()
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_disk_writes_fail_typed_and_the_same_engine_recovers_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mount = match Mount::tmpfs(dir.path()) {
        Ok(mount) => mount,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let store = mount.0.join("store.redb");
    let filler = mount.0.join("filler");

    let engine = build(&store).await;
    // Acknowledged work: every start returned, each workflow waits in its first activity.
    let mut handles = Vec::new();
    for n in 0..WORKFLOWS {
        let options = StartOptions {
            id: Some(format!("grow-{n}")),
            ..StartOptions::default()
        };
        handles.push(engine.start_with::<grow>(n, options).await.unwrap());
    }

    let error = fill(&filler);
    assert_eq!(
        error.raw_os_error(),
        Some(28),
        "filled until ENOSPC: {error}"
    );
    gate().send_replace(true);

    // The workflows' next transitions meet the full disk: the writer holds them for a retry and
    // reports the storage error, which names the cause.
    wait_until(
        Duration::from_secs(20),
        "a commit fails on the full disk",
        || engine.storage_fault().is_some(),
    )
    .await;
    let fault = engine.storage_fault().unwrap();
    println!("while the disk is full: {fault}");
    assert_eq!(fault.code(), "storage.backend");
    assert!(
        fault.to_string().contains("No space left on device"),
        "the error names the cause: {fault}"
    );
    // New calls are refused with a typed, retryable error while the disk is full, and what they
    // asked for is not stored.
    let refused = engine.start::<grow>(1000).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    assert!(refused.code().starts_with("storage."), "{}", refused.code());
    assert!(engine.transitions_awaiting_storage() > 0);
    for handle in &handles {
        // Nothing finished on a full disk (a result needs a commit); a read may fail, typed.
        match handle.describe().await {
            Ok(description) => assert_eq!(description.status, WorkflowStatus::Running),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
        }
    }

    // Space comes back: the same engine notices by itself, and every workflow finishes.
    std::fs::remove_file(&filler).unwrap();
    for (n, handle) in handles.iter().enumerate() {
        let result = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match handle.result().await {
                    // A read made while redb was still refusing calls: ask again, as a client
                    // would after a retryable error.
                    Err(e) if e.kind() == ErrorKind::Unavailable => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    other => return other,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} did not finish after space was freed", handle.id()));
        assert_eq!(result.unwrap().unwrap(), expected(n as u64));
    }
    assert_eq!(engine.storage_fault(), None);
    assert_eq!(engine.transitions_awaiting_storage(), 0);
    // The refused start stored nothing; the engine takes new work again.
    let listed = engine
        .list(&ListFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len() as u64, WORKFLOWS);
    let after = engine.start::<grow>(2000).await.unwrap();
    assert_eq!(after.result().await.unwrap().unwrap(), expected(2000));
    // Handles hold the engine's state, and with it the file: let go of them all.
    drop((handles, after));
    engine.shutdown().await;

    // Nothing acknowledged was lost: a fresh engine on the same file sees every result.
    let engine = build(&store).await;
    for n in 0..WORKFLOWS {
        let result = engine.result::<grow>(&format!("grow-{n}")).await.unwrap();
        assert_eq!(result.unwrap(), expected(n));
    }
    engine.shutdown().await;
    drop(mount);
}
