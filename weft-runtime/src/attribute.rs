//! Search attributes: typed values a workflow sets with
//! [`WorkflowContext::set_attribute`](crate::WorkflowContext::set_attribute) so that operators
//! can find and count workflows by business keys (`Engine::list`, `Engine::count`).
//!
//! An attribute is committed with the step that set it, in the same transaction, so it never
//! shows a value the workflow's committed state has not reached.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A search attribute's value: a string, an integer or a point in time.
///
/// Times are kept with millisecond precision (like every time the engine stores), so a time
/// reads back, and matches in a filter, truncated to the millisecond.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// Text, compared byte for byte.
    String(String),
    /// A signed integer.
    Int(i64),
    /// A point in time.
    Time(SystemTime),
}

impl AttributeValue {
    /// The value as it is stored and compared: times truncated to milliseconds.
    pub fn normalized(self) -> AttributeValue {
        match self {
            AttributeValue::Time(t) => AttributeValue::Time(from_millis(to_millis(t))),
            other => other,
        }
    }
}

/// Milliseconds since the Unix epoch, negative before it (saturating).
pub(crate) fn to_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis())
            .map(|ms| -ms)
            .unwrap_or(i64::MIN),
    }
}

/// The inverse of [`to_millis`].
pub(crate) fn from_millis(ms: i64) -> SystemTime {
    // Saturating at the platform's range (i64 ms fit on Unix; not on every platform).
    let by = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        crate::engine::clock::later(UNIX_EPOCH, by)
    } else {
        UNIX_EPOCH.checked_sub(by).unwrap_or(UNIX_EPOCH)
    }
}

impl fmt::Display for AttributeValue {
    /// Strings as they are, integers in decimal, times as milliseconds since the Unix epoch
    /// (the group names of `Engine::count`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::String(s) => f.write_str(s),
            AttributeValue::Int(n) => write!(f, "{n}"),
            AttributeValue::Time(t) => write!(f, "{}", to_millis(*t)),
        }
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        AttributeValue::String(value)
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        AttributeValue::String(value.to_string())
    }
}

impl From<&String> for AttributeValue {
    fn from(value: &String) -> Self {
        AttributeValue::String(value.clone())
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        AttributeValue::Int(value)
    }
}

impl From<i32> for AttributeValue {
    fn from(value: i32) -> Self {
        AttributeValue::Int(value.into())
    }
}

impl From<u32> for AttributeValue {
    fn from(value: u32) -> Self {
        AttributeValue::Int(value.into())
    }
}

impl From<SystemTime> for AttributeValue {
    fn from(value: SystemTime) -> Self {
        AttributeValue::Time(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_precision_on_both_sides_of_the_epoch() {
        for ms in [-1_500, -1, 0, 1, 1_700_000_000_123] {
            assert_eq!(to_millis(from_millis(ms)), ms);
        }
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(
            AttributeValue::from(t).normalized(),
            AttributeValue::Time(UNIX_EPOCH + Duration::from_millis(1))
        );
    }
}
