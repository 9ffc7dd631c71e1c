//! Runnable Weft examples. The workflows live here, in the library, so that tests can run them;
//! the programs in `src/bin/` drive them.
//!
//! - [`approvals`]: updates answered by a workflow and a human review with a deadline; run by
//!   `cargo run -p weft-examples --bin approvals`.
//! - [`checkout`]: the README's main example, run by `cargo run -p weft-examples --bin checkout`.
//! - [`cli`]: the argument parsing and `main` the example programs share.
//! - [`crash_point`]: the `--crash-after N` switch of the checkout and trip examples.
//! - [`crash_job`]: the workload the crash test runs in its `crash_worker` child process.
//! - [`fan_out`]: `ctx.all` over a list, a race with a deadline, child workflows; run by
//!   `cargo run -p weft-examples --bin fan_out`.
//! - [`trip`]: a saga that undoes bookings when one fails; run by
//!   `cargo run -p weft-examples --bin trip`.

pub mod approvals;
pub mod checkout;
pub mod cli;
pub mod crash_job;
pub mod crash_point;
pub mod fan_out;
pub mod trip;

/// The workspace README's Rust code, compiled and run as doctests so it cannot drift from the
/// API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
