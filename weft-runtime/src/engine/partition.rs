//! Which partition a workflow belongs to: a pure function of its id.
//!
//! A store is split into `P` partitions, fixed when it is created and kept in its metadata
//! (`meta/partitions`, one partition until the partitions issue makes `P` real). A workflow's
//! partition is the 64-bit FNV-1a hash of its id's bytes modulo `P`: stable across processes,
//! builds and platforms (unlike the standard library's `SipHash`, whose keys are random per
//! process), cheap, and written out here so that its bytes are pinned by tests. Nothing in an
//! id is read but its bytes, so a caller's id and a generated one hash alike.

/// The number of partitions a store is created with.
pub const DEFAULT_PARTITIONS: u16 = 1;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The partition of workflow `id` among `partitions` (at least 1; 0 reads as 1).
pub fn partition_of(id: &str, partitions: u16) -> u16 {
    if partitions <= 1 {
        // One partition: no hash to compute (every store before the partitions issue).
        return 0;
    }
    let partitions = u64::from(partitions);
    // The remainder is below `partitions`, a u16.
    (fnv1a(id.as_bytes()) % partitions) as u16
}

/// One partition of a store: what every per-workflow key carries right after its prefix, as a
/// fixed-width big-endian `u16` (see `engine::record`'s key layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition(pub u16);

impl Partition {
    /// Partition 0: the only one of a store with one partition.
    pub const ZERO: Partition = Partition(0);

    /// The two bytes a key carries.
    pub fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// The partition's index.
    pub fn index(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A store's partitioning: how many partitions its workflows are spread over (`meta/partitions`,
/// fixed when the store is created). The one place a workflow's partition is computed, so a key
/// built anywhere in the engine carries the same partition for the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    count: u16,
}

impl Partitions {
    /// A store spread over `count` partitions (0 reads as 1).
    pub fn new(count: u16) -> Partitions {
        Partitions {
            count: count.max(1),
        }
    }

    /// How many partitions there are.
    pub fn count(self) -> u16 {
        self.count
    }

    /// The partition of workflow `id`: FNV-1a of its bytes modulo the count.
    pub fn of(self, id: &str) -> Partition {
        Partition(partition_of(id, self.count))
    }

    /// Every partition, in order.
    pub fn all(self) -> impl Iterator<Item = Partition> {
        (0..self.count).map(Partition)
    }
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions::new(DEFAULT_PARTITIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "", "a", "foobar".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_partition_is_a_pure_function_of_the_id() {
        assert_eq!(partition_of("order-42", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
        let p = partition_of("order-42", 64);
        assert!(p < 64);
        assert_eq!(p, partition_of("order-42", 64));
        assert_eq!(u64::from(p), fnv1a(b"order-42") % 64);
        // Spread: 6,400 ids land in every one of 64 partitions.
        let mut seen = [false; 64];
        for i in 0..6400 {
            seen[usize::from(partition_of(&format!("wf-{i}"), 64))] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
