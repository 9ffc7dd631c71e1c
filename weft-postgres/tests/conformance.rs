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

/// With one connection, every batch after a refused one runs on the connection the refused one
/// used: a false condition and a statement the server fails must each leave it outside any
/// transaction, with nothing of the refused batch written.
#[test]
fn a_refused_batch_leaves_its_connection_clean() {
    use weft_runtime::storage::{Batch, Condition, Storage, StorageError};
    if !available() {
        return;
    }
    let schema = support::fresh_schema();
    let _drop = support::DropSchema(schema.clone());
    let storage = support::connect_blocking(support::options(&schema).pool_size(1));
    let put = |key: &[u8], value: &[u8]| {
        let mut batch = Batch::new();
        batch.put(key.to_vec(), value.to_vec());
        batch
    };
    storage.apply_if(&[], &put(b"a", b"1")).unwrap();

    // A false condition: the pipelined write is rolled back.
    let stale = [Condition {
        key: b"a".to_vec(),
        expected: Some(b"0".to_vec()),
    }];
    let refused = storage.apply_if(&stale, &put(b"b", b"2")).unwrap_err();
    assert!(matches!(refused, StorageError::ConditionFailed { .. }));
    assert_eq!(storage.get(b"b").unwrap(), None);

    // A statement the server fails: a key too large for the primary key's index (random bytes
    // do not compress), sent in the same pipeline as a good write.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let huge: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut batch = put(b"c", b"3");
    batch.put(huge, b"x".to_vec());
    let failed = storage.apply_if(&[], &batch).unwrap_err();
    assert!(matches!(failed, StorageError::Backend { .. }), "{failed:?}");
    assert_eq!(storage.get(b"c").unwrap(), None);

    // The same connection commits the next batch, and it is durable.
    let holds = [Condition {
        key: b"a".to_vec(),
        expected: Some(b"1".to_vec()),
    }];
    storage.apply_if(&holds, &put(b"d", b"4")).unwrap();
    assert_eq!(storage.get(b"d").unwrap(), Some(b"4".to_vec()));
    assert_eq!(storage.stats().write_transactions, 2);
}
