//! Every entry point that decodes stored bytes, each with a generator of valid inputs.
//!
//! Records are decoded as the engine reads them (`record::decode_record`, `decode_epoch`, `decode_store_format`,
//! `parse_timer_key`). Workflow states, inputs, outputs and resume payloads go through
//! `codec::decode` and then into the generated step function, as the engine's runner, its
//! migrations and its queries do.

use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_runtime::codec;
use weft_runtime::engine::record::{
    self, AttributesRecord, CancelRecord, DeadlineRecord, IdempotencyRecord, ReviewRecord,
    SignalRecord, UpdateResponseRecord, WorkflowRecord,
};
use weft_runtime::{Resume, Workflow, WorkflowError};

use crate::generate;
use crate::rng::Rng;
use crate::workflows::{self, Await, order_v1, order_v2};

/// One decoder entry point.
#[derive(Clone, Copy)]
pub struct Target {
    /// A stable name, used in reports and in the names of saved failing inputs.
    pub name: &'static str,
    /// Builds a valid input.
    pub generate: fn(&mut Rng) -> Vec<u8>,
    /// Decodes an input, as the engine would; true when it was accepted.
    pub decode: fn(&[u8]) -> bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn encoded_record<T: Serialize>(value: &T) -> Vec<u8> {
    record::encode_record(value).unwrap_or_default()
}

fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).unwrap_or_default()
}

fn decodes_record<T: DeserializeOwned>(bytes: &[u8]) -> bool {
    record::decode_record::<T>(bytes).is_ok()
}

/// Decodes `bytes` as a state of `W`, shows it as JSON (as `describe` does) and steps it, as
/// the runner resumes a stored workflow.
fn steps_state<W: Workflow>(bytes: &[u8], resume: Resume) -> bool {
    match codec::decode::<W::State>(bytes) {
        Ok(state) => {
            let _ = serde_json::to_value(&state);
            workflows::step::<W>(state, resume);
            true
        }
        Err(_) => false,
    }
}

/// The state every resume target steps from: fixed, so an input replays alone.
fn resumes(at: Await, payload: &[u8]) -> bool {
    let mut rng = Rng::for_input(0, at as u64);
    workflows::state_at(&mut rng, at)
        .is_some_and(|state| workflows::step::<order_v2>(state, at.resume(payload.to_vec())))
}

fn resume_payload(rng: &mut Rng, at: Await) -> Vec<u8> {
    // The fixed state's order decides how many shipments the `all` resumes with.
    let lines = workflows::order(&mut Rng::for_input(0, at as u64))
        .lines
        .len();
    at.payload(rng, lines)
}

fn v1_state(rng: &mut Rng) -> Vec<u8> {
    let order = workflows::order(rng);
    let resumes = if rng.flip() {
        vec![Await::Price.resume(Await::Price.payload(rng, 0))]
    } else {
        Vec::new()
    };
    workflows::drive::<order_v1>(order, resumes)
        .map(|state| encoded(&state))
        .unwrap_or_default()
}

fn v2_state(rng: &mut Rng) -> Vec<u8> {
    let at = Await::ALL[rng.below(Await::ALL.len())];
    workflows::state_at(rng, at)
        .map(|state| encoded(&state))
        .unwrap_or_default()
}

/// Every decoder entry point the fuzzer drives.
pub const TARGETS: &[Target] = &[
    Target {
        name: "record.workflow",
        generate: |rng| encoded_record(&generate::workflow(rng)),
        decode: decodes_record::<WorkflowRecord>,
    },
    Target {
        name: "record.signal",
        generate: |rng| encoded_record(&generate::signal(rng)),
        decode: decodes_record::<SignalRecord>,
    },
    Target {
        name: "record.idempotency",
        generate: |rng| encoded_record(&generate::idempotency(rng)),
        decode: decodes_record::<IdempotencyRecord>,
    },
    Target {
        name: "record.cancel",
        generate: |rng| encoded_record(&generate::cancel(rng)),
        decode: decodes_record::<CancelRecord>,
    },
    Target {
        name: "record.deadline",
        generate: |rng| encoded_record(&generate::deadline(rng)),
        decode: decodes_record::<DeadlineRecord>,
    },
    Target {
        name: "record.attributes",
        generate: |rng| encoded_record(&generate::attributes(rng)),
        decode: decodes_record::<AttributesRecord>,
    },
    Target {
        name: "record.update_response",
        generate: |rng| encoded_record(&generate::update_response(rng)),
        decode: decodes_record::<UpdateResponseRecord>,
    },
    Target {
        name: "record.review",
        generate: |rng| encoded_record(&generate::review(rng)),
        decode: decodes_record::<ReviewRecord>,
    },
    Target {
        name: "record.epoch",
        generate: |rng| record::encode_epoch(rng.int()),
        decode: |bytes| record::decode_epoch(bytes).is_ok(),
    },
    Target {
        name: "record.store_format",
        // Truncated, not saturated: every u32 is a marker some build may write.
        generate: |rng| record::encode_store_format(rng.int() as u32),
        decode: |bytes| record::decode_store_format(bytes).is_ok(),
    },
    Target {
        name: "key.timer",
        generate: |rng| record::timer_key(rng.int(), &rng.string()),
        decode: |bytes| record::parse_timer_key(bytes).is_some(),
    },
    Target {
        name: "state.order_v2",
        generate: v2_state,
        decode: |bytes| steps_state::<order_v2>(bytes, Resume::Cancelled),
    },
    Target {
        name: "state.order_v1",
        generate: v1_state,
        // What a migration from version 1 decodes before it converts the state.
        decode: |bytes| steps_state::<order_v1>(bytes, Resume::Timer),
    },
    Target {
        name: "input.order",
        generate: |rng| encoded(&workflows::order(rng)),
        decode: |bytes| match codec::decode::<<order_v2 as Workflow>::Input>(bytes) {
            Ok(input) => workflows::step::<order_v2>(order_v2::start(input), Resume::Start),
            Err(_) => false,
        },
    },
    Target {
        name: "output.error",
        generate: |rng| {
            let error = if rng.flip() {
                WorkflowError::failed(rng.string())
            } else {
                WorkflowError::Cancelled
            };
            encoded(&error)
        },
        decode: |bytes| codec::decode::<<order_v2 as Workflow>::Error>(bytes).is_ok(),
    },
    Target {
        name: "resume.activity",
        generate: |rng| resume_payload(rng, Await::Price),
        decode: |bytes| resumes(Await::Price, bytes),
    },
    Target {
        name: "resume.signal",
        generate: |rng| resume_payload(rng, Await::Approval),
        decode: |bytes| resumes(Await::Approval, bytes),
    },
    Target {
        name: "resume.race",
        generate: |rng| resume_payload(rng, Await::Race),
        decode: |bytes| resumes(Await::Race, bytes),
    },
    Target {
        name: "resume.all",
        generate: |rng| resume_payload(rng, Await::Ship),
        decode: |bytes| resumes(Await::Ship, bytes),
    },
    Target {
        name: "resume.child",
        generate: |rng| resume_payload(rng, Await::Label),
        decode: |bytes| resumes(Await::Label, bytes),
    },
    Target {
        name: "resume.update",
        generate: |rng| resume_payload(rng, Await::Update),
        decode: |bytes| resumes(Await::Update, bytes),
    },
    Target {
        name: "resume.review",
        generate: |rng| resume_payload(rng, Await::Review),
        decode: |bytes| resumes(Await::Review, bytes),
    },
];

/// The target named `name`.
pub fn by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
