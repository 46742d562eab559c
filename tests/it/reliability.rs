//! Sync under what the service and the machine do to it: faults, expiry, kill -9, overlapping runs,
//! a full disk, a read-only database. Each test compares the store with the simulator's ground truth.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use auditsync_simulator::Faults;
use chrono::{DateTime, TimeDelta, Utc};

use crate::common::{TestEnv, json, stored_ids, truth};

fn integrity(env: &TestEnv) -> String {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A subscribed tenant whose content lies well inside the default 1-day window, so two tenants with the
/// same seed and `now` hold the same events whatever second each sync starts.
fn tenant(tweak: impl FnOnce(&mut auditsync_simulator::SimSpec), now: DateTime<Utc>) -> TestEnv {
    let env = TestEnv::with(|s| {
        s.now = now;
        s.hours = 20;
        s.page_size = 5;
        tweak(s);
    });
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

#[test]
fn the_fault_matrix_gives_exactly_the_fault_free_result() {
    let now = Utc::now();
    let many = |s: &mut auditsync_simulator::SimSpec| {
        s.page_size = 2;
        s.blobs_per_hour = 6;
    };
    let calm = tenant(many, now);
    let calm_run = calm.run(&["sync", "--json"]);
    calm_run.assert_code(0);
    let expected = stored_ids(&calm);
    assert_eq!(expected, truth(&calm, &json(&calm_run)));

    let stormy = tenant(
        |s| {
            many(s);
            s.token_lifetime = Duration::from_secs(3);
        },
        now,
    );
    // Enough requests that every kind of fault happens.
    stormy.sim.set_faults(Faults {
        throttle: 0.20,
        throttle_as_429: 0.3,
        retry_after: Some(1),
        server_error: 0.08,
        drop_connection: 0.03,
        cut_body: 0.03,
        ..Default::default()
    });
    let run = stormy.run(&["sync", "--json"]);
    run.assert_code(0);
    assert_eq!(json(&run)["outcome"], "complete");
    assert_eq!(
        stored_ids(&stormy),
        expected,
        "the same rows, no more, no fewer"
    );
    let stats = stormy.sim.stats();
    let faults = (
        stats.throttled,
        stats.server_errors,
        stats.dropped,
        stats.cut,
    );
    assert!(
        faults.0 > 0 && faults.1 > 0 && faults.2 > 0 && faults.3 > 0,
        "every fault happened (throttled, 5xx, dropped, cut): {faults:?}"
    );
    assert!(
        stats.token_requests > 1,
        "3-second tokens were renewed: {stats:?}"
    );
}

#[test]
fn a_blob_that_keeps_failing_is_named_and_fetched_by_the_next_run() {
    let env = tenant(|_| {}, Utc::now());
    let victim = env.sim.blobs("Audit.General")[5].content_id.clone();
    env.sim.set_faults(Faults {
        broken_blobs: BTreeSet::from([victim.clone()]),
        ..Default::default()
    });
    let first = env.run(&["sync", "--json"]);
    first.assert_code(1).assert_stderr(&victim);
    let s = json(&first);
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(s["failed_blobs"][0]["content_id"], victim.as_str());
    assert!(first.stdout.contains("AF50000") || first.stderr.contains("internal error"));

    env.sim.set_faults(Faults::default());
    let second = env.run(&["sync", "--json"]);
    second.assert_code(0);
    let s = json(&second);
    assert_eq!(s["blobs_fetched"], 1, "only the blob that failed");
    assert_eq!(stored_ids(&env), truth(&env, &s));
}

#[test]
fn a_blob_that_expires_before_it_is_stored_is_reported_lost_once() {
    let env = TestEnv::with(|s| s.hours = 4);
    env.write_config("[sync]\nstart_time_interval = 3\nstart_time_unit = \"hour\"\n");
    env.run(&["subscribe", "start"]).assert_code(0);
    let created = Utc::now() - TimeDelta::hours(2);
    let bad = env.sim.publish_blob_with_body(created, "[{\"Id\": ");
    let expires = Utc::now() + TimeDelta::seconds(15);
    env.sim.set_expiration(&bad, expires);
    env.run(&["sync"]).assert_code(1).assert_stderr(&bad);
    assert!(
        Utc::now() < expires,
        "the first run saw the blob before it expired"
    );
    std::thread::sleep(
        (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1),
    );

    let lost = env.run(&["sync", "--json"]);
    lost.assert_code(1)
        .assert_stderr("lost: blob")
        .assert_stderr(&bad);
    let s = json(&lost);
    assert_eq!(s["lost_blobs"][0]["content_id"], bad.as_str());
    assert!(s["lost_blobs"][0]["content_created"].as_str().is_some());
    assert_eq!(
        s["segments_complete"], s["segments"],
        "the watermark may move on"
    );

    let after = env.run(&["sync", "--json"]);
    after.assert_code(0);
    assert!(
        !after.stderr.contains("lost"),
        "reported once:\n{}",
        after.all()
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        (
            status["lost_blobs"].as_i64(),
            status["pending_blobs"].as_i64()
        ),
        (Some(1), Some(0))
    );
}

#[test]
fn kill_9_at_any_moment_then_a_normal_run_gives_exactly_the_ground_truth() {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 20;
        s.blobs_per_hour = 8;
        s.records_per_blob = 200;
    });
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(15),
        ..Default::default()
    });
    let total = env.sim.blobs("Audit.General").len() as i64;
    // Read-only, so that looking never creates the file the run is about to create.
    let ledger = |env: &TestEnv| -> i64 {
        rusqlite::Connection::open_with_flags(
            env.path("auditsync.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|db| db.query_row("SELECT count(*) FROM blob_ledger", [], |r| r.get(0)))
        .unwrap_or(0)
    };
    // Kill points chosen by progress, not by the clock, so a slow machine still hits them: at once, a
    // few blobs in, about a third, about two thirds, and everything stored (the finishing steps).
    let mut stored_at_kill = Vec::new();
    for target in [0, 3, total / 3, 2 * total / 3, total] {
        let mut child = env
            .cmd()
            .args(["sync", "--wait", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while target > 0
            && ledger(&env) < target
            && std::time::Instant::now() < deadline
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().ok(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        env.assert_nothing_leaked(&String::from_utf8_lossy(&[out.stdout, out.stderr].concat()));
        if env.path("auditsync.db").exists() {
            assert_eq!(integrity(&env), "ok", "after kill -9 at {target} blobs");
            stored_at_kill.push(ledger(&env));
        }
    }
    assert!(
        stored_at_kill.iter().any(|n| *n > 0 && *n < total),
        "some kill landed in the middle of a run: blobs stored at each kill {stored_at_kill:?} of {total}"
    );
    let run = env.run(&["sync", "--json"]);
    run.assert_code(0);
    assert_eq!(integrity(&env), "ok");
    assert_eq!(stored_ids(&env), truth(&env, &json(&run)));
    assert_eq!(ledger(&env), total, "every blob in the ledger once");
}

#[test]
fn a_second_sync_waits_or_says_who_holds_the_lock() {
    let env = tenant(|_| {}, Utc::now());
    env.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(400),
        ..Default::default()
    });
    let first = env
        .cmd()
        .arg("sync")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock (its pid is in the lock file).
    let owner = format!("pid {}", first.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(env.path("auditsync.db.lock")).is_ok_and(|t| t.contains(&owner))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first sync never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    env.run(&["sync", "--wait", "0"])
        .assert_code(1)
        .assert_stderr("another sync is running")
        .assert_stderr(&owner);
    // Waiting long enough, the second run goes ahead once the first is done, and has nothing to fetch.
    let second = env.run(&["sync", "--wait", "120", "--json"]);
    second.assert_code(0);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
    env.assert_nothing_leaked(&String::from_utf8_lossy(&[out.stdout, out.stderr].concat()));
    assert_eq!(json(&second)["blobs_fetched"], 0);
    assert!(
        env.sim
            .stats()
            .blob_fetches_by_content_id
            .values()
            .all(|n| *n == 1)
    );
}

#[test]
fn a_database_that_is_not_ours_or_is_newer_is_refused_and_left_alone() {
    let env = tenant(|_| {}, Utc::now());
    let db = env.path("auditsync.db");

    std::fs::create_dir(&db).unwrap();
    env.run(&["sync"])
        .assert_code(2)
        .assert_stderr("is a directory");
    std::fs::remove_dir(&db).unwrap();

    std::fs::write(&db, "quarterly numbers, not a database\n").unwrap();
    env.run(&["sync"])
        .assert_code(2)
        .assert_stderr("is not an auditsync database");
    assert_eq!(
        std::fs::read_to_string(&db).unwrap(),
        "quarterly numbers, not a database\n"
    );
    std::fs::remove_file(&db).unwrap();

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (n)")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    env.run(&["sync"])
        .assert_code(2)
        .assert_stderr("is not an auditsync database");
    env.run(&["status"])
        .assert_code(2)
        .assert_stderr("is not an auditsync database");
    assert_eq!(std::fs::read(&db).unwrap(), before, "never overwritten");
    std::fs::remove_file(&db).unwrap();

    env.run(&["sync"]).assert_code(0);
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    env.run(&["sync"])
        .assert_code(2)
        .assert_stderr("newer auditsync");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        env.sim.stats().api_requests.content,
        24,
        "only the one good run listed"
    );
}

/// A small tmpfs at `dir`, for the disk tests; `None` when this user may not mount (not root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Configures `env` with its database on a tmpfs of `size` at `data/`; `None` (the test is skipped)
/// when this user may not mount.
fn database_on_tmpfs(env: &TestEnv, size: &str) -> Option<(Tmpfs, std::path::PathBuf)> {
    let dir = env.path("data");
    let Some(fs) = Tmpfs::mount(&dir, size) else {
        assert!(!is_root(), "root could not mount a tmpfs");
        eprintln!("skipped: mounting a tmpfs needs root");
        return None;
    };
    let config = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    env.write(
        "auditsync.toml",
        &config.replace("\"auditsync.db\"", "\"data/auditsync.db\""),
    );
    Some((fs, dir))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn a_full_disk_or_a_read_only_database_fails_clearly_and_harms_nothing() {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 20;
        s.records_per_blob = 300;
        s.launch_share = 0.5;
    });
    let Some((fs, dir)) = database_on_tmpfs(&env, "320k") else {
        return;
    };
    env.run(&["subscribe", "start"]).assert_code(0);

    let full = env.run(&["sync"]);
    full.assert_code(1).assert_stderr("disk is full");
    let db = rusqlite::Connection::open(dir.join("auditsync.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);

    // More room: the next run completes, exactly.
    fs.remount("size=64m");
    let run = env.run(&["sync", "--json"]);
    run.assert_code(0);
    let db = rusqlite::Connection::open(dir.join("auditsync.db")).unwrap();
    let ids: BTreeSet<String> = db
        .prepare("SELECT id FROM audit_events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, truth(&env, &json(&run)));
    drop(db);

    // Read-only: refused with the reason, nothing changed.
    fs.remount("ro");
    let before = std::fs::read(dir.join("auditsync.db")).unwrap();
    env.sim.publish_blob(Utc::now() - TimeDelta::hours(1));
    env.run(&["sync"]).assert_code(1).assert_stderr("read-only");
    assert_eq!(std::fs::read(dir.join("auditsync.db")).unwrap(), before);
    fs.remount("rw");
}

#[test]
fn status_and_report_read_a_read_only_database_and_change_nothing() {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 6;
    });
    let Some((fs, dir)) = database_on_tmpfs(&env, "64m") else {
        return;
    };
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let reads: [&[&str]; 4] = [
        &["status", "--json"],
        &["report", "apps", "--format", "json"],
        &["report", "users", "--format", "csv"],
        &["report", "daily"],
    ];
    let writable: Vec<String> = reads
        .iter()
        .map(|args| env.run(args).assert_code(0).stdout.clone())
        .collect();

    // The folder and the file are read-only now (for root too): the same answers, not a byte changed.
    fs.remount("ro");
    let db = dir.join("auditsync.db");
    let before = std::fs::read(&db).unwrap();
    for (args, expected) in reads.iter().zip(&writable) {
        let run = env.run(args);
        run.assert_code(0);
        assert_eq!(&run.stdout, expected, "{args:?}");
    }
    env.run(&["status"])
        .assert_code(0)
        .assert_stdout("LaunchPowerApp");
    assert!(std::fs::read(&db).unwrap() == before, "not a byte changed");
    // A command that writes says why it cannot.
    env.run(&["sync"]).assert_code(1).assert_stderr("read-only");
    fs.remount("rw");
}

/// The names and bytes of every file in `dir`.
fn folder(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_user_who_may_only_read_the_database_gets_status_and_reports_and_leaves_nothing_behind() {
    if !is_root() {
        eprintln!("skipped: running as another user needs root");
        return;
    }
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 6;
    });
    let config = env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    // Readable by all, writable by root only: the folder, the database, its lock, the configuration.
    // (The database is created 0600; sharing it with readers is the admin's choice.)
    crate::common::set_mode(env.dir.path(), 0o755);
    crate::common::set_mode(&config, 0o644);
    crate::common::set_mode(&env.path("auditsync.db"), 0o644);
    let reads: [&[&str]; 3] = [
        &["status", "--json"],
        &["report", "apps", "--format", "json"],
        &["report", "daily", "--format", "csv"],
    ];
    let as_owner: Vec<String> = reads
        .iter()
        .map(|args| env.run(args).assert_code(0).stdout.clone())
        .collect();
    let before = folder(env.dir.path());
    let as_nobody = |args: &[&str]| {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_auditsync"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", env.dir.path())
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        let run = (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        env.assert_nothing_leaked(&format!("{}{}", run.1, run.2));
        run
    };
    for (args, expected) in reads.iter().zip(&as_owner) {
        let (code, stdout, stderr) = as_nobody(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(&stdout, expected, "{args:?}");
    }
    assert!(
        folder(env.dir.path()) == before,
        "a reader created or changed a file beside the database"
    );
    // The same while a writer has it open (its WAL beside it), and a sync as this user is refused
    // with the reason.
    let db = env.path("auditsync.db");
    let lock = auditsync_core::store::RunLock::try_acquire(&db).unwrap();
    let writer = auditsync_core::store::open_write(&db, lock).unwrap();
    for (args, expected) in reads.iter().zip(&as_owner).skip(1) {
        let (code, stdout, stderr) = as_nobody(args);
        assert_eq!(code, 0, "{args:?} during a write: {stderr}");
        assert_eq!(&stdout, expected, "{args:?}");
    }
    let (code, _, stderr) = as_nobody(&["sync", "--wait", "0"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("may not write the lock file"), "{stderr}");
    drop(writer);
}

#[test]
fn bad_input_is_refused_in_one_sentence_and_changes_nothing() {
    let env = TestEnv::new();
    env.write_config("");
    let old = (Utc::now() - TimeDelta::days(8))
        .format("%Y-%m-%d")
        .to_string();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["sync"],
            vec![("AUDITSYNC_CLOUD", "azure-germany")],
            2,
            "cloud",
        ),
        (
            vec!["sync"],
            vec![("AUDITSYNC_TENANT_ID", "not-a-guid")],
            2,
            "not a GUID",
        ),
        (
            vec!["sync"],
            vec![("AUDITSYNC_AUDIENCE", "http://10.1.2.3")],
            2,
            "loopback",
        ),
        (
            vec!["sync"],
            vec![("AUDITSYNC_CLIENT_SECRET_FILE", "/nonexistent/secret")],
            2,
            "/nonexistent/secret",
        ),
        (
            vec!["sync"],
            vec![("AUDITSYNC_SYNC_SEGMENT_COUNT_LIMIT", "3")],
            2,
            "segment_count_limit is 3",
        ),
        (
            vec![
                "sync",
                "--from",
                "2026-11-21T10:00",
                "--to",
                "2026-11-21T09:00",
            ],
            vec![],
            2,
            "is not before",
        ),
        (vec!["sync", "--from", "noon"], vec![], 2, "is not a time"),
        (vec!["sync", "--from", &old], vec![], 2, "7 days"),
        (vec!["sync", "--frm", "2026-11-21"], vec![], 2, "--frm"),
    ];
    for (args, vars, code, needle) in cases {
        let run = env.run_with(&args, &vars);
        run.assert_code(code).assert_stderr(needle);
        let error_lines = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error"))
            .count();
        assert!(error_lines <= 1, "one sentence:\n{}", run.all());
        assert!(
            !env.path("auditsync.db").exists(),
            "{args:?} {vars:?} created the database"
        );
    }
    let unknown = env.path("auditsync.toml");
    std::fs::write(
        &unknown,
        format!(
            "{}\nsegment_limit = 5\n",
            std::fs::read_to_string(&unknown).unwrap()
        ),
    )
    .unwrap();
    env.run(&["sync"])
        .assert_code(2)
        .assert_stderr("segment_limit")
        .assert_stderr("auditsync.toml");
    assert!(!env.path("auditsync.db").exists());
    let stats = env.sim.stats();
    assert_eq!(
        (stats.token_requests, stats.api_requests.content),
        (0, 0),
        "no request was made"
    );
}
