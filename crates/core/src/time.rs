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

/// Audit times as the Management Activity API and the audit exports write them (management-api.md
/// §2.3, §5): a date `YYYY-MM-DD`, then `T` (or `t`, or a space, as some exports and tools write it),
/// then `HH:MM:SS`; an optional fraction of any length (`.` or `,`, 0 to 9 digits kept, further digits
/// read and dropped); then an optional zone: none (UTC, the service's common form), `Z`, or an offset
/// `+01:00`, `+0100` or `+01` (a space before the zone is allowed). `2026-05-19T13:17:34`,
/// `2026-11-28 13:29:30`, `2026-05-19T13:17:34.1234567Z`, `2026-05-19T15:17:34+02:00` are all read;
/// `None` for anything else (another date order, a missing second, an impossible date or offset).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.trim().as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(5, 2)?, digits(8, 2)?)?;
    let time = chrono::NaiveTime::from_hms_opt(digits(11, 2)?, digits(14, 2)?, digits(17, 2)?)?;
    let mut at = 19;
    let mut nanos = 0u32;
    if sep(at, b".,") {
        at += 1;
        let mut n = 0;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
                n += 1;
            }
            at += 1;
        }
        nanos *= 10u32.pow(9 - n);
    }
    while sep(at, b" ") {
        at += 1;
    }
    let zone = &b[at..];
    let offset_seconds: i32 = match zone {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] => {
            let hours = digits(at + 1, 2)?;
            let minutes = match zone.len() {
                3 => 0,
                5 => digits(at + 3, 2)?,
                6 if zone[3] == b':' => digits(at + 4, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = i32::try_from(hours * 3600 + minutes * 60).ok()?;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let naive = NaiveDateTime::new(date, time) + TimeDelta::nanoseconds(i64::from(nanos));
    Some(naive.and_utc() - TimeDelta::seconds(i64::from(offset_seconds)))
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

    /// Every shape the service and the exports write: the separator, the fraction's length, the zone.
    #[test]
    fn time_shapes() {
        let exact = |s: &str| {
            parse_time(s)
                .unwrap_or_else(|| panic!("{s:?} is not read"))
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        };
        for separator in ["T", "t", " "] {
            for (fraction, nanos) in [
                ("", "000000000"),
                (".", "000000000"),
                (".5", "500000000"),
                (".12", "120000000"),
                (".123", "123000000"),
                (".1234", "123400000"),
                (".12345", "123450000"),
                (".123456", "123456000"),
                (".1234567", "123456700"),
                (".12345678", "123456780"),
                (".123456789", "123456789"),
                (".1234567891234", "123456789"),
                (",25", "250000000"),
            ] {
                for (zone, hour) in [
                    ("", "13"),
                    ("Z", "13"),
                    ("z", "13"),
                    ("+00:00", "13"),
                    ("+01:00", "12"),
                    ("+0100", "12"),
                    ("+01", "12"),
                    ("-05:30", "18"),
                    ("-0530", "18"),
                    (" +01:00", "12"),
                    (" Z", "13"),
                ] {
                    let s = format!("2026-11-28{separator}13:29:30{fraction}{zone}");
                    let minute = if zone.contains("30") { "59" } else { "29" };
                    assert_eq!(
                        exact(&s),
                        format!("2026-11-28T{hour}:{minute}:30.{nanos}Z"),
                        "{s:?}"
                    );
                }
            }
        }
        // The case, and whitespace around the text.
        assert_eq!(
            ts(parse_time("  2026-11-28 13:29:30  ").unwrap()),
            "2026-11-28T13:29:30Z"
        );
        // An offset that crosses midnight and a year.
        assert_eq!(
            ts(parse_time("2026-01-01T00:30:00+01:00").unwrap()),
            "2025-12-31T23:30:00Z"
        );
        // The stored form reads back.
        assert_eq!(
            ts(parse_time("2026-11-21T13:17:34Z").unwrap()),
            "2026-11-21T13:17:34Z"
        );
    }

    #[test]
    fn not_times() {
        for s in [
            "",
            "2026-11-28",
            "2026-11-28T13:29",
            "2026-11-28T13:29:3",
            "2026-11-28_13:29:30",
            "2026/11/28 13:29:30",
            "28-11-2026 13:29:30",
            "11/28/2026 1:29:30 PM",
            "2026-13-01T00:00:00",
            "2026-02-30T00:00:00",
            "2026-11-28T24:00:00",
            "2026-11-28T13:60:00",
            "2026-11-28T13:29:30+25:00",
            "2026-11-28T13:29:30+01:60",
            "2026-11-28T13:29:30+1",
            "2026-11-28T13:29:30+01:0",
            "2026-11-28T13:29:30+01:000",
            "2026-11-28T13:29:30 UTC",
            "2026-11-28T13:29:30Zjunk",
            "2026-11-28T13:29:30.12x",
            "2026-11-28T13:29:30..1",
            "２０２６-11-28T13:29:30",
            "yesterday",
        ] {
            assert_eq!(parse_time(s), None, "{s:?}");
        }
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
