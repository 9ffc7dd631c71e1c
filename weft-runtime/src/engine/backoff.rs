//! [`Backoff`]: the delays between attempts at something storage refused (a commit, a read).
//!
//! Exponential from [`Backoff::FIRST`], capped at [`Backoff::CAP`], each delay jittered down by
//! up to a quarter so engines (and workflows) that failed together do not retry in lockstep. It
//! runs on wall time, not on the engine's clock: a storage fault heals in real time, also under
//! a test's virtual clock.

use std::time::Duration;

/// The delays of one series of attempts; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    attempt: u32,
    /// xorshift64 state, for the jitter: no cryptographic quality needed.
    seed: u64,
}

impl Backoff {
    /// The delay after the first failure.
    pub const FIRST: Duration = Duration::from_millis(5);
    /// The longest delay: a healed store is noticed within about this long.
    pub const CAP: Duration = Duration::from_secs(1);

    /// A new series; `salt` varies the jitter between series that start together.
    pub fn new(salt: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            attempt: 0,
            seed: (nanos ^ salt.rotate_left(32)) | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let doubled = Self::FIRST.saturating_mul(1 << self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        let full = doubled.min(Self::CAP);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        // Down by 0..25%, so the cap stays a cap.
        let cut = full.as_micros() as u64 / 4 * (self.seed % 1024) / 1024;
        full - Duration::from_micros(cut)
    }

    /// Starts the series again: the last attempt succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_below_each_step_and_restart_after_a_reset() {
        let mut backoff = Backoff::new(7);
        let delays: Vec<Duration> = (0..16).map(|_| backoff.next_delay()).collect();
        for (n, delay) in delays.iter().enumerate() {
            let full = Backoff::FIRST.saturating_mul(1 << n).min(Backoff::CAP);
            assert!(*delay <= full && *delay >= full * 3 / 4, "{n}: {delay:?}");
        }
        assert!(delays[15] >= Backoff::CAP * 3 / 4);
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::FIRST);
    }
}
