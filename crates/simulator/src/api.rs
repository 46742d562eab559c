//! The activity-feed API (management-api.md §1–§3) under `/api/v1.0/{tenant}/activity/feed/` and
//! `/api/v1/{tenant}/activity/feed/`: subscriptions start/stop/list, content listing with
//! `NextPageUri` paging, and blob retrieval, behind bearer-token checks, with the service's AF error
//! bodies and IIS response headers.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{
    DateTime, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, TimeDelta, Timelike, Utc,
};
use http::header::{AUTHORIZATION, CACHE_CONTROL, EXPIRES, PRAGMA, SERVER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use url::form_urlencoded;
use uuid::Uuid;

use super::control::{ApiRequests, SimControl, State as Shared};
use super::faults;
use super::json_response;
use super::tenant::{RETENTION, content_time, is_well_formed};

/// The PublisherId the service reports for requests without `PublisherIdentifier`.
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

const CONTENT_TYPES: [&str; 5] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];

/// The activity-feed operations.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// `POST …/subscriptions/start`.
    Start,
    /// `POST …/subscriptions/stop`.
    Stop,
    /// `GET …/subscriptions/list`.
    List,
    /// `GET …/subscriptions/content`.
    Content,
    /// `GET …/audit/{contentId}`.
    Blob,
}

impl Route {
    /// The operation name the service uses in throttling and failure messages.
    pub(super) fn operation(self) -> &'static str {
        match self {
            Route::Start => "StartSubscription",
            Route::Stop => "StopSubscription",
            Route::List => "ListSubscriptions",
            Route::Content => "ListContent",
            Route::Blob => "GetBlob",
        }
    }

    /// Whether transport faults (dropped connections, cut bodies) apply to it.
    pub(super) fn carries_data(self) -> bool {
        matches!(self, Route::Content | Route::Blob)
    }

    fn count(self, requests: &mut ApiRequests) {
        let counter = match self {
            Route::Start => &mut requests.start,
            Route::Stop => &mut requests.stop,
            Route::List => &mut requests.list,
            Route::Content => &mut requests.content,
            Route::Blob => &mut requests.blob,
        };
        *counter += 1;
    }
}

/// The five activity-feed routes under both `/api/v1.0/{tenant}/activity/feed/` and
/// `/api/v1/{tenant}/activity/feed/` (the latter is what `NextPageUri` names, management-api.md
/// §2.3), every answer with the IIS headers.
pub(super) fn routes() -> Router<Arc<SimControl>> {
    let mut router = Router::new();
    for version in ["v1.0", "v1"] {
        let feed = format!("/api/{version}/{{tenant}}/activity/feed");
        router = router
            .route(&format!("{feed}/subscriptions/start"), post(start))
            .route(&format!("{feed}/subscriptions/stop"), post(stop))
            .route(&format!("{feed}/subscriptions/list"), get(list))
            .route(&format!("{feed}/subscriptions/content"), get(content))
            .route(&format!("{feed}/audit/{{content_id}}"), get(blob));
    }
    router.layer(map_response(iis_headers))
}

/// The headers every answer of the real service carries.
async fn iis_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (CACHE_CONTROL, "no-cache"),
        (PRAGMA, "no-cache"),
        (EXPIRES, "-1"),
        (SERVER, "Microsoft-IIS/8.5"),
        (HeaderName::from_static("x-powered-by"), "ASP.NET"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Query parameters, looked up as ASP.NET binds them: names case-insensitively (the CoE sends
/// `nextpage`), empty values as absent.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes a raw query string (`None`: no query) as `application/x-www-form-urlencoded`.
    pub(super) fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first non-empty value of the parameter named `name` in any case.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }

    fn publisher(&self) -> &str {
        self.get("PublisherIdentifier").unwrap_or(ZERO_GUID)
    }
}

/// A UTC time as the API accepts it: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, the
/// last with up to 7 fraction digits; each with an optional `Z`.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    let time = match text.split_once('.') {
        None => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
            .ok()?,
        Some((seconds, fraction)) => {
            let digits = fraction.len();
            if !(1..=7).contains(&digits) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let nanos = format!("{fraction:0<9}").parse().ok()?;
            NaiveDateTime::parse_from_str(seconds, "%Y-%m-%dT%H:%M:%S")
                .ok()?
                .with_nanosecond(nanos)?
        }
    };
    Some(time.and_utc())
}

/// A response that replaces the normal answer: an error, a throttle, a connection to drop. Boxed, as
/// it travels through `?`.
pub(super) struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// `{"error":{"code":…,"message":…}}`.
pub(super) fn af_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    json_response(status, body.to_string())
}

fn bad_request(code: &str, message: impl Into<String>) -> Refusal {
    af_error(StatusCode::BAD_REQUEST, code, message).into()
}

fn internal_error() -> Refusal {
    af_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "AF50000",
        "An internal error occurred. Retry the request.",
    )
    .into()
}

/// Counts the request, checks its token and tenant, then applies request-level faults.
fn admit(
    sim: &SimControl,
    route: Route,
    tenant: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Params, Refusal> {
    let params = Params::parse(query);
    let now = sim.now();
    let mut state = sim.state();
    route.count(&mut state.stats.api_requests);
    if params.get("PublisherIdentifier").is_none() {
        state.stats.requests_without_publisher_identifier += 1;
    }
    if let Err(refusal) = authorize(&state, sim.base(), now, tenant, headers) {
        if refusal.0.status() == StatusCode::UNAUTHORIZED {
            state.stats.unauthorized += 1;
        }
        return Err(refusal);
    }
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    faults::inject(&mut state, route, params.publisher(), authorization)?;
    drop(state);
    Ok(params)
}

fn authorize(
    state: &Shared,
    base: &str,
    now: DateTime<Utc>,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| state.tokens.get(token.trim()))
        .filter(|token| token.expires > now)
        // A token for another resource (the Graph root) is refused like any token not for this API.
        .filter(|token| token.audience == base)
        .ok_or_else(denied)?;
    if Uuid::parse_str(tenant).is_err() {
        return Err(bad_request(
            "AF20013",
            format!("The tenant ID passed in the URL ({tenant}) is not a valid GUID."),
        ));
    }
    if !token.tenant.eq_ignore_ascii_case(tenant) {
        return Err(bad_request(
            "AF20010",
            format!(
                "The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({}).",
                token.tenant
            ),
        ));
    }
    if !token.roles.iter().any(|role| role == "ActivityFeed.Read") {
        let message = format!(
            "The permission set ({}) sent in the request did not include the expected permission ActivityFeed.Read.",
            token.roles.join(" ")
        );
        return Err(af_error(StatusCode::UNAUTHORIZED, "AF10001", message).into());
    }
    Ok(())
}

/// The ASP.NET authorization filter's 401: no `error` wrapper, capital `M`.
fn denied() -> Response {
    let body = r#"{"Message":"Authorization has been denied for this request."}"#;
    let mut response = json_response(StatusCode::UNAUTHORIZED, body);
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn content_type(params: &Params) -> Result<&str, Refusal> {
    let content_type = params
        .get("contentType")
        .ok_or_else(|| bad_request("AF20001", "Missing parameter: contentType."))?;
    CONTENT_TYPES
        .into_iter()
        .find(|&known| known == content_type)
        .ok_or_else(|| bad_request("AF20020", "The specified content type is not valid."))
}

/// The 500 the service answers when unified audit logging is off for the tenant.
fn audit_log_off(
    sim: &SimControl,
    route: Route,
    content_type: Option<&str>,
    params: &Params,
) -> Refusal {
    let spec = sim.spec();
    let (tenant, operation) = (&spec.tenant_id, route.operation());
    let content_type = content_type
        .map(|ct| format!(",ContentType={ct}"))
        .unwrap_or_default();
    let code = format!(
        "{operation} [TenantId={tenant}{content_type},ApplicationId={},PublisherId={}] failed. Exception",
        spec.client_id,
        params.publisher()
    );
    let message = format!(
        "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant {tenant} does not exist.\r\n   at Microsoft.Office.Compliance.Audit.API.AuditApiController.{operation}(String tenantId, String contentType, String publisherIdentifier)\r\n   at lambda_method(Closure , Object , Object[] )"
    );
    af_error(StatusCode::INTERNAL_SERVER_ERROR, &code, message).into()
}

async fn start(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let params = admit(&sim, Route::Start, &tenant, query.as_deref(), &headers)?;
    let content_type = content_type(&params)?;
    let mut state = sim.state();
    if !state.audit_log_enabled {
        return Err(audit_log_off(
            &sim,
            Route::Start,
            Some(content_type),
            &params,
        ));
    }
    match state
        .subscriptions
        .iter()
        .position(|(ct, _)| ct == content_type)
    {
        Some(i) if state.subscriptions[i].1 => {
            return Err(bad_request(
                "AF20024",
                "The subscription is already enabled. No property change.",
            ));
        }
        Some(i) => state.subscriptions[i].1 = true,
        None => state.subscriptions.push((content_type.to_owned(), true)),
    }
    let body = json!({"contentType": content_type, "status": "enabled", "webhook": null});
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// Enabled or disabled → disabled, answered with an empty 200.
async fn stop(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let params = admit(&sim, Route::Stop, &tenant, query.as_deref(), &headers)?;
    let content_type = content_type(&params)?;
    let mut state = sim.state();
    let (_, enabled) = state
        .subscriptions
        .iter_mut()
        .find(|(ct, _)| ct == content_type)
        .ok_or_else(no_subscription)?;
    *enabled = false;
    Ok(Response::default())
}

fn no_subscription() -> Refusal {
    bad_request(
        "AF20022",
        "No subscription found for the specified content type.",
    )
}

async fn list(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let params = admit(&sim, Route::List, &tenant, query.as_deref(), &headers)?;
    let state = sim.state();
    if !state.audit_log_enabled {
        return Err(audit_log_off(&sim, Route::List, None, &params));
    }
    let list: Vec<Value> = state
        .subscriptions
        .iter()
        .map(|(ct, enabled)| {
            let status = if *enabled { "enabled" } else { "disabled" };
            json!({"contentType": ct, "status": status, "webhook": null})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        Value::Array(list).to_string(),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentEntry<'a> {
    content_type: &'a str,
    content_id: &'a str,
    content_uri: String,
    content_created: String,
    content_expiration: String,
}

async fn content(
    State(sim): State<Arc<SimControl>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let params = admit(&sim, Route::Content, &tenant, query.as_deref(), &headers)?;
    let content_type = content_type(&params)?;
    {
        let state = sim.state();
        if !state.audit_log_enabled {
            return Err(audit_log_off(
                &sim,
                Route::Content,
                Some(content_type),
                &params,
            ));
        }
        match state
            .subscriptions
            .iter()
            .find(|(ct, _)| ct == content_type)
        {
            None => return Err(no_subscription()),
            Some((_, false)) => {
                return Err(bad_request(
                    "AF20023",
                    "The subscription was disabled by a tenant admin.",
                ));
            }
            Some((_, true)) => {}
        }
    }
    let now = sim.now();
    let window = Window::new(&params, now)?;
    let huge = sim.state().faults.huge_listing.clone();
    if let Some(huge) = huge {
        return Ok(faults::huge_body(&huge, b'[', b']'));
    }
    let blobs = sim
        .tenant
        .listing(content_type, window.start, window.end, now);

    let from = match params.get("nextPage") {
        None => 0,
        Some(token) => {
            let invalid = || bad_request("AF20031", format!("Invalid nextPage Input: {token}."));
            let (created, index) = parse_cursor(token).ok_or_else(invalid)?;
            let names_a_blob_listed_here = sim.tenant.blob(index).is_some_and(|blob| {
                blob.created == created
                    && blob.kind.content_type() == content_type
                    && window.start <= created
                    && created < window.end
            });
            if !names_a_blob_listed_here {
                return Err(invalid());
            }
            blobs.partition_point(|blob| (blob.created, blob.index) < (created, index))
        }
    };
    let until = from
        .saturating_add(sim.spec().page_size.max(1))
        .min(blobs.len());
    let entries: Vec<ContentEntry> = blobs[from..until]
        .iter()
        .map(|blob| ContentEntry {
            content_type,
            content_id: &blob.content_id,
            content_uri: sim.content_uri(blob),
            content_created: content_time(blob.created),
            content_expiration: content_time(blob.expiration()),
        })
        .collect();
    let body = serde_json::to_vec(&entries).map_err(|_| internal_error())?;
    let mut response = faults::deliver(&mut sim.state(), Route::Content, body.into());
    if let Some(next) = blobs.get(until) {
        // The times are echoed as given; having parsed, they hold no character a query must escape.
        let uri = format!(
            "{}/api/v1/{}/activity/feed/subscriptions/content?contentType={content_type}&startTime={}&endTime={}&nextPage={}",
            sim.base(),
            sim.spec().tenant_id,
            window.start_text,
            window.end_text,
            cursor(next.created, next.index)
        );
        let bad = sim.state().faults.bad_next_page.clone();
        let value = match bad {
            Some(bytes) => HeaderValue::from_bytes(&bytes),
            None => HeaderValue::try_from(uri),
        }
        .map_err(|_| internal_error())?;
        response
            .headers_mut()
            .insert(HeaderName::from_static("nextpageuri"), value);
    }
    Ok(response)
}

/// A listing window and the text that named it, for echoing into `NextPageUri`.
struct Window<'a> {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    start_text: Cow<'a, str>,
    end_text: Cow<'a, str>,
}

impl<'a> Window<'a> {
    /// Both times or neither (then the last 24 hours); at most 24 hours apart, start before end and no
    /// more than 7 days ago.
    fn new(params: &'a Params, now: DateTime<Utc>) -> Result<Self, Refusal> {
        let rule = || {
            bad_request(
                "AF20030",
                "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.",
            )
        };
        let (start_text, end_text) = match (params.get("startTime"), params.get("endTime")) {
            (None, None) => {
                let end = now.trunc_subsecs(3);
                let start = end - TimeDelta::hours(24);
                return Ok(Self {
                    start,
                    end,
                    start_text: content_time(start).into(),
                    end_text: content_time(end).into(),
                });
            }
            (Some(start), Some(end)) => (start, end),
            _ => return Err(rule()),
        };
        let parse = |name: &str, text: &str| {
            parse_time(text).ok_or_else(|| {
                bad_request(
                    "AF20002",
                    format!("Invalid parameter type: {name}. Expected type: DateTime"),
                )
            })
        };
        let (start, end) = (parse("startTime", start_text)?, parse("endTime", end_text)?);
        if start >= end {
            return Err(bad_request(
                "AF20055",
                "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time prior to end time and start time no more than 7 days in the past.",
            ));
        }
        if end - start > TimeDelta::hours(24) || start < now - RETENTION {
            return Err(rule());
        }
        Ok(Self {
            start,
            end,
            start_text: start_text.into(),
            end_text: end_text.into(),
        })
    }
}

/// The opaque `nextPage` token naming the first blob of the next page, in the service's style
/// (`2026112117R…`): the blob's hour, `R`, its minute, second and millisecond, then its index.
fn cursor(created: DateTime<Utc>, index: usize) -> String {
    format!(
        "{}R{}{index:06}",
        created.format("%Y%m%d%H"),
        created.format("%M%S%3f")
    )
}

fn parse_cursor(token: &str) -> Option<(DateTime<Utc>, usize)> {
    let (hour, rest) = token.split_once('R')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if hour.len() != 10 || rest.len() < 8 || !digits(hour) || !digits(rest) {
        return None;
    }
    let (minute, index) = rest.split_at(7);
    let created =
        NaiveDateTime::parse_from_str(&format!("{hour}{minute}"), "%Y%m%d%H%M%S%3f").ok()?;
    Some((created.and_utc(), index.parse().ok()?))
}

async fn blob(
    State(sim): State<Arc<SimControl>>,
    Path((tenant, content_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    *sim.state()
        .stats
        .blob_fetches_by_content_id
        .entry(content_id.clone())
        .or_default() += 1;
    admit(&sim, Route::Blob, &tenant, query.as_deref(), &headers)?;
    if !is_well_formed(&content_id) {
        return Err(bad_request(
            "AF20052",
            format!("Content ID {content_id} in the URL is invalid."),
        ));
    }
    let blob = sim.tenant.find(&content_id).ok_or_else(|| {
        bad_request(
            "AF20050",
            format!("The specified content ({content_id}) does not exist."),
        )
    })?;
    if blob.expiration() <= sim.now() {
        return Err(bad_request(
            "AF20051",
            format!(
                "Content requested with the key {content_id} has already expired. Content older than 7 days cannot be retrieved."
            ),
        ));
    }
    if sim.state().faults.broken_blobs.contains(&content_id) {
        return Err(internal_error());
    }
    let huge = sim.state().faults.huge_blobs.get(&content_id).cloned();
    if let Some(huge) = huge {
        return Ok(faults::huge_body(&huge, b'[', b']'));
    }
    let delay = sim.state().faults.blob_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = sim.tenant.body(blob.index);
    let gzip = sim.spec().gzip
        && headers
            .get(http::header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
    if !gzip {
        return Ok(faults::deliver(&mut sim.state(), Route::Blob, body));
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &body).map_err(|_| internal_error())?;
    let compressed = encoder.finish().map_err(|_| internal_error())?;
    let mut state = sim.state();
    state.stats.gzipped += 1;
    let mut response = faults::deliver(&mut state, Route::Blob, compressed.into());
    response.headers_mut().insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_static("gzip"),
    );
    Ok(response)
}
