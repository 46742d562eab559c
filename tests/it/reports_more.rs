//! `report monthly [--by app]`, `report environments`, `report inactive` and `export`: counts worked
//! out by hand (the arithmetic in the comments) on hand-made stores, in json, csv and table; the
//! month boundary to the second; the inactive cutoff and `data_since`; the export's raw records byte
//! for byte, its bounds, formulas, files, a closed pipe and a signal.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::TestEnv;
use crate::report::{
    A, B, C, ENV1, ENV2, XSS, XSS_ESCAPED, known_store, launch, parse_csv, report, report_json,
    store_with,
};

/// One event put into `audit_events` through the view, as another program could.
struct Ev<'a> {
    id: &'a str,
    time: &'a str,
    operation: &'a str,
    user: Option<&'a str>,
    app: Option<&'a str>,
    name: Option<&'a str>,
    env: Option<&'a str>,
    raw: &'a str,
}

fn ev<'a>(id: &'a str, time: &'a str, raw: &'a str) -> Ev<'a> {
    Ev {
        id,
        time,
        operation: "LaunchPowerApp",
        user: Some("alice@contoso.com"),
        app: Some(A),
        name: Some("Expenses"),
        env: Some(ENV1),
        raw,
    }
}

/// A configured test folder whose database, created by auditsync's own store, holds `events`.
fn store_of(events: &[Ev]) -> TestEnv {
    let env = store_with(&[]);
    let mut db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let tx = db.transaction().unwrap();
    for e in events {
        tx.execute(
            "INSERT INTO audit_events (id, creation_time, operation, workload, record_type, user_id, app_id, \
             app_name, environment_id, content_type, content_id, raw) \
             VALUES (?1, ?2, ?3, 'PowerPlatform', 256, ?4, ?5, ?6, ?7, 'Audit.General', 'test', ?8)",
            rusqlite::params![e.id, e.time, e.operation, e.user, e.app, e.name, e.env, e.raw],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    env
}

/// The cells of each row of a CSV output, header checked.
fn csv_rows(env: &TestEnv, args: &[&str], header: &[&str]) -> Vec<Vec<String>> {
    let mut all = args.to_vec();
    all.extend(["--format", "csv"]);
    let run = report(env, &all);
    run.assert_code(0);
    let (h, rows) = parse_csv(&run.stdout);
    assert_eq!(h, header, "{}", run.stdout);
    rows
}

/// The words of each line of the table output (header first).
fn table_words(env: &TestEnv, args: &[&str]) -> Vec<Vec<String>> {
    let run = report(env, args);
    run.assert_code(0);
    run.stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// report monthly
// ---------------------------------------------------------------------------------------------

/// The known store by month (see `report.rs`'s HAND):
/// - 2026-01: A 50 (alice, bob) + B 1 (carol) + C 5 (alice, ALICE, bob, carol, dave) = 56 launches;
///   people {alice, bob, carol, dave} = 4; apps A, B, C = 3; production: A (50 launches) = 1
///   (C has 5 launches but 4 people, B 1).
/// - 2026-02: A 3 (alice) + B 5 (alice, bob, carol, dave, erin) + C 1 (erin) + no app 1 (frank) = 10;
///   people {alice, bob, carol, dave, erin, frank} = 6; apps A, B, C = 3 (the launch without an app
///   is no app); production: B (5 people) = 1. 56 + 10 = 66, every launch; DeletePowerApp not one.
#[test]
fn report_monthly_matches_hand_computed_counts_in_every_format() {
    let env = known_store();
    assert_eq!(
        report_json(&env, &["monthly"]),
        json!([
            {"month": "2026-01", "launches": 56, "unique_users": 4, "apps": 3, "production_apps": 1},
            {"month": "2026-02", "launches": 10, "unique_users": 6, "apps": 3, "production_apps": 1},
        ])
    );
    assert_eq!(
        csv_rows(
            &env,
            &["monthly"],
            &[
                "month",
                "launches",
                "unique_users",
                "apps",
                "production_apps"
            ]
        ),
        [
            ["2026-01", "56", "4", "3", "1"],
            ["2026-02", "10", "6", "3", "1"]
        ]
    );
    assert_eq!(
        table_words(&env, &["monthly"]),
        [
            vec![
                "MONTH",
                "LAUNCHES",
                "UNIQUE",
                "USERS",
                "APPS",
                "PRODUCTION",
                "APPS"
            ],
            vec!["2026-01", "56", "4", "3", "1"],
            vec!["2026-02", "10", "6", "3", "1"],
        ]
    );
    // February only, in ENV2: B's 5 launches by 5 people, a production app.
    assert_eq!(
        report_json(
            &env,
            &["monthly", "--from", "2026-02-01", "--environment", ENV2]
        ),
        json!([{"month": "2026-02", "launches": 5, "unique_users": 5, "apps": 1, "production_apps": 1}])
    );
}

/// By app, months oldest first, most launched first within a month, no app last:
/// - 2026-01: A 50 launches, 2 people, production; C 5, 4 (alice = ALICE), not; B 1, 1, not.
/// - 2026-02: B 5, 5, production; A 3, 1; then C 1 and no app 1 (a tie: the app first).
///
/// Names are the latest any stored launch carried (C's is the XSS text).
#[test]
fn report_monthly_by_app_matches_hand_computed_counts_in_every_format() {
    let env = known_store();
    assert_eq!(
        report_json(&env, &["monthly", "--by", "app"]),
        json!([
            {"month": "2026-01", "app_id": A, "app_name": "Expenses", "launches": 50, "unique_users": 2, "production": true},
            {"month": "2026-01", "app_id": C, "app_name": XSS, "launches": 5, "unique_users": 4, "production": false},
            {"month": "2026-01", "app_id": B, "app_name": "Team rota", "launches": 1, "unique_users": 1, "production": false},
            {"month": "2026-02", "app_id": B, "app_name": "Team rota", "launches": 5, "unique_users": 5, "production": true},
            {"month": "2026-02", "app_id": A, "app_name": "Expenses", "launches": 3, "unique_users": 1, "production": false},
            {"month": "2026-02", "app_id": C, "app_name": XSS, "launches": 1, "unique_users": 1, "production": false},
            {"month": "2026-02", "app_id": null, "app_name": null, "launches": 1, "unique_users": 1, "production": false},
        ])
    );
    let rows = csv_rows(
        &env,
        &["monthly", "--by", "app"],
        &[
            "month",
            "app_id",
            "app_name",
            "launches",
            "unique_users",
            "production",
        ],
    );
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0], ["2026-01", A, "Expenses", "50", "2", "true"]);
    assert_eq!(rows[1], ["2026-01", C, XSS, "5", "4", "false"]);
    assert_eq!(rows[6], ["2026-02", "", "", "1", "1", "false"]);
    let table = table_words(&env, &["monthly", "--by", "app"]);
    assert_eq!(table.len(), 8);
    assert_eq!(table[1], ["2026-01", A, "Expenses", "50", "2", "yes"]);
    assert_eq!(table[4], ["2026-02", B, "Team", "rota", "5", "5", "yes"]);
    assert_eq!(
        table[7],
        ["2026-02", "(no", "app", "id)", "-", "1", "1", "no"]
    );
    // --by takes only `app`.
    report(&env, &["monthly", "--by", "user"])
        .assert_code(2)
        .assert_stderr("possible values: app");
}

const P: &str = "aaaaaaaa-0000-0000-0000-00000000000p";
const Q: &str = "aaaaaaaa-0000-0000-0000-00000000000q";
const U: &str = "aaaaaaaa-0000-0000-0000-00000000000u";
const V: &str = "aaaaaaaa-0000-0000-0000-00000000000v";

/// The month boundary, to the second (UTC), and the CoE thresholds one short of each:
/// - P: 48 launches on 03-10 and one at 03-31T23:59:59 (49 in March: not production), one at
///   04-01T00:00:00 (April: 1). Counted in the wrong month, March would reach 50.
/// - U: four people in March (the fourth at 03-31T23:59:59), a fifth at 04-01T00:00:00: neither
///   month has 5 people.
/// - V: five people in April, the first at 04-01T00:00:00: production in April.
/// - Q: 50 launches by one person on 04-10: production in April.
fn boundary_store() -> TestEnv {
    let mut times: Vec<(String, String, &str)> = Vec::new();
    for i in 0..48 {
        times.push((
            format!("2026-03-10T10:{i:02}:00Z"),
            "p1@contoso.com".into(),
            P,
        ));
    }
    times.push(("2026-03-31T23:59:59Z".into(), "p1@contoso.com".into(), P));
    times.push(("2026-04-01T00:00:00Z".into(), "p1@contoso.com".into(), P));
    for (t, u) in [
        ("2026-03-01T10:00:00Z", "u1"),
        ("2026-03-15T10:00:00Z", "u2"),
        ("2026-03-20T10:00:00Z", "u3"),
        ("2026-03-31T23:59:59Z", "u4"),
        ("2026-04-01T00:00:00Z", "u5"),
    ] {
        times.push((t.into(), format!("{u}@contoso.com"), U));
    }
    for (t, u) in [
        ("2026-04-01T00:00:00Z", "v1"),
        ("2026-04-02T10:00:00Z", "v2"),
        ("2026-04-03T10:00:00Z", "v3"),
        ("2026-04-04T10:00:00Z", "v4"),
        ("2026-04-05T10:00:00Z", "v5"),
    ] {
        times.push((t.into(), format!("{u}@contoso.com"), V));
    }
    for i in 0..50 {
        times.push((
            format!("2026-04-10T09:{i:02}:00Z"),
            "q1@contoso.com".into(),
            Q,
        ));
    }
    let rows: Vec<_> = times
        .iter()
        .map(|(t, u, app)| launch(t, u, Some(app), Some("n"), Some(ENV1), 256))
        .collect();
    store_with(&rows)
}

/// March: P 49 + U 4 = 53 launches; people p1, u1..u4 = 5; apps 2; production 0.
/// April: P 1 + U 1 + V 5 + Q 50 = 57; people p1, u5, v1..v5, q1 = 8; apps 4; production V, Q = 2.
#[test]
fn report_monthly_splits_months_at_midnight_utc_and_applies_the_coe_thresholds() {
    let env = boundary_store();
    assert_eq!(
        report_json(&env, &["monthly"]),
        json!([
            {"month": "2026-03", "launches": 53, "unique_users": 5, "apps": 2, "production_apps": 0},
            {"month": "2026-04", "launches": 57, "unique_users": 8, "apps": 4, "production_apps": 2},
        ])
    );
    let by_app: Vec<(String, String, i64, i64, bool)> =
        report_json(&env, &["monthly", "--by", "app"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["month"].as_str().unwrap().to_owned(),
                    r["app_id"].as_str().unwrap().to_owned(),
                    r["launches"].as_i64().unwrap(),
                    r["unique_users"].as_i64().unwrap(),
                    r["production"].as_bool().unwrap(),
                )
            })
            .collect();
    let row = |m: &str, a: &str, n, u, p| (m.to_owned(), a.to_owned(), n, u, p);
    assert_eq!(
        by_app,
        [
            row("2026-03", P, 49, 1, false),
            row("2026-03", U, 4, 4, false),
            row("2026-04", Q, 50, 1, true),
            row("2026-04", V, 5, 5, true),
            row("2026-04", P, 1, 1, false),
            row("2026-04", U, 1, 1, false),
        ]
    );
    // --to is exclusive to the second: the 00:00:00 launches are April's and left out; the
    // 23:59:59 ones stay in March.
    assert_eq!(
        report_json(&env, &["monthly", "--to", "2026-04-01T00:00:00Z"]),
        json!([{"month": "2026-03", "launches": 53, "unique_users": 5, "apps": 2, "production_apps": 0}])
    );
    // From 23:59:59: March keeps P's and U's last launches (2 launches, 2 people).
    assert_eq!(
        report_json(
            &env,
            &[
                "monthly",
                "--from",
                "2026-03-31T23:59:59Z",
                "--to",
                "2026-04-02"
            ]
        ),
        json!([
            {"month": "2026-03", "launches": 2, "unique_users": 2, "apps": 2, "production_apps": 0},
            {"month": "2026-04", "launches": 3, "unique_users": 3, "apps": 3, "production_apps": 0},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// report environments
// ---------------------------------------------------------------------------------------------

/// The known store by environment:
/// - ENV1: A 50 (January) + A 2 (February, the third is a legacy row without environment) + C 5
///   (January) = 57 launches; apps A, C = 2; people alice, bob, carol, dave = 4; last 02-03T10:00.
/// - ENV2: B 6 (all six carry it) = 6; 1 app; carol, alice, bob, dave, erin = 5; last 02-04T09:00.
/// - none: A's legacy 02-03T11:00 (alice), C's legacy 02-04T10:00 (erin), frank's launch without
///   an app 02-04T11:00 = 3; apps A, C = 2; people 3; last 02-04T11:00. 57 + 6 + 3 = 66.
#[test]
fn report_environments_matches_hand_computed_counts_in_every_format() {
    let env = known_store();
    assert_eq!(
        report_json(&env, &["environments"]),
        json!([
            {"environment_id": ENV1, "apps": 2, "launches": 57, "unique_users": 4, "last_launch": "2026-02-03T10:00:00Z"},
            {"environment_id": ENV2, "apps": 1, "launches": 6, "unique_users": 5, "last_launch": "2026-02-04T09:00:00Z"},
            {"environment_id": null, "apps": 2, "launches": 3, "unique_users": 3, "last_launch": "2026-02-04T11:00:00Z"},
        ])
    );
    assert_eq!(
        csv_rows(
            &env,
            &["environments"],
            &[
                "environment_id",
                "apps",
                "launches",
                "unique_users",
                "last_launch"
            ]
        ),
        [
            [ENV1, "2", "57", "4", "2026-02-03T10:00:00Z"],
            [ENV2, "1", "6", "5", "2026-02-04T09:00:00Z"],
            ["", "2", "3", "3", "2026-02-04T11:00:00Z"],
        ]
    );
    let table = table_words(&env, &["environments"]);
    assert_eq!(table.len(), 4);
    assert_eq!(table[1], [ENV1, "2", "57", "4", "2026-02-03T10:00:00Z"]);
    assert_eq!(
        table[3],
        ["(no", "environment)", "2", "3", "3", "2026-02-04T11:00:00Z"]
    );
    // February: ENV2 B 5 (5 people); none 3 (A, C, no app: 2 apps, 3 people); ENV1 A 2 (alice).
    assert_eq!(
        report_json(&env, &["environments", "--from", "2026-02-01"]),
        json!([
            {"environment_id": ENV2, "apps": 1, "launches": 5, "unique_users": 5, "last_launch": "2026-02-04T09:00:00Z"},
            {"environment_id": null, "apps": 2, "launches": 3, "unique_users": 3, "last_launch": "2026-02-04T11:00:00Z"},
            {"environment_id": ENV1, "apps": 1, "launches": 2, "unique_users": 1, "last_launch": "2026-02-03T10:00:00Z"},
        ])
    );
    // One app: where C was launched (ENV1 5 by 4 people, none 1 by erin).
    assert_eq!(
        report_json(&env, &["environments", "--app", C]),
        json!([
            {"environment_id": ENV1, "apps": 1, "launches": 5, "unique_users": 4, "last_launch": "2026-01-09T10:00:00Z"},
            {"environment_id": null, "apps": 1, "launches": 1, "unique_users": 1, "last_launch": "2026-02-04T10:00:00Z"},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// report inactive
// ---------------------------------------------------------------------------------------------

fn ago(days: i64, hours: i64) -> String {
    let t = Utc::now() - TimeDelta::days(days) - TimeDelta::hours(hours);
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The known store's launches are all in January and February 2026, before any 90-day cutoff this
/// test runs at: every app is listed, oldest last launch first (A 02-03T11:00, B 02-04T09:00, C
/// 02-04T10:00), with its launches in the whole store (53, 6, 6) and the latest environment any of
/// its launches carried; the launch without an app is no app. The store holds launches since A's
/// first, 2026-01-05T08:00:00Z.
#[test]
fn report_inactive_lists_the_apps_with_the_store_s_first_launch_in_every_format() {
    let env = known_store();
    let v = report_json(&env, &["inactive"]);
    assert_eq!(v["data_since"], "2026-01-05T08:00:00Z");
    let cutoff = chrono::DateTime::parse_from_rfc3339(v["cutoff"].as_str().unwrap()).unwrap();
    let want = Utc::now() - TimeDelta::days(90);
    assert!((cutoff.to_utc() - want).num_seconds().abs() < 120, "{v}");
    assert_eq!(
        v["apps"],
        json!([
            {"app_id": A, "app_name": "Expenses", "environment_id": ENV1, "last_launch": "2026-02-03T11:00:00Z", "launches": 53},
            {"app_id": B, "app_name": "Team rota", "environment_id": ENV2, "last_launch": "2026-02-04T09:00:00Z", "launches": 6},
            {"app_id": C, "app_name": XSS, "environment_id": ENV1, "last_launch": "2026-02-04T10:00:00Z", "launches": 6},
        ])
    );
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    let cutoff_text = v["cutoff"].as_str().unwrap().to_owned();

    let rows = csv_rows(
        &env,
        &["inactive"],
        &[
            "app_id",
            "app_name",
            "environment_id",
            "last_launch",
            "launches",
            "cutoff",
            "data_since",
        ],
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0][..5],
        [A, "Expenses", ENV1, "2026-02-03T11:00:00Z", "53"]
    );
    assert_eq!(rows[2][..5], [C, XSS, ENV1, "2026-02-04T10:00:00Z", "6"]);
    for r in &rows {
        // The same cutoff to the minute (two runs a moment apart), and the store's first launch.
        assert_eq!(r[5][..16], cutoff_text[..16]);
        assert_eq!(r[6], "2026-01-05T08:00:00Z");
    }

    let run = report(&env, &["inactive"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].contains("before 20"), "{}", run.stdout);
    assert!(
        lines[1].contains("since 2026-01-05T08:00:00Z")
            && lines[1].contains("can only look active"),
        "{}",
        run.stdout
    );
    assert_eq!(lines[2], "");
    assert!(lines[3].starts_with("APP ID"), "{}", run.stdout);
    let words: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(words, [A, "Expenses", ENV1, "2026-02-03T11:00:00Z", "53"]);
    assert_eq!(lines.len(), 7, "{}", run.stdout);

    // With --environment, only launches there count: ENV2 holds only B (6 launches).
    let v = report_json(&env, &["inactive", "--environment", ENV2]);
    assert_eq!(v["apps"].as_array().unwrap().len(), 1);
    assert_eq!(v["apps"][0]["app_id"], B);
    assert_eq!(v["apps"][0]["launches"], 6);
}

/// Around the cutoff, relative to now: an app last launched 90 days and an hour ago is inactive at
/// --days 90, one launched 89 days and 23 hours ago is not (nor at --days 90 is one launched
/// yesterday); --days 100 lists neither of the two close ones; the store holds data since the
/// oldest of all, 400 days ago.
#[test]
fn report_inactive_honours_the_cutoff_and_says_since_when_the_store_holds_data() {
    let old = ago(400, 0);
    let just_over = ago(90, 1);
    let just_under = ago(89, 23);
    let yesterday = ago(1, 0);
    let rows = [
        launch(
            &old,
            "a@contoso.com",
            Some("app-old"),
            Some("Old"),
            Some("e1"),
            256,
        ),
        launch(
            &just_over,
            "a@contoso.com",
            Some("app-over"),
            Some("Over"),
            Some("e1"),
            256,
        ),
        launch(
            &just_under,
            "a@contoso.com",
            Some("app-under"),
            Some("Under"),
            Some("e1"),
            256,
        ),
        launch(
            &yesterday,
            "a@contoso.com",
            Some("app-new"),
            None,
            None,
            256,
        ),
        // app-moved: long ago in e1, yesterday in e2.
        launch(
            &old,
            "b@contoso.com",
            Some("app-moved"),
            Some("Moved"),
            Some("e1"),
            256,
        ),
        launch(
            &yesterday,
            "b@contoso.com",
            Some("app-moved"),
            Some("Moved"),
            Some("e2"),
            256,
        ),
    ];
    let env = store_with(&rows);
    let ids = |v: &Value| -> Vec<String> {
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["app_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = report_json(&env, &["inactive"]);
    assert_eq!(v["data_since"], old.as_str());
    assert_eq!(ids(&v), ["app-old", "app-over"]);
    assert_eq!(v["apps"][1]["last_launch"], just_over.as_str());
    assert_eq!(v["apps"][1]["launches"], 1);
    assert_eq!(
        ids(&report_json(&env, &["inactive", "--days", "100"])),
        ["app-old"]
    );
    assert_eq!(
        ids(&report_json(&env, &["inactive", "--days", "0"])).len(),
        5,
        "every app's last launch is before now"
    );
    // In e1 alone, app-moved has not been launched for 400 days.
    assert_eq!(
        ids(&report_json(&env, &["inactive", "--environment", "e1"])),
        ["app-moved", "app-old", "app-over"]
    );
    // An empty store: no apps, and no data to speak of.
    let empty = store_with(&[]);
    let v = report_json(&empty, &["inactive"]);
    assert_eq!(v["data_since"], Value::Null);
    assert_eq!(v["apps"], json!([]));
    report(&empty, &["inactive"])
        .assert_code(0)
        .assert_stdout("The store holds no launches yet.");
}

#[test]
fn report_inactive_refuses_the_filters_it_cannot_apply() {
    let env = known_store();
    report(&env, &["inactive", "--from", "2026-01-01"])
        .assert_code(2)
        .assert_stderr("use --days N");
    report(&env, &["inactive", "--to", "2026-01-01"])
        .assert_code(2)
        .assert_stderr("use --days N");
    report(&env, &["inactive", "--app", A])
        .assert_code(2)
        .assert_stderr(&format!("auditsync report apps --app {A}"));
    // Every bad number of days says what to write, a negative one too (not "unexpected argument").
    for days in ["-1", "99999999", "1.5", "0x10"] {
        report(&env, &["inactive", "--days", days])
            .assert_code(2)
            .assert_stderr("write a whole number from 0 to 36500");
    }
    env.run(&["prune", "--older-than", "-5d"])
        .assert_code(2)
        .assert_stderr("is not an age");
    report(
        &env,
        &["inactive", "--format", "html", "--output", "x.html"],
    )
    .assert_code(2)
    .assert_stderr("possible values: table, csv, json");
}

// ---------------------------------------------------------------------------------------------
// the HTML page
// ---------------------------------------------------------------------------------------------

#[test]
fn report_html_shows_monthly_use_environments_and_inactive_apps_escaped() {
    let env = known_store();
    report(
        &env,
        &["apps", "--format", "html", "--output", "usage.html"],
    )
    .assert_code(0);
    let html = std::fs::read_to_string(env.path("usage.html")).unwrap();
    for section in [
        "<h2>Monthly use</h2>",
        "<h2>Environments</h2>",
        "<h2>Inactive apps</h2>",
    ] {
        assert_eq!(html.matches(section).count(), 1, "{section}");
    }
    // Monthly (see the monthly test): 2026-01 56 4 3 1, 2026-02 10 6 3 1.
    assert!(html.contains(
        "<td class=\"time\">2026-01</td><td class=\"n\">56</td><td class=\"n\">4</td><td class=\"n\">3</td><td class=\"n\">1</td>"
    ));
    assert!(html.contains(
        "<td class=\"time\">2026-02</td><td class=\"n\">10</td><td class=\"n\">6</td><td class=\"n\">3</td><td class=\"n\">1</td>"
    ));
    // Environments: ENV1 2 apps 57 launches 4 people; the launches without one named.
    assert!(html.contains(&format!(
        "<span class=\"name\">{ENV1}</span></td><td class=\"n\">2</td><td class=\"n\">57</td><td class=\"n\">4</td>"
    )));
    assert!(html.contains("(no environment)"));
    // Inactive: since when the store holds data, and C's name escaped in its table too.
    assert!(
        html.contains("The store holds launches since <time datetime=\"2026-01-05T08:00:00Z\"")
    );
    assert_eq!(
        html.matches(XSS_ESCAPED).count(),
        2,
        "apps and inactive tables"
    );
    assert!(!html.contains(XSS) && !html.contains("<script"));

    // Names in environment ids are escaped too, and the page stays one file.
    let hostile = store_with(&[launch(
        "2026-01-01T00:00:00Z",
        "a@contoso.com",
        Some("x"),
        Some("<img src=x>"),
        Some("<b>env</b>"),
        256,
    )]);
    report(
        &hostile,
        &["apps", "--format", "html", "--output", "h.html"],
    )
    .assert_code(0);
    let html = std::fs::read_to_string(hostile.path("h.html")).unwrap();
    assert!(!html.contains("<b>env") && !html.contains("<img"));
    assert!(html.contains("&lt;b&gt;env&lt;/b&gt;") && html.contains("&lt;img src=x&gt;"));
}

// ---------------------------------------------------------------------------------------------
// export
// ---------------------------------------------------------------------------------------------

fn export(env: &TestEnv, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// The `raw` value of a JSON Lines object, as the bytes written: everything after the columns'
/// `,"raw":` up to the closing brace.
fn raw_slice(line: &str) -> &str {
    let at = line.find(",\"raw\":").expect("a raw member") + ",\"raw\":".len();
    line[at..].strip_suffix('}').expect("the object's end")
}

/// Records imported from a Purview export come out of `export --format jsonl` byte for byte:
/// unicode, escapes, tabs and odd spacing inside the record inserted as they are (import keeps the
/// AuditData cell without the blanks around it); a record spread over lines (which
/// would break the JSON Lines format) as a JSON string that decodes to the same text.
#[test]
fn export_jsonl_round_trips_the_raw_records_byte_for_byte() {
    let env = TestEnv::new();
    env.write_config("");
    let one_line = "{ \"Id\":\"r1\" ,  \"RecordType\" :256,\t\"CreationTime\":\"2026-03-01T10:00:00\",\
        \"Operation\":\"LaunchPowerApp\",\"Workload\":\"PowerPlatform\",\"UserId\":\"Åsa@Contoso.com\",\
        \"PropertyCollection\":[{\"Name\":\"powerplatform.analytics.resource.power_app.id\",\"Value\":\"app-1\"},\
        {\"Name\":\"powerplatform.analytics.resource.power_app.display_name\",\"Value\":\"経費 🚀 \\\"q\\\" \\\\ \\u00e9\\/\\n\"}] }";
    let two_lines = "{\n  \"Id\": \"r2\",\n  \"RecordType\": 256,\n  \"CreationTime\": \"2026-03-02T10:00:00\",\n  \
        \"Operation\": \"LaunchPowerApp\",\n  \"UserId\": \"bob@contoso.com\"\n}";
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["CreationDate", "UserIds", "Operations", "AuditData"])
        .unwrap();
    w.write_record([
        "2026-03-01T10:00:00",
        "Åsa@Contoso.com",
        "LaunchPowerApp",
        one_line,
    ])
    .unwrap();
    w.write_record([
        "2026-03-02T10:00:00",
        "bob@contoso.com",
        "LaunchPowerApp",
        two_lines,
    ])
    .unwrap();
    std::fs::write(env.path("in.csv"), w.into_inner().unwrap()).unwrap();
    env.run(&["import", "in.csv"]).assert_code(0);

    let run = export(&env, &["--format", "jsonl"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(raw_slice(lines[0]), one_line);
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["id"], "r1");
    assert_eq!(first["creation_time"], "2026-03-01T10:00:00Z");
    assert_eq!(first["operation"], "LaunchPowerApp");
    assert_eq!(first["app_id"], "app-1");
    assert_eq!(first["user_id"], "Åsa@Contoso.com");
    assert_eq!(first["content_type"], Value::Null);
    assert_eq!(
        first["raw"]["PropertyCollection"][1]["Value"],
        "経費 🚀 \"q\" \\ é/\n"
    );
    let second: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["raw"], two_lines, "a multi-line record as a string");
}

/// A row another program put into `audit_events` whose raw text is not JSON is exported as a
/// JSON string; every operation is exported, by operation, then oldest first.
#[test]
fn export_writes_every_operation_and_records_that_are_not_json_as_strings() {
    let env = store_of(&[
        ev("e2", "2026-01-02T00:00:00Z", "not json at all, \"quoted\""),
        ev("e1", "2026-01-01T00:00:00Z", "{\"Id\":\"e1\"}"),
        Ev {
            operation: "DeletePowerApp",
            ..ev("d1", "2026-01-03T00:00:00Z", "")
        },
    ]);
    let run = export(&env, &["--format", "jsonl"]);
    run.assert_code(0);
    let rows: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["d1", "e1", "e2"]);
    assert_eq!(rows[0]["raw"], "");
    assert_eq!(rows[1]["raw"], json!({"Id": "e1"}));
    assert_eq!(rows[2]["raw"], "not json at all, \"quoted\"");
}

/// The known store in a range: [2026-02-04T00:00, 2026-02-04T11:00) holds B's dave 08:00 and erin
/// 09:00 and C's erin 10:00; frank's 11:00 is at --to, left out. The whole store is 66 launches and
/// one DeletePowerApp.
#[test]
fn export_honours_from_and_to_and_an_empty_range_is_empty() {
    let env = known_store();
    let run = export(
        &env,
        &[
            "--format",
            "jsonl",
            "--from",
            "2026-02-04",
            "--to",
            "2026-02-04T11:00:00Z",
        ],
    );
    run.assert_code(0);
    let times: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["creation_time"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        times,
        [
            "2026-02-04T08:00:00Z",
            "2026-02-04T09:00:00Z",
            "2026-02-04T10:00:00Z"
        ]
    );
    let all = export(&env, &["--format", "csv"]);
    all.assert_code(0);
    let (header, rows) = parse_csv(&all.stdout);
    assert_eq!(
        header,
        [
            "id",
            "creation_time",
            "operation",
            "workload",
            "record_type",
            "user_id",
            "user_key",
            "app_id",
            "app_name",
            "environment_id",
            "content_type",
            "content_id"
        ]
    );
    assert_eq!(rows.len(), 67);
    assert_eq!(rows[0][2], "DeletePowerApp");
    assert_eq!(rows.iter().filter(|r| r[2] == "LaunchPowerApp").count(), 66);
    // --from inclusive to the second.
    let from = export(&env, &["--format", "csv", "--from", "2026-02-04T11:00:00Z"]);
    assert_eq!(parse_csv(&from.stdout).1.len(), 1);

    // A range with nothing: no lines in JSON Lines, the header alone in CSV.
    let empty = export(&env, &["--format", "jsonl", "--from", "2030-01-01"]);
    empty.assert_code(0);
    assert_eq!(empty.stdout, "");
    let empty = export(&env, &["--format", "csv", "--to", "2000-01-01"]);
    empty.assert_code(0);
    assert_eq!(empty.stdout.lines().count(), 1);

    export(
        &env,
        &[
            "--format",
            "csv",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
        ],
    )
    .assert_code(2)
    .assert_stderr("is not before --to");
    export(&env, &["--format", "csv", "--app", A])
        .assert_code(2)
        .assert_stderr("filter the file afterwards");
    export(&env, &["--format", "xml"])
        .assert_code(2)
        .assert_stderr("possible values: csv, jsonl");
}

#[test]
fn export_csv_neutralises_formulas_and_keeps_the_rest_whole() {
    let env = store_of(&[Ev {
        name: Some("=HYPERLINK(\"http://x\",\"y\")"),
        user: Some("@SUM(1)"),
        ..ev("e1", "2026-01-01T00:00:00Z", "{}")
    }]);
    let run = export(&env, &["--format", "csv"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{}",
        run.stdout
    );
    let (_, rows) = parse_csv(&run.stdout);
    assert_eq!(rows[0][5], "'@SUM(1)");
    assert_eq!(rows[0][8], "'=HYPERLINK(\"http://x\",\"y\")");
    assert_eq!(rows[0][0], "e1");
}

#[test]
fn export_output_is_a_private_file_written_whole() {
    let env = known_store();
    export(&env, &["--format", "jsonl", "--output", "events.jsonl"])
        .assert_code(0)
        .assert_stderr("67 events exported to events.jsonl");
    let text = std::fs::read_to_string(env.path("events.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 67);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("events.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    export(&env, &["--format", "csv", "--output", "events.jsonl"])
        .assert_code(2)
        .assert_stderr("--force");
    assert_eq!(
        std::fs::read_to_string(env.path("events.jsonl")).unwrap(),
        text
    );
    export(
        &env,
        &["--format", "csv", "--output", "events.jsonl", "--force"],
    )
    .assert_code(0);
    assert_eq!(
        std::fs::read_to_string(env.path("events.jsonl"))
            .unwrap()
            .lines()
            .count(),
        68
    );
    export(
        &env,
        &["--format", "csv", "--output", "auditsync.db", "--force"],
    )
    .assert_code(2)
    .assert_stderr("the database");
    let names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

/// A store large enough to fill a pipe several times over: 3,000 launches, each raw record about
/// 600 bytes.
fn big_store() -> TestEnv {
    let pad = "x".repeat(560);
    let raws: Vec<String> = (0..3000)
        .map(|i| format!("{{\"Id\":\"e{i}\",\"Pad\":\"{pad}\"}}"))
        .collect();
    let ids: Vec<String> = (0..3000).map(|i| format!("e{i:05}")).collect();
    let times: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                "2026-01-01T{:02}:{:02}:{:02}Z",
                i / 3600,
                (i / 60) % 60,
                i % 60
            )
        })
        .collect();
    let events: Vec<Ev> = (0..3000)
        .map(|i| ev(&ids[i], &times[i], &raws[i]))
        .collect();
    store_of(&events)
}

#[test]
fn export_to_a_pipe_closed_early_ends_quietly() {
    let env = big_store();
    let mut child = env
        .cmd()
        .args(["export", "--format", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (as `| head -1`): the next write fails with a broken pipe.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("{\"id\":\"e00000\""), "{first}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn export_stops_between_rows_on_sigterm_with_exit_143() {
    let env = big_store();
    let mut child = env
        .cmd()
        .args(["export", "--format", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Nobody reads stdout yet, so the export waits on a full pipe, well before its end.
    let mut head = [0u8; 1];
    stdout.read_exact(&mut head).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    #[allow(unsafe_code, reason = "kill(2) on our own child")]
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    // Wait until the signal was taken in (the warning), then let the export go on.
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no warning on SIGTERM"
        );
        if line.contains("SIGTERM") {
            break;
        }
    }
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let mut tail = String::new();
    stderr.read_to_string(&mut tail).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{tail}");
    assert!(
        tail.contains("interrupted by SIGTERM") && tail.contains("incomplete"),
        "{tail}"
    );
    let lines = rest.split(|b| *b == b'\n').count();
    assert!(
        lines < 3000,
        "the export went on to the end ({lines} lines)"
    );
}

/// A format given in capitals is the same format (as `prune`'s ages are read in any case).
#[test]
fn formats_are_read_in_any_case() {
    let env = known_store();
    let lower = report(&env, &["apps", "--format", "csv"]);
    let upper = report(&env, &["apps", "--format", "CSV"]);
    assert_eq!(upper.assert_code(0).stdout, lower.assert_code(0).stdout);
    report(&env, &["monthly", "--format", "Json"]).assert_code(0);
    env.run(&["export", "--format", "JSONL"]).assert_code(0);
}
