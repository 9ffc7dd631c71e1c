//! Runnable Weft examples. The workflows live here, in the library, so that tests can run them;
//! the programs in `src/bin/` drive them.
//!
//! - [`checkout`]: the README's main example, run by `cargo run -p weft-examples --bin checkout`.
//! - [`crash_job`]: the workload the crash test runs in its `crash_worker` child process.

pub mod checkout;
pub mod crash_job;

/// The workspace README's Rust code, compiled and run as doctests so it cannot drift from the
/// API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
