//! The `[sync]` table: the window, the lists of content types and operations, and the limits.

use std::ops::RangeInclusive;

use super::layers::{FileSync, Layers, Raw};
use super::{ConfigError, Origin};

/// A unit of the sync window settings (`start_time_unit`, `time_interval_unit`), as the CoE kit's
/// StartTime-Unit and TimeInterval-Unit (coe-flows.md §1a). Written `minute`, `hour` or `day`,
/// in any case, with or without a plural `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// 60 seconds.
    Minute,
    /// 60 minutes.
    Hour,
    /// 24 hours (UTC has no daylight saving).
    Day,
}

impl TimeUnit {
    /// The unit by name (`minute`, `Hours`, ...); `None` for anything else.
    fn parse(s: &str) -> Option<TimeUnit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minute" | "minutes" => Some(TimeUnit::Minute),
            "hour" | "hours" => Some(TimeUnit::Hour),
            "day" | "days" => Some(TimeUnit::Day),
            _ => None,
        }
    }

    /// The unit's name in the singular, as messages write it after a number ("8 day").
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Minute => "minute",
            TimeUnit::Hour => "hour",
            TimeUnit::Day => "day",
        }
    }

    /// `n` of this unit as a duration.
    pub fn times(self, n: u32) -> chrono::TimeDelta {
        match self {
            TimeUnit::Minute => chrono::TimeDelta::minutes(n.into()),
            TimeUnit::Hour => chrono::TimeDelta::hours(n.into()),
            TimeUnit::Day => chrono::TimeDelta::days(n.into()),
        }
    }
}

/// The content types the Management Activity API knows, in its spelling (management-api.md §1.1).
/// Power Apps launches are in `Audit.General`.
pub const CONTENT_TYPES: [&str; 5] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];

/// Checks a content type name (trimmed, in any case) and returns it in the API's spelling, or `None`
/// when it is not one of [`CONTENT_TYPES`].
pub fn content_type(name: &str) -> Option<&'static str> {
    CONTENT_TYPES
        .iter()
        .find(|ct| ct.eq_ignore_ascii_case(name.trim()))
        .copied()
}

/// The `[sync]` table, validated. Each key can be set by `AUDITSYNC_SYNC_<KEY>` or `AUDITSYNC_<KEY>`
/// (lists comma-separated); [`SyncSettings::default`] holds the values of an unset key. The window keys
/// and their defaults are the CoE kit's StartTime-*, TimeInterval-* and TimeSegment(s)-CountLimit
/// (coe-flows.md §1a).
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How far back a sync looks, counted in `start_time_unit`: at least 1, and together at most the
    /// 7 days the API keeps content (management-api.md §2.1). Default 1.
    pub start_time_interval: u32,
    /// The unit of `start_time_interval`. Default day.
    pub start_time_unit: TimeUnit,
    /// The length of one listing request, counted in `time_interval_unit`: at least 1, and together at
    /// most the 24 hours the API allows in one request (management-api.md §2.1). Default 1.
    pub time_interval: u32,
    /// The unit of `time_interval`. Default hour.
    pub time_interval_unit: TimeUnit,
    /// The most listing requests (segments) one window may need, at least 1; a window that needs more
    /// is refused, never cut short. Default 60.
    pub segment_count_limit: u32,
    /// The content types to subscribe to and read, each once, in the API's spelling (one of
    /// [`CONTENT_TYPES`]); never empty. Default `["Audit.General"]`.
    pub content_types: Vec<String>,
    /// The record `Operation`s to keep, trimmed, compared exactly; never empty. Default
    /// `["LaunchPowerApp"]`.
    pub operations: Vec<String>,
    /// Content blobs fetched at once, 1 to 64. Default 8.
    pub concurrency: usize,
    /// The pace of API requests, shared by the whole run: 1 to 60,000 a minute. Default 1,500, under the
    /// service's baseline of 2,000 a minute per tenant (management-api.md §2.4).
    pub requests_per_minute: u32,
    /// The slowest answer accepted: a request whose answer (its headers, then each further 1 KiB of
    /// body, [`crate::net::MIN_PROGRESS`]) does not arrive within this long is given up as "too slow"
    /// and counts as a failure (retried, and seen by `same_failure_limit`). Token, listing and blob
    /// requests alike. Written like `30s` or `2m`, 1 second to 5 minutes. Default 30 s.
    pub stall_timeout: std::time::Duration,
    /// After this many requests in a row failed the same way (the same HTTP status and answer, or the
    /// same network failure), the run stops sending requests: what is left is reported as not done
    /// and the run ends incomplete. 1 to 1,000. Default 10.
    pub same_failure_limit: u32,
    /// The longest a sync may send requests, from its start: when it is reached, requests in flight
    /// are given up, nothing more is sent, and what was not done is reported (incomplete, exit 1).
    /// Keep it shorter than the interval between scheduled runs. Written like `50m` or `2h`, 1 second
    /// to 24 hours. Default 50 minutes.
    pub run_deadline: std::time::Duration,
    /// The most a blob may hold after decompression, in MiB: 1 to 4096. Default 256, far above any
    /// blob the service sends (a blob holds the records of minutes; at a few KB a record that is
    /// megabytes, tens at most), and low enough that `concurrency` blobs at once cannot exhaust a
    /// small machine's memory. A blob over it is not stored, and reported.
    pub blob_size_limit_mib: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            start_time_interval: 1,
            start_time_unit: TimeUnit::Day,
            time_interval: 1,
            time_interval_unit: TimeUnit::Hour,
            segment_count_limit: 60,
            content_types: vec!["Audit.General".to_owned()],
            operations: vec!["LaunchPowerApp".to_owned()],
            concurrency: 8,
            requests_per_minute: 1500,
            stall_timeout: std::time::Duration::from_secs(30),
            same_failure_limit: 10,
            run_deadline: std::time::Duration::from_secs(50 * 60),
            blob_size_limit_mib: 256,
        }
    }
}

/// Reads and checks the `[sync]` table in the order of its keys (the window, the lists, the limits), so
/// the first refusal reported is the first key that is wrong.
pub(super) fn sync_settings(
    layers: &Layers<'_>,
    file: FileSync,
    warnings: &mut Vec<String>,
) -> Result<SyncSettings, ConfigError> {
    let d = SyncSettings::default();
    let (start_time_interval, start_time_unit) =
        look_back(layers, file.start_time_interval, file.start_time_unit, &d)?;
    let (time_interval, time_interval_unit) =
        request_length(layers, file.time_interval, file.time_interval_unit, &d)?;
    let segment_count_limit = positive(
        "segment_count_limit",
        layers.sync("segment_count_limit", file.segment_count_limit)?,
        d.segment_count_limit,
    )?;
    let content_types = match layers.sync("content_types", file.content_types)? {
        Some(raw) => content_types(raw)?,
        None => d.content_types,
    };
    let operations = match layers.sync("operations", file.operations)? {
        Some(raw) => operations(raw, warnings)?,
        None => d.operations,
    };
    let concurrency = match layers.sync("concurrency", file.concurrency)? {
        Some(raw) => within("concurrency", raw, 1..=64, "")? as usize,
        None => d.concurrency,
    };
    let requests_per_minute = match layers.sync("requests_per_minute", file.requests_per_minute)? {
        Some(raw) => within(
            "requests_per_minute",
            raw,
            1..=60_000,
            " (the service allows about 2000 a minute per tenant)",
        )?,
        None => d.requests_per_minute,
    };
    let stall_timeout = match layers.sync("stall_timeout", file.stall_timeout)? {
        Some(raw) => duration("stall_timeout", raw, 1..=300, "")?,
        None => d.stall_timeout,
    };
    let same_failure_limit = match layers.sync("same_failure_limit", file.same_failure_limit)? {
        Some(raw) => within("same_failure_limit", raw, 1..=1000, "")?,
        None => d.same_failure_limit,
    };
    let run_deadline = match layers.sync("run_deadline", file.run_deadline)? {
        Some(raw) => duration(
            "run_deadline",
            raw,
            1..=24 * 3600,
            "; keep it shorter than the interval between scheduled runs",
        )?,
        None => d.run_deadline,
    };
    let blob_size_limit_mib = match layers.sync("blob_size_limit_mib", file.blob_size_limit_mib)? {
        Some(raw) => within(
            "blob_size_limit_mib",
            raw,
            1..=4096,
            " (the limit on one blob after decompression, in MiB)",
        )?,
        None => d.blob_size_limit_mib,
    };
    Ok(SyncSettings {
        start_time_interval,
        start_time_unit,
        time_interval,
        time_interval_unit,
        segment_count_limit,
        content_types,
        operations,
        concurrency,
        requests_per_minute,
        stall_timeout,
        same_failure_limit,
        run_deadline,
        blob_size_limit_mib,
    })
}

/// `start_time_interval` and `start_time_unit`: how far back a sync looks. At most the 7 days the API
/// keeps content (management-api.md §2.1, §2.2).
fn look_back(
    layers: &Layers<'_>,
    interval: Option<u32>,
    unit_name: Option<String>,
    d: &SyncSettings,
) -> Result<(u32, TimeUnit), ConfigError> {
    bounded_span(
        layers,
        ("start_time_interval", interval),
        ("start_time_unit", unit_name),
        (d.start_time_interval, d.start_time_unit),
        chrono::TimeDelta::days(7),
        |n, unit| {
            format!(
                "{n} {unit} reaches further back than the 7 days the API keeps content; use at most 7 day, \
                 and `auditsync import` for older exports"
            )
        },
    )
}

/// `time_interval` and `time_interval_unit`: the length of one listing request. At most the 24 hours
/// the API allows between `startTime` and `endTime` (management-api.md §2.1).
fn request_length(
    layers: &Layers<'_>,
    interval: Option<u32>,
    unit_name: Option<String>,
    d: &SyncSettings,
) -> Result<(u32, TimeUnit), ConfigError> {
    bounded_span(
        layers,
        ("time_interval", interval),
        ("time_interval_unit", unit_name),
        (d.time_interval, d.time_interval_unit),
        chrono::TimeDelta::hours(24),
        |n, unit| {
            format!(
                "{n} {unit} is longer than the 24 hours the API allows in one request; use at most 24 hour"
            )
        },
    )
}

/// A span given as a count key and a unit key, each from the environment or the file or its default;
/// longer than `max` is refused on the count key with `too_long(count, unit name)`.
fn bounded_span(
    layers: &Layers<'_>,
    (count_key, count): (&'static str, Option<u32>),
    (unit_key, unit_name): (&'static str, Option<String>),
    (default_count, default_unit): (u32, TimeUnit),
    max: chrono::TimeDelta,
    too_long: impl Fn(u32, &str) -> String,
) -> Result<(u32, TimeUnit), ConfigError> {
    let raw = layers.sync(count_key, count)?;
    let origin = raw.as_ref().map(|r| r.origin.clone());
    let count = positive(count_key, raw, default_count)?;
    let unit = unit(unit_key, layers.sync(unit_key, unit_name)?, default_unit)?;
    if unit.times(count) > max {
        return Err(ConfigError::Invalid {
            key: count_key,
            origin: origin.unwrap_or(Origin::Default),
            reason: too_long(count, unit.name()),
        });
    }
    Ok((count, unit))
}

/// A whole number of at least 1, or `default` when the key is not set.
fn positive(key: &'static str, raw: Option<Raw<u32>>, default: u32) -> Result<u32, ConfigError> {
    match raw {
        Some(Raw { value: 0, origin }) => Err(ConfigError::Invalid {
            key,
            origin,
            reason: "it must be at least 1".to_owned(),
        }),
        Some(r) => Ok(r.value),
        None => Ok(default),
    }
}

/// A [`TimeUnit`] by name, or `default` when the key is not set.
fn unit(
    key: &'static str,
    raw: Option<Raw<String>>,
    default: TimeUnit,
) -> Result<TimeUnit, ConfigError> {
    match raw {
        Some(r) => TimeUnit::parse(&r.value).ok_or_else(|| ConfigError::Invalid {
            key,
            origin: r.origin,
            reason: format!(
                "{} is not one of minute, hour, day",
                super::quoted(&r.value)
            ),
        }),
        None => Ok(default),
    }
}

/// `content_types`: not empty, each one of [`CONTENT_TYPES`] (in the API's spelling), each once.
fn content_types(r: Raw<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    if r.value.is_empty() {
        return Err(ConfigError::Invalid {
            key: "content_types",
            origin: r.origin,
            reason: "the list is empty; Power Apps launches are in \"Audit.General\"".to_owned(),
        });
    }
    let mut out: Vec<String> = Vec::new();
    for name in &r.value {
        let ct = content_type(name).ok_or_else(|| ConfigError::Invalid {
            key: "content_types",
            origin: r.origin.clone(),
            reason: format!(
                "{} is not a content type of the API; use any of {}",
                super::quoted(name),
                CONTENT_TYPES.join(", ")
            ),
        })?;
        if !out.iter().any(|c| c == ct) {
            out.push(ct.to_owned());
        }
    }
    Ok(out)
}

/// Operation names of Power Apps records the service writes, spelt as it spells them (the Management
/// Activity API compares nothing, auditsync compares `Operation` exactly): from the reference notes
/// (`LaunchPowerApp` for RecordType 256; the legacy names of RecordType 45; the CoE's `DeleteFlow`).
const KNOWN_OPERATIONS: [&str; 11] = [
    "LaunchPowerApp",
    "DeletePowerApp",
    "CreatePowerApp",
    "UpdatePowerApp",
    "PublishPowerApp",
    "MarkPowerAppAsHero",
    "MarkPowerAppAsFeatured",
    "PowerAppPermissionEdited",
    "PowerAppPermissionDeleted",
    "PromotePowerAppVersion",
    "DeleteFlow",
];

/// `operations`: the names trimmed, blank ones dropped; what is left must not be empty. Records are
/// matched on `Operation` exactly, so a known name written in another case (`LaunchPowerapp`) would
/// match nothing: it is corrected to the service's spelling, with a warning; a name auditsync does
/// not know is kept (the service has many operations), with a warning naming the nearest known one.
fn operations(r: Raw<Vec<String>>, warnings: &mut Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut ops: Vec<String> = Vec::new();
    for op in r.value.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let op = match KNOWN_OPERATIONS.iter().find(|k| k.eq_ignore_ascii_case(op)) {
            Some(known) if *known != op => {
                warnings.push(format!(
                    "operations {}: {} is read as {known:?}: the service spells operation names with \
                     this case and records are matched exactly; write \"{known}\" to silence this warning",
                    r.origin,
                    super::quoted(op)
                ));
                (*known).to_owned()
            }
            Some(_) => op.to_owned(),
            None => {
                let lower = op.to_lowercase();
                let hint = KNOWN_OPERATIONS
                    .iter()
                    .map(|k| (strsim::jaro_winkler(&lower, &k.to_lowercase()), *k))
                    .filter(|(score, _)| *score >= 0.85)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!("; did you mean \"{k}\"?"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "operations {}: {} is not an operation name auditsync knows (records are matched on \
                     Operation exactly, case included, so a misspelt name collects nothing){hint}",
                    r.origin,
                    super::quoted(op)
                ));
                op.to_owned()
            }
        };
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    if ops.is_empty() {
        return Err(ConfigError::Invalid {
            key: "operations",
            origin: r.origin,
            reason: "the list is empty; the default is [\"LaunchPowerApp\"]".to_owned(),
        });
    }
    Ok(ops)
}

/// A whole number inside `range`; `note` follows the refusal (why the bounds are what they are).
fn within(
    key: &'static str,
    raw: Raw<u32>,
    range: RangeInclusive<u32>,
    note: &str,
) -> Result<u32, ConfigError> {
    if range.contains(&raw.value) {
        return Ok(raw.value);
    }
    Err(ConfigError::Invalid {
        key,
        origin: raw.origin,
        reason: format!(
            "{} is outside {} to {}{note}",
            raw.value,
            range.start(),
            range.end()
        ),
    })
}

/// A span written as a whole number and a unit: `90s`, `50m`, `2h` (also `sec`, `min`, `hour` and
/// their plurals, a space allowed between), whose seconds lie in `range`; `note` follows a refusal of
/// the range.
fn duration(
    key: &'static str,
    raw: Raw<String>,
    range: RangeInclusive<u64>,
    note: &str,
) -> Result<std::time::Duration, ConfigError> {
    let text = raw.value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(60),
        "h" | "hour" | "hours" => Some(3600),
        _ => None,
    };
    let seconds = match (number.parse::<u64>(), scale) {
        (Ok(n), Some(scale)) => n.saturating_mul(scale),
        _ => {
            return Err(ConfigError::Invalid {
                key,
                origin: raw.origin,
                reason: format!(
                    "{} is not a duration; write a whole number and a unit, like \"30s\", \"50m\" or \"2h\"",
                    super::quoted(&raw.value)
                ),
            });
        }
    };
    if !range.contains(&seconds) {
        let show = |s: u64| match s {
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
        return Err(ConfigError::Invalid {
            key,
            origin: raw.origin,
            reason: format!(
                "{} is outside {} to {}{note}",
                super::quoted(&raw.value),
                show(*range.start()),
                show(*range.end())
            ),
        });
    }
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{load, minimal};

    fn refusal(sync: &str, env: &[(&str, &str)]) -> String {
        load(&format!("{}[sync]\n{sync}", minimal()), env)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_refusal_names_the_key_its_origin_and_the_limit() {
        let file = "in /etc/auditsync.toml is not valid";
        for (sync, want) in [
            (
                "segment_count_limit = 0\n",
                format!("segment_count_limit {file}: it must be at least 1"),
            ),
            (
                "time_interval_unit = \"fortnight\"\n",
                format!("time_interval_unit {file}: \"fortnight\" is not one of minute, hour, day"),
            ),
            (
                "start_time_interval = 8\n",
                format!(
                    "start_time_interval {file}: 8 day reaches further back than the 7 days the API keeps \
                     content; use at most 7 day, and `auditsync import` for older exports"
                ),
            ),
            (
                "time_interval = 25\n",
                format!(
                    "time_interval {file}: 25 hour is longer than the 24 hours the API allows in one \
                     request; use at most 24 hour"
                ),
            ),
            (
                "content_types = []\n",
                format!(
                    "content_types {file}: the list is empty; Power Apps launches are in \"Audit.General\""
                ),
            ),
            (
                "content_types = [\"Audit.General\", \"Audit.Foo\"]\n",
                format!(
                    "content_types {file}: \"Audit.Foo\" is not a content type of the API; use any of \
                     Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General, DLP.All"
                ),
            ),
            (
                "operations = [\" \", \"\"]\n",
                format!(
                    "operations {file}: the list is empty; the default is [\"LaunchPowerApp\"]"
                ),
            ),
            (
                "concurrency = 65\n",
                format!("concurrency {file}: 65 is outside 1 to 64"),
            ),
            (
                "requests_per_minute = 0\n",
                format!(
                    "requests_per_minute {file}: 0 is outside 1 to 60000 (the service allows about 2000 a \
                     minute per tenant)"
                ),
            ),
            (
                "stall_timeout = \"fast\"\n",
                format!(
                    "stall_timeout {file}: \"fast\" is not a duration; write a whole number and a unit, like \
                     \"30s\", \"50m\" or \"2h\""
                ),
            ),
            (
                "stall_timeout = \"10m\"\n",
                format!("stall_timeout {file}: \"10m\" is outside 1s to 5m"),
            ),
            (
                "same_failure_limit = 0\n",
                format!("same_failure_limit {file}: 0 is outside 1 to 1000"),
            ),
            (
                "run_deadline = \"0m\"\n",
                format!(
                    "run_deadline {file}: \"0m\" is outside 1s to 24h; keep it shorter than the interval \
                     between scheduled runs"
                ),
            ),
            (
                "run_deadline = \"50\"\n",
                format!(
                    "run_deadline {file}: \"50\" is not a duration; write a whole number and a unit, like \
                     \"30s\", \"50m\" or \"2h\""
                ),
            ),
            (
                "blob_size_limit_mib = 0\n",
                format!(
                    "blob_size_limit_mib {file}: 0 is outside 1 to 4096 (the limit on one blob after \
                     decompression, in MiB)"
                ),
            ),
            (
                "blob_size_limit_mib = 4097\n",
                format!(
                    "blob_size_limit_mib {file}: 4097 is outside 1 to 4096 (the limit on one blob after \
                     decompression, in MiB)"
                ),
            ),
            // The keys are checked in the table's order: the window, the lists, the limits.
            (
                "concurrency = 0\nstart_time_unit = \"week\"\n",
                format!("start_time_unit {file}: \"week\" is not one of minute, hour, day"),
            ),
        ] {
            // A value from the file is refused with its line ([sync] is line 4 of the file).
            let key = want.split(' ').next().unwrap();
            let line = 5 + sync.lines().position(|l| l.starts_with(key)).unwrap();
            let want = want.replacen("is not valid: ", &format!("is not valid: line {line}: "), 1);
            assert_eq!(refusal(sync, &[]), want, "{sync}");
        }
        assert_eq!(
            refusal("", &[("AUDITSYNC_SYNC_CONCURRENCY", "many")]),
            "concurrency from AUDITSYNC_SYNC_CONCURRENCY is not valid: \"many\" is not a whole number"
        );
        assert_eq!(
            refusal("", &[("AUDITSYNC_TIME_INTERVAL", "0")]),
            "time_interval from AUDITSYNC_TIME_INTERVAL is not valid: it must be at least 1"
        );
    }

    #[test]
    fn accepted_values_are_normalised_and_the_bounds_are_inclusive() {
        let s = load(
            &format!(
                "{}[sync]\nstart_time_interval = 7\ntime_interval = 24\n\
                 content_types = [\"audit.general\", \"Audit.General\", \" dlp.all \"]\n\
                 operations = [\" LaunchPowerApp \", \"\", \"CreateFlow\"]\n\
                 concurrency = 64\nrequests_per_minute = 60000\nblob_size_limit_mib = 4096\n",
                minimal()
            ),
            &[("AUDITSYNC_TIME_INTERVAL_UNIT", "Hours")],
        )
        .unwrap()
        .sync;
        assert_eq!(s.start_time_interval, 7);
        assert_eq!(s.time_interval, 24);
        assert_eq!(s.time_interval_unit, super::TimeUnit::Hour);
        assert_eq!(s.content_types, ["Audit.General", "DLP.All"]);
        assert_eq!(s.operations, ["LaunchPowerApp", "CreateFlow"]);
        assert_eq!(s.concurrency, 64);
        assert_eq!(s.requests_per_minute, 60_000);
        assert_eq!(s.blob_size_limit_mib, 4096);
        let s = load(
            &format!(
                "{}[sync]\nstall_timeout = \" 5 min \"\nsame_failure_limit = 1000\n",
                minimal()
            ),
            &[("AUDITSYNC_RUN_DEADLINE", "24h")],
        )
        .unwrap()
        .sync;
        assert_eq!(s.stall_timeout, std::time::Duration::from_secs(300));
        assert_eq!(s.same_failure_limit, 1000);
        assert_eq!(s.run_deadline, std::time::Duration::from_secs(24 * 3600));
        let d = load(&minimal(), &[]).unwrap().sync;
        assert_eq!(d.run_deadline, std::time::Duration::from_secs(3000));
        assert_eq!(d.stall_timeout, std::time::Duration::from_secs(30));
    }

    #[test]
    fn operation_names_in_another_case_are_corrected_and_unknown_ones_warned() {
        let s = load(
            &format!(
                "{}[sync]\noperations = [\"LaunchPowerapp\", \"launchpowerapp\", \"DeletePowerApp\"]\n",
                minimal()
            ),
            &[],
        )
        .unwrap();
        assert_eq!(s.sync.operations, ["LaunchPowerApp", "DeletePowerApp"]);
        let w = s.warnings.join("\n");
        assert!(
            w.contains("\"LaunchPowerapp\" is read as \"LaunchPowerApp\""),
            "{w}"
        );
        assert!(w.contains("/etc/auditsync.toml"), "{w}");
        let s = load(
            &format!("{}[sync]\noperations = [\"LaunchPowerApps\"]\n", minimal()),
            &[],
        )
        .unwrap();
        assert_eq!(s.sync.operations, ["LaunchPowerApps"]);
        let w = s.warnings.join("\n");
        assert!(w.contains("did you mean \"LaunchPowerApp\"?"), "{w}");
        let s = load(&minimal(), &[("AUDITSYNC_OPERATIONS", "launchPowerApp")]).unwrap();
        assert_eq!(s.sync.operations, ["LaunchPowerApp"]);
        assert!(s.warnings.join("").contains("AUDITSYNC_OPERATIONS"));
    }
}
