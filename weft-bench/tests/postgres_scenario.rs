//! The `postgres` scenario end to end at a tiny size, without a peer: weft on redb and on the
//! PostgreSQL server named by `WEFT_TEST_POSTGRES` (started by `.ci/postgres start`, see
//! weft-postgres's tests), with the database's transaction and row counts read back. Skips
//! with the reason printed when that variable is unset outside CI.

use std::process::Command;

#[test]
fn the_postgres_scenario_pairs_redb_and_postgres_and_counts_transactions() {
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
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weft-bench"))
        .args([
            "postgres",
            "--n",
            "30",
            "--k",
            "3",
            "--c",
            "4",
            "--rounds",
            "2",
            "--versus",
            "none",
            "--postgres",
            &conn,
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("| round 2 |") && stdout.contains("| weft (PostgreSQL) |"),
        "{stdout}"
    );
    // The PostgreSQL row has database counts: numbers, not the dash of a side without them.
    let row = stdout
        .lines()
        .find(|line| line.starts_with("| weft (PostgreSQL) |"))
        .unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    for cell in &cells[2..6] {
        let median: f64 = cell
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("not a figure: {cell} in {row}"));
        assert!(median > 0.0, "{row}");
    }
    assert!(stderr.contains("postgres round 2:"), "{stderr}");
    // Each round's schema was dropped with it.
    let left = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'weft\\_bench\\_%'",
                    &[],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        });
    assert_eq!(left, 0, "schemas left behind");
}
