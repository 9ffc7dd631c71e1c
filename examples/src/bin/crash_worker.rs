//! The child process of the crash test (`tests/crash_recovery.rs`); not an example to read
//! first. It opens (or creates) a redb file, recovers whatever was in flight, starts every job
//! of the mix that is not stored yet (the same ids and idempotency keys on every run, so nothing
//! starts twice), signals the jobs that wait, and exits 0 once every job has completed. The
//! test kills it with SIGKILL at random points and runs it again.
//!
//! usage: crash_worker DB LOG JOBS STEPS

use std::path::PathBuf;
use std::process::ExitCode;

use weft_examples::cli;
use weft_examples::crash_job::{EffectLog, Job, crash_job};
use weft_runtime::storage::RedbStorage;
use weft_runtime::{Engine, EngineError, Resources, StartOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    cli::exit_code("crash_worker", run().await)
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, log, jobs, steps] = args.as_slice() else {
        return Err("usage: crash_worker DB LOG JOBS STEPS".into());
    };
    let jobs: u64 = jobs.parse().map_err(|_| "JOBS must be a number")?;
    let steps: u64 = steps.parse().map_err(|_| "STEPS must be a number")?;
    let storage = RedbStorage::create(db).map_err(|e| e.to_string())?;
    let engine = Engine::builder(storage)
        .register::<crash_job>()
        .resources(Resources::new().with(EffectLog(PathBuf::from(log))))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let mix: Vec<Job> = (0..jobs).map(|i| Job::nth(i, steps)).collect();
    for job in &mix {
        let options = StartOptions {
            id: Some(job.id()),
            idempotency_key: Some(job.id()),
            ..Default::default()
        };
        engine
            .start_with::<crash_job>(job.clone(), options)
            .await
            .map_err(|e| format!("{}: {e}", job.id()))?;
    }
    // Signals are stored even before a job waits. A job that finished takes no more; one that
    // consumed an earlier run's signal keeps this one queued until it finishes, unread.
    for job in mix.iter().filter(|job| job.wait_signal) {
        match engine.signal(&job.id(), job.go()).await {
            Ok(()) | Err(EngineError::Finished { .. }) => {}
            Err(e) => return Err(format!("{}: {e}", job.id())),
        }
    }
    for job in &mix {
        engine
            .result::<crash_job>(&job.id())
            .await
            .map_err(|e| format!("{}: {e}", job.id()))?
            .map_err(|e| format!("{} failed: {e}", job.id()))?;
    }
    engine.shutdown().await;
    Ok(())
}
