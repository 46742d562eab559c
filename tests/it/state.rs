//! The database's state and its edges (issue 10, points 2, 13, 14, 15): prune inside the fetchable
//! window, the run lock keyed on the database file (hard links, symlinks), readers that never write,
//! `status` while a sync runs and after one failed, paths that cannot be a database, a missing folder,
//! inputs checked first, and Ctrl-C / SIGTERM saying what was kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auditsync_simulator::Faults;
use chrono::{TimeDelta, Utc};

use crate::common::{Run, TestEnv, json, stored_ids};

/// A subscribed tenant with 20 hours of content and a configuration in ./auditsync.toml.
fn tenant() -> TestEnv {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 20;
    });
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

/// Writes `name` as a configuration whose database is `database`.
fn config_for(env: &TestEnv, name: &str, database: &str) -> PathBuf {
    let text = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    env.write(
        name,
        &text.replace(
            "database = \"auditsync.db\"",
            &format!("database = {database:?}"),
        ),
    )
}

/// The binary with `args`, started in the background.
fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to a minute) until `lock` names `pid` as its holder.
fn wait_for_holder(lock: &Path, pid: u32) {
    let owner = format!("pid {pid}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(lock).is_ok_and(|t| t.contains(&owner)) {
        assert!(
            Instant::now() < deadline,
            "{pid} never took {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for a child, killing it and failing if it runs past `limit` (it blocked).
fn finish(env: &TestEnv, mut child: Child, limit: Duration, what: &str) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let _ = child.wait();
            panic!("{what} blocked for more than {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    env.assert_nothing_leaked(&run.all());
    run
}

/// The binary with `args` in the test folder, failing if it takes more than 30 s (it blocked).
fn run_bounded(env: &TestEnv, args: &[&str]) -> Run {
    let child = spawn(env, args);
    finish(env, child, Duration::from_secs(30), &format!("{args:?}"))
}

/// Every file in `dir` (recursively) and its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            out.extend(snapshot(&p));
        } else if meta.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        } else {
            out.push((p, Vec::new()));
        }
    }
    out.sort();
    out
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

/// A minimal classic Purview export with `n` launches.
fn export(env: &TestEnv, name: &str, n: usize) -> PathBuf {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["CreationDate", "UserIds", "Operations", "AuditData"])
        .unwrap();
    for i in 0..n {
        let audit = serde_json::json!({
            "Id": format!("import-{name}-{i}"), "RecordType": 45, "CreationTime": "2026-01-05T10:00:00",
            "Operation": "LaunchPowerApp", "Workload": "PowerApps", "UserId": "a@contoso.com",
            "AppName": "Expenses"
        });
        w.write_record([
            "2026-01-05T10:00:00.0000000Z",
            "a@contoso.com",
            "LaunchPowerApp",
            &audit.to_string(),
        ])
        .unwrap();
    }
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    env.write(name, &text)
}

// ---- point 2: prune inside the fetchable window ----

#[test]
fn prune_inside_the_fetchable_window_needs_asking_and_a_sync_from_brings_back_exactly_what_went() {
    let env = tenant();
    let first = env.run(&["sync", "--json"]);
    first.assert_code(0);
    let all = stored_ids(&env);
    let db = env.path("auditsync.db");
    let cutoff = Utc::now() - TimeDelta::hours(12);
    let older = count(
        &db,
        &format!(
            "SELECT count(*) FROM audit_events WHERE creation_time < '{}'",
            auditsync_core::time::ts(cutoff + TimeDelta::seconds(2))
        ),
    );
    assert!(
        older > 0 && (older as usize) < all.len(),
        "{older} of {}",
        all.len()
    );

    // Refused, with the reason and the flag, changing nothing.
    let before = snapshot(env.dir.path());
    env.run(&["prune", "--older-than", "12h"])
        .assert_code(2)
        .assert_stderr("7 days")
        .assert_stderr("--include-fetchable");
    env.run(&["prune", "--older-than", "6d"])
        .assert_code(2)
        .assert_stderr("--include-fetchable");
    // --dry-run says what would go, and not a byte changes.
    let dry = env.run(&[
        "prune",
        "--older-than",
        "12h",
        "--include-fetchable",
        "--dry-run",
    ]);
    dry.assert_code(0)
        .assert_stdout("would delete")
        .assert_stdout("ledger rows")
        .assert_stdout("runs");
    assert!(
        snapshot(env.dir.path()) == before,
        "a dry run changed a file"
    );
    let would: usize = dry
        .stdout
        .split("would delete ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(would as i64 >= older && would < all.len(), "{}", dry.stdout);

    // Asked for: the events go, and so do their ledger rows.
    let ledger_before = count(&db, "SELECT count(*) FROM blob_ledger");
    env.run(&["prune", "--older-than", "12h", "--include-fetchable"])
        .assert_code(0)
        .assert_stdout(&format!("prune: deleted {would} events"));
    let left = stored_ids(&env);
    assert_eq!(left.len(), all.len() - would);
    assert!(count(&db, "SELECT count(*) FROM blob_ledger") < ledger_before);

    // The ledger no longer claims their blobs, so the next sync that covers their time (the default
    // window looks back a day) fetches exactly them again.
    env.run(&["sync"]).assert_code(0);
    assert_eq!(stored_ids(&env), all, "exactly the pruned events came back");
    let _ = json(&first);
}

// ---- point 13: the run lock is the database file's ----

/// Starts a slow sync with `config`, waits until it holds `lock`, and checks that a sync through the
/// default configuration (another name of the same database) is refused naming it, and that `status`
/// through that name sees it running.
fn second_name_is_refused(env: &TestEnv, config: &str, lock: &str, hard_link: bool) {
    let first = spawn(env, &["--config", config, "sync"]);
    wait_for_holder(&env.path(lock), first.id());
    let holder = format!("pid {}", first.id());
    env.run(&["sync", "--wait", "0"])
        .assert_code(1)
        .assert_stderr("another sync is running")
        .assert_stderr(&holder);
    // Once it has recorded its run (before, a first sync may still be creating the database):
    let deadline = Instant::now() + Duration::from_secs(60);
    // (Looked at through the name the sync uses: SQLite's journal is beside it.)
    let writer_db = lock.trim_end_matches(".lock");
    while count(&env.path(writer_db), "SELECT count(*) FROM runs") == 0 {
        assert!(Instant::now() < deadline, "the sync never recorded its run");
        std::thread::sleep(Duration::from_millis(10));
    }
    env.run(&["status"])
        .assert_code(0)
        .assert_stdout(&format!("running ({holder}, since"));
    let status = json(&env.run(&["status", "--json"]));
    assert!(
        status["running"]
            .as_str()
            .is_some_and(|r| r.contains(&holder)),
        "{status}"
    );
    assert_ne!(status["last_run"]["outcome"], "interrupted", "{status}");
    if hard_link {
        // SQLite's journal is beside the other name: reading through this one waits for the end.
        env.run(&["report", "apps"])
            .assert_code(1)
            .assert_stderr("cannot be read through this name meanwhile");
    }
    let run = finish(env, first, Duration::from_secs(120), "the first sync");
    run.assert_code(0);
    if hard_link {
        run.assert_stderr("hard links");
    }
    for leftover in ["auditsync.db-wal", "auditsync.db-shm"] {
        assert!(
            !env.path(leftover).exists(),
            "{leftover} left beside the other name"
        );
    }
    let check: String = rusqlite::Connection::open(env.path("auditsync.db"))
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[cfg(unix)]
#[test]
fn a_hard_link_to_the_database_never_runs_a_second_writer() {
    let env = tenant();
    env.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(300),
        ..Default::default()
    });
    // An empty file (what some admins create first, with its mode) under two names: another lock file
    // beside each, one database.
    std::fs::write(env.path("auditsync.db"), "").unwrap();
    std::fs::create_dir(env.path("other")).unwrap();
    std::fs::hard_link(env.path("auditsync.db"), env.path("other/hard.db")).unwrap();
    config_for(&env, "hard.toml", "other/hard.db");
    second_name_is_refused(&env, "hard.toml", "other/hard.db.lock", true);
    assert!(
        env.sim
            .stats()
            .blob_fetches_by_content_id
            .values()
            .all(|n| *n == 1),
        "no blob fetched twice"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_database_not_created_yet_never_runs_a_second_writer() {
    let env = tenant();
    env.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(300),
        ..Default::default()
    });
    std::fs::create_dir(env.path("other")).unwrap();
    std::os::unix::fs::symlink("../auditsync.db", env.path("other/link.db")).unwrap();
    config_for(&env, "link.toml", "other/link.db");
    // The first sync creates the database through the link.
    second_name_is_refused(&env, "link.toml", "auditsync.db.lock", false);
}

// ---- point 14: readers never write ----

#[test]
fn readers_refuse_an_older_schema_without_migrating_locking_or_writing() {
    let env = tenant();
    let db = env.path("auditsync.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // The previous release's database: one version behind this binary (a dump does not keep
    // auto_vacuum, which that release's databases have).
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
        .unwrap();
    conn.execute_batch(&format!(
        "BEGIN; {} COMMIT;",
        include_str!("../../crates/core/src/store/sqlite/fixtures/v3.sql")
    ))
    .unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, auditsync_core::store::SCHEMA_VERSION - 1);
    drop(conn);
    let before = snapshot(env.dir.path());
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["report", "apps"],
        &["report", "users", "--format", "csv"],
        &["report", "daily", "--format", "json"],
    ] {
        env.run(args)
            .assert_code(2)
            .assert_stderr("run `auditsync sync` once");
    }
    let doctor = env.run(&["doctor"]);
    doctor.assert_stdout("will be brought to");
    assert!(
        snapshot(env.dir.path()) == before,
        "a reader migrated, locked or wrote something"
    );
    // A writer upgrades it.
    env.run(&["prune", "--older-than", "400d"]).assert_code(0);
    env.run(&["status"]).assert_code(0);
}

#[test]
fn readers_take_no_lock_for_writing_and_create_nothing() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    // No lock file (an older layout, or removed): readers must not create one.
    std::fs::remove_file(env.path("auditsync.db.lock")).unwrap();
    let before = snapshot(env.dir.path());
    for args in [
        &["status"][..],
        &["doctor"],
        &["prune", "--older-than", "400d", "--dry-run"],
    ] {
        let run = env.run(args);
        assert!(run.code == 0, "{args:?}\n{}", run.all());
    }
    assert!(
        snapshot(env.dir.path()) == before,
        "a reader changed or created a file"
    );
    // While a writer holds the database, readers still answer (they never wait for a write lock).
    let db = env.path("auditsync.db");
    let lock = auditsync_core::store::RunLock::try_acquire(&db).unwrap();
    let writer = auditsync_core::store::open_write(&db, lock).unwrap();
    for args in [&["status"][..], &["report", "daily"], &["doctor"]] {
        let run = run_bounded(&env, args);
        assert!(run.code == 0, "{args:?}\n{}", run.all());
    }
    drop(writer);
}

// ---- point 15: status, paths, inputs, signals ----

/// The `last run:` line of `status`, and `last_run` of `status --json`.
fn last_run(env: &TestEnv) -> (String, serde_json::Value) {
    let text = env.run(&["status"]);
    text.assert_code(0);
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("last run:"))
        .unwrap()
        .to_owned();
    let json = json(&env.run(&["status", "--json"]));
    (line, json["last_run"].clone())
}

#[test]
fn status_names_why_the_last_run_failed() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    // The service refuses: the run fails with the service's reason.
    env.run(&["subscribe", "stop"]).assert_code(0);
    env.run(&["sync"]).assert_code(1);
    let (line, json) = last_run(&env);
    assert!(
        line.contains("failed") && line.contains("AF20023"),
        "{line}"
    );
    assert_eq!(json["outcome"], "failed");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("AF20023")),
        "{json}"
    );

    // The database fails (a full disk): the run is recorded as failed with the database's reason.
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 20;
        s.records_per_blob = 300;
        s.launch_share = 0.5;
    });
    let dir = env.path("data");
    std::fs::create_dir(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=320k", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped the full disk: mounting a tmpfs needs root");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    config_for(&env, "auditsync.toml", "data/auditsync.db");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"])
        .assert_code(1)
        .assert_stderr("disk is full");
    let (line, json) = last_run(&env);
    assert!(
        line.contains("failed") && line.contains("disk is full"),
        "{line}"
    );
    assert!(line.len() < 600, "one short line: {line}");
    assert_eq!(json["outcome"], "failed");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("disk is full")),
        "{json}"
    );
}

#[test]
fn a_missing_database_folder_gets_one_message_from_every_command() {
    let env = tenant();
    config_for(&env, "auditsync.toml", "nowhere/deeper/auditsync.db");
    let csv = export(&env, "in.csv", 2);
    let folder = env
        .dir
        .path()
        .canonicalize()
        .unwrap()
        .join("nowhere/deeper");
    let message = format!(
        "the folder {} for the database nowhere/deeper/auditsync.db does not exist; create it (mkdir -p {})",
        folder.display(),
        folder.display()
    );
    for args in [
        &["sync"][..],
        &["import", csv.to_str().unwrap()],
        &["prune", "--older-than", "400d"],
        &["prune", "--older-than", "400d", "--dry-run"],
        &["status"],
        &["report", "apps"],
    ] {
        let run = env.run(args);
        run.assert_code(2);
        assert!(run.stderr.contains(&message), "{args:?}: {}", run.all());
    }
    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains(&message), "{}", doctor.all());
    assert!(!env.path("nowhere").exists(), "nothing was created");
    // A file where the folder should be is named as such.
    env.write("notes.txt", "not a folder\n");
    config_for(&env, "auditsync.toml", "notes.txt/auditsync.db");
    for args in [
        &["sync"][..],
        &["status"],
        &["prune", "--older-than", "400d"],
    ] {
        env.run(args)
            .assert_code(2)
            .assert_stderr("notes.txt is not a folder");
    }
}

#[cfg(unix)]
#[test]
fn a_database_path_that_is_not_a_regular_file_is_refused_by_every_command_without_blocking() {
    let env = tenant();
    let csv = export(&env, "in.csv", 2);
    let fifo = env.path("pipe.db");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let _socket = std::os::unix::net::UnixListener::bind(env.path("socket.db")).unwrap();
    std::fs::create_dir(env.path("folder.db")).unwrap();
    std::os::unix::fs::symlink("pipe.db", env.path("link-to-pipe.db")).unwrap();
    let cases = [
        ("pipe.db", "a named pipe"),
        ("link-to-pipe.db", "a named pipe"),
        ("socket.db", "a socket"),
        ("/dev/null", "a character device"),
        ("folder.db", "is a directory"),
    ];
    for (database, kind) in cases {
        config_for(&env, "auditsync.toml", database);
        for args in [
            &["sync", "--wait", "0"][..],
            &["import", csv.to_str().unwrap()],
            &["prune", "--older-than", "400d"],
            &["prune", "--older-than", "400d", "--dry-run"],
            &["status"],
            &["report", "apps"],
        ] {
            let run = run_bounded(&env, args);
            assert_eq!(run.code, 2, "{database} {args:?}\n{}", run.all());
            assert!(
                run.stderr.contains(kind),
                "{database} {args:?}\n{}",
                run.all()
            );
        }
        let doctor = run_bounded(&env, &["doctor"]);
        assert_ne!(doctor.code, 0);
        assert!(doctor.stdout.contains(kind), "{database}\n{}", doctor.all());
        assert!(!env.path(&format!("{database}.lock")).exists() || database.starts_with('/'));
    }
    assert!(!Path::new("/dev/null.lock").exists());
}

#[test]
fn import_checks_every_input_before_creating_anything() {
    let env = tenant();
    let good = export(&env, "good.csv", 3);
    for args in [
        vec!["import", "missing.csv"],
        vec!["import", good.to_str().unwrap(), "missing.csv"],
        vec!["import", "."],
    ] {
        let run = env.run(&args);
        run.assert_code(2).assert_stderr("nothing was imported");
        assert!(
            !env.path("auditsync.db").exists(),
            "{args:?} created the database"
        );
        assert!(
            !env.path("auditsync.db.lock").exists(),
            "{args:?} created the lock"
        );
    }
    env.run(&["import", "missing.csv"])
        .assert_stderr("missing.csv");
    env.run(&["import", good.to_str().unwrap()]).assert_code(0);
    assert_eq!(stored_ids(&env).len(), 3);
}

/// Whether `pid` has installed a handler for `signal` (Linux: SigCgt in /proc/<pid>/status).
fn catches(pid: u32, signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

fn send(child: &Child, signal: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !catches(child.id(), signal) {
        assert!(Instant::now() < deadline, "the handler was never installed");
        std::thread::sleep(Duration::from_millis(5));
    }
    #[allow(unsafe_code, reason = "kill(2) on our own child")]
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_or_ctrl_c_during_a_sync_keeps_what_was_stored_and_says_so() {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 20;
        s.blobs_per_hour = 6;
    });
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.sim.set_faults(Faults {
        blob_delay: Duration::from_millis(150),
        ..Default::default()
    });
    let db = env.path("auditsync.db");
    let total = env.sim.blobs("Audit.General").len() as i64;
    for (signal, code, name, quiet) in [
        (libc::SIGTERM, 143, "SIGTERM", false),
        (libc::SIGINT, 130, "SIGINT", false),
        // -q hides nothing of it.
        (libc::SIGTERM, 143, "SIGTERM", true),
    ] {
        let args: &[&str] = if quiet {
            &["-q", "sync", "--wait", "30"]
        } else {
            &["sync", "--wait", "30"]
        };
        let child = spawn(&env, args);
        let deadline = Instant::now() + Duration::from_secs(60);
        let start = count(&db, "SELECT count(*) FROM blob_ledger");
        while count(&db, "SELECT count(*) FROM blob_ledger") < start + 3 {
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        send(&child, signal);
        let run = finish(&env, child, Duration::from_secs(60), "the interrupted sync");
        run.assert_code(code)
            .assert_stderr(&format!(
                "interrupted by {}",
                if code == 130 { "Ctrl-C (SIGINT)" } else { name }
            ))
            .assert_stderr("blobs stored")
            .assert_stderr("the next run fetches the rest");
        let stored = count(&db, "SELECT count(*) FROM blob_ledger");
        assert!(
            stored < total,
            "stopped before the end: {stored} of {total}"
        );
        assert!(
            run.stderr
                .contains(&format!("{} blobs stored", stored - start)),
            "{}",
            run.all()
        );
        let outcome: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT outcome FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(outcome, "interrupted");
        env.run(&["status"])
            .assert_code(0)
            .assert_stdout("interrupted")
            .assert_stdout("interrupted by");
    }
    // The next run fetches the rest (a blob in flight when the signal came is fetched again, and
    // stored once).
    let run = env.run(&["sync", "--json"]);
    run.assert_code(0);
    assert_eq!(stored_ids(&env), crate::common::truth(&env, &json(&run)));
    assert_eq!(count(&db, "SELECT count(*) FROM blob_ledger"), total);
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_while_import_or_prune_waits_for_the_lock_stops_it_saying_nothing_was_written() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    let csv = export(&env, "in.csv", 2);
    let before: BTreeSet<String> = stored_ids(&env);
    let lock = auditsync_core::store::RunLock::try_acquire(&env.path("auditsync.db")).unwrap();
    for args in [
        vec!["import", csv.to_str().unwrap()],
        vec!["prune", "--older-than", "400d"],
        vec!["sync", "--wait", "60"],
        // -q hides nothing of it.
        vec!["-q", "import", csv.to_str().unwrap()],
        vec!["-q", "prune", "--older-than", "400d"],
        vec!["-q", "sync", "--wait", "60"],
    ] {
        let child = spawn(&env, &args);
        send(&child, libc::SIGTERM);
        let run = finish(&env, child, Duration::from_secs(30), "the waiting command");
        run.assert_code(143)
            .assert_stderr("interrupted by SIGTERM")
            .assert_stderr("nothing was written");
    }
    drop(lock);
    assert_eq!(stored_ids(&env), before);
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_during_an_import_keeps_the_committed_batches_and_names_what_is_left() {
    let env = tenant();
    let rows = 80_000;
    let big = export(&env, "big.csv", rows);
    let small = export(&env, "small.csv", 5);
    let db = env.path("auditsync.db");
    let child = spawn(
        &env,
        &["import", big.to_str().unwrap(), small.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&db, "SELECT count(*) FROM audit_events") < 1000 {
        assert!(Instant::now() < deadline, "no batch was committed");
        std::thread::sleep(Duration::from_millis(2));
    }
    send(&child, libc::SIGINT);
    let run = finish(
        &env,
        child,
        Duration::from_secs(60),
        "the interrupted import",
    );
    run.assert_code(130)
        .assert_stderr("interrupted by Ctrl-C (SIGINT)")
        .assert_stderr("new events are stored and kept")
        .assert_stderr("big.csv was stopped partway")
        .assert_stderr("not imported:")
        .assert_stderr("small.csv");
    let kept = count(&db, "SELECT count(*) FROM audit_events");
    assert!(kept >= 1000 && kept < rows as i64, "{kept} of {rows}");
    assert!(
        run.stderr.contains(&format!("{kept} new events")),
        "{}",
        run.all()
    );
    // Importing again adds only the rest.
    env.run(&["import", big.to_str().unwrap(), small.to_str().unwrap()])
        .assert_code(0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit_events"),
        rows as i64 + 5
    );
}

#[test]
fn doctor_and_prune_dry_run_read_a_read_only_database_and_change_nothing() {
    let env = TestEnv::with(|s| {
        s.now = Utc::now();
        s.hours = 6;
    });
    let dir = env.path("data");
    std::fs::create_dir(&dir).unwrap();
    let mount = |options: &str| {
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount("size=64m") {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    config_for(&env, "auditsync.toml", "data/auditsync.db");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(remounted.success());
    let before = snapshot(&dir);
    let doctor = env.run(&["doctor"]);
    doctor
        .assert_code(1)
        .assert_stdout("cannot be written by this user")
        .assert_stdout("PASS  last sync");
    env.run(&["prune", "--older-than", "400d", "--dry-run"])
        .assert_code(0)
        .assert_stdout("would delete 0 events");
    env.run(&["status"])
        .assert_code(0)
        .assert_stdout("complete");
    assert!(
        snapshot(&dir) == before,
        "a reader changed the read-only mount"
    );
    let _ = Command::new("mount")
        .args(["-o", "remount,rw"])
        .arg(&dir)
        .status();
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_during_a_quiet_prune_says_what_was_deleted_and_exits_143() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    let db = env.path("auditsync.db");
    // Enough old events for dozens of batches.
    let rows = 500_000;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO audit_events (id, creation_time, operation, raw) \
             SELECT 'old-' || i, '2020-01-01T00:00:00Z', 'LaunchPowerApp', '{{}}' FROM n;"
        ))
        .unwrap();
    let before = count(&db, "SELECT count(*) FROM audit_events");
    let child = spawn(&env, &["-q", "prune", "--older-than", "400d"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&db, "SELECT count(*) FROM audit_events") == before {
        assert!(Instant::now() < deadline, "no batch was deleted");
        std::thread::sleep(Duration::from_millis(2));
    }
    send(&child, libc::SIGTERM);
    let run = finish(
        &env,
        child,
        Duration::from_secs(60),
        "the interrupted prune",
    );
    run.assert_code(143)
        .assert_stderr("interrupted by SIGTERM")
        .assert_stderr("events created before");
    let left = count(&db, "SELECT count(*) FROM audit_events");
    let deleted = before - left;
    assert!(
        run.stderr
            .contains(&format!("{deleted} events created before")),
        "{}",
        run.all()
    );
    assert!(
        left > 0,
        "the prune finished before the signal: make it slower"
    );
    assert!(
        run.stderr.contains("run the same prune again"),
        "{}",
        run.all()
    );
}

/// Bytes waiting in the pipe `fd` (FIONREAD).
#[cfg(target_os = "linux")]
fn pending_in(fd: &impl std::os::fd::AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    #[allow(unsafe_code, reason = "FIONREAD on a pipe we own")]
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0);
    n
}

#[cfg(target_os = "linux")]
#[test]
fn a_reader_whose_output_nobody_reads_never_holds_up_a_sync() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    let db = env.path("auditsync.db");
    // Far more than a pipe holds (64 KiB) in every report.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO audit_events (id, creation_time, operation, record_type, user_id, app_id, raw) \
             SELECT 'many-' || i, '2020-01-01T00:00:00Z', 'LaunchPowerApp', 45, \
                    'user-' || i || '@contoso.com', 'app-' || (i % 5000), '{}' FROM n;",
        )
        .unwrap();
    for args in [&["report", "users"][..], &["status"], &["doctor"]] {
        let mut reader = spawn(&env, args);
        let stdout = reader.stdout.take().unwrap();
        // Output that fills the pipe (64 KiB; a write that does not fit waits whole): the reader is
        // blocked writing (status and doctor print little,
        // they are only checked to end well).
        let deadline = Instant::now() + Duration::from_secs(20);
        while pending_in(&stdout) < 60_000 && reader.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                reader.kill().ok();
                let out = reader.wait_with_output().unwrap();
                panic!(
                    "{args:?} never filled its pipe ({} bytes): {}",
                    pending_in(&stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let sync = run_bounded(&env, &["sync", "--wait", "5"]);
        reader.kill().ok();
        let _ = reader.wait();
        drop(stdout);
        sync.assert_code(0);
    }
}

#[cfg(unix)]
#[test]
fn a_writer_warns_once_when_an_older_database_can_be_read_by_other_users() {
    let env = tenant();
    env.run(&["sync"]).assert_code(0);
    let db = env.path("auditsync.db");
    // As auditsync created it before it made it 0600.
    crate::common::set_mode(&db, 0o644);
    for args in [&["sync"][..], &["prune", "--older-than", "400d"]] {
        let run = env.run(args);
        run.assert_code(0)
            .assert_stderr("can be read by other users")
            .assert_stderr("auditsync.db 644")
            .assert_stderr("chmod 600");
        assert_eq!(
            run.stderr.matches("can be read by other users").count(),
            1,
            "{args:?}: once\n{}",
            run.all()
        );
    }
    for (file, _) in auditsync_core::store::files(&db) {
        if file.exists() && !file.ends_with("auditsync.db.lock") {
            crate::common::set_mode(&file, 0o600);
        }
    }
    let run = env.run(&["sync"]);
    run.assert_code(0);
    assert!(!run.stderr.contains("other users"), "{}", run.all());
}
