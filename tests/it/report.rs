//! `auditsync report apps|users|daily` over a known store: 66 hand-made launches (both record types,
//! one user under three spellings, an app with 50 launches in January, one with 5 users in February,
//! one with neither, one launch without an app id, one other operation), checked against counts worked
//! out by hand in every format, with each filter, and the HTML page in a headless browser.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Run, TestEnv};

pub(crate) const A: &str = "11111111-1111-1111-1111-111111111111";
pub(crate) const B: &str = "22222222-2222-2222-2222-222222222222";
pub(crate) const C: &str = "33333333-3333-3333-3333-333333333333";
pub(crate) const ENV1: &str = "Default-aaaaaaaa-0000-0000-0000-000000000001";
pub(crate) const ENV2: &str = "bbbbbbbb-0000-0000-0000-000000000002";
/// App C's latest name: user content that must come out escaped.
pub(crate) const XSS: &str = r#"<script>alert(1)</script> & "Co""#;
pub(crate) const XSS_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;";

/// One `audit_events` row.
pub(crate) struct Row<'a> {
    time: &'a str,
    user: &'a str,
    app: Option<&'a str>,
    name: Option<&'a str>,
    env: Option<&'a str>,
    record_type: i64,
    operation: &'a str,
}

pub(crate) fn launch<'a>(
    time: &'a str,
    user: &'a str,
    app: Option<&'a str>,
    name: Option<&'a str>,
    env: Option<&'a str>,
    record_type: i64,
) -> Row<'a> {
    Row {
        time,
        user,
        app,
        name,
        env,
        record_type,
        operation: "LaunchPowerApp",
    }
}

/// A configured test folder whose database, created by auditsync's own store, holds exactly `rows`.
pub(crate) fn store_with(rows: &[Row]) -> TestEnv {
    let env = TestEnv::new();
    env.write_config("");
    let path = env.path("auditsync.db");
    let lock = auditsync_core::store::RunLock::try_acquire(&path).expect("take the run lock");
    drop(auditsync_core::store::open_write(&path, lock).expect("create the database"));
    let mut db = rusqlite::Connection::open(&path).unwrap();
    let tx = db.transaction().unwrap();
    for (i, r) in rows.iter().enumerate() {
        tx.execute(
            "INSERT INTO audit_events (id, creation_time, operation, workload, record_type, user_id, app_id, \
             app_name, environment_id, content_type, content_id, raw) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'Audit.General', 'test', '{}')",
            rusqlite::params![
                format!("event-{i:03}"),
                r.time,
                r.operation,
                if r.record_type == 45 { "PowerApps" } else { "PowerPlatform" },
                r.record_type,
                r.user,
                r.app,
                r.name,
                r.env
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    env
}

/// A hand-made launch: time, user as logged, app id, app name, environment id, record type.
type Hand = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    i64,
);

/// The known store's launches besides app A's 50 in January. By hand:
/// - A "Expenses" (ENV1): 50 launches on 2026-01-05..09 (10 a day, alice and bob alternating, 08:00 +
///   i minutes; see `known_store`), 3 in February by alice (two spellings, one legacy row without a
///   name): 53 launches, 2 users, production (50 in January). A `DeletePowerApp` row does not count.
/// - B "Team rota" (ENV2): Carol in January; alice, bob, carol, dave, erin in February: 6 launches,
///   5 users, production (5 users in February).
/// - C (ENV1): "Old name", then XSS, then a legacy row without a name: January alice, ALICE, bob,
///   carol, dave (4 users), February erin: 6 launches, 5 users, not production (no month has 5).
/// - One legacy launch without an app id, by frank.
#[rustfmt::skip]
const HAND: &[Hand] = &[
    ("2026-02-02T10:00:00Z", "alice@contoso.com", Some(A), Some("Expenses"), Some(ENV1), 256),
    ("2026-02-03T10:00:00Z", "Alice@Contoso.com", Some(A), Some("Expenses"), Some(ENV1), 256),
    ("2026-02-03T11:00:00Z", "alice@contoso.com", Some(A), None, None, 45),
    ("2026-01-20T12:00:00Z", "Carol@Contoso.com", Some(B), Some("Team rota"), Some(ENV2), 256),
    ("2026-02-02T09:00:00Z", "alice@contoso.com", Some(B), Some("Team rota"), Some(ENV2), 256),
    ("2026-02-03T09:30:00Z", "bob@contoso.com", Some(B), Some("Team rota"), Some(ENV2), 256),
    ("2026-02-03T12:00:00Z", "carol@contoso.com", Some(B), None, Some(ENV2), 45),
    ("2026-02-04T08:00:00Z", "dave@contoso.com", Some(B), Some("Team rota"), Some(ENV2), 256),
    ("2026-02-04T09:00:00Z", "erin@contoso.com", Some(B), Some("Team rota"), Some(ENV2), 256),
    ("2026-01-06T10:00:00Z", "alice@contoso.com", Some(C), Some("Old name"), Some(ENV1), 256),
    ("2026-01-06T11:00:00Z", "ALICE@CONTOSO.COM", Some(C), Some("Old name"), Some(ENV1), 256),
    ("2026-01-07T10:00:00Z", "bob@contoso.com", Some(C), Some(XSS), Some(ENV1), 256),
    ("2026-01-08T10:00:00Z", "carol@contoso.com", Some(C), Some(XSS), Some(ENV1), 256),
    ("2026-01-09T10:00:00Z", "dave@contoso.com", Some(C), Some(XSS), Some(ENV1), 256),
    ("2026-02-04T10:00:00Z", "erin@contoso.com", Some(C), None, None, 45),
    ("2026-02-04T11:00:00Z", "frank@contoso.com", None, None, None, 45),
];

/// The known store: app A's 50 January launches, the hand-made rows, and one other operation.
pub(crate) fn known_store() -> TestEnv {
    let jan: Vec<(String, &str)> = (0..50)
        .map(|i| {
            let user = ["alice@contoso.com", "bob@contoso.com"][i % 2];
            (format!("2026-01-{:02}T08:{i:02}:00Z", 5 + i % 5), user)
        })
        .collect();
    let mut rows: Vec<Row> = jan
        .iter()
        .map(|(t, u)| launch(t, u, Some(A), Some("Expenses"), Some(ENV1), 256))
        .collect();
    rows.extend(
        HAND.iter()
            .map(|&(t, u, app, name, env, rt)| launch(t, u, app, name, env, rt)),
    );
    rows.push(Row {
        operation: "DeletePowerApp",
        ..launch(
            "2026-01-10T00:00:00Z",
            "zed@contoso.com",
            Some(A),
            None,
            Some(ENV1),
            256,
        )
    });
    store_with(&rows)
}

pub(crate) fn report(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    env.run(&all)
}

pub(crate) fn report_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let run = report(env, &all);
    run.assert_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("JSON report: {e}\n{}", run.all()))
}

/// (key, launches) of each row, in order.
fn counts(v: &Value, key: &str) -> Vec<(Value, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[key].clone(), r["launches"].as_i64().unwrap()))
        .collect()
}

#[test]
fn report_apps_json_matches_hand_computed_counts() {
    let env = known_store();
    let apps = report_json(&env, &["apps"]);
    assert_eq!(
        apps,
        json!([
            {"app_id": A, "app_name": "Expenses", "environment_id": ENV1, "launches": 53, "unique_users": 2,
             "first_launch": "2026-01-05T08:00:00Z", "last_launch": "2026-02-03T11:00:00Z", "production": true},
            {"app_id": B, "app_name": "Team rota", "environment_id": ENV2, "launches": 6, "unique_users": 5,
             "first_launch": "2026-01-20T12:00:00Z", "last_launch": "2026-02-04T09:00:00Z", "production": true},
            {"app_id": C, "app_name": XSS, "environment_id": ENV1, "launches": 6, "unique_users": 5,
             "first_launch": "2026-01-06T10:00:00Z", "last_launch": "2026-02-04T10:00:00Z", "production": false},
            {"app_id": null, "app_name": null, "environment_id": null, "launches": 1, "unique_users": 1,
             "first_launch": "2026-02-04T11:00:00Z", "last_launch": "2026-02-04T11:00:00Z", "production": false},
        ])
    );
}

#[test]
fn report_users_and_daily_json_match_hand_computed_counts() {
    let env = known_store();
    let users = report_json(&env, &["users"]);
    assert_eq!(
        users,
        json!([
            {"user_id": "alice@contoso.com", "launches": 31, "apps": 3,
             "first_launch": "2026-01-05T08:00:00Z", "last_launch": "2026-02-03T11:00:00Z"},
            {"user_id": "bob@contoso.com", "launches": 27, "apps": 3,
             "first_launch": "2026-01-05T08:05:00Z", "last_launch": "2026-02-03T09:30:00Z"},
            {"user_id": "carol@contoso.com", "launches": 3, "apps": 2,
             "first_launch": "2026-01-08T10:00:00Z", "last_launch": "2026-02-03T12:00:00Z"},
            {"user_id": "dave@contoso.com", "launches": 2, "apps": 2,
             "first_launch": "2026-01-09T10:00:00Z", "last_launch": "2026-02-04T08:00:00Z"},
            {"user_id": "erin@contoso.com", "launches": 2, "apps": 2,
             "first_launch": "2026-02-04T09:00:00Z", "last_launch": "2026-02-04T10:00:00Z"},
            {"user_id": "frank@contoso.com", "launches": 1, "apps": 0,
             "first_launch": "2026-02-04T11:00:00Z", "last_launch": "2026-02-04T11:00:00Z"},
        ])
    );
    let daily = report_json(&env, &["daily"]);
    let rows: Vec<(&str, i64, i64)> = daily
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d.as_object().unwrap().len(), 3, "{d}");
            (
                d["day"].as_str().unwrap(),
                d["launches"].as_i64().unwrap(),
                d["unique_users"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-01-05", 10, 2),
            ("2026-01-06", 12, 2),
            ("2026-01-07", 11, 2),
            ("2026-01-08", 11, 3),
            ("2026-01-09", 11, 3),
            ("2026-01-20", 1, 1),
            ("2026-02-02", 2, 1),
            ("2026-02-03", 4, 3),
            ("2026-02-04", 4, 3),
        ]
    );
    assert_eq!(rows.iter().map(|r| r.1).sum::<i64>(), 66);
}

pub(crate) fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn report_csv_has_a_header_and_the_same_numbers() {
    let env = known_store();
    let run = report(&env, &["apps", "--format", "csv"]);
    run.assert_code(0);
    let (header, rows) = parse_csv(&run.stdout);
    assert_eq!(
        header,
        [
            "app_id",
            "app_name",
            "environment_id",
            "launches",
            "unique_users",
            "first_launch",
            "last_launch",
            "production"
        ]
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0],
        [
            A,
            "Expenses",
            ENV1,
            "53",
            "2",
            "2026-01-05T08:00:00Z",
            "2026-02-03T11:00:00Z",
            "true"
        ]
    );
    // The name with quotes and a comma-free ampersand survives CSV quoting intact.
    assert_eq!(rows[2][..5], [C, XSS, ENV1, "6", "5"]);
    assert_eq!(rows[2][7], "false");
    assert_eq!(rows[3][..5], ["", "", "", "1", "1"]);

    let (header, rows) = parse_csv(&report(&env, &["users", "--format", "csv"]).stdout);
    assert_eq!(
        header,
        ["user_id", "launches", "apps", "first_launch", "last_launch"]
    );
    let users: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        users,
        [
            ("alice@contoso.com", "31", "3"),
            ("bob@contoso.com", "27", "3"),
            ("carol@contoso.com", "3", "2"),
            ("dave@contoso.com", "2", "2"),
            ("erin@contoso.com", "2", "2"),
            ("frank@contoso.com", "1", "0"),
        ]
    );

    let (header, rows) = parse_csv(&report(&env, &["daily", "--format", "csv"]).stdout);
    assert_eq!(header, ["day", "launches", "unique_users"]);
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[1], ["2026-01-06", "12", "2"]);
    assert_eq!(rows[8], ["2026-02-04", "4", "3"]);
}

#[test]
fn report_table_is_aligned_and_names_the_launches_without_app_id() {
    let env = known_store();
    let run = report(&env, &["apps"]);
    run.assert_code(0)
        .assert_stdout("APP ID")
        .assert_stdout("UNIQUE USERS")
        .assert_stdout("(no app id)");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    // Columns line up: LAUNCHES starts at the same place on every line.
    let col = lines[0].find("LAUNCHES").unwrap();
    assert!(lines[1][col..].starts_with("53 "), "{}", run.stdout);
    assert!(lines[4].starts_with("(no app id)"), "{}", run.stdout);
    let words: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        words,
        [
            A,
            "Expenses",
            ENV1,
            "53",
            "2",
            "2026-01-05T08:00:00Z",
            "2026-02-03T11:00:00Z",
            "yes"
        ]
    );

    report(&env, &["users"])
        .assert_code(0)
        .assert_stdout("USER ID")
        .assert_stdout("alice@contoso.com");
    let daily = report(&env, &["daily"]);
    daily.assert_code(0);
    let first: Vec<&str> = daily
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(first, ["2026-01-05", "10", "2"]);
}

#[test]
fn report_filters_by_time_app_and_environment() {
    let env = known_store();
    // February only: A has 3 launches by one user and is not a production app within it.
    let feb = report_json(&env, &["apps", "--from", "2026-02-01"]);
    assert_eq!(
        counts(&feb, "app_id"),
        [
            (json!(B), 5),
            (json!(A), 3),
            (json!(C), 1),
            (json!(null), 1)
        ]
    );
    assert_eq!(feb[0]["unique_users"], 5);
    assert_eq!(feb[0]["production"], true);
    assert_eq!(feb[1]["unique_users"], 1);
    assert_eq!(feb[1]["production"], false);
    assert_eq!(feb[1]["first_launch"], "2026-02-02T10:00:00Z");

    // January only (--to is exclusive); C has 4 users there once ALICE is alice.
    let jan = report_json(&env, &["apps", "--to", "2026-02-01T00:00"]);
    assert_eq!(
        counts(&jan, "app_id"),
        [(json!(A), 50), (json!(C), 5), (json!(B), 1)]
    );
    assert_eq!(jan[0]["production"], true);
    assert_eq!(jan[1]["unique_users"], 4);
    assert_eq!(jan[1]["production"], false);

    // Production counts only the months' launches inside the range: 20 of A's 50.
    let two_days = report_json(
        &env,
        &[
            "apps",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-07",
            "--app",
            A,
        ],
    );
    assert_eq!(counts(&two_days, "app_id"), [(json!(A), 20)]);
    assert_eq!(two_days[0]["production"], false);

    // Bounds are exact to the second, with offsets honoured: 10:00 to 11:00 UTC on 2026-02-04.
    let hour = report_json(
        &env,
        &[
            "daily",
            "--from",
            "2026-02-04T11:00:00+01:00",
            "--to",
            "2026-02-04T11:00:00Z",
        ],
    );
    assert_eq!(
        hour,
        json!([{"day": "2026-02-04", "launches": 1, "unique_users": 1}])
    );

    let one_day = report_json(
        &env,
        &["daily", "--from", "2026-01-06", "--to", "2026-01-07"],
    );
    assert_eq!(counts(&one_day, "day"), [(json!("2026-01-06"), 12)]);

    let c_users = report_json(&env, &["users", "--app", C]);
    assert_eq!(
        counts(&c_users, "user_id"),
        [
            (json!("alice@contoso.com"), 2),
            (json!("bob@contoso.com"), 1),
            (json!("carol@contoso.com"), 1),
            (json!("dave@contoso.com"), 1),
            (json!("erin@contoso.com"), 1),
        ]
    );
    assert!(c_users.as_array().unwrap().iter().all(|u| u["apps"] == 1));

    let env2 = report_json(&env, &["apps", "--environment", ENV2]);
    assert_eq!(counts(&env2, "app_id"), [(json!(B), 6)]);
    let env1_users = report_json(&env, &["users", "--environment", ENV1]);
    assert_eq!(
        env1_users[0]["launches"],
        27 + 2,
        "alice: 27 of A with ENV1, 2 of C"
    );

    // A filter matching nothing is an empty report, not an error.
    assert_eq!(
        report_json(&env, &["apps", "--app", "no-such-app"]),
        json!([])
    );
    // An app id is a value, never SQL.
    assert_eq!(
        report_json(&env, &["apps", "--app", "x' OR '1'='1"]),
        json!([])
    );
}

#[test]
fn report_refuses_bad_ranges_and_html_without_output() {
    let env = known_store();
    report(
        &env,
        &["apps", "--from", "2026-02-01", "--to", "2026-01-01"],
    )
    .assert_code(2)
    .assert_stderr("--from 2026-02-01T00:00:00Z is not before --to");
    // Reversed by a fraction: both times as given, not two equal whole seconds.
    report(
        &env,
        &[
            "apps",
            "--from",
            "2026-01-01T10:00:00.7Z",
            "--to",
            "2026-01-01T10:00:00.2Z",
        ],
    )
    .assert_code(2)
    .assert_stderr("--from 2026-01-01T10:00:00.700Z is not before --to 2026-01-01T10:00:00.200Z");
    let run = report(&env, &["apps", "--format", "html"]);
    run.assert_code(2).assert_stderr("add --output usage.html");
    assert!(run.stdout.is_empty());
    // Refused by the command line: only `report apps` has html.
    report(&env, &["users", "--format", "html", "--output", "u.html"])
        .assert_code(2)
        .assert_stderr("possible values: table, csv, json");
    assert!(!env.path("u.html").exists());
    report(&env, &["apps", "--from", "yesterday"])
        .assert_code(2)
        .assert_stderr("is not a time");
}

#[test]
fn report_output_writes_the_file_instead_of_stdout() {
    let env = known_store();
    for (format, check) in [
        ("json", "\"launches\": 53"),
        ("csv", "app_id,app_name"),
        ("table", "APP ID"),
    ] {
        let name = format!("apps.{format}");
        let run = report(&env, &["apps", "--format", format, "--output", &name]);
        run.assert_code(0);
        assert!(run.stdout.is_empty(), "{}", run.all());
        let text = std::fs::read_to_string(env.path(&name)).unwrap();
        assert!(text.contains(check), "{format}: {text}");
    }
    // A folder that does not exist is a usage mistake (exit 2, as the README says).
    report(&env, &["apps", "--output", "no/such/folder/apps.txt"])
        .assert_code(2)
        .assert_stderr("cannot write the report to no/such/folder/apps.txt");
}

#[test]
fn report_without_a_database_says_to_sync_first() {
    let env = TestEnv::new();
    env.write_config("");
    for kind in ["apps", "users", "daily"] {
        report(&env, &[kind])
            .assert_code(2)
            .assert_stderr("run `auditsync sync` first");
    }
    assert!(!env.path("auditsync.db").exists(), "nothing created");
}

#[test]
fn report_on_an_empty_database_is_empty() {
    let env = store_with(&[]);
    for kind in ["apps", "users", "daily"] {
        assert_eq!(report_json(&env, &[kind]), json!([]));
        let csv = report(&env, &[kind, "--format", "csv"]);
        csv.assert_code(0);
        assert_eq!(csv.stdout.lines().count(), 1, "header only: {}", csv.stdout);
        let table = report(&env, &[kind]);
        table.assert_code(0);
        assert_eq!(
            table.stdout.lines().count(),
            1,
            "header only: {}",
            table.stdout
        );
    }
    report(
        &env,
        &["apps", "--format", "html", "--output", "empty.html"],
    )
    .assert_code(0);
    let html = std::fs::read_to_string(env.path("empty.html")).unwrap();
    assert!(html.contains("No launches in this range."), "{html}");
}

/// Writes the known store's HTML report and returns its path and text.
fn html_report(env: &TestEnv) -> (PathBuf, String) {
    report(env, &["apps", "--format", "html", "--output", "usage.html"]).assert_code(0);
    let path = env.path("usage.html");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn report_html_is_one_self_contained_page_with_escaped_names() {
    let env = known_store();
    let (_, html) = html_report(&env);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<html").count(), 1);
    assert!(html.trim_end().ends_with("</html>"));
    // Nothing fetched: no scripts at all, no external styles, fonts or images.
    assert!(
        !html.contains("<script"),
        "a script tag (or an unescaped name)"
    );
    for needle in [
        "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    for url in html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 40).min(html.len())])
    {
        assert!(
            url.starts_with("http://www.w3.org/2000/svg"),
            "a reference to the network: {url}"
        );
    }
    // The chart: one bar per day with launches, axes labelled.
    assert_eq!(html.matches("<svg").count(), 1);
    assert_eq!(html.matches("<rect class=\"bar\"").count(), 9);
    assert!(html.contains("2026-01-06: 12 launches, 2 users"));
    assert!(html.contains(">day (UTC)</text>") && html.contains(">launches</text>"));
    // The range covered, the time generated, and the table.
    assert!(html.contains("2026-01-05T08:00:00Z (the first stored launch)"));
    assert!(html.contains("2026-02-04T11:00:00Z (the last stored launch)"));
    assert!(html.contains("Generated 20"));
    // Rows: the apps table's header and 4 apps, then monthly use (header, 2026-01, 2026-02),
    // environments (header, ENV1, ENV2, none) and the inactive apps (header, A, B, C: all last
    // launched in February 2026, more than 90 days before any run of this test): 5 + 3 + 4 + 4.
    assert_eq!(html.matches("<tr>").count(), 16);
    let apps_section =
        &html[html.find("<h2>Apps</h2>").unwrap()..html.find("<h2>Monthly use</h2>").unwrap()];
    assert_eq!(apps_section.matches("<tr>").count(), 5);
    assert!(html.contains(XSS_ESCAPED), "the app name escaped");
    assert!(!html.contains(XSS));
    assert!(html.contains("(no app id)"));
    assert!(html.contains("<b>66</b>launches"));

    // A filtered page names its range and filters, escaped too.
    report(
        &env,
        &[
            "apps",
            "--format",
            "html",
            "--output",
            "jan.html",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-01",
            "--environment",
            "<b>env</b>",
        ],
    )
    .assert_code(0);
    let jan = std::fs::read_to_string(env.path("jan.html")).unwrap();
    assert!(jan.contains("2026-01-01T00:00:00Z to 2026-02-01T00:00:00Z (exclusive)"));
    assert!(jan.contains("&lt;b&gt;env&lt;/b&gt;"));
    assert!(jan.contains("No launches in this range."));
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless chromium on `url` with `extra` arguments; stdout and stderr go to files (a DOM dump
/// overflows a pipe nobody reads), and a browser that hangs is killed after two minutes.
fn chromium(dir: &Path, url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out_path = dir.join("chromium.out");
    let err_path = dir.join("chromium.err");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 2 minutes:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    std::fs::read_to_string(&out_path).unwrap()
}

/// A PNG's size in bytes and its width and height (from the IHDR chunk).
fn png(path: &Path) -> (usize, u32, u32) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24,
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (bytes.len(), be(16), be(20))
}

#[test]
fn report_html_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("AUDITSYNC_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("skipped: {CHROMIUM} is missing and AUDITSYNC_SKIP_BROWSER=1");
            return;
        }
        panic!(
            "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/test does), or set \
             AUDITSYNC_SKIP_BROWSER=1 to skip this test"
        );
    }
    let env = known_store();
    let (html, _) = html_report(&env);
    let dir = env.dir.path();

    // The page as the browser built it: the table's rows, the name as text, no script run.
    let dom = chromium(
        dir,
        &format!("file://{}", html.display()),
        &["--dump-dom".into()],
    );
    // The apps (header and 4), monthly use (3), environments (4), inactive apps (4): see above.
    assert_eq!(
        dom.matches("<tr>").count(),
        16,
        "the four tables' rows:\n{dom}"
    );
    for section in ["Apps", "Monthly use", "Environments", "Inactive apps"] {
        assert!(
            dom.contains(&format!("<h2>{section}</h2>")),
            "{section}:\n{dom}"
        );
    }
    assert!(dom.contains("Expenses") && dom.contains("Team rota") && dom.contains("(no app id)"));
    // Serialised back from the DOM, the name is text: markup escaped (quotes need not be in text).
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"Co\""),
        "the name shown as text:\n{dom}"
    );
    assert!(
        !dom.contains("<script"),
        "a script element was created:\n{dom}"
    );
    assert!(dom.contains("<svg") && dom.contains("<rect class=\"bar\""));

    // A screenshot, against one of a blank page.
    let shot = dir.join("usage.png");
    chromium(
        dir,
        &format!("file://{}", html.display()),
        &[format!("--screenshot={}", shot.display())],
    );
    let blank_html = env.write("blank.html", "<!DOCTYPE html><html><body></body></html>");
    let blank = dir.join("blank.png");
    chromium(
        dir,
        &format!("file://{}", blank_html.display()),
        &[format!("--screenshot={}", blank.display())],
    );
    let (size, width, height) = png(&shot);
    let (blank_size, _, _) = png(&blank);
    assert_eq!((width, height), (1200, 900));
    assert!(
        size > 10 * blank_size && size > 20_000,
        "the screenshot ({size} bytes) looks blank (a blank page is {blank_size} bytes)"
    );
    if let Ok(keep) = std::env::var("AUDITSYNC_SCREENSHOT") {
        std::fs::copy(&shot, &keep).unwrap();
        eprintln!("screenshot copied to {keep}");
    }
}

#[test]
fn unique_users_fold_case_beyond_ascii() {
    let env = store_with(&[
        launch(
            "2026-03-01T10:00:00Z",
            "ÅSA@contoso.com",
            Some("a1"),
            Some("A"),
            None,
            256,
        ),
        launch(
            "2026-03-01T11:00:00Z",
            "åsa@contoso.com",
            Some("a1"),
            Some("A"),
            None,
            45,
        ),
        launch(
            "2026-03-01T12:00:00Z",
            "Ömer@Contoso.com",
            Some("a1"),
            Some("A"),
            None,
            256,
        ),
    ]);
    let apps = report_json(&env, &["apps"]);
    assert_eq!(apps[0]["launches"], 3);
    assert_eq!(apps[0]["unique_users"], 2);
    let users = report_json(&env, &["users"]);
    assert_eq!(users.as_array().unwrap().len(), 2);
    // The app filter ignores case too.
    let one = report_json(&env, &["apps", "--app", "A1"]);
    assert_eq!(one[0]["launches"], 3);
}
