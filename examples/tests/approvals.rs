//! The approvals example: its workflow under the crash harness (a crash at every commit, with
//! updates and a review decision sent as it waits), and its program.

use weft_examples::approvals::{AddLine, Settlement, expense_report};
use weft_runtime::Decision;
use weft_testing::{CrashTest, Signals};

fn line(what: &str, cents: u64, last: bool) -> AddLine {
    AddLine {
        what: what.to_string(),
        cents,
        last,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_report_survives_a_crash_at_every_commit() {
    let signals = Signals::none()
        .then_update(line("train", 4_200, false), "u1", 4_200)
        .then_update(line("hotel", 11_000, true), "u2", 15_200)
        .then_decision(Decision::Approved {
            by: "manager".to_string(),
            comment: "fine".to_string(),
        });
    let report = CrashTest::<expense_report>::new()
        .signals(signals)
        .run("ada".to_string())
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.crashed_runs >= 5, "{report}");
    let expected = Settlement::Paid {
        cents: 15_200,
        reference: "PAY-ada-15200".to_string(),
        approved_by: "manager".to_string(),
    };
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": serde_json::to_value(&expected).unwrap() })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_and_an_expired_report_survive_a_crash_at_every_commit() {
    let rejected = Signals::none()
        .then_update(line("stapler", 99_900, true), "u1", 99_900)
        .then_decision(Decision::Rejected {
            by: "manager".to_string(),
            comment: "no".to_string(),
        });
    let report = CrashTest::<expense_report>::new()
        .signals(rejected)
        .run("bob".to_string())
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    let expected = Settlement::Rejected {
        by: "manager".to_string(),
        comment: "no".to_string(),
    };
    assert_eq!(
        report.output,
        serde_json::json!({ "Ok": serde_json::to_value(&expected).unwrap() })
    );
    // No decision: the harness moves the virtual clock to the review's deadline.
    let expired = Signals::none().then_update(line("taxi", 3_000, true), "u1", 3_000);
    let report = CrashTest::<expense_report>::new()
        .signals(expired)
        .run("cy".to_string())
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.output, serde_json::json!({ "Ok": "Expired" }));
}

#[test]
fn the_program_runs() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_approvals"))
        .output()
        .expect("the program starts");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("not added twice"), "{stdout}");
    assert!(stdout.contains("report-ada: paid 15200 cents"), "{stdout}");
    assert!(
        stdout.contains("report-bob: rejected by manager"),
        "{stdout}"
    );
    assert!(stdout.contains("pending reviews left: 0"), "{stdout}");
}
