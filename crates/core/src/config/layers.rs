//! Where a setting comes from: the file's place, the keys the file may hold, and the `AUDITSYNC_*`
//! environment variables that override them (the environment first, then the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::explain::{nearest, parse_error};
use super::{ConfigError, Origin};

/// The environment as auditsync sees it: a snapshot of the `AUDITSYNC_*` variables and the two that
/// name the home folders (`HOME`, `XDG_CONFIG_HOME`), so that tests can hand in their own. An empty
/// variable counts as unset.
#[derive(Debug, Default, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment (only the variables auditsync reads; one that is not UTF-8 is skipped).
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("AUDITSYNC_") || k == "HOME" || k == "XDG_CONFIG_HOME")
            .collect();
        Env { vars }
    }

    /// An environment of these (name, value) pairs only, for tests and for the commands that configure
    /// auditsync themselves (`demo`).
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The variable's value; `None` when it is unset or empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Environment variables auditsync reads besides the per-key overrides.
const OTHER_VARS: [&str; 2] = ["AUDITSYNC_CONFIG", "AUDITSYNC_LOG"];

/// The keys the file may hold, as written; any other key is refused by name.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) tenant_id: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<SecretString>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_secret_command: Option<String>,
    /// Any TOML value: validated (and refused by name) in `secret`.
    pub(super) client_secret_command_timeout: Option<toml::Value>,
    pub(super) cloud: Option<String>,
    pub(super) authority: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) token_version: Option<String>,
    pub(super) publisher_identifier: Option<String>,
    pub(super) database: Option<PathBuf>,
    #[serde(default)]
    pub(super) sync: FileSync,
    #[serde(default)]
    pub(super) graph: FileGraph,
}

/// The keys the file's `[graph]` table may hold, as written; any other key is refused by name.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileGraph {
    pub(super) enabled: Option<bool>,
    pub(super) version: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) window: Option<String>,
    pub(super) min_window: Option<String>,
    pub(super) in_flight: Option<u32>,
    pub(super) daily_submissions: Option<u32>,
    pub(super) poll_interval: Option<String>,
    pub(super) query_timeout: Option<String>,
    pub(super) page_size: Option<u32>,
}

/// The keys the file's `[sync]` table may hold, as written; any other key is refused by name.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSync {
    pub(super) start_time_interval: Option<u32>,
    pub(super) start_time_unit: Option<String>,
    pub(super) time_interval: Option<u32>,
    pub(super) time_interval_unit: Option<String>,
    pub(super) segment_count_limit: Option<u32>,
    pub(super) content_types: Option<Vec<String>>,
    pub(super) operations: Option<Vec<String>>,
    pub(super) concurrency: Option<u32>,
    pub(super) requests_per_minute: Option<u32>,
    pub(super) stall_timeout: Option<String>,
    pub(super) same_failure_limit: Option<u32>,
    pub(super) run_deadline: Option<String>,
    pub(super) blob_size_limit_mib: Option<u32>,
}

/// Top-level keys, each overridable by `AUDITSYNC_<KEY>`.
pub(super) const TOP_KEYS: [&str; 12] = [
    "tenant_id",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_command",
    "client_secret_command_timeout",
    "cloud",
    "authority",
    "audience",
    "token_version",
    "publisher_identifier",
    "database",
];
/// `[sync]` keys, each overridable by `AUDITSYNC_SYNC_<KEY>` or `AUDITSYNC_<KEY>`.
pub(super) const SYNC_KEYS: [&str; 13] = [
    "start_time_interval",
    "start_time_unit",
    "time_interval",
    "time_interval_unit",
    "segment_count_limit",
    "content_types",
    "operations",
    "concurrency",
    "requests_per_minute",
    "stall_timeout",
    "same_failure_limit",
    "run_deadline",
    "blob_size_limit_mib",
];

/// `[graph]` keys, each overridable by `AUDITSYNC_GRAPH_<KEY>` (only: `AUDITSYNC_ENABLED` or
/// `AUDITSYNC_WINDOW` would not say what they are about).
pub(super) const GRAPH_KEYS: [&str; 10] = [
    "enabled",
    "version",
    "endpoint",
    "window",
    "min_window",
    "in_flight",
    "daily_submissions",
    "poll_interval",
    "query_timeout",
    "page_size",
];

/// The variable that overrides a key: `AUDITSYNC_<KEY>`.
pub(super) fn env_name(key: &str) -> String {
    format!("AUDITSYNC_{}", key.to_ascii_uppercase())
}

/// A raw value and where it came from.
pub(super) struct Raw<T> {
    pub(super) value: T,
    pub(super) origin: Origin,
}

/// Looks up one key: the environment first, then the file.
pub(super) struct Layers<'a> {
    pub(super) env: &'a Env,
    pub(super) file_origin: Origin,
}

impl<'a> Layers<'a> {
    /// The layers over `env` and the file at `file` (values from the file point at it in messages).
    pub(super) fn new(env: &'a Env, file: Option<&Path>) -> Layers<'a> {
        let file_origin = match file {
            Some(p) => Origin::File(p.to_owned()),
            None => Origin::Default,
        };
        Layers { env, file_origin }
    }

    /// A top-level key: `AUDITSYNC_<KEY>`, else the file's value.
    pub(super) fn top(&self, key: &str, file: Option<String>) -> Option<Raw<String>> {
        let name = env_name(key);
        if let Some(v) = self.env.get(&name) {
            return Some(Raw {
                value: v.to_owned(),
                origin: Origin::Env(name),
            });
        }
        file.map(|value| Raw {
            value,
            origin: self.file_origin.clone(),
        })
    }

    /// A `[sync]` key: `AUDITSYNC_SYNC_<KEY>`, else `AUDITSYNC_<KEY>`, else the file's value. A variable
    /// that does not parse as `T` is [`ConfigError::Invalid`].
    pub(super) fn sync<T>(
        &self,
        key: &'static str,
        file: Option<T>,
    ) -> Result<Option<Raw<T>>, ConfigError>
    where
        T: FromEnv,
    {
        self.typed(
            key,
            &[env_name(&format!("sync_{key}")), env_name(key)],
            file,
        )
    }

    /// A `[graph]` key: `AUDITSYNC_GRAPH_<KEY>`, else the file's value. A variable that does not parse
    /// as `T` is [`ConfigError::Invalid`].
    pub(super) fn graph<T>(
        &self,
        key: &'static str,
        file: Option<T>,
    ) -> Result<Option<Raw<T>>, ConfigError>
    where
        T: FromEnv,
    {
        self.typed(key, &[env_name(&format!("graph_{key}"))], file)
    }

    /// The first of the variables `names` that is set, read as `T`, else the file's value.
    fn typed<T>(
        &self,
        key: &'static str,
        names: &[String],
        file: Option<T>,
    ) -> Result<Option<Raw<T>>, ConfigError>
    where
        T: FromEnv,
    {
        for name in names {
            if let Some(v) = self.env.get(name) {
                let origin = Origin::Env(name.clone());
                let value = T::from_env(v).ok_or_else(|| ConfigError::Invalid {
                    key,
                    origin: origin.clone(),
                    reason: format!("{} is not {}", super::quoted(v), T::EXPECTED),
                })?;
                return Ok(Some(Raw { value, origin }));
            }
        }
        Ok(file.map(|value| Raw {
            value,
            origin: self.file_origin.clone(),
        }))
    }
}

/// A value as an environment variable writes it.
pub(super) trait FromEnv: Sized {
    /// What the value should look like, for the refusal ("a whole number").
    const EXPECTED: &'static str;
    /// The value, or `None` when the text is not one.
    fn from_env(s: &str) -> Option<Self>;
}

impl FromEnv for u32 {
    const EXPECTED: &'static str = "a whole number";
    fn from_env(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl FromEnv for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_env(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

impl FromEnv for String {
    const EXPECTED: &'static str = "text";
    fn from_env(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
}

impl FromEnv for Vec<String> {
    const EXPECTED: &'static str = "a comma-separated list";
    fn from_env(s: &str) -> Option<Self> {
        Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Finds the configuration file: `--config`, else `AUDITSYNC_CONFIG`, else `./auditsync.toml`, else
/// `$XDG_CONFIG_HOME/auditsync/config.toml` (`~/.config/auditsync/config.toml`).
/// An explicitly named file must exist; the two default places may be absent.
///
/// Returns the named file without looking at it (a missing one is [`ConfigError::Read`] when
/// [`Settings::load`](super::Settings::load) reads it), the first default place that holds a file, or
/// `None`. It does not fail today; the `Result` leaves room for a check that does.
pub fn locate(flag: Option<&Path>, env: &Env) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = flag {
        return Ok(Some(p.to_owned()));
    }
    if let Some(p) = env.get("AUDITSYNC_CONFIG") {
        return Ok(Some(PathBuf::from(p)));
    }
    let mut candidates = vec![PathBuf::from("auditsync.toml")];
    if let Some(dir) = env.get("XDG_CONFIG_HOME") {
        candidates.push(Path::new(dir).join("auditsync/config.toml"));
    } else if let Some(home) = env.get("HOME") {
        candidates.push(Path::new(home).join(".config/auditsync/config.toml"));
    }
    Ok(candidates.into_iter().find(|p| p.is_file()))
}

/// The default places [`locate`] looks in, for [`ConfigError::NotFound`].
pub(super) fn default_places(env: &Env) -> String {
    let mut places = vec!["./auditsync.toml".to_owned()];
    if let Some(dir) = env.get("XDG_CONFIG_HOME") {
        places.push(format!("{dir}/auditsync/config.toml"));
    } else if let Some(home) = env.get("HOME") {
        places.push(format!("{home}/.config/auditsync/config.toml"));
    }
    places.join(" and ")
}

/// The file's keys, or none when there is no file (`text` is `None`); `file` names it in the refusal,
/// which says the line and what to write (`explain`).
pub(super) fn parse_file(
    file: Option<&Path>,
    text: Option<&str>,
) -> Result<FileConfig, ConfigError> {
    match text {
        Some(t) => toml::from_str(t).map_err(|e| ConfigError::Parse {
            path: file.map(Path::to_owned).unwrap_or_default(),
            message: parse_error(&e, t),
        }),
        None => Ok(FileConfig::default()),
    }
}

/// A warning for each `AUDITSYNC_` variable that is not one auditsync reads (a typo would otherwise
/// be ignored without a word).
pub(super) fn unknown_env_warnings(env: &Env) -> Vec<String> {
    env.vars
        .keys()
        .filter(|k| k.starts_with("AUDITSYNC_"))
        .filter(|k| {
            let known = OTHER_VARS.contains(&k.as_str())
                || TOP_KEYS.iter().any(|key| env_name(key) == **k)
                || SYNC_KEYS
                    .iter()
                    .any(|key| env_name(key) == **k || env_name(&format!("sync_{key}")) == **k)
                || GRAPH_KEYS
                    .iter()
                    .any(|key| env_name(&format!("graph_{key}")) == **k);
            !known
        })
        .map(|k| {
            let name = k.trim_start_matches("AUDITSYNC_").to_ascii_lowercase();
            let suggestion = match name.strip_prefix("graph_") {
                Some(g) => nearest(g, &GRAPH_KEYS).map(|key| env_name(&format!("graph_{key}"))),
                None => {
                    let name = name.strip_prefix("sync_").unwrap_or(&name);
                    let known: Vec<&str> = TOP_KEYS.iter().chain(&SYNC_KEYS).copied().collect();
                    nearest(name, &known).map(env_name)
                }
            };
            match suggestion {
                Some(var) => format!(
                    "the environment variable {k} is not one auditsync reads; it was ignored (did you mean {var}?)"
                ),
                None => format!("the environment variable {k} is not one auditsync reads; it was ignored"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cloud;
    use crate::config::testing::{load, minimal};

    #[test]
    fn environment_overrides_the_file() {
        let s = load(
            &format!("{}[sync]\nconcurrency = 4\n", minimal()),
            &[
                ("AUDITSYNC_CLOUD", "gcc"),
                ("AUDITSYNC_SYNC_CONCURRENCY", "2"),
                ("AUDITSYNC_CONTENT_TYPES", "audit.general, Audit.Exchange"),
            ],
        )
        .unwrap();
        assert_eq!(s.tenant.cloud, Cloud::Gcc);
        assert_eq!(s.sync.concurrency, 2);
        assert_eq!(s.sync.content_types, ["Audit.General", "Audit.Exchange"]);
    }

    #[test]
    fn unknown_keys_are_refused_by_name_with_the_path() {
        let err = load(&format!("{}tennant = 1\n", minimal()), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tennant") && err.contains("/etc/auditsync.toml"),
            "{err}"
        );
        let err = load(&format!("{}[sync]\nsegments = 3\n", minimal()), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("segments"), "{err}");
    }

    #[test]
    fn the_example_file_is_valid_and_complete() {
        let text = include_str!("../../../../config.example.toml");
        let s = load(text, &[]).unwrap();
        assert_eq!(s.sync.concurrency, 8);
        for key in TOP_KEYS.iter().chain(&SYNC_KEYS).chain(&GRAPH_KEYS) {
            assert!(
                text.contains(&format!("{key} =")),
                "{key} is not documented"
            );
        }
    }
}
