//! The pending command in words, for people reading `describe`: "waiting for signal `Approval`
//! since 2026-12-05 10:42:07 UTC".
//!
//! In: a stored pending command and when the step that issued it was committed. Out: one line
//! of text. Times are UTC, to the second, so the line reads the same on every machine.

use crate::review::REVIEW_QUEUE;

use super::record::PendingCommand;

/// The prefix of update queue names (`Update::QUEUE` is `weft.update/{NAME}`).
const UPDATE_QUEUE_PREFIX: &str = "weft.update/";

/// What a workflow suspended at `since_ms` waits on, in words. `attempt` is a top-level
/// activity's current attempt (1-based), shown with the retry policy's limit.
pub(crate) fn pending(command: &PendingCommand, since_ms: u64, attempt: u32) -> String {
    let since = time(since_ms);
    match command {
        PendingCommand::Activity { name, options, .. } => format!(
            "waiting on activity `{name}`, attempt {attempt} of {}, since {since}",
            options.retry.max_attempts.max(1)
        ),
        PendingCommand::Timer { deadline_ms } => format!("sleeping until {}", time(*deadline_ms)),
        PendingCommand::Group { race, branches, .. } => {
            let done = branches.iter().filter(|b| b.value.is_some()).count();
            let what = branches
                .iter()
                .map(|b| {
                    let one = operation(&b.pending);
                    if b.value.is_some() {
                        format!("{one} (done)")
                    } else {
                        one
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let which = if *race { "the first of" } else { "all of" };
            format!(
                "waiting on {which} {} operations ({done} done) since {since}: {what}",
                branches.len()
            )
        }
        other => format!("waiting {} since {since}", operation(other)),
    }
}

/// One durable operation, as the object of "waiting".
fn operation(command: &PendingCommand) -> String {
    match command {
        PendingCommand::Activity { name, .. } => format!("on activity `{name}`"),
        PendingCommand::Timer { deadline_ms } => {
            format!("for a timer until {}", time(*deadline_ms))
        }
        PendingCommand::Signal { name } if name == REVIEW_QUEUE => {
            "for a review decision".to_string()
        }
        PendingCommand::Signal { name } => match name.strip_prefix(UPDATE_QUEUE_PREFIX) {
            Some(update) => format!("for update `{update}`"),
            None => format!("for signal `{name}`"),
        },
        PendingCommand::Child { child_id, .. } => format!("on child workflow `{child_id}`"),
        PendingCommand::Group { race, branches, .. } => format!(
            "on a {} of {} operations",
            if *race { "race" } else { "group" },
            branches.len()
        ),
    }
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ActivityOptions;
    use crate::engine::record::Branch;

    /// 2026-12-05 10:42:07 UTC.
    const AT: u64 = 1_796_467_327_000;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(AT), "2026-12-05 10:42:07 UTC");
    }

    #[test]
    fn each_command_reads_as_a_sentence() {
        let signal = |name: &str| PendingCommand::Signal {
            name: name.to_string(),
        };
        assert_eq!(
            pending(&signal("Approval"), AT, 1),
            "waiting for signal `Approval` since 2026-12-05 10:42:07 UTC"
        );
        assert_eq!(
            pending(&signal("weft.update/AddItem"), AT, 1),
            "waiting for update `AddItem` since 2026-12-05 10:42:07 UTC"
        );
        assert_eq!(
            pending(&signal(REVIEW_QUEUE), AT, 1),
            "waiting for a review decision since 2026-12-05 10:42:07 UTC"
        );
        let activity = PendingCommand::Activity {
            name: "shop.charge_card".into(),
            input: Vec::new(),
            options: ActivityOptions::default(),
        };
        assert_eq!(
            pending(&activity, AT, 2),
            format!(
                "waiting on activity `shop.charge_card`, attempt 2 of {}, since 2026-12-05 10:42:07 UTC",
                ActivityOptions::default().retry.max_attempts
            )
        );
        assert_eq!(
            pending(&PendingCommand::Timer { deadline_ms: AT }, 0, 1),
            "sleeping until 2026-12-05 10:42:07 UTC"
        );
        let race = PendingCommand::Group {
            race: true,
            shape: crate::group::GroupShape::Tuple,
            branches: vec![
                Branch {
                    pending: signal("Approve"),
                    value: None,
                },
                Branch {
                    pending: PendingCommand::Timer { deadline_ms: AT },
                    value: Some(Vec::new()),
                },
            ],
        };
        assert_eq!(
            pending(&race, AT, 1),
            "waiting on the first of 2 operations (1 done) since 2026-12-05 10:42:07 UTC: for signal `Approve`, for a timer until 2026-12-05 10:42:07 UTC (done)"
        );
    }
}
