//! The workload of the crash test (`tests/crash_recovery.rs`), run by the `crash_worker`
//! program: jobs of several activity steps, some with a durable sleep and some waiting for a
//! signal, whose activity appends its idempotency key to an append-only log as its side effect.
//!
//! The job's result lists every activity output in order, so a test can check that each step's
//! result was recorded exactly once, and the log shows how often each side effect happened.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_runtime::{
    ActivityContext, ActivityError, Signal, WorkflowContext, WorkflowError, activity, workflow,
};

/// What one job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The job's number; its workflow id is [`Job::id`].
    pub index: u64,
    /// How many activity steps it runs.
    pub steps: u64,
    /// A durable sleep halfway through, in milliseconds (`0`: none).
    pub sleep_ms: u64,
    /// Whether it waits for a [`Go`] signal after its second step.
    pub wait_signal: bool,
}

impl Job {
    /// The `n`-th job of the crash test's mix: every third job sleeps, every fourth waits for a
    /// signal.
    pub fn nth(index: u64, steps: u64) -> Job {
        Job {
            index,
            steps,
            sleep_ms: if index.is_multiple_of(3) {
                5 + index % 7
            } else {
                0
            },
            wait_signal: index % 4 == 1,
        }
    }

    /// The workflow id (also the start's idempotency key).
    pub fn id(&self) -> String {
        format!("job-{}", self.index)
    }

    /// The signal a job that waits receives.
    pub fn go(&self) -> Go {
        Go {
            bonus: self.index * 3 + 1,
        }
    }

    /// How many durable awaits the job makes, so how many steps it commits after its start.
    pub fn durable_awaits(&self) -> u64 {
        self.steps + u64::from(self.sleep_ms > 0) + u64::from(self.wait_signal)
    }

    /// The result the job must complete with, apart from the idempotency keys.
    pub fn expected_values(&self) -> Vec<u64> {
        (0..self.steps)
            .map(|step| effect_value(self.index, step))
            .collect()
    }
}

/// The signal a waiting job needs to go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Signal)]
pub struct Go {
    /// Goes into the job's result, to show the signal's payload arrived.
    pub bonus: u64,
}

/// One activity call's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectInput {
    /// The job.
    pub index: u64,
    /// The step within the job.
    pub step: u64,
}

/// One activity call's output, as recorded in the job's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// The idempotency key the call ran under.
    pub key: String,
    /// The value it computed.
    pub value: u64,
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// Every activity output, in the order the steps ran.
    pub effects: Vec<Effect>,
    /// The [`Go`] signal's bonus, or 0 for a job that does not wait.
    pub bonus: u64,
}

/// The log the activity appends to: one idempotency key per line.
#[derive(Debug, Clone)]
pub struct EffectLog(pub PathBuf);

/// The value step `step` of job `index` computes.
pub fn effect_value(index: u64, step: u64) -> u64 {
    index * 1_000 + step * step + 7
}

/// The side effect: appends the call's idempotency key to the log in one write and syncs it,
/// then returns a value computed from the input.
#[activity(name = "crash.effect")]
pub async fn effect(ctx: ActivityContext, input: EffectInput) -> Result<Effect, ActivityError> {
    let log = ctx.resource::<EffectLog>().ok_or_else(|| {
        ActivityError::non_retryable("the engine has no EffectLog resource; register one")
    })?;
    let key = ctx.idempotency_key();
    let mut file = OpenOptions::new().create(true).append(true).open(&log.0)?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_data()?;
    Ok(Effect {
        key,
        value: effect_value(input.index, input.step),
    })
}

/// The job: `steps` activity calls, with a sleep halfway and a signal wait after the second
/// call when the job asks for them.
#[workflow]
pub async fn crash_job(ctx: &mut WorkflowContext, job: Job) -> Result<JobResult, WorkflowError> {
    let mut effects: Vec<Effect> = Vec::new();
    let mut bonus: u64 = 0;
    let mut step: u64 = 0;
    while step < job.steps {
        let input = EffectInput {
            index: job.index,
            step,
        };
        let done = ctx.run(effect, input).await?;
        effects.push(done);
        if job.sleep_ms > 0 && step == job.steps / 2 {
            ctx.sleep(Duration::from_millis(job.sleep_ms)).await;
        }
        if job.wait_signal && step == 1 {
            let go = ctx.wait_for_signal::<Go>().await;
            bonus = go.bonus;
        }
        step += 1;
    }
    Ok(JobResult { effects, bonus })
}
