//! The simulator's shared state and its control surface: [`SimControl`] (what tests call on a running
//! simulator), [`Stats`], [`BlobInfo`], and the same controls over HTTP under `/_sim/`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{RawQuery, State as Extract};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use http::StatusCode;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use url::Url;

use super::SimSpec;
use super::api::{Params, parse_time};
use super::entra::Signer;
use super::faults::Faults;
use super::graph::{Graph, GraphRequests};
use super::tenant::{AuditQuery, Blob, Position, Stream, Tenant, seeded};

/// Counters of what clients did, for assertions; a snapshot from [`SimControl::stats`] or
/// `GET /_sim/stats` (this struct as JSON, field names as here). Request counters count every request
/// that reached a route, whatever its outcome. Counters start at zero and are never reset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Requests to either token endpoint (v1 or v2), including refused and faulted ones.
    pub token_requests: u32,
    /// Activity-feed requests by route, counted before the token is checked.
    pub api_requests: ApiRequests,
    /// Blob GETs per (percent-decoded) content id, including refused and faulted ones.
    pub blob_fetches_by_content_id: BTreeMap<String, u32>,
    /// API requests without a `PublisherIdentifier` query parameter, or with an empty one (the real
    /// service puts them in a shared throttling quota, management-api.md §1.2, §2.4).
    pub requests_without_publisher_identifier: u32,
    /// AF429 answers (403 or 429), from [`Faults::throttle`] or [`Faults::rate_limit`].
    pub throttled: u32,
    /// Injected 500/503 answers from [`Faults::server_error`] (not the configured "audit log off"
    /// 500s, nor the 500s of [`Faults::broken_blobs`]).
    pub server_errors: u32,
    /// Connections closed without an answer by [`Faults::drop_connection`].
    pub dropped: u32,
    /// 200 answers whose body [`Faults::cut_body`] cut short.
    pub cut: u32,
    /// 401 answers on the API: bad, expired, revoked or missing token, or AF10001.
    pub unauthorized: u32,
    /// Blob answers sent gzip-compressed.
    pub gzipped: u32,
    /// Every access token issued, in order, so a test can look for leaks.
    pub issued_tokens: Vec<String>,
    /// Graph audit log query API requests by route, counted before the token is checked.
    pub graph_requests: GraphRequests,
}

/// API requests by route, under either `/api/v1.0/` or `/api/v1/` (management-api.md §1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequests {
    /// `POST …/subscriptions/start`.
    pub start: u32,
    /// `POST …/subscriptions/stop`.
    pub stop: u32,
    /// `GET …/subscriptions/list`.
    pub list: u32,
    /// `GET …/subscriptions/content`, every page.
    pub content: u32,
    /// `GET …/audit/{contentId}`.
    pub blob: u32,
}

/// A content blob as the listing would show it (management-api.md §1.2, "List available content"),
/// whether or not it has expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobInfo {
    /// `contentId`, opaque to clients, in BEATS' style (management-api.md §1.2):
    /// `{created}${created + 1 h}$audit_general$Audit_General${region}` for Audit.General (likewise
    /// for the other content types), each stamp `yyyyMMddHHmmss` then 7 digits (the milliseconds,
    /// then the blob's index modulo 10 000), the region suffix (e.g. `emea0026`) fixed per tenant.
    pub content_id: String,
    /// `contentUri`: `{base}/api/v1.0/{tenant}/activity/feed/audit/{contentId}`, the id verbatim
    /// (with its `$`).
    pub content_uri: String,
    /// `contentCreated`, to the millisecond: what listing windows select on (management-api.md §2.1).
    pub created: DateTime<Utc>,
    /// `contentExpiration`: `created` + 7 days (management-api.md §2.2) unless
    /// [`SimControl::set_expiration`] moved it. From then on the blob is not listed and its GET
    /// answers AF20051.
    pub expiration: DateTime<Utc>,
    /// [`SimSpec::records_per_blob`]: the records a generated blob holds, duplicates included. For a
    /// blob from [`SimControl::publish_blob_with_body`] it is still that number, not the body's.
    pub record_count: u32,
    /// Its events are 3 to 12 hours older than `created` instead of 5 to 90 minutes (a later blob can
    /// hold older events, management-api.md §2.2).
    pub late: bool,
}

/// An access token the token endpoint issued.
pub(super) struct IssuedToken {
    /// Its `tid`: the only tenant whose URLs it opens (AF20010 otherwise).
    pub(super) tenant: String,
    /// Its `roles` claim, as the roles were when it was issued.
    pub(super) roles: Vec<String>,
    /// Its `aud`: the resource asked for, the base URL or the Graph root (`{base}/graph`), without
    /// a trailing `/`.
    pub(super) audience: String,
    /// Its `exp`, on the simulated clock: the API refuses it from then on.
    pub(super) expires: DateTime<Utc>,
}

/// What changes while the simulator runs. It starts from the [`SimSpec`].
pub(super) struct State {
    /// The faults in force ([`SimControl::set_faults`]).
    pub(super) faults: Faults,
    /// Roles for tokens issued from now on ([`SimControl::set_roles`]).
    pub(super) roles: Vec<String>,
    /// Roles for Graph tokens issued from now on ([`SimControl::set_graph_roles`]).
    pub(super) graph_roles: Vec<String>,
    /// The Graph API's queries and submissions.
    pub(super) graph: Graph,
    /// Whether the right secret is refused with AADSTS7000222 ([`SimControl::set_secret_expired`]).
    pub(super) secret_expired: bool,
    /// Whether unified audit logging is on ([`SimControl::set_audit_log_enabled`]).
    pub(super) audit_log_enabled: bool,
    /// (content type, enabled), in the order first started.
    pub(super) subscriptions: Vec<(String, bool)>,
    /// Every access token issued and not revoked, by its text; expired ones stay until revoked.
    pub(super) tokens: HashMap<String, IssuedToken>,
    /// The counters [`SimControl::stats`] copies out.
    pub(super) stats: Stats,
    /// Fault decisions, token signatures and error trace ids.
    pub(super) rng: StdRng,
    /// Admission times inside the current `rate_limit` window.
    pub(super) admitted: VecDeque<Instant>,
}

/// A running simulator: [`SimServer`](super::SimServer) and [`SimHandle`](super::SimHandle) deref to it.
///
/// Its clock starts at `SimSpec::now` and advances with real time; [`SimControl::now`] reads it.
pub struct SimControl {
    spec: SimSpec,
    base_url: Url,
    started: Instant,
    /// The stable parts of the tokens issued.
    pub(super) signer: Signer,
    /// The data served.
    pub(super) tenant: Tenant,
    state: Mutex<State>,
}

impl SimControl {
    /// Lays out the tenant's data for `spec` and starts the clock; `base_url` is where the server
    /// listens.
    pub(super) fn new(spec: SimSpec, base_url: Url) -> Self {
        let state = State {
            faults: spec.faults.clone(),
            roles: spec.roles.clone(),
            graph_roles: spec.graph_roles.clone(),
            graph: Graph::new(&spec),
            secret_expired: spec.secret_expired,
            audit_log_enabled: spec.audit_log_enabled,
            subscriptions: spec.initial_subscriptions.clone(),
            tokens: HashMap::new(),
            stats: Stats::default(),
            rng: seeded(spec.seed, Stream::Faults, 0, 0),
            admitted: VecDeque::new(),
        };
        Self {
            signer: Signer::new(spec.seed),
            tenant: Tenant::new(&spec),
            started: Instant::now(),
            state: Mutex::new(state),
            spec,
            base_url,
        }
    }

    /// Renders every blob's body now, on all cores, so that serving is memory only (benchmarks).
    pub fn prerender(&self) {
        let count = self.tenant.len();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::thread::scope(|scope| {
            for t in 0..threads {
                scope.spawn(move || {
                    for index in (t..count).step_by(threads) {
                        self.tenant.body(index);
                    }
                });
            }
        });
    }

    /// Locks the mutable state; a lock poisoned by a panicking handler is taken over.
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT/`: the token authority and the API resource (audience) at once.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The base URL without its trailing slash, as URIs are built from it.
    pub(super) fn base(&self) -> &str {
        self.base_url.as_str().trim_end_matches('/')
    }

    /// The spec the simulator started with (tenant id, client id and secret for a test's config).
    /// Runtime changes (`set_*`) do not show here.
    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    /// The simulated clock: `spec.now` plus the time since start.
    pub fn now(&self) -> DateTime<Utc> {
        self.spec.now + TimeDelta::from_std(self.started.elapsed()).unwrap_or_default()
    }

    /// Replaces the injected faults, all of them (fields left at their default mean none), from the
    /// next request on; `PUT /_sim/faults` does the same. The admissions [`Faults::rate_limit`] has
    /// counted are kept across calls.
    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Roles put in tokens issued from now on (tokens already issued keep theirs, as in Entra).
    /// Without `ActivityFeed.Read` the API answers 401 AF10001 (management-api.md §4, Permission).
    pub fn set_roles<I, S>(&self, roles: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state().roles = roles.into_iter().map(Into::into).collect();
    }

    /// Roles put in Graph tokens (resource `{base}/graph`) issued from now on; see
    /// [`SimSpec::graph_roles`].
    pub fn set_graph_roles<I, S>(&self, roles: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.state().graph_roles = roles.into_iter().map(Into::into).collect();
    }

    /// The Graph root, `http://127.0.0.1:PORT/graph` (no trailing `/`): the resource of Graph tokens
    /// (v1 `resource=`, v2 `scope={root}/.default`) and the `endpoint` a client puts the version
    /// after (`{root}/v1.0/security/auditLog/queries`).
    pub fn graph_url(&self) -> Url {
        Url::parse(&self.graph_root()).unwrap_or_else(|_| self.base_url.clone())
    }

    /// [`SimControl::graph_url`] as text.
    pub(super) fn graph_root(&self) -> String {
        format!("{}/graph", self.base())
    }

    /// The distinct `auditData.Id`s of the audit log whose `CreationTime` (whole seconds) is in
    /// [start, end) and whose `Operation` is one of `operations` (any case; empty: all), sorted:
    /// what a complete set of Graph queries over the window returns, late records included, no cap.
    /// The records are the Management API's (same Ids), each once, over
    /// [`SimSpec::history_days`].
    pub fn graph_truth(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> Vec<String> {
        let operations: Vec<String> = operations.iter().map(|o| o.to_lowercase()).collect();
        let query = AuditQuery {
            start,
            end,
            operations: &operations,
            catalogue_len: usize::MAX,
            count_only: false,
        };
        let mut ids = Vec::new();
        self.tenant
            .scan_audit_log(&query, Position::default(), |record| {
                if let Some(id) = record.record["Id"].as_str() {
                    ids.push(id.to_owned());
                }
                std::ops::ControlFlow::Continue(())
            });
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Replaces [`SimSpec::graph_running_limit`] and [`SimSpec::graph_daily_submissions`] from the
    /// next create on (e.g. a test's "later run" after a throttled one). Submissions already counted
    /// in the last 24 hours stay counted.
    pub fn set_graph_limits(&self, running: usize, daily_submissions: usize) {
        let mut state = self.state();
        state.graph.running_limit = running;
        state.graph.daily_submissions = daily_submissions;
    }

    /// Graph queries the tenant accepted (`POST …/queries` answered 201) since start.
    pub fn graph_submissions(&self) -> usize {
        self.state().graph.submissions
    }

    /// Graph requests by route since start (also in [`Stats::graph_requests`]).
    pub fn graph_requests(&self) -> GraphRequests {
        self.state().stats.graph_requests
    }

    /// Token requests with the right secret then fail with AADSTS7000222; issued tokens stay valid.
    pub fn set_secret_expired(&self, expired: bool) {
        self.state().secret_expired = expired;
    }

    /// With `false`, subscription start/list and content listing answer the "unified audit log off" 500.
    pub fn set_audit_log_enabled(&self, enabled: bool) {
        self.state().audit_log_enabled = enabled;
    }

    /// (content type, "enabled" | "disabled") for every content type ever started, initial
    /// subscriptions first, in the order first started: what `GET …/subscriptions/list` shows.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.state()
            .subscriptions
            .iter()
            .map(|(ct, enabled)| {
                (
                    ct.clone(),
                    if *enabled { "enabled" } else { "disabled" }.to_owned(),
                )
            })
            .collect()
    }

    /// A snapshot of the counters since start.
    pub fn stats(&self) -> Stats {
        self.state().stats.clone()
    }

    /// The Ids a correct client stores for `operations` from the blobs of `content_type` whose
    /// `contentCreated` is in [start, end) and that have not expired: every record whose `Operation` is
    /// one of `operations` (not the decoys that only mention it elsewhere). Computed from the records
    /// served.
    pub fn ground_truth(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> BTreeSet<String> {
        self.tenant
            .ground_truth(content_type, start, end, self.now(), operations)
    }

    /// How many records of the blobs [`SimControl::ground_truth`] looks at a correct client cannot
    /// read and quarantines: not a JSON object, no string `Id`, or (a record to keep) a
    /// `CreationTime` that is not a time (see [`SimSpec::unreadable_share`](crate::SimSpec)).
    pub fn unreadable_records(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> usize {
        self.tenant
            .unreadable_records(content_type, start, end, self.now(), operations)
    }

    /// How many people launched apps (LaunchPowerApp) in the blobs of `content_type` listed for
    /// [start, end), as a correct client can tell them apart: a record naming a UPN and an object id
    /// makes them one person; records naming one only are that person too when such a link exists
    /// (see [`SimSpec::identity_mix`](crate::SimSpec)).
    pub fn unique_users(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> usize {
        self.tenant
            .unique_users(content_type, start, end, self.now())
    }

    /// Every blob of `content_type` (expired ones too), sorted by `created`.
    pub fn blobs(&self, content_type: &str) -> Vec<BlobInfo> {
        self.tenant
            .blobs(content_type)
            .iter()
            .map(|blob| BlobInfo {
                content_id: blob.content_id.clone(),
                content_uri: self.content_uri(blob),
                created: blob.created,
                expiration: blob.expiration(),
                record_count: self.tenant.records_per_blob(),
                late: blob.late,
            })
            .collect()
    }

    /// Adds an Audit.General blob with `contentCreated` = `created` truncated to the millisecond (may
    /// be in the past: content that arrives late inside a window already synced, management-api.md
    /// §2.2) and fresh records; returns its content id.
    pub fn publish_blob(&self, created: DateTime<Utc>) -> String {
        self.tenant.publish(created)
    }

    /// Adds an Audit.General blob created at `created` whose body is `body` verbatim (invalid JSON, not
    /// an array, records without Id...); returns its content id. Ground truth counts the records of a
    /// JSON array that a correct client can read (the others it quarantines); nothing of another body.
    pub fn publish_blob_with_body(
        &self,
        created: DateTime<Utc>,
        body: impl Into<bytes::Bytes>,
    ) -> String {
        self.tenant.publish_body(created, body.into())
    }

    /// Makes a blob expire at `at` instead of 7 days after its creation (live logs show other
    /// lifetimes, management-api.md §2.2): it is no longer listed or served after that (AF20051). An
    /// unknown content id is ignored.
    pub fn set_expiration(&self, content_id: &str, at: DateTime<Utc>) {
        self.tenant.set_expiration(content_id, at);
    }

    /// Forgets every token issued so far, as if they had been revoked: the API answers 401 to them.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// `{base}/api/v1.0/{tenant}/activity/feed/audit/{contentId}`, the id verbatim (with its `$`).
    pub(super) fn content_uri(&self, blob: &Blob) -> String {
        format!(
            "{}/api/v1.0/{}/activity/feed/audit/{}",
            self.base(),
            self.spec.tenant_id,
            blob.content_id
        )
    }
}

/// `GET /_sim/stats`, `PUT /_sim/faults`, `GET /_sim/truth`: for a simulator in another process.
pub(super) fn routes() -> Router<Arc<SimControl>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", put(set_faults))
        .route("/_sim/truth", get(truth))
        .route("/_sim/graph_truth", get(graph_truth))
}

/// `?startTime=…&endTime=…&operations=LaunchPowerApp,…` (operations default to LaunchPowerApp):
/// [`SimControl::graph_truth`] as a JSON array.
async fn graph_truth(
    Extract(sim): Extract<Arc<SimControl>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<String>>, (StatusCode, String)> {
    let params = Params::parse(query.as_deref());
    let time = |name: &str| {
        params.get(name).and_then(parse_time).ok_or_else(|| {
            let message = format!("{name} is required, as YYYY-MM-DD[THH:MM[:SS[.fffffff]]][Z]");
            (StatusCode::BAD_REQUEST, message)
        })
    };
    let (start, end) = (time("startTime")?, time("endTime")?);
    let operations: Vec<&str> = params
        .get("operations")
        .unwrap_or("LaunchPowerApp")
        .split(',')
        .map(str::trim)
        .filter(|op| !op.is_empty())
        .collect();
    let sim2 = sim.clone();
    let owned: Vec<String> = operations.iter().map(|s| (*s).to_owned()).collect();
    let ids = tokio::task::spawn_blocking(move || {
        let operations: Vec<&str> = owned.iter().map(String::as_str).collect();
        sim2.graph_truth(start, end, &operations)
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(ids))
}

async fn stats(Extract(sim): Extract<Arc<SimControl>>) -> Json<Stats> {
    Json(sim.stats())
}

async fn set_faults(
    Extract(sim): Extract<Arc<SimControl>>,
    Json(faults): Json<Faults>,
) -> StatusCode {
    sim.set_faults(faults);
    StatusCode::NO_CONTENT
}

/// `?contentType=Audit.General&startTime=…&endTime=…&operations=LaunchPowerApp,DeletePowerApp`;
/// contentType and operations default to Audit.General and LaunchPowerApp.
async fn truth(
    Extract(sim): Extract<Arc<SimControl>>,
    RawQuery(query): RawQuery,
) -> Result<Json<BTreeSet<String>>, (StatusCode, String)> {
    let params = Params::parse(query.as_deref());
    let time = |name: &str| {
        params.get(name).and_then(parse_time).ok_or_else(|| {
            let message = format!("{name} is required, as YYYY-MM-DD[THH:MM[:SS[.fffffff]]][Z]");
            (StatusCode::BAD_REQUEST, message)
        })
    };
    let (start, end) = (time("startTime")?, time("endTime")?);
    let content_type = params.get("contentType").unwrap_or("Audit.General");
    let operations: Vec<&str> = params
        .get("operations")
        .unwrap_or("LaunchPowerApp")
        .split(',')
        .map(str::trim)
        .filter(|op| !op.is_empty())
        .collect();
    Ok(Json(sim.ground_truth(
        content_type,
        start,
        end,
        &operations,
    )))
}
