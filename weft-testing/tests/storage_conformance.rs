//! The storage contract of [`weft_testing::conformance`], run against the backends Weft ships.

use weft_runtime::storage::{MemoryStorage, RedbStorage};
use weft_testing::conformance::{self, Backend};

/// A fresh redb store in a temporary directory that lives as long as it.
fn fresh_redb() -> Backend {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let storage = RedbStorage::create(dir.path().join("weft.redb")).expect("create a redb store");
    Backend::new(storage).keeping(dir)
}

mod memory {
    use super::*;

    weft_testing::storage_conformance!(Backend::new(MemoryStorage::new()));
}

mod redb {
    use super::*;

    weft_testing::storage_conformance!(fresh_redb());

    #[test]
    fn data_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.redb");
        conformance::data_persists_across_reopen(&|| {
            Backend::new(RedbStorage::create(&path).expect("open the redb store again"))
        });
    }
}
