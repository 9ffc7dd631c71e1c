//! Every entry point that decodes stored bytes, each with a generator of valid inputs.
//!
//! Records are decoded as the engine reads them (`record::decode_record`, `decode_epoch`,
//! `decode_store_format`, `decode_counter`, `parse_timer_key`, `parse_counter_key`). Workflow
//! states, inputs, outputs and resume payloads go through
//! `codec::decode` and then into the generated step function, as the engine's runner, its
//! migrations and its queries do.
//!
//! The `json.*` targets take caller JSON as bytes: `serde_json::from_slice` first (invalid JSON
//! is rejected there, as an HTTP gateway would), then the decoding function the engine's
//! by-name calls go through (`Workflow::interface`'s signal and update codecs,
//! `interface::payload_from_json`, `payload_to_json`); the result is decoded back and stepped.
//! `json.query` answers a by-name query from stored state bytes, as `query_by_name` does.
//!
//! `schedule.trigger` compiles a schedule's trigger (a cron expression in a time zone, or an
//! interval) from text and computes its fire times, as `create_schedule` and the scheduler do;
//! `backup.manifest` decodes a backup file's manifest JSON, as `restore` does. Both reach
//! crate-private code through `weft_runtime::fuzzing`.

use serde::Serialize;
use weft_runtime::codec;
use weft_runtime::engine::lease::LeaseRecord;
use weft_runtime::engine::record::{
    self, ActivityResultRecord, AttemptRecord, AttributesRecord, CancelRecord, DeadlineRecord,
    FinishedRecord, IdempotencyRecord, ReviewRecord, SignalIdRecord, SignalRecord,
    UpdateResponseRecord, WorkflowRecord,
};
use weft_runtime::engine::schedule::store::ScheduleRecord;
use weft_runtime::engine::schedule::{OverlapPolicy, Trigger};
use weft_runtime::fuzzing;
use weft_runtime::interface::{self, Interface};
use weft_runtime::storage::{BackupManifest, BackupMeta};
use weft_runtime::{Resume, Signal, Update, Workflow, WorkflowError};

use crate::generate;
use crate::rng::Rng;
use crate::workflows::{self, Approval, Await, ChangeAddress, Progress, order_v1, order_v2};

type Input = <order_v2 as Workflow>::Input;
type Output = <order_v2 as Workflow>::Output;
type Error = <order_v2 as Workflow>::Error;

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

fn encoded_record<T: record::Record>(value: &T) -> Vec<u8> {
    record::encode_record(value).unwrap_or_default()
}

fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).unwrap_or_default()
}

fn decodes_record<T: record::Record>(bytes: &[u8]) -> bool {
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

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The interface `#[workflow]` wrote for `order_v2`, as the engine holds it per registration.
fn order_interface() -> Interface {
    let mut interface = Interface::new();
    <order_v2 as Workflow>::interface(&mut interface);
    interface
}

/// `Engine::start_by_name`: JSON to the encoded input (`input_from_json`), which the engine
/// stores and its runner then decodes and starts.
fn starts_by_name(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let Ok(payload) = interface::payload_from_json::<Input>(value) else {
        return false;
    };
    match codec::decode::<Input>(&payload) {
        Ok(input) => workflows::step::<order_v2>(order_v2::start(input), Resume::Start),
        Err(_) => false,
    }
}

/// `Engine::signal_by_name`: the signal codec of the interface, then the payload resumes the
/// workflow waiting for it.
fn signals_by_name(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let interface = order_interface();
    let Some(codec) = interface.signal_named(Approval::NAME) else {
        return false;
    };
    match (codec.decode)(value) {
        Ok(payload) => resumes(Await::Approval, &payload),
        Err(_) => false,
    }
}

/// `Engine::update_by_name`: the update codec (request and reply token), then the payload
/// resumes the workflow waiting for it.
fn updates_by_name(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let interface = order_interface();
    let Some(codec) = interface.update_named(ChangeAddress::NAME) else {
        return false;
    };
    match (codec.decode)(value, "fuzz-update") {
        Ok(payload) => resumes(Await::Update, &payload),
        Err(_) => false,
    }
}

/// A schedule's fire: the stored record, then its `input_json` parsed and fitted to the input
/// type, as `start_json` does.
fn fires_schedule(bytes: &[u8]) -> bool {
    let Ok(schedule) = record::decode_record::<ScheduleRecord>(bytes) else {
        return false;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&schedule.input_json) else {
        return true;
    };
    if let Ok(input) = serde_json::from_value::<Input>(value) {
        workflows::step::<order_v2>(order_v2::start(input), Resume::Start);
    }
    true
}

fn schedule(rng: &mut Rng) -> ScheduleRecord {
    ScheduleRecord {
        workflow_type: rng.string(),
        input_json: if rng.flip() {
            String::from_utf8(json(&workflows::order(rng))).unwrap_or_default()
        } else {
            rng.string()
        },
        trigger: if rng.flip() {
            Trigger::Cron {
                expression: rng.string(),
                time_zone: rng.option(Rng::string),
            }
        } else {
            Trigger::Interval {
                every: generate::duration(rng),
                anchor_ms: rng.int(),
            }
        },
        overlap: match rng.below(4) {
            0 => OverlapPolicy::Skip,
            1 => OverlapPolicy::BufferOne,
            2 => OverlapPolicy::BufferAll,
            _ => OverlapPolicy::CancelPrevious,
        },
        catchup_window_ms: rng.int(),
        jitter_ms: rng.int(),
        paused: rng.flip(),
        note: rng.option(Rng::string),
        remaining_runs: rng.option(Rng::int),
        next_fire_ms: rng.option(Rng::int),
        due_ms: rng.option(Rng::int),
        missed: rng.int(),
        skipped: rng.int(),
        started: rng.int(),
        buffered: (0..rng.below(4)).map(|_| rng.int()).collect(),
        running: rng.option(Rng::string),
        recent: (0..rng.below(4))
            .map(|_| (rng.int(), rng.string()))
            .collect(),
        last_error: rng.option(Rng::string),
        revision: rng.int(),
        created_ms: rng.int(),
    }
}

/// IANA time zones a trigger is generated in, daylight-saving ones among them.
const TIME_ZONES: [&str; 6] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
];

/// One cron field of values in `low..=high`: `*`, a value, a range, a step or a list.
fn cron_field(rng: &mut Rng, low: u64, high: u64) -> String {
    let value = |rng: &mut Rng| low + rng.below((high - low + 1) as usize) as u64;
    match rng.below(6) {
        0 => "*".to_string(),
        1 => value(rng).to_string(),
        2 => {
            let (a, b) = (value(rng), value(rng));
            format!("{}-{}", a.min(b), a.max(b))
        }
        3 => format!("*/{}", 1 + rng.below((high - low + 1) as usize)),
        4 => {
            let (a, b) = (value(rng), value(rng));
            format!("{}-{}/{}", a.min(b), a.max(b), 1 + rng.below(5))
        }
        _ => format!("{},{}", value(rng), value(rng)),
    }
}

/// A valid trigger as text: `<cron expression>` or `every <ms> <anchor ms>`, then a line with
/// the time zone (empty for UTC), then a line with the time the fires are computed from.
fn trigger_text(rng: &mut Rng) -> Vec<u8> {
    // Mostly a time in 1970..2100, now and then an edge value (a damaged store's times).
    let from_ms = if rng.one_in(8) {
        rng.int()
    } else {
        rng.below(4_102_444_800) as u64 * 1000 + rng.below(1000) as u64
    };
    if rng.one_in(4) {
        let every = 1 + rng.int() % (1 << 40);
        let anchor = rng.int() % (1 << 44);
        return format!("every {every} {anchor}\n\n{from_ms}").into_bytes();
    }
    let mut fields = Vec::new();
    if rng.flip() {
        fields.push(cron_field(rng, 0, 59));
    }
    fields.push(cron_field(rng, 0, 59));
    fields.push(cron_field(rng, 0, 23));
    fields.push(match rng.below(8) {
        0 => "L".to_string(),
        _ => cron_field(rng, 1, 28),
    });
    fields.push(cron_field(rng, 1, 12));
    fields.push(match rng.below(8) {
        0 => format!("{}#{}", rng.below(7), 1 + rng.below(4)),
        1 => format!("{}L", rng.below(7)),
        _ => cron_field(rng, 0, 6),
    });
    if fields.len() == 6 && rng.one_in(4) {
        fields.push((2026 + rng.below(50)).to_string());
    }
    let zone = if rng.flip() {
        TIME_ZONES[rng.below(TIME_ZONES.len())]
    } else {
        ""
    };
    format!("{}\n{zone}\n{from_ms}", fields.join(" ")).into_bytes()
}

/// Reads [`trigger_text`]'s format and computes the trigger's fires; anything that is not text
/// in that format is refused before the trigger is compiled.
fn fires_trigger(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut lines = text.splitn(3, '\n');
    let spec = lines.next().unwrap_or_default();
    let zone = lines.next().unwrap_or_default();
    let from_ms = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let trigger = match spec.strip_prefix("every ") {
        Some(interval) => {
            let mut numbers = interval.split(' ').map(str::parse::<u64>);
            let (Some(Ok(every)), Some(Ok(anchor_ms))) = (numbers.next(), numbers.next()) else {
                return false;
            };
            Trigger::Interval {
                every: std::time::Duration::from_millis(every),
                anchor_ms,
            }
        }
        None => Trigger::Cron {
            expression: spec.to_string(),
            time_zone: (!zone.is_empty()).then(|| zone.to_string()),
        },
    };
    fuzzing::schedule_fires(&trigger, from_ms, 8).is_ok()
}

/// A backup manifest as a backup writes it, JSON.
fn manifest(rng: &mut Rng) -> Vec<u8> {
    json(&BackupManifest {
        meta: BackupMeta {
            format_version: rng.below(3) as u32,
            weft_version: rng.string(),
            owner_epoch: rng.option(Rng::int),
            created_at_ms: rng.int(),
        },
        entries: rng.int(),
        checksum: rng.string(),
    })
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
        generate: |rng| {
            record::timer_key(
                record::Partition(rng.int() as u16),
                rng.int(),
                &rng.string(),
            )
        },
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
    Target {
        name: "record.attempt",
        generate: |rng| {
            encoded_record(&AttemptRecord {
                step: rng.int(),
                attempt: rng.int() as u32,
            })
        },
        decode: decodes_record::<AttemptRecord>,
    },
    Target {
        name: "record.activity_result",
        generate: |rng| {
            let result = if rng.flip() {
                Ok(rng.bytes())
            } else {
                Err(generate::activity_error(rng))
            };
            encoded_record(&ActivityResultRecord {
                step: rng.int(),
                result,
            })
        },
        decode: decodes_record::<ActivityResultRecord>,
    },
    Target {
        name: "record.signal_id",
        generate: |rng| {
            encoded_record(&SignalIdRecord {
                accepted_ms: rng.int(),
            })
        },
        decode: decodes_record::<SignalIdRecord>,
    },
    Target {
        name: "record.finished",
        generate: |rng| {
            encoded_record(&FinishedRecord {
                status: rng.string(),
                workflow_type: rng.string(),
            })
        },
        decode: decodes_record::<FinishedRecord>,
    },
    Target {
        name: "record.lease",
        generate: |rng| {
            encoded_record(&LeaseRecord {
                owner: rng.string(),
                epoch: rng.int(),
                expires_ms: rng.int(),
            })
        },
        decode: decodes_record::<LeaseRecord>,
    },
    Target {
        name: "record.counter",
        generate: |rng| record::encode_counter(rng.int()),
        decode: |bytes| record::decode_counter(bytes).is_ok(),
    },
    Target {
        name: "key.counter",
        generate: |rng| record::counter_key(&rng.string(), &rng.string()),
        decode: |bytes| record::parse_counter_key(bytes).is_some(),
    },
    Target {
        name: "record.schedule",
        generate: |rng| encoded_record(&schedule(rng)),
        decode: fires_schedule,
    },
    Target {
        name: "json.start",
        generate: |rng| json(&workflows::order(rng)),
        decode: starts_by_name,
    },
    Target {
        name: "json.signal",
        generate: |rng| json(&workflows::approval(rng)),
        decode: signals_by_name,
    },
    Target {
        name: "json.update",
        generate: |rng| {
            json(&ChangeAddress {
                lines: rng.strings(),
                postcode: rng.option(Rng::string),
            })
        },
        decode: updates_by_name,
    },
    Target {
        name: "json.result",
        generate: |rng| encoded(&rng.string()),
        // `result_json` of a completed workflow: its stored output rendered as JSON.
        decode: |bytes| interface::payload_to_json::<Output>(bytes).is_ok(),
    },
    Target {
        name: "json.error",
        generate: |rng| {
            let error = if rng.flip() {
                WorkflowError::failed(rng.string())
            } else {
                WorkflowError::Cancelled
            };
            encoded(&error)
        },
        // `result_json` of a failed workflow: its stored error rendered as JSON.
        decode: |bytes| interface::payload_to_json::<Error>(bytes).is_ok(),
    },
    Target {
        name: "json.update_response",
        generate: |rng| encoded(&rng.string()),
        // `update_by_name`'s answer: the stored response rendered by the update codec.
        decode: |bytes| {
            order_interface()
                .update_named(ChangeAddress::NAME)
                .is_some_and(|codec| (codec.response_json)(bytes).is_ok())
        },
    },
    Target {
        name: "json.query",
        generate: |rng| v2_state(rng),
        // `query_by_name`: the stored state decoded and answered as JSON.
        decode: |bytes| fuzzing::query_answer_json::<Progress>(bytes).is_ok(),
    },
    Target {
        name: "schedule.trigger",
        generate: trigger_text,
        decode: fires_trigger,
    },
    Target {
        name: "backup.manifest",
        generate: manifest,
        decode: |bytes| fuzzing::decode_backup_manifest(bytes).is_ok(),
    },
];

/// The target named `name`.
pub fn by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
