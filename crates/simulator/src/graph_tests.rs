//! Tests of the simulated Graph audit log query API through a real HTTP client: Graph tokens, the
//! query lifecycle, paging, the record cap, throttling, late records, errors and faults, and that
//! its records are the Management API's, each once, over the history.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use url::form_urlencoded;

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-20T12:00:00Z")
        .expect("a fixed instant")
        .to_utc()
}

fn day(days_ago: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-20T00:00:00Z")
        .expect("a fixed day")
        .to_utc()
        - TimeDelta::days(days_ago)
}

fn spec() -> SimSpec {
    SimSpec {
        now: now(),
        records_per_blob: 20,
        launch_share: 0.3,
        ..SimSpec::new(11)
    }
}

fn http() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

/// A token for `resource` through v1 (`resource=`), or v2 (`scope={resource}/.default`).
async fn token_for(sim: &SimControl, resource: &str, v2: bool) -> Value {
    let spec = sim.spec();
    let (path, field, value) = if v2 {
        ("oauth2/v2.0/token", "scope", format!("{resource}/.default"))
    } else {
        ("oauth2/token", "resource", resource.to_owned())
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", &spec.client_id),
            ("client_secret", &spec.client_secret),
            (field, &value),
        ])
        .finish();
    let response = http()
        .post(format!("{}/{}/{path}", sim.base(), spec.tenant_id))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("a token response");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("a JSON token")
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

struct Fixture {
    sim: SimServer,
    token: String,
    http: Client,
}

impl Fixture {
    async fn new(spec: SimSpec) -> Self {
        let sim = Simulator::start(spec).await.expect("a simulator");
        let token = Self::graph_token(&sim).await;
        Self {
            sim,
            token,
            http: http(),
        }
    }

    async fn graph_token(sim: &SimControl) -> String {
        let root = sim.graph_url().to_string();
        let body = token_for(sim, root.trim_end_matches('/'), false).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    fn queries(&self) -> String {
        format!("{}/v1.0/security/auditLog/queries", self.sim.graph_root())
    }

    async fn get(&self, url: &str) -> Response {
        self.http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("a response")
    }

    async fn create_body(&self, body: Value) -> Response {
        self.http
            .post(self.queries())
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("a response")
    }

    async fn create(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> Response {
        self.create_body(json!({
            "displayName": format!("auditsync backfill {}/{}", start.to_rfc3339(), end.to_rfc3339()),
            "filterStartDateTime": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "filterEndDateTime": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "operationFilters": operations,
        }))
        .await
    }

    /// Creates a query and returns its id.
    async fn submit(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> String {
        let response = self.create(start, end, operations).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("a JSON query");
        assert_eq!(body["status"], "notStarted");
        body["id"].as_str().expect("id").to_owned()
    }

    async fn poll(&self, id: &str) -> Value {
        let response = self.get(&format!("{}/{id}", self.queries())).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON query")
    }

    /// Polls until the query is no longer notStarted or running (at most 10 polls).
    async fn finish(&self, id: &str) -> Value {
        for _ in 0..10 {
            let query = self.poll(id).await;
            if !matches!(query["status"].as_str(), Some("notStarted" | "running")) {
                return query;
            }
        }
        panic!("query {id} still running after 10 polls");
    }

    /// Every record of a succeeded query, following `@odata.nextLink` as given; and the links.
    async fn read_all(&self, id: &str, top: usize) -> (Vec<Value>, Vec<String>) {
        let mut url = format!("{}/{id}/records?$top={top}", self.queries());
        let (mut records, mut links) = (Vec::new(), Vec::new());
        loop {
            let response = self.get(&url).await;
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let page: Value = response.json().await.expect("a JSON page");
            let value = page["value"].as_array().expect("value");
            assert!(value.len() <= top);
            records.extend(value.iter().cloned());
            match page["@odata.nextLink"].as_str() {
                Some(next) => {
                    assert!(!value.is_empty(), "a page with a next link holds records");
                    links.push(next.to_owned());
                    url = next.to_owned();
                }
                None => return (records, links),
            }
        }
    }

    /// Submits, finishes and reads one query; its `auditData.Id`s in order served.
    async fn ids(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        operations: &[&str],
    ) -> Vec<String> {
        let id = self.submit(start, end, operations).await;
        let query = self.finish(&id).await;
        assert_eq!(query["status"], "succeeded");
        let (records, _) = self.read_all(&id, 1000).await;
        // The count announced is the count served (late records left out of both).
        assert_eq!(query["approximateReturnedRecordCount"], records.len());
        records.iter().map(audit_id).collect()
    }
}

fn audit_id(record: &Value) -> String {
    record["auditData"]["Id"]
        .as_str()
        .expect("auditData.Id")
        .to_owned()
}

/// `CreationTime` as the records write it (no zone, `Z`, or 7 fraction digits), to the second.
fn creation_second(record: &Value) -> DateTime<Utc> {
    let text = record["CreationTime"].as_str().expect("CreationTime");
    let seconds = chrono::NaiveDateTime::parse_from_str(&text[..19], "%Y-%m-%dT%H:%M:%S")
        .expect("a CreationTime");
    seconds.and_utc()
}

/// (status, code, message) of a Graph error, checking its shape.
async fn graph_error(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error");
    let inner = &body["error"]["innerError"];
    assert!(
        inner["request-id"].is_string() && inner["date"].is_string(),
        "{body}"
    );
    let field = |name: &str| body["error"][name].as_str().unwrap_or_default().to_owned();
    (status, field("code"), field("message"))
}

#[tokio::test]
async fn a_query_moves_from_not_started_to_running_to_succeeded_over_polls() {
    let f = Fixture::new(spec()).await;
    let id = f.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    let statuses: Vec<Value> = [f.poll(&id).await, f.poll(&id).await, f.poll(&id).await]
        .iter()
        .map(|q| q["status"].clone())
        .collect();
    assert_eq!(statuses, ["notStarted", "running", "succeeded"]);
    let query = f.poll(&id).await;
    assert_eq!(query["filterStartDateTime"], "2026-05-19T00:00:00Z");
    assert_eq!(query["filterEndDateTime"], "2026-05-20T00:00:00Z");
    assert_eq!(query["recordCountLimit"], 1_000_000);
    assert_eq!(query["isRecordCountLimitExceeded"], false);
    let truth = f.sim.graph_truth(day(1), day(0), &["LaunchPowerApp"]);
    assert!(!truth.is_empty());
    assert_eq!(query["approximateReturnedRecordCount"], truth.len());

    // With a delay, it stays running however often it is polled until the delay has passed.
    let slow = Fixture::new(SimSpec {
        graph_query_delay: Duration::from_secs(3600),
        ..spec()
    })
    .await;
    let id = slow.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    for _ in 0..3 {
        slow.poll(&id).await;
    }
    assert_eq!(slow.poll(&id).await["status"], "running");
    let response = slow.get(&format!("{}/{id}/records", slow.queries())).await;
    assert_eq!(graph_error(response).await.0, StatusCode::BAD_REQUEST);
}

/// Thirty one-day windows over a 30-day history: together exactly `graph_truth`, each record once
/// and in its window; every Management ground-truth launch among them, and in the days the
/// Management API fully covers, nothing else; each `auditData` byte for byte a blob's record.
#[tokio::test]
async fn a_month_of_windows_is_graph_truth_and_the_management_ground_truth() {
    let f = Fixture::new(SimSpec {
        history_days: 30,
        hours: 7 * 24 + 24,
        graph_running_limit: 50,
        blobs_per_hour: 2,
        records_per_blob: 10,
        ..spec()
    })
    .await;
    let mut served = Vec::new();
    let mut texts = Vec::new();
    for d in (0..30).rev() {
        let (start, end) = (day(d + 1), day(d));
        let id = f.submit(start, end, &["launchpowerapp"]).await;
        let query = f.finish(&id).await;
        let (records, links) = f.read_all(&id, 37).await;
        assert_eq!(query["approximateReturnedRecordCount"], records.len());
        for link in &links {
            assert!(
                link.starts_with(&format!("{}/v1.0/", f.sim.graph_root())),
                "{link}"
            );
        }
        for record in &records {
            let data = &record["auditData"];
            assert_eq!(data["Operation"], "LaunchPowerApp");
            let t = creation_second(data);
            assert!(start <= t && t < end, "{t} outside [{start}, {end})");
            assert_eq!(record["operation"], "LaunchPowerApp");
            assert_ne!(record["id"], data["Id"], "the wrapper id is its own");
            served.push(audit_id(record));
            if t >= now() - TimeDelta::days(6) {
                texts.push(data.to_string());
            }
        }
    }
    let distinct: BTreeSet<&String> = served.iter().collect();
    assert_eq!(distinct.len(), served.len(), "a record served twice");
    let truth = f.sim.graph_truth(day(30), day(0), &["LaunchPowerApp"]);
    assert_eq!(
        served.iter().cloned().collect::<BTreeSet<_>>(),
        truth.iter().cloned().collect()
    );
    assert!(truth.len() > 30 * 24, "history served: {}", truth.len());

    let management = f.sim.ground_truth(
        "Audit.General",
        now() - TimeDelta::days(8),
        now(),
        &["LaunchPowerApp"],
    );
    let all = f
        .sim
        .graph_truth(day(40), now() + TimeDelta::days(1), &["LaunchPowerApp"]);
    let all: HashSet<&String> = all.iter().collect();
    assert!(!management.is_empty());
    assert!(
        management.iter().all(|id| all.contains(id)),
        "a Management launch missing from the audit log"
    );
    let recent: BTreeSet<String> = f
        .sim
        .graph_truth(now() - TimeDelta::days(6), now(), &["LaunchPowerApp"])
        .into_iter()
        .collect();
    assert!(recent.is_subset(&management));

    // The very records the blobs serve, byte for byte.
    let mut blob_records = HashSet::new();
    for i in 0..f.sim.tenant.len() {
        let records: Vec<Value> = serde_json::from_slice(&f.sim.tenant.body(i)).expect("records");
        blob_records.extend(records.iter().map(Value::to_string));
    }
    assert!(!texts.is_empty());
    for text in &texts {
        assert!(blob_records.contains(text), "not in any blob: {text}");
    }
}

/// Without history, the audit log is the laid-out blobs' records, each Id once although blobs
/// repeat some (duplicates), late blobs' records included: computed here from the blob bodies.
#[tokio::test]
async fn the_audit_log_holds_each_blob_record_once() {
    let f = Fixture::new(SimSpec {
        hours: 48,
        ..spec()
    })
    .await;
    let mut from_blobs = BTreeSet::new();
    let mut copies = 0;
    for i in 0..f.sim.tenant.len() {
        let records: Vec<Value> = serde_json::from_slice(&f.sim.tenant.body(i)).expect("records");
        for record in records {
            if !from_blobs.insert(record["Id"].as_str().expect("Id").to_owned()) {
                copies += 1;
            }
        }
    }
    assert!(copies > 0, "the blobs repeat some records");
    let start = now() - TimeDelta::days(5);
    let end = now() + TimeDelta::days(1);
    let all: BTreeSet<String> = f.sim.graph_truth(start, end, &[]).into_iter().collect();
    assert_eq!(all, from_blobs);
    // Through the API, every operation (no filter), in pages of 500.
    let id = f.submit(start, end, &[]).await;
    f.finish(&id).await;
    let (records, _) = f.read_all(&id, 500).await;
    let served: Vec<String> = records.iter().map(audit_id).collect();
    assert_eq!(served.len(), from_blobs.len());
    assert_eq!(served.into_iter().collect::<BTreeSet<_>>(), from_blobs);
}

/// Pages of any size give the same records in the same order, and a 400-day history starts 400
/// days back; a page's `$skiptoken` resumes where the page ended.
#[tokio::test]
async fn pages_of_any_size_serve_the_same_records_over_a_long_history() {
    let f = Fixture::new(SimSpec {
        history_days: 400,
        ..spec()
    })
    .await;
    let (start, end) = (day(399), day(398));
    let id = f.submit(start, end, &["LaunchPowerApp"]).await;
    f.finish(&id).await;
    let (big, _) = f.read_all(&id, 1000).await;
    let (small, links) = f.read_all(&id, 7).await;
    assert!(big.len() > 20);
    assert_eq!(links.len(), big.len().div_ceil(7) - 1);
    assert_eq!(big, small);
    assert!(
        f.sim
            .graph_truth(day(401), day(400), &["LaunchPowerApp"])
            .is_empty()
    );
    let before: Vec<String> = f.sim.graph_truth(day(399), day(398), &["LaunchPowerApp"]);
    assert_eq!(before.len(), big.len());
}

#[tokio::test]
async fn the_record_cap_marks_the_query_and_serves_the_first_records() {
    let f = Fixture::new(SimSpec {
        graph_record_cap: 50,
        ..spec()
    })
    .await;
    let truth = f.sim.graph_truth(day(1), day(0), &["LaunchPowerApp"]);
    assert!(truth.len() > 50);
    let id = f.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    let query = f.finish(&id).await;
    assert_eq!(query["status"], "succeeded");
    assert_eq!(query["isRecordCountLimitExceeded"], true);
    assert_eq!(query["recordCountLimit"], 50);
    assert_eq!(query["approximateReturnedRecordCount"], truth.len());
    let (records, _) = f.read_all(&id, 20).await;
    assert_eq!(records.len(), 50);
    let truth: HashSet<String> = truth.into_iter().collect();
    assert!(records.iter().all(|r| truth.contains(&audit_id(r))));
    // A window small enough is not capped.
    let id = f
        .submit(day(1), day(1) + TimeDelta::hours(2), &["LaunchPowerApp"])
        .await;
    assert_eq!(f.finish(&id).await["isRecordCountLimitExceeded"], false);
}

#[tokio::test]
async fn creates_past_the_running_limit_or_the_daily_allowance_get_429_with_retry_after() {
    let f = Fixture::new(SimSpec {
        graph_running_limit: 2,
        graph_daily_submissions: 3,
        ..spec()
    })
    .await;
    let first = f.submit(day(3), day(2), &["LaunchPowerApp"]).await;
    let second = f.submit(day(2), day(1), &["LaunchPowerApp"]).await;
    let response = f.create(day(1), day(0), &["LaunchPowerApp"]).await;
    assert_eq!(response.headers()["retry-after"], "30");
    let (status, code, _) = graph_error(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
    );
    assert_eq!(f.sim.graph_submissions(), 2);

    f.finish(&first).await; // one fewer running: room for one more
    f.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    // Three in 24 hours: the fourth waits until the first is a day old.
    f.finish(&second).await;
    let response = f.create(day(5), day(4), &["LaunchPowerApp"]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((86_000..=86_400).contains(&wait), "{wait}");
    assert_eq!(f.sim.graph_submissions(), 3);
    assert_eq!(f.sim.graph_requests().create, 5);
    // A larger allowance set while running admits the next create.
    f.sim.set_graph_limits(2, 4);
    f.submit(day(5), day(4), &["LaunchPowerApp"]).await;
    assert_eq!(f.sim.graph_submissions(), 4);
}

/// Late records: missing from the first query covering them, served by every later one.
#[tokio::test]
async fn late_records_appear_only_when_a_window_is_queried_again() {
    let f = Fixture::new(SimSpec {
        graph_late_share: 0.25,
        ..spec()
    })
    .await;
    let truth: BTreeSet<String> = f
        .sim
        .graph_truth(day(1), day(0), &["LaunchPowerApp"])
        .into_iter()
        .collect();
    let (half, end) = (day(1) + TimeDelta::hours(12), day(0));
    // The second half first: its late records are withheld there.
    let first_half2: BTreeSet<String> = f
        .ids(half, end, &["LaunchPowerApp"])
        .await
        .into_iter()
        .collect();
    let whole1: BTreeSet<String> = f
        .ids(day(1), end, &["LaunchPowerApp"])
        .await
        .into_iter()
        .collect();
    let whole2: BTreeSet<String> = f
        .ids(day(1), end, &["LaunchPowerApp"])
        .await
        .into_iter()
        .collect();
    assert!(
        whole1.len() < truth.len(),
        "the first half's late records are withheld once"
    );
    assert_eq!(whole2, truth, "a window queried again is complete");
    let second_half: BTreeSet<String> = whole2
        .iter()
        .filter(|id| !whole1.contains(*id))
        .cloned()
        .collect();
    assert!(
        second_half.is_disjoint(&first_half2),
        "only the first half's were late in whole1"
    );
    assert!(first_half2.len() < whole2.len() - whole1.len() + first_half2.len());
    assert!(whole1.is_subset(&truth) && first_half2.is_subset(&truth));
}

#[tokio::test]
async fn graph_tokens_carry_the_graph_audience_and_roles_and_each_api_refuses_the_others() {
    let f = Fixture::new(SimSpec {
        graph_roles: vec!["AuditLogsQuery.Read.All".into(), "User.Read.All".into()],
        ..spec()
    })
    .await;
    let root = f.sim.graph_root();
    for v2 in [false, true] {
        let body = token_for(&f.sim, &root, v2).await;
        let claims = claims(body["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], root.as_str());
        assert_eq!(
            claims["roles"],
            json!(["AuditLogsQuery.Read.All", "User.Read.All"])
        );
    }
    let management = token_for(&f.sim, f.sim.base(), false).await;
    let management = management["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&management)["aud"], f.sim.base());
    let response = f
        .http
        .get(f.queries())
        .bearer_auth(&management)
        .send()
        .await
        .unwrap();
    let (status, code, message) = graph_error(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code, "InvalidAuthenticationToken");
    assert!(message.contains("Invalid audience"), "{message}");
    // The Graph token at the Management API: refused as a token for another resource.
    let feed = format!(
        "{}/api/v1.0/{}/activity/feed/subscriptions/list",
        f.sim.base(),
        f.sim.spec().tenant_id
    );
    let response = f
        .http
        .get(&feed)
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = f
        .http
        .get(&feed)
        .bearer_auth(&management)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No token at all.
    let response = f.http.get(f.queries()).send().await.unwrap();
    assert_eq!(graph_error(response).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn permissions_forbidden_without_the_role_and_zero_records_with_the_old_one() {
    let f = Fixture::new(spec()).await;
    f.sim.set_graph_roles(Vec::<String>::new());
    let bare = Fixture::graph_token(&f.sim).await;
    let response = f
        .http
        .get(f.queries())
        .bearer_auth(&bare)
        .send()
        .await
        .unwrap();
    let (status, _, message) = graph_error(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        message,
        format!("App:{} dont have any permissions", f.sim.spec().client_id)
    );

    f.sim.set_graph_roles(["AuditLog.Read.All"]);
    let old = Fixture {
        token: Fixture::graph_token(&f.sim).await,
        sim: f.sim,
        http: http(),
    };
    let id = old.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    let query = old.finish(&id).await;
    assert_eq!(query["status"], "succeeded");
    assert_eq!(query["approximateReturnedRecordCount"], 0);
    assert!(old.read_all(&id, 100).await.0.is_empty());
    assert!(
        !old.sim
            .graph_truth(day(1), day(0), &["LaunchPowerApp"])
            .is_empty()
    );
}

#[tokio::test]
async fn auditing_off_bad_windows_and_wrong_segments_answer_graphs_errors() {
    let f = Fixture::new(spec()).await;
    let response = f.create(day(0), day(1), &["LaunchPowerApp"]).await;
    let (status, _, message) = graph_error(response).await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::BAD_REQUEST, "Invalid request data")
    );
    let response = f.create_body(json!({"displayName": "x"})).await;
    assert_eq!(graph_error(response).await.2, "Invalid request data");

    f.sim.set_audit_log_enabled(false);
    let response = f.create(day(1), day(0), &["LaunchPowerApp"]).await;
    let (_, code, message) = graph_error(response).await;
    assert!(code.contains("AuditingDisabledTenant") || message.contains("AuditingDisabledTenant"));
    f.sim.set_audit_log_enabled(true);

    let management_path = format!(
        "{}/api/v1.0/{}/activity/feed/subscriptions/list",
        f.sim.graph_root(),
        f.sim.spec().tenant_id
    );
    let (status, _, message) = graph_error(f.get(&management_path).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "Resource not found for the segment 'activity'.");
    let other_version = format!("{}/v2.0/security/auditLog/queries", f.sim.graph_root());
    let (_, _, message) = graph_error(f.get(&other_version).await).await;
    assert_eq!(message, "Resource not found for the segment 'auditLog'.");
    let unknown = format!("{}/v1.0/security/auditLog/queries/nope", f.sim.graph_root());
    assert_eq!(
        graph_error(f.get(&unknown).await).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn failed_queries_server_errors_and_dropped_connections_are_injected() {
    let f = Fixture::new(SimSpec {
        faults: Faults {
            graph_fail_queries: 1,
            ..Faults::default()
        },
        ..spec()
    })
    .await;
    let failing = f.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    let working = f.submit(day(1), day(0), &["LaunchPowerApp"]).await;
    assert_eq!(f.finish(&failing).await["status"], "failed");
    assert_eq!(f.finish(&working).await["status"], "succeeded");
    let response = f.get(&format!("{}/{failing}/records", f.queries())).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    f.sim.set_faults(Faults {
        graph_server_error: 1.0,
        ..Faults::default()
    });
    let (status, code, _) = graph_error(f.get(&f.queries()).await).await;
    assert!(status.is_server_error() && !code.is_empty());
    f.sim.set_faults(Faults {
        graph_drop_connection: 1.0,
        ..Faults::default()
    });
    let dropped = f.http.get(f.queries()).bearer_auth(&f.token).send().await;
    assert!(dropped.is_err());
    assert_eq!(f.sim.stats().dropped, 1);
}

/// The list shows every earlier query (display name, bounds, creation time, status), in pages.
#[tokio::test]
async fn the_list_of_queries_shows_earlier_queries_in_pages() {
    let f = Fixture::new(SimSpec {
        graph_running_limit: 1000,
        graph_daily_submissions: 1000,
        ..spec()
    })
    .await;
    let mut made = Vec::new();
    for hour in 0..130 {
        let start = day(6) + TimeDelta::hours(hour);
        made.push((
            f.submit(start, start + TimeDelta::hours(1), &["LaunchPowerApp"])
                .await,
            start,
        ));
    }
    f.finish(&made[0].0).await;
    let mut listed = Vec::new();
    let mut url = f.queries();
    let mut pages = 0;
    loop {
        let page: Value = f.get(&url).await.json().await.unwrap();
        pages += 1;
        listed.extend(page["value"].as_array().unwrap().iter().cloned());
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert!(pages >= 2);
    assert_eq!(listed.len(), made.len());
    for ((id, start), query) in made.iter().zip(&listed) {
        assert_eq!(query["id"], id.as_str());
        let name = query["displayName"].as_str().unwrap();
        assert!(name.starts_with("auditsync backfill "), "{name}");
        let listed_start =
            DateTime::parse_from_rfc3339(query["filterStartDateTime"].as_str().unwrap()).unwrap();
        assert_eq!(listed_start, *start);
        assert!(query["createdDateTime"].is_string());
    }
    assert_eq!(listed[0]["status"], "succeeded");
    assert_eq!(listed[1]["status"], "notStarted");
}

/// A late blob's records (hours older than the blob) are in the window of their own
/// `CreationTime`, not of the blob's `contentCreated`.
#[tokio::test]
async fn a_late_blobs_records_are_in_the_window_of_their_creation_time() {
    let f = Fixture::new(SimSpec {
        hours: 48,
        ..spec()
    })
    .await;
    let blobs = f.sim.blobs("Audit.General");
    let (index, late) = blobs
        .iter()
        .enumerate()
        .find(|(_, b)| b.late && b.created > now() - TimeDelta::hours(30))
        .expect("a late blob");
    let tenant_index = (0..f.sim.tenant.len())
        .find(|&i| {
            f.sim
                .tenant
                .blob(i)
                .is_some_and(|b| b.content_id == late.content_id)
        })
        .expect("the blob");
    let records: Vec<Value> =
        serde_json::from_slice(&f.sim.tenant.body(tenant_index)).expect("records");
    let mut checked = 0;
    for record in records
        .iter()
        .filter(|r| r["Operation"] == "LaunchPowerApp")
    {
        let t = creation_second(record);
        assert!(t < late.created - TimeDelta::hours(2), "a late record");
        let hour = t - TimeDelta::seconds(t.timestamp() % 3600);
        let ids = f
            .ids(hour, hour + TimeDelta::hours(1), &["LaunchPowerApp"])
            .await;
        assert!(ids.contains(&record["Id"].as_str().unwrap().to_owned()));
        let created_hour = late.created - TimeDelta::seconds(late.created.timestamp() % 3600);
        let truth = f
            .sim
            .graph_truth(created_hour, created_hour + TimeDelta::hours(1), &[]);
        assert!(!truth.contains(&record["Id"].as_str().unwrap().to_owned()));
        checked += 1;
    }
    assert!(checked > 0, "blob {index} holds launches");
}

/// An app without a service principal in the tenant gets AADSTS7000229 for any resource.
#[tokio::test]
async fn a_missing_service_principal_answers_aadsts7000229() {
    let f = Fixture::new(spec()).await;
    f.sim.set_faults(Faults {
        no_service_principal: true,
        ..Faults::default()
    });
    let spec = f.sim.spec();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", spec.client_id.as_str()),
            ("client_secret", spec.client_secret.as_str()),
            ("scope", &format!("{}/.default", f.sim.graph_root())),
        ])
        .finish();
    let response = http()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            f.sim.base(),
            spec.tenant_id
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000229]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000229: ")
    );
}
