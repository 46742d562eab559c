//! Times at the edges, and the one form they are stored in (a leaf: it imports no other module of the
//! crate).
//!
//! Text becomes a `chrono::DateTime<Utc>` once, where it enters: a record's `CreationTime` or a
//! listing's `contentCreated` ([`parse_time`]), `--from`/`--to` ([`parse_cli_time`]), `--older-than`
//! ([`parse_age`]), a value read back from the database ([`parse_stored`]). Everything stored or shown
//! is RFC 3339 UTC in whole seconds ([`ts`]): `2026-11-21T13:17:34Z`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Utc};

/// The stored and shown form: RFC 3339, UTC, whole seconds, `Z` (`2026-11-21T13:17:34Z`).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads back a time written by [`ts`] (any RFC 3339 time is accepted); `None` for anything else.
pub fn parse_stored(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc())
}

/// Audit times as the Management Activity API writes them (management-api.md §2.3, §5):
/// `2026-05-19T13:17:34` (UTC, no zone, the common form), with a fraction of up to 7 digits, with `Z`,
/// or with an offset. `None` for anything else.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|n| n.and_utc())
}

/// Parses `--from`/`--to`: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a space
/// may stand for the `T`), UTC when no offset is given. A fraction of a second (any length, such as the
/// seven digits of PowerShell's `Get-Date -Format o`) is kept; `sync::plan::window` rounds the range
/// outwards to the whole seconds the API takes.
///
/// # Errors
/// A sentence naming the forms that are accepted, for clap to print (exit 2).
pub fn parse_cli_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim().replace(' ', "T");
    if let Some(time) = parse_time(&t) {
        return Ok(time);
    }
    let naive = t.strip_suffix('Z').unwrap_or(&t);
    if let Ok(n) = NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M") {
        return Ok(n.and_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "{s:?} is not a time; write it as 2026-11-21, 2026-11-21T08:00 or 2026-11-21T08:00:00+01:00 (UTC when no \
         offset is given)"
    ))
}

/// Parses an age such as `400d`, `52w` or `48h` (also `days`, `weeks`, `hours`), more than zero and
/// at most a hundred years.
///
/// # Errors
/// A sentence with an example of the accepted form, for clap to print (exit 2).
pub fn parse_age(s: &str) -> Result<TimeDelta, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not an age like 400d, 52w or 48h"))?;
    let age = match unit {
        "d" | "day" | "days" => TimeDelta::try_days(n),
        "w" | "week" | "weeks" => TimeDelta::try_weeks(n),
        "h" | "hour" | "hours" => TimeDelta::try_hours(n),
        _ => return Err(format!("{s:?} is not an age like 400d, 52w or 48h")),
    };
    if n == 0 {
        return Err("the age must be more than 0".into());
    }
    // Older than anything a database can hold is surely a typo.
    age.filter(|a| *a <= TimeDelta::days(365 * 100))
        .ok_or_else(|| format!("{s:?} is more than a hundred years; write an age like 400d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_cli_time(s).unwrap()
    }

    #[test]
    fn times() {
        for (s, want) in [
            ("2026-05-19T13:17:34", "2026-05-19T13:17:34Z"),
            ("2026-05-19T13:17:34Z", "2026-05-19T13:17:34Z"),
            ("2026-05-19T13:17:34.1234567Z", "2026-05-19T13:17:34Z"),
            ("2026-05-19T15:17:34+02:00", "2026-05-19T13:17:34Z"),
        ] {
            assert_eq!(ts(parse_time(s).unwrap()), want);
        }
        assert_eq!(parse_time("19/05/2026"), None);
    }

    #[test]
    fn cli_times() {
        assert_eq!(at("2026-11-21"), at("2026-11-21T00:00:00Z"));
        assert_eq!(at("2026-11-21T08:30"), at("2026-11-21T08:30:00Z"));
        assert_eq!(at("2026-11-21T08:30:00+01:00"), at("2026-11-21T07:30:00Z"));
        assert!(
            parse_cli_time("yesterday")
                .unwrap_err()
                .contains("2026-11-21T08:00")
        );
    }

    /// `--from`/`--to` with fractions of 1 to 7 digits (PowerShell's `Get-Date -Format o` writes 7),
    /// with `Z`, an offset or no zone, `T` or a space: the fraction is kept (the plan rounds it).
    #[test]
    fn cli_times_with_fractions() {
        let base = at("2026-11-28T12:00:00Z");
        for digits in 1..=7u32 {
            let frac = "1234567".get(..digits as usize).unwrap();
            let nanos: i64 = format!("{frac:0<9}").parse().unwrap();
            let want = base + TimeDelta::nanoseconds(nanos);
            for (text, shift) in [
                (format!("2026-11-28T12:00:00.{frac}Z"), 0),
                (format!("2026-11-28T12:00:00.{frac}"), 0),
                (format!("2026-11-28 12:00:00.{frac}"), 0),
                (format!("2026-11-28T13:00:00.{frac}+01:00"), 0),
                (format!("2026-11-28T06:30:00.{frac}-05:30"), 0),
                (format!("2026-11-28 12:00:00.{frac}Z"), 0),
                (format!("2026-11-28T12:00:00.{frac}+00:00"), 0),
                (format!("2026-11-28T12:00:01.{frac}Z"), 1),
            ] {
                assert_eq!(
                    parse_cli_time(&text),
                    Ok(want + TimeDelta::seconds(shift)),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn stored_times_round_trip() {
        let t = at("2026-11-21T08:30:00+01:00");
        assert_eq!(ts(t), "2026-11-21T07:30:00Z");
        assert_eq!(parse_stored(&ts(t)), Some(t));
        assert_eq!(parse_stored("yesterday"), None);
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("400d"), Ok(TimeDelta::days(400)));
        assert_eq!(parse_age("52w"), Ok(TimeDelta::weeks(52)));
        assert_eq!(parse_age("48hours"), Ok(TimeDelta::hours(48)));
        assert!(parse_age("0d").is_err());
        assert!(parse_age("12m").is_err());
        assert!(parse_age("99999999d").is_err());
    }
}
