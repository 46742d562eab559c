//! The SQLite store's invariants: a unit and its ledger row commit together, events are unique by
//! `Id`, other programs' files are refused, lost blobs are reported once, the read-only path never
//! migrates or writes, and a version-1 database upgrades to the current schema keeping its rows.

use chrono::TimeDelta;

use super::*;
use crate::model::LedgerEntry;
use crate::store::{QueryState, ReportFilter};
use crate::time::{parse_stored, ts};
use rusqlite::params;

fn blob(id: &str) -> BlobRef {
    BlobRef {
        content_type: "Audit.General".into(),
        content_id: id.into(),
        content_uri: format!("https://x/{id}"),
        created: Utc::now(),
        expiration: None,
    }
}

fn event(id: &str) -> Event {
    Event {
        id: id.into(),
        creation_time: "2026-01-01T00:00:00Z".into(),
        operation: "LaunchPowerApp".into(),
        workload: None,
        record_type: Some(256),
        user_id: None,
        user_object_id: None,
        user_upn: None,
        app_id: None,
        app_name: None,
        environment_id: None,
        raw: "{}".into(),
    }
}

fn unit(id: &str, events: Vec<Event>, records_seen: usize) -> Unit {
    Unit {
        ledger: LedgerEntry::Blob(blob(id)),
        events,
        records_seen,
        quarantined: Vec::new(),
    }
}

/// A writable store on `path`, holding its run lock.
fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open_write(path, RunLock::try_acquire(path)?)
}

fn event_ids(s: &SqliteStore) -> Vec<String> {
    let mut stmt = s
        .conn
        .prepare("SELECT id FROM audit_events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_blob_and_its_ledger_row_commit_together_and_events_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    s.add_pending(&[blob("b1"), blob("b2")]).unwrap();
    assert_eq!(s.pending().unwrap().len(), 2);
    s.commit(&[
        unit("b1", vec![event("e1"), event("e2")], 5),
        unit("b2", vec![event("e2")], 1),
    ])
    .unwrap();
    assert_eq!(event_ids(&s), ["e1", "e2"]);
    assert_eq!(s.ledger_size().unwrap(), 2);
    assert!(s.pending().unwrap().is_empty());
    // Listing a stored blob again does not make it pending.
    s.add_pending(&[blob("b1")]).unwrap();
    assert!(s.pending().unwrap().is_empty());
    assert_eq!(
        s.stored_since(Utc::now() - TimeDelta::hours(1))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn refuses_directories_foreign_files_and_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::IsDirectory(_))));

    let text = dir.path().join("notes.txt");
    let notes = "not a database at all, just some text that is long enough";
    std::fs::write(&text, notes).unwrap();
    assert!(matches!(open(&text), Err(StoreError::Foreign(_))));
    assert_eq!(std::fs::read_to_string(&text).unwrap(), notes, "untouched");

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(matches!(open(&other), Err(StoreError::Foreign(_))));

    let newer = dir.path().join("newer.db");
    drop(open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(open(&newer), Err(StoreError::TooNew { .. })));
}

#[test]
fn an_expired_pending_blob_is_reported_lost_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    let now = Utc::now();
    let mut old = blob("old");
    old.expiration = Some(now - TimeDelta::minutes(1));
    let mut fresh = blob("fresh");
    fresh.expiration = Some(now + TimeDelta::days(6));
    s.add_pending(&[old, fresh]).unwrap();
    s.note_failure("old", "HTTP 500").unwrap();
    let lost = s.lost(now).unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].content_id.as_str(), lost[0].attempts), ("old", 1));
    assert_eq!(lost[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(
        s.lost(now).unwrap().len(),
        1,
        "still to report until a run has reported it"
    );
    let run = s.begin_run((now, now)).unwrap();
    s.finish_run(run, "incomplete", "{}", &["old".to_owned()])
        .unwrap();
    assert!(s.lost(now).unwrap().is_empty(), "reported once");
    assert_eq!(s.lost_count().unwrap(), 1);
    let pending: Vec<_> = s
        .pending()
        .unwrap()
        .into_iter()
        .map(|p| p.content_id)
        .collect();
    assert_eq!(pending, ["fresh"]);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let mut s = open(&p).unwrap();
    let at = parse_stored("2026-11-21T10:00:00Z").unwrap();
    s.set_watermark(at).unwrap();
    drop(s);
    let s = open(&p).unwrap();
    assert_eq!(s.watermark().unwrap(), Some(at));
}

#[test]
fn a_writable_store_holds_the_run_lock_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let s = open(&p).unwrap();
    assert!(matches!(
        RunLock::try_acquire(&p),
        Err(StoreError::Busy { .. })
    ));
    // Readers do not need it.
    SqliteStore::open_read(&p).unwrap();
    drop(s);
    RunLock::try_acquire(&p).unwrap();
}

/// The names and bytes of every file in `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_reader_keeps_writers_out_while_it_reads_and_sees_a_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(open(&p).unwrap());
    let reader = SqliteStore::open_read(&p).unwrap();
    assert!(matches!(
        RunLock::try_acquire(&p),
        Err(StoreError::Reading { .. })
    ));
    assert_eq!(reader.writer(), None);
    // Two readers at once are fine.
    let second = SqliteStore::open_read(&p).unwrap();
    drop((reader, second));

    let writer = open(&p).unwrap();
    // A reader while a writer has the database open reads through the WAL, and names the writer.
    let reader = SqliteStore::open_read(&p).unwrap();
    let holder = reader.writer().unwrap();
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    assert!(reader.watermark().unwrap().is_none());
    drop((reader, writer));
    RunLock::try_acquire(&p).unwrap();
}

#[test]
fn an_empty_file_is_no_database_yet() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    std::fs::write(&p, "").unwrap();
    assert!(matches!(
        SqliteStore::open_read(&p),
        Err(StoreError::Missing(_))
    ));
    assert!(SqliteStore::inspect(&p).unwrap().is_none());
    // The first sync fills it in.
    drop(open(&p).unwrap());
    assert_eq!(
        SqliteStore::inspect(&p).unwrap().map(|(v, _)| v),
        Some(SCHEMA_VERSION)
    );
}

#[test]
fn a_failed_schema_upgrade_says_so_without_the_sql() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(open(&p).unwrap());
    // Tables there, but a version that says they are not.
    let conn = Connection::open(&p).unwrap();
    conn.pragma_update(None, "user_version", 0).unwrap();
    drop(conn);
    let err = open(&p).err().unwrap().to_string();
    assert!(
        err.contains("rolled back") && err.contains("already exists"),
        "{err}"
    );
    assert!(!err.contains("CREATE TABLE"), "{err}");
}

#[test]
fn reading_never_creates_migrates_or_changes_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    assert!(matches!(
        SqliteStore::open_read(&p),
        Err(StoreError::Missing(_))
    ));
    assert!(!p.exists(), "a reader creates nothing");

    let mut s = open(&p).unwrap();
    s.commit(&[unit("b1", vec![event("e1")], 1)]).unwrap();
    drop(s);
    // Not a byte of the database changes, and no file appears beside it (a WAL index left by a
    // reader, with the reader's owner or mode, could stop the next sync).
    let before = files(dir.path());
    let r = SqliteStore::open_read(&p).unwrap();
    assert_eq!(r.events_by_operation().unwrap()[0].events, 1);
    r.report_apps(&ReportFilter::default()).unwrap();
    drop(r);
    assert!(files(dir.path()) == before, "the folder is as it was");

    // A schema older than this binary's is refused, not migrated, and left as it was.
    let conn = Connection::open(&p).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
        .unwrap();
    drop(conn);
    let before = std::fs::read(&p).unwrap();
    let err = SqliteStore::open_read(&p).err().unwrap();
    assert!(matches!(err, StoreError::TooOld { .. }), "{err}");
    assert!(err.to_string().contains("auditsync sync"), "{err}");
    assert!(std::fs::read(&p).unwrap() == before, "not migrated");
    // And newer is refused with the upgrade advice.
    let conn = Connection::open(&p).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open_read(&p).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// Rows per table, in a fixed order of tables.
fn row_counts(conn: &Connection) -> Vec<(String, i64)> {
    [
        "audit_events",
        "blob_ledger",
        "pending_blobs",
        "runs",
        "state",
    ]
    .iter()
    .map(|t| {
        let n = conn
            .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap();
        ((*t).to_owned(), n)
    })
    .collect()
}

/// The schema as SQLite keeps it, white space folded, sorted.
fn schema(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL")
        .unwrap();
    let mut out: Vec<String> = stmt
        .query_map([], |r| {
            let sql: String = r.get(3)?;
            Ok(format!(
                "{} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out.sort();
    out
}

#[test]
fn a_version_1_database_upgrades_to_the_current_schema_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v1.db");
    let conn = Connection::open(&p).unwrap();
    conn.execute_batch(include_str!("fixtures/v1.sql")).unwrap();
    let rows = row_counts(&conn);
    assert!(rows.iter().all(|(_, n)| *n > 0), "{rows:?}");
    // Rows 0.1.0 stored from real records: the upgrade reads who the user is from each row's
    // AuditData (object id from enduser.id, UserKey or a GUID UserId; else the UPN, linked to the
    // object id another row of that UPN carries), and the legacy launches' app names.
    for (id, user_id, record_type, app_name, raw) in [
        (
            "v1-a",
            "AmberR@CONTOSO.onmicrosoft.com",
            256,
            Some("Project Intake"),
            r#"{"Id":"v1-a","RecordType":256,"CreationTime":"2026-11-21T09:00:00","Operation":"LaunchPowerApp","UserId":"AmberR@CONTOSO.onmicrosoft.com","UserKey":"7ff1e0f1-e2a4-48a0-874e-34db43893df1","PropertyCollection":[{"Name":"enduser.id","Value":"7ff1e0f1-e2a4-48a0-874e-34db43893df1"}]}"#,
        ),
        (
            "v1-b",
            "7ff1e0f1-e2a4-48a0-874e-34db43893df1",
            45,
            None,
            r#"{"Id":"v1-b","RecordType":45,"CreationTime":"2026-11-21T09:30:00","Operation":"LaunchPowerApp","UserId":"7ff1e0f1-e2a4-48a0-874e-34db43893df1","AppName":"a601eda5-055e-4c27-9976-e4e7d232c8a4","AdditionalInfo":"{\"appName\":\"Project Intake\"}"}"#,
        ),
    ] {
        conn.execute(
            "INSERT INTO audit_events VALUES (?1, '2026-11-21T09:00:00Z', 'LaunchPowerApp', NULL, ?3, ?2, \
             'a601eda5-055e-4c27-9976-e4e7d232c8a4', ?4, NULL, 'Audit.General', 'c', ?5)",
            params![id, user_id, record_type, app_name, raw],
        )
        .unwrap();
    }
    let rows = row_counts(&conn);
    drop(conn);

    let mut s = open(&p).unwrap();
    let (app_id, version) = header(&s.conn, &p).unwrap();
    assert_eq!((app_id, version), (APPLICATION_ID, SCHEMA_VERSION));
    assert_eq!(row_counts(&s.conn), rows, "every row kept");
    // What 0.1.0 wrote reads back as it meant it.
    assert_eq!(s.watermark().unwrap(), parse_stored("2026-11-21T14:15:02Z"));
    let last = s.last_run().unwrap().unwrap();
    assert_eq!(last.started_at, parse_stored("2026-11-21T15:15:02Z"));
    assert_eq!(last.outcome, None, "an interrupted run stays interrupted");
    let pending = s.pending().unwrap();
    assert_eq!((pending.len(), pending[0].attempts), (1, 2));
    assert_eq!(
        event_ids(&s),
        [
            "8d2a6c1e-0000-4000-8000-000000000001",
            "8d2a6c1e-0000-4000-8000-000000000002",
            "v1-a",
            "v1-b"
        ]
    );
    let apps = s.report_apps(&ReportFilter::default()).unwrap();
    assert_eq!(apps.len(), 2);
    // Amber (by UPN in the fixture's row, and in v1-a with her object id, and by object id alone in
    // v1-b) is one user of Project Intake; the legacy row got its name.
    assert_eq!(
        (
            apps[0].app_name.as_deref(),
            apps[0].launches,
            apps[0].unique_users
        ),
        (Some("Project Intake"), 3, 1)
    );
    let name: Option<String> = s
        .conn
        .query_row(
            "SELECT app_name FROM audit_events WHERE id = 'v1-b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name.as_deref(), Some("Project Intake"));
    let users = s.report_users(&ReportFilter::default()).unwrap();
    let users: Vec<(Option<&str>, i64)> = users
        .iter()
        .map(|u| (u.user_id.as_deref(), u.launches))
        .collect();
    assert_eq!(
        users,
        [
            (Some("amberr@contoso.onmicrosoft.com"), 3),
            (Some("ben@contoso.onmicrosoft.com"), 1)
        ]
    );
    assert_eq!(s.quarantine(5).unwrap(), (0, Vec::new()));

    // The same schema as a database this binary creates, and it takes new units.
    let fresh = open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(schema(&s.conn), schema(&fresh.conn));
    s.commit(&[unit("b-new", vec![event("e-new")], 1)]).unwrap();
    assert_eq!(event_ids(&s).len(), 5);
}

#[cfg(unix)]
#[test]
fn a_database_named_through_a_symlink_shares_its_lock_and_is_read_with_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let real = dir.path().join("real/a.db");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let writer = open(&real).unwrap();
    assert!(
        matches!(open(&link), Err(StoreError::Busy { .. })),
        "one lock whatever path names the database"
    );
    drop(writer);

    // Another program holds the database open with rows only in its -wal (beside the real file);
    // no auditsync writer holds the lock. A reader through the link must see those rows.
    let other = Connection::open(&real).unwrap();
    other
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             INSERT INTO operations (id, name) VALUES (1, 'LaunchPowerApp');
             INSERT INTO events (id, creation_time, operation, source, raw)
             VALUES ('e1', '2026-01-01T00:00:00Z', 1, 1, x'00');",
        )
        .unwrap();
    assert!(dir.path().join("real/a.db-wal").exists());
    let reader = SqliteStore::open_read(&link).unwrap();
    assert_eq!(reader.events_by_operation().unwrap()[0].events, 1);
    drop((reader, other));
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_database_not_created_yet_locks_where_the_database_will_be() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let real = dir.path().join("real/a.db");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink("real/a.db", &link).unwrap();
    let first = RunLock::try_acquire(&link).unwrap();
    assert!(!dir.path().join("link.db.lock").exists());
    // The first sync creates the file; a second one through either path meets the same lock.
    let writer = SqliteStore::open_write(&link, first).unwrap();
    assert!(real.exists());
    assert!(matches!(
        RunLock::try_acquire(&link),
        Err(StoreError::Busy { .. })
    ));
    assert!(matches!(
        RunLock::try_acquire(&real),
        Err(StoreError::Busy { .. })
    ));
    drop(writer);
}

#[test]
fn reading_a_database_in_a_folder_that_does_not_exist_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nowhere/a.db");
    assert!(matches!(
        SqliteStore::open_read(&p),
        Err(StoreError::NoFolder { .. })
    ));
    assert!(matches!(
        SqliteStore::open_read(&dir.path().join("a.db")),
        Err(StoreError::Missing(_))
    ));
}

#[test]
fn the_latest_watermark_not_after_a_time_comes_from_the_runs_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    let now = parse_stored("2026-11-22T10:00:00Z").unwrap();
    assert_eq!(s.watermark_not_after(now).unwrap(), None);
    for summary in [
        r#"{"watermark":"2026-11-20T10:00:00Z"}"#,
        r#"{"watermark":"2026-11-21T09:00:00Z"}"#,
        r#"{"watermark":"2026-11-25T10:00:00Z"}"#,
        r#"{"watermark":null}"#,
        "{}",
        "not json",
    ] {
        let run = s.begin_run((now, now)).unwrap();
        s.finish_run(run, "complete", summary, &[]).unwrap();
    }
    assert_eq!(
        s.watermark_not_after(now).unwrap(),
        parse_stored("2026-11-21T09:00:00Z")
    );
    assert_eq!(
        s.watermark_not_after(parse_stored("2026-11-21T08:00:00Z").unwrap())
            .unwrap(),
        parse_stored("2026-11-20T10:00:00Z")
    );
}

#[cfg(unix)]
#[test]
fn a_new_database_and_its_wal_and_shm_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut s = open(&path).unwrap();
    s.commit(&[unit("b1", vec![event("e1")], 1)]).unwrap();
    // While the store is open its WAL and WAL index are there; SQLite gives them the file's mode.
    for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// A launch by a user named as records name them: `user_id` as logged, and what `extract` read.
fn launch_by(id: &str, day: u32, app: &str, oid: Option<&str>, upn: Option<&str>) -> Event {
    Event {
        creation_time: format!("2026-01-0{day}T10:00:00Z"),
        app_id: Some(app.into()),
        user_id: upn.or(oid).map(str::to_owned),
        user_object_id: oid.map(str::to_owned),
        user_upn: upn.map(str::to_lowercase),
        ..event(id)
    }
}

const O1: &str = "11111111-1111-4111-8111-111111111111";
const O2: &str = "22222222-2222-4222-8222-222222222222";

/// The same person named by UPN in some records and by object id in others is one user, whichever
/// came first; counts computed by hand.
#[test]
fn a_person_named_by_upn_and_by_object_id_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    // Alice by UPN only, before any record links her UPN to her object id.
    s.commit(&[unit(
        "b1",
        vec![launch_by("e1", 1, "app-a", None, Some("alice@x.com"))],
        1,
    )])
    .unwrap();
    // The linking record (both), then her object id alone, Bob by UPN, Alice by UPN again (in
    // capitals), someone known only by object id, and a launch naming nobody.
    s.commit(&[unit(
        "b2",
        vec![
            launch_by("e2", 1, "app-a", Some(O1), Some("Alice@X.com")),
            launch_by("e3", 2, "app-b", Some(O1), None),
            launch_by("e4", 2, "app-a", None, Some("bob@x.com")),
        ],
        3,
    )])
    .unwrap();
    // Through the import path too.
    s.insert_events(
        &[
            launch_by("e5", 2, "app-b", None, Some("ALICE@x.com")),
            launch_by("e6", 2, "app-a", Some(O2), None),
            launch_by("e7", 2, "app-a", None, None),
        ],
        "import:x.csv",
    )
    .unwrap();

    let all = ReportFilter::default();
    let apps: Vec<(Option<String>, i64, i64)> = s
        .report_apps(&all)
        .unwrap()
        .into_iter()
        .map(|a| (a.app_id, a.launches, a.unique_users))
        .collect();
    assert_eq!(
        apps,
        [
            (Some("app-a".into()), 5, 3), // Alice, Bob, O2
            (Some("app-b".into()), 2, 1), // Alice twice
        ]
    );
    let users: Vec<(Option<String>, i64, i64)> = s
        .report_users(&all)
        .unwrap()
        .into_iter()
        .map(|u| (u.user_id, u.launches, u.apps))
        .collect();
    assert_eq!(
        users,
        [
            (Some("alice@x.com".into()), 4, 2),
            (Some(O2.into()), 1, 1),
            (Some("bob@x.com".into()), 1, 1),
            (None, 1, 1),
        ]
    );
    let days: Vec<(String, i64, i64)> = s
        .report_daily(&all)
        .unwrap()
        .into_iter()
        .map(|d| (d.day, d.launches, d.unique_users))
        .collect();
    assert_eq!(
        days,
        [("2026-01-01".into(), 2, 1), ("2026-01-02".into(), 5, 3)]
    );
    // The key is a column, filled at write time.
    let keys: Vec<Option<String>> = s
        .conn
        .prepare("SELECT user_key FROM audit_events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let o = |v: &str| Some(v.to_owned());
    assert_eq!(
        keys,
        [o(O1), o(O1), o(O1), o("bob@x.com"), o(O1), o(O2), None]
    );
}

/// A record that cannot be read is stored in the quarantine with its blob's ledger row; committing
/// the blob again adds nothing; the reader counts them and shows the newest first.
#[test]
fn quarantined_records_commit_with_their_blob() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    s.add_pending(&[blob("b1")]).unwrap();
    let q = |position: u64, reason: &str| crate::model::Quarantined {
        position,
        raw: format!("{{\"n\":{position}}}"),
        reason: reason.into(),
        more: 0,
    };
    let mut u = unit("b1", vec![event("e1")], 3);
    u.quarantined = vec![
        q(0, "it has no Id"),
        q(2, "its CreationTime \"x\" is not a time"),
    ];
    u.quarantined[1].more = 7;
    let new = s.commit(std::slice::from_ref(&u)).unwrap();
    assert_eq!((new.events, new.quarantined), (1, 1 + 1 + 7));
    assert!(s.pending().unwrap().is_empty(), "the blob counts as stored");
    assert_eq!(s.ledger_size().unwrap(), 1);
    assert_eq!(s.commit(&[u]).unwrap(), Committed::default(), "nothing new");
    let (count, newest) = s.quarantine(1).unwrap();
    assert_eq!(count, 2);
    assert_eq!(newest.len(), 1);
    assert_eq!((newest[0].origin.as_str(), newest[0].position), ("b1", 2));
    assert_eq!(newest[0].content_type.as_deref(), Some("Audit.General"));
    assert_eq!(newest[0].reason, "its CreationTime \"x\" is not a time");
    let (raw, uri): (String, String) = s
        .conn
        .query_row(
            "SELECT raw, content_uri FROM quarantine WHERE position = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((raw.as_str(), uri.as_str()), ("{\"n\":0}", "https://x/b1"));
}

/// A unit for blob `id` created `hours` ago, holding one event per age in `event_hours` (hours ago).
fn aged_unit(id: &str, hours: i64, event_hours: &[i64]) -> Unit {
    let mut b = blob(id);
    b.created = Utc::now() - TimeDelta::hours(hours);
    let events = event_hours
        .iter()
        .map(|h| {
            let mut e = event(&format!("{id}-{h}"));
            e.creation_time = crate::time::ts(Utc::now() - TimeDelta::hours(*h));
            e
        })
        .collect();
    Unit {
        ledger: LedgerEntry::Blob(b),
        events,
        records_seen: event_hours.len(),
        quarantined: Vec::new(),
    }
}

#[test]
fn pruning_inside_the_fetchable_window_forgets_the_ledger_rows_of_the_blobs_it_empties() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    // b-old: all its events before the cutoff (12 h ago); b-mixed: created after the cutoff but holding
    // an event from before it (a blob is created after its records); b-new: all after.
    s.commit(&[
        aged_unit("b-old", 20, &[22, 21]),
        aged_unit("b-mixed", 11, &[13, 11]),
        aged_unit("b-new", 2, &[3]),
    ])
    .unwrap();
    let mut listed = blob("b-listed");
    listed.created = Utc::now() - TimeDelta::hours(30);
    s.add_pending(&[listed]).unwrap();
    s.begin_run((Utc::now(), Utc::now())).unwrap();
    let scope = PruneScope {
        cutoff: Utc::now() - TimeDelta::hours(12),
        include_fetchable: true,
    };
    let preview = s.prune_preview(scope).unwrap();
    let before = event_ids(&s);
    assert_eq!(event_ids(&s), before, "a preview changes nothing");
    let pruned = s.prune(scope).unwrap();
    let (before_bytes, after_bytes) = pruned.file_bytes.expect("a prune measures the file");
    assert!(after_bytes <= before_bytes, "{pruned:?}");
    let pruned = Pruned {
        file_bytes: None,
        ..pruned
    };
    assert_eq!(pruned, preview, "the preview counts what the prune deletes");
    assert_eq!(
        (
            pruned.events,
            pruned.ledger_rows,
            pruned.pending_rows,
            pruned.runs
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(event_ids(&s), ["b-mixed-11", "b-new-3"]);
    let stored = s.stored_since(Utc::now() - TimeDelta::days(2)).unwrap();
    assert_eq!(stored, HashSet::from(["b-new".to_owned()]));

    // Without the fetchable days, ledger rows of the last 8 days stay whatever the cutoff.
    s.commit(&[
        aged_unit("b-week", 24 * 9, &[24 * 9 + 1]),
        aged_unit("b-six", 24 * 6, &[24 * 6 + 1]),
    ])
    .unwrap();
    let kept = PruneScope {
        cutoff: Utc::now() - TimeDelta::hours(24 * 5),
        include_fetchable: false,
    };
    let pruned = s.prune(kept).unwrap();
    assert_eq!((pruned.events, pruned.ledger_rows), (2, 1));
    assert!(
        s.stored_since(Utc::now() - TimeDelta::days(7))
            .unwrap()
            .contains("b-six")
    );
}

#[test]
fn a_raised_stop_ends_batch_writes_before_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    s.commit(&[aged_unit("b1", 24 * 30, &[24 * 30 + 1])])
        .unwrap();
    let stop = crate::stop::Stop::new();
    s.set_stop(stop.clone());
    s.insert_events(&[event("e1")], "file.csv").unwrap();
    stop.request(crate::stop::Signal::Terminate);
    assert!(matches!(
        s.insert_events(&[event("e2")], "file.csv"),
        Err(StoreError::Interrupted(crate::stop::Signal::Terminate))
    ));
    let pruned = s
        .prune(PruneScope {
            cutoff: Utc::now() - TimeDelta::days(10),
            include_fetchable: false,
        })
        .unwrap();
    assert_eq!(pruned.interrupted, Some(crate::stop::Signal::Terminate));
    assert_eq!(pruned.events, 0, "stopped before the first batch");
    assert_eq!(event_ids(&s).len(), 2);
}

#[test]
fn a_database_a_first_sync_is_still_creating_is_named_as_such_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    // The writer has created the file (empty) to lock it, and not written a byte yet.
    let lock = RunLock::try_acquire(&p).unwrap();
    assert!(matches!(
        SqliteStore::open_read(&p),
        Err(StoreError::Creating { .. })
    ));
    drop(lock);
    assert!(matches!(
        SqliteStore::open_read(&p),
        Err(StoreError::Missing(_))
    ));
}

#[test]
fn pruning_imported_events_inside_the_fetchable_window_forgets_the_blobs_that_could_hold_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    // Blobs 20 h and 2 h old; an imported event (no blob named) from 13 h ago, which a blob up to 48 h
    // younger could hold.
    s.commit(&[aged_unit("b-20", 20, &[]), aged_unit("b-2", 2, &[3])])
        .unwrap();
    let mut imported = event("imported");
    imported.creation_time = crate::time::ts(Utc::now() - TimeDelta::hours(13));
    s.insert_events(&[imported], "import:x.csv").unwrap();
    let scope = PruneScope {
        cutoff: Utc::now() - TimeDelta::hours(12),
        include_fetchable: true,
    };
    let pruned = s.prune(scope).unwrap();
    assert_eq!((pruned.events, pruned.ledger_rows), (1, 2));
    assert!(
        s.stored_since(Utc::now() - TimeDelta::days(2))
            .unwrap()
            .is_empty()
    );
}

/// A quarantined record's `contentUri` is stored as the pending row's is: whatever credential the
/// service (or a proxy) put in it is redacted.
#[test]
fn a_quarantined_records_content_uri_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    let mut u = unit("b1", vec![event("e1")], 2);
    let LedgerEntry::Blob(b) = &mut u.ledger;
    b.content_uri =
        "https://x/b1?access_token=s3cr3t-t0ken-value&client_secret=hunter2hunter2".into();
    u.quarantined = vec![crate::model::Quarantined {
        position: 1,
        raw: "1".into(),
        reason: "it is not a JSON object but a number".into(),
        more: 0,
    }];
    s.commit(&[u]).unwrap();
    let uri: String = s
        .conn
        .query_row("SELECT content_uri FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert!(!uri.contains("s3cr3t-t0ken-value"), "{uri}");
    assert!(!uri.contains("hunter2hunter2"), "{uri}");
    assert!(uri.starts_with("https://x/b1"), "{uri}");
}

/// Quarantined records (raw AuditData: UPNs, IP addresses) do not outlive the retention: a prune
/// deletes those quarantined before its cutoff, and its preview counts them.
#[test]
fn pruning_deletes_the_quarantine_older_than_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    let q = |position: u64| crate::model::Quarantined {
        position,
        raw: format!("{{\"UserId\":\"u{position}@contoso.com\"}}"),
        reason: "it has no Id".into(),
        more: 0,
    };
    let mut old = aged_unit("b-old", 24 * 30, &[24 * 30 + 1]);
    old.quarantined = vec![q(1), q(2)];
    let mut new = aged_unit("b-new", 2, &[3]);
    new.quarantined = vec![q(1)];
    s.commit(&[old, new]).unwrap();
    s.conn
        .execute(
            "UPDATE quarantine SET quarantined_at = ?1 WHERE origin = 'b-old'",
            [crate::time::ts(Utc::now() - TimeDelta::days(30))],
        )
        .unwrap();
    let quarantined = |s: &SqliteStore| -> Vec<String> {
        let mut stmt = s
            .conn
            .prepare("SELECT origin FROM quarantine ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let scope = PruneScope {
        cutoff: Utc::now() - TimeDelta::days(10),
        include_fetchable: false,
    };
    let preview = s.prune_preview(scope).unwrap();
    assert_eq!(quarantined(&s).len(), 3, "a preview changes nothing");
    let pruned = s.prune(scope).unwrap();
    assert!(pruned.file_bytes.is_some());
    let pruned = Pruned {
        file_bytes: None,
        ..pruned
    };
    assert_eq!(pruned, preview);
    assert_eq!(pruned.quarantine_rows, 2);
    assert_eq!(quarantined(&s), ["b-new"]);
    assert_eq!(s.quarantine(5).unwrap().0, 1);
}

/// Rows in the tables besides the events (schema 2 and later).
fn bookkeeping_counts(conn: &Connection) -> Vec<i64> {
    [
        "blob_ledger",
        "pending_blobs",
        "runs",
        "state",
        "quarantine",
        "user_identities",
    ]
    .iter()
    .map(|t| {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    })
    .collect()
}

/// Schema 2 (the release before the compact layout, `fixtures/v2.sql`, written by that release's
/// sync and import) upgrades to schema 3 keeping every value: each row's columns as the view shows
/// them, the raw record byte for byte, the other tables; the reports equal what that release
/// printed for the same database (`fixtures/report-v2-*.json`); and the file is compacted once.
#[test]
fn a_version_2_database_upgrades_to_the_compact_layout_keeping_every_value_and_report() {
    type Old = (Vec<Option<String>>, Option<i64>, String);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v2.db");
    let conn = Connection::open(&p).unwrap();
    conn.execute_batch(include_str!("fixtures/v2.sql")).unwrap();
    let columns = "id, creation_time, operation, workload, user_id, app_id, app_name, environment_id, \
                   content_type, content_id, user_key";
    let read = |conn: &Connection, extra: &str| -> Vec<(Vec<Option<String>>, Option<i64>)> {
        conn.prepare(&format!(
            "SELECT {columns}, record_type{extra} FROM audit_events ORDER BY id"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((
                (0..11).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?,
                r.get(11)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let old: Vec<Old> = conn
        .prepare(&format!(
            "SELECT {columns}, record_type, raw FROM audit_events ORDER BY id"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((
                (0..11).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?,
                r.get(11)?,
                r.get(12)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(old.len() > 100, "{}", old.len());
    let kept = bookkeeping_counts(&conn);
    drop(conn);
    let before = std::fs::metadata(&p).unwrap().len();

    let s = open(&p).unwrap();
    assert_eq!(
        header(&s.conn, &p).unwrap(),
        (APPLICATION_ID, SCHEMA_VERSION)
    );
    assert_eq!(
        bookkeeping_counts(&s.conn),
        kept,
        "the other tables keep their rows"
    );
    // Every column as it was; a row schema 2 stored without a user_key (a UserId that is neither a
    // UPN nor an object id) is now keyed by that UserId, lower-cased, as its reports counted it.
    let now = read(&s.conn, "");
    let expected: Vec<(Vec<Option<String>>, Option<i64>)> = old
        .iter()
        .map(|(cols, rt, _)| {
            let mut cols = cols.clone();
            if cols[10].is_none() {
                cols[10] = cols[4].as_deref().map(str::to_lowercase);
            }
            (cols, *rt)
        })
        .collect();
    assert_eq!(now, expected);
    assert!(
        old.iter().any(|(c, ..)| c[10].is_none() && c[4].is_some()),
        "the fixture has a row without a user_key"
    );
    // The raw records, byte for byte.
    let mut raws = std::collections::BTreeMap::new();
    s.export((None, None), &mut |e| {
        raws.insert(e.id.clone(), e.raw.clone());
        Ok(())
    })
    .unwrap();
    let old_raws: std::collections::BTreeMap<String, String> = old
        .iter()
        .map(|(c, _, raw)| (c[0].clone().unwrap(), raw.clone()))
        .collect();
    assert_eq!(raws, old_raws);
    // The reports say what schema 2's said.
    let all = ReportFilter::default();
    let as_json = |report: crate::report::Report| {
        let mut out = Vec::new();
        crate::report::json(&mut out, &report).unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let fixture = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(
        as_json(crate::report::Report::Apps(s.report_apps(&all).unwrap())),
        fixture(include_str!("fixtures/report-v2-apps.json"))
    );
    assert_eq!(
        as_json(crate::report::Report::Users(s.report_users(&all).unwrap())),
        fixture(include_str!("fixtures/report-v2-users.json"))
    );
    assert_eq!(
        as_json(crate::report::Report::Daily(s.report_daily(&all).unwrap())),
        fixture(include_str!("fixtures/report-v2-daily.json"))
    );
    // Compacted once, and able to give a prune's pages back from now on.
    let mode: i64 = s
        .conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2);
    drop(s);
    let after = std::fs::metadata(&p).unwrap().len();
    assert!(after < before, "{after} < {before}");
}

/// Rows another program inserts into the `audit_events` view (as into the table it was) are counted
/// by the reports at once, and the next writer compresses them (training a dictionary on them) and
/// gives the space back; their raw records read back byte for byte, the reports unchanged.
#[test]
fn rows_inserted_through_the_view_are_reported_then_compressed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(open(&p).unwrap());
    let conn = Connection::open(&p).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..3_000 {
        let id = format!("ext-{i:05}");
        let user = if i % 3 == 0 {
            "ÉMILE@Contoso.com"
        } else {
            "Zoë@contoso.com"
        };
        let raw = format!(
            r#"{{"Id":"{id}","Operation":"LaunchPowerApp","UserId":"{user}","ClientIP":"10.0.{}.{}","Pad":"{}"}}"#,
            i % 250,
            i % 7,
            "é".repeat(300 + i % 50)
        );
        tx.execute(
            "INSERT INTO audit_events (id, creation_time, operation, user_id, app_id, environment_id, raw) \
             VALUES (?1, ?2, 'LaunchPowerApp', ?3, ?4, 'env-1', ?5)",
            params![
                id,
                format!("2026-0{}-1{}T10:00:00Z", 1 + i % 3, i % 10),
                user,
                format!("app-{}", i % 4),
                raw
            ],
        )
        .unwrap();
        expected.insert(id, raw);
    }
    tx.commit().unwrap();
    drop(conn);
    let all = ReportFilter::default();
    let reader = SqliteStore::open_read(&p).unwrap();
    let users = reader.report_users(&all).unwrap();
    let apps = reader.report_apps(&all).unwrap();
    drop(reader);
    // By hand: two people (each UserId folded: ÉMILE… and émile… are one), 1,000 and 2,000 launches;
    // four apps of 750 launches, each launched by both.
    let by_user: Vec<(Option<String>, i64)> = users
        .iter()
        .map(|u| (u.user_id.clone(), u.launches))
        .collect();
    assert_eq!(
        by_user,
        [
            (Some("zoë@contoso.com".to_owned()), 2_000),
            (Some("émile@contoso.com".to_owned()), 1_000)
        ]
    );
    assert!(
        apps.iter()
            .all(|a| a.launches == 750 && a.unique_users == 2),
        "{apps:?}"
    );
    let size = || std::fs::metadata(&p).unwrap().len();
    let before = size();

    let s = open(&p).unwrap();
    let text_rows: i64 = s
        .conn
        .query_row(
            "SELECT count(*) FROM events WHERE typeof(raw) = 'text'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(text_rows, 0);
    let dictionaries: i64 = s
        .conn
        .query_row("SELECT count(*) FROM raw_dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dictionaries, 1);
    let mut raws = std::collections::BTreeMap::new();
    s.export((None, None), &mut |e| {
        raws.insert(e.id.clone(), e.raw.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(raws, expected);
    assert_eq!(s.report_users(&all).unwrap(), users);
    assert_eq!(s.report_apps(&all).unwrap(), apps);
    drop(s);
    assert!(size() < before / 2, "{} < {before} / 2", size());
}

/// The reports' scan, `status`'s counts and the oldest launch are one range of the index
/// `events_time` each, never a scan of the table (what keeps a year of launches under a second).
#[test]
fn the_report_scan_and_the_status_counts_read_one_index_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("a.db")).unwrap();
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
        let mut stmt = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.join(" | ")
    };
    let scan = plan(super::reports::SCAN_LAUNCHES, &[&1, &2, &3]);
    assert!(
        scan.contains(
            "SEARCH events USING INDEX events_time (operation=? AND <expr>>? AND <expr><?)"
        ),
        "{scan}"
    );
    let oldest = plan(super::events::OLDEST_LAUNCH, &[&1]);
    assert!(oldest.contains("COVERING INDEX events_time"), "{oldest}");
    let status = plan(super::events::EVENTS_BY_OPERATION, &[]);
    assert!(status.contains("COVERING INDEX events_time"), "{status}");
    assert!(!status.contains("SCAN events "), "{status}");
}

/// A report's bounds in whole stored seconds: a fraction rounds up on both sides (a launch at 10:00:00
/// is before --from 10:00:00.5 and before --to 10:00:00.5), as the stored text compared before.
#[test]
fn report_bounds_round_a_fraction_up_to_the_next_stored_second() {
    let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    let secs = |s: &str| at(s).unwrap().timestamp();
    let filter = |from: &str, to: &str| ReportFilter {
        from: at(from),
        to: at(to),
        ..ReportFilter::default()
    };
    assert_eq!(
        crate::store::tally::seconds(&ReportFilter::default()),
        (None, None)
    );
    assert_eq!(
        crate::store::tally::seconds(&filter(
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.25+01:00"
        )),
        (
            Some(secs("2026-01-02T03:04:05Z")),
            Some(secs("2026-01-02T02:04:06Z"))
        )
    );
    assert_eq!(
        crate::store::tally::seconds(&filter("1969-12-31T23:59:59.5Z", "1970-01-01T00:00:00Z")),
        (Some(0), Some(0))
    );
}

/// A row inserted through the view with the caller's `OR REPLACE` replaces only that event, never a
/// dictionary row other events use; `OR IGNORE` of an `Id` already stored changes nothing, not even
/// the app's latest name.
#[test]
fn inserts_through_the_view_with_or_replace_or_or_ignore_touch_only_their_event() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(open(&p).unwrap());
    let conn = Connection::open(&p).unwrap();
    let insert = |verb: &str, id: &str, time: &str, name: &str| {
        conn.execute(
            &format!(
                "{verb} INTO audit_events (id, creation_time, operation, workload, user_id, app_id, \
                 app_name, environment_id, raw) VALUES (?1, ?2, 'LaunchPowerApp', 'PowerApps', \
                 'a@x.com', 'app-1', ?3, 'env-1', '{{}}')"
            ),
            params![id, time, name],
        )
        .unwrap()
    };
    insert("INSERT", "e1", "2026-01-01T10:00:00Z", "Old name");
    insert("INSERT", "e2", "2026-01-02T10:00:00Z", "Expenses");
    insert(
        "INSERT OR REPLACE",
        "e3",
        "2026-01-01T11:00:00Z",
        "Expenses",
    );
    insert(
        "INSERT OR REPLACE",
        "e1",
        "2026-01-01T10:00:00Z",
        "Old name",
    );
    insert(
        "INSERT OR IGNORE",
        "e2",
        "2026-01-09T10:00:00Z",
        "Never stored",
    );
    let rows: Vec<(String, String, String, String, String)> = conn
        .prepare(
            "SELECT id, operation, workload, app_id, environment_id FROM audit_events ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (id, operation, workload, app, env) in &rows {
        assert_eq!(
            (
                operation.as_str(),
                workload.as_str(),
                app.as_str(),
                env.as_str()
            ),
            ("LaunchPowerApp", "PowerApps", "app-1", "env-1"),
            "{id}"
        );
    }
    drop(conn);
    let s = SqliteStore::open_read(&p).unwrap();
    let apps = s.report_apps(&ReportFilter::default()).unwrap();
    assert_eq!(
        (
            apps[0].app_name.as_deref(),
            apps[0].launches,
            apps[0].unique_users
        ),
        (Some("Expenses"), 3, 1)
    );
}

/// A raw value another program inserted as bytes (not UTF-8, not zstd) is adopted like text: the
/// writer compresses it, exports show it (U+FFFD for what is not UTF-8), and commits that train the
/// dictionary later never trip over it.
#[test]
fn a_raw_value_inserted_as_bytes_never_stops_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(open(&p).unwrap());
    let conn = Connection::open(&p).unwrap();
    conn.execute(
        "INSERT INTO audit_events (id, creation_time, operation, raw) \
         VALUES ('bytes', '2026-01-01T10:00:00Z', 'LaunchPowerApp', x'7b22ff227d')",
        [],
    )
    .unwrap();
    drop(conn);
    let mut s = open(&p).unwrap();
    // More than TRAIN_AFTER records through the writer: the dictionary is trained at some commit.
    for b in 0..30 {
        let events: Vec<Event> = (0..50)
            .map(|i| Event {
                raw: format!(
                    r#"{{"Id":"b{b}-{i}","Operation":"LaunchPowerApp","UserId":"user{i}@contoso.com","N":{}}}"#,
                    b * 50 + i
                ),
                ..event(&format!("b{b}-{i}"))
            })
            .collect();
        s.commit(&[unit(&format!("blob-{b}"), events, 50)]).unwrap();
    }
    let trained: i64 = s
        .conn
        .query_row("SELECT count(*) FROM raw_dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(trained, 1);
    let mut raws = std::collections::BTreeMap::new();
    s.export((None, None), &mut |e| {
        raws.insert(e.id.clone(), e.raw.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(raws.len(), 1_501);
    assert_eq!(raws["bytes"], "{\"\u{fffd}\"}");
    assert!(raws["b7-3"].contains("\"N\":353"));
}

/// A prune that deletes every launch naming an app's latest name leaves the app without one, keeps
/// the name when a named launch is left, and deletes the `UserId`s and people no event uses any more.
#[test]
fn a_prune_forgets_names_and_people_only_its_deleted_events_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    let old = |id: &str, app: &str, name: Option<&str>, upn: &str| Event {
        creation_time: "2020-01-01T10:00:00Z".into(),
        app_id: Some(app.into()),
        app_name: name.map(str::to_owned),
        user_id: Some(upn.into()),
        user_upn: Some(upn.into()),
        ..event(id)
    };
    let new = |id: &str, app: &str, name: Option<&str>, upn: &str| Event {
        creation_time: crate::time::ts(Utc::now() - TimeDelta::days(1)),
        ..old(id, app, name, upn)
    };
    s.commit(&[unit(
        "b1",
        vec![
            old("o1", "app-a", Some("Gone name"), "gone@x.com"),
            new("n1", "app-a", None, "kept@x.com"),
            old("o2", "app-b", Some("Kept name"), "kept@x.com"),
            new("n2", "app-b", Some("Kept name"), "kept@x.com"),
        ],
        4,
    )])
    .unwrap();
    let pruned = s
        .prune(PruneScope {
            cutoff: Utc::now() - TimeDelta::days(400),
            include_fetchable: false,
        })
        .unwrap();
    assert_eq!(pruned.events, 2);
    let apps = s.report_apps(&ReportFilter::default()).unwrap();
    let names: Vec<(Option<String>, Option<String>)> =
        apps.into_iter().map(|a| (a.app_id, a.app_name)).collect();
    assert!(names.contains(&(Some("app-a".into()), None)), "{names:?}");
    assert!(
        names.contains(&(Some("app-b".into()), Some("Kept name".into()))),
        "{names:?}"
    );
    let left = |sql: &str| -> Vec<String> {
        s.conn
            .prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(left("SELECT key FROM people ORDER BY key"), ["kept@x.com"]);
    assert!(!left("SELECT value FROM terms").contains(&"gone@x.com".to_owned()));
    // The writer's caches were emptied with them: a new event of the pruned user is stored whole.
    s.commit(&[unit("b2", vec![new("n3", "app-c", None, "gone@x.com")], 1)])
        .unwrap();
    let user: Option<String> = s
        .conn
        .query_row(
            "SELECT user_key FROM audit_events WHERE id = 'n3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(user.as_deref(), Some("gone@x.com"));
}

#[test]
fn sizes_read_as_a_person_writes_them() {
    use crate::store::size_in_words as size;
    assert_eq!(size(0), "0 bytes");
    assert_eq!(size(999), "999 bytes");
    assert_eq!(size(740_400), "740 KB");
    assert_eq!(size(905_216), "905 KB");
    assert_eq!(size(12_345_678), "12.3 MB");
    assert_eq!(size(4_512_000_000), "4.51 GB");
}

/// A row another program inserted with a time in another shape and an app id in capitals is, after
/// the next writer, stored as auditsync stores its own: RFC 3339 UTC and a lower-case GUID, so it is
/// one app with the launches auditsync stored, named by the latest launch.
#[test]
fn rows_inserted_through_the_view_are_stored_in_the_stored_form_by_the_next_writer() {
    const APP: &str = "2222222a-2222-4222-8222-222222222222";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let mut s = open(&p).unwrap();
    s.commit(&[unit(
        "b1",
        vec![Event {
            app_id: Some(APP.into()),
            app_name: Some("Old name".into()),
            creation_time: "2026-01-01T10:00:00Z".into(),
            ..event("own")
        }],
        1,
    )])
    .unwrap();
    drop(s);
    let conn = Connection::open(&p).unwrap();
    conn.execute(
        "INSERT INTO audit_events (id, creation_time, operation, app_id, app_name, raw) \
         VALUES ('ext', '2026-01-05 10:00:00.75', 'LaunchPowerApp', ?1, 'New name', '{}')",
        [APP.to_uppercase()],
    )
    .unwrap();
    drop(conn);
    let s = open(&p).unwrap();
    let row: (String, String) = s
        .conn
        .query_row(
            "SELECT creation_time, app_id FROM audit_events WHERE id = 'ext'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(row, ("2026-01-05T10:00:00Z".to_owned(), APP.to_owned()));
    let apps = s.report_apps(&ReportFilter::default()).unwrap();
    let apps: Vec<(Option<&str>, Option<&str>, i64)> = apps
        .iter()
        .map(|a| (a.app_id.as_deref(), a.app_name.as_deref(), a.launches))
        .collect();
    assert_eq!(apps, [(Some(APP), Some("New name"), 2)]);
}

/// Every row of every table, each value as SQLite holds it (text, integer, blob byte for byte).
fn every_row(conn: &Connection) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{t}\" ORDER BY rowid"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (t, rows)
        })
        .collect()
}

/// FNV-1a (64 bits) of `bytes`: a fingerprint of a text too large to keep as a fixture.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Schema 3 (issue 11's release, `fixtures/v3.sql`, written by that release's sync and import)
/// upgrades to schema 4 keeping every row of every table as it was, value for value (the compressed
/// raw records byte for byte); `auditsync export --format jsonl` gives what that release's export gave
/// (its 1,381 lines, 2,575,129 bytes, FNV-1a 0xf6249b8c2642813e: `export-v3.jsonl`, not kept here for
/// its size); the reports equal that release's (`fixtures/report-v3-*.json`); and the query ledger
/// `graph_queries` is there, empty.
#[test]
fn a_version_3_database_upgrades_to_schema_4_keeping_every_row_raw_record_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v3.db");
    let conn = Connection::open(&p).unwrap();
    // A dump does not keep auto_vacuum, which schema 3's databases have.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
        .unwrap();
    conn.execute_batch(&format!(
        "BEGIN; {} COMMIT;",
        include_str!("fixtures/v3.sql")
    ))
    .unwrap();
    assert_eq!(header(&conn, &p).unwrap(), (APPLICATION_ID, 3));
    let before = every_row(&conn);
    let events = before.iter().find(|(t, _)| t == "events").unwrap();
    assert_eq!(events.1.len(), 1_381);
    assert!(!before.iter().any(|(t, _)| t == "graph_queries"));
    drop(conn);

    let s = open(&p).unwrap();
    assert_eq!(
        header(&s.conn, &p).unwrap(),
        (APPLICATION_ID, SCHEMA_VERSION)
    );
    assert_eq!(SCHEMA_VERSION, 4);
    let mut after = every_row(&s.conn);
    let at = after
        .iter()
        .position(|(t, _)| t == "graph_queries")
        .unwrap();
    assert_eq!(
        after.remove(at).1,
        Vec::<Vec<rusqlite::types::Value>>::new()
    );
    assert!(after == before, "every row of every table as it was");
    assert!(
        schema(&s.conn)
            .iter()
            .any(|t| t.starts_with("index graph_queries_window graph_queries")),
        "{:?}",
        schema(&s.conn)
    );
    assert!(s.graph_queries(QueryPurpose::Backfill).unwrap().is_empty());
    assert!(s.graph_queries(QueryPurpose::Verify).unwrap().is_empty());
    // The export, byte for byte as that release wrote it.
    let mut out = Vec::new();
    s.export((None, None), &mut |e| {
        crate::report::export_jsonl_row(&mut out, e)
    })
    .unwrap();
    assert_eq!(
        (out.iter().filter(|b| **b == b'\n').count(), out.len()),
        (1_381, 2_575_129)
    );
    assert_eq!(fnv1a(&out), 0xf624_9b8c_2642_813e);
    // The reports say what schema 3's said.
    let all = ReportFilter::default();
    let as_json = |report: crate::report::Report| {
        let mut out = Vec::new();
        crate::report::json(&mut out, &report).unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let fixture = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    use crate::report::Report;
    for (report, expected) in [
        (
            Report::Apps(s.report_apps(&all).unwrap()),
            include_str!("fixtures/report-v3-apps.json"),
        ),
        (
            Report::Users(s.report_users(&all).unwrap()),
            include_str!("fixtures/report-v3-users.json"),
        ),
        (
            Report::Daily(s.report_daily(&all).unwrap()),
            include_str!("fixtures/report-v3-daily.json"),
        ),
        (
            Report::Monthly(s.report_monthly(&all).unwrap()),
            include_str!("fixtures/report-v3-monthly.json"),
        ),
        (
            Report::Environments(s.report_environments(&all).unwrap()),
            include_str!("fixtures/report-v3-environments.json"),
        ),
    ] {
        assert_eq!(as_json(report), fixture(expected));
    }
    drop(s);
    // Readers take it now.
    let r = SqliteStore::open_read(&p).unwrap();
    assert_eq!(r.events_by_operation().unwrap()[0].events, 1_381);
}

fn at(s: &str) -> DateTime<Utc> {
    parse_stored(s).unwrap()
}

/// A ledger row of `purpose` over `[start, end)`, not stored yet.
fn query(purpose: QueryPurpose, start: &str, end: &str) -> QueryRow {
    QueryRow {
        id: None,
        purpose,
        window: (at(start), at(end)),
        display_name: format!("auditsync {} {start}/{end}", purpose.as_str()),
        query_id: None,
        state: QueryState::Submitting,
        service_status: None,
        records_read: None,
        approximate_count: None,
        limit_exceeded: false,
        events_new: None,
        submitted_at: at("2026-06-10T08:00:00Z"),
        updated_at: at("2026-06-10T08:00:00Z"),
        loaded_at: None,
        error: None,
    }
}

/// An event of `operation` at `time`.
fn event_at(id: &str, time: &str, operation: &str) -> Event {
    Event {
        creation_time: time.into(),
        operation: operation.into(),
        raw: format!(r#"{{"Id":"{id}","CreationTime":"{time}","Operation":"{operation}"}}"#),
        ..event(id)
    }
}

#[test]
fn query_states_and_purposes_read_back_as_written() {
    for state in QueryState::ALL {
        assert_eq!(QueryState::parse(state.as_str()), Some(state));
    }
    let texts: HashSet<&str> = QueryState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(texts.len(), 6);
    assert_eq!(QueryState::parse("Loaded"), None);
    assert_eq!(QueryState::parse(""), None);
    for purpose in [QueryPurpose::Backfill, QueryPurpose::Verify] {
        assert_eq!(QueryPurpose::parse(purpose.as_str()), Some(purpose));
    }
    assert_eq!(QueryPurpose::Backfill.as_str(), "backfill");
    assert_eq!(QueryPurpose::Verify.as_str(), "verify");
    assert_eq!(QueryPurpose::parse("sync"), None);
}

/// Every value of a ledger row reads back as saved (in every state), rows come by window start then
/// id, and each purpose reads only its own; the rows outlive the store and any prune.
#[test]
fn the_query_ledger_keeps_every_value_in_window_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let mut s = open(&p).unwrap();
    let mut saved = Vec::new();
    // Saved out of window order; two rows of the same window (a query submitted again).
    for (i, (start, end)) in [
        ("2026-06-03T00:00:00Z", "2026-06-04T00:00:00Z"),
        ("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"),
        ("2026-06-02T00:00:00Z", "2026-06-02T12:00:00Z"),
        ("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"),
        ("2026-06-02T12:00:00Z", "2026-06-03T00:00:00Z"),
        ("2026-05-31T00:00:00Z", "2026-06-01T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut q = query(QueryPurpose::Backfill, start, end);
        q.state = QueryState::ALL[i];
        q.query_id = Some(format!("q-{i}"));
        q.service_status = Some("succeeded".into());
        q.records_read = Some(u64::try_from(i).unwrap() * 1_000);
        q.approximate_count = Some(1_000_001 + u64::try_from(i).unwrap());
        q.limit_exceeded = i % 2 == 1;
        q.events_new = Some(u64::try_from(i).unwrap());
        q.submitted_at = at("2026-06-10T08:00:01Z") + TimeDelta::minutes(i64::try_from(i).unwrap());
        q.updated_at = q.submitted_at + TimeDelta::seconds(30);
        q.loaded_at = Some(q.updated_at);
        q.error = Some(format!("error {i}"));
        q.id = Some(s.save_query(&q).unwrap());
        saved.push(q);
    }
    // The unset values too.
    let mut bare = query(
        QueryPurpose::Verify,
        "2026-06-01T00:00:00Z",
        "2026-06-01T01:00:00Z",
    );
    bare.id = Some(s.save_query(&bare).unwrap());
    let mut expected = saved.clone();
    expected.sort_by_key(|q| (q.window.0, q.id));
    assert_eq!(s.graph_queries(QueryPurpose::Backfill).unwrap(), expected);
    assert_eq!(
        s.graph_queries(QueryPurpose::Verify).unwrap(),
        [bare.clone()]
    );
    let ids: HashSet<i64> = saved.iter().chain([&bare]).filter_map(|q| q.id).collect();
    assert_eq!(ids.len(), 7);
    // Prune deletes events, never the ledger.
    s.prune(PruneScope {
        cutoff: Utc::now() + TimeDelta::days(1),
        include_fetchable: true,
    })
    .unwrap();
    drop(s);
    let r = SqliteStore::open_read(&p).unwrap();
    assert_eq!(r.graph_queries(QueryPurpose::Backfill).unwrap(), expected);
    assert_eq!(r.graph_queries(QueryPurpose::Verify).unwrap(), [bare]);
    // The error is redacted as it is stored.
    drop(r);
    let mut s = open(&p).unwrap();
    let mut leaky = query(
        QueryPurpose::Verify,
        "2026-06-01T00:00:00Z",
        "2026-06-01T01:00:00Z",
    );
    leaky.error = Some("403: Authorization: Bearer abc.def.ghi".into());
    s.save_query(&leaky).unwrap();
    let stored = s.graph_queries(QueryPurpose::Verify).unwrap();
    let error = stored[1].error.as_deref().unwrap();
    assert!(!error.contains("abc.def.ghi"), "{error}");
}

/// `save_query` inserts a row without an id and returns it, then updates that row in place, durable
/// at once (a reader sees it); an id no row has is refused.
#[test]
fn save_query_inserts_then_updates_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let mut s = open(&p).unwrap();
    let mut q = query(
        QueryPurpose::Backfill,
        "2026-06-01T00:00:00Z",
        "2026-06-02T00:00:00Z",
    );
    let id = s.save_query(&q).unwrap();
    q.id = Some(id);
    assert_eq!(
        SqliteStore::open_read(&p)
            .unwrap()
            .graph_queries(QueryPurpose::Backfill)
            .unwrap(),
        [q.clone()]
    );
    q.state = QueryState::Submitted;
    q.query_id = Some("7b5c…".into());
    q.service_status = Some("notStarted".into());
    q.updated_at = at("2026-06-10T08:05:00Z");
    assert_eq!(s.save_query(&q).unwrap(), id);
    assert_eq!(
        SqliteStore::open_read(&p)
            .unwrap()
            .graph_queries(QueryPurpose::Backfill)
            .unwrap(),
        [q.clone()],
        "updated in place, committed at once"
    );
    let mut unknown = q.clone();
    unknown.id = Some(id + 100);
    let err = s.save_query(&unknown).unwrap_err();
    assert!(matches!(err, StoreError::Write { .. }), "{err}");
    assert!(err.to_string().contains("no row"), "{err}");
    assert_eq!(s.graph_queries(QueryPurpose::Backfill).unwrap(), [q]);
}

/// Submissions are the rows submitted at or after a time, whatever their purpose or state.
#[test]
fn submissions_are_counted_from_a_time_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    assert_eq!(
        s.graph_submissions_since(at("2000-01-01T00:00:00Z"))
            .unwrap(),
        0
    );
    for (purpose, submitted, state) in [
        (
            QueryPurpose::Backfill,
            "2026-06-09T07:59:59Z",
            QueryState::Loaded,
        ),
        (
            QueryPurpose::Backfill,
            "2026-06-09T08:00:00Z",
            QueryState::Failed,
        ),
        (
            QueryPurpose::Verify,
            "2026-06-09T12:00:00Z",
            QueryState::Submitted,
        ),
        (
            QueryPurpose::Backfill,
            "2026-06-10T07:00:00Z",
            QueryState::Submitting,
        ),
    ] {
        let mut q = query(purpose, "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z");
        q.submitted_at = at(submitted);
        q.state = state;
        q.query_id = (state != QueryState::Submitting).then(|| format!("query {submitted}"));
        s.save_query(&q).unwrap();
    }
    // A submission the service refused (HTTP 429: no query id, state failed) used no allowance.
    let mut refused = query(
        QueryPurpose::Backfill,
        "2026-06-02T00:00:00Z",
        "2026-06-03T00:00:00Z",
    );
    refused.submitted_at = at("2026-06-09T09:00:00Z");
    refused.state = QueryState::Failed;
    s.save_query(&refused).unwrap();
    let since = |t: &str| s.graph_submissions_since(at(t)).unwrap();
    assert_eq!(since("2026-06-09T08:00:00Z"), 3);
    assert_eq!(since("2026-06-09T07:59:59Z"), 4);
    assert_eq!(since("2026-06-09T08:00:01Z"), 2);
    assert_eq!(since("2026-06-10T07:00:00Z"), 1);
    assert_eq!(since("2026-06-10T07:00:01Z"), 0);
}

/// `launch_ids`: the stored events of the operations asked for, from any source, with
/// `from <= CreationTime < to` to the second (a fraction rounds up), oldest first.
#[test]
fn launch_ids_are_the_events_of_the_operations_asked_in_from_to_by_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a.db")).unwrap();
    s.commit(&[unit(
        "b1",
        vec![
            event_at("c", "2026-06-01T10:00:02Z", "LaunchPowerApp"),
            event_at("a", "2026-06-01T09:59:59Z", "LaunchPowerApp"),
            event_at("x", "2026-06-01T10:00:01Z", "DeletePowerApp"),
        ],
        3,
    )])
    .unwrap();
    s.insert_events(
        &[
            event_at("b", "2026-06-01T10:00:00Z", "LaunchPowerApp"),
            event_at("d", "2026-06-01T10:00:03Z", "LaunchPowerApp"),
            event_at("y", "2026-06-01T10:00:02Z", "PublishPowerApp"),
        ],
        "import:x.csv",
    )
    .unwrap();
    let ops = |o: &[&str]| o.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let ids = |from: &str, to: &str, o: &[&str]| -> Vec<(String, String)> {
        s.launch_ids(at(from), at(to), &ops(o))
            .unwrap()
            .into_iter()
            .map(|(id, t)| (id, ts(t)))
            .collect()
    };
    let launch = ["LaunchPowerApp"];
    assert_eq!(
        ids("2026-06-01T10:00:00Z", "2026-06-01T10:00:03Z", &launch),
        [
            ("b".to_owned(), "2026-06-01T10:00:00Z".to_owned()),
            ("c".to_owned(), "2026-06-01T10:00:02Z".to_owned())
        ]
    );
    let names = |from: &str, to: &str, o: &[&str]| -> Vec<String> {
        ids(from, to, o).into_iter().map(|(id, _)| id).collect()
    };
    // A fraction rounds up on both sides.
    assert_eq!(
        names("2026-06-01T09:59:59.5Z", "2026-06-01T10:00:02.5Z", &launch),
        ["b", "c"]
    );
    assert_eq!(
        names(
            "2026-06-01T09:59:59Z",
            "2026-06-01T10:00:03.000001Z",
            &launch
        ),
        ["a", "b", "c", "d"]
    );
    assert!(names("2026-06-01T10:00:01Z", "2026-06-01T10:00:02Z", &launch).is_empty());
    assert!(names("2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z", &launch).is_empty());
    // Only the operations asked for, merged by time; an operation never stored matches nothing.
    assert_eq!(
        names(
            "2026-06-01T00:00:00Z",
            "2026-06-02T00:00:00Z",
            &[
                "PublishPowerApp",
                "LaunchPowerApp",
                "DeletePowerApp",
                "LaunchPowerApp"
            ]
        ),
        ["a", "b", "x", "c", "y", "d"]
    );
    assert_eq!(
        names(
            "2026-06-01T00:00:00Z",
            "2026-06-02T00:00:00Z",
            &["DeletePowerApp"]
        ),
        ["x"]
    );
    assert!(
        names(
            "2026-06-01T00:00:00Z",
            "2026-06-02T00:00:00Z",
            &["launchpowerapp", "Nothing"]
        )
        .is_empty()
    );
    assert!(names("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z", &[]).is_empty());
}

/// The Ids of `verify` are one range of the index `events_time` (operation, time) per operation.
#[test]
fn launch_ids_read_one_index_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("a.db")).unwrap();
    let plan: Vec<String> = s
        .conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            super::queries::LAUNCH_IDS
        ))
        .unwrap()
        .query_map(params![1, 2, 3], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        plan,
        ["SEARCH events USING INDEX events_time (operation=? AND <expr>>? AND <expr><?)"]
    );
}

/// A store at `p` holding a launch from sync (`sync-1`) and one imported (`imp-1`), and a backfill
/// query for 2026-06-01 submitted (its ledger row saved).
fn synced_imported_and_submitted(p: &Path) -> (SqliteStore, QueryRow) {
    let mut s = open(p).unwrap();
    s.commit(&[unit(
        "b1",
        vec![event_at("sync-1", "2026-06-01T01:00:00Z", "LaunchPowerApp")],
        1,
    )])
    .unwrap();
    s.insert_events(
        &[event_at("imp-1", "2026-06-01T02:00:00Z", "LaunchPowerApp")],
        "import:a.csv",
    )
    .unwrap();
    let mut q = query(
        QueryPurpose::Backfill,
        "2026-06-01T00:00:00Z",
        "2026-06-02T00:00:00Z",
    );
    q.state = QueryState::Submitted;
    q.id = Some(s.save_query(&q).unwrap());
    (s, q)
}

/// A window's events and its ledger row commit together: staged events are not stored (nor seen by
/// a reader) until `commit_staged`; a writer dropped before it stores neither; a failing
/// `stage_query` (no id, or an id no row has) rolls back the events staged with it. Ids stored by
/// sync or import are not stored again nor counted new.
#[test]
fn staged_events_and_their_query_row_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let (mut s, q) = synced_imported_and_submitted(&p);
    let submitted = q.clone();
    let window = |ids: &[&str]| -> Vec<Event> {
        ids.iter()
            .map(|id| event_at(id, "2026-06-01T03:00:00Z", "LaunchPowerApp"))
            .collect()
    };
    let ledger = |p: &Path| {
        SqliteStore::open_read(p)
            .unwrap()
            .graph_queries(QueryPurpose::Backfill)
            .unwrap()
    };
    let source = "graph:backfill";

    // Dropped before the commit: neither the events nor the row.
    assert_eq!(
        s.stage_events(&window(&["g-1", "sync-1"]), source).unwrap(),
        1
    );
    assert_eq!(
        s.stage_events(&window(&["g-2", "imp-1", "g-1"]), source)
            .unwrap(),
        1
    );
    let mut loaded = q.clone();
    loaded.state = QueryState::Loaded;
    loaded.records_read = Some(5);
    loaded.events_new = Some(2);
    loaded.loaded_at = Some(at("2026-06-10T09:00:00Z"));
    s.stage_query(&loaded).unwrap();
    drop(s);
    let mut s = open(&p).unwrap();
    assert_eq!(event_ids(&s), ["imp-1", "sync-1"]);
    assert_eq!(ledger(&p), std::slice::from_ref(&submitted));

    // A failing stage_query rolls back what was staged with it.
    s.stage_events(&window(&["g-1"]), source).unwrap();
    let mut unsaved = loaded.clone();
    unsaved.id = None;
    let err = s.stage_query(&unsaved).unwrap_err();
    assert!(matches!(err, StoreError::Write { .. }), "{err}");
    s.commit_staged().unwrap();
    assert_eq!(event_ids(&s), ["imp-1", "sync-1"]);
    s.stage_events(&window(&["g-1"]), source).unwrap();
    let mut gone = loaded.clone();
    gone.id = Some(q.id.unwrap() + 1);
    assert!(
        s.stage_query(&gone)
            .unwrap_err()
            .to_string()
            .contains("no row")
    );
    s.commit_staged().unwrap();
    assert_eq!(event_ids(&s), ["imp-1", "sync-1"]);
    assert_eq!(ledger(&p), [submitted]);
}

/// Staged events and their ledger row are unseen by a reader until committed, then stored at once;
/// Ids stored by sync or import (or an earlier query) are not stored again nor counted new; the
/// events keep their raw record and name their source as import's do; `save_query` commits what is
/// staged first.
#[test]
fn staged_events_and_their_query_row_commit_at_once_deduplicated_on_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let (mut s, q) = synced_imported_and_submitted(&p);
    let submitted = q.clone();
    let mut loaded = q.clone();
    loaded.state = QueryState::Loaded;
    loaded.records_read = Some(5);
    loaded.events_new = Some(2);
    loaded.loaded_at = Some(at("2026-06-10T09:00:00Z"));
    let window = |ids: &[&str]| -> Vec<Event> {
        ids.iter()
            .map(|id| event_at(id, "2026-06-01T03:00:00Z", "LaunchPowerApp"))
            .collect()
    };
    let ledger = |p: &Path| {
        SqliteStore::open_read(p)
            .unwrap()
            .graph_queries(QueryPurpose::Backfill)
            .unwrap()
    };
    let source = "graph:backfill";

    // Staged, unseen by a reader until committed, then both at once.
    assert_eq!(
        s.stage_events(&window(&["g-1", "sync-1", "g-2"]), source)
            .unwrap(),
        2
    );
    s.stage_query(&loaded).unwrap();
    assert_eq!(ledger(&p), [submitted]);
    s.commit_staged().unwrap();
    assert_eq!(event_ids(&s), ["g-1", "g-2", "imp-1", "sync-1"]);
    assert_eq!(ledger(&p), [loaded.clone()]);
    // The source as import's: a content id without a content type.
    let sources: Vec<(Option<String>, Option<String>)> = s
        .conn
        .prepare("SELECT DISTINCT content_id, content_type FROM audit_events WHERE id LIKE 'g-%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sources, [(Some(source.to_owned()), None)]);
    // The raw record kept as given.
    let mut raws = Vec::new();
    s.export((None, None), &mut |e| {
        raws.push((e.id.clone(), e.raw.clone()));
        Ok(())
    })
    .unwrap();
    assert!(raws.contains(&("g-1".to_owned(), window(&["g-1"])[0].raw.clone())));
    // Again: nothing is new.
    assert_eq!(s.stage_events(&window(&["g-1", "g-2"]), source).unwrap(), 0);
    s.commit_staged().unwrap();

    // save_query commits what is staged first.
    s.stage_events(&window(&["g-3"]), source).unwrap();
    let mut next = query(
        QueryPurpose::Backfill,
        "2026-06-02T00:00:00Z",
        "2026-06-03T00:00:00Z",
    );
    next.id = Some(s.save_query(&next).unwrap());
    drop(s);
    let s = open(&p).unwrap();
    assert!(event_ids(&s).contains(&"g-3".to_owned()));
    assert_eq!(ledger(&p), [loaded, next]);
}
