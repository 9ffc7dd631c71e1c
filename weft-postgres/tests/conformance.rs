//! The storage contract of `weft_testing::conformance`, against a real PostgreSQL (see
//! `support` for how to run it).

mod support;

use support::{available, fresh};
use weft_testing::conformance::{self, Backend};

weft_testing::storage_conformance!(if available() => fresh());

#[test]
fn data_persists_across_reopen() {
    if !available() {
        return;
    }
    let schema = support::fresh_schema();
    let _drop = support::DropSchema(schema.clone());
    conformance::data_persists_across_reopen(&|| {
        Backend::new(support::connect_blocking(support::options(&schema)))
    });
}
