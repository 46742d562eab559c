//! The Microsoft Graph audit log query API (graph-audit-api.md): create a query over a window, poll
//! it, read its records page by page, list the tenant's queries. Its own token (same app
//! registration, resource = the Graph root), its own pacing and stop rule, the same HTTP client rules
//! as the Management API's client: the token only to the endpoint's host, every URL the service hands
//! back (`@odata.nextLink`) through the https-or-loopback rule and a same-origin check, answers read
//! to [`ANSWER_LIMIT`] at most, 5xx and network failures retried, 401 answered by one renewal.
//!
//! Graph's error answers are explained by [`GraphError`], each with its fix (graph-audit-api.md,
//! "Permissions and the errors admins meet").

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tracing::Instrument;
use url::Url;

use super::breaker::{Breaker, Stop};
use super::pacer::{Answered, Pacer};
use super::{ANSWER_LIMIT, Counts, ERROR_BODY_LIMIT, RequestCounts, answer_text};
use crate::auth::{AuthError, Credentials, Token, TokenProvider};
use crate::config::{ConfigError, Settings};
use crate::net::{
    BodyError, Http, NetError, check_transport, redact_query, same_origin, size_text,
};
use crate::retry::{Backoff, retry_after};

/// The longest `Retry-After` a refused query submission is waited out once (longer: the queue is
/// full, and the caller defers the window to a later moment or run).
pub const CREATE_RETRY_AFTER_MAX: Duration = Duration::from_secs(60);
/// The most pages [`GraphClient::list`] follows (a service that hands back a link forever).
const LIST_PAGES_MAX: usize = 1000;

/// What went wrong with the Graph audit log query API. Every message names the fix; none holds a
/// secret or a token (texts from the service are redacted, [`answer_text`]).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// HTTP 429 still after the retries (a query submission is waited out once at most, and only for
    /// a `Retry-After` of [`CREATE_RETRY_AFTER_MAX`] or less): the tenant's queue or daily submissions
    /// are full. The caller defers what is left.
    #[error(
        "Microsoft Graph throttled {call} (HTTP 429{}): the tenant's audit log queries are at their limit \
         (queries queued or running, or submissions in 24 hours, for all apps together); what is left is \
         deferred: run again later",
        retry_after.map(|d| format!(", Retry-After {} s", d.as_secs())).unwrap_or_default()
    )]
    Throttled {
        /// The operation (`create query`, `get query …`, `records of query …`, `list queries`).
        call: String,
        /// The last answer's `Retry-After`, if it had one.
        retry_after: Option<Duration>,
    },
    /// HTTP 403, or `App:<client id> dont have any permissions` (application use), or
    /// `User:<upn> dont have any permissions` (delegated use).
    #[error("{}", forbidden_text(call, client_id, user.as_deref(), detail))]
    Forbidden {
        /// The operation.
        call: String,
        /// The app registration's client id.
        client_id: String,
        /// The account named by a `User:<upn> dont have any permissions` answer (delegated use).
        user: Option<String>,
        /// The service's answer in one short line, redacted.
        detail: String,
    },
    /// An answer naming `AuditingDisabledTenant`: unified audit logging is off in the tenant.
    #[error(
        "Microsoft Graph refused {call}: unified audit logging is turned off in tenant {tenant_id} \
         (AuditingDisabledTenant). Turn it on in the Microsoft Purview portal (Audit > Start recording user \
         and admin activity) or in Exchange Online PowerShell with `Set-AdminAuditLogConfig \
         -UnifiedAuditLogIngestionEnabled $true`; it can take up to an hour to apply, and only activity \
         after that is recorded"
    )]
    AuditingDisabled {
        /// The operation.
        call: String,
        /// The tenant.
        tenant_id: String,
    },
    /// `AADSTS7000229` from the Graph token request: the app has no service principal in the tenant.
    #[error(
        "Entra ID has no service principal for app {client_id} in tenant {tenant_id} (AADSTS7000229): admin \
         consent was never granted in this tenant. An admin of tenant {tenant_id} grants it in Entra admin \
         center > App registrations > (the app) > API permissions > Grant admin consent (add Microsoft Graph > \
         Application permissions > AuditLogsQuery.Read.All first), or opens \
         {authority}/{tenant_id}/adminconsent?client_id={client_id}"
    )]
    NoServicePrincipal {
        /// The app registration's client id.
        client_id: String,
        /// The tenant.
        tenant_id: String,
        /// The login host (`authority`), without a trailing `/`.
        authority: String,
    },
    /// `Resource not found for the segment 'auditLog'`: the API does not exist at this Graph host.
    #[error(
        "Microsoft Graph at {endpoint} answered {call} with \"Resource not found for the segment 'auditLog'\": \
         the audit log query API does not exist there. It is only in Microsoft's global service \
         (https://graph.microsoft.com), not in GCC High, DoD or China: check cloud and [graph] endpoint; in \
         those clouds load older launches from a Purview audit search CSV export with `auditsync import`"
    )]
    WrongCloud {
        /// The operation.
        call: String,
        /// The Graph root used.
        endpoint: String,
    },
    /// `Resource not found for the segment 'activity'`: a Management Activity API path reached the
    /// Graph host, or the Graph endpoint points at the Management API.
    #[error(
        "the service at {endpoint} answered {call} with \"Resource not found for the segment 'activity'\": a \
         Management Activity API request reached Microsoft Graph, or [graph] endpoint points at the wrong \
         service; [graph] endpoint must be the Graph root (https://graph.microsoft.com, no path) and \
         `audience` the Management API's host (e.g. https://manage.office.com)"
    )]
    WrongAudience {
        /// The operation.
        call: String,
        /// The Graph root used.
        endpoint: String,
    },
    /// HTTP 400 `Invalid request data` (or another 400): the query's filters were refused.
    #[error(
        "Microsoft Graph refused {call} as an invalid request ({message}); the query's filters were not \
         accepted (filterEndDateTime must be after filterStartDateTime, times in UTC): if --from and --to are \
         right, this is a fault in auditsync: please report it with this line"
    )]
    InvalidRequest {
        /// The operation.
        call: String,
        /// The service's answer in one short line, redacted.
        message: String,
    },
    /// HTTP 404 on a query: it is gone (expired or deleted). The caller submits its window again.
    #[error(
        "Microsoft Graph no longer knows audit log query {query_id} (HTTP 404: expired or deleted); its window \
         is submitted again"
    )]
    NotFound {
        /// The query's id.
        query_id: String,
    },
    /// HTTP 401 to a token issued after the previous 401: Graph refuses any token of this app.
    #[error(
        "Microsoft Graph refused the token for {call} (HTTP 401) even after a new one was issued ({detail}); \
         the token is asked for the resource {endpoint}: check that [graph] endpoint is the Graph root \
         (https://graph.microsoft.com), that tenant_id is the tenant the app is consented in, and that the \
         app has Microsoft Graph > AuditLogsQuery.Read.All with admin consent"
    )]
    Unauthorized {
        /// The operation.
        call: String,
        /// The Graph root, the token's resource.
        endpoint: String,
        /// The service's answer in one short line, redacted.
        detail: String,
    },
    /// Any other error answer, still after the retries for a 5xx.
    #[error(
        "Microsoft Graph answered {call} with HTTP {status}{}{}; {}",
        if code.is_empty() { String::new() } else { format!(", {code}") },
        if message.is_empty() { String::new() } else { format!(": {message}") },
        if *status >= 500 { "run again later" } else { "check [graph] endpoint and version" }
    )]
    Service {
        /// The operation.
        call: String,
        /// The HTTP status.
        status: u16,
        /// `error.code`, empty when the body has none.
        code: String,
        /// `error.message` (or the body) in one short line, redacted.
        message: String,
    },
    /// No answer (DNS, connection, TLS, timeout, a cut body), still after the retries.
    #[error(
        "could not reach Microsoft Graph for {call} ({url}): {reason}; check the network and [graph] endpoint"
    )]
    Unreachable {
        /// The operation.
        call: String,
        /// The URL without its query.
        url: String,
        /// The failure in a few words.
        reason: String,
    },
    /// The configuration refuses the Graph API here (gcc-high, dod, `[graph] enabled = false`): exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// No Graph token could be had (other than [`GraphError::NoServicePrincipal`]).
    #[error(transparent)]
    Auth(AuthError),
    /// A URL refused before anything was sent to it: not https (nor http to loopback), or not on the
    /// endpoint's host (the token would go elsewhere).
    #[error("Microsoft Graph handed back a URL auditsync will not follow: {0}")]
    Insecure(String),
    /// The run stopped sending requests (too many identical failures, or its deadline).
    #[error("{call} was not done: {stop}")]
    Stopped {
        /// The operation.
        call: String,
        /// Why requests stopped.
        stop: Stop,
    },
    /// An answer over [`ANSWER_LIMIT`] after decompression; not read further, not repeated.
    #[error(
        "the answer to {call} is larger than {} after decompression; it was not read further (lower [graph] \
         page_size)",
        size_text(*limit)
    )]
    TooLarge {
        /// The operation.
        call: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A 2xx answer that is not what the Graph reference documents.
    #[error(
        "the answer to {call} is not what the Graph audit log query API documents ({reason}); check [graph] \
         endpoint and version, and run again later"
    )]
    Malformed {
        /// The operation.
        call: String,
        /// What did not match.
        reason: String,
    },
}

impl GraphError {
    /// The exit code: 2 when the configuration is what is wrong (the cloud or the endpoint), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            GraphError::WrongCloud { .. } | GraphError::WrongAudience { .. } => 2,
            GraphError::Config(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// Whether a later attempt may succeed without anyone changing anything: throttling, the
    /// service's internal errors, the network, a stop of this run.
    pub fn transient(&self) -> bool {
        match self {
            GraphError::Throttled { .. }
            | GraphError::Unreachable { .. }
            | GraphError::Stopped { .. } => true,
            GraphError::Service { status, .. } => *status >= 500,
            GraphError::Auth(e) => matches!(
                e,
                AuthError::Unreachable { .. } | AuthError::Unavailable { .. }
            ),
            _ => false,
        }
    }

    /// The failure in a few words without the request's names, for counting causes.
    fn cause(&self) -> String {
        match self {
            GraphError::Unreachable { reason, .. } => reason.clone(),
            GraphError::Service {
                status,
                code,
                message,
                ..
            } => format!("HTTP {status} {code} {message}"),
            other => other.to_string(),
        }
    }
}

/// The explanation of a permission refusal.
fn forbidden_text(call: &str, client_id: &str, user: Option<&str>, detail: &str) -> String {
    let said = if detail.is_empty() {
        String::new()
    } else {
        format!(" (\"{detail}\")")
    };
    match user {
        Some(upn) => format!(
            "Microsoft Graph refused {call}: the signed-in account {upn} may not search the audit log{said}. \
             Add it to a Microsoft Purview role group with the Audit Reader or Audit Manager role \
             (Purview portal > Settings > Roles and scopes > Role groups), or use the app's own permission \
             (client credentials) instead"
        ),
        None => format!(
            "Microsoft Graph refused {call} (HTTP 403){said}: app {client_id} lacks the Microsoft Graph \
             application permission AuditLogsQuery.Read.All or its admin consent. In Entra admin center > App \
             registrations > (the app) > API permissions add Microsoft Graph > Application permissions > \
             AuditLogsQuery.Read.All (the older AuditLog.Read.All does not suffice) and grant admin consent; \
             if you just did, consent can take a while to propagate: wait some minutes and run again"
        ),
    }
}

/// A query to create: one window, filtered on operations (graph-audit-api.md: filter on operation,
/// not record type; no service filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuery {
    /// `displayName`: `auditsync {purpose} {start}/{end}`, how a resumed run finds the query again.
    pub display_name: String,
    /// `filterStartDateTime`, inclusive.
    pub start: DateTime<Utc>,
    /// `filterEndDateTime`, exclusive.
    pub end: DateTime<Utc>,
    /// `operationFilters` (e.g. `LaunchPowerApp`); empty: the key is left out.
    pub operations: Vec<String>,
}

impl NewQuery {
    /// The `displayName` of a window's query: `auditsync {purpose} {start}/{end}`, the times in RFC
    /// 3339 UTC whole seconds (`auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z`); how a
    /// resumed run recognises its query in [`GraphClient::list`].
    pub fn display_name(purpose: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        format!(
            "auditsync {purpose} {}/{}",
            crate::time::ts(start),
            crate::time::ts(end)
        )
    }

    /// The POST body: `displayName`, `filterStartDateTime`, `filterEndDateTime` (RFC 3339 UTC with
    /// `Z`, whole seconds) and `operationFilters`; nothing else.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "displayName": self.display_name,
            "filterStartDateTime": crate::time::ts(self.start),
            "filterEndDateTime": crate::time::ts(self.end),
        });
        if !self.operations.is_empty() {
            body["operationFilters"] = serde_json::json!(self.operations);
        }
        body
    }
}

/// A query's status (`status` of `auditLogQuery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    /// Queued.
    NotStarted,
    /// Searching.
    Running,
    /// Done: its records can be read (it may still be truncated: [`QueryInfo::limit_exceeded`]).
    Succeeded,
    /// Failed: not usable.
    Failed,
    /// Cancelled: not usable.
    Cancelled,
    /// Any other value (`unknownFutureValue`, a new one, or none: empty), as served.
    Other(String),
}

impl QueryStatus {
    /// The status as the service spells it.
    pub fn parse(s: &str) -> QueryStatus {
        match s {
            "notStarted" => QueryStatus::NotStarted,
            "running" => QueryStatus::Running,
            "succeeded" => QueryStatus::Succeeded,
            "failed" => QueryStatus::Failed,
            "cancelled" => QueryStatus::Cancelled,
            other => match other.to_ascii_lowercase().as_str() {
                "notstarted" => QueryStatus::NotStarted,
                "running" => QueryStatus::Running,
                "succeeded" => QueryStatus::Succeeded,
                "failed" => QueryStatus::Failed,
                "cancelled" | "canceled" => QueryStatus::Cancelled,
                _ => QueryStatus::Other(other.to_owned()),
            },
        }
    }

    /// The status as the service spells it (for the ledger's `service_status`).
    pub fn as_str(&self) -> &str {
        match self {
            QueryStatus::NotStarted => "notStarted",
            QueryStatus::Running => "running",
            QueryStatus::Succeeded => "succeeded",
            QueryStatus::Failed => "failed",
            QueryStatus::Cancelled => "cancelled",
            QueryStatus::Other(s) => s,
        }
    }
}

/// A query as the service describes it. Unknown fields are ignored; every field but `id` may be
/// missing (beta and older v1.0 do not report the record cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    /// `id`.
    pub id: String,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `status`.
    pub status: QueryStatus,
    /// `filterStartDateTime`.
    pub filter_start: Option<DateTime<Utc>>,
    /// `filterEndDateTime`.
    pub filter_end: Option<DateTime<Utc>>,
    /// `createdDateTime` (served by some versions; not in every reference page).
    pub created: Option<DateTime<Utc>>,
    /// `approximateReturnedRecordCount` (v1.0 since 2026-09).
    pub approximate_count: Option<u64>,
    /// `recordCountLimit` (v1.0 since 2026-09).
    pub record_count_limit: Option<u64>,
    /// `isRecordCountLimitExceeded`: the query succeeded with only part of its records; false when
    /// absent.
    pub limit_exceeded: bool,
}

/// One page of a query's records.
#[derive(Debug)]
pub struct RecordsPage {
    /// The page's records, in the order served.
    pub records: Vec<GraphRecord>,
    /// `@odata.nextLink`, checked (https or loopback, the endpoint's host); `None` on the last page.
    pub next: Option<Url>,
}

/// One `auditLogRecord`: only what auditsync keeps. Other wrapper fields are ignored.
#[derive(Debug, Deserialize)]
pub struct GraphRecord {
    /// The wrapper's `id` (whether it equals `auditData.Id` is not documented).
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `auditData`: the original audit record, its exact text as served (a JSON object with the
    /// PascalCase fields `Id`, `CreationTime`, `Operation`, ...). `None` when absent or `null`.
    #[serde(default, rename = "auditData")]
    pub audit_data: Option<Box<RawValue>>,
}

/// A text field served as text or as a number; anything else is `None`.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A count served as a number or (OData's IEEE754Compatible form) as text; anything else is `None`.
fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A time read by [`crate::time::parse_time`] (Graph writes seven fraction digits); `None` when it
/// is missing or not one.
fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => crate::time::parse_time(&s),
        _ => None,
    })
}

/// `true` only for JSON `true` (or the text "true").
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryWire {
    #[serde(default, deserialize_with = "lenient_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    filter_start_date_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    filter_end_date_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    created_date_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_count")]
    approximate_returned_record_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    record_count_limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    is_record_count_limit_exceeded: bool,
}

impl QueryWire {
    fn into_info(self) -> Option<QueryInfo> {
        Some(QueryInfo {
            id: self.id.filter(|id| !id.trim().is_empty())?,
            display_name: self.display_name,
            status: QueryStatus::parse(self.status.as_deref().unwrap_or("")),
            filter_start: self.filter_start_date_time,
            filter_end: self.filter_end_date_time,
            created: self.created_date_time,
            approximate_count: self.approximate_returned_record_count,
            record_count_limit: self.record_count_limit,
            limit_exceeded: self.is_record_count_limit_exceeded,
        })
    }
}

/// Reads one query (the answer to create or get).
///
/// # Errors
/// [`GraphError::Malformed`] when the body is not a JSON object with an `id`.
pub fn parse_query(body: &[u8], call: &str) -> Result<QueryInfo, GraphError> {
    serde_json::from_slice::<QueryWire>(body)
        .map_err(|e| malformed(call, &e.to_string()))?
        .into_info()
        .ok_or_else(|| malformed(call, "the query has no id"))
}

/// A page of a collection. `value` is required: a 200 without it (a proxy's page, a cut answer) is
/// not an empty last page, which would count a window as read with nothing in it.
#[derive(Deserialize)]
struct Collection<T> {
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next: Option<String>,
}

/// Reads a page of the query list: the queries (one without an id is skipped) and the raw
/// `@odata.nextLink`.
///
/// # Errors
/// [`GraphError::Malformed`] when the body is not such a page.
pub fn parse_query_list(
    body: &[u8],
    call: &str,
) -> Result<(Vec<QueryInfo>, Option<String>), GraphError> {
    let page: Collection<QueryWire> =
        serde_json::from_slice(body).map_err(|e| malformed(call, &e.to_string()))?;
    Ok((
        page.value
            .into_iter()
            .filter_map(QueryWire::into_info)
            .collect(),
        page.next,
    ))
}

/// Reads a page of records: each record's wrapper `id` and its `auditData` as the exact text served,
/// and the raw `@odata.nextLink`.
///
/// # Errors
/// [`GraphError::Malformed`] when the body is not such a page.
pub fn parse_records(
    body: &[u8],
    call: &str,
) -> Result<(Vec<GraphRecord>, Option<String>), GraphError> {
    let page: Collection<GraphRecord> =
        serde_json::from_slice(body).map_err(|e| malformed(call, &e.to_string()))?;
    Ok((page.value, page.next))
}

fn malformed(call: &str, reason: &str) -> GraphError {
    GraphError::Malformed {
        call: call.to_owned(),
        reason: crate::redact::redact(reason).into_owned(),
    }
}

/// Who the request was for, to explain its refusal.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenant.
    pub tenant_id: String,
    /// The app registration.
    pub client_id: String,
    /// The Graph root, without a trailing `/`.
    pub endpoint: String,
}

/// Turns an error answer into its explanation (any status but 2xx; 429 and 401 included, for the
/// cases where the retries are over). `query_id` is the query the request was about, if any (a 404
/// on it is [`GraphError::NotFound`]).
pub fn classify(
    status: u16,
    body: &[u8],
    call: &str,
    query_id: Option<&str>,
    ctx: &Context,
) -> GraphError {
    let (code, message) = graph_error_words(body);
    let text = format!("{code} {message} {}", String::from_utf8_lossy(body));
    let lower = text.to_ascii_lowercase();
    let call = call.to_owned();
    let detail = answer_text(body);
    if lower.contains("segment 'auditlog'") {
        return GraphError::WrongCloud {
            call,
            endpoint: ctx.endpoint.clone(),
        };
    }
    if lower.contains("segment 'activity'") {
        return GraphError::WrongAudience {
            call,
            endpoint: ctx.endpoint.clone(),
        };
    }
    if lower.contains("auditingdisabledtenant") {
        return GraphError::AuditingDisabled {
            call,
            tenant_id: ctx.tenant_id.clone(),
        };
    }
    let no_permission =
        lower.contains("dont have any permission") || lower.contains("don't have any permission");
    if no_permission || status == 403 {
        return GraphError::Forbidden {
            call,
            client_id: ctx.client_id.clone(),
            user: no_permission.then(|| delegated_user(&text)).flatten(),
            detail,
        };
    }
    match status {
        429 => GraphError::Throttled {
            call,
            retry_after: None,
        },
        401 => GraphError::Unauthorized {
            call,
            endpoint: ctx.endpoint.clone(),
            detail,
        },
        404 if query_id.is_some() => GraphError::NotFound {
            query_id: query_id.unwrap_or_default().to_owned(),
        },
        400 => GraphError::InvalidRequest {
            call,
            message: detail,
        },
        _ => GraphError::Service {
            call,
            status,
            code: answer_text(code.as_bytes()),
            message: answer_text(message.as_bytes()),
        },
    }
}

/// `error.code` and `error.message` of Graph's error body (empty when missing); a body that is not
/// Graph's JSON gives an empty code and its text as the message.
fn graph_error_words(body: &[u8]) -> (String, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (String::new(), String::from_utf8_lossy(body).into_owned());
    };
    let e = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let field = |n: &str| {
        e.get(n)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("code"), field("message"))
}

/// The account named by `User:<upn> dont have any permissions`, redacted.
fn delegated_user(text: &str) -> Option<String> {
    let at = text.find("User:")?;
    let upn: String = text[at + 5..]
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
        .take(256)
        .collect();
    (!upn.is_empty()).then(|| crate::redact::redact(&upn).into_owned())
}

/// Why one exchange gave no answer to use.
enum Failure {
    Net(String),
    TooLarge,
}

/// How a request may be repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// A GET: 429 waited out (Retry-After) within the throttling budget.
    Read,
    /// A query submission: 429 waited out once at most, for a short Retry-After; a network failure
    /// or a 5xx is not repeated (the query may have been created: the caller looks in the list).
    Submit,
}

/// The Graph audit log query API client for one tenant.
pub struct GraphClient {
    http: Http,
    auth: TokenProvider,
    /// `{endpoint}/{version}/security/auditLog/queries`
    queries: Url,
    endpoint: Url,
    ctx: Context,
    authority: String,
    page_size: u32,
    pacer: Pacer,
    breaker: Breaker,
    counts: Counts,
}

impl GraphClient {
    /// A client for the Graph root [`Settings::graph_endpoint`] gives: gcc-high, dod and
    /// `[graph] enabled = false` are refused here, before anything is sent (the caller logs
    /// [`crate::config::GRAPH_GCC_WARNING`] in gcc).
    ///
    /// # Errors
    /// [`GraphError::Config`] with the refusal (exit 2), else as [`GraphClient::with_endpoint`].
    pub fn new(settings: &Settings, secret: SecretString) -> Result<GraphClient, GraphError> {
        let endpoint = settings.graph_endpoint()?;
        GraphClient::with_endpoint(settings, endpoint, secret)
    }

    /// A client for the Graph root `endpoint` (no trailing `/`), with the tenant, app, login host and
    /// token version of `settings` and a token whose resource is `endpoint` (v1 `resource`, v2
    /// `scope={endpoint}/.default`). Paced to `[sync] requests_per_minute`, stopped after `[sync]
    /// same_failure_limit` identical failures; `$top` = `[graph] page_size`. Nothing is sent until
    /// the first call.
    ///
    /// # Errors
    /// [`GraphError::Net`] when the HTTP client cannot be set up, [`GraphError::Auth`] when no token
    /// URL can be made, [`GraphError::Insecure`] when the endpoint breaks the https-or-loopback rule
    /// or makes no query URL.
    pub fn with_endpoint(
        settings: &Settings,
        endpoint: Url,
        secret: SecretString,
    ) -> Result<GraphClient, GraphError> {
        check_transport(&endpoint).map_err(|e| GraphError::Insecure(e.to_string()))?;
        let http = Http::new(settings.sync.stall_timeout)?;
        let root = endpoint.as_str().trim_end_matches('/').to_owned();
        let auth = TokenProvider::new(
            Credentials {
                tenant_id: settings.tenant.tenant_id.clone(),
                client_id: settings.tenant.client_id.clone(),
                secret,
                cloud: settings.tenant.cloud,
                authority: settings.tenant.authority.clone(),
                audience: endpoint.clone(),
                version: settings.tenant.token_version,
            },
            http.clone(),
        )
        .map_err(GraphError::Auth)?;
        let queries = Url::parse(&format!(
            "{root}/{}/security/auditLog/queries",
            settings.graph.version.as_str()
        ))
        .map_err(|e| GraphError::Insecure(e.to_string()))?;
        Ok(GraphClient {
            http,
            auth,
            queries,
            endpoint,
            ctx: Context {
                tenant_id: settings.tenant.tenant_id.clone(),
                client_id: settings.tenant.client_id.clone(),
                endpoint: root,
            },
            authority: settings
                .tenant
                .authority
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            page_size: settings.graph.page_size,
            pacer: Pacer::new(settings.sync.requests_per_minute),
            breaker: Breaker::new(settings.sync.same_failure_limit),
            counts: Counts::default(),
        })
    }

    /// The Graph token (cached; `doctor` reads its `roles`). Not for printing: it has no `Display`.
    ///
    /// # Errors
    /// [`AuthError`] as Entra ID refused or could not be reached.
    pub async fn token(&self) -> Result<Token, AuthError> {
        self.auth.token().await
    }

    /// Stops sending requests `after` from now: requests in flight are given up, later ones fail at
    /// once with [`GraphError::Stopped`].
    pub fn set_deadline(&self, after: Duration) {
        self.breaker.set_deadline(after);
    }

    /// Why this client stopped sending requests, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.breaker.stop()
    }

    /// Requests sent, throttled and retried since the client was made.
    pub fn requests(&self) -> RequestCounts {
        self.counts.snapshot()
    }

    /// The Graph root (no trailing `/`).
    pub fn endpoint(&self) -> &str {
        &self.ctx.endpoint
    }

    /// `POST …/queries`: submits a query (one of the tenant's daily submissions). A 429 is waited
    /// out once at most, when its `Retry-After` is at most [`CREATE_RETRY_AFTER_MAX`]; otherwise
    /// [`GraphError::Throttled`] and the caller defers the window. A network failure or a 5xx is
    /// returned at once, not sent again: the service may have created the query all the same, so the
    /// caller looks for it by its display name ([`GraphClient::list`]) before submitting again.
    ///
    /// # Errors
    /// Any [`GraphError`]; the permission, auditing-off, wrong-cloud and wrong-audience answers come
    /// here first.
    pub async fn create(&self, q: &NewQuery) -> Result<QueryInfo, GraphError> {
        let call = "create query";
        let body = serde_json::to_vec(&q.body()).map_err(|e| malformed(call, &e.to_string()))?;
        let (_, bytes) = self
            .send(
                Method::POST,
                self.queries.clone(),
                call,
                None,
                Some(body),
                Repeat::Submit,
            )
            .await?;
        parse_query(&bytes, call)
    }

    /// `GET …/queries/{id}`: the query's status and counts.
    ///
    /// # Errors
    /// [`GraphError::NotFound`] when the query is gone; any other [`GraphError`].
    pub async fn get(&self, query_id: &str) -> Result<QueryInfo, GraphError> {
        let call = format!("get query {query_id}");
        let url = self.query_url(query_id, &[]);
        let (_, bytes) = self
            .send(Method::GET, url, &call, Some(query_id), None, Repeat::Read)
            .await?;
        parse_query(&bytes, &call)
    }

    /// `GET …/queries`, every page (`@odata.nextLink` followed as given, checked): the tenant's
    /// earlier queries, so a resumed run can adopt the one it created.
    ///
    /// # Errors
    /// Any [`GraphError`]; [`GraphError::Malformed`] when the pages do not end (a link seen twice, or
    /// more than 1000 pages).
    pub async fn list(&self) -> Result<Vec<QueryInfo>, GraphError> {
        let call = "list queries";
        let mut url = self.queries.clone();
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..LIST_PAGES_MAX {
            let (_, bytes) = self
                .send(Method::GET, url, call, None, None, Repeat::Read)
                .await?;
            let (queries, next) = parse_query_list(&bytes, call)?;
            all.extend(queries);
            match next {
                None => return Ok(all),
                Some(link) => {
                    url = self.next_link(&link)?;
                    if !seen.insert(url.to_string()) {
                        return Err(malformed(call, "a next page link was handed back twice"));
                    }
                }
            }
        }
        Err(malformed(call, "more than 1000 pages"))
    }

    /// One page of a query's records: `url` `None` is the first page
    /// (`…/queries/{id}/records?$top={page_size}`); `Some` is the previous page's `next`, followed as
    /// given (already checked by this client).
    ///
    /// # Errors
    /// [`GraphError::Insecure`] for a link not https (nor loopback) or not on the endpoint's host;
    /// [`GraphError::NotFound`] when the query is gone; any other [`GraphError`].
    pub async fn records_page(
        &self,
        url: Option<&Url>,
        query_id: &str,
    ) -> Result<RecordsPage, GraphError> {
        let call = format!("records of query {query_id}");
        let url = match url {
            Some(u) => self.checked(u.clone())?,
            None => self.query_url(query_id, &["records"]),
        };
        let url = match url.query() {
            None if url.path().ends_with("/records") => {
                let mut u = url;
                u.set_query(Some(&format!("$top={}", self.page_size)));
                u
            }
            _ => url,
        };
        let (_, bytes) = self
            .send(Method::GET, url, &call, Some(query_id), None, Repeat::Read)
            .await?;
        let (records, next) = parse_records(&bytes, &call)?;
        let next = next.map(|link| self.next_link(&link)).transpose()?;
        Ok(RecordsPage { records, next })
    }

    /// `…/queries/{id}[/tail…]`, the id as one escaped path segment.
    fn query_url(&self, query_id: &str, tail: &[&str]) -> Url {
        let mut url = self.queries.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(query_id);
            segments.extend(tail);
        }
        url
    }

    /// An `@odata.nextLink` as a URL this client will send its token to.
    fn next_link(&self, link: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link).map_err(|e| {
            GraphError::Insecure(format!(
                "the @odata.nextLink is not a URL ({e}): {}",
                answer_text(link.as_bytes())
            ))
        })?;
        self.checked(url)
    }

    /// The URL if it is https (or http to loopback) and on the endpoint's host and port.
    fn checked(&self, url: Url) -> Result<Url, GraphError> {
        check_transport(&url).map_err(|e| GraphError::Insecure(e.to_string()))?;
        if !same_origin(&url, &self.endpoint) {
            return Err(GraphError::Insecure(format!(
                "{} is not on the Graph host {} ([graph] endpoint); auditsync does not send its token elsewhere",
                redact_query(&url),
                self.endpoint.host_str().unwrap_or_default()
            )));
        }
        Ok(url)
    }

    /// Sends one request with the retries and the stop rule; the answer's headers and body.
    async fn send(
        &self,
        method: Method,
        url: Url,
        call: &str,
        query_id: Option<&str>,
        body: Option<Vec<u8>>,
        repeat: Repeat,
    ) -> Result<(HeaderMap, bytes::Bytes), GraphError> {
        let url = self.checked(url)?;
        let stopped = |stop| GraphError::Stopped {
            call: call.to_owned(),
            stop,
        };
        if let Some(stop) = self.breaker.stopped() {
            return Err(stopped(stop));
        }
        let span = tracing::debug_span!("graph request", call, attempt = tracing::field::Empty);
        let request = Request {
            method,
            url,
            call,
            query_id,
            body,
            repeat,
        };
        let attempts = self.attempts(&request).instrument(span);
        match self.breaker.deadline() {
            Some(at) => tokio::time::timeout_at(at, attempts)
                .await
                .unwrap_or_else(|_| Err(stopped(self.breaker.deadline_reached()))),
            None => attempts.await,
        }
    }

    async fn attempts(&self, r: &Request<'_>) -> Result<(HeaderMap, bytes::Bytes), GraphError> {
        let mut renewed: Option<Token> = None;
        let mut backoff = Backoff::new();
        let mut submit_waited = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracing::Span::current().record("attempt", attempt);
            let ticket = self.pacer.admit().await;
            if let Some(stop) = self.breaker.stopped() {
                return Err(GraphError::Stopped {
                    call: r.call.to_owned(),
                    stop,
                });
            }
            let (token, fresh) = match renewed.take() {
                Some(t) => (t, true),
                None => (
                    self.auth.token().await.map_err(|e| self.auth_error(e))?,
                    false,
                ),
            };
            let (status, headers, body) = match self.exchange(r, &token).await {
                Ok(answer) => answer,
                Err(Failure::TooLarge) => {
                    ticket.answered(Answered::Other);
                    return Err(GraphError::TooLarge {
                        call: r.call.to_owned(),
                        limit: ANSWER_LIMIT,
                    });
                }
                Err(Failure::Net(reason)) => {
                    ticket.answered(Answered::Other);
                    let error = GraphError::Unreachable {
                        call: r.call.to_owned(),
                        url: redact_query(&r.url),
                        reason,
                    };
                    // A submission whose answer was lost may have created the query: sending it
                    // again could create a second one. The caller looks for it in the list first.
                    if matches!(r.repeat, Repeat::Submit) {
                        return Err(error);
                    }
                    self.again(&mut backoff, error, None, r.call).await?;
                    continue;
                }
            };
            if status.is_success() {
                ticket.answered(Answered::Other);
                self.breaker.answered();
                return Ok((headers, body));
            }
            let hint = retry_after(&headers);
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                // A refused submission is about the tenant's query allowance (queued or running
                // queries, submissions a day), not the pace of requests: polls and reads go on.
                ticket.answered(match r.repeat {
                    Repeat::Submit => Answered::Other,
                    Repeat::Read => Answered::Throttled(hint),
                });
                let wait = match r.repeat {
                    Repeat::Submit => hint
                        .filter(|h| !submit_waited && *h <= CREATE_RETRY_AFTER_MAX)
                        .inspect(|_| submit_waited = true),
                    Repeat::Read => backoff.throttled().then(|| {
                        hint.unwrap_or(Duration::from_secs(5))
                            .min(Duration::from_secs(60))
                    }),
                };
                match wait {
                    Some(delay) => {
                        self.counts.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            "{}: throttled (HTTP 429); waiting {delay:?} as its Retry-After asks",
                            r.call
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => {
                        return Err(GraphError::Throttled {
                            call: r.call.to_owned(),
                            retry_after: hint,
                        });
                    }
                }
            }
            ticket.answered(Answered::Other);
            if status == StatusCode::UNAUTHORIZED && !fresh {
                renewed = Some(
                    self.auth
                        .renew(&token)
                        .await
                        .map_err(|e| self.auth_error(e))?,
                );
                continue;
            }
            let error = classify(status.as_u16(), &body, r.call, r.query_id, &self.ctx);
            if !status.is_server_error() {
                self.breaker.answered();
                return Err(error);
            }
            // As above: a 5xx to a submission does not say the query was not created.
            if matches!(r.repeat, Repeat::Submit) {
                return Err(error);
            }
            self.again(&mut backoff, error, hint, r.call).await?;
        }
    }

    /// Waits before the next attempt after a transient `error`, or returns it when the budget is
    /// used up or the run stopped.
    async fn again(
        &self,
        backoff: &mut Backoff,
        error: GraphError,
        hint: Option<Duration>,
        call: &str,
    ) -> Result<(), GraphError> {
        let cause = error.cause();
        let delay = backoff.next(hint);
        let seen = self.breaker.failed(&cause);
        let stop = self.breaker.stopped();
        if seen.first {
            tracing::warn!(
                "{call}: {}{} (the same failure again is logged at -v only)",
                crate::redact::redact(&cause),
                if delay.is_some() && stop.is_none() {
                    "; trying again"
                } else {
                    ""
                }
            );
        }
        match delay.filter(|_| stop.is_none()) {
            Some(d) => {
                self.counts.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(d).await;
                Ok(())
            }
            None => Err(error),
        }
    }

    /// A token refusal: AADSTS7000229 explained for Graph, the rest as Entra ID's.
    fn auth_error(&self, e: AuthError) -> GraphError {
        match &e {
            AuthError::Rejected(r) if r.code == Some(7000229) => GraphError::NoServicePrincipal {
                client_id: self.ctx.client_id.clone(),
                tenant_id: self.ctx.tenant_id.clone(),
                authority: self.authority.clone(),
            },
            _ => GraphError::Auth(e),
        }
    }

    async fn exchange(
        &self,
        r: &Request<'_>,
        token: &Token,
    ) -> Result<crate::net::Exchanged, Failure> {
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .client()
            .request(r.method.clone(), r.url.clone())
            .header(AUTHORIZATION, token.header());
        if let Some(body) = &r.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let req = req
            .build()
            .map_err(|e| Failure::Net(crate::net::net_reason(&e)))?;
        self.http
            .exchange(req, ANSWER_LIMIT, ERROR_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => Failure::TooLarge,
                BodyError::Net(reason) => Failure::Net(reason),
            })
    }
}

/// One request as [`GraphClient::send`] was given it.
struct Request<'a> {
    method: Method,
    url: Url,
    call: &'a str,
    query_id: Option<&'a str>,
    body: Option<Vec<u8>>,
    repeat: Repeat,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            tenant_id: "11111111-2222-3333-4444-555555555555".into(),
            client_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            endpoint: "https://graph.microsoft.com".into(),
        }
    }

    /// Graph's error body (graph-audit-api.md; the contract's shape).
    fn graph_body(code: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"error": {"code": code, "message": message, "innerError": {
            "date": "2026-11-30T02:00:00", "request-id": "0f0e0d0c-0000-4000-8000-000000000001",
            "client-request-id": "0f0e0d0c-0000-4000-8000-000000000002"}}}),
        )
        .unwrap()
    }

    /// Each error answer of graph-audit-api.md's table: status, body, the variant, what the
    /// explanation must say.
    #[allow(clippy::type_complexity)]
    fn reference_cases() -> Vec<(u16, Vec<u8>, &'static str, &'static [&'static str])> {
        vec![
            (
                403,
                graph_body(
                    "Forbidden",
                    "App:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee dont have any permissions",
                ),
                "Forbidden",
                &[
                    "AuditLogsQuery.Read.All",
                    "admin consent",
                    "propagate",
                    "wait",
                ],
            ),
            (
                403,
                graph_body("Forbidden", "Access denied"),
                "Forbidden",
                &["AuditLogsQuery.Read.All", "admin consent"],
            ),
            (
                403,
                graph_body(
                    "Forbidden",
                    "User:admin@contoso.com dont have any permissions",
                ),
                "Forbidden",
                &["admin@contoso.com", "Audit Reader", "role group"],
            ),
            (
                400,
                graph_body(
                    "BadRequest",
                    "The tenant AuditingDisabledTenant: auditing is disabled",
                ),
                "AuditingDisabled",
                &[
                    "unified audit logging",
                    "Set-AdminAuditLogConfig",
                    "Purview",
                ],
            ),
            (
                400,
                graph_body(
                    "BadRequest",
                    "Resource not found for the segment 'auditLog'.",
                ),
                "WrongCloud",
                &["global service", "auditsync import", "GCC High"],
            ),
            (
                400,
                graph_body(
                    "BadRequest",
                    "Resource not found for the segment 'activity'.",
                ),
                "WrongAudience",
                &[
                    "[graph] endpoint",
                    "https://graph.microsoft.com",
                    "audience",
                ],
            ),
            (
                400,
                graph_body("BadRequest", "Invalid request data"),
                "InvalidRequest",
                &["Invalid request data", "filterEndDateTime"],
            ),
            (
                404,
                graph_body("NotFound", "query not found"),
                "NotFound",
                &["q-1", "submitted again"],
            ),
            (
                401,
                graph_body(
                    "InvalidAuthenticationToken",
                    "Access token validation failure. Invalid audience.",
                ),
                "Unauthorized",
                &["Invalid audience", "[graph] endpoint"],
            ),
            (
                503,
                b"<html><body>Service Unavailable</body></html>".to_vec(),
                "Service",
                &["HTTP 503", "run again later"],
            ),
            (
                429,
                graph_body("TooManyRequests", "Too many requests"),
                "Throttled",
                &["429", "run again later"],
            ),
        ]
    }

    #[test]
    fn the_reference_errors_are_explained_with_their_fix() {
        let c = ctx();
        let cases = reference_cases();
        for (status, body, want, needles) in cases {
            let e = classify(status, &body, "get query q-1", Some("q-1"), &c);
            let name = format!("{e:?}");
            assert!(
                name.starts_with(want),
                "{status} {}: {name}",
                String::from_utf8_lossy(&body)
            );
            let text = e.to_string();
            for n in needles {
                assert!(text.contains(n), "{want}: {n:?} not in {text}");
            }
        }
        // Exit codes: the wrong cloud and the wrong endpoint are configuration mistakes.
        let wrong = classify(
            400,
            &graph_body(
                "BadRequest",
                "Resource not found for the segment 'auditLog'.",
            ),
            "create query",
            None,
            &c,
        );
        assert_eq!(wrong.exit_code(), 2);
        assert!(!wrong.transient());
        let busy = classify(503, b"", "create query", None, &c);
        assert_eq!(busy.exit_code(), 1);
        assert!(busy.transient());
        // A 404 on the list (no query named) is not "query gone".
        let e = classify(
            404,
            &graph_body("NotFound", "nope"),
            "list queries",
            None,
            &c,
        );
        assert!(
            matches!(e, GraphError::Service { status: 404, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn no_secret_or_token_an_answer_echoes_reaches_the_message() {
        let secret = "Xy8Q~abcdefghijklmnopqrstuvwxyz0123456789";
        crate::redact::register(secret);
        let jwt = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.c2lnbmF0dXJlc2lnbmF0dXJl";
        for body in [
            graph_body(
                "BadRequest",
                &format!("Invalid request data: client_secret={secret}"),
            ),
            graph_body(
                "Forbidden",
                &format!("App:x dont have any permissions (Bearer {jwt})"),
            ),
            graph_body("Weird", &format!("echo {secret} {jwt}")),
            format!("plain text {secret} Authorization: Bearer {jwt}").into_bytes(),
        ] {
            for status in [400, 403, 500, 418] {
                let text = classify(status, &body, "create query", None, &ctx()).to_string();
                assert!(!text.contains(secret) && !text.contains(jwt), "{text}");
            }
        }
    }

    #[test]
    fn records_keep_audit_data_as_its_exact_text() {
        let audit = r#"{ "Id":"6f1c…-1",  "CreationTime":"2026-06-01T10:00:00", "Operation":"LaunchPowerApp","RecordType":256, "Zeta":1.50, "Alpha":"\u00e9"}"#;
        let body = format!(
            r#"{{"@odata.context":"x","value":[
                {{"id":"w-1","createdDateTime":"2026-06-01T10:00:00Z","auditLogRecordType":"powerAppsApp",
                  "operation":"LaunchPowerApp","administrativeUnits":[],"futureField":{{"a":1}},"auditData":{audit}}},
                {{"id":"w-2"}},
                {{"id":42,"auditData":null}}
            ],"@odata.nextLink":"https://graph.microsoft.com/v1.0/security/auditLog/queries/q/records?$skiptoken=abc"}}"#
        );
        let (records, next) = parse_records(body.as_bytes(), "records").unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].id.as_deref(), Some("w-1"));
        assert_eq!(records[0].audit_data.as_ref().unwrap().get(), audit);
        assert!(records[1].audit_data.is_none());
        assert_eq!(records[2].id.as_deref(), Some("42"));
        assert!(records[2].audit_data.is_none());
        assert!(next.unwrap().ends_with("$skiptoken=abc"));
        // The last page: no link; an empty page.
        let (records, next) = parse_records(br#"{"value":[]}"#, "records").unwrap();
        assert!(records.is_empty() && next.is_none());
        // A 200 without `value` is not an empty last page.
        assert!(matches!(
            parse_records(br#"{}"#, "records"),
            Err(GraphError::Malformed { .. })
        ));
        assert!(matches!(
            parse_records(b"<html>", "records"),
            Err(GraphError::Malformed { .. })
        ));
    }

    #[test]
    fn queries_are_read_from_v1_and_beta_shapes() {
        let v1 = br##"{"@odata.type":"#microsoft.graph.security.auditLogQuery","id":"q-1",
            "displayName":"auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z",
            "filterStartDateTime":"2026-06-01T00:00:00Z","filterEndDateTime":"2026-06-02T00:00:00.0000000Z",
            "operationFilters":["LaunchPowerApp"],"status":"succeeded","recordCountLimit":1000000,
            "approximateReturnedRecordCount":"1234","isRecordCountLimitExceeded":true,"unknownNew":[1]}"##;
        let q = parse_query(v1, "get").unwrap();
        assert_eq!(q.id, "q-1");
        assert_eq!(q.status, QueryStatus::Succeeded);
        assert_eq!(q.approximate_count, Some(1234));
        assert_eq!(q.record_count_limit, Some(1_000_000));
        assert!(q.limit_exceeded);
        assert_eq!(
            q.filter_end.map(crate::time::ts).as_deref(),
            Some("2026-06-02T00:00:00Z")
        );
        // beta / older v1.0: no counts, no cap; an unknown status is kept.
        let beta = br#"{"id":"q-2","status":"unknownFutureValue"}"#;
        let q = parse_query(beta, "get").unwrap();
        assert_eq!(q.approximate_count, None);
        assert!(!q.limit_exceeded);
        assert_eq!(q.status, QueryStatus::Other("unknownFutureValue".into()));
        for (s, want) in [
            ("notStarted", QueryStatus::NotStarted),
            ("running", QueryStatus::Running),
            ("failed", QueryStatus::Failed),
            ("cancelled", QueryStatus::Cancelled),
        ] {
            assert_eq!(QueryStatus::parse(s), want);
            assert_eq!(QueryStatus::parse(s).as_str(), s);
        }
        assert!(matches!(
            parse_query(br#"{"status":"running"}"#, "get"),
            Err(GraphError::Malformed { .. })
        ));
        let (list, next) = parse_query_list(
            br#"{"value":[{"id":"a","status":"running"},{"displayName":"no id"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/x?$skiptoken=1"}"#,
            "list",
        )
        .unwrap();
        assert_eq!(list.len(), 1);
        assert!(next.is_some());
    }

    #[test]
    fn a_new_query_sends_the_window_and_operations_only() {
        let t = |s: &str| crate::time::parse_time(s).unwrap();
        let q = NewQuery {
            display_name: NewQuery::display_name(
                "backfill",
                t("2026-06-01T00:00:00Z"),
                t("2026-06-02T00:00:00Z"),
            ),
            start: t("2026-06-01T00:00:00Z"),
            end: t("2026-06-02T00:00:00Z"),
            operations: vec!["LaunchPowerApp".into()],
        };
        assert_eq!(
            q.body(),
            serde_json::json!({
                "displayName": "auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z",
                "filterStartDateTime": "2026-06-01T00:00:00Z",
                "filterEndDateTime": "2026-06-02T00:00:00Z",
                "operationFilters": ["LaunchPowerApp"],
            })
        );
    }

    /// A scripted HTTP server on loopback: token requests (`…/oauth2/…`) get a new token each (or the
    /// `token_answer` when set); every other request gets the next canned answer, and is logged.
    mod stub {
        use std::collections::VecDeque;
        use std::sync::{Arc, Mutex};

        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        #[derive(Debug, Clone)]
        pub struct Seen {
            pub method: String,
            pub target: String,
            pub body: String,
            pub auth: Option<String>,
        }

        #[derive(Clone)]
        pub struct Canned {
            pub status: u16,
            pub headers: Vec<(&'static str, String)>,
            pub body: String,
        }

        pub fn answer(status: u16, body: &str) -> Canned {
            Canned {
                status,
                headers: Vec::new(),
                body: body.to_owned(),
            }
        }

        pub fn throttled(retry_after: u64) -> Canned {
            Canned {
                status: 429,
                headers: vec![("retry-after", retry_after.to_string())],
                body: r#"{"error":{"code":"TooManyRequests","message":"Too many requests"}}"#
                    .into(),
            }
        }

        #[derive(Default)]
        pub struct State {
            pub script: VecDeque<Canned>,
            pub seen: Vec<Seen>,
            pub tokens: Vec<Seen>,
            pub token_answer: Option<Canned>,
        }

        pub struct Stub {
            pub base: String,
            pub state: Arc<Mutex<State>>,
        }

        impl Stub {
            pub fn push(&self, c: Canned) {
                self.state.lock().unwrap().script.push_back(c);
            }
            pub fn seen(&self) -> Vec<Seen> {
                self.state.lock().unwrap().seen.clone()
            }
            pub fn tokens(&self) -> Vec<Seen> {
                self.state.lock().unwrap().tokens.clone()
            }
        }

        pub async fn start() -> Stub {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let state = Arc::new(Mutex::new(State::default()));
            let shared = state.clone();
            tokio::spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    tokio::spawn(serve(sock, shared.clone()));
                }
            });
            Stub { base, state }
        }

        async fn serve(mut sock: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break (
                        head,
                        String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned(),
                    );
                }
            };
            let mut words = head.split_whitespace();
            let seen = Seen {
                method: words.next().unwrap_or_default().to_owned(),
                target: words.next().unwrap_or_default().to_owned(),
                body,
                auth: head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().to_owned())
                }),
            };
            let canned = {
                let mut s = state.lock().unwrap();
                if seen.target.contains("/oauth2/") {
                    let n = s.tokens.len();
                    s.tokens.push(seen);
                    s.token_answer.clone().unwrap_or_else(|| {
                        answer(
                            200,
                            &format!(
                                r#"{{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJyb2xlcyI6WyJBdWRpdExvZ3NRdWVyeS5SZWFkLkFsbCJdfQ.sig{n}","token_type":"Bearer","expires_in":3599}}"#
                            ),
                        )
                    })
                } else {
                    s.seen.push(seen);
                    s.script
                        .pop_front()
                        .unwrap_or_else(|| answer(500, "script exhausted"))
                }
            };
            let mut out = format!(
                "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                canned.status,
                canned.body.len()
            );
            for (k, v) in &canned.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&canned.body);
            let _ = sock.write_all(out.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    }

    const T: &str = "11111111-2222-3333-4444-555555555555";
    const C: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn settings(base: &str, extra_top: &str, graph: &str) -> Settings {
        let text = format!(
            "tenant_id = \"{T}\"\nclient_id = \"{C}\"\nclient_secret = \"s\"\nauthority = \"{base}\"\n\
             audience = \"{base}\"\n{extra_top}[graph]\nendpoint = \"{base}/graph\"\npage_size = 2\n{graph}"
        );
        Settings::from_parts(
            Some(std::path::PathBuf::from("/etc/auditsync.toml")),
            Some(&text),
            &crate::config::Env::default(),
        )
        .unwrap()
    }

    async fn client(stub: &stub::Stub, extra_top: &str) -> GraphClient {
        let s = settings(&stub.base, extra_top, "");
        GraphClient::new(&s, SecretString::from("s")).unwrap()
    }

    fn new_query() -> NewQuery {
        let t = |s: &str| crate::time::parse_time(s).unwrap();
        NewQuery {
            display_name: "auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z".into(),
            start: t("2026-06-01T00:00:00Z"),
            end: t("2026-06-02T00:00:00Z"),
            operations: vec!["LaunchPowerApp".into()],
        }
    }

    const CREATED: &str = r#"{"id":"q-1","displayName":"x","status":"notStarted"}"#;

    #[tokio::test]
    async fn the_graph_token_is_asked_for_the_graph_root_with_either_endpoint_version() {
        for (version, want) in [("", "resource="), ("token_version = \"v2\"\n", "scope=")] {
            let stub = stub::start().await;
            let c = client(&stub, version).await;
            stub.push(stub::answer(201, CREATED));
            let q = c.create(&new_query()).await.unwrap();
            assert_eq!(q.id, "q-1");
            assert_eq!(q.status, QueryStatus::NotStarted);
            let tokens = stub.tokens();
            assert_eq!(tokens.len(), 1);
            let root: String =
                url::form_urlencoded::byte_serialize(format!("{}/graph", stub.base).as_bytes())
                    .collect();
            let scope: String = url::form_urlencoded::byte_serialize(
                format!("{}/graph/.default", stub.base).as_bytes(),
            )
            .collect();
            let asked = &tokens[0].body;
            if want == "resource=" {
                assert!(
                    asked.contains(&format!("resource={root}")) && !asked.contains("scope="),
                    "{asked}"
                );
            } else {
                assert!(
                    asked.contains(&format!("scope={scope}")) && !asked.contains("resource="),
                    "{asked}"
                );
            }
            let seen = stub.seen();
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].method, "POST");
            assert_eq!(seen[0].target, "/graph/v1.0/security/auditLog/queries");
            assert!(seen[0].auth.as_deref().unwrap().starts_with("Bearer eyJ"));
            let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
            assert_eq!(body, new_query().body());
        }
    }

    #[tokio::test]
    async fn records_are_paged_by_the_next_link_as_given_and_only_on_the_endpoint_host() {
        let stub = stub::start().await;
        let c = client(&stub, "").await;
        let next = format!(
            "{}/graph/v1.0/security/auditLog/queries/q-1/records?$skiptoken=a%2Bb%3D&$top=2",
            stub.base
        );
        stub.push(stub::answer(
            200,
            &format!(
                r#"{{"value":[{{"id":"1","auditData":{{"Id":"a"}}}}],"@odata.nextLink":"{next}"}}"#
            ),
        ));
        stub.push(stub::answer(
            200,
            r#"{"value":[{"id":"2","auditData":{"Id":"b"}}]}"#,
        ));
        let first = c.records_page(None, "q-1").await.unwrap();
        assert_eq!(
            first.records[0].audit_data.as_ref().unwrap().get(),
            r#"{"Id":"a"}"#
        );
        let link = first.next.unwrap();
        let last = c.records_page(Some(&link), "q-1").await.unwrap();
        assert!(last.next.is_none());
        let targets: Vec<String> = stub.seen().into_iter().map(|s| s.target).collect();
        assert_eq!(
            targets,
            [
                "/graph/v1.0/security/auditLog/queries/q-1/records?$top=2".to_owned(),
                "/graph/v1.0/security/auditLog/queries/q-1/records?$skiptoken=a%2Bb%3D&$top=2"
                    .to_owned(),
            ]
        );
        // A link to another host, or in plain http to a host that is not this machine: refused, and
        // nothing is sent.
        for bad in [
            "https://evil.example.com/graph/v1.0/security/auditLog/queries/q-1/records?$skiptoken=1",
            "http://graph.microsoft.com/v1.0/security/auditLog/queries/q-1/records",
            "http://127.0.0.1:1/graph/v1.0/security/auditLog/queries/q-1/records",
        ] {
            stub.push(stub::answer(
                200,
                &format!(r#"{{"value":[],"@odata.nextLink":"{bad}"}}"#),
            ));
            let e = c.records_page(None, "q-1").await.unwrap_err();
            assert!(matches!(e, GraphError::Insecure(_)), "{bad}: {e:?}");
            let e = c
                .records_page(Some(&Url::parse(bad).unwrap()), "q-1")
                .await
                .unwrap_err();
            assert!(matches!(e, GraphError::Insecure(_)), "{bad}: {e:?}");
        }
        assert_eq!(stub.seen().len(), 5);
    }

    #[tokio::test]
    async fn a_throttled_submission_waits_once_for_a_short_retry_after_else_is_deferred() {
        let stub = stub::start().await;
        let c = client(&stub, "").await;
        // Short Retry-After: one wait, then the answer.
        stub.push(stub::throttled(1));
        stub.push(stub::answer(201, CREATED));
        assert_eq!(c.create(&new_query()).await.unwrap().id, "q-1");
        assert_eq!(stub.seen().len(), 2);
        // Throttled again after the one wait: deferred to the caller.
        stub.push(stub::throttled(1));
        stub.push(stub::throttled(1));
        let e = c.create(&new_query()).await.unwrap_err();
        assert!(
            matches!(e, GraphError::Throttled { retry_after: Some(d), .. } if d.as_secs() == 1),
            "{e:?}"
        );
        assert_eq!(stub.seen().len(), 4);
        // A long Retry-After (a full queue): not waited out at all.
        stub.push(stub::throttled(3600));
        let e = c.create(&new_query()).await.unwrap_err();
        assert!(matches!(e, GraphError::Throttled { .. }), "{e:?}");
        assert!(e.transient() && e.exit_code() == 1);
        assert_eq!(stub.seen().len(), 5);
        let counts = c.requests();
        assert_eq!((counts.sent, counts.throttled, counts.retried), (5, 4, 2));
    }

    #[tokio::test]
    async fn reads_retry_server_errors_and_throttling_and_renew_the_token_once() {
        let stub = stub::start().await;
        let c = client(&stub, "").await;
        let ok = r#"{"id":"q-1","status":"running"}"#;
        stub.push(stub::answer(503, "<html>busy</html>"));
        stub.push(stub::throttled(0));
        stub.push(stub::answer(200, ok));
        assert_eq!(c.get("q-1").await.unwrap().status, QueryStatus::Running);
        assert_eq!(stub.seen().len(), 3);
        assert_eq!(
            stub.seen()[2].target,
            "/graph/v1.0/security/auditLog/queries/q-1"
        );
        // 401: one new token, then the answer.
        let unauthorized = r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure. Invalid audience."}}"#;
        stub.push(stub::answer(401, unauthorized));
        stub.push(stub::answer(200, ok));
        c.get("q-1").await.unwrap();
        assert_eq!(stub.tokens().len(), 2);
        let seen = stub.seen();
        assert_ne!(seen[3].auth, seen[4].auth);
        // 401 to the new token too: explained, not retried further.
        stub.push(stub::answer(401, unauthorized));
        stub.push(stub::answer(401, unauthorized));
        let e = c.get("q-1").await.unwrap_err();
        assert!(matches!(e, GraphError::Unauthorized { .. }), "{e:?}");
        assert!(e.to_string().contains("Invalid audience"), "{e}");
        assert_eq!(stub.seen().len(), 7);
        // A query that is gone.
        stub.push(stub::answer(
            404,
            r#"{"error":{"code":"NotFound","message":"not found"}}"#,
        ));
        assert!(
            matches!(c.get("q-9").await, Err(GraphError::NotFound { query_id }) if query_id == "q-9")
        );
        // The list follows its pages.
        stub.push(stub::answer(
            200,
            &format!(
                r#"{{"value":[{{"id":"a"}}],"@odata.nextLink":"{}/graph/v1.0/security/auditLog/queries?$skiptoken=2"}}"#,
                stub.base
            ),
        ));
        stub.push(stub::answer(200, r#"{"value":[{"id":"b"}]}"#));
        let ids: Vec<String> = c.list().await.unwrap().into_iter().map(|q| q.id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_tenant_without_the_service_principal_is_told_to_grant_consent() {
        let stub = stub::start().await;
        let c = client(&stub, "").await;
        stub.state.lock().unwrap().token_answer = Some(stub::answer(
            400,
            r#"{"error":"invalid_client","error_description":"AADSTS7000229: The client application aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee is missing service principal in the tenant 11111111-2222-3333-4444-555555555555.\r\nTrace ID: x","error_codes":[7000229]}"#,
        ));
        let e = c.create(&new_query()).await.unwrap_err();
        assert!(matches!(e, GraphError::NoServicePrincipal { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("admin consent")
                && text.contains("adminconsent?client_id=")
                && text.contains(C),
            "{text}"
        );
        assert!(stub.seen().is_empty());
    }

    #[tokio::test]
    async fn clouds_without_the_api_are_refused_before_any_request() {
        let stub = stub::start().await;
        for (top, graph) in [
            ("cloud = \"gcc-high\"\n", ""),
            ("cloud = \"dod\"\n", ""),
            ("", "enabled = false\n"),
        ] {
            let s = settings(&stub.base, top, graph);
            let e = GraphClient::new(&s, SecretString::from("s")).err().unwrap();
            assert!(matches!(e, GraphError::Config(_)), "{e:?}");
            assert_eq!(e.exit_code(), 2);
        }
        assert!(stub.seen().is_empty() && stub.tokens().is_empty());
    }
}
