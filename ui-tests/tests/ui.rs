//! Compile-pass and compile-fail cases for the Weft macros, one file per case.
//!
//! `tests/ui/pass/*.rs` must compile and run; `tests/ui/fail/*.rs` must fail to compile with
//! exactly the committed `.stderr`. Regenerate those with `TRYBUILD=overwrite`, then read every
//! changed message: the `.stderr` files are the review of what users see.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
