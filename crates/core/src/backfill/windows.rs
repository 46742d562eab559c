//! Which windows a range needs: the grid of `[graph] window`-sized cells aligned on the Unix epoch
//! (UTC), so that runs with other bounds meet the same cells, minus what the query ledger already
//! covers. Pure functions over times, tested on their own.

use chrono::{DateTime, TimeDelta, Utc};

/// A half-open interval of time, `[start, end)`: a query's `filterStartDateTime` and
/// `filterEndDateTime` (graph-audit-api.md, "The three calls").
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// The cells of the grid of `size` (aligned on the Unix epoch) that meet `[from, to)`, each clipped to
/// it, oldest first. Empty when `from >= to`; a `size` under a second counts as a second.
pub fn grid(from: DateTime<Utc>, to: DateTime<Utc>, size: TimeDelta) -> Vec<Window> {
    let step = size.num_seconds().max(1);
    let (from_s, to_s) = (from.timestamp(), to.timestamp());
    let mut out = Vec::new();
    if from_s >= to_s {
        return out;
    }
    let mut cell = from_s.div_euclid(step) * step;
    while cell < to_s {
        let start = cell.max(from_s);
        let end = (cell + step).min(to_s);
        if let (Some(s), Some(e)) = (at(start), at(end)) {
            out.push((s, e));
        }
        cell += step;
    }
    out
}

/// The parts of `window` that none of `covered` covers, oldest first.
pub fn uncovered(window: Window, covered: &[Window]) -> Vec<Window> {
    let mut sorted: Vec<Window> = covered
        .iter()
        .copied()
        .filter(|(s, e)| s < e && *s < window.1 && *e > window.0)
        .collect();
    sorted.sort();
    let mut gaps = Vec::new();
    let mut cursor = window.0;
    for (s, e) in sorted {
        if s > cursor {
            gaps.push((cursor, s.min(window.1)));
        }
        cursor = cursor.max(e);
        if cursor >= window.1 {
            break;
        }
    }
    if cursor < window.1 {
        gaps.push((cursor, window.1));
    }
    gaps
}

/// The two halves of `window`, split at a whole second; `None` when a half would be shorter than `min`
/// (or than a second).
pub fn halves(window: Window, min: TimeDelta) -> Option<(Window, Window)> {
    let length = window.1 - window.0;
    if length < min * 2 || length.num_seconds() < 2 {
        return None;
    }
    let mid = at(window.0.timestamp() + length.num_seconds() / 2)?;
    Some(((window.0, mid), (mid, window.1)))
}

/// Seconds since the epoch as a time.
fn at(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_stored(s).unwrap()
    }

    #[test]
    fn the_grid_is_aligned_on_the_epoch_and_clipped_to_the_range() {
        let g = grid(
            t("2026-06-01T06:00:00Z"),
            t("2026-06-03T12:00:00Z"),
            TimeDelta::days(1),
        );
        assert_eq!(
            g,
            vec![
                (t("2026-06-01T06:00:00Z"), t("2026-06-02T00:00:00Z")),
                (t("2026-06-02T00:00:00Z"), t("2026-06-03T00:00:00Z")),
                (t("2026-06-03T00:00:00Z"), t("2026-06-03T12:00:00Z")),
            ]
        );
        assert!(
            grid(
                t("2026-06-02T00:00:00Z"),
                t("2026-06-02T00:00:00Z"),
                TimeDelta::days(1)
            )
            .is_empty()
        );
        let hours = grid(
            t("2026-06-01T00:00:00Z"),
            t("2026-06-02T00:00:00Z"),
            TimeDelta::hours(6),
        );
        assert_eq!(hours.len(), 4);
        assert_eq!(
            hours[3],
            (t("2026-06-01T18:00:00Z"), t("2026-06-02T00:00:00Z"))
        );
    }

    #[test]
    fn uncovered_parts_are_what_no_ledger_window_covers() {
        let day = (t("2026-06-01T00:00:00Z"), t("2026-06-02T00:00:00Z"));
        assert_eq!(uncovered(day, &[]), vec![day]);
        assert!(uncovered(day, &[day]).is_empty());
        // Two halves of a split cover it; a wider window covers it.
        let halves_of = [
            (t("2026-06-01T12:00:00Z"), t("2026-06-02T00:00:00Z")),
            (t("2026-06-01T00:00:00Z"), t("2026-06-01T12:00:00Z")),
        ];
        assert!(uncovered(day, &halves_of).is_empty());
        assert!(
            uncovered(
                day,
                &[(t("2026-05-31T00:00:00Z"), t("2026-06-03T00:00:00Z"))]
            )
            .is_empty()
        );
        // A hole in the middle and a missing end.
        let parts = [
            (t("2026-06-01T00:00:00Z"), t("2026-06-01T06:00:00Z")),
            (t("2026-06-01T08:00:00Z"), t("2026-06-01T20:00:00Z")),
        ];
        assert_eq!(
            uncovered(day, &parts),
            vec![
                (t("2026-06-01T06:00:00Z"), t("2026-06-01T08:00:00Z")),
                (t("2026-06-01T20:00:00Z"), t("2026-06-02T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn halving_stops_at_the_smallest_window() {
        let day = (t("2026-06-01T00:00:00Z"), t("2026-06-02T00:00:00Z"));
        let (a, b) = halves(day, TimeDelta::minutes(15)).unwrap();
        assert_eq!(a, (day.0, t("2026-06-01T12:00:00Z")));
        assert_eq!(b, (t("2026-06-01T12:00:00Z"), day.1));
        let quarter = (t("2026-06-01T00:00:00Z"), t("2026-06-01T00:15:00Z"));
        assert!(halves(quarter, TimeDelta::minutes(15)).is_none());
        // No half shorter than the smallest window: 20 minutes is not split at 15, 30 is.
        let twenty = (t("2026-06-01T00:00:00Z"), t("2026-06-01T00:20:00Z"));
        assert!(halves(twenty, TimeDelta::minutes(15)).is_none());
        let thirty = (t("2026-06-01T00:00:00Z"), t("2026-06-01T00:30:00Z"));
        assert!(halves(thirty, TimeDelta::minutes(15)).is_some());
        let odd = (t("2026-06-01T00:00:00Z"), t("2026-06-01T00:00:03Z"));
        let (a, b) = halves(odd, TimeDelta::seconds(1)).unwrap();
        assert_eq!(
            (a.1, b.0),
            (t("2026-06-01T00:00:01Z"), t("2026-06-01T00:00:01Z"))
        );
    }
}
