//! Configuration: where the file is found, what it may hold, how the environment overrides it, and the
//! validated [`Settings`] every command runs on.
//!
//! Everything here happens before the first request: a refusal names the setting, where it came from
//! (the file's path or the environment variable) and what to write instead.
//!
//! The parts, one concern each: `layers` (the file's place, its keys, the environment overrides),
//! `explain` (the file's mistakes in the admin's terms: line, key, what to write),
//! `tenant` (the keys of one tenant), `cloud` (hosts per cloud, token version), `secret` (the client
//! secret's source), `sync` (the `[sync]` table) and `graph` (the `[graph]` table: the Graph audit log
//! query API, its host per cloud and the clouds where it does not exist).

mod cloud;
mod explain;
mod graph;
mod layers;
mod secret;
mod sync;
mod tenant;

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use cloud::{Cloud, TokenVersion};
pub use graph::{GRAPH_GCC_WARNING, GraphSettings, GraphVersion};
pub use layers::{Env, locate};
pub use secret::SecretSource;
pub use sync::{CONTENT_TYPES, SyncSettings, TimeUnit, content_type};
pub use tenant::Tenant;

use layers::{Layers, Raw, default_places, parse_file, unknown_env_warnings};
use secret::read_secret;
use sync::sync_settings;
use url::Url;

/// Why the configuration cannot be used. Every variant is a user error (exit code 2) except
/// [`ConfigError::SecretCommandFailed`] and [`ConfigError::SecretCommandTimedOut`], runtime failures of
/// somebody else's program.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file was found (or named) but could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file, as named or found.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or holds a key auditsync does not know, or a value of the wrong type.
    #[error("the configuration file {path} is not valid: {message}")]
    Parse {
        /// The file (empty when the text was not read from a file).
        path: PathBuf,
        /// toml's message with its line number; a quoted value is left out (it may be a secret).
        message: String,
    },
    /// No file was named, none is in the default places, and `AUDITSYNC_TENANT_ID` is not set.
    #[error(
        "no configuration file found (looked for {looked}); copy config.example.toml to ./auditsync.toml or \
         ~/.config/auditsync/config.toml, pass --config PATH, or set the AUDITSYNC_* environment variables"
    )]
    NotFound {
        /// The default places, joined with "and".
        looked: String,
    },
    /// A required key (`tenant_id`, `client_id`, or a source of the client secret) is not set.
    #[error("{key} is not set {hint}; set it in the configuration file or as {env}")]
    Missing {
        /// The key, as written in the file.
        key: &'static str,
        /// The environment variable that can set it instead.
        env: String,
        /// Where it was looked for, e.g. "in /etc/auditsync.toml".
        hint: String,
    },
    /// A key is set to a value auditsync refuses.
    #[error("{key} {origin} is not valid: {reason}")]
    Invalid {
        /// The key, as written in the file.
        key: &'static str,
        /// Where the refused value came from.
        origin: Origin,
        /// Why, and what to write instead. A value that may be a secret is not quoted.
        reason: String,
    },
    /// The file sets more than one of `client_secret`, `client_secret_file` and `client_secret_command`
    /// (the value is where the file is).
    #[error(
        "{0} sets more than one of client_secret, client_secret_file and client_secret_command; keep exactly one"
    )]
    SecretConflict(Origin),
    /// `client_secret_file` names a file that cannot be read.
    #[error("cannot read the client secret file {path} (client_secret_file {origin}): {source}")]
    SecretFile {
        /// The secret's file (relative paths in the configuration file are taken from its folder).
        path: PathBuf,
        /// Where `client_secret_file` was set.
        origin: Origin,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The secret is empty once trimmed (from a value, a file or a command's output); the message
    /// names the source (the value's key, the file, the command) and where it was set.
    #[error("{0}")]
    SecretEmpty(String),
    /// `client_secret_command` ran longer than `client_secret_command_timeout`; it and every process
    /// it started were stopped.
    #[error(
        "client_secret_command {origin} did not finish within {seconds} s; it was stopped, with every process \
         it started. Run it by hand to see what it waits for (a prompt, a login, the network), or raise \
         client_secret_command_timeout"
    )]
    SecretCommandTimedOut {
        /// Where `client_secret_command` was set.
        origin: Origin,
        /// The timeout, in seconds.
        seconds: u64,
    },
    /// `client_secret_command` could not be started, failed, or printed something that is not UTF-8 text.
    #[error(
        "client_secret_command {origin} failed ({status}); run it by hand to see why (its output is not shown \
         here because it may hold the secret)"
    )]
    SecretCommandFailed {
        /// Where `client_secret_command` was set.
        origin: Origin,
        /// What went wrong, e.g. "it exited with status 1". Never the command's output.
        status: String,
    },
    /// The Graph audit log query API (`backfill`, `verify`) was asked for in a cloud where it does not
    /// exist. Checked before any request; an explicit `[graph] endpoint` does not lift it.
    #[error(
        "backfill and verify use the Microsoft Graph audit log query API, which exists only in Microsoft's \
         global service: it is not available in cloud = \"{cloud}\" (Graph answers \"Resource not found for the \
         segment 'auditLog'\" there, and Microsoft support confirmed it is not supported in GCC High or DoD). \
         To load history older than the Management Activity API's 7 days, run an audit search in the \
         Microsoft Purview portal (Audit > New search, activity \"Launched app\"), export the results as CSV \
         and load it with `auditsync import FILE`"
    )]
    GraphUnavailable {
        /// The configured cloud's name (`gcc-high`, `dod`).
        cloud: &'static str,
    },
    /// `[graph] enabled = false` and a command that needs the Graph API was run.
    #[error(
        "the Graph audit log query API is turned off by [graph] enabled = false {origin}; set enabled = true \
         (or remove the key, or set AUDITSYNC_GRAPH_ENABLED=true) to use backfill and verify, or load older \
         launches from a Purview audit search CSV export with `auditsync import`"
    )]
    GraphDisabled {
        /// Where `enabled = false` came from.
        origin: Origin,
    },
}

impl ConfigError {
    /// Exit code for this error: 2 for configuration mistakes, 1 for a failing or hanging secret command.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::SecretCommandFailed { .. } | ConfigError::SecretCommandTimedOut { .. } => {
                1
            }
            _ => 2,
        }
    }
}

/// Where a setting's value came from, for messages that point at the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file at this path. Shown as "in PATH".
    File(PathBuf),
    /// The environment variable of this name. Shown as "from NAME".
    Env(String),
    /// auditsync's default (no file, no variable). Shown as "(the default)".
    Default,
    /// A command-line flag. Shown as "given on the command line". Nothing in config builds it yet.
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

/// Everything a command needs, validated. Built by [`Settings::load`] (or [`Settings::from_parts`]);
/// every key is either from the environment (`AUDITSYNC_<KEY>`), from the file, or a default.
#[derive(Debug)]
pub struct Settings {
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
    /// The tenant to read, and how to sign in to it (the top-level keys `tenant_id` ... `publisher_identifier`).
    pub tenant: Tenant,
    /// The SQLite database (`database`). From the environment as given; from the file relative to the
    /// file's folder; by default `auditsync.db` in that folder (or in the working directory without a file).
    pub database: PathBuf,
    /// The `[sync]` table.
    pub sync: SyncSettings,
    /// The `[graph]` table (the Graph audit log query API, for `backfill` and `verify`).
    pub graph: GraphSettings,
    /// Things worth telling the admin that do not stop the run (world-readable secrets, hosts that do not
    /// match the cloud, unknown AUDITSYNC_ variables). The caller logs them.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Finds, reads and validates the configuration. `flag` is `--config`; the file is found by
    /// [`locate`]. Without a file, the environment must at least set `AUDITSYNC_TENANT_ID`
    /// ([`ConfigError::NotFound`]); an unreadable file is [`ConfigError::Read`]; any other refusal is
    /// [`Settings::from_parts`]'s.
    pub fn load(flag: Option<&Path>, env: &Env) -> Result<Settings, ConfigError> {
        let path = locate(flag, env)?;
        let (file, text) = match &path {
            Some(p) => {
                let bytes = std::fs::read(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                let text = explain::decode(p, bytes)?;
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

    /// Validates a configuration given as text (`file` names it in messages, and relative paths in the
    /// text are relative to its folder); `text` is `None` when there is no file. The environment
    /// overrides the text key by key. Nothing is read or run here: the client secret waits for
    /// [`Settings::client_secret`].
    ///
    /// # Errors
    /// The first refusal, checking in this order: the TOML ([`ConfigError::Parse`]), the secret's
    /// source ([`ConfigError::SecretConflict`]), the ids ([`ConfigError::Missing`],
    /// [`ConfigError::Invalid`]), the cloud and its hosts, the token version, then `[sync]`
    /// ([`ConfigError::Invalid`]).
    pub fn from_parts(
        file: Option<PathBuf>,
        text: Option<&str>,
        env: &Env,
    ) -> Result<Settings, ConfigError> {
        // Relative paths in the file are relative to the file's folder, so cron's working directory
        // does not matter; relative paths from the environment are relative to the working directory.
        let base = file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        // Before any value is looked at: no refusal below may print the secret (see `quoted`).
        secret::register_known_secrets(env, text, &base);
        let parsed = parse_file(file.as_deref(), text)?;
        let layers = Layers::new(env, file.as_deref());
        let mut warnings = unknown_env_warnings(env);
        let tenant = Tenant::resolve(&layers, &parsed, &base, &file, &mut warnings)
            .map_err(|e| explain::with_line(e, text))?;
        let database = database(&layers, parsed.database, &base);
        let sync = sync_settings(&layers, parsed.sync, &mut warnings)
            .map_err(|e| explain::with_line(e, text))?;
        let graph = graph::graph_settings(&layers, parsed.graph, tenant.cloud, &tenant.audience)
            .map_err(|e| explain::with_line(e, text))?;
        Ok(Settings {
            file,
            tenant,
            database,
            sync,
            graph,
            warnings,
        })
    }

    /// The Graph root to send the audit log query API's requests to (and to ask the Graph token for),
    /// without a trailing `/`, or why not. Call it before any request: the refusals are configuration
    /// errors (exit 2).
    ///
    /// In `gcc` it returns the endpoint, and the caller logs [`GRAPH_GCC_WARNING`] (the API is not
    /// confirmed there).
    ///
    /// # Errors
    /// [`ConfigError::GraphUnavailable`] in `gcc-high` and `dod`, whatever `[graph] endpoint` says (the
    /// API exists only in the global service; the message gives the alternative, a Purview export and
    /// `auditsync import`); [`ConfigError::GraphDisabled`] when `[graph] enabled = false` (names the key
    /// and where it was set).
    pub fn graph_endpoint(&self) -> Result<Url, ConfigError> {
        graph::graph_root(self.tenant.cloud, &self.graph)
    }

    /// Reads the client secret from wherever the configuration says, running `client_secret_command`
    /// if that is the source. Call once per invocation.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when no source is set, [`ConfigError::SecretFile`],
    /// [`ConfigError::SecretEmpty`], [`ConfigError::SecretCommandFailed`] or
    /// [`ConfigError::SecretCommandTimedOut`] (exit code 1).
    pub async fn client_secret(&self) -> Result<SecretString, ConfigError> {
        read_secret(self.tenant.secret.as_ref(), self.file.as_deref()).await
    }
}

/// A refused value as a refusal quotes it (`"gcc-high"`), unless it holds a secret auditsync knows
/// (the client secret, registered by `register_known_secrets` before any value is validated) or has
/// a credential's shape: then only its length, so that the secret pasted into the wrong key never
/// reaches a terminal, a log or cron's mail.
pub(super) fn quoted(value: &str) -> String {
    let q = format!("{value:?}");
    if crate::redact::redact(&q) == q {
        q
    } else {
        format!(
            "its value ({} characters, not shown: it holds the client secret or a credential, which \
             belongs in client_secret only)",
            value.chars().count()
        )
    }
}

/// The database path: from the environment as given, from the file relative to `base` (the file's
/// folder), else `auditsync.db` in `base`.
fn database(layers: &Layers<'_>, file_value: Option<PathBuf>, base: &Path) -> PathBuf {
    match layers.top(
        "database",
        file_value.map(|p| p.to_string_lossy().into_owned()),
    ) {
        Some(Raw {
            value,
            origin: Origin::Env(_),
        }) => PathBuf::from(value),
        Some(Raw { value, .. }) => base.join(value),
        None => base.join("auditsync.db"),
    }
}

#[cfg(test)]
mod testing {
    //! What the tests of every part share: a minimal valid file, and loading it as if from
    //! /etc/auditsync.toml.

    use std::path::PathBuf;

    use super::{ConfigError, Env, Settings};

    pub(super) const T: &str = "11111111-2222-3333-4444-555555555555";
    pub(super) const C: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    pub(super) fn minimal() -> String {
        format!("tenant_id = \"{T}\"\nclient_id = \"{C}\"\nclient_secret = \"s\"\n")
    }

    pub(super) fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_parts(
            Some(PathBuf::from("/etc/auditsync.toml")),
            Some(text),
            &Env::from_pairs(env.iter().copied()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{C, T, load, minimal};

    #[test]
    fn defaults_follow_the_coe_and_the_commercial_cloud() {
        let s = load(&minimal(), &[]).unwrap();
        assert_eq!(s.tenant.cloud, Cloud::Commercial);
        assert_eq!(
            s.tenant.authority.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(s.tenant.audience.as_str(), "https://manage.office.com/");
        assert_eq!(s.tenant.publisher_identifier, T);
        assert_eq!(s.database, PathBuf::from("/etc/auditsync.db"));
        assert_eq!(s.sync.segment_count_limit, 60);
        assert_eq!(s.sync.content_types, ["Audit.General"]);
        assert_eq!(s.sync.operations, ["LaunchPowerApp"]);
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
            err.contains("client_secret = \"…\"") && !err.contains("12345678"),
            "{err}"
        );
    }
}
