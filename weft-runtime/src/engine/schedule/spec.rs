//! When a schedule fires: a [`Trigger`] (cron in a time zone, or a fixed interval) in, the
//! nominal fire times after a given time out, plus each fire's deterministic jitter.

use std::str::FromStr;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// A cron expression of 5 to 7 fields (an optional leading seconds field and an optional
    /// trailing year field; `L`, `W` and `#` as croner reads them), in an IANA time zone such as
    /// `Europe/Berlin` (`UTC` when `None`). Across a daylight-saving change a fixed-time fire in
    /// the skipped hour runs just after the gap, and one in the repeated hour runs once.
    Cron {
        /// The expression, e.g. `"30 2 * * *"`.
        expression: String,
        /// The IANA time zone the expression is read in.
        time_zone: Option<String>,
    },
    /// Every `every`, counted from `anchor_ms` (ms since the Unix epoch; fires fall on
    /// `anchor_ms + k * every`).
    Interval {
        /// The period, at least one millisecond.
        every: Duration,
        /// The time the periods are counted from.
        anchor_ms: u64,
    },
}

/// A trigger, checked and ready to compute fire times.
pub(crate) enum Compiled {
    Cron(Box<croner::Cron>, chrono_tz::Tz),
    Interval { every_ms: u64, anchor_ms: u64 },
}

impl Trigger {
    /// A trigger on `expression` in UTC.
    pub fn cron(expression: &str) -> Self {
        Trigger::Cron {
            expression: expression.to_string(),
            time_zone: None,
        }
    }

    /// A trigger on `expression` read in the IANA time zone `time_zone`.
    pub fn cron_in(expression: &str, time_zone: &str) -> Self {
        Trigger::Cron {
            expression: expression.to_string(),
            time_zone: Some(time_zone.to_string()),
        }
    }

    /// A trigger every `every`, counted from the Unix epoch.
    pub fn every(every: Duration) -> Self {
        Trigger::Interval {
            every,
            anchor_ms: 0,
        }
    }

    /// Checks the trigger: `Err` with the reason when the expression, the time zone or the
    /// interval is not valid.
    pub(crate) fn compile(&self) -> Result<Compiled, String> {
        match self {
            Trigger::Cron {
                expression,
                time_zone,
            } => {
                let fields = expression.split_whitespace().count();
                if !(5..=7).contains(&fields) {
                    return Err(format!(
                        "the cron expression `{expression}` has {fields} fields; write 5 to 7"
                    ));
                }
                let cron = croner::Cron::from_str(expression)
                    .map_err(|e| format!("the cron expression `{expression}` is invalid: {e}"))?;
                let tz = match time_zone {
                    None => chrono_tz::UTC,
                    Some(name) => chrono_tz::Tz::from_str(name).map_err(|_| {
                        format!("`{name}` is not an IANA time zone (e.g. `Europe/Berlin`)")
                    })?,
                };
                Ok(Compiled::Cron(Box::new(cron), tz))
            }
            Trigger::Interval { every, anchor_ms } => {
                let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
                if every_ms == 0 {
                    return Err("the interval must be at least one millisecond".into());
                }
                Ok(Compiled::Interval {
                    every_ms,
                    anchor_ms: *anchor_ms,
                })
            }
        }
    }
}

impl Compiled {
    /// The first nominal fire time at or after `at_ms`. Not `next_after(at_ms - 1)`: at the
    /// Unix epoch itself there is no earlier millisecond to start from, and a backfill from
    /// there must include a fire at 0.
    pub(crate) fn first_at_or_after(&self, at_ms: u64) -> Option<u64> {
        match at_ms.checked_sub(1) {
            Some(before) => self.next_after(before),
            None => match self {
                Compiled::Interval { anchor_ms, .. } => Some(*anchor_ms),
                Compiled::Cron(cron, tz) => {
                    let at = Utc.timestamp_millis_opt(0).single()?.with_timezone(tz);
                    let next = cron.find_next_occurrence(&at, true).ok()?;
                    u64::try_from(next.timestamp_millis()).ok()
                }
            },
        }
    }

    /// The first nominal fire time strictly after `after_ms`, or `None` when there is none
    /// (a cron expression whose years are over).
    pub(crate) fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            Compiled::Interval {
                every_ms,
                anchor_ms,
            } => {
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                // No fire after the last representable millisecond (a store's damaged time can
                // ask for one): `None`, not an overflow.
                let periods = ((after_ms - anchor_ms) / every_ms).checked_add(1)?;
                anchor_ms.checked_add(periods.checked_mul(*every_ms)?)
            }
            Compiled::Cron(cron, tz) => {
                let at = Utc
                    .timestamp_millis_opt(i64::try_from(after_ms).ok()?)
                    .single()?
                    .with_timezone(tz);
                let next = cron.find_next_occurrence(&at, false).ok()?;
                u64::try_from(next.timestamp_millis()).ok()
            }
        }
    }

    /// How many fire times lie in `(after_ms, before_ms)`, and the first fire time at or after
    /// `before_ms`. Intervals count arithmetically; a cron expression counts one fire at a time,
    /// at most `cap` (the count saturates there, the next fire is still exact).
    pub(crate) fn count_between(
        &self,
        after_ms: u64,
        before_ms: u64,
        cap: u64,
    ) -> (u64, Option<u64>) {
        if let Compiled::Interval { every_ms, .. } = self {
            // Arithmetic, so years of downtime on a short interval cost nothing.
            let Some(first) = self.next_after(after_ms) else {
                return (0, None);
            };
            if first >= before_ms {
                return (0, Some(first));
            }
            let count = (before_ms - 1 - first) / every_ms + 1;
            let next = first.checked_add(count.saturating_mul(*every_ms));
            return (count, next);
        }
        let mut count = 0;
        let mut at = after_ms;
        loop {
            match self.next_after(at) {
                Some(next) if next < before_ms && count < cap => {
                    count += 1;
                    at = next;
                }
                Some(next) if next < before_ms => {
                    // Over the cap: skip ahead to the first fire at or after `before_ms`.
                    return (count, self.next_after(before_ms.saturating_sub(1)));
                }
                other => return (count, other),
            }
        }
    }
}

/// The jitter of the fire at `fire_ms` of schedule `id`: a delay in `[0, jitter)`, the same
/// every time it is computed, so a restart waits for the same moment.
pub(crate) fn jitter_ms(id: &str, fire_ms: u64, jitter: Duration) -> u64 {
    let range = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if range == 0 {
        return 0;
    }
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().chain(fire_ms.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_count_arithmetically() {
        let every = Trigger::every(Duration::from_secs(10)).compile().unwrap();
        assert_eq!(every.next_after(0), Some(10_000));
        assert_eq!(every.next_after(10_000), Some(20_000));
        assert_eq!(every.next_after(10_001), Some(20_000));
        // (0, 100s): 10s .. 90s
        assert_eq!(
            every.count_between(0, 100_000, u64::MAX),
            (9, Some(100_000))
        );
        assert_eq!(every.count_between(0, 100_000, 3), (9, Some(100_000)));
    }

    #[test]
    fn an_interval_has_no_fire_after_the_last_millisecond() {
        // Found by the fuzzer (`schedule.trigger`): this overflowed.
        let every_ms = Trigger::every(Duration::from_millis(1)).compile().unwrap();
        assert_eq!(every_ms.next_after(u64::MAX), None);
        assert_eq!(every_ms.next_after(u64::MAX - 1), Some(u64::MAX));
        assert_eq!(
            every_ms.count_between(u64::MAX - 3, u64::MAX, 10),
            (2, Some(u64::MAX))
        );
    }

    #[test]
    fn cron_fields_and_zones_are_checked() {
        assert!(Trigger::cron("* * * *").compile().is_err());
        assert!(Trigger::cron("0 0 0 1 1 * 2030 1").compile().is_err());
        assert!(Trigger::cron("61 * * * *").compile().is_err());
        assert!(
            Trigger::cron_in("0 * * * *", "Mars/Olympus")
                .compile()
                .is_err()
        );
        assert!(Trigger::cron("*/5 * * * *").compile().is_ok());
        assert!(Trigger::cron("30 */5 * * * *").compile().is_ok());
        assert!(Trigger::cron("0 0 12 1 1 * 2031").compile().is_ok());
        assert!(Trigger::every(Duration::ZERO).compile().is_err());
    }

    #[test]
    fn cron_counts_between() {
        let hourly = Trigger::cron("0 * * * *").compile().unwrap();
        let hour = 3_600_000;
        assert_eq!(
            hourly.count_between(0, 10 * hour, u64::MAX),
            (9, Some(10 * hour))
        );
        assert_eq!(hourly.count_between(0, 10 * hour, 2), (2, Some(10 * hour)));
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let j = Duration::from_secs(30);
        assert_eq!(jitter_ms("a", 5, j), jitter_ms("a", 5, j));
        assert!(jitter_ms("a", 5, j) < 30_000);
        assert_eq!(jitter_ms("a", 5, Duration::ZERO), 0);
    }
}
