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

/// How long the API keeps content (management-api.md §2.1, §2.2).
pub const RETENTION: TimeDelta = TimeDelta::days(7);
/// A clamped start is kept this far inside the 7 days so that the first request is not refused.
const CLAMP_MARGIN: TimeDelta = TimeDelta::minutes(2);

/// Why a window is refused. All of these are found before the first request (exit code 2).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WindowError {
    /// `--from` is not before `--to` (a `--to` in the future having been cut to now).
    #[error("--from {from} is not before --to {to}; give an earlier --from or a later --to")]
    Reversed {
        /// `--from`, in the [`ts`] form (`2026-11-21T13:17:34Z`).
        from: String,
        /// `--to` (or now), likewise.
        to: String,
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
         {limit}; raise segment_count_limit to {needed} or more, or make time_interval longer (at most 24 hour)"
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
    /// Where the window starts: `--from`, or the configured window's start moved back to the
    /// watermark when an earlier run was missed, never earlier than 7 days (less two minutes) ago.
    pub start: DateTime<Utc>,
    /// Where it ends: `--to` unless it is in the future, else now (truncated to whole seconds).
    pub end: DateTime<Utc>,
    /// `[start, end)` cut into consecutive segments of `time_interval time_interval_unit`, in time
    /// order, the last one cut short at `end`.
    pub segments: Vec<Segment>,
    /// Things the admin should know about the window (an extension to the watermark, a clamp).
    pub notes: Vec<String>,
    /// The watermark was older than the API's 7 days: the gap behind `start` is accepted (and was
    /// reported), so the watermark may move on from `start`.
    pub clamped: bool,
}

/// The explicit range of `sync --from … --to …`.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// `--from`: where the window starts.
    pub from: DateTime<Utc>,
    /// `--to`: where it ends; `None`, or a time in the future, for now.
    pub to: Option<DateTime<Utc>>,
}

/// Plans the window at `now` (truncated to whole seconds): where it starts and ends, its segments, and
/// what the admin should be told about it.
///
/// # Errors
/// A [`WindowError`] for a range or a configured window that cannot be done (exit code 2), before any
/// request.
pub fn window(
    now: DateTime<Utc>,
    settings: &SyncSettings,
    range: Option<Range>,
    watermark: Option<DateTime<Utc>>,
) -> Result<Plan, WindowError> {
    let now = now.with_nanosecond(0).unwrap_or(now);
    let oldest = now - RETENTION;
    let mut notes = Vec::new();
    let mut clamped = false;
    let (start, end) = match range {
        Some(Range { from, to }) => {
            let to = match to {
                Some(t) if t > now => {
                    notes.push(format!(
                        "--to {} is in the future; the window ends now",
                        ts(t)
                    ));
                    now
                }
                Some(t) => t,
                None => now,
            };
            if from >= to {
                return Err(WindowError::Reversed {
                    from: ts(from),
                    to: ts(to),
                });
            }
            // The service counts 7 days from its own clock when the request arrives: keep a margin.
            if from < oldest + CLAMP_MARGIN {
                return Err(WindowError::TooOld {
                    from: ts(from),
                    oldest: ts(oldest + CLAMP_MARGIN),
                });
            }
            (from, to)
        }
        None => {
            let mut start = now - settings.start_time_unit.times(settings.start_time_interval);
            if let Some(w) = watermark.filter(|w| *w < start) {
                if w < oldest + CLAMP_MARGIN {
                    start = oldest + CLAMP_MARGIN;
                    clamped = true;
                    notes.push(format!(
                        "the last complete sync ended at {}, more than 7 days ago; content created between then \
                         and {} can no longer be fetched from the API: load it with `auditsync import` from a \
                         Purview audit export",
                        ts(w),
                        ts(start)
                    ));
                } else {
                    start = w;
                    notes.push(format!(
                        "the last complete sync ended at {}; the window reaches back to it so nothing is missed",
                        ts(w)
                    ));
                }
            }
            (start.max(oldest + CLAMP_MARGIN).min(now), now)
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
        Some(r) => r.from,
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
        notes.push(format!(
            "catching up takes {needed} segments, more than segment_count_limit ({}); allowed because only \
             the API's 7 days bound a catch-up",
            settings.segment_count_limit
        ));
    }
    let mut segments = Vec::with_capacity(needed);
    let mut s = start;
    while s < end {
        let e = (s + step).min(end);
        segments.push(Segment { start: s, end: e });
        s = e;
    }
    Ok(Plan {
        start,
        end,
        segments,
        notes,
        clamped,
    })
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
        let p = window(now, &settings(), None, None).unwrap();
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
        let p = window(now, &s, None, None).unwrap();
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].start, at("2026-11-22T09:30"));
        assert_eq!(p.segments[1].end, now);
    }

    #[test]
    fn too_many_segments_is_refused_naming_the_setting() {
        let mut s = settings();
        s.time_interval = 5;
        s.time_interval_unit = TimeUnit::Minute;
        let err = window(at("2026-11-22T10:00"), &s, None, None).unwrap_err();
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
        let p = window(now, &s, None, Some(at("2026-11-20T04:00"))).unwrap();
        assert_eq!(p.start, at("2026-11-20T04:00"));
        assert_eq!(p.segments.len(), 54);
        assert!(p.notes[0].contains("reaches back"));
        // Beyond segment_count_limit (60): a catch-up is not refused, only bounded by the 7 days.
        let p = window(now, &s, None, Some(at("2026-11-17T10:00"))).unwrap();
        assert_eq!(p.segments.len(), 120);
        assert!(p.notes[1].contains("more than segment_count_limit"));
        // A watermark inside the default window changes nothing.
        let p = window(now, &s, None, Some(at("2026-11-22T09:00"))).unwrap();
        assert_eq!(p.start, at("2026-11-21T10:00"));
        // Beyond 7 days: clamped, and said.
        let p = window(now, &s, None, Some(at("2026-11-01T00:00"))).unwrap();
        assert_eq!(p.start, now - RETENTION + CLAMP_MARGIN);
        assert!(p.clamped && p.notes[0].contains("can no longer be fetched"));
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
        )
        .unwrap();
        assert_eq!(p.segments.len(), 12);
        assert!(matches!(
            window(
                now,
                &settings(),
                Some(r("2026-11-20", Some("2026-11-19"))),
                None
            ),
            Err(WindowError::Reversed { .. })
        ));
        let old = window(
            now,
            &settings(),
            Some(r("2026-11-14", Some("2026-11-15"))),
            None,
        )
        .unwrap_err();
        assert!(old.to_string().contains("auditsync import"), "{old}");
        let future = window(
            now,
            &settings(),
            Some(r("2026-11-22T08:00", Some("2026-11-23"))),
            None,
        )
        .unwrap();
        assert_eq!(future.end, now);
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
