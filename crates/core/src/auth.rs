//! Entra ID client-credentials tokens for the Management Activity API: one request shape per token
//! endpoint version, a cache renewed before expiry and after a 401, and Entra's refusals turned into one
//! sentence that names the cause and the fix.
//!
//! The secret and the tokens stay inside `secrecy`/`oauth2` types whose `Debug` is redacted and that
//! have no `Display`; the only place a token becomes text is the `Authorization` header, which is
//! marked sensitive.

use std::fmt;
use std::time::{Duration, Instant};

use oauth2::basic::{BasicRevocationErrorResponse, BasicTokenType};
use oauth2::{
    AccessToken, AuthType, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointNotSet,
    EndpointSet, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::config::{Cloud, TokenVersion};
use crate::net::{BodyError, Http, net_reason, size_text};
use crate::retry::{Backoff, retry_after};

/// Everything needed to ask Entra ID for a token (management-api.md §4), as [`Settings`] validated it.
///
/// [`Settings`]: crate::config::Settings
pub struct Credentials {
    /// The Directory (tenant) ID: a path segment of the token URL, and named in the explanations.
    pub tenant_id: String,
    /// The app registration's Application (client) ID, sent as `client_id`.
    pub client_id: String,
    /// The client secret's value, sent as `client_secret` in the request body (never in a header).
    pub secret: SecretString,
    /// The national cloud; used only to explain a refusal (which login and API hosts it expects).
    pub cloud: Cloud,
    /// The login host, e.g. `https://login.microsoftonline.com`; the token URL is
    /// `{authority}/{tenant_id}/oauth2/token` (v1) or `{authority}/{tenant_id}/oauth2/v2.0/token` (v2).
    pub authority: Url,
    /// The API root the token is for, e.g. `https://manage.office.com`. Sent without its trailing `/`,
    /// as `resource` (v1) or in the scope `{audience}/.default` (v2).
    pub audience: Url,
    /// Which of the two token endpoints to use.
    pub version: TokenVersion,
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Entra ID answered with an error: the message explains it.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// No answer came (DNS, connection, TLS, timeout, a cut body), still after the retries of
    /// [`Backoff`].
    #[error(
        "could not reach the Entra ID token endpoint {url}: {reason}; check the network (proxy, firewall) and \
         the `authority` setting"
    )]
    Unreachable {
        /// The token URL.
        url: Url,
        /// The failure in a few words ([`net_reason`]).
        reason: String,
    },
    /// The endpoint kept answering 5xx or 429, still after the retries of [`Backoff`].
    #[error(
        "the Entra ID token endpoint {url} kept answering HTTP {status} (service unavailable); run again later"
    )]
    Unavailable {
        /// The token URL.
        url: Url,
        /// The last answer's HTTP status.
        status: u16,
        /// The last answer's `Retry-After`, if it had one.
        retry_after: Option<Duration>,
    },
    /// An error status whose body is not Entra ID's error JSON: usually an `authority` that is not a
    /// login host (a proxy's page, another service).
    #[error(
        "the token endpoint {url} answered HTTP {status} with no Entra ID error in it; check that `authority` \
         is your cloud's login host (for cloud = \"{cloud}\" that is {expected})"
    )]
    NotEntra {
        /// The token URL.
        url: Url,
        /// The answer's HTTP status.
        status: u16,
        /// The configured cloud's name ([`Cloud::name`]).
        cloud: &'static str,
        /// That cloud's login host ([`Cloud::authority`]).
        expected: &'static str,
    },
    /// A success answer that is not a token response auditsync can read, or (from
    /// [`TokenProvider::new`]) an `authority` and `tenant_id` that do not make a token URL.
    #[error("the token endpoint {url} sent a token response auditsync cannot read ({reason})")]
    Malformed {
        /// The token URL; the `authority` when no token URL could be made.
        url: Url,
        /// What could not be read: a JSON path and the parser's complaint, never the body itself (it
        /// may hold a token).
        reason: String,
    },
}

/// An Entra ID error response, explained for the admin by its `Display`.
#[derive(Debug)]
pub struct Rejection {
    /// The AADSTS number (7000215 for `AADSTS7000215`): from `error_codes`, else from the start of
    /// `error_description`; `None` when the body has neither.
    pub code: Option<u32>,
    /// The OAuth `error` field, e.g. `invalid_client`.
    pub error: String,
    /// The first line of `error_description` without its `AADSTSnnn: ` prefix (the lines after it are
    /// trace and correlation ids and a timestamp).
    pub summary: String,
    /// `trace_id`, shown after the code at the end of the message.
    pub trace_id: Option<String>,
    tenant_id: String,
    client_id: String,
    cloud: Cloud,
    authority: Url,
    audience: Url,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, c, cloud) = (&self.tenant_id, &self.client_id, self.cloud.name());
        let aud = self.audience.as_str().trim_end_matches('/');
        let auth = self.authority.as_str().trim_end_matches('/');
        match self.code {
            Some(7000215) => write!(
                f,
                "Entra ID rejected the client secret of app {c}: it is not a current secret of this app; copy the \
                 secret's Value (not its Secret ID) from Entra admin center > App registrations > Certificates & \
                 secrets into client_secret"
            ),
            Some(7000222) => write!(
                f,
                "the client secret of app {c} has expired; create a new one under Entra admin center > App \
                 registrations > Certificates & secrets and put its value in client_secret"
            ),
            Some(7000216) => write!(
                f,
                "Entra ID received no client secret for app {c}; set client_secret, client_secret_file, \
                 client_secret_command or AUDITSYNC_CLIENT_SECRET"
            ),
            Some(700016) => write!(
                f,
                "Entra ID has no app with client_id {c} in tenant {t}; check client_id (the Application (client) \
                 ID on the app registration's Overview page) and that the app is registered in this tenant and \
                 this cloud (cloud = \"{cloud}\")"
            ),
            Some(90002) | Some(900023) | Some(90072) => write!(
                f,
                "tenant {t} was not found at {auth}; check tenant_id (the Directory (tenant) ID on the app \
                 registration's Overview page) and that cloud = \"{cloud}\" is the tenant's cloud (GCC High and \
                 DoD tenants sign in at login.microsoftonline.us)"
            ),
            Some(500011) if !same_host(&self.audience, self.cloud.audience()) => write!(
                f,
                "Entra ID does not know the resource {aud} in tenant {t}; check the host auditsync asks a token \
                 for ([graph] endpoint for the Graph API: https://graph.microsoft.com; `audience` for the \
                 Management API: {}) and that the app has that API's permission with admin consent",
                self.cloud.audience()
            ),
            Some(500011) => write!(
                f,
                "Entra ID does not know the resource {aud} in tenant {t}; for cloud = \"{cloud}\" the audience is \
                 {}: remove the audience override or correct it, and check that the app has the Office 365 \
                 Management APIs permission with admin consent",
                self.cloud.audience()
            ),
            Some(1002012) | Some(70011) => write!(
                f,
                "Entra ID refused the scope {aud}/.default; check `audience` (for cloud = \"{cloud}\" it is {})",
                self.cloud.audience()
            ),
            Some(7000229) => write!(
                f,
                "app {c} has no service principal in tenant {t} (admin consent was never granted in this \
                 tenant); an admin of tenant {t} grants it in Entra admin center > App registrations > (the app) \
                 > API permissions > Grant admin consent, or opens {auth}/{t}/adminconsent?client_id={c}"
            ),
            Some(7000112) => write!(
                f,
                "app {c} is disabled in tenant {t}; enable it in Entra admin center > Enterprise applications > \
                 (the app) > Properties"
            ),
            Some(53003) => write!(
                f,
                "a Conditional Access policy blocked app {c} from getting a token; ask your Entra admin to \
                 exclude this app (workload identity) from the policy"
            ),
            _ => write!(
                f,
                "Entra ID refused the token request ({}): {}",
                self.error, self.summary
            ),
        }?;
        if let Some(code) = self.code {
            write!(f, " [AADSTS{code}")?;
            if let Some(id) = &self.trace_id {
                write!(f, ", trace ID {id}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// Whether `url` is on the host of `other` (a URL text).
fn same_host(url: &Url, other: &str) -> bool {
    Url::parse(other).is_ok_and(|o| o.host_str() == url.host_str())
}

/// Entra ID's error body (management-api.md §4, "Token errors").
#[derive(Debug, Deserialize, Serialize)]
pub struct EntraErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    trace_id: Option<String>,
}

impl fmt::Display for EntraErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

impl oauth2::ErrorResponse for EntraErrorResponse {}

impl EntraErrorResponse {
    /// The AADSTS code: from `error_codes`, else from the description's `AADSTSnnn:` prefix.
    fn code(&self) -> Option<u32> {
        self.error_codes.first().copied().or_else(|| {
            let d = self.error_description.as_deref()?;
            let digits: String = d
                .strip_prefix("AADSTS")?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
    }

    /// The description's first line, without the `AADSTSnnn: ` prefix (the rest is trace ids).
    fn summary(&self) -> String {
        let d = self.error_description.as_deref().unwrap_or_default();
        let first = d.lines().next().unwrap_or_default();
        match first.split_once(": ") {
            Some((code, rest)) if code.starts_with("AADSTS") => rest.to_owned(),
            _ => first.to_owned(),
        }
    }
}

/// A token response from either endpoint version. v1 sends `expires_in` as a string ("3599"),
/// v2 as a number; the oauth2 crate's standard response accepts only numbers.
#[derive(Debug, Deserialize, Serialize)]
pub struct EntraTokenResponse {
    access_token: AccessToken,
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lifetime_seconds")]
    expires_in: Option<u64>,
}

/// The longest token lifetime auditsync believes: a day. Entra ID issues app tokens for 60 to 90
/// minutes (a configurable lifetime policy allowed at most a day); anything longer is an answer not to
/// trust, and a lifetime of years would overflow the clock arithmetic.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `expires_in` as whole seconds in `[0, MAX_TOKEN_LIFETIME]`, from a number (whole or not, negative
/// included) or a string holding one, as v1 sends it; zero or less is 0 (the token is used once, then
/// a new one is asked for). Absent, `null` or text that is not a number is `None` (the default
/// lifetime applies).
fn lifetime_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let seconds = match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(seconds.filter(|s| !s.is_nan()).map(|s| {
        let max = MAX_TOKEN_LIFETIME.as_secs();
        // The float-to-integer cast saturates: -1e300 is 0, 1e300 is u64::MAX.
        (s.max(0.0).floor() as u64).min(max)
    }))
}

impl TokenResponse for EntraTokenResponse {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        None
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

type EntraClient = oauth2::Client<
    EntraErrorResponse,
    EntraTokenResponse,
    StandardTokenIntrospectionResponse<EmptyExtraTokenFields, BasicTokenType>,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A bearer token as handed to the API client. Its `Debug` is redacted and it has no `Display`.
#[derive(Clone, Debug)]
pub struct Token {
    value: AccessToken,
    generation: u64,
}

impl Token {
    /// The `Authorization` header value, marked sensitive so no HTTP layer logs it.
    pub fn header(&self) -> HeaderValue {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.value.secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        v.set_sensitive(true);
        v
    }

    /// The token's `roles` claim (its application permissions), read from the JWT payload; `None` when
    /// the token is not a JWT. Only the claim leaves this function, never the token.
    pub fn roles(&self) -> Option<Vec<String>> {
        use base64::Engine as _;
        let payload = self.value.secret().split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(
            claims["roles"]
                .as_array()?
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

struct Cached {
    token: Token,
    renew_at: Instant,
}

/// Hands out tokens, asking Entra ID only when the cached one is near its end or was refused.
pub struct TokenProvider {
    oauth: EntraClient,
    http: Http,
    token_url: Url,
    creds: Credentials,
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// The causes of failed token requests already warned about: a repeat is logged at -v only.
    warned: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Transport-level outcome of one token request, before oauth2 reads the body.
#[derive(Debug, thiserror::Error)]
enum Transport {
    #[error("{0}")]
    Send(String),
    #[error("HTTP {status}")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("HTTP {0} without an Entra ID error")]
    NotEntra(u16),
    #[error("an answer larger than {}", size_text(TOKEN_ANSWER_LIMIT))]
    TooLarge,
}

/// The most auditsync reads of a token endpoint's answer: 1 MiB. A token response or an Entra ID error
/// is a few KB; a longer answer is not one.
pub const TOKEN_ANSWER_LIMIT: u64 = 1 << 20;

impl TokenProvider {
    /// A provider for `creds` that sends its requests with `http` (whose stall timeout bounds a token
    /// answer that trickles, as any other). Only the token URL is built here; the
    /// first request is made by the first [`TokenProvider::token`].
    ///
    /// # Errors
    /// [`AuthError::Malformed`] when `authority` and `tenant_id` do not make a URL.
    pub fn new(creds: Credentials, http: Http) -> Result<TokenProvider, AuthError> {
        let base = creds.authority.as_str().trim_end_matches('/');
        let path = match creds.version {
            TokenVersion::V1 => "oauth2/token",
            TokenVersion::V2 => "oauth2/v2.0/token",
        };
        let raw = format!("{base}/{}/{path}", creds.tenant_id);
        let token_url = Url::parse(&raw).map_err(|e| AuthError::Malformed {
            url: creds.authority.clone(),
            reason: e.to_string(),
        })?;
        // However the secret reached here, no text auditsync prints, logs or stores may hold it.
        crate::redact::register(creds.secret.expose_secret());
        let oauth = oauth2::Client::new(ClientId::new(creds.client_id.clone()))
            .set_client_secret(ClientSecret::new(creds.secret.expose_secret().to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::from_url(token_url.clone()));
        Ok(TokenProvider {
            oauth,
            http,
            token_url,
            creds,
            cache: tokio::sync::Mutex::new(None),
            warned: std::sync::Mutex::default(),
        })
    }

    /// The cached token, or a new one when it is missing or close to expiry. A token is renewed a fifth
    /// of its lifetime before it ends, and at most five minutes before (management-api.md §4: "renew the
    /// token before it expires"); a response without a readable `expires_in` counts as 3599 s, one of
    /// zero or less is used once, one over [`MAX_TOKEN_LIFETIME`] counts as that.
    ///
    /// # Errors
    /// [`AuthError::Rejected`] when Entra ID refuses the request, [`AuthError::NotEntra`] or
    /// [`AuthError::Malformed`] for an answer auditsync cannot use (none of these is retried);
    /// [`AuthError::Unreachable`] or [`AuthError::Unavailable`] once network failures, 5xx or 429
    /// outlast the retries.
    pub async fn token(&self) -> Result<Token, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let generation = cache.as_ref().map_or(0, |c| c.token.generation + 1);
        let fresh = self.request(generation).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Called after the API answered 401 to `rejected`: drops it from the cache (unless another task
    /// already renewed it) and returns a fresh token.
    ///
    /// # Errors
    /// As [`TokenProvider::token`].
    pub async fn renew(&self, rejected: &Token) -> Result<Token, AuthError> {
        {
            let mut cache = self.cache.lock().await;
            if cache
                .as_ref()
                .is_some_and(|c| c.token.generation == rejected.generation)
            {
                tracing::debug!("the API refused the cached token; asking Entra ID for a new one");
                if let Some(c) = cache.as_mut() {
                    c.renew_at = Instant::now();
                }
            }
        }
        self.token().await
    }

    #[tracing::instrument(name = "token", skip_all, fields(endpoint = %self.token_url))]
    async fn request(&self, generation: u64) -> Result<Cached, AuthError> {
        let mut backoff = Backoff::new();
        loop {
            match self.request_once(generation).await {
                Err(e @ (AuthError::Unreachable { .. } | AuthError::Unavailable { .. })) => {
                    let (hint, why) = match &e {
                        AuthError::Unavailable {
                            retry_after,
                            status,
                            ..
                        } => (*retry_after, format!("HTTP {status}")),
                        AuthError::Unreachable { reason, .. } => (None, reason.clone()),
                        _ => (None, String::new()),
                    };
                    match backoff.next(hint) {
                        Some(delay) => {
                            self.retrying(&why, delay);
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Logs a failed token request about to be retried: a cause not seen before by this provider as a
    /// warning, a repeat (an outage of the token endpoint fails every attempt alike) at -v only.
    fn retrying(&self, why: &str, delay: Duration) {
        let key = crate::redact::redact(why).into_owned();
        let first = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        let host = self.token_url.host_str().unwrap_or_default();
        let wait = delay.as_secs_f64();
        if first {
            tracing::warn!(
                "token request to {host} failed ({why}); retrying in {wait:.1} s (the same failure again \
                 is logged at -v only)"
            );
        } else {
            tracing::debug!("token request to {host} failed ({why}); retrying in {wait:.1} s");
        }
    }

    async fn request_once(&self, generation: u64) -> Result<Cached, AuthError> {
        let resource = self
            .creds
            .audience
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let mut req = self.oauth.exchange_client_credentials();
        req = match self.creds.version {
            TokenVersion::V1 => req.add_extra_param("resource", resource),
            TokenVersion::V2 => req.add_scope(Scope::new(format!("{resource}/.default"))),
        };
        let http = self.http.clone();
        let send = move |r: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send(&http, r).await }
        };
        tracing::debug!(url = %self.token_url, "requesting a token from Entra ID");
        let started = Instant::now();
        let url = self.token_url.clone();
        let response = req.request_async(&send).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(body) => AuthError::Rejected(Box::new(Rejection {
                code: body.code(),
                summary: body.summary(),
                error: body.error.clone(),
                trace_id: body.trace_id.clone(),
                tenant_id: self.creds.tenant_id.clone(),
                client_id: self.creds.client_id.clone(),
                cloud: self.creds.cloud,
                authority: self.creds.authority.clone(),
                audience: self.creds.audience.clone(),
            })),
            RequestTokenError::Request(Transport::Send(reason)) => {
                AuthError::Unreachable { url, reason }
            }
            RequestTokenError::Request(Transport::Unavailable {
                status,
                retry_after,
            }) => AuthError::Unavailable {
                url,
                status,
                retry_after,
            },
            RequestTokenError::Request(e @ Transport::TooLarge) => AuthError::Malformed {
                url,
                reason: format!("{e}; it was not read further"),
            },
            RequestTokenError::Request(Transport::NotEntra(status)) => AuthError::NotEntra {
                url,
                status,
                cloud: self.creds.cloud.name(),
                expected: self.creds.cloud.authority(),
            },
            // Never show the body: it may hold a token.
            RequestTokenError::Parse(e, _) => AuthError::Malformed {
                url,
                reason: format!("at {}: {}", e.path(), e.inner()),
            },
            RequestTokenError::Other(reason) => AuthError::Malformed { url, reason },
        })?;
        // Before anything could echo it back: no text auditsync prints, logs or stores may hold it.
        crate::redact::register(response.access_token.secret());
        let lifetime = response
            .expires_in()
            .unwrap_or(Duration::from_secs(3599))
            .min(MAX_TOKEN_LIFETIME);
        // Renew a fifth of the lifetime early, and at most five minutes early. A lifetime of zero
        // makes `renew_at` the start: the token serves the request that asked for it, and the next
        // asks for a new one.
        let margin = (lifetime / 5).min(Duration::from_secs(300));
        tracing::debug!(lifetime_s = lifetime.as_secs(), "got a token from Entra ID");
        Ok(Cached {
            token: Token {
                value: response.access_token,
                generation,
            },
            renew_at: started.checked_add(lifetime - margin).unwrap_or(started),
        })
    }
}

/// Sends one token request with auditsync's HTTP client. Statuses that mean "try again" and bodies
/// that are not Entra ID's are sorted out here; oauth2 reads the rest.
async fn send(http: &Http, req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, Transport> {
    let req = reqwest::Request::try_from(req).map_err(|e| Transport::Send(net_reason(&e)))?;
    let (status, headers, body) = http
        .exchange(req, TOKEN_ANSWER_LIMIT, TOKEN_ANSWER_LIMIT as usize)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Transport::TooLarge,
            BodyError::Net(reason) => Transport::Send(reason),
        })?;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(Transport::Unavailable {
            status: status.as_u16(),
            retry_after: retry_after(&headers),
        });
    }
    if status != reqwest::StatusCode::OK
        && serde_json::from_slice::<EntraErrorResponse>(&body).is_err()
    {
        return Err(Transport::NotEntra(status.as_u16()));
    }
    let mut builder = http::Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    builder
        .body(body.to_vec())
        .map_err(|e| Transport::Send(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_may_be_a_string_or_a_number() {
        let v1: EntraTokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":"3599","expires_on":"1431659094","resource":"r","access_token":"a"}"#,
        )
        .unwrap();
        assert_eq!(v1.expires_in(), Some(Duration::from_secs(3599)));
        let v2: EntraTokenResponse =
            serde_json::from_str(r#"{"token_type":"Bearer","expires_in":3599,"access_token":"a"}"#)
                .unwrap();
        assert_eq!(v2.expires_in(), Some(Duration::from_secs(3599)));
        assert!(!format!("{v2:?}").contains("\"a\""));
    }

    #[test]
    fn any_expires_in_is_a_bounded_lifetime() {
        let lifetime = |v: &str| {
            let r: EntraTokenResponse = serde_json::from_str(&format!(
                r#"{{"token_type":"Bearer","access_token":"a"{v}}}"#
            ))
            .unwrap();
            r.expires_in()
        };
        let day = Some(MAX_TOKEN_LIFETIME);
        for (v, want) in [
            (r#","expires_in":"3599""#, Some(Duration::from_secs(3599))),
            (r#","expires_in":" 60 ""#, Some(Duration::from_secs(60))),
            (r#","expires_in":3599.7"#, Some(Duration::from_secs(3599))),
            (r#","expires_in":0"#, Some(Duration::ZERO)),
            (r#","expires_in":"0""#, Some(Duration::ZERO)),
            (r#","expires_in":-5"#, Some(Duration::ZERO)),
            (r#","expires_in":"-3600""#, Some(Duration::ZERO)),
            (r#","expires_in":18446744073709551615"#, day),
            (r#","expires_in":1e300"#, day),
            (r#","expires_in":"99999999999999999999999""#, day),
            (r#","expires_in":null"#, None),
            (r#","expires_in":"soon""#, None),
            (r#","expires_in":true"#, None),
            ("", None),
        ] {
            assert_eq!(lifetime(v), want, "{v}");
        }
    }

    #[test]
    fn the_code_comes_from_error_codes_or_the_description() {
        let body: EntraErrorResponse = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#,
        )
        .unwrap();
        assert_eq!(body.code(), Some(7000215));
        assert_eq!(body.summary(), "Invalid client secret provided.");
    }

    fn rejection(code: u32, audience: &str) -> Rejection {
        Rejection {
            code: Some(code),
            error: "invalid_client".into(),
            summary: "x".into(),
            trace_id: None,
            tenant_id: "11111111-2222-3333-4444-555555555555".into(),
            client_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            cloud: Cloud::Commercial,
            authority: Url::parse("https://login.microsoftonline.com").unwrap(),
            audience: Url::parse(audience).unwrap(),
        }
    }

    #[test]
    fn a_missing_service_principal_and_an_unknown_graph_resource_are_explained() {
        let text = rejection(7000229, "https://graph.microsoft.com").to_string();
        assert!(
            text.contains("no service principal")
                && text.contains("Grant admin consent")
                && text.contains(
                    "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/adminconsent?\
                     client_id=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
                ),
            "{text}"
        );
        // The Graph token's resource is not the Management API's audience: not blamed on `audience`.
        let text = rejection(500011, "https://graph.microsoft.com").to_string();
        assert!(
            text.contains("[graph] endpoint") && text.contains("https://graph.microsoft.com"),
            "{text}"
        );
        let text = rejection(500011, "https://manage.office.com").to_string();
        assert!(text.contains("remove the audience override"), "{text}");
    }
}
