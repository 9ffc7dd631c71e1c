//! Compile tests of the Weft macros.
//!
//! [`representative`] holds the representative workflows: this crate compiling is the pass test
//! of every construct; `weft-macros` snapshots their expansions from this file; and
//! `tests/differential.rs` drives each one against a hand-written plain function.
//! `tests/ui.rs` runs the trybuild cases in `tests/ui/`.

pub mod representative;
