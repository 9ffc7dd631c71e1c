//! # weft-postgres: Weft's store on PostgreSQL
//!
//! [`PostgresStorage`] keeps a Weft engine's data in a PostgreSQL database, the database its
//! users already run, back up and fail over. It implements the engine's storage contract
//! ([`weft_runtime::storage::Storage`]) and passes its conformance suite
//! ([`weft_testing::conformance`](https://docs.rs/weft-testing)) against a real server:
//! ordered scans, atomic batches, and the conditional batch the engine's fencing is built on,
//! checked in one `SERIALIZABLE` transaction per batch.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_postgres::{PostgresOptions, PostgresStorage};
//!
//! // Connection settings in libpq's form; the schema is created and migrated on connect.
//! let options = PostgresOptions::new("host=127.0.0.1 port=5432 user=weft dbname=weft")
//!     .schema("weft");
//! let storage = PostgresStorage::connect(options).await?;
//! let engine = weft_runtime::Engine::builder(storage)
//!     // .register::<your_workflow>()
//!     .build()
//!     .await?;
//! # drop(engine);
//! # Ok(())
//! # }
//! ```
//!
//! ## What this version is, and what comes next
//!
//! The engine speaks to storage through a byte key-value contract today, so this backend
//! stores that contract's keys and values in one table (`weft_kv`), with the byte order the
//! engine's scans rely on (PostgreSQL orders `bytea` bytewise). One engine owns a store at a
//! time, fenced by the owner epoch in its conditional batches, as on redb. Several engine
//! processes on one database under partition leases, with real tables per record kind and
//! SQL indexes for visibility, need the engine's domain-level store seam and partitioned
//! ownership; until then this is the single-owner backend.
//!
//! ## When the database restarts or fails over
//!
//! Every call that finds no server fails with [`StorageError::Backend`], which the engine
//! answers as a retryable error (`EngineError::kind()` is `unavailable`). The engine holds the
//! steps it had acknowledged and commits them again, with backoff, until the server answers;
//! the pool drops the connections the server closed and opens new ones, so the same engine
//! resumes without a rebuild (`tests/failover.rs` restarts the server under load). A server
//! that vanishes without closing its connections fails calls after a bounded time: unless
//! the settings say otherwise, connecting times out after 10 s and a connection whose sent
//! data stays unacknowledged for 30 s is dropped (`connect_timeout`, `tcp_user_timeout`).
//!
//! [`StorageError::Backend`]: weft_runtime::storage::StorageError::Backend
//!
//! ## Schema and migrations
//!
//! Everything lives in one PostgreSQL schema (default `weft`), created on connect. Its
//! version is kept in `weft_schema_version`; [`PostgresStorage::connect`] applies the
//! migrations this release knows, under an advisory lock so two processes starting at once
//! do not race, and refuses a schema written by a newer release
//! ([`ConnectError::NewerSchema`]).

mod bridge;
mod schema;
mod storage;

pub use schema::SCHEMA_VERSION;
pub use storage::{ConnectError, PostgresOptions, PostgresStats, PostgresStorage};
