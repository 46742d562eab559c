//! The SQLite store: the only module that speaks SQL.
//!
//! Tables (see `migrations.rs`): `audit_events` (the public interface for reports and dashboards),
//! `blob_ledger` (a row exists exactly when that blob's events are stored: both commit in one
//! transaction), `pending_blobs` (listed but not yet stored), `runs` and `state` (the watermark).

mod lock;
mod maintenance;
mod migrations;
mod reports;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::extract::Event;
use crate::time::{parse_stored, ts};

pub use lock::RunLock;
pub use maintenance::Pruned;
pub use migrations::SCHEMA_VERSION;
pub use reports::{
    AppRow, DayRow, PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS, ReportFilter, UserRow,
};

/// `PRAGMA application_id` of an auditsync database ("AUDS"), so that another program's SQLite file
/// is recognised and never written to.
const APPLICATION_ID: i32 = 0x4155_4453;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database path {0} is a directory; set `database` to a file path such as auditsync.db"
    )]
    IsDirectory(PathBuf),
    #[error(
        "{0} is not an auditsync database (it is another program's file or not SQLite at all); auditsync will \
         not touch it: set `database` to a new file"
    )]
    Foreign(PathBuf),
    #[error(
        "{path} was written by a newer auditsync (schema {found}, this one knows up to {known}); upgrade \
         auditsync, or point `database` at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "another sync is running on {database} ({owner}); this run waited {waited} s and stops. If syncs \
         overlap often, run them less often or raise --wait"
    )]
    Busy {
        database: PathBuf,
        owner: String,
        waited: u64,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot write to the database {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot read the database {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::IsDirectory(_) | StoreError::Foreign(_) | StoreError::TooNew { .. } => 2,
            _ => 1,
        }
    }
}

/// A blob as listed by `subscriptions/content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub content_type: String,
    pub content_id: String,
    pub content_uri: String,
    pub created: DateTime<Utc>,
    pub expiration: Option<DateTime<Utc>>,
}

/// A fetched blob's kept events, ready to commit with its ledger row.
#[derive(Debug)]
pub struct StoredBlob {
    pub blob: BlobRef,
    pub events: Vec<Event>,
    pub records_seen: usize,
}

/// A blob listed but not stored yet.
#[derive(Debug, Clone)]
pub struct Pending {
    pub content_id: String,
    pub content_type: String,
    pub created: DateTime<Utc>,
    pub expiration: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A finished (or interrupted) sync run, as `status` shows it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub summary: Option<String>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Looks at a database without changing it: its schema version, and whether this process may write
    /// it. `None` when there is no file.
    pub fn inspect(path: &Path) -> Result<Option<(i64, bool)>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        Store::check_path(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
            |source| StoreError::Open {
                path: path.to_owned(),
                source,
            },
        )?;
        let foreign = |_| StoreError::Foreign(path.to_owned());
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(foreign)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(foreign)?;
        if app_id != APPLICATION_ID {
            return Err(StoreError::Foreign(path.to_owned()));
        }
        let writable = std::fs::OpenOptions::new().write(true).open(path).is_ok();
        Ok(Some((version, writable)))
    }

    /// Refuses a `database` path that cannot be a database file (a directory), before anything is
    /// created next to it.
    pub fn check_path(path: &Path) -> Result<(), StoreError> {
        if path.is_dir() {
            return Err(StoreError::IsDirectory(path.to_owned()));
        }
        Ok(())
    }

    /// Opens (creating if needed) the database at `path`, refusing a directory, another program's file
    /// or a newer schema, and applies any pending migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::check_path(path)?;
        let open_err = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) => {
                map_write(path, source)
            }
            _ => StoreError::Open {
                path: path.to_owned(),
                source,
            },
        };
        // SQLite would open a file it may not write read-only, and fail later on its journal.
        if path.exists()
            && let Err(e) = std::fs::OpenOptions::new().write(true).open(path)
        {
            return Err(StoreError::Write {
                path: path.to_owned(),
                reason: match e.kind() {
                    std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::PermissionDenied => {
                        format!("it is read-only ({e}); check its permissions and the mount")
                    }
                    _ => e.to_string(),
                },
            });
        }
        let existed = path.exists()
            && std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // SQLite's lower() folds ASCII only; UPNs may hold any letter.
        conn.create_scalar_function(
            "fold_case",
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                Ok(match ctx.get_raw(0) {
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(String::from_utf8_lossy(t).to_lowercase())
                    }
                    rusqlite::types::ValueRef::Null => None,
                    other => Some(format!("{other:?}")),
                })
            },
        )
        .map_err(open_err)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        // Reading the header fails with NOTADB on a file that is not SQLite.
        let app_id: i32 = store
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => StoreError::Foreign(path.to_owned()),
                _ => open_err(e),
            })?;
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        let tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(open_err)?;
        if existed && app_id != APPLICATION_ID && (tables > 0 || version > 0) {
            return Err(StoreError::Foreign(path.to_owned()));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        store
            .conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| store.write_err(e))?;
        migrations::migrate(&mut store.conn, APPLICATION_ID).map_err(|e| store.write_err(e))?;
        Ok(store)
    }

    fn write_err(&self, e: rusqlite::Error) -> StoreError {
        map_write(&self.path, e)
    }

    fn read_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            source,
        }
    }

    /// Content ids already stored whose blobs were created at or after `since`.
    pub fn stored_since(&self, since: DateTime<Utc>) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT content_id FROM blob_ledger WHERE content_created >= ?1")
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([ts(since)], |r| r.get::<_, String>(0))
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }

    /// Remembers listed blobs that are not stored yet.
    pub fn add_pending(&mut self, blobs: &[BlobRef]) -> Result<(), StoreError> {
        let now = ts(Utc::now());
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO pending_blobs (content_id, content_type, content_uri, content_created, \
                     content_expiration, first_listed) SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                     WHERE NOT EXISTS (SELECT 1 FROM blob_ledger WHERE content_id = ?1) \
                     ON CONFLICT(content_id) DO UPDATE SET content_uri = excluded.content_uri",
                )
                .map_err(|e| map_write(&self.path, e))?;
            for b in blobs {
                stmt.execute(params![
                    b.content_id,
                    b.content_type,
                    b.content_uri,
                    ts(b.created),
                    b.expiration.map(ts),
                    now
                ])
                .map_err(|e| map_write(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| map_write(&self.path, e))
    }

    /// Commits blobs' events and their ledger rows, and clears them from the pending list, in one
    /// transaction: either all of it is stored or none.
    /// Returns how many events were new.
    pub fn store_blobs(&mut self, blobs: &[StoredBlob]) -> Result<usize, StoreError> {
        let now = ts(Utc::now());
        let mut inserted = 0;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        {
            let mut event = tx
                .prepare_cached(INSERT_EVENT)
                .map_err(|e| map_write(&self.path, e))?;
            let mut ledger = tx
                .prepare_cached(
                    "INSERT INTO blob_ledger (content_id, content_type, content_created, content_expiration, \
                     stored_at, records_seen, records_kept) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(content_id) DO NOTHING",
                )
                .map_err(|e| map_write(&self.path, e))?;
            let mut unpend = tx
                .prepare_cached("DELETE FROM pending_blobs WHERE content_id = ?1")
                .map_err(|e| map_write(&self.path, e))?;
            for b in blobs {
                for e in &b.events {
                    inserted += insert_event(
                        &mut event,
                        e,
                        Some(&b.blob.content_type),
                        &b.blob.content_id,
                    )
                    .map_err(|e| map_write(&self.path, e))?;
                }
                ledger
                    .execute(params![
                        b.blob.content_id,
                        b.blob.content_type,
                        ts(b.blob.created),
                        b.blob.expiration.map(ts),
                        now,
                        b.records_seen as i64,
                        b.events.len() as i64
                    ])
                    .map_err(|e| map_write(&self.path, e))?;
                unpend
                    .execute([&b.blob.content_id])
                    .map_err(|e| map_write(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| map_write(&self.path, e))?;
        Ok(inserted)
    }

    /// Notes a failed fetch on a pending blob.
    pub fn note_failure(&mut self, content_id: &str, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE pending_blobs SET attempts = attempts + 1, last_error = ?2 WHERE content_id = ?1",
                params![content_id, error],
            )
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    /// Pending blobs that expired before they could be stored and were not reported yet. They are
    /// marked reported by the [`Store::finish_run`] that reports them, so each is reported once (and
    /// again by the next run if this one dies first).
    pub fn lost(&self, now: DateTime<Utc>) -> Result<Vec<Pending>, StoreError> {
        self.pending_rows(Some(now))
    }

    /// Blobs listed but not stored yet, and not given up as lost.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        self.pending_rows(None)
    }

    /// How many blobs were lost (expired before they could be stored).
    pub fn lost_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM pending_blobs WHERE lost_reported = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.read_err(e))
    }

    /// Pending blobs not reported lost; with `expired_by`, only those expired by then.
    fn pending_rows(&self, expired_by: Option<DateTime<Utc>>) -> Result<Vec<Pending>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT content_id, content_type, content_created, content_expiration, attempts, last_error \
                 FROM pending_blobs WHERE lost_reported = 0 AND (?1 IS NULL OR content_expiration <= ?1) \
                 ORDER BY content_expiration",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([expired_by.map(ts)], |r| {
                Ok(Pending {
                    content_id: r.get(0)?,
                    content_type: r.get(1)?,
                    created: parse_stored(&r.get::<_, String>(2)?).unwrap_or_default(),
                    expiration: r
                        .get::<_, Option<String>>(3)?
                        .as_deref()
                        .and_then(parse_stored),
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                })
            })
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }

    pub fn watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM state WHERE key = 'watermark'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.read_err(e))?;
        Ok(v.as_deref().and_then(parse_stored))
    }

    pub fn set_watermark(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES ('watermark', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [ts(at)],
            )
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    /// Records the start of a run; returns its id for [`Store::finish_run`].
    pub fn begin_run(&mut self, window: (DateTime<Utc>, DateTime<Utc>)) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, window_start, window_end) VALUES (?1, ?2, ?3)",
                params![ts(Utc::now()), ts(window.0), ts(window.1)],
            )
            .map_err(|e| self.write_err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended, and marks the lost blobs it reported, in one transaction.
    pub fn finish_run(
        &mut self,
        id: i64,
        outcome: &str,
        summary: &str,
        reported_lost: &[String],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        tx.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, summary = ?4 WHERE id = ?1",
            params![id, ts(Utc::now()), outcome, summary],
        )
        .map_err(|e| map_write(&self.path, e))?;
        for content_id in reported_lost {
            tx.execute(
                "UPDATE pending_blobs SET lost_reported = 1 WHERE content_id = ?1",
                [content_id],
            )
            .map_err(|e| map_write(&self.path, e))?;
        }
        tx.commit().map_err(|e| map_write(&self.path, e))
    }

    pub fn last_run(&self) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT started_at, finished_at, outcome, summary FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(RunRecord {
                        started_at: r.get(0)?,
                        finished_at: r.get(1)?,
                        outcome: r.get(2)?,
                        summary: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.read_err(e))
    }

    /// Rows per operation with their first and last creation time.
    pub fn events_by_operation(&self) -> Result<Vec<(String, i64, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT operation, count(*), min(creation_time), max(creation_time) FROM audit_events \
                 GROUP BY operation ORDER BY operation",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }

    pub fn ledger_size(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM blob_ledger", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    /// All event ids, sorted.
    #[cfg(test)]
    pub fn event_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM audit_events ORDER BY id")
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }
}

/// An event's row; the same event again (same `Id`) changes nothing.
const INSERT_EVENT: &str = "INSERT INTO audit_events (id, creation_time, operation, workload, record_type, \
     user_id, app_id, app_name, environment_id, content_type, content_id, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(id) DO NOTHING";

/// Inserts one event with [`INSERT_EVENT`]; 1 if it was new, 0 if it was stored already.
fn insert_event(
    stmt: &mut rusqlite::CachedStatement<'_>,
    e: &Event,
    content_type: Option<&str>,
    content_id: &str,
) -> rusqlite::Result<usize> {
    stmt.execute(params![
        e.id,
        e.creation_time,
        e.operation,
        e.workload,
        e.record_type,
        e.user_id,
        e.app_id,
        e.app_name,
        e.environment_id,
        content_type,
        content_id,
        e.raw
    ])
}

fn map_write(path: &Path, e: rusqlite::Error) -> StoreError {
    let reason = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "the disk is full; free some space".to_owned(),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            "the database or its folder is read-only; check the permissions".to_owned()
        }
        Some(rusqlite::ErrorCode::CannotOpen) => {
            "it cannot be opened for writing; check that its folder \
            exists and is writable (not read-only), and that the disk is not full"
                .to_owned()
        }
        _ => e.to_string(),
    };
    StoreError::Write {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            app_id: None,
            app_name: None,
            environment_id: None,
            raw: "{}".into(),
        }
    }

    #[test]
    fn a_blob_and_its_ledger_row_commit_together_and_events_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db")).unwrap();
        s.add_pending(&[blob("b1"), blob("b2")]).unwrap();
        assert_eq!(s.pending().unwrap().len(), 2);
        s.store_blobs(&[
            StoredBlob {
                blob: blob("b1"),
                events: vec![event("e1"), event("e2")],
                records_seen: 5,
            },
            StoredBlob {
                blob: blob("b2"),
                events: vec![event("e2")],
                records_seen: 1,
            },
        ])
        .unwrap();
        assert_eq!(s.event_ids().unwrap(), ["e1", "e2"]);
        assert_eq!(s.ledger_size().unwrap(), 2);
        assert!(s.pending().unwrap().is_empty());
        // Listing a stored blob again does not make it pending.
        s.add_pending(&[blob("b1")]).unwrap();
        assert!(s.pending().unwrap().is_empty());
        assert_eq!(
            s.stored_since(Utc::now() - chrono::TimeDelta::hours(1))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn refuses_directories_foreign_files_and_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::IsDirectory(_))
        ));

        let text = dir.path().join("notes.txt");
        let notes = "not a database at all, just some text that is long enough";
        std::fs::write(&text, notes).unwrap();
        assert!(matches!(Store::open(&text), Err(StoreError::Foreign(_))));
        assert_eq!(std::fs::read_to_string(&text).unwrap(), notes, "untouched");

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(Store::open(&other), Err(StoreError::Foreign(_))));

        let newer = dir.path().join("newer.db");
        drop(Store::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            Store::open(&newer),
            Err(StoreError::TooNew { .. })
        ));
    }

    #[test]
    fn an_expired_pending_blob_is_reported_lost_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("a.db")).unwrap();
        let now = Utc::now();
        let mut old = blob("old");
        old.expiration = Some(now - chrono::TimeDelta::minutes(1));
        let mut fresh = blob("fresh");
        fresh.expiration = Some(now + chrono::TimeDelta::days(6));
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
        let mut s = Store::open(&p).unwrap();
        let at = parse_stored("2026-11-21T10:00:00Z").unwrap();
        s.set_watermark(at).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.watermark().unwrap(), Some(at));
    }
}
