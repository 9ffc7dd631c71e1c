//! A seeded mutation fuzzer over every decoder of Weft's stored bytes and every by-name JSON
//! entry point, on the stable toolchain.
//!
//! From a seed, each input is built alone: a decoder entry point is picked
//! ([`targets::TARGETS`]: every stored record kind, workflow states, inputs, outputs and resume
//! payloads, the JSON of `start_by_name`, `signal_by_name`, `update_by_name`, `result_json`
//! and `query_by_name`'s answers, schedule triggers (the cron compiler) and backup manifests), a
//! valid encoding is generated for it ([`generate`], [`workflows`]), mutated
//! ([`mutate`]: bit flips, truncations, oversized varint lengths, wrong tags, splices), and
//! decoded ([`run`]) under `catch_unwind`, with a counting global allocator (the `cap` crate)
//! measuring what the decode allocated. A panic, a decode that allocated more than the payload
//! limit, or a valid encoding refused is a failure, and its input is saved to replay.
//!
//! The `weft-fuzz` binary runs the loop in a child process, so that even an abort (which no
//! `catch_unwind` sees) is found, replayed input by input and saved. See its `--help`.

pub mod generate;
pub mod mutate;
pub mod rng;
pub mod run;
pub mod targets;
pub mod workflows;
