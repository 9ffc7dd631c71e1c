//! The binary's supervisor: an abort, which no `catch_unwind` sees, ends only the worker; the
//! supervisor replays the last stretch input by input, names the input that aborted and saves
//! it, and fails the run.

use std::process::Command;

#[test]
fn an_abort_is_found_saved_and_fails_the_run() {
    let out = std::env::temp_dir().join(format!("weft-fuzz-abort-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_weft-fuzz"))
        .args(["--seed", "5", "--iterations", "3000", "--abort-at", "2500"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("aborts: 1"), "{stdout}");
    let case = weft_fuzz::run::case(5, 2500);
    let path = weft_fuzz::run::failure_file(&out, case.target.name, 5, 2500);
    assert!(
        stdout.contains(&format!(
            "FAILURE {} input 2500: aborted; saved to {}",
            case.target.name,
            path.display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), case.bytes);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_clean_run_says_so_and_succeeds() {
    let output = Command::new(env!("CARGO_BIN_EXE_weft-fuzz"))
        .args(["--seed", "6", "--iterations", "500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for line in ["inputs: 500", "panics: 0", "aborts: 0", "result: clean"] {
        assert!(stdout.contains(line), "no `{line}` in {stdout}");
    }
}
