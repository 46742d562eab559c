//! The Microsoft Graph audit log query API (graph-audit-api.md) under `{base}/graph/{v1.0|beta}/`:
//! create a query, poll it, list the tenant's queries, read its records page by page; over the same
//! tenant's audit log (`tenant::audit_log`), behind Graph-token checks, with Graph's error bodies,
//! its limits (running queries, daily submissions, the record cap) and its late records.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use http::header::{AUTHORIZATION, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::Params;
use super::control::{SimControl, State as Shared};
use super::faults::{DropConnection, chance};
use super::json_response;
use super::tenant::{AuditQuery, AuditRecord, Position, guid};

/// The role a query needs (graph-audit-api.md, Permissions).
pub(super) const QUERY_ROLE: &str = "AuditLogsQuery.Read.All";
/// The old role that, since April 2026, lets queries succeed with zero records.
pub(super) const OLD_ROLE: &str = "AuditLog.Read.All";
/// Queries per page of `GET …/queries`.
const LIST_PAGE: usize = 100;
/// `Retry-After` of a create refused for too many running queries, in seconds.
const RUNNING_RETRY_AFTER: u64 = 30;

/// Graph requests by route, under either version, counted before the token is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphRequests {
    /// `POST …/security/auditLog/queries`.
    pub create: u32,
    /// `GET …/queries/{id}`.
    pub get: u32,
    /// `GET …/queries` (every page).
    pub list: u32,
    /// `GET …/queries/{id}/records` (every page).
    pub records: u32,
}

/// One query the tenant was given.
pub(super) struct Query {
    id: String,
    display_name: Option<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// `operationFilters` as given.
    operations: Vec<String>,
    created: DateTime<Utc>,
    /// `GET …/queries/{id}` answered so far.
    polls: u32,
    /// Ends `failed` ([`Faults::graph_fail_queries`](crate::Faults::graph_fail_queries)).
    fails: bool,
    /// Created with a token holding `AuditLog.Read.All` but not `AuditLogsQuery.Read.All`.
    zero: bool,
    /// The catalogue's length at creation: later blobs are not in its results.
    catalogue_len: usize,
    /// The parts of its window no earlier query covered: its late records there are left out.
    first_spans: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Records it matches (before the cap), counted once it succeeded.
    count: Option<u64>,
}

impl Query {
    /// Its status after `polls` polls at `now`.
    fn status(&self, now: DateTime<Utc>, delay: TimeDelta) -> &'static str {
        if self.polls <= 1 {
            "notStarted"
        } else if self.polls == 2 || now - self.created < delay {
            "running"
        } else if self.fails {
            "failed"
        } else {
            "succeeded"
        }
    }

    fn lower_operations(&self) -> Vec<String> {
        self.operations.iter().map(|o| o.to_lowercase()).collect()
    }
}

/// The Graph side's state, inside the simulator's shared state.
pub(super) struct Graph {
    /// [`SimSpec::graph_running_limit`](crate::SimSpec::graph_running_limit), or as set since.
    pub(super) running_limit: usize,
    /// [`SimSpec::graph_daily_submissions`](crate::SimSpec::graph_daily_submissions), or as set since.
    pub(super) daily_submissions: usize,
    /// Every query created, oldest first.
    pub(super) queries: Vec<Query>,
    /// Instants of accepted creates within the last 24 hours (older ones are dropped as they age).
    recent: std::collections::VecDeque<DateTime<Utc>>,
    /// Accepted creates since start.
    pub(super) submissions: usize,
}

impl Graph {
    pub(super) fn new(spec: &crate::SimSpec) -> Self {
        Self {
            running_limit: spec.graph_running_limit,
            daily_submissions: spec.graph_daily_submissions,
            queries: Vec::new(),
            recent: std::collections::VecDeque::new(),
            submissions: 0,
        }
    }
}

/// The routes under `/graph`: both versions, and Graph's "Resource not found for the segment" for
/// any other path there.
pub(super) fn routes() -> Router<Arc<SimControl>> {
    let mut router = Router::new();
    for version in ["v1.0", "beta"] {
        let queries = format!("/graph/{version}/security/auditLog/queries");
        router = router
            .route(&queries, get(list).post(create))
            .route(&format!("{queries}/{{id}}"), get(poll))
            .route(&format!("{queries}/{{id}}/records"), get(records));
    }
    router
        .route("/graph", any(unknown_segment))
        .route("/graph/{*rest}", any(unknown_segment))
}

/// The version segment of a Graph path (`v1.0` or `beta`).
fn version(uri: &http::Uri) -> &'static str {
    if uri.path().starts_with("/graph/beta/") {
        "beta"
    } else {
        "v1.0"
    }
}

/// Graph's error body: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
fn graph_error(
    state: &mut Shared,
    now: DateTime<Utc>,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message.into(),
        "innerError": {
            "date": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "request-id": guid(&mut state.rng),
            "client-request-id": guid(&mut state.rng),
        },
    }});
    json_response(status, body.to_string())
}

/// Counts the request, checks its token (audience, expiry, roles) and applies the Graph faults.
/// `Ok` holds whether the token has `AuditLogsQuery.Read.All` (else only `AuditLog.Read.All`).
fn admit(
    sim: &SimControl,
    state: &mut Shared,
    count: fn(&mut GraphRequests),
    headers: &HeaderMap,
) -> Result<bool, Response> {
    let now = sim.now();
    count(&mut state.stats.graph_requests);
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let unauthorized = |state: &mut Shared, message: &str| {
        state.stats.unauthorized += 1;
        let mut response = graph_error(
            state,
            now,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        response
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(unauthorized(state, "Access token is empty."));
    };
    let Some(issued) = state.tokens.get(&token) else {
        return Err(unauthorized(state, "Access token validation failure."));
    };
    if issued.audience != sim.graph_root() {
        return Err(unauthorized(
            state,
            "Access token validation failure. Invalid audience.",
        ));
    }
    if issued.expires <= now {
        return Err(unauthorized(
            state,
            "Lifetime validation failed, the token is expired.",
        ));
    }
    let full = issued.roles.iter().any(|r| r == QUERY_ROLE);
    if !full && !issued.roles.iter().any(|r| r == OLD_ROLE) {
        let message = format!("App:{} dont have any permissions", sim.spec().client_id);
        return Err(graph_error(
            state,
            now,
            StatusCode::FORBIDDEN,
            "Forbidden",
            message,
        ));
    }
    let faults = state.faults.clone();
    if chance(&mut state.rng, faults.graph_server_error) {
        state.stats.server_errors += 1;
        let (status, code, message) = if state.rng.random_bool(0.5) {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "An unexpected error occurred. Please retry.",
            )
        };
        return Err(graph_error(state, now, status, code, message));
    }
    if chance(&mut state.rng, faults.graph_drop_connection) {
        state.stats.dropped += 1;
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(DropConnection);
        return Err(response);
    }
    Ok(full)
}

/// The body of `POST …/queries` as far as the simulator reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewQuery {
    display_name: Option<String>,
    filter_start_date_time: Option<String>,
    filter_end_date_time: Option<String>,
    #[serde(default)]
    operation_filters: Vec<String>,
}

/// An ISO 8601 time as Graph reads it: RFC 3339, or without a zone (UTC).
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| super::api::parse_time(text))
}

async fn create(
    State(sim): State<Arc<SimControl>>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.now();
    let mut guard = sim.state();
    let state = &mut *guard;
    let full = match admit(&sim, state, |r| r.create += 1, &headers) {
        Ok(full) => full,
        Err(response) => return response,
    };
    if !state.audit_log_enabled {
        let message = format!(
            "AuditingDisabledTenant: auditing is disabled for tenant {}. Turn on unified audit logging (Microsoft Purview portal, Audit) and try again.",
            sim.spec().tenant_id
        );
        return graph_error(
            state,
            now,
            StatusCode::BAD_REQUEST,
            "AuditingDisabledTenant",
            message,
        );
    }
    let request: Option<NewQuery> = serde_json::from_slice(&body).ok();
    let window = request.as_ref().and_then(|r| {
        let start = parse_instant(r.filter_start_date_time.as_deref()?)?;
        let end = parse_instant(r.filter_end_date_time.as_deref()?)?;
        (start < end).then_some((start, end))
    });
    let (Some(request), Some((start, end))) = (request, window) else {
        return graph_error(
            state,
            now,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid request data",
        );
    };
    if let Err(response) = admit_submission(&sim, state, now) {
        return response;
    }
    let covered: Vec<(DateTime<Utc>, DateTime<Utc>)> = state
        .graph
        .queries
        .iter()
        .filter(|q| !q.fails)
        .map(|q| (q.start, q.end))
        .collect();
    let fails = state.faults.graph_fail_queries > 0;
    if fails {
        state.faults.graph_fail_queries -= 1;
    }
    let query = Query {
        id: guid(&mut state.rng),
        display_name: request.display_name,
        start,
        end,
        operations: request.operation_filters,
        created: now,
        polls: 0,
        fails,
        zero: !full,
        catalogue_len: sim.tenant.len(),
        first_spans: uncovered((start, end), covered),
        count: None,
    };
    let delay = graph_delay(&sim);
    let mut body = query_json(&sim, &query, now, delay);
    body["@odata.context"] = format!(
        "{}/graph/{}/$metadata#security/auditLog/queries/$entity",
        sim.base(),
        version(&uri)
    )
    .into();
    let location = format!("{}/{}", sim.graph_root(), &uri.path()[7..]);
    let location = format!("{location}/{}", query.id);
    state.graph.queries.push(query);
    state.graph.submissions += 1;
    state.graph.recent.push_back(now);
    let mut response = json_response(StatusCode::CREATED, body.to_string());
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    // The query exists, but its answer is lost (Faults::graph_lose_create_answers).
    if state.faults.graph_lose_create_answers > 0 {
        state.faults.graph_lose_create_answers -= 1;
        response.extensions_mut().insert(DropConnection);
    }
    response
}

/// The running-queries and daily-submission limits: `Err` is the 429 with `Retry-After`.
fn admit_submission(
    sim: &SimControl,
    state: &mut Shared,
    now: DateTime<Utc>,
) -> Result<(), Response> {
    let (running_limit, daily_limit) = (state.graph.running_limit, state.graph.daily_submissions);
    let delay = graph_delay(sim);
    let running = state
        .graph
        .queries
        .iter()
        .filter(|q| matches!(q.status(now, delay), "notStarted" | "running"))
        .count();
    let day = TimeDelta::hours(24);
    while state.graph.recent.front().is_some_and(|&t| now - t >= day) {
        state.graph.recent.pop_front();
    }
    let retry_after = if running >= running_limit {
        Some((
            RUNNING_RETRY_AFTER,
            format!(
                "Too many requests: {running} audit log queries are queued or running for this tenant (the most allowed is {}). Retry after {RUNNING_RETRY_AFTER} seconds.",
                running_limit
            ),
        ))
    } else if state.graph.recent.len() >= daily_limit {
        let oldest = state.graph.recent.front().copied().unwrap_or(now);
        let seconds = (oldest + day - now).num_seconds().max(1) as u64;
        Some((
            seconds,
            format!(
                "Too many requests: the tenant submitted {} audit log queries in the last 24 hours (the most allowed is {}). Retry after {seconds} seconds.",
                state.graph.recent.len(),
                daily_limit
            ),
        ))
    } else {
        None
    };
    let Some((seconds, message)) = retry_after else {
        return Ok(());
    };
    state.stats.throttled += 1;
    let mut response = graph_error(
        state,
        now,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        message,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    Err(response)
}

/// `window` less the union of `covered`, as disjoint spans in time order.
fn uncovered(
    window: (DateTime<Utc>, DateTime<Utc>),
    mut covered: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    covered.sort();
    let mut spans = Vec::new();
    let mut from = window.0;
    for (s, e) in covered {
        if e <= from || s >= window.1 {
            continue;
        }
        if s > from {
            spans.push((from, s));
        }
        from = from.max(e);
        if from >= window.1 {
            break;
        }
    }
    if from < window.1 {
        spans.push((from, window.1));
    }
    spans
}

fn graph_delay(sim: &SimControl) -> TimeDelta {
    TimeDelta::from_std(sim.spec().graph_query_delay).unwrap_or(TimeDelta::MAX)
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A query as Graph shows it (`security.auditLogQuery`): the count fields once it has succeeded.
fn query_json(sim: &SimControl, q: &Query, now: DateTime<Utc>, delay: TimeDelta) -> Value {
    let status = q.status(now, delay);
    let mut body = json!({
        "id": q.id,
        "displayName": q.display_name,
        "filterStartDateTime": time_text(q.start),
        "filterEndDateTime": time_text(q.end),
        "recordTypeFilters": [],
        "keywordFilter": null,
        "serviceFilter": null,
        "operationFilters": q.operations,
        "userPrincipalNameFilters": [],
        "ipAddressFilters": [],
        "objectIdFilters": [],
        "administrativeUnitIdFilters": [],
        "status": status,
        "createdDateTime": time_text(q.created),
    });
    if status == "succeeded"
        && let Some(count) = q.count
    {
        let cap = sim.spec().graph_record_cap;
        body["recordCountLimit"] = cap.into();
        body["approximateReturnedRecordCount"] = count.into();
        body["isRecordCountLimitExceeded"] = (count > cap).into();
    }
    body
}

/// The records `q` serves, before its cap: those its window and filters select, less its late ones.
fn count_records(sim: &SimControl, q: &QueryScan) -> u64 {
    if q.zero {
        return 0;
    }
    let late_share = sim.spec().graph_late_share;
    let mut count = 0;
    sim.tenant
        .scan_audit_log(&q.audit(true), Position::default(), |record| {
            if !q.withholds(&record, late_share) {
                count += 1;
            }
            ControlFlow::Continue(())
        });
    count
}

/// What a scan of one query needs, copied out of the shared state so that no lock is held while
/// records are generated.
struct QueryScan {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    operations: Vec<String>,
    catalogue_len: usize,
    first_spans: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    zero: bool,
}

impl QueryScan {
    fn of(q: &Query) -> Self {
        Self {
            start: q.start,
            end: q.end,
            operations: q.lower_operations(),
            catalogue_len: q.catalogue_len,
            first_spans: q.first_spans.clone(),
            zero: q.zero,
        }
    }

    fn audit(&self, count_only: bool) -> AuditQuery<'_> {
        AuditQuery {
            start: self.start,
            end: self.end,
            operations: &self.operations,
            catalogue_len: self.catalogue_len,
            count_only,
        }
    }

    fn withholds(&self, record: &AuditRecord, late_share: f64) -> bool {
        record.late_draw < late_share
            && self
                .first_spans
                .iter()
                .any(|&(s, e)| s <= record.time && record.time < e)
    }
}

/// A query that succeeded gets its count, computed outside the lock the first time it is needed.
fn ensure_count(sim: &SimControl, id: &str) {
    let now = sim.now();
    let delay = graph_delay(sim);
    let scan = {
        let state = sim.state();
        match state.graph.queries.iter().find(|q| q.id == id) {
            Some(q) if q.count.is_none() && q.status(now, delay) == "succeeded" => QueryScan::of(q),
            _ => return,
        }
    };
    let count = count_records(sim, &scan);
    if let Some(q) = sim.state().graph.queries.iter_mut().find(|q| q.id == id) {
        q.count = Some(count);
    }
}

fn not_found(state: &mut Shared, now: DateTime<Utc>, id: &str) -> Response {
    graph_error(
        state,
        now,
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The audit log query '{id}' was not found."),
    )
}

async fn poll(
    State(sim): State<Arc<SimControl>>,
    Path(id): Path<String>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let now = sim.now();
    {
        let mut guard = sim.state();
        let state = &mut *guard;
        if let Err(response) = admit(&sim, state, |r| r.get += 1, &headers) {
            return response;
        }
        match state.graph.queries.iter_mut().find(|q| q.id == id) {
            Some(q) => q.polls += 1,
            None => return not_found(state, now, &id),
        }
    }
    // Counting generates the window's records: off the async workers.
    let (counter, counted) = (sim.clone(), id.clone());
    let _ = tokio::task::spawn_blocking(move || ensure_count(&counter, &counted)).await;
    let state = sim.state();
    let Some(q) = state.graph.queries.iter().find(|q| q.id == id) else {
        drop(state);
        return not_found(&mut sim.state(), now, &id);
    };
    let mut body = query_json(&sim, q, now, graph_delay(&sim));
    body["@odata.context"] = format!(
        "{}/graph/{}/$metadata#security/auditLog/queries/$entity",
        sim.base(),
        version(&uri)
    )
    .into();
    json_response(StatusCode::OK, body.to_string())
}

async fn list(
    State(sim): State<Arc<SimControl>>,
    uri: http::Uri,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let now = sim.now();
    let mut guard = sim.state();
    let state = &mut *guard;
    if let Err(response) = admit(&sim, state, |r| r.list += 1, &headers) {
        return response;
    }
    let params = Params::parse(raw.as_deref());
    let Some(skip) = params
        .get("$skiptoken")
        .map_or(Some(0), |t| t.parse::<usize>().ok())
    else {
        return graph_error(
            state,
            now,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid skip token.",
        );
    };
    let delay = graph_delay(&sim);
    let version = version(&uri);
    let queries = &state.graph.queries;
    let until = skip.saturating_add(LIST_PAGE).min(queries.len());
    let value: Vec<Value> = queries
        .get(skip..until)
        .unwrap_or_default()
        .iter()
        .map(|q| query_json(&sim, q, now, delay))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/graph/{version}/$metadata#security/auditLog/queries", sim.base()),
        "value": value,
    });
    if until < queries.len() {
        body["@odata.nextLink"] = format!(
            "{}/{version}/security/auditLog/queries?$skiptoken={until}",
            sim.graph_root()
        )
        .into();
    }
    json_response(StatusCode::OK, body.to_string())
}

async fn records(
    State(sim): State<Arc<SimControl>>,
    Path(id): Path<String>,
    uri: http::Uri,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let now = sim.now();
    let scan = {
        let mut guard = sim.state();
        let state = &mut *guard;
        if let Err(response) = admit(&sim, state, |r| r.records += 1, &headers) {
            return response;
        }
        let delay = graph_delay(&sim);
        let Some(q) = state.graph.queries.iter().find(|q| q.id == id) else {
            return not_found(state, now, &id);
        };
        let status = q.status(now, delay);
        if status != "succeeded" {
            let message =
                format!("The audit log query '{id}' has not succeeded: its status is {status}.");
            return graph_error(state, now, StatusCode::BAD_REQUEST, "BadRequest", message);
        }
        QueryScan::of(q)
    };
    let params = Params::parse(raw.as_deref());
    let page = sim.spec().graph_page_size.max(1);
    let top = match params.get("$top").map(str::parse::<usize>) {
        None => page,
        Some(Ok(top)) if top > 0 => top.min(page),
        Some(_) => return bad_request(&sim, now, "Invalid value for $top."),
    };
    let (from, served) = match params.get("$skiptoken") {
        None => (Position::default(), 0),
        Some(token) => match parse_skiptoken(token) {
            Some(at) => at,
            None => return bad_request(&sim, now, "Invalid skip token."),
        },
    };
    let version = version(&uri);
    let reader = sim.clone();
    let page = tokio::task::spawn_blocking(move || read_page(&reader, &scan, from, served, top));
    let Ok((value, next)) = page.await else {
        let message = "An unexpected error occurred. Please retry.";
        let mut state = sim.state();
        return graph_error(
            &mut state,
            now,
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            message,
        );
    };
    // A read cut short: its last page comes back empty (Faults::graph_short_reads).
    let value = if next.is_none() && take_short_read(&sim) {
        Vec::new()
    } else {
        value
    };
    let mut body = json!({
        "@odata.context": format!("{}/graph/{version}/$metadata#security/auditLog/queries('{id}')/records", sim.base()),
        "value": value,
    });
    if let Some((at, served)) = next {
        body["@odata.nextLink"] = format!(
            "{}/{version}/security/auditLog/queries/{id}/records?$top={top}&$skiptoken={}.{served}",
            sim.graph_root(),
            at.token()
        )
        .into();
    }
    json_response(StatusCode::OK, body.to_string())
}

/// Takes one of [`Faults::graph_short_reads`](crate::Faults::graph_short_reads), if any is left.
fn take_short_read(sim: &SimControl) -> bool {
    let mut state = sim.state();
    let left = state.faults.graph_short_reads > 0;
    if left {
        state.faults.graph_short_reads -= 1;
    }
    left
}

fn bad_request(sim: &SimControl, now: DateTime<Utc>, message: &str) -> Response {
    graph_error(
        &mut sim.state(),
        now,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        message,
    )
}

/// `phase.major.blob.slot.served`.
fn parse_skiptoken(token: &str) -> Option<(Position, u64)> {
    let (position, served) = token.rsplit_once('.')?;
    Some((Position::parse(position)?, served.parse().ok()?))
}

/// Up to `top` records from `from` on (`served` already served), never past the cap; and where
/// the next page starts, if another record remains within the cap.
fn read_page(
    sim: &SimControl,
    q: &QueryScan,
    from: Position,
    served: u64,
    top: usize,
) -> (Vec<Value>, Option<(Position, u64)>) {
    let cap = sim.spec().graph_record_cap;
    if q.zero || served >= cap {
        return (Vec::new(), None);
    }
    let late_share = sim.spec().graph_late_share;
    let room = usize::try_from(cap - served).unwrap_or(usize::MAX).min(top);
    let mut value = Vec::new();
    let mut next = None;
    sim.tenant.scan_audit_log(&q.audit(false), from, |record| {
        if q.withholds(&record, late_share) {
            return ControlFlow::Continue(());
        }
        if value.len() == room {
            let served = served + room as u64;
            if served < cap {
                next = Some((record.position, served));
            }
            return ControlFlow::Break(());
        }
        value.push(wrap(sim, record));
        ControlFlow::Continue(())
    });
    (value, next)
}

/// A record as Graph serves it (`security.auditLogRecord`): camelCase wrapper fields, and the
/// original record as `auditData`.
fn wrap(sim: &SimControl, audit: AuditRecord) -> Value {
    let record = &audit.record;
    let record_type = match record["RecordType"].as_u64() {
        Some(45) => "powerAppsApp",
        Some(20) => "powerBIAudit",
        Some(25) => "microsoftTeams",
        Some(6) => "sharePointFileOperation",
        Some(2) => "exchangeItem",
        Some(30) => "microsoftFlow",
        Some(66) => "microsoftForms",
        Some(21) => "crmEntityOperation",
        _ => "unknownFutureValue",
    };
    let user_type = if record["UserType"] == 2 {
        "admin"
    } else {
        "regular"
    };
    let upn = record["UserId"].as_str().filter(|u| u.contains('@'));
    json!({
        "id": audit.wrapper_id,
        "createdDateTime": time_text(audit.time),
        "auditLogRecordType": record_type,
        "operation": record["Operation"],
        "organizationId": sim.tenant.tenant_id(),
        "userType": user_type,
        "userId": record["UserKey"],
        "userPrincipalName": upn,
        "service": record["Workload"],
        "objectId": record.get("ObjectId"),
        "clientIp": record["ClientIP"],
        "administrativeUnits": [],
        "auditData": audit.record,
    })
}

/// Any other path under `/graph`: a Management path (`…/activity/…`) names the segment
/// `activity`; an audit-log path under an unknown version names `auditLog`; else the first
/// segment after the version.
async fn unknown_segment(State(sim): State<Arc<SimControl>>, uri: http::Uri) -> Response {
    let now = sim.now();
    let segments: Vec<&str> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .collect();
    let segment = if segments.contains(&"activity") {
        "activity"
    } else if segments.contains(&"auditLog") {
        "auditLog"
    } else {
        segments
            .get(1)
            .or(segments.first())
            .copied()
            .unwrap_or("graph")
    };
    let message = format!("Resource not found for the segment '{segment}'.");
    graph_error(
        &mut sim.state(),
        now,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        message,
    )
}
