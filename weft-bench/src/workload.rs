//! The benchmark workflows: the peers' W(N, K) workload (K sequential trivial steps that
//! increment an integer), a variant that parks on a signal after a given number of steps, and a
//! sleeper. Each carries a `pad` live local of a chosen size, so the persisted state has a
//! realistic size (about 1 KB in the storage-ceiling scenario).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft_runtime::{ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow};

/// Whether [`increment`] records when it runs (only the latency scenario turns this on, so
/// the throughput figures carry no recording cost).
static RECORD: AtomicBool = AtomicBool::new(false);
/// When each [`increment`] ran, while recording.
static STAMPS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

/// Starts (or stops) recording when each step's activity runs, clearing earlier stamps.
pub fn record_steps(on: bool) {
    STAMPS.lock().unwrap_or_else(|p| p.into_inner()).clear();
    RECORD.store(on, Ordering::SeqCst);
}

/// Takes the stamps recorded since the last call.
pub fn take_stamps() -> Vec<Instant> {
    std::mem::take(&mut *STAMPS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The trivial step: adds one.
#[activity]
pub async fn increment(n: u64) -> Result<u64, ActivityError> {
    if RECORD.load(Ordering::Relaxed) {
        STAMPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
    }
    Ok(n + 1)
}

/// Input of [`steps`] and [`parked`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepsInput {
    /// How many sequential steps to run.
    pub k: u64,
    /// Size in bytes of the live local carried through every step.
    pub pad: usize,
}

/// Checks the pad is intact and returns the step count; keeps `pad` live to the end.
fn finish(n: u64, pad: &[u8]) -> u64 {
    n + pad.iter().filter(|b| **b != PAD_BYTE).count() as u64
}

const PAD_BYTE: u8 = 0x5a;

/// W(N, K)'s workflow: K sequential `increment` steps; returns K.
#[workflow]
pub async fn steps(ctx: &mut WorkflowContext, input: StepsInput) -> Result<u64, WorkflowError> {
    let pad: Vec<u8> = vec![PAD_BYTE; input.pad];
    let k: u64 = input.k;
    let mut n: u64 = 0;
    while n < k {
        n = ctx.run(increment, n).await?;
    }
    Ok(finish(n, &pad))
}

/// Releases a [`parked`] workflow.
#[derive(Debug, Clone, Serialize, Deserialize, Signal)]
pub struct Go {
    /// Unused; a signal needs a payload.
    pub go: bool,
}

/// Runs K steps, parks until [`Go`] arrives, then runs one more step; returns K + 1.
#[workflow]
pub async fn parked(ctx: &mut WorkflowContext, input: StepsInput) -> Result<u64, WorkflowError> {
    let pad: Vec<u8> = vec![PAD_BYTE; input.pad];
    let k: u64 = input.k;
    let mut n: u64 = 0;
    while n < k {
        n = ctx.run(increment, n).await?;
    }
    let _go = ctx.wait_for_signal::<Go>().await;
    n = ctx.run(increment, n).await?;
    Ok(finish(n, &pad))
}

/// Sleeps for `secs` seconds, then returns. Holds a `pad` local like the others.
#[workflow]
pub async fn sleeper(ctx: &mut WorkflowContext, input: StepsInput) -> Result<u64, WorkflowError> {
    let pad: Vec<u8> = vec![PAD_BYTE; input.pad];
    ctx.sleep(Duration::from_secs(input.k)).await;
    Ok(finish(0, &pad))
}
