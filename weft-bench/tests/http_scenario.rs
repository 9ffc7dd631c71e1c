//! The `http` scenario end to end at a tiny size: this binary starts `weft-bench http-server`
//! as a child process, drives workflows through it over HTTP, stops it, and prints both tables.

use std::process::Command;

#[test]
fn the_http_scenario_runs_workflows_through_a_server_process() {
    let dir = tempfile::tempdir().unwrap();
    for call in ["two", "one"] {
        let output = Command::new(env!("CARGO_BIN_EXE_weft-bench"))
            .args([
                "http", "--n", "30", "--k", "3", "--c", "4", "--runs", "3", "--rounds", "1",
                "--versus", "none", "--call", call, "--dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{call}: {stderr}");
        assert!(
            stdout.contains("| weft-server (HTTP) |")
                && stdout.contains("| weft embedded (same process) |")
                && stdout.contains("one workflow of K=3 steps alone"),
            "{call}: {stdout}"
        );
        // Every server process stopped and its store was removed with it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
