//! The window a sync covers and its segments, decided before any request.
//!
//! The default window is `start_time_interval start_time_unit` back from now (the CoE's StartTime),
//! extended back to the watermark when an earlier run was missed, never further than the 7 days the API
//! keeps content. It is cut into half-open segments of `time_interval time_interval_unit`, the last one
//! clamped to the end. A configured or requested window (`--from/--to`) that needs more than
//! `segment_count_limit` segments is refused; catching up after missed runs is bounded by the 7 days
//! instead (refusing it would stop every later run too, and lose the data once it ages out).

use chrono::{DateTime, TimeDelta, Timelike, Utc};

use crate::config::SyncSettings;
use crate::time::ts;

/// How long the API keeps content (management-api.md §2.1, §2.2): the store's
/// [`FETCHABLE_DAYS`](crate::store::FETCHABLE_DAYS), which `prune` guards, as a duration.
pub const RETENTION: TimeDelta = TimeDelta::days(crate::store::FETCHABLE_DAYS);
/// A clamped start is kept this far inside the 7 days so that the first request is not refused.
const CLAMP_MARGIN: TimeDelta = TimeDelta::minutes(2);

/// The earliest start the API serves at `now`: its 7 days, less [`CLAMP_MARGIN`] (the service counts
/// them from its own clock when the request arrives). The one place this bound is computed.
fn oldest(now: DateTime<Utc>) -> DateTime<Utc> {
    now - RETENTION + CLAMP_MARGIN
}

/// Why a window is refused. All of these are found before the first request (exit code 2).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WindowError {
    /// `--from` is not before `--to`, both as given.
    #[error("--from {from} is not before --to {to}; give an earlier --from or a later --to")]
    Reversed {
        /// `--from`, in the [`ts`] form (`2026-11-21T13:17:34Z`), with its fraction when it has one.
        from: String,
        /// `--to`, likewise.
        to: String,
    },
    /// `--from` is later than now (or now exactly).
    #[error(
        "--from {from} is in the future (now is {now}); give a --from before now (at most 7 days ago), such \
         as the time of the last complete sync that `auditsync status` shows"
    )]
    FromInFuture {
        /// `--from`, in the [`ts`] form with its fraction when it has one.
        from: String,
        /// This machine's clock, likewise.
        now: String,
    },
    /// `--from` is before now but not before the last whole second, where a window without `--to`
    /// (or with a `--to` in the current second or later) ends: the API takes whole seconds, so the
    /// window would be empty.
    #[error(
        "--from {from} is not before now ({now}): the API takes whole seconds, so the window ends at {now} and \
         would be empty; give an earlier --from, at least a second ago"
    )]
    FromNotBeforeNow {
        /// `--from`, in the [`ts`] form with its fraction when it has one.
        from: String,
        /// Now, rounded down to the whole second, in the [`ts`] form.
        now: String,
    },
    /// `--from` is more than 7 days less two minutes ago: the API serves 7 days, counted on its own
    /// clock (management-api.md §2.1), and the two minutes keep the first request inside them.
    #[error(
        "--from {from} is too old: the API keeps content for 7 days, so the earliest start is {oldest}; load \
         older data with `auditsync import` from a Purview audit export"
    )]
    TooOld {
        /// `--from`, in the [`ts`] form.
        from: String,
        /// The earliest start accepted now, likewise.
        oldest: String,
    },
    /// The configured window, or `--from`/`--to`, needs more segments than `segment_count_limit`. A
    /// catch-up to the watermark is not refused (see the module doc).
    #[error(
        "the window {start} to {end} needs {needed} segments of {segment} but segment_count_limit is \
         {limit}; raise segment_count_limit to {needed} or more, or make time_interval longer (at most 24 hours)"
    )]
    TooManySegments {
        /// The start of the window asked for, in the [`ts`] form.
        start: String,
        /// Its end, likewise.
        end: String,
        /// How many segments it needs, the last one possibly shorter.
        needed: usize,
        /// One segment's length as configured, e.g. `1 hour`.
        segment: String,
        /// `segment_count_limit`.
        limit: u32,
    },
}

/// A half-open interval `[start, end)` of `contentCreated` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first `contentCreated` time included (the request's `startTime`).
    pub start: DateTime<Utc>,
    /// The first one excluded (the request's `endTime`; management-api.md §2.1).
    pub end: DateTime<Utc>,
}

/// What a run will cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Where the window starts, in whole seconds: `--from` (rounded down), or the configured window's
    /// start moved back to the watermark when an earlier run was missed, never earlier than 7 days
    /// (less two minutes) ago.
    pub start: DateTime<Utc>,
    /// Where it ends, in whole seconds: `--to` (rounded up) unless it is in the future, else now
    /// (truncated to whole seconds).
    pub end: DateTime<Utc>,
    /// `[start, end)` cut into consecutive segments of `time_interval time_interval_unit`, in time
    /// order, the last one cut short at `end`; each one at least a second long.
    pub segments: Vec<Segment>,
    /// Things the admin should know about the window (an extension to the watermark, a clamp).
    pub notes: Vec<String>,
    /// Things the admin must see even under `-q` (a watermark in the future); not repeated in `notes`.
    pub alerts: Vec<String>,
    /// The watermark the run moves on from: the stored one, or `start` when the window had to reach
    /// back as far as the API serves (a watermark older than the API's 7 days, the gap reported in
    /// `expired`; or one in the future, not trusted).
    pub watermark: Option<DateTime<Utc>>,
    /// Content the API no longer serves that the watermark says was never fetched: a loss, reported
    /// by the run (exit 1).
    pub expired: Option<Expired>,
}

/// Content created in `[from, to)` that can no longer be fetched: the API keeps 7 days
/// (management-api.md §2.1, §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Where the gap starts (the last complete sync's end); `None` when that is not known (the
    /// watermark was in the future and no earlier run left one that is not).
    pub from: Option<DateTime<Utc>>,
    /// Where it ends: the window's start.
    pub to: DateTime<Utc>,
}

impl Expired {
    /// The sentence the admin reads: what is missing and how to get it back.
    pub fn describe(&self) -> String {
        match self.from {
            Some(from) => format!(
                "content created from {} to {} was never fetched and is older than the API's 7 days: it can no \
                 longer be fetched; load it with `auditsync import` from a Purview audit export",
                ts(from),
                ts(self.to)
            ),
            None => format!(
                "content created before {} may never have been fetched (no watermark that can be trusted) \
                 and is older than the API's 7 days: check `auditsync report daily` for missing days and load \
                 them with `auditsync import` from a Purview audit export",
                ts(self.to)
            ),
        }
    }
}

/// The explicit range of `sync --from … --to …`.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// `--from`: where the window starts.
    pub from: DateTime<Utc>,
    /// `--to`: where it ends; `None`, or a time in the future, for now.
    pub to: Option<DateTime<Utc>>,
}

/// How far ahead of this machine's clock a watermark may be before it is not trusted: clocks of the
/// machines a copy of the database may come from differ by this much, and a run stores the watermark
/// at its own `now`.
pub const FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// `t` rounded down to the whole second.
fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// `t` rounded up to the whole second.
fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = floor_second(t);
    if down == t {
        t
    } else {
        down + TimeDelta::seconds(1)
    }
}

/// Plans the window at `now` (this machine's clock, to the nanosecond; the window ends at most at its
/// whole second): where it starts and ends, its segments, and what the admin should be told about it.
///
/// The API takes `startTime`/`endTime` to the second (management-api.md §2.1): a `--from` or `--to`
/// with a fraction (PowerShell's `Get-Date -Format o` writes seven digits) is rounded outwards, the
/// start down and the end up, so the whole range asked for is covered and no segment is empty.
///
/// `watermark` is the stored one. When it is more than [`FUTURE_SKEW`] ahead of `now` (a clock that
/// was set back, a database restored from a machine whose clock was ahead), it is not trusted: the
/// window reaches back as far as the API serves, which `alerts` says, and `trusted` (the last
/// watermark an earlier run recorded that is not in the future) decides only whether content older
/// than that is reported lost.
///
/// # Errors
/// A [`WindowError`] for a range or a configured window that cannot be done (exit code 2), before any
/// request.
pub fn window(
    now: DateTime<Utc>,
    settings: &SyncSettings,
    range: Option<Range>,
    watermark: Option<DateTime<Utc>>,
    trusted: Option<DateTime<Utc>>,
) -> Result<Plan, WindowError> {
    let clock = now;
    let now = floor_second(now);
    let mut plan = Plan {
        start: now,
        end: now,
        segments: Vec::new(),
        notes: Vec::new(),
        alerts: Vec::new(),
        watermark,
        expired: None,
    };
    let (start, end) = match range {
        Some(r) => explicit(clock, r, &mut plan.notes)?,
        None => {
            let start = now - settings.start_time_unit.times(settings.start_time_interval);
            (catch_up(now, start, trusted, &mut plan), now)
        }
    };
    let step = settings.time_interval_unit.times(settings.time_interval);
    let count = |from: DateTime<Utc>| {
        let secs = (end - from).num_seconds().max(0);
        let step = step.num_seconds().max(1);
        usize::try_from((secs + step - 1) / step).unwrap_or(usize::MAX)
    };
    // The limit applies to the window the admin configured or asked for.
    let asked = match range {
        Some(_) => start,
        None => end - settings.start_time_unit.times(settings.start_time_interval),
    }
    .max(start);
    if count(asked) > settings.segment_count_limit as usize {
        return Err(WindowError::TooManySegments {
            start: ts(asked),
            end: ts(end),
            needed: count(asked),
            segment: format!(
                "{} {}",
                settings.time_interval,
                settings.time_interval_unit.name()
            ),
            limit: settings.segment_count_limit,
        });
    }
    let needed = count(start);
    if needed > settings.segment_count_limit as usize {
        plan.notes.push(format!(
            "catching up takes {needed} segments, more than segment_count_limit ({}); allowed because only \
             the API's 7 days bound a catch-up",
            settings.segment_count_limit
        ));
    }
    // Whole seconds and a step of at least a minute: every segment is at least a second long.
    let step = step.max(TimeDelta::seconds(1));
    let mut s = start;
    while s < end {
        let e = (s + step).min(end);
        plan.segments.push(Segment { start: s, end: e });
        s = e;
    }
    plan.start = start;
    plan.end = end;
    Ok(plan)
}

/// `--from`/`--to` checked as given against each other and against `clock` (now, to the nanosecond),
/// then rounded outwards to whole seconds (see [`window`]), the end never past now's whole second.
fn explicit(
    clock: DateTime<Utc>,
    Range { from, to }: Range,
    notes: &mut Vec<String>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), WindowError> {
    let now = floor_second(clock);
    if let Some(to) = to.filter(|to| from >= *to) {
        return Err(WindowError::Reversed {
            from: precise(from),
            to: precise(to),
        });
    }
    if from >= clock {
        return Err(WindowError::FromInFuture {
            from: precise(from),
            now: precise(clock),
        });
    }
    let end = match to {
        Some(t) if t > clock => {
            notes.push(format!(
                "--to {} is in the future; the window ends now",
                ts(ceil_second(t))
            ));
            now
        }
        // A `--to` inside the current second is rounded up past now: cut to now's whole second.
        Some(t) => ceil_second(t).min(now),
        None => now,
    };
    let start = floor_second(from);
    // `from < to` and `from < clock`: only cutting the end to now's whole second (a `--from` in the
    // current second) can leave nothing.
    if start >= end {
        return Err(WindowError::FromNotBeforeNow {
            from: precise(from),
            now: ts(now),
        });
    }
    let oldest = oldest(now);
    if from < oldest {
        return Err(WindowError::TooOld {
            from: ts(from),
            oldest: ts(oldest),
        });
    }
    Ok((start, end))
}

/// A time as given, with its fraction when it has one (where a fraction decides, as in a refusal).
fn precise(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A watermark `w` more than [`FUTURE_SKEW`] later than `now`: whatever a wrong clock made the runs
/// skip is unknown (a run under a clock ahead lists the future and finds it empty, yet counts it
/// covered, and its watermark may since have fallen into the past), so the window reaches back as far
/// as the API serves: blobs already in the ledger are not fetched again, the missing ones are. Content
/// older than that is reported lost from `trusted` (the latest watermark an earlier run recorded that
/// is not in the future) when that is older, or as possibly lost when there is none.
fn distrust(
    now: DateTime<Utc>,
    w: DateTime<Utc>,
    trusted: Option<DateTime<Utc>>,
    plan: &mut Plan,
) -> DateTime<Utc> {
    let oldest = oldest(now);
    let trusted = trusted
        .map(floor_second)
        .filter(|t| *t <= now + FUTURE_SKEW);
    let last = match trusted {
        Some(t) => format!("the last watermark not in the future is {}", ts(t)),
        None => "no earlier run left a watermark that is not in the future".to_owned(),
    };
    plan.alerts.push(format!(
        "the watermark {} is later than now ({}, more than {} minutes ahead): this machine's clock was set \
         back, or the database is a copy from a machine whose clock was ahead; it is not trusted ({last}), so \
         the window reaches back to {}, as far as the API serves, and fetches whatever is missing; check the \
         clock (NTP)",
        ts(w),
        ts(now),
        FUTURE_SKEW.num_minutes(),
        ts(oldest)
    ));
    plan.expired = match trusted {
        Some(t) if t >= oldest => None,
        from => Some(Expired { from, to: oldest }),
    };
    plan.watermark = Some(oldest);
    oldest
}

/// A `--from` to suggest at `now` for reaching as far back as the API serves: its 7 days, less the
/// margin the plan keeps and 10 minutes for the admin to run the command.
pub(crate) fn earliest_start(now: DateTime<Utc>) -> DateTime<Utc> {
    oldest(floor_second(now)) + chrono::TimeDelta::minutes(10)
}

/// The default window's start: `start`, moved back to the watermark when an earlier run was missed,
/// never earlier than the API's 7 days (the gap is recorded in `plan.expired`). A watermark in the
/// future is not trusted (see [`distrust`]).
fn catch_up(
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    trusted: Option<DateTime<Utc>>,
    plan: &mut Plan,
) -> DateTime<Utc> {
    let oldest = oldest(now);
    if let Some(w) = plan.watermark.filter(|w| *w > now + FUTURE_SKEW) {
        return distrust(now, w, trusted, plan);
    }
    let from = plan.watermark.map(floor_second);
    let Some(w) = from.filter(|w| *w < start) else {
        return floor_second(start.max(oldest).min(now));
    };
    if w < oldest {
        let expired = Expired {
            from: Some(w),
            to: oldest,
        };
        // The loss itself is reported by the run (`Plan::expired`), at error level.
        plan.notes.push(format!(
            "the last complete sync ended at {}, more than 7 days ago; the window starts at {}, as far back as \
             the API serves",
            ts(w),
            ts(oldest)
        ));
        plan.expired = Some(expired);
        plan.watermark = Some(oldest);
        oldest
    } else {
        plan.notes.push(format!(
            "the window reaches back to {}, where the last complete sync ended (or the oldest blob not \
             stored yet was created), so nothing is missed",
            ts(w)
        ));
        w
    }
}

/// Where the watermark moves after a run: to the end of the unbroken run of complete segments from the
/// window's start, if that run starts at or before the current watermark (or there is none yet), so
/// the watermark never jumps over a gap.
pub fn advance_watermark(
    current: Option<DateTime<Utc>>,
    segments: &[Segment],
    complete: &[bool],
) -> Option<DateTime<Utc>> {
    let first = segments.first()?;
    if current.is_some_and(|w| first.start > w) {
        return current;
    }
    let reached = segments
        .iter()
        .zip(complete)
        .take_while(|(_, done)| **done)
        .last()
        .map(|(s, _)| s.end);
    match (current, reached) {
        (Some(w), Some(r)) => Some(w.max(r)),
        (w, r) => w.or(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeUnit;

    fn at(s: &str) -> DateTime<Utc> {
        crate::time::parse_cli_time(s).unwrap()
    }

    fn settings() -> SyncSettings {
        SyncSettings::default()
    }

    #[test]
    fn default_window_is_a_day_of_hourly_segments_ending_now() {
        let now = at("2026-11-22T10:30:15.5Z");
        let p = window(now, &settings(), None, None, None).unwrap();
        assert_eq!(p.start, at("2026-11-21T10:30:15"));
        assert_eq!(p.end, at("2026-11-22T10:30:15"));
        assert_eq!(p.segments.len(), 24);
        assert!(p.segments.windows(2).all(|w| w[0].end == w[1].start));
        assert!(p.notes.is_empty());
    }

    #[test]
    fn the_last_segment_is_clamped() {
        let mut s = settings();
        s.start_time_interval = 90;
        s.start_time_unit = TimeUnit::Minute;
        let now = at("2026-11-22T10:00:00");
        let p = window(now, &s, None, None, None).unwrap();
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].start, at("2026-11-22T09:30"));
        assert_eq!(p.segments[1].end, now);
    }

    #[test]
    fn too_many_segments_is_refused_naming_the_setting() {
        let mut s = settings();
        s.time_interval = 5;
        s.time_interval_unit = TimeUnit::Minute;
        let err = window(at("2026-11-22T10:00"), &s, None, None, None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("288 segments") && msg.contains("segment_count_limit is 60"),
            "{msg}"
        );
    }

    #[test]
    fn a_missed_run_extends_the_window_to_the_watermark() {
        let s = settings();
        let now = at("2026-11-22T10:00");
        let p = window(now, &s, None, Some(at("2026-11-20T04:00")), None).unwrap();
        assert_eq!(p.start, at("2026-11-20T04:00"));
        assert_eq!(p.segments.len(), 54);
        assert!(p.notes[0].contains("reaches back"));
        // Beyond segment_count_limit (60): a catch-up is not refused, only bounded by the 7 days.
        let p = window(now, &s, None, Some(at("2026-11-17T10:00")), None).unwrap();
        assert_eq!(p.segments.len(), 120);
        assert!(p.notes[1].contains("more than segment_count_limit"));
        // A watermark inside the default window changes nothing.
        let p = window(now, &s, None, Some(at("2026-11-22T09:00")), None).unwrap();
        assert_eq!(p.start, at("2026-11-21T10:00"));
        // Beyond 7 days: clamped, and said.
        let p = window(now, &s, None, Some(at("2026-11-01T00:00")), None).unwrap();
        assert_eq!(p.start, now - RETENTION + CLAMP_MARGIN);
        assert!(p.notes[0].contains("more than 7 days ago"));
        assert!(
            p.expired
                .unwrap()
                .describe()
                .contains("can no longer be fetched")
        );
        assert_eq!(
            p.expired,
            Some(Expired {
                from: Some(at("2026-11-01T00:00")),
                to: p.start
            })
        );
        assert_eq!(p.watermark, Some(p.start), "the gap is accepted");
    }

    #[test]
    fn explicit_ranges() {
        let now = at("2026-11-22T10:00");
        let r = |from: &str, to: Option<&str>| Range {
            from: at(from),
            to: to.map(at),
        };
        let p = window(
            now,
            &settings(),
            Some(r("2026-11-20T00:00", Some("2026-11-20T12:00"))),
            None,
            None,
        )
        .unwrap();
        assert_eq!(p.segments.len(), 12);
        assert!(matches!(
            window(
                now,
                &settings(),
                Some(r("2026-11-20", Some("2026-11-19"))),
                None,
                None
            ),
            Err(WindowError::Reversed { .. })
        ));
        let old = window(
            now,
            &settings(),
            Some(r("2026-11-14", Some("2026-11-15"))),
            None,
            None,
        )
        .unwrap_err();
        assert!(old.to_string().contains("auditsync import"), "{old}");
        let future = window(
            now,
            &settings(),
            Some(r("2026-11-22T08:00", Some("2026-11-23"))),
            None,
            None,
        )
        .unwrap();
        assert_eq!(future.end, now);
    }

    /// A watermark later than now (a clock set back, a restored copy) is not trusted: the window goes
    /// back to the last watermark not in the future, or as far as the API serves, and says so.
    #[test]
    fn a_watermark_in_the_future_is_not_trusted() {
        let s = settings();
        let now = at("2026-11-22T10:00");
        // Within the skew: a clock a little behind the one that stored it. Trusted as before.
        let p = window(now, &s, None, Some(now + TimeDelta::minutes(4)), None).unwrap();
        assert!(p.alerts.is_empty() && p.expired.is_none());
        assert_eq!(p.start, at("2026-11-21T10:00"));
        // Three days ahead, the last watermark not in the future three days ago: the window reaches
        // back as far as the API serves (what the wrong clock skipped is unknown), nothing is lost.
        let oldest = oldest(now);
        for ahead in [
            TimeDelta::minutes(6),
            TimeDelta::days(3),
            TimeDelta::days(400),
        ] {
            let trusted = at("2026-11-19T10:00");
            let p = window(now, &s, None, Some(now + ahead), Some(trusted)).unwrap();
            assert_eq!(p.start, oldest, "{ahead}");
            assert!(p.start < trusted);
            assert_eq!(p.end, now);
            assert_eq!(p.watermark, Some(oldest), "moves on from (back to) there");
            assert!(p.expired.is_none());
            assert!(
                p.alerts[0].contains("later than now")
                    && p.alerts[0].contains(&ts(now + ahead))
                    && p.alerts[0].contains(&ts(trusted)),
                "{:?}",
                p.alerts
            );
        }
        // The trusted one is older than 7 days: clamped, and the gap is a loss.
        let p = window(
            now,
            &s,
            None,
            Some(now + TimeDelta::days(1)),
            Some(at("2026-11-10T00:00")),
        )
        .unwrap();
        assert_eq!(p.start, now - RETENTION + CLAMP_MARGIN);
        assert_eq!(p.expired.unwrap().from, Some(at("2026-11-10T00:00")));
        assert_eq!(p.alerts.len(), 1);
        // None to trust: as far back as the API serves, and what lies before may be lost.
        let p = window(now, &s, None, Some(now + TimeDelta::days(3)), None).unwrap();
        assert_eq!(p.start, now - RETENTION + CLAMP_MARGIN);
        assert_eq!(p.watermark, Some(p.start));
        assert_eq!(
            p.expired,
            Some(Expired {
                from: None,
                to: p.start
            })
        );
        assert!(p.alerts[0].contains("no earlier run left a watermark that is not in the future"));
        // A "trusted" one that is itself in the future is not.
        let p = window(
            now,
            &s,
            None,
            Some(now + TimeDelta::days(3)),
            Some(now + TimeDelta::days(2)),
        )
        .unwrap();
        assert_eq!(p.start, now - RETENTION + CLAMP_MARGIN);
        assert_eq!(p.expired.unwrap().from, None);
        // --from/--to do not consult the watermark.
        let p = window(
            now,
            &s,
            Some(Range {
                from: at("2026-11-22T08:00"),
                to: None,
            }),
            Some(now + TimeDelta::days(3)),
            None,
        )
        .unwrap();
        assert!(p.alerts.is_empty());
    }

    /// Sub-second bounds (PowerShell's `Get-Date -Format o` writes 7 fraction digits): every segment
    /// is whole seconds (the API takes `startTime`/`endTime` to the second), none is empty or inverted,
    /// and the whole range asked for stays covered (the start floored, the end ceiled).
    #[test]
    fn sub_second_bounds_never_make_an_empty_segment() {
        let now = at("2026-11-29T00:00");
        let mut cases = Vec::new();
        for digits in 1..=7 {
            for frac in ["5", "0000001", "9999999", "1234567"] {
                let f = &frac[..digits.min(frac.len())];
                for zone in ["Z", "+02:00", "-05:30", ""] {
                    cases.push((
                        format!("2026-11-28T10:00:00{zone}"),
                        format!("2026-11-28T12:00:00.{f}{zone}"),
                    ));
                    cases.push((
                        format!("2026-11-28T10:00:00.{f}{zone}"),
                        format!("2026-11-28T11:00:00.{f}{zone}"),
                    ));
                    cases.push((
                        format!("2026-11-28 10:59:59.{f}{zone}"),
                        format!("2026-11-28 11:00:00.{f}{zone}"),
                    ));
                }
            }
        }
        for (from, to) in &cases {
            let (from, to) = (at(from), at(to));
            if from >= to {
                continue;
            }
            for minutes in [1, 60] {
                let mut s = settings();
                s.time_interval = minutes;
                s.time_interval_unit = TimeUnit::Minute;
                s.segment_count_limit = 1000;
                let p = window(now, &s, Some(Range { from, to: Some(to) }), None, None).unwrap();
                assert!(p.start <= from && p.end >= to, "{from} {to}: {p:?}");
                assert!(!p.segments.is_empty());
                assert_eq!(p.segments[0].start, p.start);
                assert_eq!(p.segments.last().unwrap().end, p.end);
                for seg in &p.segments {
                    assert!(seg.start < seg.end, "{from} {to}: {seg:?}");
                    assert_eq!(seg.start.nanosecond(), 0, "{seg:?}");
                    assert_eq!(seg.end.nanosecond(), 0, "{seg:?}");
                    // What the request carries (content_url's form) is not empty either.
                    let sec = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
                    assert!(sec(seg.start) < sec(seg.end), "{seg:?}");
                }
                assert!(p.segments.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
        // The quoted case: the last segment is the one second that holds 12:00:00.5.
        let p = window(
            now,
            &settings(),
            Some(Range {
                from: at("2026-11-28T10:00:00Z"),
                to: Some(at("2026-11-28T12:00:00.5Z")),
            }),
            None,
            None,
        )
        .unwrap();
        assert_eq!(p.segments.len(), 3);
        assert_eq!(p.end, at("2026-11-28T12:00:01Z"));
        // A sub-second window is one second long, not refused and not empty.
        let p = window(
            now,
            &settings(),
            Some(Range {
                from: at("2026-11-28T10:00:00.2Z"),
                to: Some(at("2026-11-28T10:00:00.7Z")),
            }),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            p.segments,
            [Segment {
                start: at("2026-11-28T10:00:00Z"),
                end: at("2026-11-28T10:00:01Z")
            }]
        );
        // Reversed by a fraction: still refused, naming the times as given.
        assert!(matches!(
            window(
                now,
                &settings(),
                Some(Range {
                    from: at("2026-11-28T10:00:00.7Z"),
                    to: Some(at("2026-11-28T10:00:00.2Z")),
                }),
                None,
                None,
            ),
            Err(WindowError::Reversed { .. })
        ));
    }

    /// `--from` without `--to` is measured against now, and the refusal says so (never naming a `--to`
    /// that was not given); one within the current second cannot make a whole second before now.
    #[test]
    fn a_from_at_or_after_now_is_refused_naming_now() {
        let s = settings();
        let now = at("2026-11-29T21:40:29.932506Z");
        let refuse = |from: &str, to: Option<&str>| {
            window(
                now,
                &s,
                Some(Range {
                    from: at(from),
                    to: to.map(at),
                }),
                None,
                None,
            )
            .unwrap_err()
            .to_string()
        };
        // 0.2 s ago: inside the current second, so the window [29, 29) would be empty.
        for from in [
            "2026-11-29T21:40:29.732506Z",
            "2026-11-29T21:40:29Z",
            "2026-11-29T21:40:29.932505Z",
        ] {
            let msg = refuse(from, None);
            assert!(
                msg.contains("is not before now (2026-11-29T21:40:29Z)") && !msg.contains("--to"),
                "{msg}"
            );
            assert!(msg.contains("earlier --from"), "{msg}");
            // The same with a --to in the future (cut to now).
            let msg = refuse(from, Some("2026-11-30"));
            assert!(msg.contains("is not before now"), "{msg}");
        }
        // A --to inside the current second is cut to the last whole second too.
        let msg = refuse("2026-11-29T21:40:29.1Z", Some("2026-11-29T21:40:29.5Z"));
        assert!(msg.contains("is not before now"), "{msg}");
        // In the future: a few seconds, an hour, with or without a later --to.
        for (from, to) in [
            ("2026-11-29T21:40:29.932506Z", None),
            ("2026-11-29T21:40:33Z", None),
            ("2026-11-29T22:41+01:00", None),
            ("2026-11-29T23:00Z", Some("2026-11-30T00:00Z")),
        ] {
            let msg = refuse(from, to);
            assert!(
                msg.contains("is in the future")
                    && msg.contains("now is 2026-11-29T21:40:29")
                    && !msg.contains("--to"),
                "{msg}"
            );
        }
        // Both given and reversed: the --to as given is named.
        let msg = refuse("2026-11-29T10:00Z", Some("2026-11-29T09:00Z"));
        assert!(
            msg.contains("is not before --to 2026-11-29T09:00:00Z"),
            "{msg}"
        );
        // A second and a bit ago is a valid one-second window.
        let p = window(
            now,
            &s,
            Some(Range {
                from: at("2026-11-29T21:40:28.9Z"),
                to: None,
            }),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            p.segments,
            [Segment {
                start: at("2026-11-29T21:40:28Z"),
                end: at("2026-11-29T21:40:29Z")
            }]
        );
    }

    #[test]
    fn the_watermark_moves_only_over_an_unbroken_prefix() {
        let seg = |a: &str, b: &str| Segment {
            start: at(a),
            end: at(b),
        };
        let segs = [
            seg("2026-11-22T00:00", "2026-11-22T01:00"),
            seg("2026-11-22T01:00", "2026-11-22T02:00"),
            seg("2026-11-22T02:00", "2026-11-22T03:00"),
        ];
        assert_eq!(
            advance_watermark(None, &segs, &[true, true, true]),
            Some(at("2026-11-22T03:00"))
        );
        assert_eq!(
            advance_watermark(None, &segs, &[true, false, true]),
            Some(at("2026-11-22T01:00"))
        );
        assert_eq!(advance_watermark(None, &segs, &[false, true, true]), None);
        let w = Some(at("2026-11-22T00:00"));
        assert_eq!(
            advance_watermark(w, &segs, &[false, true, true]),
            w,
            "kept, not lost"
        );
        // A backfill that starts after the watermark leaves a gap: no move.
        let w = Some(at("2026-11-21T20:00"));
        assert_eq!(advance_watermark(w, &segs, &[true, true, true]), w);
        // One that overlaps it moves it.
        let w = Some(at("2026-11-22T00:30"));
        assert_eq!(
            advance_watermark(w, &segs, &[true, true, true]),
            Some(at("2026-11-22T03:00"))
        );
        // It never moves back.
        let w = Some(at("2026-11-22T05:00"));
        assert_eq!(advance_watermark(w, &segs, &[true, true, true]), w);
    }
}
