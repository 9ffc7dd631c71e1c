//! [`FaultyStorage`]: a [`Storage`] wrapper that fails reads and writes at scripted points.
//!
//! Wrap any store, keep its [`FaultControl`], and script what goes wrong: the 3rd write fails,
//! every write from the 10th on fails, the 5th read fails, the 7th write lands but reports an
//! error. Each call is numbered (1-based, separately for reads and writes, over the wrapper's
//! whole life), so a test can run once to count the writes of a workflow, then fail or tear
//! each of them in turn.
//!
//! What counts as what:
//! - a **write** is one call of `apply` or `apply_if`, whatever its size; `put` and `delete`
//!   are one-write batches and count once;
//! - a **read** is one call of `get` or `scan`; `scan_prefix` is one scan and counts once.
//!
//! A write can also be made slow ([`FaultControl::delay_writes`]): every write then takes that
//! long before it reaches the store, as on a busy disk or a remote database, which widens the
//! window in which a caller may give up on a call whose commit is under way.
//!
//! Real backends commit a batch atomically (redb does), so a write can never land halfway. A
//! crash or I/O error during a commit leaves one of two outcomes, and [`WriteFault`] models
//! both, plus the plain failure before anything reached the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weft_runtime::storage::{Batch, Condition, Entry, Storage, StorageError, Write};

/// What a scripted write fault does to the call it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteFault {
    /// The call fails with [`StorageError::Backend`] and nothing is written; the wrapped store is
    /// not called. Models an I/O error, a full disk or a lost connection before the commit.
    Fail,
    /// The batch is committed to the wrapped store, then the call fails with
    /// [`StorageError::Backend`]: the ambiguous commit, where the write landed but the caller
    /// saw a failure (the process died or the connection dropped after the commit, before the
    /// acknowledgement). The caller must not assume that a failed write wrote nothing.
    ///
    /// The wrapped store's own answer is discarded, so a conditional batch whose condition did
    /// not hold also reports the injected error; it wrote nothing, as its store decided.
    TornLanded,
    /// The commit was torn by a crash and the backend rolled it back: the call fails with
    /// [`StorageError::Backend`] and nothing is written. Its effect equals [`WriteFault::Fail`];
    /// it exists so a script says which failure it models, and the log records it apart.
    TornRolledBack,
}

/// One fault the wrapper injected, in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InjectedFault {
    /// Write number `number` was hit by `fault`.
    Write {
        /// The write's 1-based number.
        number: u64,
        /// What was done to it.
        fault: WriteFault,
    },
    /// Read number `number` failed with [`StorageError::Backend`] and returned nothing.
    Read {
        /// The read's 1-based number.
        number: u64,
    },
}

/// The faults still to inject, and what happened so far.
#[derive(Debug, Default)]
struct Script {
    writes: u64,
    reads: u64,
    write_faults: BTreeMap<u64, WriteFault>,
    writes_fail_from: Option<u64>,
    read_faults: BTreeSet<u64>,
    reads_fail_from: Option<u64>,
    injected: Vec<InjectedFault>,
    write_delay: Duration,
    /// Writes whose every key starts with this pass through unnumbered and unfaulted.
    pass_through: Option<Vec<u8>>,
}

/// The handle that scripts a [`FaultyStorage`]'s faults and reads its counters.
///
/// Clones share the same script, so a test keeps one while the engine owns the storage.
/// Faults can be scripted before or during a run; numbers already passed never fire.
#[derive(Debug, Clone, Default)]
pub struct FaultControl {
    script: Arc<Mutex<Script>>,
}

impl FaultControl {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // The script holds only counters and sets; a panic elsewhere cannot leave it inconsistent.
        self.script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes write number `number` (1-based, counted over the wrapper's life) fail without
    /// writing anything.
    pub fn fail_write(&self, number: u64) {
        self.script_write(number, WriteFault::Fail);
    }

    /// Makes the next write fail without writing anything.
    pub fn fail_next_write(&self) {
        let next = self.writes() + 1;
        self.fail_write(next);
    }

    /// Makes write number `number` suffer `fault`, replacing any fault scripted for it before.
    /// A fault scripted for one write takes precedence over [`FaultControl::fail_writes_from`].
    pub fn script_write(&self, number: u64, fault: WriteFault) {
        self.lock().write_faults.insert(number, fault);
    }

    /// Makes every write from number `number` on fail without writing anything: the disk died.
    pub fn fail_writes_from(&self, number: u64) {
        self.lock().writes_fail_from = Some(number);
    }

    /// Makes every write from the next one on fail.
    pub fn fail_all_writes(&self) {
        let next = self.writes() + 1;
        self.fail_writes_from(next);
    }

    /// Makes read number `number` (1-based) fail with nothing returned.
    pub fn fail_read(&self, number: u64) {
        self.lock().read_faults.insert(number);
    }

    /// Makes every read from number `number` on fail.
    pub fn fail_reads_from(&self, number: u64) {
        self.lock().reads_fail_from = Some(number);
    }

    /// Makes every read from the next one on fail.
    pub fn fail_all_reads(&self) {
        let next = self.reads() + 1;
        self.fail_reads_from(next);
    }

    /// Makes every write from now on take `delay` (on the thread that calls the store) before it
    /// reaches the wrapped store, faulted or not; `Duration::ZERO` makes writes fast again. Not
    /// a fault: [`FaultControl::heal`] keeps it.
    pub fn delay_writes(&self, delay: Duration) {
        self.lock().write_delay = delay;
    }

    /// Removes every fault still scripted. Counters and the injected log are kept.
    pub fn heal(&self) {
        let mut script = self.lock();
        script.write_faults.clear();
        script.writes_fail_from = None;
        script.read_faults.clear();
        script.reads_fail_from = None;
    }

    /// Lets every write whose keys all start with `prefix` through, neither numbered nor
    /// faulted, as if the wrapper were not there; `None` numbers every write again. For a
    /// harness whose crash points are some kinds of commit only.
    pub fn pass_through(&self, prefix: Option<Vec<u8>>) {
        self.lock().pass_through = prefix;
    }

    /// Whether `batch` passes through (see [`FaultControl::pass_through`]).
    fn passes(&self, batch: &Batch) -> bool {
        let script = self.lock();
        let Some(prefix) = &script.pass_through else {
            return false;
        };
        !batch.writes.is_empty()
            && batch.writes.iter().all(|write| match write {
                Write::Put(key, _) | Write::Delete(key) => key.starts_with(prefix),
            })
    }

    /// How many writes were made so far, failed ones included.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// How many reads were made so far, failed ones included.
    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.lock().injected.clone()
    }

    /// Numbers the next write and takes the fault scripted for it, if any.
    fn next_write(&self) -> (u64, Option<WriteFault>) {
        let mut script = self.lock();
        script.writes += 1;
        let number = script.writes;
        let fault = script.write_faults.remove(&number).or_else(|| {
            script
                .writes_fail_from
                .filter(|from| number >= *from)
                .map(|_| WriteFault::Fail)
        });
        if let Some(fault) = fault {
            script.injected.push(InjectedFault::Write { number, fault });
        }
        (number, fault)
    }

    /// Numbers the next read and returns the error to fail it with, if one is scripted.
    fn next_read(&self) -> Result<(), StorageError> {
        let mut script = self.lock();
        script.reads += 1;
        let number = script.reads;
        let fails = script.read_faults.remove(&number)
            || script.reads_fail_from.is_some_and(|from| number >= from);
        if fails {
            script.injected.push(InjectedFault::Read { number });
            return Err(StorageError::backend(format!(
                "read #{number} failed: fault injected by weft-testing's FaultyStorage"
            )));
        }
        Ok(())
    }
}

/// A [`Storage`] that passes every call to the store it wraps, except the calls its
/// [`FaultControl`] scripted to fail. With no fault scripted it behaves exactly like that store.
#[derive(Debug, Clone)]
pub struct FaultyStorage<S> {
    inner: S,
    control: FaultControl,
}

impl<S: Storage> FaultyStorage<S> {
    /// Wraps `inner` with no fault scripted.
    pub fn new(inner: S) -> Self {
        FaultyStorage {
            inner,
            control: FaultControl::default(),
        }
    }

    /// The handle that scripts this wrapper's faults; clones share it.
    pub fn control(&self) -> FaultControl {
        self.control.clone()
    }

    /// The wrapped store, for reading it behind the faults' back.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn write(
        &self,
        commit: impl FnOnce(&S) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let delay = self.control.lock().write_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let (number, fault) = self.control.next_write();
        let injected = |what: &str| {
            Err(StorageError::backend(format!(
                "write #{number} {what}: fault injected by weft-testing's FaultyStorage"
            )))
        };
        match fault {
            None => commit(&self.inner),
            Some(WriteFault::Fail) => injected("failed"),
            Some(WriteFault::TornRolledBack) => injected("was torn and rolled back"),
            Some(WriteFault::TornLanded) => {
                // The store's own verdict is what the lost acknowledgement would have carried.
                let _ = commit(&self.inner);
                injected("was committed but its acknowledgement was lost")
            }
        }
    }
}

impl<S: Storage> Storage for FaultyStorage<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.control.next_read()?;
        self.inner.get(key)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.control.next_read()?;
        self.inner.scan(start, end, limit)
    }

    fn scan_rev(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.control.next_read()?;
        self.inner.scan_rev(start, end, limit)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        if self.control.passes(&batch) {
            return self.inner.apply(batch);
        }
        self.write(|inner| inner.apply(batch))
    }

    fn apply_if(&self, conditions: &[Condition], batch: &Batch) -> Result<(), StorageError> {
        if self.control.passes(batch) {
            return self.inner.apply_if(conditions, batch);
        }
        self.write(|inner| inner.apply_if(conditions, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_runtime::storage::{MemoryStorage, RedbStorage};

    /// Runs each check against a `FaultyStorage` over both backends.
    macro_rules! on_both_backends {
        ($($check:ident),* $(,)?) => {
            mod memory {
                $(
                    #[test]
                    fn $check() {
                        super::$check(&super::FaultyStorage::new(
                            weft_runtime::storage::MemoryStorage::new(),
                        ));
                    }
                )*
            }
            mod redb {
                $(
                    #[test]
                    fn $check() {
                        let dir = tempfile::tempdir().unwrap();
                        let store = weft_runtime::storage::RedbStorage::create(
                            dir.path().join("faults.redb"),
                        )
                        .unwrap();
                        super::$check(&super::FaultyStorage::new(store));
                    }
                )*
            }
        };
    }

    on_both_backends!(
        counts_every_read_and_write_once,
        no_fault_passes_results_through,
        failed_write_writes_nothing_and_only_it_fails,
        fail_next_write_hits_the_next_write_only,
        writes_fail_from_a_point_until_healed,
        pass_through_writes_are_neither_numbered_nor_faulted,
        read_fault_hits_only_its_read,
        reads_fail_from_a_point_until_healed,
        torn_landed_write_is_applied_but_reported_failed,
        torn_rolled_back_write_is_not_applied,
        torn_landed_conditional_write_still_honours_its_condition,
        write_fault_takes_precedence_and_fires_once,
        a_delayed_write_takes_at_least_its_delay_and_still_lands,
    );

    fn put<S: Storage>(store: &FaultyStorage<S>, key: &str) -> Result<(), StorageError> {
        store.put(key.as_bytes(), key.as_bytes())
    }

    /// Reads the wrapped store directly, so the check does not consume read numbers.
    fn keys<S: Storage>(store: &FaultyStorage<S>) -> Vec<String> {
        store
            .inner()
            .scan(Bound::Unbounded, Bound::Unbounded, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    }

    fn a_delayed_write_takes_at_least_its_delay_and_still_lands<S: Storage>(
        store: &FaultyStorage<S>,
    ) {
        let control = store.control();
        control.delay_writes(Duration::from_millis(20));
        let started = std::time::Instant::now();
        put(store, "slow").unwrap();
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(keys(store), ["slow"]);
        control.delay_writes(Duration::ZERO);
        control.heal();
        put(store, "fast").unwrap();
        assert!(control.injected().is_empty());
    }

    fn assert_injected_backend_error(result: Result<(), StorageError>) {
        match result {
            Err(StorageError::Backend { message }) => {
                assert!(message.contains("fault injected"), "{message}")
            }
            other => panic!("expected an injected backend error, got {other:?}"),
        }
    }

    fn counts_every_read_and_write_once<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        put(store, "a").unwrap();
        store.delete(b"a").unwrap();
        store
            .apply(Batch::new().put("b", "1").put("c", "2").clone())
            .unwrap();
        store.apply_if(&[], &Batch::new()).unwrap();
        assert_eq!(control.writes(), 4);
        assert_eq!(control.reads(), 0);

        store.get(b"b").unwrap();
        store.scan(Bound::Unbounded, Bound::Unbounded, 10).unwrap();
        store.scan_prefix(b"b", None, 10).unwrap();
        assert_eq!(control.reads(), 3);
        assert_eq!(control.writes(), 4);
        assert!(control.injected().is_empty());
    }

    fn no_fault_passes_results_through<S: Storage>(store: &FaultyStorage<S>) {
        put(store, "a").unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(store.get(b"missing").unwrap(), None);
        let condition = Condition {
            key: b"a".to_vec(),
            expected: Some(b"other".to_vec()),
        };
        let refused = store.apply_if(&[condition], Batch::new().put("z", "z"));
        assert_eq!(
            refused,
            Err(StorageError::ConditionFailed { key: b"a".to_vec() })
        );
        assert_eq!(keys(store), ["a"]);
    }

    fn failed_write_writes_nothing_and_only_it_fails<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.fail_write(3);
        for (number, key) in ["k1", "k2", "k3", "k4", "k5"].iter().enumerate() {
            let result = put(store, key);
            if number + 1 == 3 {
                assert_injected_backend_error(result);
            } else {
                result.unwrap();
            }
        }
        assert_eq!(keys(store), ["k1", "k2", "k4", "k5"]);
        assert_eq!(
            control.injected(),
            [InjectedFault::Write {
                number: 3,
                fault: WriteFault::Fail
            }]
        );
    }

    fn fail_next_write_hits_the_next_write_only<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        put(store, "before").unwrap();
        control.fail_next_write();
        assert_injected_backend_error(put(store, "hit"));
        put(store, "after").unwrap();
        assert_eq!(keys(store), ["after", "before"]);
    }

    fn writes_fail_from_a_point_until_healed<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.fail_writes_from(3);
        put(store, "w1").unwrap();
        put(store, "w2").unwrap();
        assert_injected_backend_error(put(store, "w3"));
        assert_injected_backend_error(store.apply_if(&[], Batch::new().put("w4", "")));
        // Reads are unaffected by write faults.
        assert_eq!(store.get(b"w1").unwrap(), Some(b"w1".to_vec()));
        control.heal();
        put(store, "w5").unwrap();
        assert_eq!(keys(store), ["w1", "w2", "w5"]);
        assert_eq!(control.injected().len(), 2);
        assert_eq!(control.writes(), 5);
    }

    fn pass_through_writes_are_neither_numbered_nor_faulted<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.pass_through(Some(b"p/".to_vec()));
        control.fail_writes_from(1);
        put(store, "p/1").unwrap();
        // A batch with any other key is numbered, and faulted.
        let mixed = Batch::new().put("p/2", "").put("w", "").clone();
        assert_injected_backend_error(store.apply(mixed));
        assert_eq!(control.writes(), 1);
        control.pass_through(None);
        assert_injected_backend_error(put(store, "p/3"));
        assert_eq!(keys(store), ["p/1"]);
        assert_eq!(control.writes(), 2);
    }

    fn read_fault_hits_only_its_read<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        put(store, "a").unwrap();
        control.fail_read(2);
        assert_eq!(store.get(b"a").unwrap(), Some(b"a".to_vec()));
        match store.scan_prefix(b"a", None, 10) {
            Err(StorageError::Backend { message }) => assert!(message.contains("read #2")),
            other => panic!("expected read #2 to fail, got {other:?}"),
        }
        assert_eq!(store.scan_prefix(b"a", None, 10).unwrap().len(), 1);
        // Writes are unaffected by read faults.
        put(store, "b").unwrap();
        assert_eq!(keys(store), ["a", "b"]);
        assert_eq!(control.injected(), [InjectedFault::Read { number: 2 }]);
    }

    fn reads_fail_from_a_point_until_healed<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        put(store, "a").unwrap();
        store.get(b"a").unwrap();
        control.fail_all_reads();
        assert!(store.get(b"a").is_err());
        assert!(store.scan(Bound::Unbounded, Bound::Unbounded, 1).is_err());
        put(store, "b").unwrap();
        control.heal();
        assert_eq!(store.get(b"b").unwrap(), Some(b"b".to_vec()));
        assert_eq!(
            control.injected(),
            [
                InjectedFault::Read { number: 2 },
                InjectedFault::Read { number: 3 }
            ]
        );
    }

    fn torn_landed_write_is_applied_but_reported_failed<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.script_write(2, WriteFault::TornLanded);
        put(store, "a").unwrap();
        let result = store.apply(Batch::new().put("b", "1").put("c", "2").clone());
        assert_injected_backend_error(result);
        assert_eq!(keys(store), ["a", "b", "c"]);
        put(store, "d").unwrap();
        assert_eq!(keys(store), ["a", "b", "c", "d"]);
    }

    fn torn_rolled_back_write_is_not_applied<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.script_write(1, WriteFault::TornRolledBack);
        let result = store.apply(Batch::new().put("b", "1").put("c", "2").clone());
        assert_injected_backend_error(result);
        assert!(keys(store).is_empty());
        put(store, "d").unwrap();
        assert_eq!(keys(store), ["d"]);
        assert_eq!(
            control.injected(),
            [InjectedFault::Write {
                number: 1,
                fault: WriteFault::TornRolledBack
            }]
        );
    }

    fn torn_landed_conditional_write_still_honours_its_condition<S: Storage>(
        store: &FaultyStorage<S>,
    ) {
        let control = store.control();
        put(store, "epoch").unwrap();
        control.script_write(2, WriteFault::TornLanded);
        control.script_write(3, WriteFault::TornLanded);
        let holds = Condition {
            key: b"epoch".to_vec(),
            expected: Some(b"epoch".to_vec()),
        };
        let fails = Condition {
            key: b"epoch".to_vec(),
            expected: None,
        };
        assert_injected_backend_error(store.apply_if(&[holds], Batch::new().put("x", "")));
        assert_injected_backend_error(store.apply_if(&[fails], Batch::new().put("y", "")));
        assert_eq!(keys(store), ["epoch", "x"]);
    }

    fn write_fault_takes_precedence_and_fires_once<S: Storage>(store: &FaultyStorage<S>) {
        let control = store.control();
        control.fail_writes_from(2);
        control.script_write(2, WriteFault::TornLanded);
        assert_injected_backend_error(put(store, "w1").and(put(store, "w2")));
        assert_injected_backend_error(put(store, "w3"));
        assert_eq!(keys(store), ["w1", "w2"]);
        assert_eq!(
            control.injected(),
            [
                InjectedFault::Write {
                    number: 2,
                    fault: WriteFault::TornLanded
                },
                InjectedFault::Write {
                    number: 3,
                    fault: WriteFault::Fail
                },
            ]
        );
    }

    #[test]
    fn clones_share_the_script_and_the_data() {
        let store = FaultyStorage::new(MemoryStorage::new());
        let restarted = store.clone();
        store.control().fail_write(2);
        put(&store, "a").unwrap();
        assert!(put(&restarted, "b").is_err());
        assert_eq!(restarted.get(b"a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(store.control().writes(), 2);
    }

    #[test]
    fn works_behind_a_shared_trait_object() {
        let faulty = FaultyStorage::new(MemoryStorage::new());
        let control = faulty.control();
        let store: Arc<dyn Storage> = Arc::new(faulty);
        control.fail_next_write();
        assert!(store.put(b"a", b"1").is_err());
        store.put(b"a", b"2").unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn redb_keeps_a_torn_landed_write_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torn.redb");
        let store = FaultyStorage::new(RedbStorage::create(&path).unwrap());
        store.control().script_write(1, WriteFault::TornLanded);
        assert!(put(&store, "landed").is_err());
        store.into_inner().close().unwrap();
        let reopened = RedbStorage::open(&path).unwrap();
        assert_eq!(reopened.get(b"landed").unwrap(), Some(b"landed".to_vec()));
    }
}
