//! The keys that identify one tenant and its app registration: the GUIDs.

use std::path::PathBuf;

use super::ConfigError;
use super::layers::{Layers, Raw, env_name};

pub(super) fn required_guid(
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

pub(super) fn guid(key: &'static str, raw: Raw<String>) -> Result<String, ConfigError> {
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
