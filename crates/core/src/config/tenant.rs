//! One tenant: the keys that identify it and its app registration, the client secret's source, and
//! the hosts to reach it at.

use std::path::{Path, PathBuf};

use url::Url;

use super::ConfigError;
use super::cloud::{Cloud, TokenVersion, cloud_mismatch, endpoint, read_cloud, read_token_version};
use super::layers::{FileConfig, Layers, Raw, env_name};
use super::secret::{SecretSource, secret_source};

/// One tenant and the app registration auditsync signs in to it as: who (`tenant_id`, `client_id`),
/// with what (`secret`), where (`cloud`, `authority`, `audience`, `token_version`) and under whose
/// throttling quota (`publisher_identifier`).
///
/// Today the configuration names one, with the top-level keys. A later `[[tenants]]` list (issue 14)
/// will be a `Vec<Tenant>`, each entry taking the top-level keys as its defaults.
#[derive(Debug)]
pub struct Tenant {
    /// The Directory (tenant) ID (`tenant_id`, required): a GUID, hyphenated, in lower case.
    pub tenant_id: String,
    /// The Application (client) ID of the app registration (`client_id`, required): a GUID,
    /// hyphenated, in lower case.
    pub client_id: String,
    /// Where the client secret is read from; `None` when no source is set, which
    /// [`Settings::client_secret`](super::Settings::client_secret) refuses.
    pub secret: Option<SecretSource>,
    /// The national cloud (`cloud`, default commercial); it gives `authority` and `audience` their
    /// defaults.
    pub cloud: Cloud,
    /// The Entra ID login host (`authority`, default [`Cloud::authority`]): https, or plain http to a
    /// loopback address; no query or fragment.
    pub authority: Url,
    /// The Management Activity API root, also the token's resource (`audience`, default
    /// [`Cloud::audience`]): https, or plain http to a loopback address; no query or fragment.
    pub audience: Url,
    /// The token endpoint (`token_version`, default v1).
    pub token_version: TokenVersion,
    /// Sent as `PublisherIdentifier` on every API call, so the tenant's throttling quota is its own
    /// (management-api.md §1.2); a GUID, default `tenant_id`.
    pub publisher_identifier: String,
}

impl Tenant {
    /// Reads the tenant's keys from the layers, in this order: the secret source, the GUIDs, the cloud
    /// and its hosts, the token version. Relative paths in the file are relative to `base`; `file` is
    /// named when a required key is missing. Warnings (a secret others can read, hosts of another
    /// cloud) are added to `warnings`.
    pub(super) fn resolve(
        layers: &Layers<'_>,
        parsed: &FileConfig,
        base: &Path,
        file: &Option<PathBuf>,
        warnings: &mut Vec<String>,
    ) -> Result<Tenant, ConfigError> {
        let secret = secret_source(layers, parsed, base, warnings)?;
        let tenant_id = required_guid(layers, "tenant_id", parsed.tenant_id.clone(), file)?;
        let client_id = required_guid(layers, "client_id", parsed.client_id.clone(), file)?;
        let publisher_identifier =
            match layers.top("publisher_identifier", parsed.publisher_identifier.clone()) {
                Some(raw) => guid("publisher_identifier", raw)?,
                None => tenant_id.clone(),
            };

        let cloud = read_cloud(layers, parsed.cloud.clone())?;
        let authority = endpoint(
            layers,
            "authority",
            parsed.authority.clone(),
            cloud.authority(),
        )?;
        let audience = endpoint(
            layers,
            "audience",
            parsed.audience.clone(),
            cloud.audience(),
        )?;
        warnings.extend(cloud_mismatch(cloud, &authority, &audience));
        let token_version = read_token_version(layers, parsed.token_version.clone())?;

        Ok(Tenant {
            tenant_id,
            client_id,
            secret,
            cloud,
            authority,
            audience,
            token_version,
            publisher_identifier,
        })
    }
}

/// A key that must be set and be a GUID; `file` is named in the refusal when it is missing.
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

/// The value as a hyphenated lower-case GUID. A refusal tells its length, never the value.
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
