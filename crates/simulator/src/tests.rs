//! Tests of the simulator through a real HTTP client: token flows and every Entra error, the
//! subscription lifecycle, windows and paging, blobs, the ground truth against what is served,
//! determinism, faults and the `/_sim/` surface.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

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

fn spec() -> SimSpec {
    SimSpec {
        now: now(),
        ..SimSpec::new(7)
    }
}

fn http() -> Client {
    // reqwest is built without a default TLS provider (see auditsync-core's `net`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The four fields of a good v1 token request.
fn v1_fields(sim: &SimControl) -> Vec<(&'static str, String)> {
    let spec = sim.spec();
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", spec.client_id.clone()),
        ("client_secret", spec.client_secret.clone()),
        ("resource", sim.base().into()),
    ]
}

async fn post_token(url: &str, fields: &[(&str, String)]) -> Response {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .expect("a token response")
}

fn v1_url(sim: &SimControl) -> String {
    format!("{}/{}/oauth2/token", sim.base(), sim.spec().tenant_id)
}

fn v2_url(sim: &SimControl) -> String {
    format!("{}/{}/oauth2/v2.0/token", sim.base(), sim.spec().tenant_id)
}

async fn token(sim: &SimControl) -> String {
    let response = post_token(&v1_url(sim), &v1_fields(sim)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("a JSON token");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn feed(sim: &SimControl, path: &str) -> String {
    format!(
        "{}/api/v1.0/{}/activity/feed/{path}",
        sim.base(),
        sim.spec().tenant_id
    )
}

fn window_query(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    format!("startTime={}&endTime={}", at(start), at(end))
}

/// The (status, error code, error message) of an AF error answer.
async fn af(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error");
    let field = |name: &str| body["error"][name].as_str().unwrap_or_default().to_owned();
    (status, field("code"), field("message"))
}

/// A started simulator with a token, optionally subscribed to Audit.General.
struct Fixture {
    sim: SimServer,
    token: String,
    http: Client,
}

impl Fixture {
    async fn new(spec: SimSpec) -> Self {
        let sim = Simulator::start(spec).await.expect("a simulator");
        let token = token(&sim).await;
        Self {
            sim,
            token,
            http: http(),
        }
    }

    async fn subscribed(spec: SimSpec) -> Self {
        Self::new(SimSpec {
            initial_subscriptions: vec![("Audit.General".into(), true)],
            ..spec
        })
        .await
    }

    async fn get(&self, url: &str) -> Response {
        self.try_get(url).await.expect("a response")
    }

    async fn try_get(&self, url: &str) -> reqwest::Result<Response> {
        self.http.get(url).bearer_auth(&self.token).send().await
    }

    async fn post(&self, url: &str) -> Response {
        let request = self.http.post(url).bearer_auth(&self.token);
        request.send().await.expect("a response")
    }

    /// Every page of a content listing, following `NextPageUri`; returns the pages' entries and the
    /// `NextPageUri` values seen.
    async fn list_all(&self, query: &str) -> (Vec<Vec<Value>>, Vec<String>) {
        let mut url = feed(
            &self.sim,
            &format!("subscriptions/content?contentType=Audit.General&{query}"),
        );
        let (mut pages, mut links) = (Vec::new(), Vec::new());
        loop {
            let response = self.get(&url).await;
            assert_eq!(response.status(), StatusCode::OK);
            let next = response
                .headers()
                .get("NextPageUri")
                .map(|v| v.to_str().expect("ASCII").to_owned());
            pages.push(response.json().await.expect("a JSON page"));
            match next {
                Some(next) => {
                    links.push(next.clone());
                    url = next;
                }
                None => return (pages, links),
            }
        }
    }

    async fn records(&self, content_uri: &str) -> Vec<Value> {
        let response = self.get(content_uri).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON array of records")
    }
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["contentId"].as_str().expect("contentId").to_owned())
        .collect()
}

/// A launch by its `Operation` field, written out independently of the simulator's own predicate:
/// what a correct client keeps (decoys only mention LaunchPowerApp elsewhere).
fn is_launch(record: &Value) -> bool {
    record["Operation"] == "LaunchPowerApp"
}

fn record_id(record: &Value) -> String {
    record["Id"].as_str().expect("Id").to_owned()
}

#[tokio::test]
async fn v1_token_has_string_numbers_and_v2_numeric() {
    let sim = Simulator::start(spec()).await.unwrap();
    let mut fields = v1_fields(&sim);
    fields[3].1.push('/'); // the resource with a trailing slash is the same resource
    let response = post_token(&format!("{}?api-version=1.0", v1_url(&sim)), &fields).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let v1: Value = response.json().await.unwrap();
    assert_eq!(v1["token_type"], "Bearer");
    assert_eq!(v1["expires_in"], "3599");
    assert_eq!(v1["ext_expires_in"], "3599");
    assert_eq!(v1["resource"], fields[3].1);
    let expires_on: i64 = v1["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = v1["not_before"].as_str().unwrap().parse().unwrap();
    assert!(not_before < now().timestamp() && expires_on >= now().timestamp() + 3599);

    let access_token = v1["access_token"].as_str().unwrap();
    let parts: Vec<&str> = access_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(
        (header["typ"].as_str(), header["alg"].as_str()),
        (Some("JWT"), Some("RS256"))
    );
    assert_eq!(header["x5t"], header["kid"]);
    assert_eq!(claims["aud"], sim.base());
    assert_eq!(claims["tid"], sim.spec().tenant_id);
    assert_eq!(claims["appid"], sim.spec().client_id);
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", sim.spec().tenant_id)
    );
    assert_eq!(
        claims["roles"],
        json!(["ActivityFeed.Read", "ServiceHealth.Read"])
    );
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(parts[2].len(), 43);

    let scope = format!("{}/.default", sim.base());
    let v2_fields = [
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", sim.spec().client_id.clone()),
        ("client_secret", sim.spec().client_secret.clone()),
        ("scope", scope.clone()),
    ];
    let v2: Value = post_token(&v2_url(&sim), &v2_fields)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v2["expires_in"], 3599);
    assert_eq!(v2["ext_expires_in"], 3599);
    assert_eq!(v2["token_type"], "Bearer");

    // HTTP Basic credentials, URL-encoded before base64.
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = http()
        .post(v2_url(&sim))
        .basic_auth(
            encode(&sim.spec().client_id),
            Some(encode(&sim.spec().client_secret)),
        )
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("scope", &scope),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);

    let stats = sim.stats();
    assert_eq!(stats.token_requests, 3);
    assert_eq!(stats.issued_tokens.len(), 3);
    assert_eq!(
        stats.issued_tokens.iter().collect::<BTreeSet<_>>().len(),
        3,
        "tokens are unique"
    );
}

/// `fields` with the value of `name` replaced by `value`.
fn with(fields: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == name {
                    value.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// `fields` without `name`.
fn without(fields: &[(&'static str, String)], name: &str) -> Vec<(&'static str, String)> {
    fields.iter().filter(|(k, _)| *k != name).cloned().collect()
}

/// One bad token request: (URL, form fields, HTTP status, `error`, AADSTS code, text the
/// description must contain).
type EntraCase = (
    String,
    Vec<(&'static str, String)>,
    u16,
    &'static str,
    u32,
    String,
);

/// Every refused token request and what Entra answers to it.
fn entra_error_cases(sim: &SimControl) -> Vec<EntraCase> {
    let good = v1_fields(sim);
    let v2 = |scope: Option<&str>| -> Vec<(&'static str, String)> {
        let mut fields = without(&good, "resource");
        fields.extend(scope.map(|s| ("scope", s.to_owned())));
        fields
    };
    let other_tenant = "11111111-2222-3333-4444-555555555555";
    vec![
        (
            format!("{}/{other_tenant}/oauth2/token", sim.base()),
            good.clone(),
            400,
            "invalid_request",
            90002,
            format!("Tenant '{other_tenant}' not found."),
        ),
        (
            v1_url(sim),
            with(&good, "client_id", other_tenant),
            400,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{other_tenant}' was not found in the directory"),
        ),
        (
            v1_url(sim),
            without(&good, "client_secret"),
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required".into(),
        ),
        (
            v1_url(sim),
            with(&good, "client_secret", "abc8Q~wrong"),
            401,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                sim.spec().client_id
            ),
        ),
        (
            v1_url(sim),
            with(&good, "resource", "https://manage.office.com"),
            400,
            "invalid_resource",
            500011,
            "The resource principal named https://manage.office.com was not found".into(),
        ),
        (
            v1_url(sim),
            without(&good, "resource"),
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'resource'.".into(),
        ),
        (
            v1_url(sim),
            with(&good, "grant_type", "password"),
            400,
            "unsupported_grant_type",
            70003,
            "unsupported grant type 'password'".into(),
        ),
        (
            v2_url(sim),
            v2(Some(sim.base())),
            400,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {} is not valid.", sim.base()),
        ),
        (
            v2_url(sim),
            v2(None),
            400,
            "invalid_request",
            900144,
            "parameter: 'scope'.".into(),
        ),
        (
            v2_url(sim),
            v2(Some("https://manage.office.com/.default")),
            400,
            "invalid_resource",
            500011,
            "resource principal named https://manage.office.com was".into(),
        ),
    ]
}

/// Asserts `response` is Entra's error for `case`: status, JSON content type, `error`,
/// `error_codes`, `error_uri`, and a description with the code, the text, and the trace id,
/// correlation id and timestamp (at the simulated `now`) of the body's own fields.
async fn assert_entra_error(response: Response, case: &EntraCase) {
    let (_, _, status, error, code, text) = case;
    assert_eq!(response.status().as_u16(), *status, "{error} {code}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], *error);
    assert_eq!(body["error_codes"], json!([code]));
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains(text.as_str()), "{description}");
    let trace = body["trace_id"].as_str().unwrap();
    let correlation = body["correlation_id"].as_str().unwrap();
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        timestamp.starts_with("2026-05-20 12:00:") && timestamp.ends_with('Z'),
        "{timestamp}"
    );
    assert!(description.ends_with(&format!(
        "\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
    )));
}

#[tokio::test]
async fn entra_errors_have_entras_shape() {
    let sim = Simulator::start(spec()).await.unwrap();
    for case in entra_error_cases(&sim) {
        let response = post_token(&case.0, &case.1).await;
        assert_entra_error(response, &case).await;
    }
}

#[tokio::test]
async fn expired_secret_is_aadsts7000222() {
    let sim = Simulator::start(spec()).await.unwrap();
    let good = v1_fields(&sim);
    sim.set_secret_expired(true);
    let body: Value = post_token(&v1_url(&sim), &good).await.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000222]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "The provided client secret keys for app '{}' are expired.",
                sim.spec().client_id
            ))
    );
}

#[tokio::test]
async fn subscription_lifecycle() {
    let f = Fixture::new(spec()).await;
    let content = feed(&f.sim, "subscriptions/content?contentType=Audit.General");
    let start = feed(&f.sim, "subscriptions/start?contentType=Audit.General");
    let stop = feed(&f.sim, "subscriptions/stop?contentType=Audit.General");
    let list = feed(&f.sim, "subscriptions/list");

    let never = (
        StatusCode::BAD_REQUEST,
        "AF20022".into(),
        "No subscription found for the specified content type.".into(),
    );
    assert_eq!(af(f.get(&content).await).await, never);
    assert_eq!(af(f.post(&stop).await).await, never);
    let (_, code, message) = af(f.post(&feed(&f.sim, "subscriptions/start")).await).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("AF20001", "Missing parameter: contentType.")
    );
    let (_, code, _) = af(f
        .post(&feed(
            &f.sim,
            "subscriptions/start?contentType=audit.general",
        ))
        .await)
    .await;
    assert_eq!(code, "AF20020");

    // As the CoE starts it: no body, `Content-Type: application/json; utf-8`.
    let response = f
        .http
        .post(&start)
        .bearer_auth(&f.token)
        .header("content-type", "application/json; utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for (name, value) in [
        ("server", "Microsoft-IIS/8.5"),
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("expires", "-1"),
        ("content-type", "application/json; charset=utf-8"),
    ] {
        assert_eq!(response.headers()[name], value);
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"contentType": "Audit.General", "status": "enabled", "webhook": null})
    );

    let (status, code, message) = af(f.post(&start).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AF20024")
    );
    assert_eq!(
        message,
        "The subscription is already enabled. No property change."
    );
    let listed: Value = f.get(&list).await.json().await.unwrap();
    assert_eq!(
        listed,
        json!([{"contentType": "Audit.General", "status": "enabled", "webhook": null}])
    );

    for _ in 0..2 {
        let response = f.post(&stop).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let (status, code, message) = af(f.get(&content).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AF20023")
    );
    assert_eq!(message, "The subscription was disabled by a tenant admin.");
    let listed: Value = f.get(&list).await.json().await.unwrap();
    assert_eq!(listed[0]["status"], "disabled");
    assert_eq!(
        f.sim.subscriptions(),
        [("Audit.General".to_owned(), "disabled".to_owned())]
    );

    assert_eq!(
        f.post(&start).await.status(),
        StatusCode::OK,
        "a disabled subscription starts again"
    );
    let requests = f.sim.stats().api_requests;
    assert_eq!(
        (
            requests.start,
            requests.stop,
            requests.list,
            requests.content
        ),
        (5, 3, 2, 2)
    );
}

#[tokio::test]
async fn paging_follows_next_page_uri_to_the_end() {
    let f = Fixture::subscribed(SimSpec {
        page_size: 7,
        ..spec()
    })
    .await;
    let (start, end) = (now() - TimeDelta::hours(24), now());
    let (pages, links) = f.list_all(&window_query(start, end)).await;

    let expected: Vec<String> = f
        .sim
        .blobs("Audit.General")
        .into_iter()
        .filter(|b| start <= b.created && b.created < end)
        .map(|b| b.content_id)
        .collect();
    let listed: Vec<String> = pages.iter().flat_map(|page| ids(page)).collect();
    assert_eq!(listed, expected, "every blob once, in contentCreated order");
    assert_eq!(pages.len(), expected.len().div_ceil(7));
    assert!(pages.iter().all(|page| page.len() <= 7));
    assert_eq!(
        links.len(),
        pages.len() - 1,
        "the last page has no NextPageUri"
    );
    let prefix = format!(
        "{}/api/v1/{}/activity/feed/subscriptions/content?",
        f.sim.base(),
        f.sim.spec().tenant_id
    );
    for link in &links {
        assert!(link.starts_with(&prefix), "{link}");
        assert!(
            link.contains("startTime=2026-05-19T12:00:00&endTime=2026-05-20T12:00:00&nextPage="),
            "{link}"
        );
        let token = link.rsplit("nextPage=").next().unwrap();
        assert!(
            token.parse::<u64>().is_err(),
            "the nextPage token is not a plain offset"
        );
    }

    let entry = &pages[0][0];
    let created = DateTime::parse_from_rfc3339(entry["contentCreated"].as_str().unwrap()).unwrap();
    let expiration =
        DateTime::parse_from_rfc3339(entry["contentExpiration"].as_str().unwrap()).unwrap();
    assert_eq!(
        entry["contentCreated"].as_str().unwrap().len(),
        "2026-11-21T17:35:00.000Z".len()
    );
    assert_eq!(expiration - created, TimeDelta::days(7));
    assert_eq!(entry["contentType"], "Audit.General");
    assert_eq!(
        entry["contentUri"],
        format!(
            "{}/api/v1.0/{}/activity/feed/audit/{}",
            f.sim.base(),
            f.sim.spec().tenant_id,
            entry["contentId"].as_str().unwrap()
        )
    );

    // The CoE's spelling `nextpage` binds too, and PublisherIdentifier is counted when absent.
    let lower = links[0].replace("nextPage=", "nextpage=")
        + "&PublisherIdentifier="
        + &f.sim.spec().tenant_id;
    let page: Vec<Value> = f.get(&lower).await.json().await.unwrap();
    assert_eq!(page, pages[1]);
    assert_eq!(
        f.sim.stats().requests_without_publisher_identifier as usize,
        pages.len()
    );
}

#[tokio::test]
async fn bad_next_page_is_af20031() {
    let f = Fixture::subscribed(SimSpec {
        page_size: 7,
        ..spec()
    })
    .await;
    let query = window_query(now() - TimeDelta::hours(24), now());
    let first = f
        .get(&feed(
            &f.sim,
            &format!("subscriptions/content?contentType=Audit.General&{query}"),
        ))
        .await;
    let link = first.headers()["NextPageUri"].to_str().unwrap().to_owned();
    let token = link.rsplit("nextPage=").next().unwrap().to_owned();
    let tampered = format!("{}9", token);
    for garbled in ["garbage", "2026051912R", tampered.as_str()] {
        let url = link.replace(&token, garbled);
        let (status, code, message) = af(f.get(&url).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "AF20031")
        );
        assert_eq!(message, format!("Invalid nextPage Input: {garbled}."));
    }
}

#[tokio::test]
async fn time_window_rules() {
    let f = Fixture::subscribed(spec()).await;
    let list = |query: &str| {
        feed(
            &f.sim,
            &format!("subscriptions/content?contentType=Audit.General&{query}"),
        )
    };
    let af20030 = "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.";
    for query in [
        window_query(now() - TimeDelta::hours(25), now()),
        window_query(
            now() - TimeDelta::days(8),
            now() - TimeDelta::days(7) - TimeDelta::hours(12),
        ),
        "startTime=2026-05-20T10:00".into(),
        "endTime=2026-05-20T10:00".into(),
    ] {
        let (status, code, message) = af(f.get(&list(&query)).await).await;
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (StatusCode::BAD_REQUEST, "AF20030", af20030),
            "{query}"
        );
    }
    // The whole-second request an empty last segment made (`--to …T12:00:00.5Z` cut to seconds), and
    // windows empty or inverted by a fraction.
    let second = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let hour = now() - TimeDelta::hours(2);
    for query in [
        window_query(now(), now() - TimeDelta::hours(1)),
        window_query(now(), now()),
        format!("startTime={}&endTime={}", second(hour), second(hour)),
        format!("startTime={}.7Z&endTime={}.2Z", second(hour), second(hour)),
        format!("startTime={}.5&endTime={}.5", second(hour), second(hour)),
    ] {
        let (status, code, message) = af(f.get(&list(&query)).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "AF20055")
        );
        assert!(message.contains("with the start time prior to end time"));
    }
    let (_, code, message) = af(f.get(&list("startTime=yesterday&endTime=2026-05-20")).await).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "AF20002",
            "Invalid parameter type: startTime. Expected type: DateTime"
        )
    );
    let (_, code, _) = af(f
        .get(&list(
            "startTime=2026-05-19T12:00:00.12345678Z&endTime=2026-05-20",
        ))
        .await)
    .await;
    assert_eq!(code, "AF20002", "at most 7 fraction digits");

    for query in [
        "startTime=2026-05-19&endTime=2026-05-20",
        "startTime=2026-05-19T13:00&endTime=2026-05-20T11:00",
        "startTime=2026-05-19T12:00:00.0000000Z&endTime=2026-05-20T12:00:00.0000000Z",
        "startTime=2026-05-19T12:30:00Z&endTime=2026-05-20T10:00:00.5",
        "",
    ] {
        let response = f.get(&list(query)).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(!page.is_empty(), "{query}");
    }
    let future = f
        .get(&list(&window_query(
            now() + TimeDelta::hours(1),
            now() + TimeDelta::hours(2),
        )))
        .await;
    assert_eq!(future.status(), StatusCode::OK);
    assert_eq!(future.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn blobs_route_by_content_id_and_expire() {
    let f = Fixture::subscribed(SimSpec {
        hours: 7 * 24 + 24,
        ..spec()
    })
    .await;
    let query = window_query(now() - TimeDelta::hours(3), now());
    let (pages, _) = f.list_all(&query).await;
    let entry = &pages[0][0];
    let (content_id, uri) = (
        entry["contentId"].as_str().unwrap(),
        entry["contentUri"].as_str().unwrap(),
    );
    assert!(
        content_id.contains("$audit_general$Audit_General$"),
        "{content_id}"
    );
    assert!(uri.ends_with(content_id), "the content id appears verbatim");

    let response = f.get(uri).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let bytes = response.bytes().await.unwrap();
    let records: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(records.len(), 50);
    assert!(
        records
            .iter()
            .all(|r| r["Id"].is_string() && r["CreationTime"].is_string())
    );
    let encoded = format!(
        "{}?PublisherIdentifier={}",
        uri.replace('$', "%24"),
        f.sim.spec().tenant_id
    );
    assert_eq!(f.get(&encoded).await.bytes().await.unwrap(), bytes);
    assert_eq!(f.sim.stats().blob_fetches_by_content_id[content_id], 2);

    let unknown = feed(
        &f.sim,
        "audit/202605201000000000000$202605201100000000000$audit_general$Audit_General$emea0026",
    );
    let (status, code, message) = af(f.get(&unknown).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AF20050")
    );
    assert!(message.starts_with("The specified content (20260520100000000"));
    let (_, code, message) = af(f.get(&feed(&f.sim, "audit/not-a-content-id")).await).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "AF20052",
            "Content ID not-a-content-id in the URL is invalid."
        )
    );

    let expired = f
        .sim
        .blobs("Audit.General")
        .into_iter()
        .find(|b| b.expiration <= now())
        .expect("blobs older than 7 days exist");
    let (status, code, message) = af(f.get(&expired.content_uri).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AF20051")
    );
    assert_eq!(
        message,
        format!(
            "Content requested with the key {} has already expired. Content older than 7 days cannot be retrieved.",
            expired.content_id
        )
    );
}

#[tokio::test]
async fn unauthorized_requests() {
    let f = Fixture::subscribed(SimSpec {
        token_lifetime: Duration::from_secs(1),
        ..spec()
    })
    .await;
    let list = feed(&f.sim, "subscriptions/list");
    for request in [
        f.http.get(&list),
        f.http.get(&list).bearer_auth("not-a-token"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"Message":"Authorization has been denied for this request."}"#
        );
    }
    let tenant = &f.sim.spec().tenant_id;
    let other = list.replace(tenant.as_str(), "11111111-2222-3333-4444-555555555555");
    let (status, code, message) = af(f.get(&other).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AF20010")
    );
    assert_eq!(
        message,
        format!(
            "The tenant ID passed in the URL (11111111-2222-3333-4444-555555555555) does not match the tenant ID passed in the access token ({tenant})."
        )
    );
    let (_, code, _) = af(f
        .get(&list.replace(tenant.as_str(), "contoso.onmicrosoft.com"))
        .await)
    .await;
    assert_eq!(code, "AF20013");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        f.get(&list).await.status(),
        StatusCode::UNAUTHORIZED,
        "the token expired"
    );
    assert_eq!(f.sim.stats().unauthorized, 3);
}

#[tokio::test]
async fn token_without_the_role_gets_af10001() {
    let sim = Simulator::start(spec()).await.unwrap();
    sim.set_roles(["ServiceHealth.Read"]);
    let token = token(&sim).await;
    let response = http()
        .get(feed(&sim, "subscriptions/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, code, message) = af(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "AF10001")
    );
    assert_eq!(
        message,
        "The permission set (ServiceHealth.Read) sent in the request did not include the expected permission ActivityFeed.Read."
    );
}

#[tokio::test]
async fn ground_truth_is_what_a_correct_client_keeps_from_served_blobs() {
    let f = Fixture::subscribed(SimSpec {
        hours: 30,
        ..spec()
    })
    .await;
    let (start, end) = (now() - TimeDelta::hours(20), now() - TimeDelta::hours(2));
    let (pages, _) = f.list_all(&window_query(start, end)).await;
    let mut records = Vec::new();
    for entry in pages.iter().flatten() {
        records.extend(f.records(entry["contentUri"].as_str().unwrap()).await);
    }

    let launches: BTreeSet<String> = records
        .iter()
        .filter(|r| is_launch(r))
        .map(record_id)
        .collect();
    assert_eq!(
        f.sim
            .ground_truth("Audit.General", start, end, &["LaunchPowerApp"]),
        launches
    );
    let deletes: BTreeSet<String> = records
        .iter()
        .filter(|r| r["Operation"] == "DeletePowerApp")
        .map(record_id)
        .collect();
    assert!(!deletes.is_empty());
    assert_eq!(
        f.sim
            .ground_truth("Audit.General", start, end, &["DeletePowerApp"]),
        deletes
    );

    // The data is as messy as the brief says.
    let launch_types: BTreeSet<i64> = records
        .iter()
        .filter(|r| is_launch(r))
        .filter_map(|r| r["RecordType"].as_i64())
        .collect();
    assert_eq!(launch_types, BTreeSet::from([45, 256]));
    assert!(launches.len() > 50, "{} launches", launches.len());
    let unique: BTreeSet<String> = records.iter().map(record_id).collect();
    assert!(unique.len() < records.len(), "duplicates across blobs");
    let activity_decoy = |r: &&Value| {
        r["Operation"] != "LaunchPowerApp"
            && r["PropertyCollection"]
                .to_string()
                .contains("\"LaunchPowerApp\"")
    };
    assert!(records.iter().any(|r| activity_decoy(&r)));
    assert!(records.iter().any(|r| r["Workload"] != "PowerPlatform"
        && r["Workload"] != "PowerApps"
        && r.to_string().contains("LaunchPowerApp")));
    assert!(records.iter().any(|r| r["Workload"] == "MicrosoftFlow"));
    let times: Vec<&str> = records
        .iter()
        .map(|r| r["CreationTime"].as_str().unwrap())
        .collect();
    assert!(times.iter().any(|t| t.len() == 19) && times.iter().any(|t| t.ends_with('Z')));
    let sizes: Vec<usize> = records.iter().map(|r| r.to_string().len()).collect();
    assert!(sizes.iter().min() < Some(&800) && sizes.iter().max() > Some(&2500));
    assert!(records.iter().any(|r| {
        r["UserId"]
            .as_str()
            .is_some_and(|u| u.contains("@CONTOSO.OnMicrosoft.com"))
    }));

    let truth: BTreeSet<String> = f
        .http
        .get(format!(
            "{}/_sim/truth?{}&operations=LaunchPowerApp",
            f.sim.base(),
            window_query(start, end)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth, launches);
}

#[tokio::test]
async fn late_blobs_hold_old_events() {
    let sim = Simulator::start(SimSpec {
        hours: 48,
        ..spec()
    })
    .await
    .unwrap();
    let f = Fixture {
        token: token(&sim).await,
        sim,
        http: http(),
    };
    let late = f
        .sim
        .blobs("Audit.General")
        .into_iter()
        .find(|b| b.late)
        .expect("some late blobs");
    let records = f.records(&late.content_uri).await;
    let old = records
        .iter()
        .filter(|record| {
            let created = &record["CreationTime"].as_str().unwrap()[..19];
            let created =
                chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S").unwrap();
            late.created - created.and_utc() > TimeDelta::hours(2)
        })
        .count();
    // All but the odd copy of an earlier blob's record are hours older than the blob.
    assert!(old * 10 >= records.len() * 9, "{old} of {}", records.len());
}

#[tokio::test]
async fn published_blobs_appear_in_their_window() {
    let f = Fixture::subscribed(spec()).await;
    let (start, end) = (now() - TimeDelta::hours(3), now() - TimeDelta::hours(1));
    let before = f
        .sim
        .ground_truth("Audit.General", start, end, &["LaunchPowerApp"]);
    let content_id = f.sim.publish_blob(now() - TimeDelta::minutes(90));

    let (pages, _) = f.list_all(&window_query(start, end)).await;
    let entry = pages
        .iter()
        .flatten()
        .find(|e| e["contentId"] == content_id)
        .expect("the new blob is listed");
    let added: BTreeSet<String> = f
        .records(entry["contentUri"].as_str().unwrap())
        .await
        .iter()
        .filter(|r| is_launch(r))
        .map(record_id)
        .collect();
    let after = f
        .sim
        .ground_truth("Audit.General", start, end, &["LaunchPowerApp"]);
    assert_eq!(after, before.union(&added).cloned().collect());
}

#[tokio::test]
async fn same_seed_and_now_serve_identical_bytes() {
    let (a, b) = (
        Fixture::subscribed(spec()).await,
        Fixture::subscribed(spec()).await,
    );
    let other = Fixture::subscribed(SimSpec {
        now: now(),
        ..SimSpec::new(8)
    })
    .await;
    assert_eq!(a.sim.spec().client_secret, b.sim.spec().client_secret);
    assert_ne!(a.sim.spec().tenant_id, other.sim.spec().tenant_id);

    let query = window_query(now() - TimeDelta::hours(6), now());
    let list = |f: &Fixture| {
        feed(
            &f.sim,
            &format!("subscriptions/content?contentType=Audit.General&{query}"),
        )
    };
    let (listing_a, listing_b) = (f_text(&a, &list(&a)).await, f_text(&b, &list(&b)).await);
    assert_eq!(
        listing_a.replace(a.sim.base(), ""),
        listing_b.replace(b.sim.base(), "")
    );

    let blobs: Vec<Value> = serde_json::from_str(&listing_a).unwrap();
    for entry in &blobs {
        let path = entry["contentUri"]
            .as_str()
            .unwrap()
            .replace(a.sim.base(), "");
        let (body_a, body_b) = (f_bytes(&a, &path).await, f_bytes(&b, &path).await);
        assert_eq!(body_a, body_b);
    }
    let other_first = f_text(&other, &list(&other)).await;
    assert_ne!(
        other_first.replace(other.sim.base(), ""),
        listing_a.replace(a.sim.base(), "")
    );
}

async fn f_text(f: &Fixture, url: &str) -> String {
    f.get(url).await.text().await.unwrap()
}

async fn f_bytes(f: &Fixture, path: &str) -> Vec<u8> {
    f.get(&format!("{}{path}", f.sim.base()))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn dropped_connections_and_cut_bodies_fail_at_the_transport() {
    let f = Fixture::subscribed(spec()).await;
    let blob = f.sim.blobs("Audit.General").pop().unwrap();
    let listing = feed(&f.sim, "subscriptions/content?contentType=Audit.General");

    f.sim.set_faults(Faults {
        drop_connection: 1.0,
        ..Faults::default()
    });
    for url in [&listing, &blob.content_uri] {
        let error = f.try_get(url).await.expect_err("no response at all");
        assert!(!error.is_status() && !error.is_timeout(), "{error}");
    }
    assert_eq!(f.sim.stats().dropped, 2);
    let list = f.get(&feed(&f.sim, "subscriptions/list")).await;
    assert_eq!(
        list.status(),
        StatusCode::OK,
        "subscription calls are not dropped"
    );

    f.sim.set_faults(Faults {
        cut_body: 1.0,
        ..Faults::default()
    });
    for url in [&listing, &blob.content_uri] {
        let response = f.get(url).await;
        assert_eq!(response.status(), StatusCode::OK);
        let declared: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(declared > 2);
        response.bytes().await.expect_err("the body ends early");
    }
    assert_eq!(f.sim.stats().cut, 2);

    f.sim.set_faults(Faults::default());
    assert_eq!(
        f.records(&blob.content_uri).await.len(),
        50,
        "the server survives"
    );
}

#[tokio::test]
async fn gateway_answers_trickles_and_bad_next_pages() {
    let f = Fixture::subscribed(SimSpec {
        page_size: 1,
        ..spec()
    })
    .await;
    let blob = f.sim.blobs("Audit.General").pop().unwrap();
    let listing = feed(
        &f.sim,
        &format!(
            "subscriptions/content?contentType=Audit.General&{}",
            window_query(now() - TimeDelta::hours(24), now())
        ),
    );

    // A gateway's plain-text answer, for every activity-feed request past authorization.
    f.sim.set_faults(Faults {
        fixed_answer: Some((500, "upstream timeout".into())),
        ..Faults::default()
    });
    for url in [
        &listing,
        &blob.content_uri,
        &feed(&f.sim, "subscriptions/list"),
    ] {
        let response = f.get(url).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(response.text().await.unwrap(), "upstream timeout");
    }
    // A gateway that echoes the request's Authorization header in its answer.
    f.sim.set_faults(Faults {
        fixed_answer: Some((500, "Headers: Authorization: {authorization}".into())),
        ..Faults::default()
    });
    let echoed = f.get(&listing).await.text().await.unwrap();
    assert_eq!(
        echoed,
        format!("Headers: Authorization: Bearer {}", f.token)
    );

    // The raw bytes given, as NextPageUri, on a page that has a next one.
    f.sim.set_faults(Faults {
        bad_next_page: Some(vec![0xff, 0xfe]),
        ..Faults::default()
    });
    let page = f.get(&listing).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["NextPageUri"].as_bytes(), [0xff, 0xfe]);

    // A trickled body arrives whole, in many pieces; a token answer too.
    f.sim.set_faults(Faults {
        trickle: Some(Duration::from_millis(1)),
        trickle_tokens: Some(Duration::from_millis(1)),
        ..Faults::default()
    });
    let mut response = f.get(&listing).await;
    let mut pieces = 0;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        pieces += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(pieces > 10, "{pieces}");
    let entries: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(entries.len(), 1);
    let token = post_token(&v1_url(&f.sim), &v1_fields(&f.sim)).await;
    assert_eq!(token.status(), StatusCode::OK);
    let token: Value = token.json().await.unwrap();
    assert!(token["access_token"].is_string());
}

#[tokio::test]
async fn throttling_and_server_errors() {
    let f = Fixture::subscribed(spec()).await;
    let listing = feed(&f.sim, "subscriptions/content?contentType=Audit.General");
    let blob = f.sim.blobs("Audit.General").pop().unwrap().content_uri;

    f.sim.set_faults(Faults {
        throttle: 1.0,
        retry_after: Some(7),
        ..Faults::default()
    });
    let first = f.get(&blob).await;
    let second = f
        .get(&format!(
            "{listing}&PublisherIdentifier={}",
            f.sim.spec().tenant_id
        ))
        .await;
    let retry_afters: Vec<bool> = [&first, &second]
        .iter()
        .map(|r| r.headers().contains_key("retry-after"))
        .collect();
    assert_eq!(
        retry_afters.iter().filter(|&&present| present).count(),
        1,
        "half carry Retry-After"
    );
    assert_eq!(
        first
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("7")
    );
    let (status, code, message) = af(first).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "AF429"));
    assert_eq!(
        message,
        "Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000"
    );
    let (_, _, message) = af(second).await;
    assert_eq!(
        message,
        format!(
            "Too many requests. Method=ListContent, PublisherId={}",
            f.sim.spec().tenant_id
        )
    );

    f.sim.set_faults(Faults {
        throttle: 1.0,
        throttle_as_429: 1.0,
        ..Faults::default()
    });
    let (status, code, _) = af(f.get(&listing).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "AF429")
    );

    f.sim.set_faults(Faults {
        rate_limit: Some((3, Duration::from_secs(60))),
        ..Faults::default()
    });
    for _ in 0..3 {
        assert_eq!(f.get(&listing).await.status(), StatusCode::OK);
    }
    let refused = f.get(&listing).await;
    assert!(!refused.headers().contains_key("retry-after"));
    assert_eq!(af(refused).await.1, "AF429");

    f.sim.set_faults(Faults {
        server_error: 1.0,
        ..Faults::default()
    });
    let mut statuses = BTreeSet::new();
    for _ in 0..24 {
        let response = f.get(&listing).await;
        statuses.insert(response.status());
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            let (_, code, message) = af(response).await;
            assert_eq!(code, "AF50000");
            assert!(message.starts_with("An internal error occurred."));
        }
    }
    assert_eq!(
        statuses,
        BTreeSet::from([
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE
        ])
    );
    let stats = f.sim.stats();
    assert_eq!((stats.throttled, stats.server_errors), (4, 24));
}

#[tokio::test]
async fn blob_delay_slows_blob_gets() {
    let f = Fixture::new(spec()).await;
    let blob = f.sim.blobs("Audit.General").pop().unwrap().content_uri;
    f.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(200),
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(f.get(&blob).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn token_errors_are_transient_entra_errors() {
    let sim = Simulator::start(spec()).await.unwrap();
    sim.set_faults(Faults {
        token_error_rate: 1.0,
        ..Faults::default()
    });
    let response = post_token(&v1_url(&sim), &v1_fields(&sim)).await;
    assert!(response.status().is_server_error());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("temporarily_unavailable"), Some(90033))
    );
}

#[tokio::test]
async fn unified_audit_log_off() {
    let f = Fixture::subscribed(SimSpec {
        audit_log_enabled: false,
        ..spec()
    })
    .await;
    let (tenant, client) = (&f.sim.spec().tenant_id, &f.sim.spec().client_id);
    let zeros = "00000000-0000-0000-0000-000000000000";
    let cases = [
        (
            f.post(&feed(
                &f.sim,
                "subscriptions/start?contentType=Audit.Exchange",
            ))
            .await,
            format!(
                "StartSubscription [TenantId={tenant},ContentType=Audit.Exchange,ApplicationId={client},PublisherId={zeros}] failed. Exception"
            ),
        ),
        (
            f.get(&feed(&f.sim, "subscriptions/list")).await,
            format!(
                "ListSubscriptions [TenantId={tenant},ApplicationId={client},PublisherId={zeros}] failed. Exception"
            ),
        ),
        (
            f.get(&feed(
                &f.sim,
                &format!(
                    "subscriptions/content?contentType=Audit.General&PublisherIdentifier={tenant}"
                ),
            ))
            .await,
            format!(
                "ListContent [TenantId={tenant},ContentType=Audit.General,ApplicationId={client},PublisherId={tenant}] failed. Exception"
            ),
        ),
    ];
    for (response, expected) in cases {
        let (status, code, message) = af(response).await;
        assert_eq!(
            (status, code),
            (StatusCode::INTERNAL_SERVER_ERROR, expected)
        );
        assert!(message.starts_with(&format!("Microsoft.Office.Compliance.Audit.DataServiceException: Tenant {tenant} does not exist.\r\n   at ")));
    }
    f.sim.set_audit_log_enabled(true);
    assert_eq!(
        f.get(&feed(&f.sim, "subscriptions/list")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn control_surface_over_http() {
    let f = Fixture::subscribed(spec()).await;
    let control = |path: &str| format!("{}/_sim/{path}", f.sim.base());
    let response = f
        .http
        .put(control("faults"))
        .json(&json!({"throttle": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        f.get(&feed(&f.sim, "subscriptions/list")).await.status(),
        StatusCode::FORBIDDEN
    );

    let stats = f
        .http
        .get(control("stats"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!stats.contains(&f.sim.spec().client_secret));
    let stats: Stats = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        (
            stats.throttled,
            stats.api_requests.list,
            stats.issued_tokens.len()
        ),
        (1, 1, 1)
    );

    let response = f
        .http
        .get(control("truth?contentType=Audit.General"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn background_handle_serves_until_dropped() {
    let handle = Simulator::start_background(spec()).unwrap();
    let address = format!("127.0.0.1:{}", handle.base_url().port().unwrap());
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .write_all(b"GET /_sim/stats HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    drop(handle);
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "the server stopped"
    );
}

#[test]
fn debug_never_shows_the_secret() {
    let spec = SimSpec::new(3);
    assert_eq!(spec.client_secret.len(), 40);
    assert_eq!(&spec.client_secret[4..6], "Q~");
    let debug = format!("{spec:?}");
    assert!(debug.contains("[redacted]") && !debug.contains(&spec.client_secret));
}

/// With `unreadable_share`, some launch slots are served unreadable in each of the five shapes; the
/// ground truth leaves them out and `unreadable_records` counts them, both checked here against the
/// served bodies with the test's own reading.
#[tokio::test]
async fn unreadable_records_are_served_and_left_out_of_the_truth() {
    let f = Fixture::subscribed(SimSpec {
        hours: 10,
        launch_share: 0.5,
        unreadable_share: 0.3,
        ..spec()
    })
    .await;
    let (start, end) = (now() - TimeDelta::hours(9), now() - TimeDelta::hours(1));
    let (pages, _) = f.list_all(&window_query(start, end)).await;
    let mut records = Vec::new();
    for entry in pages.iter().flatten() {
        records.extend(f.records(entry["contentUri"].as_str().unwrap()).await);
    }
    let not_object = records.iter().filter(|r| !r.is_object()).count();
    let strings = records.iter().filter(|r| r.is_string()).count();
    let no_id = records
        .iter()
        .filter(|r| r.is_object() && r.get("Id").is_none())
        .count();
    let id_object = records.iter().filter(|r| r["Id"].is_object()).count();
    let day_first = records
        .iter()
        .filter(|r| r["CreationTime"].as_str().is_some_and(|t| t.contains('/')))
        .count();
    assert!(
        [not_object - strings, strings, no_id, id_object, day_first]
            .iter()
            .all(|n| *n > 0),
        "every shape is served: {not_object} {strings} {no_id} {id_object} {day_first}"
    );
    assert_eq!(
        f.sim
            .unreadable_records("Audit.General", start, end, &["LaunchPowerApp"]),
        not_object + no_id + id_object + day_first
    );
    let launches: BTreeSet<String> = records
        .iter()
        .filter(|r| is_launch(r) && r["Id"].is_string())
        .filter(|r| !r["CreationTime"].as_str().unwrap_or("/").contains('/'))
        .map(record_id)
        .collect();
    assert_eq!(
        f.sim
            .ground_truth("Audit.General", start, end, &["LaunchPowerApp"]),
        launches
    );
}

/// With `identity_mix`, some Power Apps records name their user by object id only (UserId a GUID)
/// and some by UPN only (UserKey not a GUID); `unique_users` joins them through the records that
/// carry both, so it counts each person once.
#[tokio::test]
async fn mixed_identities_are_served_and_people_counted_once() {
    let f = Fixture::subscribed(SimSpec {
        hours: 10,
        launch_share: 0.5,
        identity_mix: 0.3,
        ..spec()
    })
    .await;
    let (start, end) = (now() - TimeDelta::hours(9), now() - TimeDelta::hours(1));
    let (pages, _) = f.list_all(&window_query(start, end)).await;
    let mut launches = Vec::new();
    for entry in pages.iter().flatten() {
        let records = f.records(entry["contentUri"].as_str().unwrap()).await;
        launches.extend(records.into_iter().filter(is_launch));
    }
    let guid = |v: &Value| v.as_str().is_some_and(|s| uuid::Uuid::try_parse(s).is_ok());
    let by_object_id = launches.iter().filter(|r| guid(&r["UserId"])).count();
    let by_upn = launches
        .iter()
        .filter(|r| !guid(&r["UserKey"]) && r["UserId"].as_str().is_some_and(|u| u.contains('@')))
        .count();
    assert!(by_object_id > 0 && by_upn > 0, "{by_object_id} {by_upn}");
    // Every simulated user has one object id, in UserKey wherever it is a GUID: people by that,
    // plus those seen by UPN alone whose UPN no record links to an object id.
    let mut people: BTreeSet<String> = launches
        .iter()
        .filter(|r| guid(&r["UserKey"]))
        .map(|r| r["UserKey"].as_str().unwrap().to_owned())
        .collect();
    let upn = |r: &Value| {
        r["UserId"]
            .as_str()
            .filter(|u| u.contains('@'))
            .map(str::to_lowercase)
    };
    let linked: BTreeSet<String> = launches
        .iter()
        .filter(|r| guid(&r["UserKey"]))
        .filter_map(upn)
        .collect();
    people.extend(
        launches
            .iter()
            .filter_map(upn)
            .filter(|u| !linked.contains(u)),
    );
    let upns: BTreeSet<String> = launches.iter().filter_map(upn).collect();
    let counted = f.sim.unique_users("Audit.General", start, end);
    assert_eq!(counted, people.len(), "each person once");
    assert!(counted < upns.len() + by_object_id, "not counted twice");
}

#[tokio::test]
async fn huge_bodies_are_generated_as_sent_and_are_valid_json() {
    let fx = Fixture::subscribed(spec()).await;
    let blobs = fx.sim.blobs("Audit.General");
    let (bomb, big, endless) = (&blobs[0], &blobs[1], &blobs[2]);
    let mut faults = Faults::default();
    faults.huge_blobs.insert(
        bomb.content_id.clone(),
        HugeBody::GzipBomb { inflated: 3 << 20 },
    );
    faults.huge_blobs.insert(
        big.content_id.clone(),
        HugeBody::Oversized { bytes: 1 << 20 },
    );
    faults
        .huge_blobs
        .insert(endless.content_id.clone(), HugeBody::Endless);
    let zeros = &blobs[3];
    faults.huge_blobs.insert(
        zeros.content_id.clone(),
        HugeBody::GzipZeros { inflated: 1 << 20 },
    );
    fx.sim.set_faults(faults);

    // As sent: a client that does not undo gzip.
    let raw = Client::builder()
        .no_proxy()
        .no_gzip()
        .build()
        .expect("an HTTP client");
    let response = raw
        .get(&bomb.content_uri)
        .bearer_auth(&fx.token)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response.bytes().await.expect("the whole bomb");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut inflated)
        .expect("gzip");
    assert_eq!(inflated.len(), 3 << 20);
    assert!(
        body.len() * 500 < inflated.len(),
        "{} bytes sent",
        body.len()
    );
    let value: Value = serde_json::from_slice(&inflated).expect("JSON");
    assert_eq!(value, json!([]));

    // An array of zeros: every element a number, the gzip still small.
    let response = raw
        .get(&zeros.content_uri)
        .bearer_auth(&fx.token)
        .send()
        .await
        .expect("a response");
    let body = response.bytes().await.expect("the whole body");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut inflated)
        .expect("gzip");
    assert_eq!(inflated.len(), (1 << 20) + 1);
    assert!(
        body.len() * 100 < inflated.len(),
        "{} bytes sent",
        body.len()
    );
    let value: Vec<u8> = serde_json::from_slice(&inflated).expect("JSON");
    assert_eq!(value.len(), 1 << 19);
    assert!(value.iter().all(|v| *v == 0));

    let response = fx.get(&big.content_uri).await;
    assert_eq!(response.headers()["content-length"], "1048576");
    let body = response.bytes().await.expect("the whole body");
    assert_eq!(body.len(), 1 << 20);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON"),
        json!([])
    );

    let mut response = fx.get(&endless.content_uri).await;
    assert!(response.headers().get("content-length").is_none());
    let mut read = 0;
    while read < 4 << 20 {
        read += response
            .chunk()
            .await
            .expect("a chunk")
            .expect("no end")
            .len();
    }
}

#[tokio::test]
async fn echo_faults_quote_the_credentials() {
    let fx = Fixture::subscribed(spec()).await;
    fx.sim.set_faults(Faults {
        token_echo: 1.0,
        echo_authorization: 1.0,
        token_expires_in: Some(json!(-5)),
        ..Faults::default()
    });
    let response = post_token(&v1_url(&fx.sim), &v1_fields(&fx.sim)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.expect("a body");
    let secret: String =
        form_urlencoded::byte_serialize(fx.sim.spec().client_secret.as_bytes()).collect();
    assert!(text.contains(&secret), "{text}");
    for _ in 0..8 {
        let response = fx.get(&feed(&fx.sim, "subscriptions/list")).await;
        assert!(response.status().is_client_error() || response.status().is_server_error());
        let text = response.text().await.expect("a body");
        assert!(text.contains(&fx.token), "{text}");
    }
    fx.sim.set_faults(Faults {
        token_expires_in: Some(json!("-5")),
        ..Faults::default()
    });
    let response = post_token(&v1_url(&fx.sim), &v1_fields(&fx.sim)).await;
    let body: Value = response.json().await.expect("a JSON token");
    assert_eq!(body["expires_in"], "-5");
}
