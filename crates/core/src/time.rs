//! Times at the edges, and the one form they are stored in (a leaf: it imports no other module of the
//! crate).
//!
//! Text becomes a `chrono::DateTime<Utc>` once, where it enters: a record's `CreationTime` or a
//! listing's `contentCreated` ([`parse_time`]), `--from`/`--to` ([`parse_cli_time`]), `--older-than`
//! ([`parse_age`]), a value read back from the database ([`parse_stored`]). Everything stored or shown
//! is RFC 3339 UTC in whole seconds ([`ts`]): `2026-11-21T13:17:34Z`.
//! A record's time and `--from`/`--to` are read by one grammar (the zone and the fraction alike), the
//! command line's allowing the seconds and the time of day to be left out.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeDelta, Utc};

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
/// read and dropped); then an optional zone: none (UTC, the service's common form), `Z` (or `z`), or an
/// offset `+01:00`, `+0100` or `+01` (a space before the zone is allowed). `2026-05-19T13:17:34`,
/// `2026-11-28 13:29:30`, `2026-05-19T13:17:34.1234567Z`, `2026-05-19T15:17:34+02:00` are all read;
/// `None` for anything else (another date order, a missing second, an impossible date or offset).
/// [`parse_cli_time`] reads the same grammar, the seconds and the time of day being optional there.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    read(s, Shape::Record).ok()
}

/// Parses `--from`/`--to` (and `report --from/--to`): the grammar of [`parse_time`] (RFC 3339 and the
/// shapes the service and exports write), where the seconds and the time of day may be left out:
/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DDTHH:MM:SS.f` (a fraction of any
/// length, such as the seven digits of PowerShell's `Get-Date -Format o`); `T`, `t` or a space between
/// date and time. Each form takes an optional zone, `Z` (or `z`) or an offset `+01:00`, `+0100` or
/// `+01` (or `-`), a space before it allowed; without one the time is UTC. A bare date with a zone,
/// `2026-11-29+01:00` (as XML Schema's `xs:date` writes it), is midnight at that offset
/// (`2026-11-28T23:00:00Z`). The fraction is kept: `sync::plan::window` rounds the range outwards to the
/// whole seconds the API takes, and `report` compares against stored whole seconds.
///
/// # Errors
/// A sentence saying what is wrong with the text and naming the forms that are accepted, for clap to
/// print (exit 2).
pub fn parse_cli_time(s: &str) -> Result<DateTime<Utc>, String> {
    read(s, Shape::Cli).map_err(|why| {
        format!(
            "{s:?} is not a time: {why}; write it as 2026-11-21, 2026-11-21T08:00, 2026-11-21T08:00:00 or \
             2026-11-21T08:00:00.5, each with an optional zone (Z, +01:00, +0100 or +01; UTC when none is given)"
        )
    })
}

/// What a time must hold besides its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A record's or a listing's time: the time of day to the second.
    Record,
    /// `--from`/`--to`: the seconds, and the whole time of day, may be left out.
    Cli,
}

/// Why a text is not a time (the middle of [`parse_cli_time`]'s sentence).
mod why {
    pub const DATE: &str = "it must start with the date as YYYY-MM-DD (year, month, day)";
    pub const NO_SUCH_DATE: &str = "no such date";
    pub const CLOCK: &str =
        "the time of day must be HH:MM or HH:MM:SS after the date (24-hour clock)";
    pub const SECONDS: &str = "the seconds must be two digits, HH:MM:SS";
    pub const NO_TIME: &str = "the time of day is missing (HH:MM:SS)";
    pub const FRACTION: &str = "a fraction of a second needs the seconds before it, HH:MM:SS.f";
    pub const NO_SUCH_TIME: &str =
        "no such time of day (hours 00 to 23, minutes and seconds 00 to 59)";
    pub const OFFSET: &str =
        "an offset must be +HH:MM, +HHMM or +HH (or -), at most 23:59, and nothing after it";
    pub const ZONE: &str = "the zone must be Z or an offset such as +01:00, +0100 or +01 (not a name such as UTC or CET), and \
         nothing may follow it";
}

/// Reads a time of the grammar described at [`parse_time`] and [`parse_cli_time`].
fn read(s: &str, shape: Shape) -> Result<DateTime<Utc>, &'static str> {
    let b = s.trim().as_bytes();
    // `n` ASCII digits at `from`, as a number.
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    };
    let is = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(is(4, b"-") && is(7, b"-")) {
        return Err(why::DATE);
    }
    let (year, month, day) = (digits(0, 4), digits(5, 2), digits(8, 2));
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(why::DATE);
    };
    let year = i32::try_from(year).map_err(|_| why::DATE)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(why::NO_SUCH_DATE)?;
    // A time of day follows `T`/`t`, or a space and a digit; otherwise only a zone (or nothing) may.
    let has_clock = is(10, b"Tt") || (is(10, b" ") && is(11, b"0123456789"));
    let mut at = 10;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0u32);
    if has_clock {
        hour = digits(11, 2).ok_or(why::CLOCK)?;
        minute = (is(13, b":"))
            .then(|| digits(14, 2))
            .flatten()
            .ok_or(why::CLOCK)?;
        at = 16;
        if is(at, b":") {
            second = digits(17, 2).ok_or(why::SECONDS)?;
            at = 19;
            if is(at, b".,") {
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
        } else if shape == Shape::Record {
            return Err(why::NO_TIME);
        } else if is(at, b".,") {
            return Err(why::FRACTION);
        }
    } else if shape == Shape::Record {
        return Err(why::NO_TIME);
    }
    let time =
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or(why::NO_SUCH_TIME)?;
    while is(at, b" ") {
        at += 1;
    }
    let offset = zone(&b[at..])?;
    NaiveDateTime::new(date, time)
        .and_utc()
        .checked_sub_signed(offset)
        .ok_or(why::NO_SUCH_DATE)
}

/// A zone as [`parse_time`] reads it: nothing or `Z`/`z` (UTC), or `±HH:MM`, `±HHMM`, `±HH`; the
/// offset east of UTC.
fn zone(z: &[u8]) -> Result<TimeDelta, &'static str> {
    let two = |part: &[u8]| -> Option<i64> {
        (part.len() == 2 && part.iter().all(u8::is_ascii_digit))
            .then(|| i64::from(part[0] - b'0') * 10 + i64::from(part[1] - b'0'))
    };
    let (sign, rest) = match z {
        b"" | b"Z" | b"z" => return Ok(TimeDelta::zero()),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return Err(why::ZONE),
    };
    let (hours, minutes) = match rest.len() {
        2 => (two(rest), Some(0)),
        4 => (two(&rest[..2]), two(&rest[2..])),
        5 if rest[2] == b':' => (two(&rest[..2]), two(&rest[3..])),
        _ => return Err(why::OFFSET),
    };
    match (hours, minutes) {
        (Some(h), Some(m)) if h <= 23 && m <= 59 => Ok(TimeDelta::minutes(sign * (h * 60 + m))),
        _ => Err(why::OFFSET),
    }
}

/// `backfill`/`verify`'s `--from`/`--to`: a time, an age counted back from the run's one `now`, or
/// `now` itself. Read by [`parse_time_or_age`]; [`TimeOrAge::at`] gives the instant, so that two ages
/// of one command line are counted from the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOrAge {
    /// A time as [`parse_cli_time`] reads it.
    At(DateTime<Utc>),
    /// An age as [`parse_age`] reads it (`180d`, `26w`, `48h`).
    Ago(TimeDelta),
    /// `now`.
    Now,
}

impl TimeOrAge {
    /// The instant it stands for, ages counted back from `now`.
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeOrAge::At(t) => t,
            TimeOrAge::Ago(a) => now
                .checked_sub_signed(a)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            TimeOrAge::Now => now,
        }
    }
}

/// Parses `backfill`/`verify`'s `--from`/`--to`: a time as [`parse_cli_time`] reads it, `now`, or an
/// age as [`parse_age`] reads it (`180d`, `26w`, `48h`).
///
/// # Errors
/// A sentence naming both forms, for clap to print (exit 2).
pub fn parse_time_or_age(s: &str) -> Result<TimeOrAge, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(TimeOrAge::Now);
    }
    if let Ok(t) = read(s.trim(), Shape::Cli) {
        return Ok(TimeOrAge::At(t));
    }
    match age(s) {
        Ok(a) => Ok(TimeOrAge::Ago(a)),
        Err(why) => Err(format!(
            "{s:?} is neither a time nor an age ({why}); write a time such as 2026-06-01 or 2026-06-01T08:00Z, \
             an age such as 180d, 26w or 48h, or now"
        )),
    }
}

/// Parses `--older-than`: a whole number of days, weeks or hours, `400d`, `52w`, `48h` (also `400 d`,
/// `400 days`, `1 week`, `48 hours`, `12hrs`; units in any case), more than zero and at most a hundred
/// years.
///
/// # Errors
/// A sentence saying what is wrong, with an example of the accepted form, for clap to print (exit 2):
/// a time where an age belongs is answered with the age it stands for (counted back from now), months
/// and years with their length in days, minutes and seconds with the hour as the shortest unit.
pub fn parse_age(s: &str) -> Result<TimeDelta, String> {
    age(s).map_err(|why| {
        format!(
            "{s:?} is not an age: {why}; write a whole number of days, weeks or hours, such as 400d, 52w or 48h"
        )
    })
}

/// [`parse_age`]'s reading, the reason for a refusal as the error.
fn age(s: &str) -> Result<TimeDelta, String> {
    let t = s.trim();
    if let Ok(time) = parse_cli_time(t) {
        return Err(age_of(time, Utc::now()));
    }
    if t.starts_with('-') {
        return Err("it must be more than 0".into());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err("it must start with a number".into());
    }
    if unit.starts_with(['.', ',']) {
        return Err("it must be a whole number (write 36h for a day and a half)".into());
    }
    let hundred_years =
        || "it is more than a hundred years; nothing older can be stored".to_owned();
    let n: i64 = number.parse().map_err(|_| hundred_years())?;
    let unit = unit.trim().to_ascii_lowercase();
    let age = match unit.as_str() {
        "d" | "day" | "days" => TimeDelta::try_days(n),
        "w" | "wk" | "wks" | "week" | "weeks" => TimeDelta::try_weeks(n),
        "h" | "hr" | "hrs" | "hour" | "hours" => TimeDelta::try_hours(n),
        "" => return Err(format!("the unit is missing: {n}d, {n}w or {n}h")),
        "m" => {
            return Err(format!(
                "m could be minutes or months: write hours ({n}h) or days"
            ));
        }
        "mo" | "mon" | "mons" | "month" | "months" => {
            return Err(format!(
                "months are not taken (their length varies); {n} months are at most {}d",
                n.saturating_mul(31).min(99_999)
            ));
        }
        "y" | "yr" | "yrs" | "year" | "years" => {
            return Err(format!(
                "years are not taken (their length varies); {n} years are {}d, or {}d with leap days",
                n.saturating_mul(365).min(99_999),
                n.saturating_mul(366).min(99_999)
            ));
        }
        "min" | "mins" | "minute" | "minutes" | "s" | "sec" | "secs" | "second" | "seconds" => {
            return Err("the shortest unit is the hour".into());
        }
        _ => {
            return Err(format!(
                "{unit:?} is not a unit: d (days), w (weeks) or h (hours)"
            ));
        }
    };
    if n == 0 {
        return Err("it must be more than 0".into());
    }
    // Older than anything a database can hold is surely a typo.
    age.filter(|a| *a <= TimeDelta::days(365 * 100))
        .ok_or_else(hundred_years)
}

/// The refusal of a time given as an age: the age it stands for at `now`, in whole days rounded up so
/// that nothing created after it would be deleted.
fn age_of(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if time >= now {
        return format!(
            "it is a time, not an age, and in the future; --older-than counts back from now ({})",
            ts(now)
        );
    }
    let days = ((now - time).num_seconds() + 86_399) / 86_400;
    format!(
        "it is a time, not an age; --older-than counts back from now: {} was at most {days} days ago, and \
         --older-than {days}d deletes what was created before {}",
        ts(time),
        ts(now - TimeDelta::days(days))
    )
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

    /// `--from`/`--to` take a zone on every form they accept (`Z`, `±HH:MM`, `±HHMM`, `±HH`, lower-case
    /// `z`, a space before it), the same as a record's time: a date, a minute, a second, a fraction of
    /// any length; `T`, `t` or a space between date and time.
    #[test]
    fn cli_times_take_a_zone_on_every_form() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // The cases.
        assert_eq!(at("2026-11-29T11:00+01:00"), utc("2026-11-29T10:00:00Z"));
        assert_eq!(at("2026-11-29T15:30+0530"), utc("2026-11-29T10:00:00Z"));
        assert_eq!(at("2026-11-29T15:00+05"), utc("2026-11-29T10:00:00Z"));
        for (zone, shift_minutes) in [
            ("", 0),
            ("Z", 0),
            ("z", 0),
            (" Z", 0),
            ("+00:00", 0),
            ("-00:00", 0),
            ("+01:00", 60),
            ("+0100", 60),
            ("+01", 60),
            (" +01:00", 60),
            ("-05:30", -330),
            ("-0530", -330),
            ("-05", -300),
            ("+14:00", 840),
            ("+23:59", 23 * 60 + 59),
        ] {
            let shift = TimeDelta::minutes(shift_minutes);
            // A bare date with a zone is midnight there.
            assert_eq!(
                parse_cli_time(&format!("2026-11-29{zone}")),
                Ok(utc("2026-11-29T00:00:00Z") - shift),
                "2026-11-29{zone}"
            );
            for separator in ["T", "t", " "] {
                for (clock, nanos) in [
                    ("10:07", 0),
                    ("10:07:00", 0),
                    ("10:07:00.", 0),
                    ("10:07:00.5", 500_000_000),
                    ("10:07:00,25", 250_000_000),
                    ("10:07:00.123456", 123_456_000),
                    ("10:07:00.1234567", 123_456_700),
                    ("10:07:00.123456789", 123_456_789),
                    ("10:07:00.123456789123", 123_456_789),
                ] {
                    let s = format!("2026-11-29{separator}{clock}{zone}");
                    let want = utc("2026-11-29T10:07:00Z") + TimeDelta::nanoseconds(nanos) - shift;
                    assert_eq!(parse_cli_time(&s), Ok(want), "{s:?}");
                    // With spaces around it, as a shell variable may hold it.
                    assert_eq!(parse_cli_time(&format!(" {s} ")), Ok(want), "{s:?}");
                }
            }
        }
        // An offset that crosses midnight and a year.
        assert_eq!(at("2026-01-01+01:00"), utc("2025-12-31T23:00:00Z"));
        assert_eq!(at("2025-12-31T23:30-01"), utc("2026-01-01T00:30:00Z"));
    }

    /// What `--from`/`--to` refuse, each with a reason and the forms that are accepted.
    #[test]
    fn cli_time_refusals_say_why() {
        for (s, why) in [
            ("", "YYYY-MM-DD"),
            ("yesterday", "YYYY-MM-DD"),
            ("21/11/2026", "YYYY-MM-DD"),
            ("11/21/2026 08:00", "YYYY-MM-DD"),
            ("2026-1-5", "YYYY-MM-DD"),
            ("2026-02-30", "no such date"),
            ("2026-13-01T00:00", "no such date"),
            ("2026-11-29T24:00", "no such time"),
            ("2026-11-29T10:60", "no such time"),
            ("2026-11-29T10:00:61", "no such time"),
            ("2026-11-29T10", "HH:MM"),
            ("2026-11-29T1:00", "HH:MM"),
            ("2026-11-29T10:0", "HH:MM"),
            ("2026-11-29T10:00:0", "seconds"),
            ("2026-11-29T10:00.5", "seconds"),
            ("2026-11-29T10:00+1", "offset"),
            ("2026-11-29T10:00+01:0", "offset"),
            ("2026-11-29T10:00+01:000", "offset"),
            ("2026-11-29T10:00+24:00", "offset"),
            ("2026-11-29T10:00+01:60", "offset"),
            ("2026-11-29T10:00+01:00:00", "offset"),
            ("2026-11-29T10:00 UTC", "zone"),
            ("2026-11-29T10:00 CET", "zone"),
            ("2026-11-29T10:00Zjunk", "zone"),
            ("2026-11-29_10:00", "zone"),
            ("2026-11-29TT10:00", "HH:MM"),
        ] {
            let err = parse_cli_time(s).unwrap_err();
            assert!(err.contains(why), "{s:?}: {err}");
            assert!(
                err.contains("2026-11-21T08:00") && err.contains("+01:00"),
                "{s:?}: {err}"
            );
        }
    }

    /// A record's time needs its seconds (the service always writes them); the zone and fraction
    /// rules are the ones `--from`/`--to` follow.
    #[test]
    fn record_times_and_cli_times_agree() {
        for s in [
            "2026-11-28T13:29:30+01:00",
            "2026-11-28 13:29:30.1234567",
            "2026-11-28t13:29:30z",
            "2026-11-28T13:29:30 -0530",
            "2026-11-28T13:29:30,5+05",
        ] {
            assert_eq!(parse_time(s), parse_cli_time(s).ok(), "{s:?}");
        }
        for s in ["2026-11-28", "2026-11-28Z", "2026-11-28T13:29+01:00"] {
            assert_eq!(parse_time(s), None, "{s:?}");
            assert!(parse_cli_time(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn stored_times_round_trip() {
        let t = at("2026-11-21T08:30:00+01:00");
        assert_eq!(ts(t), "2026-11-21T07:30:00Z");
        assert_eq!(parse_stored(&ts(t)), Some(t));
        assert_eq!(parse_stored("yesterday"), None);
    }

    /// `--older-than` reads the spellings an admin writes (a space, capitals, the unit's name), and
    /// explains what it refuses: a date or time (with the age it stands for), months and years,
    /// minutes, fractions, a missing unit, zero or less.
    #[test]
    fn age_spellings_and_refusals() {
        for (s, want) in [
            ("400 d", TimeDelta::days(400)),
            ("400D", TimeDelta::days(400)),
            ("400 Days", TimeDelta::days(400)),
            ("1 day", TimeDelta::days(1)),
            (" 52 weeks ", TimeDelta::weeks(52)),
            ("1W", TimeDelta::weeks(1)),
            ("48 H", TimeDelta::hours(48)),
            ("12hrs", TimeDelta::hours(12)),
            ("1 hour", TimeDelta::hours(1)),
        ] {
            assert_eq!(parse_age(s), Ok(want), "{s:?}");
        }
        for (s, why) in [
            ("12m", "minutes or months"),
            ("6 months", "186d"),
            ("6mo", "186d"),
            ("2y", "730d"),
            ("1 year", "365d"),
            ("30min", "shortest unit is the hour"),
            ("90s", "shortest unit is the hour"),
            ("1.5d", "whole number"),
            ("400", "unit is missing"),
            ("d", "start with a number"),
            ("soon", "start with a number"),
            ("-5d", "more than 0"),
            ("0h", "more than 0"),
            ("400x", "\"x\" is not a unit"),
            ("99999999999999d", "hundred years"),
            ("36501d", "hundred years"),
        ] {
            let err = parse_age(s).unwrap_err();
            assert!(err.contains(why), "{s:?}: {err}");
            assert!(err.contains("400d"), "{s:?}: {err}");
        }
        // A time where an age belongs: the age it stands for, counted back from now.
        let ago = Utc::now() - TimeDelta::days(30) - TimeDelta::hours(5);
        for s in [ago.format("%Y-%m-%d").to_string(), ago.to_rfc3339()] {
            let err = parse_age(&s).unwrap_err();
            // Whole days, rounded up: that age deletes nothing created after the time given.
            let days = ((Utc::now() - at(&s)).num_seconds() + 86_399) / 86_400;
            assert!(err.contains("a time, not an age"), "{s:?}: {err}");
            assert!(
                err.contains(&format!(
                    "--older-than {days}d deletes what was created before"
                )),
                "{s:?}: {err}"
            );
        }
        let later = (Utc::now() + TimeDelta::days(3))
            .format("%Y-%m-%d")
            .to_string();
        assert!(parse_age(&later).unwrap_err().contains("in the future"));
    }

    #[test]
    fn times_or_ages() {
        let now = parse_stored("2026-11-30T12:00:00Z").unwrap();
        let at = |s: &str| parse_time_or_age(s).map(|t| t.at(now));
        assert_eq!(at("180d"), Ok(now - TimeDelta::days(180)));
        assert_eq!(at("48h"), Ok(now - TimeDelta::hours(48)));
        assert_eq!(parse_time_or_age("NOW"), Ok(TimeOrAge::Now));
        assert_eq!(
            at("2026-06-01"),
            Ok(parse_stored("2026-06-01T00:00:00Z").unwrap())
        );
        assert_eq!(
            at("2026-06-01T08:00+02:00"),
            Ok(parse_stored("2026-06-01T06:00:00Z").unwrap())
        );
        let e = parse_time_or_age("yesterday").unwrap_err();
        assert!(e.contains("180d") && e.contains("2026-06-01"), "{e}");
        assert!(
            parse_time_or_age("6m")
                .unwrap_err()
                .contains("minutes or months")
        );
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
