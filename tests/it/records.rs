//! Records that cannot be read (quarantined, reported once), the time shapes and field-name cases
//! AuditData comes in, legacy launches' app names, and people counted once whether records name them
//! by UPN or by object id: `auditsync sync`, `status` and `report` against the simulated tenant.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::{TestEnv, json, stored_events, stored_ids, time, truth};

fn subscribed(env: TestEnv) -> TestEnv {
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

/// A RecordType 256 launch, as the service writes it, with `CreationTime` as given.
fn launch(id: &str, creation_time: &str) -> Value {
    json!({
        "Id": id, "RecordType": 256, "CreationTime": creation_time, "Operation": "LaunchPowerApp",
        "Workload": "PowerPlatform", "UserId": "amberr@contoso.onmicrosoft.com",
        "UserKey": "7ff1e0f1-e2a4-48a0-874e-34db43893df1",
        "PropertyCollection": [
            {"Name": "powerplatform.analytics.resource.power_app.id", "Value": "6c39e97c-6ddd-4a37-afd4-494a605925cf"},
            {"Name": "powerplatform.analytics.resource.power_app.display_name", "Value": "TestEmptyApp"}
        ]
    })
}

/// One unreadable record among good ones: the good ones are stored, the bad one quarantined and
/// reported by that run only (exit 1), the blob counts as stored (not fetched again), the watermark
/// moves past it, and `status` shows the quarantine.
#[test]
fn one_unreadable_record_is_quarantined_and_the_rest_of_its_blob_stored() {
    for (bad, reason) in [
        (
            json!({"RecordType": 256, "Operation": "LaunchPowerApp", "CreationTime": "2026-11-28T13:29:30"}),
            "has no Id",
        ),
        (json!("a record as a string"), "not a JSON object"),
        (json!(17), "not a JSON object"),
        (launch("bad-time", "28/11/2026 13:29:30"), "is not a time"),
        (
            launch("bad-type", "2026-11-28T13:29:30")
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("Id".into(), json!({"value": "x"}));
                    Value::Object(o)
                })
                .unwrap(),
            "has no Id",
        ),
    ] {
        let env = subscribed(TestEnv::new());
        let created = Utc::now() - TimeDelta::hours(3);
        let at = (created - TimeDelta::minutes(20)).naive_utc();
        let good = [
            launch("good-1", &at.format("%Y-%m-%dT%H:%M:%S").to_string()),
            // The space and the short fraction some exports write.
            launch("good-2", &at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
            launch("good-3", &at.format("%Y-%m-%dT%H:%M:%S+0000").to_string()),
        ];
        let body = Value::Array(vec![
            good[0].clone(),
            bad.clone(),
            good[1].clone(),
            good[2].clone(),
        ]);
        let blob = env.sim.publish_blob_with_body(created, body.to_string());

        let first = env.run(&["sync", "--json"]);
        first
            .assert_code(1)
            .assert_stderr(reason)
            .assert_stderr(&blob);
        let s = json(&first);
        assert_eq!(s["quarantined"], 1, "{bad}");
        assert_eq!(s["outcome"], "incomplete");
        assert_eq!(s["blobs_failed"], 0);
        let stored = stored_ids(&env);
        for id in ["good-1", "good-2", "good-3"] {
            assert!(stored.contains(id), "{id} stored ({bad})");
        }
        assert_eq!(stored, truth(&env, &s), "{bad}");
        assert_eq!(
            s["watermark"], s["window_end"],
            "the watermark moves past the blob"
        );
        assert!(time(&s["watermark"]) > created);

        // The next run does not fetch it again, nor report it again.
        let second = env.run(&["sync"]);
        second.assert_code(0);
        assert!(!second.stdout.contains("quarantined"), "{}", second.all());
        assert_eq!(env.sim.stats().blob_fetches_by_content_id[&blob], 1);

        let status = json(env.run(&["status", "--json"]).assert_code(0));
        assert_eq!(status["quarantined_records"], 1);
        let newest = &status["quarantine_newest"][0];
        assert_eq!(newest["origin"], blob.as_str());
        assert_eq!(newest["position"], 1);
        assert!(
            newest["reason"].as_str().unwrap().contains(reason),
            "{newest}"
        );
        env.run(&["status"])
            .assert_code(0)
            .assert_stdout("quarantine: 1 records")
            .assert_stdout(reason);
        // The record's text is kept as received, with where it came from.
        let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
        let (raw, uri, content_type): (String, String, String) = db
            .query_row(
                "SELECT raw, content_uri, content_type FROM quarantine",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), bad);
        assert!(uri.ends_with(&blob), "{uri}");
        assert_eq!(content_type, "Audit.General");
    }
}

/// The summary line says it too, and `-q` does not hide the run's exit status.
#[test]
fn the_summary_line_counts_quarantined_records() {
    let env = subscribed(TestEnv::new());
    let created = Utc::now() - TimeDelta::hours(2);
    env.sim.publish_blob_with_body(created, "[null, 3]");
    let run = env.run(&["sync"]);
    run.assert_code(1)
        .assert_stdout("2 records quarantined")
        .assert_stdout("INCOMPLETE");
    assert!(!run.stdout.contains("blobs not stored"), "{}", run.all());
}

/// A tenant serving unreadable launches in every shape: a sync stores exactly the readable ground
/// truth and quarantines exactly the unreadable ones; the next run is complete.
#[test]
fn a_tenant_with_unreadable_records_syncs_to_the_ground_truth() {
    let env = subscribed(TestEnv::with(|s| {
        s.hours = 6;
        s.launch_share = 0.3;
        s.unreadable_share = 0.1;
    }));
    let first = env.run(&["sync", "--json"]);
    first.assert_code(1);
    let s = json(&first);
    let (start, end) = (time(&s["window_start"]), time(&s["window_end"]));
    let unreadable = env
        .sim
        .unreadable_records("Audit.General", start, end, &["LaunchPowerApp"]);
    assert!(unreadable > 5, "{unreadable}");
    assert_eq!(s["quarantined"], unreadable);
    assert_eq!(s["blobs_failed"], 0);
    assert_eq!(stored_ids(&env), truth(&env, &s));
    assert_eq!(s["watermark"], s["window_end"]);
    env.run(&["sync"]).assert_code(0);
    let status = json(&env.run(&["status", "--json"]));
    assert_eq!(status["quarantined_records"], unreadable);
    assert_eq!(status["quarantine_newest"].as_array().unwrap().len(), 5);
}

/// Records naming a person by UPN only or by object id only (the tenant's `identity_mix`) count that
/// person once, in every report: as many people as the simulator's truth, one row each.
#[test]
fn people_named_by_upn_or_object_id_are_counted_once() {
    let env = subscribed(TestEnv::with(|s| {
        s.hours = 12;
        s.launch_share = 0.3;
        s.identity_mix = 0.4;
    }));
    let s = json(env.run(&["sync", "--json"]).assert_code(0));
    let (start, end) = (time(&s["window_start"]), time(&s["window_end"]));
    let people = env.sim.unique_users("Audit.General", start, end);
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let by_upn_only = stored_events(&env)
        .iter()
        .filter(|e| {
            e.user_id.as_deref().is_some_and(|u| u.contains('@'))
                && !e.raw.contains("enduser.id")
                && e.record_type == Some(256)
        })
        .count();
    let by_id_only: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_events WHERE user_id NOT LIKE '%@%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        by_upn_only > 0 && by_id_only > 0,
        "{by_upn_only} {by_id_only}"
    );
    let distinct_logged: i64 = db
        .query_row(
            "SELECT count(DISTINCT lower(user_id)) FROM audit_events",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        distinct_logged > people as i64,
        "the records name people more ways than there are people"
    );

    let users = json(
        env.run(&["report", "users", "--format", "json"])
            .assert_code(0),
    );
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), people, "one row per person");
    // Each shown by UPN, unless no record in the database names that person's UPN.
    for u in users {
        let shown = u["user_id"].as_str().unwrap();
        if !shown.contains('@') {
            let named: i64 = db
                .query_row(
                    "SELECT count(*) FROM audit_events WHERE user_key = ?1 AND user_id LIKE '%@%'",
                    [shown],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(named, 0, "{shown} has a UPN on record");
        }
    }
    let launches: i64 = users.iter().map(|u| u["launches"].as_i64().unwrap()).sum();
    assert_eq!(launches as usize, truth(&env, &s).len());
    // Per app and per day, a person is never more than one.
    let apps = json(
        env.run(&["report", "apps", "--format", "json"])
            .assert_code(0),
    );
    for a in apps.as_array().unwrap() {
        let app = a["app_id"].as_str();
        let distinct: i64 = db
            .query_row(
                "SELECT count(DISTINCT user_key) FROM audit_events WHERE app_id IS ?1",
                [app],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(a["unique_users"], distinct, "{a}");
        assert!(distinct <= people as i64);
    }
    let daily = json(
        env.run(&["report", "daily", "--format", "json"])
            .assert_code(0),
    );
    assert!(
        daily
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["unique_users"].as_u64().unwrap() <= people as u64)
    );
}

/// Legacy launches (RecordType 45) carry the app's name in AdditionalInfo: stored, and shown.
#[test]
fn legacy_launches_store_their_app_name() {
    let env = subscribed(TestEnv::new());
    json(env.run(&["sync", "--json"]).assert_code(0));
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let (named, unnamed): (i64, i64) = db
        .query_row(
            "SELECT count(app_name), count(*) - count(app_name) FROM audit_events \
             WHERE record_type = 45 AND app_id IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(named > 10, "{named}");
    assert_eq!(unnamed, 0);
    // Each legacy row's name is the one its AdditionalInfo holds.
    let rows: Vec<(String, String)> = stored_events(&env)
        .into_iter()
        .filter(|e| e.record_type == Some(45) && e.app_id.is_some())
        .map(|e| (e.app_name.unwrap(), e.raw))
        .collect();
    for (name, raw) in rows {
        let record: Value = serde_json::from_str(&raw).unwrap();
        let info: Value = serde_json::from_str(record["AdditionalInfo"].as_str().unwrap()).unwrap();
        assert_eq!(info["appName"], name.as_str());
    }
}

/// A Purview export whose AuditData is camelCase is imported like any other.
#[test]
fn camel_case_audit_data_is_imported() {
    let env = TestEnv::new();
    env.write_config("");
    let record = r#"{""creationTime"":""2026-11-20 08:01:02"",""id"":""cc-1"",""operation"":""LaunchPowerApp"",""recordType"":45,""userId"":""Ben@contoso.onmicrosoft.com"",""appName"":""33333333-3333-3333-3333-333333333333"",""additionalInfo"":""{\""appName\"":\""Leave Request\""}""}"#;
    let file = env.write(
        "camel.csv",
        &format!("CreationDate,UserIds,Operations,AuditData\n2026-11-20T08:01:02,ben,LaunchPowerApp,\"{record}\"\n"),
    );
    env.run(&["import", file.to_str().unwrap()]).assert_code(0);
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let row: (String, String, Option<String>, Option<String>) = db
        .query_row(
            "SELECT id, creation_time, app_id, app_name FROM audit_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "cc-1".into(),
            "2026-11-20T08:01:02Z".into(),
            Some("33333333-3333-3333-3333-333333333333".into()),
            Some("Leave Request".into())
        )
    );
}

/// A blob of countless unreadable elements (2 M numbers, where a 256 MiB `[0,0,…]` holds 128 M):
/// the run completes, every readable record is stored, the summary counts every unreadable one, but
/// the quarantine keeps a bounded number of rows and the log one line for the blob, not one per record.
#[test]
fn countless_unreadable_elements_in_one_blob_are_counted_in_bounded_rows() {
    let env = subscribed(TestEnv::new());
    env.write_config("[sync]\nblob_size_limit_mib = 8\n");
    let created = Utc::now() - TimeDelta::hours(3);
    let at = (created - TimeDelta::minutes(20)).naive_utc();
    let t = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut body = format!("[{}", launch("good-1", &t));
    for _ in 0..2_000_000 {
        body.push_str(",0");
    }
    body.push_str(&format!(",{}]", launch("good-2", &t)));
    let blob = env.sim.publish_blob_with_body(created, body);

    let first = env.run(&["sync", "--json"]);
    first.assert_code(1).assert_stderr(&blob);
    let s = json(&first);
    assert_eq!(s["quarantined"], 2_000_000);
    assert_eq!(s["blobs_failed"], 0);
    let stored = stored_ids(&env);
    assert!(stored.contains("good-1") && stored.contains("good-2"));
    let lines = first.stderr.lines().filter(|l| l.contains(&blob)).count();
    assert!(lines <= 3, "{lines} log lines name the blob");
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert!((1..=101).contains(&rows), "{rows} quarantine rows");
    // Reported once: the next run neither fetches it again nor counts it.
    env.run(&["sync"]).assert_code(0);
    assert_eq!(env.sim.stats().blob_fetches_by_content_id[&blob], 1);
}

/// A record the JSON parser refuses (a raw control character, a byte that is not UTF-8) costs that
/// record, not its blob: the others are stored, it is quarantined (its bytes kept as text), the blob
/// counts as stored.
#[test]
fn a_record_the_parser_refuses_is_quarantined_and_its_blob_stored() {
    for bad in [
        &b"{\"Id\":\"x\",\"Operation\":\"LaunchPowerApp\",\"bad\":\"a\x01b\"}"[..],
        &b"{\"Id\":\"y\",\"Operation\":\"LaunchPowerApp\",\"UserId\":\"caf\xe9\"}"[..],
    ] {
        let env = subscribed(TestEnv::new());
        let created = Utc::now() - TimeDelta::hours(3);
        let at = (created - TimeDelta::minutes(20)).naive_utc();
        let t = at.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut body = format!("[{},", launch("good-1", &t)).into_bytes();
        body.extend_from_slice(bad);
        body.extend_from_slice(format!(",{}]", launch("good-2", &t)).as_bytes());
        let blob = env.sim.publish_blob_with_body(created, body);

        let first = env.run(&["sync", "--json"]);
        first.assert_code(1);
        let s = json(&first);
        assert_eq!(s["quarantined"], 1);
        assert_eq!(s["blobs_failed"], 0);
        let stored = stored_ids(&env);
        assert!(stored.contains("good-1") && stored.contains("good-2"));
        assert_eq!(s["watermark"], s["window_end"]);
        let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
        let (raw, position): (String, i64) = db
            .query_row("SELECT raw, position FROM quarantine", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(raw, String::from_utf8_lossy(bad));
        assert_eq!(position, 1);
        env.run(&["sync"]).assert_code(0);
        assert_eq!(env.sim.stats().blob_fetches_by_content_id[&blob], 1);
    }
}

/// A blob fetched again (its ledger row forgotten by `prune --include-fetchable`) does not report
/// the records quarantined from it before as new: the run that fetches it again is complete.
#[test]
fn a_blob_fetched_again_does_not_report_its_quarantine_again() {
    let env = subscribed(TestEnv::new());
    let created = Utc::now() - TimeDelta::hours(3);
    let at = (created - TimeDelta::minutes(20)).naive_utc();
    let t = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let body = Value::Array(vec![launch("good-1", &t), json!(17)]);
    let blob = env.sim.publish_blob_with_body(created, body.to_string());
    assert_eq!(
        json(env.run(&["sync", "--json"]).assert_code(1))["quarantined"],
        1
    );
    env.run(&["prune", "--older-than", "1h", "--include-fetchable"])
        .assert_code(0);
    assert!(!stored_ids(&env).contains("good-1"), "pruned");
    let again = env.run(&["sync", "--json"]);
    again.assert_code(0);
    assert_eq!(json(&again)["quarantined"], 0);
    assert_eq!(env.sim.stats().blob_fetches_by_content_id[&blob], 2);
    assert!(stored_ids(&env).contains("good-1"));
}
