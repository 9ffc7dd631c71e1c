//! [`PostgresStorage`]: the engine's storage contract over one PostgreSQL table.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use weft_runtime::storage::{Batch, Condition, Entry, Storage, StorageError, Write};

use crate::bridge::Bridge;
use crate::schema;

/// How many times a batch is tried again when PostgreSQL aborts it to keep transactions
/// serializable (another batch touched the same keys at once). Each retry reads its conditions
/// afresh, so a retry that then finds a condition false answers `ConditionFailed`.
const SERIALIZATION_RETRIES: u32 = 50;

/// How long opening a connection may take when the settings name no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long sent data may stay unacknowledged before the connection counts as broken, when the
/// settings name no `tcp_user_timeout` (Linux only; elsewhere TCP keepalives decide).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    config: String,
    schema: String,
    pool_size: usize,
}

impl PostgresOptions {
    /// Connection settings in libpq's key-value form (`host=… port=… user=… dbname=…`) or as
    /// a `postgresql://` URL. TLS is not built in: connect over loopback or a private network,
    /// or through a TLS-terminating proxy.
    pub fn new(config: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            config: config.into(),
            schema: "weft".to_string(),
            pool_size: 8,
        }
    }

    /// The PostgreSQL schema that holds Weft's tables (default `weft`): a plain lower-case
    /// name (letters, digits, `_`). Several stores can share one database in schemas of their
    /// own.
    pub fn schema(mut self, schema: impl Into<String>) -> PostgresOptions {
        self.schema = schema.into();
        self
    }

    /// The most connections the store opens (default 8). The engine's writer uses one at a
    /// time; the rest serve reads from listings, queries and runners.
    pub fn pool_size(mut self, pool_size: usize) -> PostgresOptions {
        self.pool_size = pool_size.max(1);
        self
    }
}

/// [`PostgresStorage::connect`] failed; nothing was written unless the error says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection settings do not parse.
    #[error(
        "the PostgreSQL connection settings do not parse ({message}); give libpq's `host=… port=… user=… dbname=…` form or a postgresql:// URL"
    )]
    InvalidConfig {
        /// What the parser said.
        message: String,
    },
    /// The schema name is not a plain lower-case identifier.
    #[error(
        "`{name}` is not a usable schema name: use lower-case letters, digits and `_`, starting with a letter or `_`, at most 63 bytes"
    )]
    InvalidSchema {
        /// The name given.
        name: String,
    },
    /// No connection could be opened.
    #[error(
        "cannot connect to PostgreSQL ({message}); check that the server runs, listens on that host and port, and accepts this user"
    )]
    Connect {
        /// What the client or the server said.
        message: String,
    },
    /// Creating or migrating the schema failed; the migration's transaction was rolled back.
    #[error(
        "creating or migrating Weft's schema failed ({message}); the user needs the right to create a schema and tables in this database"
    )]
    Migrate {
        /// What the server said.
        message: String,
    },
    /// The schema was written by a newer release of Weft.
    #[error(
        "schema `{schema}` is at version {found}, newer than this release's {supported}: run the newer release, or restore a backup taken before the upgrade"
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// The version found.
        found: i32,
        /// The newest version this release knows.
        supported: i32,
    },
    /// The storage's own runtime could not start.
    #[error("cannot start the PostgreSQL storage's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ConnectError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::InvalidConfig { .. } => "postgres.invalid_config",
            ConnectError::InvalidSchema { .. } => "postgres.invalid_schema",
            ConnectError::Connect { .. } => "postgres.connect",
            ConnectError::Migrate { .. } => "postgres.migrate",
            ConnectError::NewerSchema { .. } => "postgres.newer_schema",
            ConnectError::Runtime(_) => "postgres.runtime",
        }
    }
}

/// The engine's storage on PostgreSQL: every key and value in one table of the configured
/// schema, each batch one `SERIALIZABLE` transaction with its conditions read inside it.
///
/// Its calls block the calling thread, as the [`Storage`] contract says; the engine makes them
/// from its writer thread and tokio's blocking pool. Do not call them on an async worker.
pub struct PostgresStorage {
    db: Arc<Db>,
    /// Last, so the runtime stops after the pool is dropped.
    bridge: Bridge,
}

/// What the futures run on the bridge share.
struct Db {
    pool: Pool,
    /// `"schema".weft_kv`.
    table: String,
    /// What [`PostgresStorage::stats`] reports.
    counters: Counters,
}

/// Counts of what the storage asked of the server, since it connected.
#[derive(Debug, Default)]
struct Counters {
    write_transactions: AtomicU64,
    serialization_retries: AtomicU64,
    rows_written: AtomicU64,
    reads: AtomicU64,
}

/// What a [`PostgresStorage`] asked of the server since it connected: to relate the engine's
/// batches to database transactions (see `docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresStats {
    /// Batches committed, each one transaction (tries that a serialization failure aborted
    /// are not counted here but in `serialization_retries`).
    pub write_transactions: u64,
    /// Batch transactions aborted by the server to keep transactions serializable, and tried
    /// again.
    pub serialization_retries: u64,
    /// Rows inserted, updated or deleted by the committed batches (one per distinct key).
    pub rows_written: u64,
    /// Reads (`get` and scans), each one statement in a transaction of its own.
    pub reads: u64,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("table", &self.db.table)
            .finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Connects, creates the schema if it is missing and migrates it to [`crate::SCHEMA_VERSION`].
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: settings that do not parse, a bad schema name, no server, a failed
    /// migration, or a schema written by a newer release.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the work runs on the storage's own runtime, and a migration is one
    /// transaction, committed whole or not at all, whether or not this future is still
    /// awaited.
    pub async fn connect(options: PostgresOptions) -> Result<PostgresStorage, ConnectError> {
        let mut config: tokio_postgres::Config =
            options.config.parse().map_err(|e: tokio_postgres::Error| {
                ConnectError::InvalidConfig {
                    message: e.to_string(),
                }
            })?;
        // A server that went away without closing its connections (a failover that moved its
        // address, a partition) must fail calls in bounded time, not hang the engine's writer
        // until the operating system gives up on the socket: a call fails, the engine holds
        // its commit and retries, and the pool opens a new connection (see `lib.rs`).
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let quoted =
            schema::quoted_schema(&options.schema).ok_or_else(|| ConnectError::InvalidSchema {
                name: options.schema.clone(),
            })?;
        let bridge = Bridge::new()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| ConnectError::Connect {
                message: e.to_string(),
            })?;
        let db = Arc::new(Db {
            pool,
            table: format!("{quoted}.weft_kv"),
            counters: Counters::default(),
        });
        let migrating = Arc::clone(&db);
        let name = options.schema.clone();
        bridge
            .handle()
            .spawn(async move {
                let mut client = migrating
                    .pool
                    .get()
                    .await
                    .map_err(|e| ConnectError::Connect {
                        message: e.to_string(),
                    })?;
                schema::migrate(&mut client, &name, &quoted).await
            })
            .await
            .map_err(|e| ConnectError::Connect {
                message: format!("the connecting task stopped: {e}"),
            })??;
        Ok(PostgresStorage { db, bridge })
    }

    /// Closes every connection. Calls after this fail with a backend error.
    pub fn close(&self) {
        self.db.pool.close();
    }

    /// What this storage asked of the server since it connected.
    pub fn stats(&self) -> PostgresStats {
        let c = &self.db.counters;
        PostgresStats {
            write_transactions: c.write_transactions.load(Ordering::Relaxed),
            serialization_retries: c.serialization_retries.load(Ordering::Relaxed),
            rows_written: c.rows_written.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` with the database on the bridge, blocking until it is done.
    fn run<T, F>(&self, f: impl FnOnce(Arc<Db>) -> F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        self.bridge
            .block_on(f(Arc::clone(&self.db)))
            .map_err(|_| StorageError::backend("the PostgreSQL storage stopped"))?
    }
}

impl Db {
    async fn client(&self) -> Result<deadpool_postgres::Client, StorageError> {
        self.pool
            .get()
            .await
            .map_err(|e| StorageError::backend(format!("PostgreSQL: no connection: {e}")))
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StorageError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("SELECT value FROM {} WHERE key = $1", self.table))
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&statement, &[&key])
            .await
            .map_err(backend)?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn scan(
        &self,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut predicates = Vec::new();
        let mut params: Vec<Vec<u8>> = Vec::new();
        for (bound, included, excluded) in [(&start, ">=", ">"), (&end, "<=", "<")] {
            match bound {
                Bound::Included(key) => {
                    params.push(key.clone());
                    predicates.push(format!("key {included} ${}", params.len()));
                }
                Bound::Excluded(key) => {
                    params.push(key.clone());
                    predicates.push(format!("key {excluded} ${}", params.len()));
                }
                Bound::Unbounded => {}
            }
        }
        let filter = if predicates.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", predicates.join(" AND "))
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT key, value FROM {} {filter} ORDER BY key {} LIMIT ${}",
            self.table,
            if reverse { "DESC" } else { "ASC" },
            params.len() + 1
        );
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await.map_err(backend)?;
        let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p as _).collect();
        args.push(&limit);
        let rows = client.query(&statement, &args).await.map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    /// One attempt at a conditional batch: `Ok(Err(..))` when the condition failed,
    /// `Err(..)` when PostgreSQL refused the transaction.
    ///
    /// Two round trips, pipelined on one connection: `BEGIN`, the conditions' read, the upsert
    /// and the delete go out together (the server runs them in that order, so the read sees
    /// the store before the writes), then `COMMIT`, or `ROLLBACK` when a condition is false,
    /// which discards the writes as if they had never been sent.
    async fn try_apply(
        &self,
        conditions: &[Condition],
        puts: &(Vec<Vec<u8>>, Vec<Vec<u8>>),
        deletes: &Vec<Vec<u8>>,
    ) -> Result<Result<(), StorageError>, tokio_postgres::Error> {
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(e) => {
                return Ok(Err(StorageError::backend(format!(
                    "PostgreSQL: no connection: {e}"
                ))));
            }
        };
        // Prepared once per connection, outside the transaction; free after the first batch.
        let select = match conditions.is_empty() {
            true => None,
            false => Some(
                client
                    .prepare_cached(&format!(
                        "SELECT key, value FROM {} WHERE key = ANY($1)",
                        self.table
                    ))
                    .await?,
            ),
        };
        let upsert = match puts.0.is_empty() {
            true => None,
            false => Some(
                client
                    .prepare_cached(&format!(
                        "INSERT INTO {} (key, value) SELECT * FROM UNNEST($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        self.table
                    ))
                    .await?,
            ),
        };
        let delete = match deletes.is_empty() {
            true => None,
            false => Some(
                client
                    .prepare_cached(&format!("DELETE FROM {} WHERE key = ANY($1)", self.table))
                    .await?,
            ),
        };
        let keys: Vec<Vec<u8>> = conditions.iter().map(|c| c.key.clone()).collect();
        // Each future sends its request when first polled, and `try_join!` polls them in
        // order: one pipelined round trip, statements run in this order.
        let sent = tokio::try_join!(
            client.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE"),
            async {
                match &select {
                    Some(statement) => client.query(statement, &[&keys]).await,
                    None => Ok(Vec::new()),
                }
            },
            async {
                match &upsert {
                    Some(statement) => client.execute(statement, &[&puts.0, &puts.1]).await,
                    None => Ok(0),
                }
            },
            async {
                match &delete {
                    Some(statement) => client.execute(statement, &[deletes]).await,
                    None => Ok(0),
                }
            },
        );
        let found = match sent {
            Ok((_, found, _, _)) => found,
            Err(e) => {
                // The transaction is aborted (or was never begun): end it, so the connection
                // goes back to the pool outside any transaction. A broken connection fails
                // this too, and the pool drops it when it is next taken.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        };
        let found: BTreeMap<Vec<u8>, Vec<u8>> = found
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        for condition in conditions {
            if found.get(&condition.key) != condition.expected.as_ref() {
                client.batch_execute("ROLLBACK").await?;
                return Ok(Err(StorageError::ConditionFailed {
                    key: condition.key.clone(),
                }));
            }
        }
        // A failed COMMIT (a serialization failure found at commit) ends the transaction too.
        client.batch_execute("COMMIT").await?;
        let c = &self.counters;
        c.write_transactions.fetch_add(1, Ordering::Relaxed);
        c.rows_written
            .fetch_add((puts.0.len() + deletes.len()) as u64, Ordering::Relaxed);
        Ok(Ok(()))
    }

    async fn apply_if(&self, conditions: Vec<Condition>, batch: Batch) -> Result<(), StorageError> {
        // A batch's writes apply in order: only each key's last write matters.
        let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for write in batch.writes {
            match write {
                Write::Put(key, value) => last.insert(key, Some(value)),
                Write::Delete(key) => last.insert(key, None),
            };
        }
        let mut puts = (Vec::new(), Vec::new());
        let mut deletes = Vec::new();
        for (key, value) in last {
            match value {
                Some(value) => {
                    puts.0.push(key);
                    puts.1.push(value);
                }
                None => deletes.push(key),
            }
        }
        let mut attempt = 0;
        loop {
            match self.try_apply(&conditions, &puts, &deletes).await {
                Ok(outcome) => return outcome,
                Err(e) if retryable(&e) && attempt < SERIALIZATION_RETRIES => {
                    attempt += 1;
                    self.counters
                        .serialization_retries
                        .fetch_add(1, Ordering::Relaxed);
                    // Spread the retries of batches that collided so they do not collide again.
                    tokio::time::sleep(Duration::from_micros(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(backend(e)),
            }
        }
    }
}

/// Whether PostgreSQL aborted the transaction only to keep transactions serializable: nothing
/// of it was written, and the same batch may be tried again.
fn retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The client's error with the server's message and detail, which its `Display` leaves out.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => error.to_string(),
    }
}

fn backend(error: tokio_postgres::Error) -> StorageError {
    StorageError::backend(format!("PostgreSQL: {}", describe(&error)))
}

fn owned(bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(key) => Bound::Included(key.to_vec()),
        Bound::Excluded(key) => Bound::Excluded(key.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Storage for PostgresStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let key = key.to_vec();
        self.run(|db| async move { db.get(key).await })
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = (owned(start), owned(end));
        self.run(|db| async move { db.scan(start, end, limit, false).await })
    }

    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = (owned(start), owned(end));
        self.run(|db| async move { db.scan(start, end, limit, true).await })
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        let conditions = conditions.to_vec();
        // Moved into the pool's runtime, which outlives this borrow.
        let batch = batch.clone();
        self.run(|db| async move { db.apply_if(conditions, batch).await })
    }
}
