//! The national clouds: their hosts, the token endpoint version, and the `authority` / `audience`
//! overrides (https, or plain http to loopback only, by [`crate::net::check_transport`]).

use url::Url;

use super::layers::{Layers, Raw};
use super::{ConfigError, Origin};
use crate::net::check_transport;

/// The national cloud the tenant lives in (the `cloud` key); it decides the login host and the API
/// host. The hosts per cloud are management-api.md §1.1 (API) and §4 "Authority and resource per
/// cloud" (login).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Microsoft 365 Enterprise, the worldwide cloud (also written `enterprise` or `public`).
    Commercial,
    /// US Government Community Cloud: commercial login, its own API host.
    Gcc,
    /// US Government Community Cloud High: the `.us` login and API hosts.
    GccHigh,
    /// US Department of Defense: the `.us` login host, the `.mil` API host.
    Dod,
}

impl Cloud {
    /// The names [`Cloud::parse`] accepts, as messages list them.
    pub const NAMES: &'static str = "commercial, gcc, gcc-high, dod";

    /// The cloud by name, trimmed, in any case, `_` or `-` alike (`GCC_High`); `None` for a name
    /// auditsync does not know.
    pub fn parse(s: &str) -> Option<Cloud> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "commercial" | "enterprise" | "public" => Some(Cloud::Commercial),
            "gcc" => Some(Cloud::Gcc),
            "gcc-high" | "gcchigh" => Some(Cloud::GccHigh),
            "dod" => Some(Cloud::Dod),
            _ => None,
        }
    }

    /// The cloud's name as the `cloud` key writes it (`gcc-high`).
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Commercial => "commercial",
            Cloud::Gcc => "gcc",
            Cloud::GccHigh => "gcc-high",
            Cloud::Dod => "dod",
        }
    }

    /// The Entra ID login host, an https origin without a trailing `/` (management-api.md §4,
    /// "Authority and resource per cloud"); the default of the `authority` key.
    pub fn authority(self) -> &'static str {
        match self {
            Cloud::Commercial | Cloud::Gcc => "https://login.microsoftonline.com",
            Cloud::GccHigh | Cloud::Dod => "https://login.microsoftonline.us",
        }
    }

    /// The Management Activity API root, which is also the token's resource: an https origin without a
    /// trailing `/` (management-api.md §1.1, §4); the default of the `audience` key.
    pub fn audience(self) -> &'static str {
        match self {
            Cloud::Commercial => "https://manage.office.com",
            Cloud::Gcc => "https://manage-gcc.office.com",
            Cloud::GccHigh => "https://manage.office365.us",
            Cloud::Dod => "https://manage.protection.apps.mil",
        }
    }
}

/// Which Entra token endpoint to use (the `token_version` key, default v1): both work in every cloud
/// (management-api.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `/oauth2/token` with `resource=<audience>`, as the CoE kit and the API's docs use. Written `v1`,
    /// `1` or `1.0`.
    V1,
    /// `/oauth2/v2.0/token` with `scope=<audience>/.default`. Written `v2`, `2` or `2.0`.
    V2,
}

/// The `cloud` key, [`Cloud::Commercial`] when it is not set.
pub(super) fn read_cloud(
    layers: &Layers<'_>,
    file_value: Option<String>,
) -> Result<Cloud, ConfigError> {
    match layers.top("cloud", file_value) {
        Some(raw) => Cloud::parse(&raw.value).ok_or_else(|| ConfigError::Invalid {
            key: "cloud",
            origin: raw.origin,
            reason: format!(
                "{} is not a cloud auditsync knows; use one of {}",
                super::quoted(&raw.value),
                Cloud::NAMES
            ),
        }),
        None => Ok(Cloud::Commercial),
    }
}

/// The `token_version` key ("v1", "1", "1.0", "v2", ...), [`TokenVersion::V1`] when it is not set.
pub(super) fn read_token_version(
    layers: &Layers<'_>,
    file_value: Option<String>,
) -> Result<TokenVersion, ConfigError> {
    match layers.top("token_version", file_value) {
        Some(raw) => match raw.value.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" | "1.0" => Ok(TokenVersion::V1),
            "v2" | "2" | "2.0" => Ok(TokenVersion::V2),
            _ => Err(ConfigError::Invalid {
                key: "token_version",
                origin: raw.origin,
                reason: format!("{} is neither \"v1\" nor \"v2\"", super::quoted(&raw.value)),
            }),
        },
        None => Ok(TokenVersion::V1),
    }
}

/// Parses `authority` or `audience`, falling back to the cloud's value; https, or http to loopback only.
pub(super) fn endpoint(
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
            "{} is not a URL ({e}); write it like {default}",
            super::quoted(trimmed)
        ))
    })?;
    check_transport(&url).map_err(|e| invalid(e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{} has a query or fragment; give only scheme, host and optional path, like {default}",
            super::quoted(trimmed)
        )));
    }
    if let Some(reason) = appended_path(key, &url) {
        return Err(invalid(format!("{} {reason}", super::quoted(trimmed))));
    }
    Ok(url)
}

/// Whether `authority` or `audience` carries a path auditsync adds itself (a tenant and the token
/// path pasted from a portal or a script, the API's path): the request URL would hold it twice.
/// Returns why, with the value to write instead (the URL up to that part).
fn appended_path(key: &str, url: &Url) -> Option<String> {
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let guid = |p: &str| uuid::Uuid::try_parse(p).is_ok();
    let at = segments.iter().position(|p| {
        let lower = p.to_ascii_lowercase();
        match key {
            "authority" => {
                guid(p)
                    || p.contains('.')
                    || matches!(
                        lower.as_str(),
                        "common" | "organizations" | "consumers" | "oauth2" | "token" | "authorize"
                    )
            }
            _ => {
                guid(p)
                    || p.starts_with('.')
                    || matches!(
                        lower.as_str(),
                        "api" | "v1.0" | "activity" | "feed" | "subscriptions" | "content"
                    )
            }
        }
    })?;
    let mut keep = url.origin().ascii_serialization();
    for p in &segments[..at] {
        keep.push('/');
        keep.push_str(p);
    }
    let tail = segments[at..].join("/");
    Some(match key {
        "authority" => format!(
            "ends with a tenant or a token path (/{tail}); authority is only the login host: write \
             authority = \"{keep}\" (auditsync adds /<tenant_id>/oauth2/token itself, from tenant_id, so the \
             tenant would be in the URL twice)"
        ),
        _ => format!(
            "ends with the API's path (/{tail}); audience is only the API's root, which is also the token's \
             resource: write audience = \"{keep}\" (auditsync adds /api/v1.0/<tenant_id>/activity/feed/… \
             itself)"
        ),
    })
}

/// Warns when an overridden host belongs to another cloud (a GCC High tenant pointed at commercial hosts
/// fails in confusing ways).
pub(super) fn cloud_mismatch(cloud: Cloud, authority: &Url, audience: &Url) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use crate::config::testing::{load, minimal};

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
            assert_eq!(s.tenant.authority.host_str(), Some(login));
            assert_eq!(s.tenant.audience.host_str(), Some(api));
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
    }

    #[test]
    fn a_tenant_or_a_token_path_in_authority_is_refused_with_the_host_to_write() {
        let t = crate::config::testing::T;
        for tail in [
            t.to_owned(),
            format!("{t}/"),
            "contoso.onmicrosoft.com".into(),
            "organizations".into(),
            format!("{t}/oauth2/v2.0/token"),
        ] {
            let err = load(
                &format!(
                    "{}authority = \"https://login.microsoftonline.com/{tail}\"\n",
                    minimal()
                ),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("authority = \"https://login.microsoftonline.com\"")
                    && err.contains("line 4")
                    && err.contains("twice"),
                "{tail}: {err}"
            );
        }
        let err = load(
            &format!(
                "{}audience = \"https://manage.office.com/api/v1.0/{t}/activity/feed\"\n",
                minimal()
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("audience = \"https://manage.office.com\""),
            "{err}"
        );
        let err = load(
            &format!(
                "{}audience = \"https://manage.office.com/.default\"\n",
                minimal()
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("audience = \"https://manage.office.com\""),
            "{err}"
        );
        // A login host behind a path of its own is fine.
        load(
            &format!(
                "{}authority = \"https://proxy.contoso.com/login\"\n",
                minimal()
            ),
            &[],
        )
        .unwrap();
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
}
