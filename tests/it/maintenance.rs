//! `auditsync doctor` and `auditsync prune`.

use chrono::{TimeDelta, Utc};

use crate::common::TestEnv;

#[test]
fn doctor_passes_on_a_healthy_tenant() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let run = env.run(&["doctor"]);
    run.assert_code(0);
    for check in [
        "configuration",
        "cloud hosts",
        "clock",
        "token",
        "permission",
        "subscription Audit.General",
        "content Audit.General",
        "database",
        "last sync",
    ] {
        assert!(
            run.stdout.contains(&format!("PASS  {check}")),
            "{check}:\n{}",
            run.all()
        );
    }
    assert!(!run.stdout.contains("FAIL"), "{}", run.all());
}

#[test]
fn doctor_explains_a_wrong_secret() {
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &format!(
            "client_secret = \"wrong\"\n{}",
            env.config_without_secret("")
        ),
    );
    let run = env.run(&["doctor"]);
    run.assert_code(1)
        .assert_stdout("FAIL  token: Entra ID rejected the client secret")
        .assert_stdout("PASS  database: no database yet");
    assert!(run.stdout.contains("PASS  configuration"), "{}", run.all());
}

#[test]
fn doctor_says_to_start_a_stopped_subscription() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    env.run(&["subscribe", "stop"]).assert_code(0);
    env.run(&["doctor"]).assert_code(1).assert_stdout(
        "FAIL  subscription Audit.General: it is disabled: run `auditsync subscribe start`",
    );
}

#[test]
fn doctor_names_a_missing_permission() {
    let env = TestEnv::with(|s| s.roles = vec!["ServiceHealth.Read".into()]);
    env.write_config("");
    env.run(&["doctor"]).assert_code(1).assert_stdout(
        "FAIL  permission: the token carries ServiceHealth.Read but not ActivityFeed.Read",
    );
}

#[test]
fn prune_deletes_what_is_older_than_the_retention_and_reports_it() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let recent: i64 = db
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    let old = |days: i64| {
        (Utc::now() - TimeDelta::days(days))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    for (i, days) in [500, 450, 401, 399, 30].iter().enumerate() {
        db.execute(
            "INSERT INTO audit_events (id, creation_time, operation, raw) VALUES (?1, ?2, 'LaunchPowerApp', '{}')",
            [format!("old-{i}"), old(*days)],
        )
        .unwrap();
    }
    drop(db);
    env.run(&["prune", "--older-than", "400d"])
        .assert_code(0)
        .assert_stdout("prune: deleted 3 events");
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, recent + 2);
    let ledger: i64 = db
        .query_row("SELECT count(*) FROM blob_ledger", [], |r| r.get(0))
        .unwrap();
    assert!(
        ledger > 0,
        "recent ledger rows stay, or the next sync would fetch those blobs again"
    );
    drop(db);
    // The next sync does not bring anything back or fetch anything again.
    let blobs = env.sim.stats().api_requests.blob;
    env.run(&["sync"]).assert_code(0);
    assert_eq!(env.sim.stats().api_requests.blob, blobs);
    env.run(&["prune", "--older-than", "soon"])
        .assert_code(2)
        .assert_stderr("400d");
}

#[test]
fn doctor_passes_on_a_fresh_install_before_the_first_sync() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    let run = env.run(&["doctor"]);
    run.assert_code(0)
        .assert_stdout("PASS  database: no database yet");
    assert!(
        !env.path("auditsync.db").exists(),
        "the doctor creates nothing"
    );
}

#[test]
fn pruned_events_stay_pruned_after_the_next_sync() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let count = |env: &TestEnv| -> i64 {
        let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
        db.query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
            .unwrap()
    };
    let before = count(&env);
    // Inside the API's 7 days: refused unless asked for. Asked for, the ledger forgets those blobs
    // (tests/it/state.rs: the next sync fetches them again), so what stays pruned is what is older.
    env.run(&["prune", "--older-than", "6h"])
        .assert_code(2)
        .assert_stderr("--include-fetchable");
    assert_eq!(count(&env), before);
    // Events (and their blobs' ledger rows) from 9 days ago, beyond what the API serves.
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let old = (Utc::now() - TimeDelta::days(9))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for i in 0..3 {
        db.execute(
            "INSERT INTO audit_events (id, creation_time, operation, content_type, content_id, raw) \
             VALUES (?1, ?2, 'LaunchPowerApp', 'Audit.General', ?3, '{}')",
            [format!("old-{i}"), old.clone(), format!("old-blob-{i}")],
        )
        .unwrap();
        db.execute(
            "INSERT INTO blob_ledger (content_id, content_type, content_created, stored_at, records_seen, \
             records_kept) VALUES (?1, 'Audit.General', ?2, ?2, 1, 1)",
            [format!("old-blob-{i}"), old.clone()],
        )
        .unwrap();
    }
    drop(db);
    let run = env.run(&["prune", "--older-than", "7d"]);
    run.assert_code(0)
        .assert_stdout("prune: deleted 3 events")
        .assert_stdout("3 ledger rows");
    let after = count(&env);
    assert_eq!(after, before);
    let blobs = env.sim.stats().api_requests.blob;
    env.run(&["sync"]).assert_code(0);
    assert_eq!(count(&env), after, "the next sync brings nothing back");
    assert_eq!(
        env.sim.stats().api_requests.blob,
        blobs,
        "and fetches nothing again"
    );
    env.run(&["prune", "--older-than", "99999999999999d"])
        .assert_code(2)
        .assert_stderr("400d");
}

/// A prune gives the space its deleted rows took back to the file system, and says how much: a year
/// of launches of which the older half goes leaves a file about half as large.
#[test]
fn prune_gives_the_space_back_and_says_how_much() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let tx = db.unchecked_transaction().unwrap();
    let padding = "x".repeat(1_000);
    for i in 0..20_000 {
        let at = Utc::now() - TimeDelta::hours(100 + i64::from(i) * 4 / 10);
        tx.execute(
            "INSERT INTO audit_events (id, creation_time, operation, user_id, app_id, raw) \
             VALUES (?1, ?2, 'LaunchPowerApp', ?3, ?4, ?5)",
            rusqlite::params![
                format!("old-{i}"),
                at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                format!("user{}@contoso.com", i % 97),
                format!("app-{}", i % 13),
                format!("{{\"Id\":\"old-{i}\",\"pad\":\"{padding}\"}}")
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(db);
    let size = || {
        let s = |p: &str| std::fs::metadata(env.path(p)).map_or(0, |m| m.len());
        s("auditsync.db") + s("auditsync.db-wal")
    };
    let before = size();
    // The older half: 20,000 launches, one every 24 minutes from 100 hours ago, span 333 days.
    let run = env.run(&["prune", "--older-than", "170d"]);
    let out = &run.assert_code(0).stdout;
    assert!(
        out.contains("gave ") && out.contains("back to the file system"),
        "{out}"
    );
    let after = size();
    assert!(
        after < before * 6 / 10,
        "the file kept its pages: {before} bytes before, {after} after; {out}"
    );
}
