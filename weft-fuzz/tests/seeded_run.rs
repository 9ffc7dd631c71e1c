//! A short, deterministic run of the fuzzing loop: a fixed seed, a few thousand inputs over
//! every target, and not one panic, over-limit allocation or refused valid encoding.

use std::alloc::System;

use cap::Cap;
use weft_fuzz::run::{self, Budget, Config, Failure, Observer};
use weft_fuzz::targets::TARGETS;
use weft_runtime::engine::DEFAULT_PAYLOAD_LIMIT;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

struct Quiet;

impl Observer for Quiet {
    fn before(&mut self, _index: u64) {}
    fn failed(&mut self, _failure: &Failure) {}
}

#[test]
fn a_fixed_seed_runs_clean_over_every_target() {
    let out_dir = std::env::temp_dir().join(format!("weft-fuzz-test-{}", std::process::id()));
    let config = Config {
        seed: 12,
        first: 0,
        budget: Budget::Inputs(5000),
        payload_limit: DEFAULT_PAYLOAD_LIMIT,
        out_dir: out_dir.clone(),
    };
    let report = run::run(&config, &ALLOCATOR, &mut Quiet);
    assert_eq!(report.inputs, 5000);
    assert!(report.clean(), "{report:#?}");
    assert!(report.failures.is_empty());
    for target in TARGETS {
        let n = report.per_target.get(target.name).copied().unwrap_or(0);
        assert!(n > 100, "{} ran only {n} inputs", target.name);
    }
    // About one input in sixteen is left valid, and all of those decode; a few mutated ones
    // still decode too.
    assert!(report.accepted >= 5000 / 16 / 2, "{report:#?}");
    assert!(
        report.accepted < 5000 / 2,
        "mutations should break most inputs"
    );
    assert!(report.max_allocated > 0 && report.max_allocated < DEFAULT_PAYLOAD_LIMIT);
    assert!(!out_dir.exists(), "nothing failed, so nothing was saved");
}

#[test]
fn inputs_follow_from_the_seed_and_index_alone() {
    for index in [0, 1, 977, 4999] {
        let a = run::case(7, index);
        let b = run::case(7, index);
        assert_eq!((a.target.name, a.bytes), (b.target.name, b.bytes));
    }
    let differ = (0..50).any(|i| run::case(7, i).bytes != run::case(8, i).bytes);
    assert!(differ, "another seed gives other inputs");
}
