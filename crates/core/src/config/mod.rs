//! Configuration: where the file is found, what it may hold, how the environment overrides it, and the
//! validated [`Settings`] every command runs on.
//!
//! Everything here happens before the first request: a refusal names the setting, where it came from
//! (the file's path or the environment variable) and what to write instead.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::net::check_transport;

/// Why the configuration cannot be used. Every variant is a user error (exit code 2) except
/// [`ConfigError::SecretCommandFailed`], which is a runtime failure of somebody else's program.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "no configuration file found (looked for {looked}); copy config.example.toml to ./auditsync.toml or \
         ~/.config/auditsync/config.toml, pass --config PATH, or set the AUDITSYNC_* environment variables"
    )]
    NotFound { looked: String },
    #[error("{key} is not set {hint}; set it in the configuration file or as {env}")]
    Missing {
        key: &'static str,
        env: String,
        hint: String,
    },
    #[error("{key} {origin} is not valid: {reason}")]
    Invalid {
        key: &'static str,
        origin: Origin,
        reason: String,
    },
    #[error(
        "{0} sets more than one of client_secret, client_secret_file and client_secret_command; keep exactly one"
    )]
    SecretConflict(Origin),
    #[error("cannot read the client secret file {path} (client_secret_file {origin}): {source}")]
    SecretFile {
        path: PathBuf,
        origin: Origin,
        #[source]
        source: std::io::Error,
    },
    #[error("the client secret {origin} is empty; put the secret's value there")]
    SecretEmpty { origin: Origin },
    #[error(
        "client_secret_command {origin} failed ({status}); run it by hand to see why (its output is not shown \
         here because it may hold the secret)"
    )]
    SecretCommandFailed { origin: Origin, status: String },
}

impl ConfigError {
    /// Exit code for this error: 2 for configuration mistakes, 1 for a failing secret command.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::SecretCommandFailed { .. } => 1,
            _ => 2,
        }
    }
}

/// Where a setting's value came from, for messages that point at the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Default,
    Command,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env(v) => write!(f, "from {v}"),
            Origin::Default => f.write_str("(the default)"),
            Origin::Command => f.write_str("given on the command line"),
        }
    }
}

/// The national cloud the tenant lives in; it decides the login host and the API host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Commercial,
    Gcc,
    GccHigh,
    Dod,
}

impl Cloud {
    pub const NAMES: &'static str = "commercial, gcc, gcc-high, dod";

    pub fn parse(s: &str) -> Option<Cloud> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "commercial" | "enterprise" | "public" => Some(Cloud::Commercial),
            "gcc" => Some(Cloud::Gcc),
            "gcc-high" | "gcchigh" => Some(Cloud::GccHigh),
            "dod" => Some(Cloud::Dod),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cloud::Commercial => "commercial",
            Cloud::Gcc => "gcc",
            Cloud::GccHigh => "gcc-high",
            Cloud::Dod => "dod",
        }
    }

    /// The Entra ID login host (management-api.md §4, "Authority and resource per cloud").
    pub fn authority(self) -> &'static str {
        match self {
            Cloud::Commercial | Cloud::Gcc => "https://login.microsoftonline.com",
            Cloud::GccHigh | Cloud::Dod => "https://login.microsoftonline.us",
        }
    }

    /// The Management Activity API root, which is also the token's resource (management-api.md §1.1).
    pub fn audience(self) -> &'static str {
        match self {
            Cloud::Commercial => "https://manage.office.com",
            Cloud::Gcc => "https://manage-gcc.office.com",
            Cloud::GccHigh => "https://manage.office365.us",
            Cloud::Dod => "https://manage.protection.apps.mil",
        }
    }
}

/// Which Entra token endpoint to use: v1 (`/oauth2/token`, `resource=`) or v2 (`/oauth2/v2.0/token`, `scope=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    V1,
    V2,
}

/// A unit of the sync window settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Minute,
    Hour,
    Day,
}

impl TimeUnit {
    fn parse(s: &str) -> Option<TimeUnit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minute" | "minutes" => Some(TimeUnit::Minute),
            "hour" | "hours" => Some(TimeUnit::Hour),
            "day" | "days" => Some(TimeUnit::Day),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Minute => "minute",
            TimeUnit::Hour => "hour",
            TimeUnit::Day => "day",
        }
    }

    pub fn times(self, n: u32) -> chrono::TimeDelta {
        match self {
            TimeUnit::Minute => chrono::TimeDelta::minutes(n.into()),
            TimeUnit::Hour => chrono::TimeDelta::hours(n.into()),
            TimeUnit::Day => chrono::TimeDelta::days(n.into()),
        }
    }
}

/// The content types the Management Activity API knows (management-api.md §1.1).
pub const CONTENT_TYPES: [&str; 5] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];

/// Checks a content type name and returns it in the API's spelling.
pub fn content_type(name: &str) -> Option<&'static str> {
    CONTENT_TYPES
        .iter()
        .find(|ct| ct.eq_ignore_ascii_case(name.trim()))
        .copied()
}

/// How the client secret is obtained. Nothing is read or run until [`Settings::client_secret`].
pub enum SecretSource {
    Value(SecretString, Origin),
    File(PathBuf, Origin),
    Command(String, Origin),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_, o) => write!(f, "Value([redacted], {o})"),
            SecretSource::File(p, o) => write!(f, "File({}, {o})", p.display()),
            SecretSource::Command(_, o) => write!(f, "Command([redacted], {o})"),
        }
    }
}

/// The `[sync]` table, validated.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub start_time_interval: u32,
    pub start_time_unit: TimeUnit,
    pub time_interval: u32,
    pub time_interval_unit: TimeUnit,
    pub segment_count_limit: u32,
    pub content_types: Vec<String>,
    pub operations: Vec<String>,
    pub concurrency: usize,
    /// The pace of API requests, shared by the whole run.
    pub requests_per_minute: u32,
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
        }
    }
}

/// Everything a command needs, validated. Built by [`Settings::load`].
#[derive(Debug)]
pub struct Settings {
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
    pub tenant_id: String,
    pub client_id: String,
    pub secret: Option<SecretSource>,
    pub cloud: Cloud,
    pub authority: Url,
    pub audience: Url,
    pub token_version: TokenVersion,
    pub publisher_identifier: String,
    pub database: PathBuf,
    pub sync: SyncSettings,
    /// Things worth telling the admin that do not stop the run (world-readable secrets, hosts that do not
    /// match the cloud, unknown AUDITSYNC_ variables). The caller logs them.
    pub warnings: Vec<String>,
}

/// The environment as auditsync sees it: a snapshot, so that tests can hand in their own.
#[derive(Debug, Default, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment (only the variables auditsync reads).
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("AUDITSYNC_") || k == "HOME" || k == "XDG_CONFIG_HOME")
            .collect();
        Env { vars }
    }

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

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Environment variables auditsync reads besides the per-key overrides.
const OTHER_VARS: [&str; 2] = ["AUDITSYNC_CONFIG", "AUDITSYNC_LOG"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    client_secret_file: Option<PathBuf>,
    client_secret_command: Option<String>,
    cloud: Option<String>,
    authority: Option<String>,
    audience: Option<String>,
    token_version: Option<String>,
    publisher_identifier: Option<String>,
    database: Option<PathBuf>,
    #[serde(default)]
    sync: FileSync,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSync {
    start_time_interval: Option<u32>,
    start_time_unit: Option<String>,
    time_interval: Option<u32>,
    time_interval_unit: Option<String>,
    segment_count_limit: Option<u32>,
    content_types: Option<Vec<String>>,
    operations: Option<Vec<String>>,
    concurrency: Option<u32>,
    requests_per_minute: Option<u32>,
}

/// Top-level keys, each overridable by `AUDITSYNC_<KEY>`.
const TOP_KEYS: [&str; 11] = [
    "tenant_id",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_command",
    "cloud",
    "authority",
    "audience",
    "token_version",
    "publisher_identifier",
    "database",
];
/// `[sync]` keys, each overridable by `AUDITSYNC_SYNC_<KEY>` or `AUDITSYNC_<KEY>`.
const SYNC_KEYS: [&str; 9] = [
    "start_time_interval",
    "start_time_unit",
    "time_interval",
    "time_interval_unit",
    "segment_count_limit",
    "content_types",
    "operations",
    "concurrency",
    "requests_per_minute",
];

fn env_name(key: &str) -> String {
    format!("AUDITSYNC_{}", key.to_ascii_uppercase())
}

/// A raw value and where it came from.
struct Raw<T> {
    value: T,
    origin: Origin,
}

/// Looks up one key: the environment first, then the file.
struct Layers<'a> {
    env: &'a Env,
    file_origin: Origin,
}

impl Layers<'_> {
    fn top(&self, key: &str, file: Option<String>) -> Option<Raw<String>> {
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

    fn sync<T>(&self, key: &'static str, file: Option<T>) -> Result<Option<Raw<T>>, ConfigError>
    where
        T: FromEnv,
    {
        for name in [env_name(&format!("sync_{key}")), env_name(key)] {
            if let Some(v) = self.env.get(&name) {
                let origin = Origin::Env(name);
                let value = T::from_env(v).ok_or_else(|| ConfigError::Invalid {
                    key,
                    origin: origin.clone(),
                    reason: format!("{v:?} is not {}", T::EXPECTED),
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

trait FromEnv: Sized {
    const EXPECTED: &'static str;
    fn from_env(s: &str) -> Option<Self>;
}

impl FromEnv for u32 {
    const EXPECTED: &'static str = "a whole number";
    fn from_env(s: &str) -> Option<Self> {
        s.trim().parse().ok()
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

fn default_places(env: &Env) -> String {
    let mut places = vec!["./auditsync.toml".to_owned()];
    if let Some(dir) = env.get("XDG_CONFIG_HOME") {
        places.push(format!("{dir}/auditsync/config.toml"));
    } else if let Some(home) = env.get("HOME") {
        places.push(format!("{home}/.config/auditsync/config.toml"));
    }
    places.join(" and ")
}

impl Settings {
    /// Finds, reads and validates the configuration. `flag` is `--config`.
    pub fn load(flag: Option<&Path>, env: &Env) -> Result<Settings, ConfigError> {
        let path = locate(flag, env)?;
        let (file, text) = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                (Some(p.clone()), Some(text))
            }
            None => (None, None),
        };
        if file.is_none() && env.get("AUDITSYNC_TENANT_ID").is_none() {
            return Err(ConfigError::NotFound {
                looked: default_places(env),
            });
        }
        Settings::from_parts(file, text.as_deref(), env)
    }

    /// Validates a configuration given as text (`file` names it in messages).
    pub fn from_parts(
        file: Option<PathBuf>,
        text: Option<&str>,
        env: &Env,
    ) -> Result<Settings, ConfigError> {
        let parsed: FileConfig = match text {
            Some(t) => toml::from_str(t).map_err(|e| ConfigError::Parse {
                path: file.clone().unwrap_or_default(),
                message: toml_message(&e, t),
            })?,
            None => FileConfig::default(),
        };
        let file_origin = match &file {
            Some(p) => Origin::File(p.clone()),
            None => Origin::Default,
        };
        // Relative paths in the file are relative to the file's folder, so cron's working directory
        // does not matter; relative paths from the environment are relative to the working directory.
        let base = file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        let layers = Layers { env, file_origin };
        let mut warnings = unknown_env_warnings(env);

        let secret = secret_source(env, &layers, &parsed, &base, &mut warnings)?;
        let tenant_id = required_guid(&layers, "tenant_id", parsed.tenant_id, &file)?;
        let client_id = required_guid(&layers, "client_id", parsed.client_id, &file)?;
        let publisher_identifier =
            match layers.top("publisher_identifier", parsed.publisher_identifier) {
                Some(raw) => guid("publisher_identifier", raw)?,
                None => tenant_id.clone(),
            };

        let cloud = match layers.top("cloud", parsed.cloud) {
            Some(raw) => Cloud::parse(&raw.value).ok_or_else(|| ConfigError::Invalid {
                key: "cloud",
                origin: raw.origin,
                reason: format!(
                    "{:?} is not a cloud auditsync knows; use one of {}",
                    raw.value,
                    Cloud::NAMES
                ),
            })?,
            None => Cloud::Commercial,
        };
        let authority = endpoint(&layers, "authority", parsed.authority, cloud.authority())?;
        let audience = endpoint(&layers, "audience", parsed.audience, cloud.audience())?;
        warnings.extend(cloud_mismatch(cloud, &authority, &audience));

        let token_version = match layers.top("token_version", parsed.token_version) {
            Some(raw) => match raw.value.trim().to_ascii_lowercase().as_str() {
                "v1" | "1" | "1.0" => TokenVersion::V1,
                "v2" | "2" | "2.0" => TokenVersion::V2,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "token_version",
                        origin: raw.origin,
                        reason: format!("{:?} is neither \"v1\" nor \"v2\"", raw.value),
                    });
                }
            },
            None => TokenVersion::V1,
        };

        let database = match layers.top(
            "database",
            parsed.database.map(|p| p.to_string_lossy().into_owned()),
        ) {
            Some(Raw {
                value,
                origin: Origin::Env(_),
            }) => PathBuf::from(value),
            Some(Raw { value, .. }) => base.join(value),
            None => base.join("auditsync.db"),
        };

        let sync = sync_settings(&layers, parsed.sync)?;

        Ok(Settings {
            file,
            tenant_id,
            client_id,
            secret,
            cloud,
            authority,
            audience,
            token_version,
            publisher_identifier,
            database,
            sync,
            warnings,
        })
    }

    /// Reads the client secret from wherever the configuration says, running `client_secret_command`
    /// if that is the source. Call once per invocation.
    pub async fn client_secret(&self) -> Result<SecretString, ConfigError> {
        let Some(source) = &self.secret else {
            return Err(ConfigError::Missing {
                key: "client_secret",
                env: "AUDITSYNC_CLIENT_SECRET".to_owned(),
                hint: match &self.file {
                    Some(p) => format!(
                        "(nor client_secret_file or client_secret_command) in {}",
                        p.display()
                    ),
                    None => "(nor client_secret_file or client_secret_command)".to_owned(),
                },
            });
        };
        let (value, origin) = match source {
            SecretSource::Value(v, o) => (v.expose_secret().to_owned(), o),
            SecretSource::File(path, o) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|source| {
                    ConfigError::SecretFile {
                        path: path.clone(),
                        origin: o.clone(),
                        source,
                    }
                })?;
                (text, o)
            }
            SecretSource::Command(cmd, o) => (run_secret_command(cmd, o).await?, o),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError::SecretEmpty {
                origin: origin.clone(),
            });
        }
        Ok(SecretString::from(value.to_owned()))
    }
}

/// toml's own message (it names the unknown key and the keys allowed) with the line it is on. A value
/// quoted in a type error is left out: it may be a secret written in the wrong form.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let raw = e.message().trim();
    let msg = if raw.starts_with("invalid type") || raw.starts_with("invalid value") {
        raw.split('`')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
            .collect::<Vec<_>>()
            .join("`")
    } else {
        raw.to_owned()
    };
    let msg = msg.as_str();
    match e.span() {
        Some(span) => {
            let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg.to_owned(),
    }
}

fn unknown_env_warnings(env: &Env) -> Vec<String> {
    env.vars
        .keys()
        .filter(|k| k.starts_with("AUDITSYNC_"))
        .filter(|k| {
            let known = OTHER_VARS.contains(&k.as_str())
                || TOP_KEYS.iter().any(|key| env_name(key) == **k)
                || SYNC_KEYS
                    .iter()
                    .any(|key| env_name(key) == **k || env_name(&format!("sync_{key}")) == **k);
            !known
        })
        .map(|k| format!("the environment variable {k} is not one auditsync reads; it was ignored"))
        .collect()
}

fn required_guid(
    layers: &Layers<'_>,
    key: &'static str,
    file_value: Option<String>,
    file: &Option<PathBuf>,
) -> Result<String, ConfigError> {
    match layers.top(key, file_value) {
        Some(raw) => guid(key, raw),
        None => Err(ConfigError::Missing {
            key,
            env: env_name(key),
            hint: match file {
                Some(p) => format!("in {}", p.display()),
                None => "(no configuration file was found)".to_owned(),
            },
        }),
    }
}

fn guid(key: &'static str, raw: Raw<String>) -> Result<String, ConfigError> {
    let v = raw.value.trim();
    let hyphenated = v.len() == 36 && v.matches('-').count() == 4;
    match uuid::Uuid::try_parse(v) {
        Ok(id) if hyphenated => Ok(id.hyphenated().to_string()),
        // The value is not echoed: a secret pasted into the wrong key must not reach a log or cron mail.
        _ => Err(ConfigError::Invalid {
            key,
            origin: raw.origin,
            reason: format!(
                "its value ({} characters{}) is not a GUID like 00000000-0000-0000-0000-000000000000; copy \
                 it from the app registration's Overview page in the Entra admin center",
                v.chars().count(),
                if v.contains('.') {
                    ", a domain name is not accepted"
                } else {
                    ""
                }
            ),
        }),
    }
}

/// Parses `authority` or `audience`, falling back to the cloud's value; https, or http to loopback only.
fn endpoint(
    layers: &Layers<'_>,
    key: &'static str,
    file_value: Option<String>,
    default: &str,
) -> Result<Url, ConfigError> {
    let raw = layers.top(key, file_value).unwrap_or(Raw {
        value: default.to_owned(),
        origin: Origin::Default,
    });
    let invalid = |reason: String| ConfigError::Invalid {
        key,
        origin: raw.origin.clone(),
        reason,
    };
    let trimmed = raw.value.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        invalid(format!(
            "{trimmed:?} is not a URL ({e}); write it like {default}"
        ))
    })?;
    check_transport(&url).map_err(|e| invalid(e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{trimmed:?} has a query or fragment; give only scheme, host and optional path, like {default}"
        )));
    }
    Ok(url)
}

/// Warns when an overridden host belongs to another cloud (a GCC High tenant pointed at commercial hosts
/// fails in confusing ways).
fn cloud_mismatch(cloud: Cloud, authority: &Url, audience: &Url) -> Vec<String> {
    let all = [Cloud::Commercial, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod];
    let mut out = Vec::new();
    for (key, url, pick) in [
        (
            "authority",
            authority,
            Cloud::authority as fn(Cloud) -> &'static str,
        ),
        ("audience", audience, Cloud::audience),
    ] {
        let host = url.host_str().unwrap_or_default();
        let owner = all
            .iter()
            .filter(|c| {
                Url::parse(pick(**c))
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .as_deref()
                    == Some(host)
            })
            .collect::<Vec<_>>();
        if !owner.is_empty() && !owner.contains(&&cloud) {
            out.push(format!(
                "{key} {url} belongs to the {} cloud but cloud = \"{}\"; the default for {} is {}",
                owner[0].name(),
                cloud.name(),
                cloud.name(),
                pick(cloud)
            ));
        }
    }
    out
}

fn secret_source(
    env: &Env,
    layers: &Layers<'_>,
    parsed: &FileConfig,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<SecretSource>, ConfigError> {
    if let Some(v) = env.get("AUDITSYNC_CLIENT_SECRET") {
        return Ok(Some(SecretSource::Value(
            SecretString::from(v.to_owned()),
            Origin::Env("AUDITSYNC_CLIENT_SECRET".into()),
        )));
    }
    if let Some(v) = env.get("AUDITSYNC_CLIENT_SECRET_FILE") {
        let path = PathBuf::from(v);
        warnings.extend(readable_by_others(&path, "client_secret_file"));
        return Ok(Some(SecretSource::File(
            path,
            Origin::Env("AUDITSYNC_CLIENT_SECRET_FILE".into()),
        )));
    }
    if let Some(v) = env.get("AUDITSYNC_CLIENT_SECRET_COMMAND") {
        return Ok(Some(SecretSource::Command(
            v.to_owned(),
            Origin::Env("AUDITSYNC_CLIENT_SECRET_COMMAND".into()),
        )));
    }
    let origin = layers.file_origin.clone();
    let set = [
        parsed.client_secret.is_some(),
        parsed.client_secret_file.is_some(),
        parsed.client_secret_command.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(ConfigError::SecretConflict(origin));
    }
    if let Some(v) = &parsed.client_secret {
        if let Origin::File(p) = &origin {
            warnings.extend(readable_by_others(p, "client_secret"));
        }
        return Ok(Some(SecretSource::Value(v.clone(), origin)));
    }
    if let Some(p) = &parsed.client_secret_file {
        let path = base.join(p);
        warnings.extend(readable_by_others(&path, "client_secret_file"));
        return Ok(Some(SecretSource::File(path, origin)));
    }
    if let Some(c) = &parsed.client_secret_command {
        return Ok(Some(SecretSource::Command(c.clone(), origin)));
    }
    Ok(None)
}

/// A warning, with the chmod that fixes it, when a file holding a secret can be read by other users.
#[cfg(unix)]
fn readable_by_others(path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds {what} and can be read by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path, _what: &str) -> Option<String> {
    None
}

async fn run_secret_command(cmd: &str, origin: &Origin) -> Result<String, ConfigError> {
    let mut command = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.arg("/C").arg(cmd);
        c
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let failed = |status: String| ConfigError::SecretCommandFailed {
        origin: origin.clone(),
        status,
    };
    let out = command
        .output()
        .await
        .map_err(|e| failed(format!("it could not be started: {e}")))?;
    if !out.status.success() {
        return Err(failed(match out.status.code() {
            Some(code) => format!("it exited with status {code}"),
            None => "it was killed by a signal".to_owned(),
        }));
    }
    String::from_utf8(out.stdout).map_err(|_| failed("its output is not UTF-8 text".to_owned()))
}

fn sync_settings(layers: &Layers<'_>, file: FileSync) -> Result<SyncSettings, ConfigError> {
    let d = SyncSettings::default();
    let positive = |key: &'static str, raw: Option<Raw<u32>>, default: u32| match raw {
        Some(Raw { value: 0, origin }) => Err(ConfigError::Invalid {
            key,
            origin,
            reason: "it must be at least 1".to_owned(),
        }),
        Some(r) => Ok(r.value),
        None => Ok(default),
    };
    let unit = |key: &'static str, raw: Option<Raw<String>>, default: TimeUnit| match raw {
        Some(r) => TimeUnit::parse(&r.value).ok_or_else(|| ConfigError::Invalid {
            key,
            origin: r.origin,
            reason: format!("{:?} is not one of minute, hour, day", r.value),
        }),
        None => Ok(default),
    };

    let start_raw = layers.sync("start_time_interval", file.start_time_interval)?;
    let start_origin = start_raw.as_ref().map(|r| r.origin.clone());
    let start_time_interval = positive("start_time_interval", start_raw, d.start_time_interval)?;
    let start_time_unit = unit(
        "start_time_unit",
        layers.sync("start_time_unit", file.start_time_unit)?,
        d.start_time_unit,
    )?;
    if start_time_unit.times(start_time_interval) > chrono::TimeDelta::days(7) {
        return Err(ConfigError::Invalid {
            key: "start_time_interval",
            origin: start_origin.unwrap_or(Origin::Default),
            reason: format!(
                "{start_time_interval} {} reaches further back than the 7 days the API keeps content; use at \
                 most 7 day, and `auditsync import` for older exports",
                start_time_unit.name()
            ),
        });
    }

    let ti_raw = layers.sync("time_interval", file.time_interval)?;
    let ti_origin = ti_raw.as_ref().map(|r| r.origin.clone());
    let time_interval = positive("time_interval", ti_raw, d.time_interval)?;
    let time_interval_unit = unit(
        "time_interval_unit",
        layers.sync("time_interval_unit", file.time_interval_unit)?,
        d.time_interval_unit,
    )?;
    if time_interval_unit.times(time_interval) > chrono::TimeDelta::hours(24) {
        return Err(ConfigError::Invalid {
            key: "time_interval",
            origin: ti_origin.unwrap_or(Origin::Default),
            reason: format!(
                "{time_interval} {} is longer than the 24 hours the API allows in one request; use at most \
                 24 hour",
                time_interval_unit.name()
            ),
        });
    }

    let segment_count_limit = positive(
        "segment_count_limit",
        layers.sync("segment_count_limit", file.segment_count_limit)?,
        d.segment_count_limit,
    )?;

    let content_types = match layers.sync("content_types", file.content_types)? {
        Some(r) => {
            if r.value.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "content_types",
                    origin: r.origin,
                    reason: "the list is empty; Power Apps launches are in \"Audit.General\""
                        .to_owned(),
                });
            }
            let mut out: Vec<String> = Vec::new();
            for name in &r.value {
                let ct = content_type(name).ok_or_else(|| ConfigError::Invalid {
                    key: "content_types",
                    origin: r.origin.clone(),
                    reason: format!(
                        "{name:?} is not a content type of the API; use any of {}",
                        CONTENT_TYPES.join(", ")
                    ),
                })?;
                if !out.iter().any(|c| c == ct) {
                    out.push(ct.to_owned());
                }
            }
            out
        }
        None => d.content_types,
    };

    let operations = match layers.sync("operations", file.operations)? {
        Some(r) => {
            let ops: Vec<String> = r
                .value
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect();
            if ops.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "operations",
                    origin: r.origin,
                    reason: "the list is empty; the default is [\"LaunchPowerApp\"]".to_owned(),
                });
            }
            ops
        }
        None => d.operations,
    };

    let concurrency = match layers.sync("concurrency", file.concurrency)? {
        Some(Raw { value, origin }) if !(1..=64).contains(&value) => {
            return Err(ConfigError::Invalid {
                key: "concurrency",
                origin,
                reason: format!("{value} is outside 1 to 64"),
            });
        }
        Some(r) => r.value as usize,
        None => d.concurrency,
    };

    let requests_per_minute = match layers.sync("requests_per_minute", file.requests_per_minute)? {
        Some(Raw { value, origin }) if !(1..=60_000).contains(&value) => {
            return Err(ConfigError::Invalid {
                key: "requests_per_minute",
                origin,
                reason: format!(
                    "{value} is outside 1 to 60000 (the service allows about 2000 a minute per tenant)"
                ),
            });
        }
        Some(r) => r.value,
        None => d.requests_per_minute,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "11111111-2222-3333-4444-555555555555";
    const C: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn minimal() -> String {
        format!("tenant_id = \"{T}\"\nclient_id = \"{C}\"\nclient_secret = \"s\"\n")
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_parts(
            Some(PathBuf::from("/etc/auditsync.toml")),
            Some(text),
            &Env::from_pairs(env.iter().copied()),
        )
    }

    #[test]
    fn defaults_follow_the_coe_and_the_commercial_cloud() {
        let s = load(&minimal(), &[]).unwrap();
        assert_eq!(s.cloud, Cloud::Commercial);
        assert_eq!(s.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(s.audience.as_str(), "https://manage.office.com/");
        assert_eq!(s.publisher_identifier, T);
        assert_eq!(s.database, PathBuf::from("/etc/auditsync.db"));
        assert_eq!(s.sync.segment_count_limit, 60);
        assert_eq!(s.sync.content_types, ["Audit.General"]);
        assert_eq!(s.sync.operations, ["LaunchPowerApp"]);
    }

    #[test]
    fn each_cloud_has_its_hosts() {
        for (cloud, login, api) in [
            ("gcc", "login.microsoftonline.com", "manage-gcc.office.com"),
            (
                "gcc-high",
                "login.microsoftonline.us",
                "manage.office365.us",
            ),
            (
                "dod",
                "login.microsoftonline.us",
                "manage.protection.apps.mil",
            ),
        ] {
            let s = load(&format!("{}cloud = \"{cloud}\"\n", minimal()), &[]).unwrap();
            assert_eq!(s.authority.host_str(), Some(login));
            assert_eq!(s.audience.host_str(), Some(api));
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
    }

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
        assert_eq!(s.cloud, Cloud::Gcc);
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
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            load(&format!("{}authority = \"{ok}\"\n", minimal()), &[]).unwrap();
        }
        let err = load(
            &format!("{}audience = \"http://manage.office.com\"\n", minimal()),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("audience") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn one_secret_source_in_the_file_and_the_environment_wins() {
        let two = format!("{}client_secret_file = \"x\"\n", minimal());
        assert!(matches!(
            load(&two, &[]),
            Err(ConfigError::SecretConflict(_))
        ));
        let s = load(&two, &[("AUDITSYNC_CLIENT_SECRET", "e")]).unwrap();
        assert!(matches!(
            s.secret,
            Some(SecretSource::Value(_, Origin::Env(_)))
        ));
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let cases = [
            ("tenant_id = \"contoso\"\n", "tenant_id"),
            ("cloud = \"azure\"\n", "gcc-high"),
            (
                "[sync]\ntime_interval = 2\ntime_interval_unit = \"day\"\n",
                "24 hours",
            ),
            ("[sync]\nstart_time_interval = 8\n", "7 days"),
            ("[sync]\ncontent_types = [\"Audit.Foo\"]\n", "Audit.General"),
            ("[sync]\nstart_time_unit = \"week\"\n", "minute, hour, day"),
        ];
        for (extra, needle) in cases {
            let text = if extra.starts_with("tenant_id") {
                format!("{extra}client_id = \"{C}\"\n")
            } else {
                format!("{}{extra}", minimal())
            };
            let err = load(&text, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn the_example_file_is_valid_and_complete() {
        let text = include_str!("../../../../config.example.toml");
        let s = load(text, &[]).unwrap();
        assert_eq!(s.sync.concurrency, 8);
        for key in TOP_KEYS.iter().chain(&SYNC_KEYS) {
            assert!(
                text.contains(&format!("{key} =")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn rejected_values_are_not_echoed() {
        let secret = "Xy8Q~abcdefghijklmnopqrstuvwxyz0123456789";
        let err = load(&minimal().replace(C, secret), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("client_id") && !err.contains(secret), "{err}");
        let err = load(&minimal().replace("\"s\"", "12345678"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid type") && !err.contains("12345678"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let s = load(&minimal().replace("\"s\"", "\"hunter2-secret\""), &[]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
