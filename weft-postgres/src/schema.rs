//! The database schema this release uses, and the migrations that bring a store to it.

use deadpool_postgres::Client;

use crate::storage::ConnectError;

/// The schema version this release writes: stores at an older version are migrated on
/// connect, stores at a newer one are refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Each version's statements, in order; `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[(i32, &[&str])] = &[(
    1,
    &["CREATE TABLE {schema}.weft_kv (key bytea PRIMARY KEY, value bytea NOT NULL)"],
)];

/// `name` as a quoted SQL identifier, if it is a plain lower-case name PostgreSQL keeps as
/// given (so the schema an operator names is the one created, whatever quoting they use).
pub(crate) fn quoted_schema(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first = chars.next()?;
    let plain = (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    plain.then(|| format!("\"{name}\""))
}

/// Creates the schema if it is missing and applies every migration past its stored version,
/// in one transaction under an advisory lock, so processes that start together apply each
/// migration once. Refuses a schema written by a newer release.
pub(crate) async fn migrate(
    client: &mut Client,
    name: &str,
    quoted: &str,
) -> Result<(), ConnectError> {
    let failed = |e: tokio_postgres::Error| ConnectError::Migrate {
        message: crate::storage::describe(&e),
    };
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("weft-migrate:{name}")],
        )
        .await
        .map_err(failed)?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.weft_schema_version (version integer NOT NULL);"
        ))
        .await
        .map_err(failed)?;
    let row = transaction
        .query_one(
            &format!("SELECT max(version) FROM {quoted}.weft_schema_version"),
            &[],
        )
        .await
        .map_err(failed)?;
    let current: i32 = row.get::<_, Option<i32>>(0).unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(ConnectError::NewerSchema {
            schema: name.to_string(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        for statement in *statements {
            transaction
                .batch_execute(&statement.replace("{schema}", quoted))
                .await
                .map_err(failed)?;
        }
        transaction
            .batch_execute(&format!(
                "DELETE FROM {quoted}.weft_schema_version;
                 INSERT INTO {quoted}.weft_schema_version (version) VALUES ({version});"
            ))
            .await
            .map_err(failed)?;
    }
    transaction.commit().await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lower_case_names_are_schemas() {
        assert_eq!(quoted_schema("weft").as_deref(), Some("\"weft\""));
        assert_eq!(quoted_schema("_w3_x").as_deref(), Some("\"_w3_x\""));
        for bad in [
            "",
            "Weft",
            "3weft",
            "we-ft",
            "we\"ft",
            "a b",
            &"x".repeat(64),
        ] {
            assert_eq!(quoted_schema(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn migrations_are_numbered_up_to_the_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
