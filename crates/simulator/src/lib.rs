//! A simulated Office 365 Management Activity API, Microsoft Graph audit log query API and Entra ID
//! token endpoint, in process, for integration tests, `auditsync demo` and benchmarks. It follows
//! management-api.md and graph-audit-api.md point by point, quirks included, so that a client passing
//! against it has met what production will throw at it.
//!
//! This file owns the public entry points ([`Simulator`], [`SimSpec`], [`SimServer`], [`SimHandle`])
//! and the connection loop. The rest:
//! - `tenant`: deterministic data (blobs, records, duplicates, late blobs) and the ground truth;
//! - `tenant::audit_log`: the audit log the Graph API searches: the same records (same Ids) as the
//!   blobs, each once, plus up to 400 days of history generated as it is read;
//! - `entra`: the token endpoints; `api`: the activity feed; `graph`: the Graph audit log query
//!   API; `faults`: injected misbehaviour;
//! - `control`: [`SimControl`], the runtime controls both servers deref to, and `/_sim/` over HTTP.
//!
//! # Routes (all under [`SimControl::base_url`], `http://127.0.0.1:PORT`)
//! - `POST /{tenant}/oauth2/token` (v1: form `grant_type=client_credentials`, `client_id`,
//!   `client_secret`, `resource={base}`; numbers in the answer are strings) and
//!   `POST /{tenant}/oauth2/v2.0/token` (v2: `scope={base}/.default`; numbers are numbers).
//!   Credentials may come as HTTP Basic instead. The base URL is both the authority and the resource.
//!   The Graph root `{base}/graph` ([`SimControl::graph_url`]) is a second resource: its tokens have
//!   `aud` = the Graph root and `roles` = [`SimSpec::graph_roles`]; each API refuses the other's
//!   tokens (the activity feed with its bare 401, Graph with 401 `InvalidAuthenticationToken`
//!   "Access token validation failure. Invalid audience."). With [`Faults::no_service_principal`],
//!   any token request answers AADSTS7000229.
//! - `POST /api/v1.0/{tenant}/activity/feed/subscriptions/start?contentType=…` (and `/stop`),
//!   `GET …/subscriptions/list`, `GET …/subscriptions/content?contentType&startTime&endTime[&nextPage]`,
//!   `GET …/audit/{contentId}`; the same under `/api/v1/`, which is what `NextPageUri` points to.
//!   `NextPageUri` carries no `PublisherIdentifier`: a client that wants its own quota adds it back.
//! - Graph, under `{base}/graph/v1.0/` and `{base}/graph/beta/` alike (graph-audit-api.md):
//!   - `POST …/security/auditLog/queries`: JSON `displayName`, `filterStartDateTime`,
//!     `filterEndDateTime` (ISO 8601; the window is [start, end) on `CreationTime` to the second),
//!     `operationFilters` (any case; none: every operation; other filters are ignored). 201 with the
//!     query (`status` notStarted, `createdDateTime`) and `Location`. 400 `Invalid request data`
//!     when a time is missing or end is not after start; 400 `AuditingDisabledTenant` when the audit
//!     log is off ([`SimControl::set_audit_log_enabled`]); 429 `TooManyRequests` with `Retry-After`
//!     past [`SimSpec::graph_running_limit`] or [`SimSpec::graph_daily_submissions`].
//!   - `GET …/queries/{id}`: one poll; notStarted, then running, then succeeded (or failed) as
//!     [`SimSpec::graph_query_delay`] says; once succeeded with `recordCountLimit`,
//!     `approximateReturnedRecordCount` and `isRecordCountLimitExceeded`
//!     ([`SimSpec::graph_record_cap`]). 404 `NotFound` for an unknown id.
//!   - `GET …/queries`: every query created, oldest first, 100 a page, `@odata.nextLink`
//!     (`$skiptoken`) to the next; it does not count as a poll.
//!   - `GET …/queries/{id}/records?$top=N`: the records of a succeeded query (400 before), pages of
//!     `min(N, graph_page_size)`, an absolute `@odata.nextLink` (`$top`, `$skiptoken`) while more
//!     remain within the cap. Each record: the camelCase wrapper (`id` a GUID of its own,
//!     `createdDateTime`, `auditLogRecordType`, `operation`, `organizationId`, `userType`, `userId`,
//!     `userPrincipalName`, `service`, `objectId`, `clientIp`, `administrativeUnits`) and `auditData`,
//!     the record exactly as a blob serves it. Late records ([`SimSpec::graph_late_share`]) are left
//!     out by the first query covering them.
//!   - Every Graph route: 401 `InvalidAuthenticationToken` for a missing, unknown, expired or
//!     wrong-audience token; 403 `App:<client id> dont have any permissions` for a token with neither
//!     `AuditLogsQuery.Read.All` nor `AuditLog.Read.All` (with the latter alone, queries succeed with
//!     zero records); then the faults [`Faults::graph_server_error`] and
//!     [`Faults::graph_drop_connection`]. Errors in Graph's shape, `{"error":{"code","message",
//!     "innerError":{"date","request-id","client-request-id"}}}`.
//!   - Any other path under `/graph`: 400 `Resource not found for the segment 'activity'` for a
//!     Management path (the wrong audience's symptom), `…'auditLog'` for the audit log under
//!     another version (the wrong cloud's symptom), else naming the first unknown segment.
//! - `GET /_sim/stats`, `PUT /_sim/faults` (JSON [`Faults`]), `GET /_sim/truth?contentType&startTime&
//!   endTime&operations=LaunchPowerApp,…` (JSON array of Ids), `GET /_sim/graph_truth?startTime&
//!   endTime&operations=…` ([`SimControl::graph_truth`] as a JSON array). The secret is never
//!   exposed there.
//!
//! The simulated clock starts at [`SimSpec::now`] and runs in real time; windows, expiry, tokens and
//! Graph queries' delays and daily allowance follow it.
//!
//! The audit log holds every record the blobs hold, once (blobs repeat some; `auditData.Id` is
//! unique), whether its blob is listed, expired or late (a late blob's records lie in the windows of
//! their own `CreationTime`), and, with [`SimSpec::history_days`], the hours before the laid-out
//! ones, laid out alike but drawn hour by hour as a scan reaches them: memory stays bounded whatever
//! the history, a query keeps a few fields, and a page costs what its records cost (its
//! `$skiptoken` names where the scan resumes). Unreadable slots
//! ([`SimSpec::unreadable_share`]) are intact there: the defect is the blob's. Same seed and `now` give byte-identical blobs and listings (up to the port in URIs).
//!
//! Start one with [`Simulator::start`] (async, current runtime), [`Simulator::start_on`] (a fixed
//! port) or [`Simulator::start_background`] (own runtime, for synchronous tests).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use auditsync_simulator::{SimSpec, Simulator};
//! let sim = Simulator::start(SimSpec::new(42)).await?;
//! let authority = sim.base_url(); // token host and API resource
//! let (tenant, client) = (&sim.spec().tenant_id, &sim.spec().client_id);
//! # let _ = (authority, tenant, client);
//! # Ok(()) }
//! ```

mod api;
mod control;
mod entra;
mod faults;
mod graph;
#[cfg(test)]
mod graph_tests;
mod tenant;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use url::Url;

pub use control::{ApiRequests, BlobInfo, SimControl, Stats};
pub use faults::{Faults, HugeBody};
pub use graph::GraphRequests;

use faults::DropConnection;
use tenant::{Stream, guid, seeded};

/// What to simulate. Build with [`SimSpec::new`] and adjust fields.
#[derive(Clone)]
pub struct SimSpec {
    /// Seeds every random stream: the identity below, the tenant's environments, apps and users, the
    /// blob catalogue, each record, fault decisions, token signatures and Entra trace ids. The same
    /// seed and `now` serve byte-identical blobs and listings (up to the port in URIs).
    pub seed: u64,
    /// Tenant GUID, lowercase and hyphenated; derived from the seed. The token endpoints know no other
    /// tenant (AADSTS90002), and tokens are issued for it (`tid`), so the API answers AF20010 to any
    /// other GUID in its URLs (management-api.md §1.1, §3). Compared case-insensitively.
    pub tenant_id: String,
    /// Application (client) id, a lowercase GUID; derived from the seed. An unknown id gets 400
    /// AADSTS700016 (management-api.md §4, Token errors). Compared case-insensitively.
    pub client_id: String,
    /// A 40-character Entra secret value (three letters or digits, a digit, `Q~`, then 34 characters
    /// of `[A-Za-z0-9._~-]`); derived from the seed. A wrong secret gets 401 AADSTS7000215
    /// (management-api.md §4, Token errors). Redacted in `Debug`.
    pub client_secret: String,
    /// Token requests with the right secret fail with 401 `invalid_client` AADSTS7000222
    /// (management-api.md §4, Token errors). Change it while running with
    /// [`SimControl::set_secret_expired`].
    pub secret_expired: bool,
    /// Roles put in the `roles` claim of tokens. Without `ActivityFeed.Read` the API answers 401 AF10001
    /// (management-api.md §1.1, §4 Permission). Change it while running with [`SimControl::set_roles`].
    pub roles: Vec<String>,
    /// When false, subscription start/list and content listing answer the "unified audit log off" 500
    /// (management-api.md §3); stop and blob GETs are unaffected. Change it while running with
    /// [`SimControl::set_audit_log_enabled`].
    pub audit_log_enabled: bool,
    /// `expires_in` of tokens (in whole seconds), and how long after issue, on the simulated clock, the
    /// API accepts them; an expired token gets the bare 401 (management-api.md §3).
    pub token_lifetime: Duration,
    /// Blobs per content-listing page (0 counts as 1); a listing with more carries `NextPageUri`
    /// (management-api.md §2.3, where the real page size is undocumented).
    pub page_size: usize,
    /// The instant the data is laid out up to, and where the simulated clock starts.
    pub now: DateTime<Utc>,
    /// Hours of data before `now`; more than 7 × 24 + 24 is taken as that. Blobs older than 7 days
    /// exist but are expired: not listed, and AF20051 when fetched (management-api.md §2.2).
    pub hours: u32,
    /// Audit.General blobs per hour, at random instants within it (Audit.SharePoint and Audit.Exchange
    /// get one every other hour, alternately).
    pub blobs_per_hour: u32,
    /// Records in each generated blob's JSON array. About 3 % of them repeat, byte for byte, a record
    /// of one of the 48 preceding blobs of the same content type (the API does not dedupe,
    /// management-api.md §2.2).
    pub records_per_blob: u32,
    /// Share of Audit.General records that are real LaunchPowerApp launches (~60 % RecordType 256,
    /// ~40 % legacy 45; management-api.md §5.2, §5.3).
    pub launch_share: f64,
    /// Share of Power Apps records (both schemas) that name their user one way only: half of them by
    /// Entra object id alone (`UserId` holds the object id, RecordType 256 without
    /// `enduser.principal_name`), half by UPN alone (`UserKey` a PUID rather than the object id,
    /// RecordType 256 without `enduser.id`). The other records carry both, which links the two.
    /// [`SimControl::unique_users`] counts people as a correct client can tell them apart.
    pub identity_mix: f64,
    /// Share of launch record slots (Audit.General) served unreadable, each with one defect: no
    /// `Id`, an `Id` that is an object, a `CreationTime` no client can read (`28/11/2026 13:29:30`),
    /// or the record as a JSON string or `null` instead of an object. The rest of the blob is
    /// intact. Ground truth excludes them; [`SimControl::unreadable_records`] counts them. 0 by
    /// default.
    pub unreadable_share: f64,
    /// (content type, enabled) subscriptions present at start, as if started earlier. Content
    /// listing needs an enabled one: AF20022 without, AF20023 if disabled (management-api.md §3).
    pub initial_subscriptions: Vec<(String, bool)>,
    /// Misbehaviour injected from the start; [`SimControl::set_faults`] or `PUT /_sim/faults` replace
    /// it while running.
    pub faults: Faults,
    /// Blob bodies are sent gzip-compressed (`Content-Encoding: gzip`) to clients whose
    /// `Accept-Encoding` mentions gzip. Listings are never compressed.
    pub gzip: bool,
    /// Days before `now` the audit log (the Graph API) holds, at most 400 (more is taken as 400).
    /// Hours beyond the laid-out `hours` are history only the Graph API serves, generated as pages
    /// are read (never held), laid out like the catalogue's hours. 0: the Graph API serves the
    /// records of the laid-out blobs only. Default 0.
    pub history_days: u32,
    /// The `roles` claim of tokens issued for the Graph root (`{base}/graph`). Queries need
    /// `AuditLogsQuery.Read.All`; with `AuditLog.Read.All` alone they succeed with zero records (as
    /// seen since April 2026, graph-audit-api.md); with neither, 403 `App:<client id> dont have any
    /// permissions`. Default `["AuditLogsQuery.Read.All"]`; [`SimControl::set_graph_roles`] changes
    /// it while running.
    pub graph_roles: Vec<String>,
    /// A query answers `notStarted` on its first poll (`GET …/queries/{id}`), `running` on its
    /// second, and `running` until this long has passed since its creation (simulated clock), then
    /// `succeeded` (or `failed`, see [`Faults::graph_fail_queries`]). Default 0.
    pub graph_query_delay: Duration,
    /// Records per page of `…/records` (0 counts as 1); a client's smaller `$top` wins. Default 1000.
    pub graph_page_size: usize,
    /// The most records a query returns (`recordCountLimit`). A query matching more succeeds with
    /// `isRecordCountLimitExceeded: true`, `approximateReturnedRecordCount` the number matched, and
    /// serves the first this many. Default 1 000 000 (graph-audit-api.md, Limits).
    pub graph_record_cap: u64,
    /// A create while this many queries are notStarted or running answers 429 `TooManyRequests`
    /// with `Retry-After: 30`. Default 10 (what tools see, graph-audit-api.md).
    /// [`SimControl::set_graph_limits`] changes it while running.
    pub graph_running_limit: usize,
    /// A create after this many creates in the last 24 simulated hours answers 429 with
    /// `Retry-After` = the seconds until the oldest of them is 24 hours old. Refused creates do not
    /// count. Default 200 (graph-audit-api.md). [`SimControl::set_graph_limits`] changes it while
    /// running.
    pub graph_daily_submissions: usize,
    /// Share of records (drawn per record) that are late: the first query covering a late record's
    /// `CreationTime` leaves it out; every later query covering it serves it ("covering": the
    /// window contains it, whatever its filters; failed queries cover nothing). Default 0.
    pub graph_late_share: f64,
}

impl SimSpec {
    /// The defaults: identity derived from `seed`, roles `ActivityFeed.Read` and `ServiceHealth.Read`,
    /// audit log on, tokens for 3599 s, pages of 100, 24 hours up to `Utc::now()` at 4 blobs an hour
    /// of 50 records, 10 % launches, 10 % of Power Apps records naming their user one way only, no
    /// unreadable records, no subscriptions, no faults; for the Graph API: no history beyond the
    /// laid-out hours, role `AuditLogsQuery.Read.All`, no query delay, pages of 1000, a cap of
    /// 1 000 000 records, 10 running queries and 200 submissions a day, no late records.
    pub fn new(seed: u64) -> Self {
        let mut rng = seeded(seed, Stream::Identity, 0, 0);
        Self {
            seed,
            tenant_id: guid(&mut rng),
            client_id: guid(&mut rng),
            client_secret: entra::client_secret(&mut rng),
            secret_expired: false,
            roles: vec!["ActivityFeed.Read".into(), "ServiceHealth.Read".into()],
            audit_log_enabled: true,
            token_lifetime: Duration::from_secs(3599),
            page_size: 100,
            now: Utc::now(),
            hours: 24,
            blobs_per_hour: 4,
            records_per_blob: 50,
            launch_share: 0.1,
            identity_mix: 0.1,
            unreadable_share: 0.0,
            initial_subscriptions: Vec::new(),
            faults: Faults::default(),
            gzip: false,
            history_days: 0,
            graph_roles: vec!["AuditLogsQuery.Read.All".into()],
            graph_query_delay: Duration::ZERO,
            graph_page_size: 1000,
            graph_record_cap: 1_000_000,
            graph_running_limit: 10,
            graph_daily_submissions: 200,
            graph_late_share: 0.0,
        }
    }
}

impl Default for SimSpec {
    fn default() -> Self {
        Self::new(0)
    }
}

impl fmt::Debug for SimSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSpec")
            .field("seed", &self.seed)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("secret_expired", &self.secret_expired)
            .field("roles", &self.roles)
            .field("audit_log_enabled", &self.audit_log_enabled)
            .field("token_lifetime", &self.token_lifetime)
            .field("page_size", &self.page_size)
            .field("now", &self.now)
            .field("hours", &self.hours)
            .field("blobs_per_hour", &self.blobs_per_hour)
            .field("records_per_blob", &self.records_per_blob)
            .field("launch_share", &self.launch_share)
            .field("identity_mix", &self.identity_mix)
            .field("unreadable_share", &self.unreadable_share)
            .field("initial_subscriptions", &self.initial_subscriptions)
            .field("faults", &self.faults)
            .field("gzip", &self.gzip)
            .field("history_days", &self.history_days)
            .field("graph_roles", &self.graph_roles)
            .field("graph_query_delay", &self.graph_query_delay)
            .field("graph_page_size", &self.graph_page_size)
            .field("graph_record_cap", &self.graph_record_cap)
            .field("graph_running_limit", &self.graph_running_limit)
            .field("graph_daily_submissions", &self.graph_daily_submissions)
            .field("graph_late_share", &self.graph_late_share)
            .finish()
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime until the returned
    /// server is dropped. Fails only if the listener cannot be bound.
    pub async fn start(spec: SimSpec) -> io::Result<SimServer> {
        Self::start_on(spec, 0).await
    }

    /// As [`Simulator::start`], on 127.0.0.1:`port` (0 picks a free one), for a simulator that other
    /// processes must find. Fails if the port cannot be bound (e.g. it is in use).
    pub async fn start_on(spec: SimSpec, port: u16) -> io::Result<SimServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let base_url =
            Url::parse(&format!("http://{}", listener.local_addr()?)).map_err(io::Error::other)?;
        let control = Arc::new(SimControl::new(spec, base_url));
        let app = Router::new()
            .merge(entra::routes())
            .merge(api::routes())
            .merge(graph::routes())
            .merge(control::routes())
            .with_state(control.clone());
        let task = tokio::spawn(serve(listener, app));
        Ok(SimServer { control, task })
    }

    /// For synchronous tests: serves from its own multi-thread runtime (two workers) on a background
    /// thread until the returned handle is dropped. Returns once the server is listening; fails if the
    /// thread or the runtime cannot be created or the listener cannot be bound.
    pub fn start_background(spec: SimSpec) -> io::Result<SimHandle> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("auditsync-simulator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => return drop(ready_tx.send(Err(error))),
                };
                runtime.block_on(async move {
                    match Simulator::start(spec).await {
                        Ok(server) => {
                            // If the handle is gone already, stop at once.
                            if ready_tx.send(Ok(server.control.clone())).is_ok() {
                                let _ = stop_rx.await;
                            }
                        }
                        Err(error) => drop(ready_tx.send(Err(error))),
                    }
                });
            })?;
        let control = ready_rx.recv().map_err(|_| {
            io::Error::other("the simulator thread exited before it started serving")
        })??;
        Ok(SimHandle {
            control,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A simulator serving on the runtime that started it; dropping it stops the server.
pub struct SimServer {
    control: Arc<SimControl>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// The controls, to share with other tasks.
    pub fn control(&self) -> Arc<SimControl> {
        self.control.clone()
    }

    /// Stops serving (as dropping does).
    pub fn shutdown(self) {}
}

impl Deref for SimServer {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A simulator serving from its own runtime thread; dropping it stops the server and joins the thread.
pub struct SimHandle {
    control: Arc<SimControl>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimHandle {
    /// The controls, to share with other threads.
    pub fn control(&self) -> Arc<SimControl> {
        self.control.clone()
    }
}

impl Deref for SimHandle {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The error a connection ends with when a fault drops it.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// Accepts connections and serves each with hyper, so that a response marked [`DropConnection`] can
/// become a connection closed without an answer. Aborting this task aborts every connection.
async fn serve(listener: TcpListener, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "simulator: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let app = app.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move {
                    let response = match app.oneshot(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    if response.extensions().get::<DropConnection>().is_some() {
                        Err(Dropped)
                    } else {
                        Ok(response)
                    }
                }
            });
            // Errors are clients going away or injected drops; the connection is over either way.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// `application/json; charset=utf-8`, as both services send it.
const JSON: &str = "application/json; charset=utf-8";

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(JSON))],
        body.into(),
    )
        .into_response()
}
