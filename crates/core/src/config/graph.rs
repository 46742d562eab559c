//! The `[graph]` table: the Microsoft Graph audit log query API (graph-audit-api.md), the second source
//! that reaches back past the Management Activity API's 7 days (`backfill`, `verify`). Its host per
//! cloud, the API version, the window a query covers, how many queries run at once and how many a day
//! are submitted, and the pace of polling and paging.
//!
//! The API exists only in Microsoft's global service (graph-audit-api.md, "Clouds"): [`graph_root`]
//! refuses `gcc-high` and `dod` whatever `endpoint` says, and `gcc` is allowed with
//! [`GRAPH_GCC_WARNING`].

use std::ops::RangeInclusive;
use std::time::Duration;

use url::Url;

use super::cloud::Cloud;
use super::layers::{FileGraph, Layers, Raw};
use super::{ConfigError, Origin};
use crate::net::check_transport;

/// What the caller logs (at warn level) before it uses the Graph API in a `gcc` tenant: the API is
/// documented for the global service only, and whether it answers for GCC (moderate) tenants, which
/// use the global Graph host, is not confirmed (graph-audit-api.md, "Clouds").
pub const GRAPH_GCC_WARNING: &str = "cloud = \"gcc\": Microsoft documents the Graph audit log query API \
     for its global service only and does not confirm it for GCC tenants; if backfill or verify fail with \
     \"Resource not found for the segment 'auditLog'\", load older launches from a Purview audit search \
     CSV export with `auditsync import` instead";

/// The Graph API version in the request path (the `version` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphVersion {
    /// `v1.0`, the default: since 2026-09 it reports a query's record cap (`recordCountLimit`,
    /// `approximateReturnedRecordCount`, `isRecordCountLimitExceeded`).
    V1,
    /// `beta`, the fallback some tenants still need (graph-audit-api.md, "The three calls").
    Beta,
}

impl GraphVersion {
    /// The path segment: `v1.0` or `beta`.
    pub fn as_str(self) -> &'static str {
        match self {
            GraphVersion::V1 => "v1.0",
            GraphVersion::Beta => "beta",
        }
    }
}

/// The `[graph]` table, validated. Each key can be set by `AUDITSYNC_GRAPH_<KEY>`;
/// [`GraphSettings::default`] holds the values of an unset key (with the commercial endpoint).
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Whether `backfill` and `verify` may use the Graph API (`enabled`, default true). When false,
    /// [`Settings::graph_endpoint`](super::Settings::graph_endpoint) refuses with
    /// [`ConfigError::GraphDisabled`].
    pub enabled: bool,
    /// Where `enabled` came from, for that refusal.
    pub enabled_from: Origin,
    /// The API version (`version`: `"v1.0"` or `"beta"`, default v1.0).
    pub version: GraphVersion,
    /// The Graph root, also the Graph token's resource (`endpoint`: https, or http to loopback only; no
    /// path of the API's own, no query). Default per cloud: `https://graph.microsoft.com` for
    /// commercial and gcc; none for gcc-high and dod, where the API does not exist.
    pub endpoint: Option<Url>,
    /// The span one query covers (`window`, default `1d`; `30m`, `6h`, `1d` ...; at least
    /// `min_window`, at most 7 days). Windows are aligned to multiples of it since the Unix epoch.
    pub window: chrono::TimeDelta,
    /// The smallest window a query whose records exceed the service's cap is split down to
    /// (`min_window`, default `15m`; at least 1 minute, at most `window`).
    pub min_window: chrono::TimeDelta,
    /// Queries created and not yet read at once (`in_flight`, 1 to 50, default 5; the service allows
    /// at least 50 queued or running per tenant, and about 10 running is what tools see).
    pub in_flight: u32,
    /// Query submissions one run may make in a rolling 24 hours, counted with the runs before it
    /// (`daily_submissions`, 1 to 1000, default 190: a 180-day backfill in 1-day windows, 180
    /// queries, fits in the first day, and 10 of the at least 200 a tenant gets (graph-audit-api.md,
    /// "Limits") are left to other apps; lower it when other tools query the same tenant).
    pub daily_submissions: u32,
    /// How often a query's status is asked for (`poll_interval`, default `30s`; `500ms`, `5s`, `1m`
    /// ...; 100 ms to 10 minutes).
    pub poll_interval: Duration,
    /// How long one run waits for a query to succeed before leaving it to the next run
    /// (`query_timeout`, default `2h`; 1 minute to 24 hours).
    pub query_timeout: Duration,
    /// Records asked for per page, sent as `$top` (`page_size`, 1 to 1000, default 1000).
    pub page_size: u32,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            enabled: true,
            enabled_from: Origin::Default,
            version: GraphVersion::V1,
            endpoint: Url::parse(GLOBAL_GRAPH).ok(),
            window: chrono::TimeDelta::days(1),
            min_window: chrono::TimeDelta::minutes(15),
            in_flight: 5,
            daily_submissions: 190,
            poll_interval: Duration::from_secs(30),
            query_timeout: Duration::from_secs(2 * 3600),
            page_size: 1000,
        }
    }
}

/// The Graph host of Microsoft's global service (commercial and GCC tenants alike).
const GLOBAL_GRAPH: &str = "https://graph.microsoft.com";

/// The Graph root for `cloud`, or why there is none: the clouds where the audit log query API does
/// not exist. An explicit `endpoint` does not change this (the API is not there, whatever host).
pub(super) fn graph_root(cloud: Cloud, settings: &GraphSettings) -> Result<Url, ConfigError> {
    if matches!(cloud, Cloud::GccHigh | Cloud::Dod) {
        return Err(ConfigError::GraphUnavailable {
            cloud: cloud.name(),
        });
    }
    if !settings.enabled {
        return Err(ConfigError::GraphDisabled {
            origin: settings.enabled_from.clone(),
        });
    }
    settings
        .endpoint
        .clone()
        .ok_or(ConfigError::GraphUnavailable {
            cloud: cloud.name(),
        })
}

/// Reads and checks the `[graph]` table in the order of its keys, so the first refusal reported is
/// the first key that is wrong.
pub(super) fn graph_settings(
    layers: &Layers<'_>,
    file: FileGraph,
    cloud: Cloud,
    management: &Url,
) -> Result<GraphSettings, ConfigError> {
    let d = GraphSettings::default();
    let (enabled, enabled_from) = match layers.graph("enabled", file.enabled)? {
        Some(r) => (r.value, r.origin),
        None => (true, Origin::Default),
    };
    let version = match layers.graph("version", file.version)? {
        Some(r) => match r.value.trim().to_ascii_lowercase().as_str() {
            "v1.0" | "v1" | "1.0" => GraphVersion::V1,
            "beta" => GraphVersion::Beta,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "version",
                    origin: r.origin,
                    reason: format!(
                        "{} is not a Graph API version; write \"v1.0\" (the default) or \"beta\"",
                        super::quoted(&r.value)
                    ),
                });
            }
        },
        None => d.version,
    };
    let endpoint = match layers.graph("endpoint", file.endpoint)? {
        Some(r) => Some(graph_endpoint_value(r, management)?),
        None => match cloud {
            Cloud::Commercial | Cloud::Gcc => d.endpoint,
            Cloud::GccHigh | Cloud::Dod => None,
        },
    };
    let window = match layers.graph("window", file.window)? {
        Some(r) => span("window", r, 60_000..=7 * DAY_MS, false)?,
        None => d.window.to_std().unwrap_or_default(),
    };
    let min_raw = layers.graph("min_window", file.min_window)?;
    let min_origin = min_raw.as_ref().map(|r| r.origin.clone());
    let min_window = match min_raw {
        Some(r) => span("min_window", r, 60_000..=7 * DAY_MS, false)?,
        None => d.min_window.to_std().unwrap_or_default(),
    };
    if min_window > window {
        return Err(ConfigError::Invalid {
            key: "min_window",
            origin: min_origin.unwrap_or(Origin::Default),
            reason: format!(
                "{} is longer than window ({}); min_window is the smallest piece a window is split into \
                 when a query holds more records than the service returns: make it at most window",
                words(min_window),
                words(window)
            ),
        });
    }
    let in_flight = number(
        "in_flight",
        layers.graph("in_flight", file.in_flight)?,
        1..=50,
        " (the service queues at least 50 queries per tenant, for all apps together)",
        d.in_flight,
    )?;
    let daily_submissions = number(
        "daily_submissions",
        layers.graph("daily_submissions", file.daily_submissions)?,
        1..=1000,
        " (a tenant may submit at least 200 queries in 24 hours, for all apps together)",
        d.daily_submissions,
    )?;
    let poll_interval = match layers.graph("poll_interval", file.poll_interval)? {
        Some(r) => span("poll_interval", r, 100..=600_000, true)?,
        None => d.poll_interval,
    };
    let query_timeout = match layers.graph("query_timeout", file.query_timeout)? {
        Some(r) => span("query_timeout", r, 60_000..=DAY_MS, false)?,
        None => d.query_timeout,
    };
    let page_size = number(
        "page_size",
        layers.graph("page_size", file.page_size)?,
        1..=1000,
        " (records per page, sent as $top)",
        d.page_size,
    )?;
    Ok(GraphSettings {
        enabled,
        enabled_from,
        version,
        endpoint,
        window: delta(window),
        min_window: delta(min_window),
        in_flight,
        daily_submissions,
        poll_interval,
        query_timeout,
        page_size,
    })
}

/// A day in milliseconds.
const DAY_MS: u64 = 24 * 3600 * 1000;

fn delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// `endpoint`: a URL (https, or http to loopback), the Graph root only: no query, no path the client
/// adds itself (`/v1.0`, `/beta`, `/security/...`), and not the Management Activity API's host (the
/// token would be for the wrong resource: "Resource not found for the segment 'activity'").
fn graph_endpoint_value(raw: Raw<String>, management: &Url) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "endpoint",
        origin: raw.origin.clone(),
        reason,
    };
    let trimmed = raw.value.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        invalid(format!(
            "{} is not a URL ({e}); write it like {GLOBAL_GRAPH}",
            super::quoted(trimmed)
        ))
    })?;
    // A user name or password in the URL would be sent on as part of the token's resource: refused,
    // and not repeated (it may be a credential).
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "it holds a user name or password before the host (not shown); Microsoft Graph takes none \
             there: write endpoint = \"{GLOBAL_GRAPH}\" or remove the key"
        )));
    }
    check_transport(&url).map_err(|e| invalid(e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{} has a query or fragment; give only scheme, host and optional path, like {GLOBAL_GRAPH}",
            super::quoted(trimmed)
        )));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    if let Some(at) = segments.iter().position(|p| {
        matches!(
            p.to_ascii_lowercase().as_str(),
            "v1.0" | "beta" | "security" | "auditlog" | "api" | "activity" | "feed" | ".default"
        )
    }) {
        let mut keep = url.origin().ascii_serialization();
        for p in &segments[..at] {
            keep.push('/');
            keep.push_str(p);
        }
        return Err(invalid(format!(
            "{} ends with a path auditsync adds itself (/{}); endpoint is only the Graph root, which is also \
             the Graph token's resource: write endpoint = \"{keep}\" (auditsync adds \
             /<version>/security/auditLog/queries itself)",
            super::quoted(trimmed),
            segments[at..].join("/")
        )));
    }
    let management_hosts = [Cloud::Commercial, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod].map(|c| {
        Url::parse(c.audience())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    });
    let host = url.host_str().map(str::to_owned);
    let same_as_audience =
        url.as_str().trim_end_matches('/') == management.as_str().trim_end_matches('/');
    if (management_hosts.contains(&host) && host.is_some()) || same_as_audience {
        return Err(invalid(format!(
            "{} is the Office 365 Management Activity API's host (like `audience` {}), not Microsoft \
             Graph's: the Graph token would be for the wrong resource and every call answers \"Resource not \
             found for the segment 'activity'\"; write endpoint = \"{GLOBAL_GRAPH}\" or remove the key",
            super::quoted(trimmed),
            management.as_str().trim_end_matches('/')
        )));
    }
    Ok(url)
}

/// A whole number inside `range`, or `default` when the key is not set.
fn number(
    key: &'static str,
    raw: Option<Raw<u32>>,
    range: RangeInclusive<u32>,
    note: &str,
    default: u32,
) -> Result<u32, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
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

/// A span written as a whole number and a unit: `500ms` (only where `millis`), `30s`, `15m`, `6h`,
/// `1d` (also `sec`, `min`, `hour`, `day` and their plurals, a space allowed between), whose
/// milliseconds lie in `range`.
fn span(
    key: &'static str,
    raw: Raw<String>,
    range: RangeInclusive<u64>,
    millis: bool,
) -> Result<Duration, ConfigError> {
    let text = raw.value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: Option<u64> = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" if millis => Some(1),
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1000),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(60_000),
        "h" | "hour" | "hours" => Some(3_600_000),
        "d" | "day" | "days" => Some(DAY_MS),
        _ => None,
    };
    let forms = if millis {
        "\"500ms\", \"5s\" or \"1m\""
    } else {
        "\"30m\", \"6h\" or \"1d\""
    };
    let ms = match (digits.parse::<u64>(), scale) {
        (Ok(n), Some(scale)) => n.saturating_mul(scale),
        _ => {
            return Err(ConfigError::Invalid {
                key,
                origin: raw.origin,
                reason: format!(
                    "{} is not a duration; write a whole number and a unit, like {forms}",
                    super::quoted(&raw.value)
                ),
            });
        }
    };
    if !range.contains(&ms) {
        return Err(ConfigError::Invalid {
            key,
            origin: raw.origin,
            reason: format!(
                "{} is outside {} to {}",
                super::quoted(&raw.value),
                words(Duration::from_millis(*range.start())),
                words(Duration::from_millis(*range.end()))
            ),
        });
    }
    Ok(Duration::from_millis(ms))
}

/// A span as the keys write it: `1d`, `6h`, `15m`, `30s`, `500ms`.
fn words(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        ms if ms >= 86_400_000 && ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms >= 3_600_000 && ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms >= 1000 && ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{GRAPH_GCC_WARNING, GraphVersion};
    use crate::config::ConfigError;
    use crate::config::testing::{load, minimal};

    fn graph(table: &str, env: &[(&str, &str)]) -> Result<crate::config::Settings, ConfigError> {
        load(&format!("{}[graph]\n{table}", minimal()), env)
    }

    fn refusal(table: &str, env: &[(&str, &str)]) -> String {
        graph(table, env).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let g = load(&minimal(), &[]).unwrap().graph;
        assert!(g.enabled);
        assert_eq!(g.version, GraphVersion::V1);
        assert_eq!(g.version.as_str(), "v1.0");
        assert_eq!(g.endpoint.unwrap().as_str(), "https://graph.microsoft.com/");
        assert_eq!(g.window, chrono::TimeDelta::days(1));
        assert_eq!(g.min_window, chrono::TimeDelta::minutes(15));
        assert_eq!(g.in_flight, 5);
        assert_eq!(g.daily_submissions, 190);
        assert_eq!(g.poll_interval, Duration::from_secs(30));
        assert_eq!(g.query_timeout, Duration::from_secs(7200));
        assert_eq!(g.page_size, 1000);
    }

    #[test]
    fn every_key_is_read_from_the_file_and_from_its_variable() {
        let g = graph(
            "enabled = true\nversion = \"beta\"\nendpoint = \"http://127.0.0.1:8080/graph/\"\nwindow = \"6h\"\n\
             min_window = \"1m\"\nin_flight = 50\ndaily_submissions = 1000\npoll_interval = \"500ms\"\n\
             query_timeout = \"24h\"\npage_size = 1\n",
            &[],
        )
        .unwrap()
        .graph;
        assert_eq!(g.version, GraphVersion::Beta);
        assert_eq!(g.endpoint.unwrap().as_str(), "http://127.0.0.1:8080/graph");
        assert_eq!(g.window, chrono::TimeDelta::hours(6));
        assert_eq!(g.min_window, chrono::TimeDelta::minutes(1));
        assert_eq!(
            (g.in_flight, g.daily_submissions, g.page_size),
            (50, 1000, 1)
        );
        assert_eq!(g.poll_interval, Duration::from_millis(500));
        assert_eq!(g.query_timeout, Duration::from_secs(24 * 3600));
        // The environment wins over the file, key by key.
        let s = graph(
            "window = \"6h\"\nin_flight = 2\n",
            &[
                ("AUDITSYNC_GRAPH_ENABLED", "false"),
                ("AUDITSYNC_GRAPH_VERSION", "BETA"),
                ("AUDITSYNC_GRAPH_ENDPOINT", "https://graph.example.com"),
                ("AUDITSYNC_GRAPH_WINDOW", "7d"),
                ("AUDITSYNC_GRAPH_MIN_WINDOW", "30m"),
                ("AUDITSYNC_GRAPH_IN_FLIGHT", "3"),
                ("AUDITSYNC_GRAPH_DAILY_SUBMISSIONS", "20"),
                ("AUDITSYNC_GRAPH_POLL_INTERVAL", "1m"),
                ("AUDITSYNC_GRAPH_QUERY_TIMEOUT", "90m"),
                ("AUDITSYNC_GRAPH_PAGE_SIZE", "250"),
            ],
        )
        .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let g = s.graph;
        assert!(!g.enabled);
        assert_eq!(g.version, GraphVersion::Beta);
        assert_eq!(g.endpoint.unwrap().host_str(), Some("graph.example.com"));
        assert_eq!(g.window, chrono::TimeDelta::days(7));
        assert_eq!(g.min_window, chrono::TimeDelta::minutes(30));
        assert_eq!(
            (g.in_flight, g.daily_submissions, g.page_size),
            (3, 20, 250)
        );
        assert_eq!(g.poll_interval, Duration::from_secs(60));
        assert_eq!(g.query_timeout, Duration::from_secs(90 * 60));
    }

    #[test]
    fn each_refusal_names_the_key_its_line_and_the_fix() {
        let file = "in /etc/auditsync.toml is not valid: line 5:";
        for (table, want) in [
            (
                "version = \"v2\"\n",
                "version {file} \"v2\" is not a Graph API version; write \"v1.0\"",
            ),
            (
                "endpoint = \"http://graph.microsoft.com\"\n",
                "uses plain http, which auditsync allows only to loopback addresses (127.0.0.1, ::1, localhost); use https://",
            ),
            (
                "endpoint = \"https://graph.microsoft.com/v1.0/security/auditLog/queries\"\n",
                "write endpoint = \"https://graph.microsoft.com\"",
            ),
            (
                "endpoint = \"https://manage.office.com\"\n",
                "Management Activity API's host",
            ),
            (
                "endpoint = \"graph\"\n",
                "endpoint {file} \"graph\" is not a URL",
            ),
            (
                "endpoint = \"https://admin:hunter2@graph.microsoft.com\"\n",
                "user name or password before the host (not shown)",
            ),
            (
                "window = \"0m\"\n",
                "window {file} \"0m\" is outside 1m to 7d",
            ),
            (
                "window = \"8d\"\n",
                "window {file} \"8d\" is outside 1m to 7d",
            ),
            (
                "window = \"500ms\"\n",
                "window {file} \"500ms\" is not a duration; write a whole number and a unit, like \"30m\", \"6h\" or \"1d\"",
            ),
            (
                "min_window = \"30s\"\n",
                "min_window {file} \"30s\" is outside 1m to 7d",
            ),
            (
                "min_window = \"2d\"\n",
                "min_window {file} 2d is longer than window (1d)",
            ),
            ("in_flight = 0\n", "in_flight {file} 0 is outside 1 to 50"),
            ("in_flight = 51\n", "in_flight {file} 51 is outside 1 to 50"),
            (
                "daily_submissions = 1001\n",
                "daily_submissions {file} 1001 is outside 1 to 1000",
            ),
            (
                "poll_interval = \"50ms\"\n",
                "poll_interval {file} \"50ms\" is outside 100ms to 10m",
            ),
            (
                "poll_interval = \"soon\"\n",
                "poll_interval {file} \"soon\" is not a duration",
            ),
            (
                "query_timeout = \"25h\"\n",
                "query_timeout {file} \"25h\" is outside 1m to 1d",
            ),
            (
                "page_size = 1001\n",
                "page_size {file} 1001 is outside 1 to 1000 (records per page, sent as $top)",
            ),
        ] {
            let want = want.replace("{file}", file);
            let err = refusal(table, &[]);
            assert!(err.contains(&want), "{table}: {err}\nwant: {want}");
        }
        assert_eq!(
            refusal("", &[("AUDITSYNC_GRAPH_ENABLED", "maybe")]),
            "enabled from AUDITSYNC_GRAPH_ENABLED is not valid: \"maybe\" is not true or false"
        );
        assert_eq!(
            refusal("", &[("AUDITSYNC_GRAPH_IN_FLIGHT", "0")]),
            "in_flight from AUDITSYNC_GRAPH_IN_FLIGHT is not valid: 0 is outside 1 to 50 (the service \
             queues at least 50 queries per tenant, for all apps together)"
        );
    }

    #[test]
    fn gcc_high_and_dod_are_refused_whatever_the_endpoint_and_gcc_is_warned() {
        for cloud in ["gcc-high", "dod"] {
            for table in [
                "",
                "endpoint = \"https://graph.microsoft.com\"\n",
                "endpoint = \"https://graph.microsoft.us\"\n",
            ] {
                let s = load(
                    &format!("{}cloud = \"{cloud}\"\n[graph]\n{table}", minimal()),
                    &[],
                )
                .unwrap();
                let e = s.graph_endpoint().unwrap_err();
                assert!(matches!(e, ConfigError::GraphUnavailable { .. }), "{e:?}");
                assert_eq!(e.exit_code(), 2);
                let text = e.to_string();
                for needle in [
                    cloud,
                    "only in Microsoft's global service",
                    "Microsoft support confirmed",
                    "Purview",
                    "CSV",
                    "auditsync import",
                ] {
                    assert!(text.contains(needle), "{needle}: {text}");
                }
            }
        }
        let s = load(&format!("{}cloud = \"gcc\"\n", minimal()), &[]).unwrap();
        assert_eq!(
            s.graph_endpoint().unwrap().host_str(),
            Some("graph.microsoft.com")
        );
        assert!(
            GRAPH_GCC_WARNING.contains("gcc") && GRAPH_GCC_WARNING.contains("auditsync import")
        );
        let s = load(&minimal(), &[]).unwrap();
        assert_eq!(
            s.graph_endpoint().unwrap().as_str(),
            "https://graph.microsoft.com/"
        );
    }

    #[test]
    fn a_disabled_graph_is_refused_naming_the_key_and_where_it_was_set() {
        let e = graph("enabled = false\n", &[])
            .unwrap()
            .graph_endpoint()
            .unwrap_err();
        assert!(matches!(e, ConfigError::GraphDisabled { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("[graph] enabled = false in /etc/auditsync.toml")
                && text.contains("enabled = true"),
            "{text}"
        );
        let e = load(&minimal(), &[("AUDITSYNC_GRAPH_ENABLED", "no")])
            .unwrap()
            .graph_endpoint()
            .unwrap_err()
            .to_string();
        assert!(e.contains("from AUDITSYNC_GRAPH_ENABLED"), "{e}");
    }

    #[test]
    fn graph_keys_are_known_to_the_explanations() {
        let says = |text: String, needles: &[&str]| {
            let err = load(&text, &[]).unwrap_err().to_string();
            for n in needles {
                assert!(err.contains(n), "{n:?} not in {err}");
            }
        };
        says(
            format!("{}[graph]\nwindw = \"1d\"\n", minimal()),
            &["line 5", "did you mean window?"],
        );
        says(
            format!("{}in_flight = 3\n", minimal()),
            &["in_flight belongs in the [graph] table"],
        );
        says(
            format!("{}[sync]\npage_size = 3\n", minimal()),
            &["page_size belongs in the [graph] table but is in the [sync] table"],
        );
        says(
            format!("{}[graph]\nconcurrency = 3\n", minimal()),
            &["concurrency belongs in the [sync] table"],
        );
        says(
            format!("{}[graph]\ntenant_id = \"x\"\n", minimal()),
            &["top-level key", "above the [graph] line"],
        );
        says(
            format!("{}[grahp]\n", minimal()),
            &["did you mean [graph]?"],
        );
        says(
            format!("{}[graph]\nenabled = \"yes\"\n", minimal()),
            &["enabled is true or false", "enabled = true"],
        );
        says(
            format!("{}[graph]\nin_flight = \"5\"\n", minimal()),
            &["in_flight is a whole number"],
        );
        says(
            format!("{}[[graph]]\n", minimal()),
            &["[[graph]]", "single brackets"],
        );
        says(
            format!("{}[graph.x]\n", minimal()),
            &["[graph] has no tables inside it"],
        );
        says(format!("{}graph = 1\n", minimal()), &["graph is a table"]);
        let s = load(&minimal(), &[("AUDITSYNC_GRAPH_WINDOWS", "1d")]).unwrap();
        assert!(
            s.warnings
                .join("\n")
                .contains("did you mean AUDITSYNC_GRAPH_WINDOW?"),
            "{:?}",
            s.warnings
        );
    }
}
