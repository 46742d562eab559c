//! The Office 365 Management Activity API client: one authenticated request path (`PublisherIdentifier`
//! on every call, a token renewed once on 401, transient failures retried) and the service's error
//! bodies turned into [`ApiError`]s that tell the admin what to do.

mod breaker;
mod content;
pub mod graph;
mod pacer;
mod subscriptions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use tracing::Instrument;
use url::Url;

use crate::auth::{AuthError, Credentials, TokenProvider};
use crate::config::{Cloud, Settings};
use crate::net::{
    BodyError, Exchanged, Http, NetError, check_transport, redact_query, same_origin, size_text,
};
use crate::retry::{Backoff, retry_after};
use breaker::Breaker;
use pacer::{Answered, Pacer};

pub use breaker::{Stop, cause_key};

pub use content::ContentPage;
pub use subscriptions::{StartOutcome, StopOutcome, Subscription, Webhook};

/// What went wrong talking to the Management Activity API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token could be had from Entra ID.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The service answered with an error body; `Display` explains it.
    #[error("{0}")]
    Service(Box<ServiceError>),
    /// HTTP 401 (without AF10001) to a token issued after the previous 401: the service refuses any
    /// token of this app for this tenant, not a stale one.
    #[error(
        "the Management Activity API refused the token for {call} (HTTP 401) even after a new one was issued; \
         check that `audience` ({audience}) is your cloud's API host and that tenant_id is the tenant the app \
         is registered in"
    )]
    Unauthorized {
        /// The operation, as [`ApiClient::send`] was told it.
        call: String,
        /// The configured `audience`, without its trailing `/`.
        audience: String,
    },
    /// No answer came (DNS, connection, TLS, timeout, a cut body), still after the retries.
    #[error(
        "could not reach the Management Activity API for {call} ({url}): {reason}; check the network and `audience`"
    )]
    Unreachable {
        /// The operation, as [`ApiClient::send`] was told it.
        call: String,
        /// The URL without its query ([`redact_query`]).
        url: String,
        /// The failure in a few words ([`net_reason`]).
        reason: String,
    },
    /// A non-2xx answer whose body is not an API error, that retrying could not fix: most 4xx at once,
    /// a 5xx or 429 once the retries are used up.
    #[error(
        "the Management Activity API answered {call} with HTTP {status} and {}; {advice}",
        body_words(answer)
    )]
    Unexpected {
        /// The operation, as [`ApiClient::send`] was told it.
        call: String,
        /// The answer's HTTP status.
        status: u16,
        /// The body, in at most 200 characters on one line ([`answer_text`]); empty for an empty body.
        answer: String,
        /// "run again later" for a 5xx; for anything else, to check `audience`.
        advice: &'static str,
    },
    /// The request was not sent (or was given up in flight): the run stopped sending requests, after
    /// too many identical failures in a row or at its deadline.
    #[error("{call} was not done: {stop}")]
    Stopped {
        /// The operation, as [`ApiClient::send`] was told it.
        call: String,
        /// Why requests stopped.
        stop: Stop,
    },
    /// A URL refused before anything was sent to it: not https (nor http to loopback), or not on the
    /// `audience` host, so the token would go elsewhere. [`ApiClient::new`] also reports here an
    /// `audience` and `tenant_id` that do not make the feed URL.
    #[error("the service handed back a URL auditsync will not follow: {0}")]
    Insecure(String),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// An answer longer, after decompression, than auditsync reads: a blob over `[sync]
    /// blob_size_limit_mib`, any other answer over [`ANSWER_LIMIT`]. Reading stopped at the limit; the
    /// request is not repeated.
    #[error("{call} is larger than {} after decompression; it was not read further ({advice})", size_text(*limit))]
    TooLarge {
        /// The operation, as [`ApiClient::send`] was told it (`blob {contentId}` for a blob).
        call: String,
        /// The limit, in bytes.
        limit: u64,
        /// What to do about it.
        advice: &'static str,
    },
    /// A 2xx answer that is not what management-api.md §1.2 documents: a body that is not the
    /// expected JSON, a started subscription whose status is not `enabled`, a `NextPageUri` or
    /// `contentUri` that is not a URL, a `contentCreated` that is not a time.
    #[error(
        "the answer to {call} is not what the Management Activity API documents ({reason}); check that \
         `audience` is your cloud's API host, and run again later if it is"
    )]
    Decode {
        /// The operation, as [`ApiClient::send`] was told it (or `blob {contentId}`).
        call: String,
        /// What did not match, with the parser's message.
        reason: String,
    },
}

impl ApiError {
    /// Exit code: everything the service or the network says is a runtime failure.
    pub fn exit_code(&self) -> u8 {
        1
    }

    /// The failure in a few words without the request's own names (no call, no content id, no URL),
    /// so that the failures of many requests can be counted by cause: `HTTP 500 Internal Server Error
    /// "upstream timeout"`, `cannot connect: Connection refused`, `deadline reached (run_deadline = 50m)`.
    pub fn cause(&self) -> String {
        match self {
            ApiError::Service(s) => s.cause(),
            ApiError::Unauthorized { .. } => {
                "HTTP 401 Unauthorized, even with a new token".to_owned()
            }
            ApiError::Unreachable { reason, .. } => reason.clone(),
            ApiError::Unexpected { status, answer, .. } => http_cause(*status, answer),
            ApiError::Stopped { stop, .. } => stop.cause(),
            ApiError::Decode { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }
}

/// `HTTP 500 Internal Server Error "upstream timeout"`, `HTTP 503 Service Unavailable (empty body)`.
fn http_cause(status: u16, answer: &str) -> String {
    let name = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    if answer.is_empty() {
        format!("HTTP {status}{name} (empty body)")
    } else {
        format!("HTTP {status}{name} \"{answer}\"")
    }
}

/// How a message names an answer's body: "an empty body" or `the body "…"`.
fn body_words(answer: &str) -> String {
    if answer.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("the body \"{answer}\"")
    }
}

/// Most characters of a service's answer shown in a message.
const ANSWER_CHARS: usize = 200;

/// A service's answer as one short line for a message: a JSON error as its code and message
/// (`{"error":{"code","message"}}`, or top-level `code`/`message`/`Message`), HTML without its tags,
/// anything else as text; control characters become spaces, runs of spaces one, and at most 200
/// characters are kept (then `…`). Not valid UTF-8 is read lossily.
///
/// Redacted ([`crate::redact::redact`]) before it is shortened: a secret or token the answer quotes is
/// hidden whole, never cut into a prefix that neither the registered values nor the shapes would
/// recognise.
pub fn answer_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = json_error_words(body).unwrap_or_else(|| {
        if text.trim_start().starts_with('<') {
            strip_tags(&text)
        } else {
            text.into_owned()
        }
    });
    // One line first, then hidden, then shortened.
    let line = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = crate::redact::redact(&line);
    match line.char_indices().nth(ANSWER_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.into_owned(),
    }
}

/// `code: message` of a JSON error body, if it is one.
fn json_error_words(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| obj.get(*n).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
    };
    let code = field(&["code", "Code", "error"]);
    let message = field(&["message", "Message", "error_description"]);
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// The text of an HTML page: what is outside its tags.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// An `{"error":{"code":"AF…","message":"…"}}` answer, with the context needed to explain it.
#[derive(Debug)]
pub struct ServiceError {
    /// The answer's HTTP status. The reference gives none per code (management-api.md §3); the one
    /// documented pairing is 403 with AF429 (§2.4).
    pub status: u16,
    /// `error.code`, e.g. `AF20022`; from a body that is not strict JSON, the first `AF` and three or
    /// more digits in it.
    pub code: String,
    /// `error.message`, as the service wrote it; empty when the body was not strict JSON.
    pub message: String,
    /// The operation, as [`ApiClient::send`] was told it.
    pub call: String,
    /// The content type the request was about, if any; named in the explanation.
    pub content_type: Option<String>,
    /// A listing's `startTime` and `endTime` as the request carried them, named when the service
    /// refuses the window (AF20030, AF20055); set by [`ApiClient::content_page`].
    pub window: Option<(String, String)>,
    tenant_id: String,
    client_id: String,
    cloud: Cloud,
}

impl ServiceError {
    /// The answer in a few words without the request's names: `HTTP 500 Internal Server Error, AF50000:
    /// An internal error occurred.`
    pub fn cause(&self) -> String {
        let answer = answer_text(self.message.as_bytes());
        let mut cause = http_cause(self.status, "");
        cause.truncate(cause.len() - " (empty body)".len());
        if answer.is_empty() {
            format!("{cause}, {}", self.code)
        } else {
            format!("{cause}, {}: {answer}", self.code)
        }
    }

    /// The unified audit log is off (or the tenant was never provisioned for it): the service answers
    /// with a .NET exception instead of an AF code (management-api.md §3).
    pub fn audit_log_off(&self) -> bool {
        self.message.contains("DataServiceException") && self.message.contains("does not exist")
    }

    /// Whether trying again may help: throttling and the service's internal errors.
    fn transient(&self) -> bool {
        !self.audit_log_off()
            && (matches!(
                self.code.as_str(),
                "AF429" | "AF50000" | "AF50005" | "AF50006"
            ) || self.status == 429
                || (self.status >= 500 && !self.code.starts_with("AF")))
    }
}

impl ServiceError {
    /// AF20030/AF20055: names the window the request carried and what is wrong with it; the clock is
    /// blamed only when the window itself is well formed (then the API's 7 days, counted on its own
    /// clock, are what refused it).
    fn window_refused(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.message.trim_end_matches('.');
        let Some((start, end)) = &self.window else {
            return write!(
                f,
                "the API refused the time window of {} ({message}); check that this machine's clock is right \
                 (NTP): the API counts its 7 days from its own clock",
                self.call
            );
        };
        let (s, e) = (crate::time::parse_time(start), crate::time::parse_time(end));
        let call = &self.call;
        match (s, e) {
            (Some(s), Some(e)) if s >= e => write!(
                f,
                "the API refused {call} from startTime {start} to endTime {end} ({message}): the start is not \
                 before the end (the API reads whole seconds); this is a fault in auditsync, please report it \
                 with this line; meanwhile give --from and --to in whole seconds"
            ),
            (Some(s), Some(e)) if e - s > chrono::TimeDelta::hours(24) => write!(
                f,
                "the API refused {call} from startTime {start} to endTime {end} ({message}): the two are more \
                 than 24 hours apart; set time_interval to at most 24 hour"
            ),
            _ => write!(
                f,
                "the API refused {call} from startTime {start} to endTime {end} ({message}): by the API's clock \
                 the start is more than 7 days ago; check that this machine's clock is right (NTP), since the \
                 API counts its 7 days from its own clock"
            ),
        }
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, c) = (&self.tenant_id, &self.client_id);
        let ct = self.content_type.as_deref().unwrap_or("this content type");
        if self.audit_log_off() {
            return write!(
                f,
                "the unified audit log is not turned on for tenant {t}: turn on auditing in the Microsoft \
                 Purview portal (Audit > Start recording user and admin activity) or with \
                 `Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true`, wait up to an hour, then run \
                 `auditsync subscribe start` again"
            );
        }
        match self.code.as_str() {
            "AF10001" => write!(
                f,
                "app {c} lacks the ActivityFeed.Read permission: in Entra admin center > App registrations > API \
                 permissions add Office 365 Management APIs > Application permissions > ActivityFeed.Read, grant \
                 admin consent, and try again in a few minutes"
            ),
            "AF20010" => write!(
                f,
                "the token was issued for another tenant than tenant_id {t}; use the tenant_id where app {c} is \
                 registered and consented"
            ),
            "AF20011" | "AF20012" => write!(
                f,
                "the Management Activity API does not know tenant {t} ({}); check tenant_id and that cloud = \
                 \"{}\" is the tenant's cloud",
                self.message,
                self.cloud.name()
            ),
            "AF20022" => write!(
                f,
                "there is no subscription for {ct}: run `auditsync subscribe start` (the first content can take up \
                 to 12 hours to appear)"
            ),
            "AF20023" => write!(
                f,
                "the subscription for {ct} is disabled ({}): run `auditsync subscribe start` to enable it again \
                 (content published while it was off cannot be fetched)",
                self.message.trim_end_matches('.')
            ),
            "AF20030" | "AF20055" => self.window_refused(f),
            "AF20051" => write!(
                f,
                "{}: the API keeps content for 7 days; use `auditsync import` with a Purview export for older data",
                self.message.trim_end_matches('.')
            ),
            "AF429" => write!(
                f,
                "the API kept throttling {} (AF429) after several retries; run again later, and check that no \
                 other tool is using the tenant's quota",
                self.call
            ),
            code if code.starts_with("AF5") || self.status >= 500 => write!(
                f,
                "the Management Activity API kept failing {} with an internal error (HTTP {}, {code}{}); run \
                 again later",
                self.call,
                self.status,
                Some(answer_text(self.message.as_bytes()))
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            code => write!(
                f,
                "the Management Activity API refused {} (HTTP {}, {code}): {}",
                self.call, self.status, self.message
            ),
        }?;
        if self.code.starts_with("AF") && self.code != "AF429" && !self.code.starts_with("AF5") {
            write!(f, " [{}]", self.code)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
}

/// The most auditsync reads of any answer but a blob (a listing page, a subscription list), after
/// decompression: 16 MiB. A listing entry is about 300 bytes; pages of the real service hold hundreds.
pub const ANSWER_LIMIT: u64 = 16 << 20;
/// The most auditsync reads of an error answer; the rest is dropped (its start says what went wrong).
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Why one exchange gave no answer to use.
enum Failure {
    /// No answer, or one cut off: retried.
    Net(String),
    /// A 2xx body over the limit: not retried.
    TooLarge,
}

/// A successful answer: headers and the whole body.
pub struct Answer {
    /// The response headers (`NextPageUri` is read from here).
    pub headers: HeaderMap,
    /// The whole body, as received (reqwest has undone any gzip).
    pub body: bytes::Bytes,
}

/// The Management Activity API client for one tenant.
pub struct ApiClient {
    http: Http,
    auth: TokenProvider,
    /// `{audience}/api/v1.0/{tenant}/activity/feed/`
    feed: Url,
    publisher: String,
    tenant_id: String,
    client_id: String,
    cloud: Cloud,
    audience: Url,
    pacer: Pacer,
    breaker: Breaker,
    counts: Counts,
    /// `[sync] blob_size_limit_mib`, in bytes.
    blob_limit: u64,
}

/// Requests sent, refused as throttled, and sent again, since the client was made (the Management
/// API's and the Graph API's clients alike).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) sent: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) retried: AtomicU64,
}

impl Counts {
    /// The counts so far.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            sent: self.sent.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }
}

/// What [`ApiClient::requests`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// HTTP requests sent to the API, every attempt counted (token requests are not).
    pub sent: u64,
    /// Answers that were throttling: HTTP 429, or an AF429 error (HTTP 403, management-api.md §2.4).
    pub throttled: u64,
    /// Attempts that repeated a request after a network failure, throttling or a transient error (a
    /// repeat with a new token after a 401 is not counted).
    pub retried: u64,
}

impl RequestCounts {
    /// The requests made after `earlier` was read.
    pub fn since(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            sent: self.sent.saturating_sub(earlier.sent),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            retried: self.retried.saturating_sub(earlier.retried),
        }
    }
}

impl ApiClient {
    /// A client for the tenant, cloud, hosts and `publisher_identifier` of `settings`, authenticating
    /// with `secret`. Requests go to `{audience}/api/v1.0/{tenant_id}/activity/feed/` (management-api.md
    /// §1.1), paced to `sync.requests_per_minute` by a pacer this client owns. Nothing is sent until
    /// the first call.
    ///
    /// # Errors
    /// [`ApiError::Net`] when the HTTP client cannot be set up, [`ApiError::Auth`] when no token URL
    /// can be made, [`ApiError::Insecure`] when no feed URL can be made.
    pub fn new(settings: &Settings, secret: SecretString) -> Result<ApiClient, ApiError> {
        let http = Http::new(settings.sync.stall_timeout)?;
        let auth = TokenProvider::new(
            Credentials {
                tenant_id: settings.tenant.tenant_id.clone(),
                client_id: settings.tenant.client_id.clone(),
                secret,
                cloud: settings.tenant.cloud,
                authority: settings.tenant.authority.clone(),
                audience: settings.tenant.audience.clone(),
                version: settings.tenant.token_version,
            },
            http.clone(),
        )?;
        let base = settings.tenant.audience.as_str().trim_end_matches('/');
        let feed = Url::parse(&format!(
            "{base}/api/v1.0/{}/activity/feed/",
            settings.tenant.tenant_id
        ))
        .map_err(|e| ApiError::Insecure(e.to_string()))?;
        Ok(ApiClient {
            http,
            auth,
            feed,
            publisher: settings.tenant.publisher_identifier.clone(),
            tenant_id: settings.tenant.tenant_id.clone(),
            client_id: settings.tenant.client_id.clone(),
            cloud: settings.tenant.cloud,
            audience: settings.tenant.audience.clone(),
            pacer: Pacer::new(settings.sync.requests_per_minute),
            breaker: Breaker::new(settings.sync.same_failure_limit),
            counts: Counts::default(),
            blob_limit: u64::from(settings.sync.blob_size_limit_mib) << 20,
        })
    }

    /// A token for the API (from the cache, or new), for `doctor`.
    ///
    /// # Errors
    /// As [`TokenProvider::token`].
    pub async fn token(&self) -> Result<crate::auth::Token, AuthError> {
        self.auth.token().await
    }

    /// From now, the client sends requests for at most `after` (`run_deadline`): then requests in
    /// flight are given up and every request fails at once with [`ApiError::Stopped`].
    pub fn set_deadline(&self, after: Duration) {
        self.breaker.set_deadline(after);
    }

    /// Why the client stopped sending requests, if it did: too many identical failures in a row
    /// (`same_failure_limit`), or the deadline.
    pub fn stopped(&self) -> Option<Stop> {
        self.breaker.stop()
    }

    /// How many API requests this client sent, how many were throttled, how many were retries.
    pub fn requests(&self) -> RequestCounts {
        self.counts.snapshot()
    }

    /// A URL under the feed root with the given query pairs (PublisherIdentifier is added by `send`).
    fn feed_url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.feed.join(path).unwrap_or_else(|_| self.feed.clone());
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request and returns the answer when it is a 2xx. Adds `PublisherIdentifier` when the
    /// URL lacks it, renews the token once on 401, and retries throttling, 5xx and network failures
    /// with back-off. `call` names the operation in messages ("subscriptions/start for Audit.General").
    ///
    /// Failures count towards the client's stop ([`Stop`]): once it has stopped, or past its deadline,
    /// nothing is sent.
    ///
    /// # Errors
    /// [`ApiError::Insecure`] for a URL that is not https (or loopback http) or not on the API host, before
    /// anything is sent; [`ApiError::Stopped`] once the client has stopped; otherwise the last answer or
    /// failure once retrying cannot help.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        call: &str,
        content_type: Option<&str>,
    ) -> Result<Answer, ApiError> {
        self.send_limited(method, url, call, content_type, ANSWER_LIMIT)
            .await
    }

    /// [`ApiClient::send`] with the body of a 2xx answer bounded to `limit` bytes after decompression
    /// ([`ApiError::TooLarge`] past it, not retried).
    ///
    /// # Errors
    /// As [`ApiClient::send`], and [`ApiError::TooLarge`].
    pub async fn send_limited(
        &self,
        method: Method,
        url: Url,
        call: &str,
        content_type: Option<&str>,
        limit: u64,
    ) -> Result<Answer, ApiError> {
        let url = self.prepare(url)?;
        let stopped = |stop| ApiError::Stopped {
            call: call.to_owned(),
            stop,
        };
        if let Some(stop) = self.breaker.stopped() {
            return Err(stopped(stop));
        }
        let span = tracing::debug_span!("request", call, attempt = tracing::field::Empty);
        let attempts = self
            .attempts(method, url, call, content_type, limit)
            .instrument(span);
        match self.breaker.deadline() {
            Some(at) => tokio::time::timeout_at(at, attempts)
                .await
                .unwrap_or_else(|_| Err(stopped(self.breaker.deadline_reached()))),
            None => attempts.await,
        }
    }

    /// Checks where a URL goes before any token is attached, and adds `PublisherIdentifier`.
    fn prepare(&self, mut url: Url) -> Result<Url, ApiError> {
        check_transport(&url).map_err(|e| ApiError::Insecure(e.to_string()))?;
        // The token goes only to the API host it was issued for, whatever URL the service hands back
        // (on this machine, `localhost` and `127.0.0.1` are the same host).
        if !same_origin(&url, &self.audience) {
            return Err(ApiError::Insecure(format!(
                "{} is not on the API host {} (the `audience`); auditsync does not send its token elsewhere",
                redact_query(&url),
                self.audience.host_str().unwrap_or_default()
            )));
        }
        if !url
            .query_pairs()
            .any(|(k, _)| k.eq_ignore_ascii_case("PublisherIdentifier"))
        {
            url.query_pairs_mut()
                .append_pair("PublisherIdentifier", &self.publisher);
        }
        Ok(url)
    }

    /// The retry loop of [`ApiClient::send`].
    async fn attempts(
        &self,
        method: Method,
        url: Url,
        call: &str,
        content_type: Option<&str>,
        limit: u64,
    ) -> Result<Answer, ApiError> {
        // Set when the token was renewed because of a 401: a second 401 in a row means the service
        // refuses any token of ours, not that one was stale.
        let mut renewed: Option<crate::auth::Token> = None;
        let mut backoff = Backoff::new();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracing::Span::current().record("attempt", attempt);
            let ticket = self.pacer.admit().await;
            // The client may have stopped while this request waited for its turn.
            if let Some(stop) = self.breaker.stopped() {
                return Err(ApiError::Stopped {
                    call: call.to_owned(),
                    stop,
                });
            }
            // Each attempt asks the cache, after any wait at the pacer: the token may be near its end.
            let (token, fresh) = match renewed.take() {
                Some(t) => (t, true),
                None => (self.auth.token().await?, false),
            };
            let (status, headers, body) = match self.exchange(&method, &url, &token, limit).await {
                Ok(answer) => answer,
                Err(Failure::TooLarge) => {
                    ticket.answered(Answered::Other);
                    return Err(too_large(call, limit));
                }
                Err(Failure::Net(reason)) => {
                    ticket.answered(Answered::Other);
                    match self.again(&mut backoff, &reason, None, call) {
                        Some(delay) => {
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => {
                            return Err(ApiError::Unreachable {
                                call: call.to_owned(),
                                url: redact_query(&url),
                                reason,
                            });
                        }
                    }
                }
            };
            if status.is_success() {
                ticket.answered(Answered::Other);
                self.breaker.answered();
                tracing::trace!(%status, bytes = body.len(), "answered");
                return Ok(Answer { headers, body });
            }
            let hint = retry_after(&headers);
            let service = self.service_error(status, &body, call, content_type);
            let throttled = status == StatusCode::TOO_MANY_REQUESTS
                || service.as_ref().is_some_and(|s| s.code == "AF429");
            ticket.answered(if throttled {
                self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                Answered::Throttled(hint)
            } else {
                Answered::Other
            });
            if status == StatusCode::UNAUTHORIZED
                && service.as_ref().is_none_or(|s| s.code != "AF10001")
            {
                if fresh {
                    return Err(ApiError::Unauthorized {
                        call: call.to_owned(),
                        audience: self.audience.as_str().trim_end_matches('/').to_owned(),
                    });
                }
                renewed = Some(self.auth.renew(&token).await?);
                continue;
            }
            if throttled {
                // A throttled request waits at the pacer's gate with every other request; its own
                // budget only counts how often it was refused. Expected under load; the summary
                // counts them.
                if !backoff.throttled() {
                    return Err(refusal(service, status, &body, call));
                }
                self.counts.retried.fetch_add(1, Ordering::Relaxed);
                let code = service.as_ref().map(|s| s.code.as_str()).unwrap_or("");
                tracing::debug!("{call}: throttled (HTTP {status} {code}); waiting with the run");
                continue;
            }
            let error = refusal(service, status, &body, call);
            let transient = match &error {
                ApiError::Service(s) => s.transient(),
                _ => status.is_server_error(),
            };
            if !transient {
                // An API error about this request is an answer; a bare refusal (a proxy's 403, a
                // 404 page) is a failure that may repeat for every request.
                match &error {
                    ApiError::Service(_) => self.breaker.answered(),
                    _ => {
                        self.failure(&error.cause(), call, false);
                    }
                }
                return Err(error);
            }
            match self.again(&mut backoff, &error.cause(), hint, call) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    /// After a failed attempt: the wait before trying again, or `None` when the request's attempts
    /// are used up or the client has stopped. Counted as a retry when there is one.
    fn again(
        &self,
        backoff: &mut Backoff,
        cause: &str,
        hint: Option<Duration>,
        call: &str,
    ) -> Option<Duration> {
        let delay = backoff.next(hint);
        let stopped = self.failure(cause, call, delay.is_some());
        let delay = delay.filter(|_| !stopped)?;
        self.counts.retried.fetch_add(1, Ordering::Relaxed);
        Some(delay)
    }

    /// Counts a failure towards the client's stop and logs it: a cause this client has not seen before
    /// as a warning, a repeat only at -v (an outage would otherwise print one line per attempt), and
    /// the stop once. `retry`: whether the request has attempts left. Returns whether the client has
    /// stopped.
    fn failure(&self, cause: &str, call: &str, retry: bool) -> bool {
        let seen = self.breaker.failed(cause);
        let stop = self.breaker.stopped();
        let next = if retry && stop.is_none() {
            "; trying again"
        } else {
            ""
        };
        if seen.first {
            tracing::warn!("{call}: {cause}{next} (the same failure again is logged at -v only)");
        } else {
            tracing::debug!("{call}: {cause}{next}");
        }
        // The summary says it; here for -v, at the moment it happens.
        if seen.tripped
            && let Some(stop) = &stop
        {
            tracing::debug!("{stop}");
        }
        stop.is_some()
    }

    /// One HTTP exchange: the status, headers and body (a 2xx body whole up to `limit` bytes, an error
    /// body's first [`ERROR_BODY_LIMIT`] bytes), or why there was none.
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        token: &crate::auth::Token,
        limit: u64,
    ) -> Result<Exchanged, Failure> {
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        let mut req = self.http.client().request(method.clone(), url.clone());
        req = req.header(AUTHORIZATION, token.header());
        if method == Method::POST {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json; utf-8")
                .body("");
        }
        let req = req
            .build()
            .map_err(|e| Failure::Net(crate::net::net_reason(&e)))?;
        self.http
            .exchange(req, limit, ERROR_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => Failure::TooLarge,
                BodyError::Net(reason) => Failure::Net(reason),
            })
    }

    /// The service's error body as a [`ServiceError`] with what is needed to explain it, if the body is
    /// one.
    fn service_error(
        &self,
        status: StatusCode,
        body: &[u8],
        call: &str,
        content_type: Option<&str>,
    ) -> Option<ServiceError> {
        error_body(body).map(|(code, message)| ServiceError {
            status: status.as_u16(),
            code,
            message,
            call: call.to_owned(),
            content_type: content_type.map(str::to_owned),
            window: None,
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            cloud: self.cloud,
        })
    }
}

/// The error for an answer that retrying cannot fix (or that kept failing).
fn refusal(service: Option<ServiceError>, status: StatusCode, body: &[u8], call: &str) -> ApiError {
    match service {
        Some(s) => ApiError::Service(Box::new(s)),
        None => ApiError::Unexpected {
            call: call.to_owned(),
            status: status.as_u16(),
            answer: answer_text(body),
            advice: if status.is_server_error() {
                "run again later"
            } else {
                "check that `audience` is your cloud's Management API host (see `cloud`)"
            },
        },
    }
}

/// The code and message of an error answer. The documented shape is `{"error":{"code","message"}}`;
/// the troubleshooting guide also shows throttling answers in single-quoted pseudo-JSON, so failing a
/// strict parse, an `AF` code anywhere in the body is taken.
fn error_body(body: &[u8]) -> Option<(String, String)> {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
        return Some((b.error.code, b.error.message));
    }
    let text = String::from_utf8_lossy(body);
    text.match_indices("AF").find_map(|(at, _)| {
        let digits: String = text[at + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (digits.len() >= 3).then(|| (format!("AF{digits}"), String::new()))
    })
}

/// A 2xx answer larger than `limit` bytes after decompression: not retried (it would be as large
/// again), with the advice that fits the call.
fn too_large(call: &str, limit: u64) -> ApiError {
    ApiError::TooLarge {
        call: call.to_owned(),
        limit,
        advice: if call.starts_with("blob ") {
            "no real blob is this large; if the service really sends such blobs, raise [sync] \
             blob_size_limit_mib"
        } else {
            "check that `audience` is your cloud's Management API host"
        },
    }
}
#[cfg(test)]
mod tests {
    use super::{ApiError, answer_text, error_body};

    #[test]
    fn answers_are_shown_short_on_one_line_without_control_characters() {
        assert_eq!(answer_text(b""), "");
        assert_eq!(
            answer_text(b"upstream timeout\r\n\tat Gateway\x1b[31m.Forward()\x07"),
            "upstream timeout at Gateway [31m.Forward()"
        );
        assert_eq!(
            answer_text(br#"{"error":{"code":"AF50000","message":"An internal error occurred."}}"#),
            "AF50000: An internal error occurred."
        );
        assert_eq!(
            answer_text(br#"{"Message":"Authorization has been denied for this request."}"#),
            "Authorization has been denied for this request."
        );
        assert_eq!(
            answer_text(b"<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD>\r\n<BODY><h2>Oops</h2></BODY></HTML>"),
            "Service Unavailable Oops"
        );
        let long = answer_text("é".repeat(5000).as_bytes());
        assert_eq!(long.chars().count(), 201);
        assert!(long.ends_with('…'));
        assert_eq!(answer_text(b"\xff\xfebad"), "\u{fffd}\u{fffd}bad");
    }

    #[test]
    fn a_secret_in_an_answer_is_hidden_before_the_answer_is_shortened() {
        // A registered token that the 200-character cut would split: no prefix of it is shown.
        let token = format!("Tok3n{}", "QrStUvWx".repeat(40));
        crate::redact::register(&token);
        for body in [
            format!("{}Authorization: {token} trailing", "x ".repeat(80)),
            format!("{}Authorization: Bearer {token}", "x ".repeat(80)),
            format!("{{\"Message\":\"{}echo {token}\"}}", "y ".repeat(85)),
        ] {
            let answer = answer_text(body.as_bytes());
            assert!(!answer.contains("Tok3n"), "{answer}");
            assert!(!answer.contains("QrStUvWx"), "{answer}");
            assert!(answer.contains(crate::redact::REDACTED), "{answer}");
        }
    }

    #[test]
    fn a_cause_names_the_answer_not_the_request() {
        let a = ApiError::Unexpected {
            call: "blob 1".into(),
            status: 500,
            answer: answer_text(b"upstream timeout"),
            advice: "run again later",
        };
        let b = ApiError::Unexpected {
            call: "blob 2".into(),
            status: 500,
            answer: answer_text(b"upstream timeout\n"),
            advice: "run again later",
        };
        assert_eq!(a.cause(), b.cause());
        assert_eq!(
            a.cause(),
            "HTTP 500 Internal Server Error \"upstream timeout\""
        );
        assert!(
            a.to_string().contains("the body \"upstream timeout\""),
            "{a}"
        );
        let empty = ApiError::Unexpected {
            call: "x".into(),
            status: 503,
            answer: String::new(),
            advice: "run again later",
        };
        assert_eq!(empty.cause(), "HTTP 503 Service Unavailable (empty body)");
    }

    #[test]
    fn error_bodies_strict_and_loose() {
        assert_eq!(
            error_body(br#"{"error":{"code":"AF20022","message":"No subscription found."}}"#),
            Some(("AF20022".into(), "No subscription found.".into()))
        );
        // As the troubleshooting guide prints a throttling answer.
        let loose = b"{'error':{'code':'AF429','message':'Too many requests. Method=GetBlob, PublisherId=0'}}";
        assert_eq!(error_body(loose).map(|e| e.0), Some("AF429".into()));
        assert_eq!(error_body(b"<html>AFTER 5 tries</html>"), None);
        assert_eq!(
            error_body(br#"{"Message":"Authorization has been denied for this request."}"#),
            None
        );
    }
}
