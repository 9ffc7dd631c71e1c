//! Partition leases: which engine owns a partition, under which epoch, until when.
//!
//! Ownership moves from the whole store to the partition (see `docs/operations.md` and the
//! partitions work). Each partition `p` has two keys:
//!
//! - `lease/<p u16 BE>`: a [`LeaseRecord`] (owner, epoch, expiry), rewritten by every renewal;
//! - `lepoch/<p u16 BE>`: the lease's epoch alone, as `[0x01][u64 BE]`, written only when the
//!   epoch changes.
//!
//! A write made under a lease is fenced on `lepoch/<p>` ([`fence`]), not on the lease record:
//! a fence compares bytes, and the record's bytes change at every renewal, which would refuse
//! the owner's own writes prepared before it renewed. The epoch changes only when someone
//! else (or a new incarnation of the same owner) acquires the partition, which is exactly when
//! an owner's writes must stop landing.
//!
//! The rules, each one conditional write that compares the lease record's bytes as read, so of
//! two engines racing on a partition exactly one wins:
//!
//! - [`acquire`] takes a partition that has no lease, whose lease has expired, or that was
//!   released, and always with a newer epoch, even when the stored owner has the same name
//!   (a restarted process must fence its previous incarnation);
//! - [`renew`] extends a lease that still names its owner and epoch, even after its expiry
//!   if nobody took it meanwhile (the epoch is what fences, not the clock);
//! - [`release`] ends a lease at once (its expiry set to zero), keeping its epoch, so the next
//!   acquirer counts up from it.
//!
//! Times are milliseconds on the caller's clock. On one machine (redb, memory) that is one
//! clock; a shared database uses its own clock in the lease statements instead, so nodes'
//! clocks never decide who owns what.
//!
//! Every function here is blocking storage I/O: the engine calls them off its async workers.

use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::storage::{Batch, Condition, Storage, StorageError};

use super::partition::Partition;
use super::record::{self, Record, RecordError};

/// The prefix of the lease records: `lease/<partition u16 BE>`.
pub const LEASE_PREFIX: &[u8] = b"lease/";

/// The prefix of the lease epochs that writes are fenced on: `lepoch/<partition u16 BE>`.
pub const LEASE_EPOCH_PREFIX: &[u8] = b"lepoch/";

/// The longest owner name accepted, in bytes.
pub const MAX_OWNER_LEN: usize = 256;

/// `lease/<partition u16 BE>`.
pub fn lease_key(partition: Partition) -> Vec<u8> {
    [LEASE_PREFIX, &partition.to_be_bytes()].concat()
}

/// `lepoch/<partition u16 BE>`.
pub fn lease_epoch_key(partition: Partition) -> Vec<u8> {
    [LEASE_EPOCH_PREFIX, &partition.to_be_bytes()].concat()
}

/// A partition's lease as stored at `lease/<p>` (format tag `0x01`).
///
/// Layout: `owner: String, epoch: u64, expires_ms: u64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The engine that holds (or last held) it.
    pub owner: String,
    /// Counted up by every acquisition; writes are fenced on it.
    pub epoch: u64,
    /// When it lapses, in milliseconds since the Unix epoch; 0 once released.
    pub expires_ms: u64,
}

impl Record for LeaseRecord {}

/// A lease this engine holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The partition it covers.
    pub partition: Partition,
    /// The holder's name.
    pub owner: String,
    /// The epoch its writes are fenced on.
    pub epoch: u64,
    /// When it lapses unless renewed (ms since the Unix epoch).
    pub expires_ms: u64,
}

/// What [`acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The partition is this engine's, under a newer epoch.
    Taken(Lease),
    /// Another owner holds it until `expires_ms`.
    Held {
        /// The current holder.
        owner: String,
        /// Its epoch.
        epoch: u64,
        /// When its lease lapses unless renewed.
        expires_ms: u64,
    },
}

/// Why a lease call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// The owner name is empty or longer than [`MAX_OWNER_LEN`] bytes.
    #[error("a lease owner must be 1 to {MAX_OWNER_LEN} bytes long, found {len}")]
    InvalidOwner {
        /// The name's length in bytes.
        len: usize,
    },
    /// The lease is no longer the caller's: someone acquired the partition since (or it was
    /// never acquired under this epoch). Drop the partition: its writes are refused now.
    #[error(
        "the lease of partition {partition} is no longer held by `{owner}` under epoch {epoch}; drop the partition"
    )]
    Lost {
        /// The partition.
        partition: Partition,
        /// The owner that asked.
        owner: String,
        /// The epoch it held.
        epoch: u64,
    },
    /// The stored lease record does not decode; nothing was written. Restore the store or
    /// delete the key to let the partition be acquired anew (every owner's writes stay fenced
    /// on the epoch key meanwhile).
    #[error(
        "the lease record of partition {partition} does not decode ({source}); nothing was written"
    )]
    Damaged {
        /// The partition.
        partition: Partition,
        /// What is wrong with it.
        source: RecordError,
    },
    /// Another engine changed the lease between this call's read and its write, twice in a
    /// row; try again.
    #[error("the lease of partition {partition} kept changing under this call; try again")]
    Contended {
        /// The partition.
        partition: Partition,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The record could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl LeaseError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            LeaseError::InvalidOwner { .. } => "lease.invalid_owner",
            LeaseError::Lost { .. } => "lease.lost",
            LeaseError::Damaged { .. } => "lease.damaged",
            LeaseError::Contended { .. } => "lease.contended",
            LeaseError::Storage(_) => "lease.storage",
            LeaseError::Codec(_) => "lease.codec",
        }
    }
}

/// The condition that fences a write on `lease`: the partition's epoch is still its epoch.
pub fn fence(lease: &Lease) -> Condition {
    Condition {
        key: lease_epoch_key(lease.partition),
        expected: Some(record::encode_epoch(lease.epoch)),
    }
}

/// Reads the lease of `partition`: `None` when it was never acquired.
///
/// # Errors
///
/// [`LeaseError::Damaged`] when the record does not decode; [`LeaseError::Storage`].
pub fn read(
    storage: &dyn Storage,
    partition: Partition,
) -> Result<Option<LeaseRecord>, LeaseError> {
    Ok(read_raw(storage, partition)?.map(|(record, _)| record))
}

/// Takes `partition` for `owner` until `now_ms + ttl_ms` when nobody else holds it: it has no
/// lease, its lease expired (`now_ms >= expires_ms`), or it was released. The new epoch is one
/// more than the stored one (1 for a partition never acquired).
///
/// # Errors
///
/// [`LeaseError::InvalidOwner`], [`LeaseError::Damaged`], [`LeaseError::Contended`] when the
/// lease changed between read and write twice, [`LeaseError::Storage`].
pub fn acquire(
    storage: &dyn Storage,
    partition: Partition,
    owner: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<Acquired, LeaseError> {
    check_owner(owner)?;
    for _ in 0..2 {
        let current = read_raw(storage, partition)?;
        let epoch = match &current {
            Some((stored, _)) if stored.expires_ms > now_ms && stored.owner != owner => {
                return Ok(Acquired::Held {
                    owner: stored.owner.clone(),
                    epoch: stored.epoch,
                    expires_ms: stored.expires_ms,
                });
            }
            Some((stored, _)) => stored.epoch.saturating_add(1),
            None => 1,
        };
        let lease = Lease {
            partition,
            owner: owner.to_string(),
            epoch,
            expires_ms: now_ms.saturating_add(ttl_ms),
        };
        let mut batch = Batch::new();
        batch.put(lease_key(partition), encode(&lease)?);
        batch.put(lease_epoch_key(partition), record::encode_epoch(epoch));
        match storage.apply_if(&[unchanged(partition, current)], &batch) {
            Ok(()) => return Ok(Acquired::Taken(lease)),
            // Someone else wrote it between the read and the write: decide again on what they
            // wrote (most likely, they hold it now).
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(LeaseError::Contended { partition })
}

/// Extends `lease` to `now_ms + ttl_ms` while the stored lease still names its owner and
/// epoch, and updates `lease.expires_ms`.
///
/// # Errors
///
/// [`LeaseError::Lost`] when someone acquired the partition since (drop it);
/// [`LeaseError::Damaged`], [`LeaseError::Contended`], [`LeaseError::Storage`].
pub fn renew(
    storage: &dyn Storage,
    lease: &mut Lease,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(), LeaseError> {
    for _ in 0..2 {
        let current = read_raw(storage, lease.partition)?;
        if !names(&current, lease) {
            return Err(lost(lease));
        }
        let renewed = Lease {
            expires_ms: now_ms.saturating_add(ttl_ms),
            ..lease.clone()
        };
        let mut batch = Batch::new();
        batch.put(lease_key(lease.partition), encode(&renewed)?);
        match storage.apply_if(&[unchanged(lease.partition, current)], &batch) {
            Ok(()) => {
                *lease = renewed;
                return Ok(());
            }
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(LeaseError::Contended {
        partition: lease.partition,
    })
}

/// Gives `lease` up at once, so another engine can acquire the partition without waiting for
/// it to lapse. Nothing is written when it is no longer the caller's.
///
/// # Errors
///
/// [`LeaseError::Damaged`], [`LeaseError::Contended`], [`LeaseError::Storage`].
pub fn release(storage: &dyn Storage, lease: &Lease) -> Result<(), LeaseError> {
    for _ in 0..2 {
        let current = read_raw(storage, lease.partition)?;
        if !names(&current, lease) {
            return Ok(());
        }
        let released = Lease {
            expires_ms: 0,
            ..lease.clone()
        };
        let mut batch = Batch::new();
        batch.put(lease_key(lease.partition), encode(&released)?);
        match storage.apply_if(&[unchanged(lease.partition, current)], &batch) {
            Ok(()) => return Ok(()),
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(LeaseError::Contended {
        partition: lease.partition,
    })
}

fn check_owner(owner: &str) -> Result<(), LeaseError> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(LeaseError::InvalidOwner { len: owner.len() });
    }
    Ok(())
}

/// The stored lease, decoded, with its bytes (what the next write is conditioned on).
fn read_raw(
    storage: &dyn Storage,
    partition: Partition,
) -> Result<Option<(LeaseRecord, Vec<u8>)>, LeaseError> {
    let Some(bytes) = storage.get(&lease_key(partition))? else {
        return Ok(None);
    };
    let record = record::decode_record::<LeaseRecord>(&bytes)
        .map_err(|source| LeaseError::Damaged { partition, source })?;
    Ok(Some((record, bytes)))
}

/// The condition that the lease is still what was read.
fn unchanged(partition: Partition, read: Option<(LeaseRecord, Vec<u8>)>) -> Condition {
    Condition {
        key: lease_key(partition),
        expected: read.map(|(_, bytes)| bytes),
    }
}

fn names(current: &Option<(LeaseRecord, Vec<u8>)>, lease: &Lease) -> bool {
    matches!(current, Some((stored, _)) if stored.owner == lease.owner && stored.epoch == lease.epoch)
}

fn lost(lease: &Lease) -> LeaseError {
    LeaseError::Lost {
        partition: lease.partition,
        owner: lease.owner.clone(),
        epoch: lease.epoch,
    }
}

fn encode(lease: &Lease) -> Result<Vec<u8>, CodecError> {
    record::encode_record(&LeaseRecord {
        owner: lease.owner.clone(),
        epoch: lease.epoch,
        expires_ms: lease.expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    const TTL: u64 = 10_000;

    fn taken(acquired: Acquired) -> Lease {
        match acquired {
            Acquired::Taken(lease) => lease,
            held => panic!("expected the lease, found {held:?}"),
        }
    }

    #[test]
    fn the_stored_record_keeps_its_bytes() {
        // Golden: tag 0x01, then bincode's varint string length, bytes, and varint integers.
        let bytes = record::encode_record(&LeaseRecord {
            owner: "node-a".into(),
            epoch: 3,
            expires_ms: 1_000,
        })
        .unwrap();
        assert_eq!(
            bytes,
            [
                &[0x01, 6][..],
                b"node-a",
                &[3],
                &[251, 0xe8, 0x03], // 1,000 as a u16 varint: marker 251, little-endian
            ]
            .concat()
        );
        assert_eq!(lease_key(Partition(258)), b"lease/\x01\x02");
        assert_eq!(lease_epoch_key(Partition(1)), b"lepoch/\x00\x01");
    }

    #[test]
    fn a_free_partition_is_taken_with_epoch_one_and_fences_on_it() {
        let storage = MemoryStorage::new();
        let lease = taken(acquire(&storage, Partition(7), "a", 100, TTL).unwrap());
        assert_eq!(
            lease,
            Lease {
                partition: Partition(7),
                owner: "a".into(),
                epoch: 1,
                expires_ms: 100 + TTL,
            }
        );
        let mut write = Batch::new();
        write.put(b"wf/x".to_vec(), b"1".to_vec());
        storage.apply_if(&[fence(&lease)], &write).unwrap();
    }

    #[test]
    fn a_held_lease_is_refused_until_it_lapses_then_taken_with_a_newer_epoch() {
        let storage = MemoryStorage::new();
        let first = taken(acquire(&storage, Partition(0), "a", 0, TTL).unwrap());
        assert_eq!(
            acquire(&storage, Partition(0), "b", TTL - 1, TTL).unwrap(),
            Acquired::Held {
                owner: "a".into(),
                epoch: 1,
                expires_ms: TTL,
            }
        );
        let second = taken(acquire(&storage, Partition(0), "b", TTL, TTL).unwrap());
        assert_eq!(second.epoch, 2);

        // The deposed owner's writes and renewals are refused; the new owner's land.
        let mut write = Batch::new();
        write.put(b"wf/x".to_vec(), b"late".to_vec());
        assert!(matches!(
            storage.apply_if(&[fence(&first)], &write),
            Err(StorageError::ConditionFailed { .. })
        ));
        let mut stale = first.clone();
        assert!(matches!(
            renew(&storage, &mut stale, TTL + 1, TTL),
            Err(LeaseError::Lost { epoch: 1, .. })
        ));
        storage.apply_if(&[fence(&second)], &write).unwrap();
    }

    #[test]
    fn an_owner_that_acquires_again_gets_a_newer_epoch() {
        // A restarted process under the same name must fence its previous incarnation.
        let storage = MemoryStorage::new();
        let old = taken(acquire(&storage, Partition(0), "a", 0, TTL).unwrap());
        let new = taken(acquire(&storage, Partition(0), "a", 5, TTL).unwrap());
        assert_eq!(new.epoch, old.epoch + 1);
        let mut write = Batch::new();
        write.put(b"k".to_vec(), b"v".to_vec());
        assert!(storage.apply_if(&[fence(&old)], &write).is_err());
    }

    #[test]
    fn renewal_extends_and_keeps_the_fence() {
        let storage = MemoryStorage::new();
        let mut lease = taken(acquire(&storage, Partition(0), "a", 0, TTL).unwrap());
        let fenced = fence(&lease);
        // Renewed after its expiry: nobody took it, so it is still the owner's.
        renew(&storage, &mut lease, TTL + 5, TTL).unwrap();
        assert_eq!(lease.expires_ms, 2 * TTL + 5);
        assert_eq!(
            read(&storage, Partition(0)).unwrap().unwrap().expires_ms,
            2 * TTL + 5
        );
        let mut write = Batch::new();
        write.put(b"k".to_vec(), b"v".to_vec());
        storage.apply_if(&[fenced], &write).unwrap();
        assert!(matches!(
            acquire(&storage, Partition(0), "b", TTL + 6, TTL).unwrap(),
            Acquired::Held { .. }
        ));
    }

    #[test]
    fn a_released_lease_is_taken_at_once_and_counts_on_from_its_epoch() {
        let storage = MemoryStorage::new();
        let lease = taken(acquire(&storage, Partition(0), "a", 0, TTL).unwrap());
        release(&storage, &lease).unwrap();
        let next = taken(acquire(&storage, Partition(0), "b", 1, TTL).unwrap());
        assert_eq!(next.epoch, 2);
        // Releasing a lease that is no longer held writes nothing.
        release(&storage, &lease).unwrap();
        assert_eq!(read(&storage, Partition(0)).unwrap().unwrap().owner, "b");
    }

    #[test]
    fn bad_owners_and_damaged_records_are_typed_errors_that_write_nothing() {
        let storage = MemoryStorage::new();
        assert_eq!(
            acquire(&storage, Partition(0), "", 0, TTL)
                .unwrap_err()
                .code(),
            "lease.invalid_owner"
        );
        let long = "x".repeat(MAX_OWNER_LEN + 1);
        assert!(matches!(
            acquire(&storage, Partition(0), &long, 0, TTL),
            Err(LeaseError::InvalidOwner { len }) if len == MAX_OWNER_LEN + 1
        ));
        storage
            .put(&lease_key(Partition(0)), b"\x01\xff\xff")
            .unwrap();
        let error = acquire(&storage, Partition(0), "a", 0, TTL).unwrap_err();
        assert_eq!(error.code(), "lease.damaged");
        assert_eq!(
            storage.get(&lease_key(Partition(0))).unwrap().unwrap(),
            b"\x01\xff\xff"
        );
        assert_eq!(storage.get(&lease_epoch_key(Partition(0))).unwrap(), None);
    }
}
