//! Runnable Weft examples. The workflows live here, in the library, so that tests can run them;
//! the programs in `src/bin/` drive them.
//!
//! - [`checkout`]: the README's main example, run by `cargo run -p weft-examples --bin checkout`.

pub mod checkout;
