//! The fuzzing loop: build input `i` from the seed, decode it under `catch_unwind` with the
//! allocator counting, and record every panic and every decode that allocated more than the
//! payload limit, saving the input so it can be replayed.

use std::alloc::System;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cap::Cap;

use crate::mutate;
use crate::rng::Rng;
use crate::targets::{TARGETS, Target};

/// One in this many inputs is left valid: it must decode, or the bounds refuse good data.
const VALID_ONE_IN: u64 = 16;

/// One input: the target that decodes it, and its bytes.
#[derive(Debug, Clone)]
pub struct Case {
    /// The decoder entry point.
    pub target: &'static Target,
    /// The bytes given to it.
    pub bytes: Vec<u8>,
    /// Whether the bytes are a valid encoding, left unmutated.
    pub valid: bool,
}

/// Input `index` of the run seeded with `seed`: built from those two numbers alone.
pub fn case(seed: u64, index: u64) -> Case {
    let mut rng = Rng::for_input(seed, index);
    let target = &TARGETS[rng.below(TARGETS.len())];
    let mut bytes = (target.generate)(&mut rng);
    let valid = rng.one_in(VALID_ONE_IN);
    if !valid {
        let donor_target = &TARGETS[rng.below(TARGETS.len())];
        let donor = (donor_target.generate)(&mut rng);
        mutate::mutate(&mut rng, &mut bytes, &donor);
    }
    Case {
        target,
        bytes,
        valid,
    }
}

/// How long a run goes on.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many inputs.
    Inputs(u64),
    /// Until this much time has passed.
    Time(Duration),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed every input follows from.
    pub seed: u64,
    /// The index of the first input.
    pub first: u64,
    /// How long to go on.
    pub budget: Budget,
    /// No decode may allocate more than this many bytes in total.
    pub payload_limit: usize,
    /// Where failing inputs are written.
    pub out_dir: PathBuf,
}

/// Why an input failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Decoding panicked, with this message.
    Panic(String),
    /// Decoding allocated this many bytes, over the payload limit.
    OverLimit(usize),
    /// A valid, unmutated encoding was refused.
    Refused,
}

/// A failing input.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The target that failed.
    pub target: &'static str,
    /// The input's index.
    pub index: u64,
    /// What went wrong.
    pub kind: FailureKind,
    /// Where the input was saved, if it could be.
    pub saved: Option<PathBuf>,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Inputs decoded.
    pub inputs: u64,
    /// Inputs a decoder accepted.
    pub accepted: u64,
    /// Decodes that panicked.
    pub panics: u64,
    /// Decodes that allocated more than the payload limit.
    pub over_limit: u64,
    /// Valid encodings that were refused.
    pub refused_valid: u64,
    /// The most bytes one decode allocated (an upper bound of its largest allocation).
    pub max_allocated: usize,
    /// The input that allocated them, by target name.
    pub max_allocated_by: Option<&'static str>,
    /// Inputs decoded per target, by name.
    pub per_target: std::collections::BTreeMap<&'static str, u64>,
    /// The first failures, up to ten (the observer hears of every one).
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether the run found nothing wrong.
    pub fn clean(&self) -> bool {
        self.panics == 0 && self.over_limit == 0 && self.refused_valid == 0
    }
}

/// The file name a failing input is saved under: `<target>--seed-<seed>--input-<index>.bin`.
pub fn failure_file(dir: &Path, target: &str, seed: u64, index: u64) -> PathBuf {
    dir.join(format!("{target}--seed-{seed}--input-{index}.bin"))
}

/// The target a saved failing input was written for, from its file name.
pub fn target_of_file(path: &Path) -> Option<&'static Target> {
    let name = path.file_name()?.to_str()?;
    crate::targets::by_name(name.split("--").next()?)
}

/// Decodes one input with `target`, catching a panic; returns the panic's message if any.
pub fn decode_caught(target: &Target, bytes: &[u8]) -> Result<bool, String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.decode)(bytes))).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-string payload".into())
    })
}

/// What a caller of [`run`] hears as the run goes.
pub trait Observer {
    /// Input `index` is about to be decoded.
    fn before(&mut self, index: u64);
    /// An input failed (every failure, also past the ten a report keeps).
    fn failed(&mut self, failure: &Failure);
}

/// Runs the loop. `allocator` is the process's global allocator; around each decode its cap
/// is set to what is live plus four times the payload limit, so an allocation far over the
/// limit fails (and aborts the process, which the supervising binary catches) rather than
/// exhausting the machine.
pub fn run(
    config: &Config,
    allocator: &'static Cap<System>,
    observer: &mut dyn Observer,
) -> Report {
    let mut report = Report::default();
    // Panics are counted and reported here; the default hook would print each one.
    let last_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let hook = panic::take_hook();
    {
        let last_panic = last_panic.clone();
        panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if let Ok(mut last) = last_panic.lock() {
                *last = Some(place);
            }
        }));
    }
    let started = Instant::now();
    let hard_cap = config.payload_limit.saturating_mul(4);
    let mut index = config.first;
    loop {
        let done = match config.budget {
            Budget::Inputs(n) => index - config.first >= n,
            Budget::Time(limit) => started.elapsed() >= limit,
        };
        if done {
            break;
        }
        let case = case(config.seed, index);
        observer.before(index);
        let before = allocator.total_allocated();
        let _ = allocator.set_limit(allocator.allocated().saturating_add(hard_cap));
        let outcome = decode_caught(case.target, &case.bytes);
        let _ = allocator.set_limit(usize::MAX);
        let used = allocator.total_allocated().saturating_sub(before);
        report.inputs += 1;
        *report.per_target.entry(case.target.name).or_default() += 1;
        if used > report.max_allocated {
            report.max_allocated = used;
            report.max_allocated_by = Some(case.target.name);
        }
        let failure = match outcome {
            Err(message) => {
                report.panics += 1;
                let place = last_panic.lock().ok().and_then(|mut p| p.take());
                Some(FailureKind::Panic(message + &place.unwrap_or_default()))
            }
            Ok(_) if used > config.payload_limit => {
                report.over_limit += 1;
                Some(FailureKind::OverLimit(used))
            }
            Ok(false) if case.valid => {
                report.refused_valid += 1;
                Some(FailureKind::Refused)
            }
            Ok(accepted) => {
                report.accepted += u64::from(accepted);
                None
            }
        };
        if let Some(kind) = failure {
            let path = failure_file(&config.out_dir, case.target.name, config.seed, index);
            let saved = std::fs::create_dir_all(&config.out_dir)
                .and_then(|()| std::fs::write(&path, &case.bytes))
                .is_ok()
                .then_some(path);
            let failure = Failure {
                target: case.target.name,
                index,
                kind,
                saved,
            };
            observer.failed(&failure);
            if report.failures.len() < 10 {
                report.failures.push(failure);
            }
        }
        index += 1;
    }
    panic::set_hook(hook);
    report
}
