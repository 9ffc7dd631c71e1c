//! The exact inputs of issue 12, through the fuzzer's targets: each is refused with an error,
//! without a panic, and allocating a few bytes, not the terabyte its length prefix claims.
//! (Before bounded decoding, the first and third aborted the process and the second panicked.)

use std::alloc::System;

use cap::Cap;
use weft_fuzz::run;
use weft_fuzz::targets::{self, Target};
use weft_runtime::engine::record::{self, IdempotencyRecord, WorkflowRecord};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn target(name: &str) -> &'static Target {
    targets::by_name(name).unwrap()
}

/// Decodes `bytes` with `target`: refused, no panic, and at most a few KiB allocated (one test
/// per binary, so nothing else allocates meanwhile).
fn refused_cheaply(target: &Target, bytes: &[u8]) {
    let before = ALLOCATOR.total_allocated();
    let accepted = run::decode_caught(target, bytes).unwrap_or_else(|panic| {
        panic!("{} panicked on {bytes:02x?}: {panic}", target.name);
    });
    let used = ALLOCATOR.total_allocated() - before;
    assert!(!accepted, "{} accepted {bytes:02x?}", target.name);
    assert!(used < 4096, "{} allocated {used} bytes", target.name);
}

fn varint(n: u64) -> Vec<u8> {
    [[0xfd].as_slice(), &n.to_le_bytes()].concat()
}

#[test]
fn the_inputs_of_issue_12_are_refused_cheaply() {
    // `01 fd 0000000000010000` as an idempotency record: a 1 TiB workflow id.
    let idem = [0x01, 0xfd, 0, 0, 0, 0, 0, 0x01, 0, 0];
    refused_cheaply(target("record.idempotency"), &idem);
    assert!(record::decode_record::<IdempotencyRecord>(&idem).is_err());

    // A length above isize::MAX ("capacity overflow"), in every record that starts with one.
    let over = [[0x01].as_slice(), &varint(isize::MAX as u64 + 1)].concat();
    for name in [
        "record.idempotency",
        "record.signal",
        "record.workflow",
        "record.review",
        "record.update_response",
        "record.attributes",
    ] {
        refused_cheaply(target(name), &over);
    }
    refused_cheaply(target("state.order_v2"), &varint(u64::MAX));
    refused_cheaply(target("resume.signal"), &varint(u64::MAX));

    // A `wf/` record whose type name claims 2^40 bytes, the rest of it valid.
    let mut rng = weft_fuzz::rng::Rng::for_input(3, 3);
    let valid = record::encode_record(&weft_fuzz::generate::workflow(&mut rng)).unwrap();
    let name_len = valid[1] as usize;
    assert!(name_len < 251, "a one-byte length");
    let huge = [[0x01].as_slice(), &varint(1 << 40), &valid[2..]].concat();
    refused_cheaply(target("record.workflow"), &huge);
    assert!(record::decode_record::<WorkflowRecord>(&huge).is_err());
    assert!(record::decode_record::<WorkflowRecord>(&valid).is_ok());
}
