//! [`Chaos`]: an activity wrapper that injects failures on a seeded, reproducible schedule.
//!
//! Wrap an activity, give the wrapper a seed and fault rates, and register the wrapper in its
//! place (it keeps the activity's name and options). Each attempt then either runs the real
//! activity or, without running it, fails in one of three ways ([`ChaosFault`]). The schedule is
//! a pure function of the seed and a key per attempt ([`ScheduleKey`]), computed with SplitMix64,
//! so a failing test reruns with exactly the same faults.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weft_runtime::activity::BoxFuture;
use weft_runtime::codec::Payload;
use weft_runtime::{Activity, ActivityContext, ActivityError, ActivityOptions, DynActivity};

/// A failure [`Chaos`] injects into one attempt. The real activity does not run for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChaosFault {
    /// The attempt fails with [`ActivityError::Failed`], which the retry policy retries.
    Transient,
    /// The attempt times out, as [`TimeoutMode`] says; [`ActivityError::TimedOut`] is retried.
    Timeout,
    /// The attempt fails with [`ActivityError::NonRetryable`], which ends the activity call.
    Permanent,
}

/// How an injected [`ChaosFault::Timeout`] shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeoutMode {
    /// The attempt returns [`ActivityError::TimedOut`] at once, carrying the activity's
    /// per-attempt timeout (0 if it has none). Tests the retry path, not the engine's timer.
    #[default]
    Report,
    /// The attempt sleeps (on tokio's clock, so a paused test clock skips the wait) until 1 ms past
    /// the activity's per-attempt timeout, so the engine's own timeout must cut it off. If nothing
    /// does, it then returns [`ActivityError::TimedOut`]; if the engine cancels it first, it
    /// returns [`ActivityError::Cancelled`]. An activity without a per-attempt timeout cannot
    /// hang usefully, so it reports [`ActivityError::TimedOut`] at once, as in `Report`.
    Hang,
}

/// What decides which attempt gets which fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScheduleKey {
    /// The order of calls to this wrapper: call 1, 2, 3... Simple to reason about; with
    /// activities running concurrently, which attempt is call `n` depends on scheduling.
    #[default]
    CallOrder,
    /// The attempt's identity: workflow id, step and attempt number from its
    /// [`ActivityContext`]. The same attempt gets the same fault whatever the call order, also
    /// after a restart.
    Attempt,
}

/// One fault [`Chaos`] injected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Injection {
    /// The 1-based number of the call to the wrapper.
    pub call: u64,
    /// The workflow the attempt ran for.
    pub workflow_id: String,
    /// The workflow step that issued the activity.
    pub step: u64,
    /// The attempt number, starting at 1.
    pub attempt: u32,
    /// What was injected.
    pub fault: ChaosFault,
}

#[derive(Debug, Default)]
struct Record {
    calls: u64,
    injected: Vec<Injection>,
}

/// Wraps an activity and fails some of its attempts on a seeded schedule.
///
/// ```
/// use std::sync::Arc;
/// use weft_testing::Chaos;
/// # use weft_runtime::{Activity, ActivityContext, ActivityError};
/// # struct ChargeCard;
/// # impl Activity for ChargeCard {
/// #     type Input = u64;
/// #     type Output = u64;
/// #     const NAME: &'static str = "charge_card";
/// #     async fn execute(&self, _: ActivityContext, cents: u64) -> Result<u64, ActivityError> {
/// #         Ok(cents)
/// #     }
/// # }
///
/// // A third of the attempts fail transiently, a tenth time out; seed 7 fixes which.
/// let chaos = Arc::new(
///     Chaos::wrap(ChargeCard, 7)
///         .with_transient_rate(0.3)
///         .with_timeout_rate(0.1),
/// );
/// // Register `chaos.clone()` in place of the activity; afterwards, `chaos.injected()`
/// // says what was injected, and `chaos.preview(10)` what the first ten calls get.
/// assert_eq!(chaos.preview(10).len(), 10);
/// ```
pub struct Chaos {
    inner: Arc<dyn DynActivity>,
    seed: u64,
    transient_rate: f64,
    timeout_rate: f64,
    permanent_rate: f64,
    timeout_mode: TimeoutMode,
    key: ScheduleKey,
    record: Mutex<Record>,
}

impl Chaos {
    /// Wraps a type-erased activity with no fault enabled; the rates start at 0.
    pub fn new(inner: Arc<dyn DynActivity>, seed: u64) -> Self {
        Chaos {
            inner,
            seed,
            transient_rate: 0.0,
            timeout_rate: 0.0,
            permanent_rate: 0.0,
            timeout_mode: TimeoutMode::default(),
            key: ScheduleKey::default(),
            record: Mutex::new(Record::default()),
        }
    }

    /// Wraps a typed activity with no fault enabled.
    pub fn wrap<A: Activity>(activity: A, seed: u64) -> Self {
        Chaos::new(Arc::new(activity), seed)
    }

    /// Sets the share of attempts (0.0 to 1.0) that fail transiently.
    ///
    /// # Panics
    /// If the rate is outside 0.0..=1.0 or the three rates add up to more than 1.0.
    pub fn with_transient_rate(mut self, rate: f64) -> Self {
        self.transient_rate = rate;
        self.check_rates();
        self
    }

    /// Sets the share of attempts (0.0 to 1.0) that time out.
    ///
    /// # Panics
    /// If the rate is outside 0.0..=1.0 or the three rates add up to more than 1.0.
    pub fn with_timeout_rate(mut self, rate: f64) -> Self {
        self.timeout_rate = rate;
        self.check_rates();
        self
    }

    /// Sets the share of attempts (0.0 to 1.0) that fail permanently.
    ///
    /// # Panics
    /// If the rate is outside 0.0..=1.0 or the three rates add up to more than 1.0.
    pub fn with_permanent_rate(mut self, rate: f64) -> Self {
        self.permanent_rate = rate;
        self.check_rates();
        self
    }

    /// Sets how an injected timeout shows itself (default: [`TimeoutMode::Report`]).
    pub fn with_timeout_mode(mut self, mode: TimeoutMode) -> Self {
        self.timeout_mode = mode;
        self
    }

    /// Sets what decides which attempt gets which fault (default: [`ScheduleKey::CallOrder`]).
    pub fn keyed_by(mut self, key: ScheduleKey) -> Self {
        self.key = key;
        self
    }

    fn check_rates(&self) {
        let rates = [self.transient_rate, self.timeout_rate, self.permanent_rate];
        for rate in rates {
            assert!(
                (0.0..=1.0).contains(&rate),
                "chaos rate {rate} is not a share of attempts; use a value from 0.0 to 1.0"
            );
        }
        let total: f64 = rates.iter().sum();
        assert!(
            total <= 1.0 + 1e-9,
            "chaos rates add up to {total}, more than every attempt; lower them to a total of at most 1.0"
        );
    }

    /// How many attempts were made through the wrapper, injected ones included.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Every fault injected so far, in call order.
    pub fn injected(&self) -> Vec<Injection> {
        self.lock().injected.clone()
    }

    /// What the first `calls` calls get under [`ScheduleKey::CallOrder`]: `None` runs the real
    /// activity. Independent of calls already made.
    pub fn preview(&self, calls: u64) -> Vec<Option<ChaosFault>> {
        (1..=calls).map(|call| self.fault_for(call)).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // The record is append-only; a panic elsewhere cannot leave it inconsistent.
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fault for schedule key `key`: one SplitMix64 draw mapped onto the rates.
    fn fault_for(&self, key: u64) -> Option<ChaosFault> {
        let draw = unit_interval(splitmix64(self.seed.wrapping_add(key.wrapping_mul(GOLDEN))));
        let mut threshold = self.transient_rate;
        if draw < threshold {
            return Some(ChaosFault::Transient);
        }
        threshold += self.timeout_rate;
        if draw < threshold {
            return Some(ChaosFault::Timeout);
        }
        threshold += self.permanent_rate;
        if draw < threshold {
            return Some(ChaosFault::Permanent);
        }
        None
    }

    fn timeout(&self) -> Option<Duration> {
        self.inner.options().attempt_timeout
    }
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("activity", &self.inner.name())
            .field("seed", &self.seed)
            .field("transient_rate", &self.transient_rate)
            .field("timeout_rate", &self.timeout_rate)
            .field("permanent_rate", &self.permanent_rate)
            .field("timeout_mode", &self.timeout_mode)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DynActivity for Chaos {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn options(&self) -> ActivityOptions {
        self.inner.options()
    }

    fn call(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Payload,
    ) -> BoxFuture<Result<Payload, ActivityError>> {
        let fault = {
            let mut record = self.lock();
            record.calls += 1;
            let call = record.calls;
            let key = match self.key {
                ScheduleKey::CallOrder => call,
                ScheduleKey::Attempt => attempt_key(&ctx),
            };
            let fault = self.fault_for(key);
            if let Some(fault) = fault {
                record.injected.push(Injection {
                    call,
                    workflow_id: ctx.workflow_id().to_owned(),
                    step: ctx.step(),
                    attempt: ctx.attempt(),
                    fault,
                });
            }
            fault.map(|fault| (call, fault))
        };
        let Some((call, fault)) = fault else {
            return self.inner.clone().call(ctx, input);
        };
        let what = format!(
            "chaos injected into `{}` (call {call}, seed {})",
            self.inner.name(),
            self.seed
        );
        let timeout = self.timeout();
        let timed_out = ActivityError::TimedOut {
            timeout_ms: timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        match (fault, self.timeout_mode, timeout) {
            (ChaosFault::Transient, _, _) => Box::pin(std::future::ready(Err(
                ActivityError::failed(format!("transient failure {what}")),
            ))),
            (ChaosFault::Permanent, _, _) => Box::pin(std::future::ready(Err(
                ActivityError::non_retryable(format!("permanent failure {what}")),
            ))),
            (ChaosFault::Timeout, TimeoutMode::Hang, Some(timeout)) => Box::pin(async move {
                tokio::select! {
                    () = tokio::time::sleep(timeout + Duration::from_millis(1)) => Err(timed_out),
                    () = ctx.cancelled() => Err(ActivityError::Cancelled),
                }
            }),
            (ChaosFault::Timeout, _, _) => Box::pin(std::future::ready(Err(timed_out))),
        }
    }
}

/// SplitMix64's increment: the n-th output of a generator seeded with `s` is
/// `splitmix64(s + n * GOLDEN)`, so any draw can be computed without the ones before it.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea and Flood, 2014): a bijective 64-bit mixer.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits onto [0, 1) with the 53 bits an `f64` holds exactly.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A schedule key from the attempt's identity: FNV-1a over the workflow id, mixed with the step
/// and the attempt number.
fn attempt_key(ctx: &ActivityContext) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in ctx.workflow_id().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    splitmix64(hash ^ splitmix64(ctx.step() ^ splitmix64(u64::from(ctx.attempt()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use weft_runtime::{Resources, codec};

    /// Doubles its input and counts how often it really ran.
    struct Double {
        runs: Arc<AtomicU64>,
    }

    impl Activity for Double {
        type Input = u64;
        type Output = u64;
        const NAME: &'static str = "double";

        fn options(&self) -> ActivityOptions {
            ActivityOptions {
                attempt_timeout: Some(Duration::from_secs(5)),
                ..ActivityOptions::default()
            }
        }

        async fn execute(&self, _: ActivityContext, input: u64) -> Result<u64, ActivityError> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(input * 2)
        }
    }

    fn double(seed: u64) -> (Chaos, Arc<AtomicU64>) {
        let runs = Arc::new(AtomicU64::new(0));
        let chaos = Chaos::wrap(Double { runs: runs.clone() }, seed);
        (chaos, runs)
    }

    fn context(workflow_id: &str, step: u64, attempt: u32) -> ActivityContext {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        ActivityContext::new(workflow_id, step, attempt, Resources::default(), rx)
    }

    async fn call(
        chaos: &Arc<Chaos>,
        ctx: ActivityContext,
        input: u64,
    ) -> Result<u64, ActivityError> {
        let output = chaos
            .clone()
            .call(ctx, codec::encode(&input).unwrap())
            .await?;
        Ok(codec::decode(&output).unwrap())
    }

    /// Calls the wrapper `n` times in order, as attempts of one workflow, and returns the results.
    async fn run_calls(chaos: &Arc<Chaos>, n: u64) -> Vec<Result<u64, ActivityError>> {
        let mut results = Vec::new();
        for i in 1..=n {
            results.push(call(chaos, context("wf", i, 1), i).await);
        }
        results
    }

    /// 20 % transient failures, 10 % timeouts, 5 % permanent failures.
    fn mixed_rates(chaos: Chaos) -> Chaos {
        chaos
            .with_transient_rate(0.2)
            .with_timeout_rate(0.1)
            .with_permanent_rate(0.05)
    }

    fn mixed(seed: u64) -> (Arc<Chaos>, Arc<AtomicU64>) {
        let (chaos, runs) = double(seed);
        (Arc::new(mixed_rates(chaos)), runs)
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_schedule() {
        let (first, _) = mixed(42);
        let (second, _) = mixed(42);
        let (other, _) = mixed(43);
        let first_results = run_calls(&first, 200).await;
        let second_results = run_calls(&second, 200).await;
        run_calls(&other, 200).await;
        assert_eq!(first_results, second_results);
        assert_eq!(first.injected(), second.injected());
        assert!(!first.injected().is_empty());
        assert_ne!(first.injected(), other.injected());
        // The preview predicts the calls exactly.
        let predicted: Vec<_> = first
            .preview(200)
            .into_iter()
            .enumerate()
            .filter_map(|(i, fault)| fault.map(|fault| (i as u64 + 1, fault)))
            .collect();
        let happened: Vec<_> = first
            .injected()
            .into_iter()
            .map(|injection| (injection.call, injection.fault))
            .collect();
        assert_eq!(predicted, happened);
    }

    #[tokio::test]
    async fn rates_are_honoured_over_many_calls() {
        let (chaos, runs) = mixed(7);
        let calls = 20_000u64;
        let results = run_calls(&chaos, calls).await;
        let count = |fault| {
            chaos
                .injected()
                .iter()
                .filter(|injection| injection.fault == fault)
                .count() as f64
                / calls as f64
        };
        let share = |rate: f64, observed: f64| (observed - rate).abs() < 0.01;
        assert!(
            share(0.2, count(ChaosFault::Transient)),
            "{}",
            count(ChaosFault::Transient)
        );
        assert!(
            share(0.1, count(ChaosFault::Timeout)),
            "{}",
            count(ChaosFault::Timeout)
        );
        assert!(
            share(0.05, count(ChaosFault::Permanent)),
            "{}",
            count(ChaosFault::Permanent)
        );
        // Injected attempts never reach the activity; the others all do.
        let injected = chaos.injected().len() as u64;
        assert_eq!(runs.load(Ordering::SeqCst), calls - injected);
        assert_eq!(chaos.calls(), calls);
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count() as u64,
            calls - injected
        );
    }

    #[tokio::test]
    async fn calls_without_a_fault_pass_the_real_result_through() {
        let (chaos, runs) = double(1);
        let chaos = Arc::new(chaos);
        let results = run_calls(&chaos, 50).await;
        let expected: Vec<_> = (1..=50).map(|i| Ok(i * 2)).collect();
        assert_eq!(results, expected);
        assert_eq!(runs.load(Ordering::SeqCst), 50);
        assert!(chaos.injected().is_empty());
    }

    #[tokio::test]
    async fn each_fault_maps_to_its_error() {
        let (transient, _) = double(1);
        let transient = Arc::new(transient.with_transient_rate(1.0));
        let error = call(&transient, context("wf", 1, 1), 1).await.unwrap_err();
        assert!(matches!(error, ActivityError::Failed { .. }) && error.is_retryable());

        let (permanent, _) = double(1);
        let permanent = Arc::new(permanent.with_permanent_rate(1.0));
        let error = call(&permanent, context("wf", 1, 1), 1).await.unwrap_err();
        assert!(matches!(error, ActivityError::NonRetryable { .. }) && !error.is_retryable());

        let (timeout, runs) = double(1);
        let timeout = Arc::new(timeout.with_timeout_rate(1.0));
        let error = call(&timeout, context("wf", 1, 1), 1).await.unwrap_err();
        assert_eq!(error, ActivityError::TimedOut { timeout_ms: 5000 });
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_timeout_outlasts_the_attempt_timeout() {
        let (chaos, runs) = double(1);
        let chaos = Arc::new(
            chaos
                .with_timeout_rate(1.0)
                .with_timeout_mode(TimeoutMode::Hang),
        );
        // An engine enforcing the 5 s attempt timeout cuts the attempt off.
        let attempt = call(&chaos, context("wf", 1, 1), 1);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), attempt)
                .await
                .is_err()
        );
        // Left alone, it gives up just after the timeout, by itself.
        let started = tokio::time::Instant::now();
        let error = call(&chaos, context("wf", 1, 2), 1).await.unwrap_err();
        assert_eq!(error, ActivityError::TimedOut { timeout_ms: 5000 });
        assert!(started.elapsed() > Duration::from_secs(5));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_timeout_stops_when_cancelled() {
        let (chaos, _) = double(1);
        let chaos = Arc::new(
            chaos
                .with_timeout_rate(1.0)
                .with_timeout_mode(TimeoutMode::Hang),
        );
        let (tx, rx) = tokio::sync::watch::channel(false);
        let ctx = ActivityContext::new("wf", 1, 1, Resources::default(), rx);
        let attempt = tokio::spawn({
            let chaos = chaos.clone();
            async move { call(&chaos, ctx, 1).await }
        });
        tx.send(true).unwrap();
        assert_eq!(attempt.await.unwrap(), Err(ActivityError::Cancelled));
    }

    #[tokio::test]
    async fn attempt_keyed_schedule_ignores_call_order() {
        let attempts: Vec<(String, u64, u32)> = (0..100)
            .map(|i| (format!("wf-{}", i % 7), i / 7, (i % 3) as u32 + 1))
            .collect();
        let run = |order: Vec<(String, u64, u32)>| async move {
            let (chaos, _) = double(9);
            let chaos = Arc::new(mixed_rates(chaos).keyed_by(ScheduleKey::Attempt));
            let mut faults = Vec::new();
            for (wf, step, attempt) in order {
                let result = call(&chaos, context(&wf, step, attempt), 1).await;
                faults.push(((wf, step, attempt), result.is_err()));
            }
            faults.sort();
            faults
        };
        let forward = run(attempts.clone()).await;
        let backward = run(attempts.into_iter().rev().collect()).await;
        assert_eq!(forward, backward);
        assert!(forward.iter().any(|(_, failed)| *failed));
        assert!(forward.iter().any(|(_, failed)| !*failed));
    }

    #[test]
    fn name_and_options_are_the_wrapped_activity_s() {
        let (chaos, _) = double(1);
        assert_eq!(chaos.name(), "double");
        assert_eq!(
            DynActivity::options(&chaos).attempt_timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    #[should_panic(expected = "chaos rates add up to")]
    fn rates_above_one_in_total_are_refused() {
        let (chaos, _) = double(1);
        let _ = chaos.with_transient_rate(0.6).with_permanent_rate(0.6);
    }

    #[test]
    #[should_panic(expected = "is not a share of attempts")]
    fn a_negative_rate_is_refused() {
        let (chaos, _) = double(1);
        let _ = chaos.with_timeout_rate(-0.1);
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567, per Vigna's reference C implementation.
        let outputs: Vec<u64> = (1..=3)
            .map(|n| splitmix64(1_234_567u64.wrapping_add((n - 1u64).wrapping_mul(GOLDEN))))
            .collect();
        assert_eq!(
            outputs,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }
}
