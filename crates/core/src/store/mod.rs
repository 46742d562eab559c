//! The store: the only module that speaks SQL, behind two traits that any database can implement.
//!
//! [`Reader`] is what `status`, `report` and `doctor` need, and what a run reads before it starts;
//! [`Writer`] adds the writes of `sync`, `import` and `prune`. A store opens two ways:
//! - [`open_write`]: under the [`RunLock`] (so one writer at a time, and a newer auditsync never migrates
//!   the schema under an older one still running), creating the database if needed and migrating it;
//! - [`open_read`]: read-only, never migrating and never changing a byte; it refuses a schema older or
//!   newer than this binary's with the command that fixes it.
//!
//! SQLite (`sqlite/`) is the one implementation; a PostgreSQL one satisfies the same traits. Tables
//! (`migrations.rs`): `audit_events` (the public interface for reports and dashboards), `blob_ledger`
//! (a row exists exactly when that blob's events are stored: both commit in one transaction),
//! `quarantine` (records that could not be read, with their text, committed with their blob's ledger
//! row), `user_identities` (UPN → Entra object id, so a person is counted once),
//! `pending_blobs` (listed but not yet stored), `runs` and `state` (the watermark).

mod lock;
mod reports;
mod sqlite;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::model::{BlobRef, Event, Unit};

pub use lock::RunLock;
pub use reports::{
    AppRow, DayRow, PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS, ReportFilter, UserRow,
};
pub use sqlite::SCHEMA_VERSION;

/// Why the store cannot do what was asked. Exit code 2 for a `database` that cannot be one (a folder,
/// another program's file, a schema this binary does not know); 1 for failures at run time.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `database` names a folder.
    #[error(
        "the database path {0} is a directory; set `database` to a file path such as auditsync.db"
    )]
    IsDirectory(PathBuf),
    /// The file exists but is not an auditsync database; it is left untouched.
    #[error(
        "{0} is not an auditsync database (it is another program's file or not SQLite at all); auditsync will \
         not touch it: set `database` to a new file"
    )]
    Foreign(PathBuf),
    /// The schema is newer than this binary knows.
    #[error(
        "{path} was written by a newer auditsync (schema {found}, this one knows up to {known}); upgrade \
         auditsync, or point `database` at another file"
    )]
    TooNew {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this binary knows ([`SCHEMA_VERSION`]).
        known: i64,
    },
    /// A read-only command met a schema older than this binary's; only a writing command migrates.
    #[error(
        "{path} has schema {found}, older than this auditsync's {known}; run `auditsync sync` once to bring \
         it up to date (status, report and doctor only read, and never change the database)"
    )]
    TooOld {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// This binary's ([`SCHEMA_VERSION`]).
        known: i64,
    },
    /// A read-only command found no database.
    #[error("there is no database at {0} yet; run `auditsync sync` first")]
    Missing(PathBuf),
    /// Another sync, import or prune holds the run lock.
    #[error(
        "another sync is running on {database} ({owner}); this run waited {waited} s and stops. If syncs \
         overlap often, run them less often or raise --wait"
    )]
    Busy {
        /// The database.
        database: PathBuf,
        /// The holder as its lock file says ("pid 123, since …").
        owner: String,
        /// Seconds waited.
        waited: u64,
    },
    /// Readers (status, report, doctor) held the database for longer than the wait.
    #[error(
        "{database} was being read (by status, report or doctor) for all of the {waited} s this run waited; \
         this run stops: run it again, or raise --wait"
    )]
    Reading {
        /// The database.
        database: PathBuf,
        /// Seconds waited.
        waited: u64,
    },
    /// The database's folder does not exist.
    #[error(
        "the folder of the database {0} does not exist; create it, or set `database` to a path in a folder \
         that exists"
    )]
    NoFolder(PathBuf),
    /// The database could not be opened.
    #[error("cannot open the database {path}: {reason}")]
    Open {
        /// The database.
        path: PathBuf,
        /// Why, in the database's words.
        reason: String,
    },
    /// A write failed: full disk, read-only file or folder, …
    #[error("cannot write to the database {path}: {reason}")]
    Write {
        /// The database.
        path: PathBuf,
        /// Why, with what to check.
        reason: String,
    },
    /// A read failed.
    #[error("cannot read the database {path}: {reason}")]
    Read {
        /// The database.
        path: PathBuf,
        /// Why, in the database's words.
        reason: String,
    },
}

impl StoreError {
    /// 2 for a `database` setting that cannot work (fix the configuration), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::IsDirectory(_)
            | StoreError::Foreign(_)
            | StoreError::TooNew { .. }
            | StoreError::TooOld { .. }
            | StoreError::Missing(_)
            | StoreError::NoFolder(_) => 2,
            _ => 1,
        }
    }
}

/// A blob listed but not stored yet (a row of `pending_blobs`).
#[derive(Debug, Clone)]
pub struct Pending {
    /// `contentId`.
    pub content_id: String,
    /// The content type it was listed under.
    pub content_type: String,
    /// `contentCreated`.
    pub created: DateTime<Utc>,
    /// `contentExpiration`: after it the blob cannot be fetched.
    pub expiration: Option<DateTime<Utc>>,
    /// Failed fetches so far.
    pub attempts: i64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

/// A sync run as `runs` keeps it, for `status` and `doctor`.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// When it started; `None` if the stored value is not a time (a row edited by hand).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended; `None` if it was interrupted (or is still going).
    pub finished_at: Option<DateTime<Utc>>,
    /// `complete`, `incomplete` or `failed`; `None` if it did not finish.
    pub outcome: Option<String>,
    /// Its summary as JSON (`sync::Summary`).
    pub summary: Option<String>,
}

/// How many events one operation has, and their first and last creation times (RFC 3339 UTC text).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperationCount {
    /// The operation, e.g. `LaunchPowerApp`.
    pub operation: String,
    /// Rows in `audit_events`.
    pub events: i64,
    /// The earliest `creation_time`.
    pub first: String,
    /// The latest `creation_time`.
    pub last: String,
}

/// A record that could not be read, as the `quarantine` table keeps it (without its text, which stays
/// in the table's `raw` column).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuarantinedRecord {
    /// When it was stored, RFC 3339 UTC.
    pub quarantined_at: String,
    /// Where it came from: the blob's `contentId`.
    pub origin: String,
    /// The blob's content type.
    pub content_type: Option<String>,
    /// Its index in the blob's array, from 0.
    pub position: i64,
    /// Why it could not be read.
    pub reason: String,
}

/// What a prune deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Rows of `audit_events`.
    pub events: usize,
    /// Rows of `blob_ledger`.
    pub ledger_rows: usize,
    /// Rows of `pending_blobs` already reported lost.
    pub lost_blob_rows: usize,
}

/// The reads: what `status`, `report` and `doctor` need, and what a run reads before it starts.
pub trait Reader {
    /// The writer (sync, import or prune) that held the database when this store was opened, as its
    /// lock says ("pid 123, since 2026-11-29T10:15:02Z"); `None` when there was none, or for the
    /// writer itself.
    fn writer(&self) -> Option<&str>;
    /// The end of the last unbroken run of complete segments (see `sync::plan`), if any.
    fn watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The latest watermark an earlier run left (as its summary records it) that is not after `at`:
    /// what a sync trusts instead of a stored watermark in the future (`sync::plan::window`).
    fn watermark_not_after(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The latest run.
    fn last_run(&self) -> Result<Option<RunRecord>, StoreError>;
    /// Content ids in the ledger whose blobs were created at or after `since`.
    fn stored_since(&self, since: DateTime<Utc>) -> Result<HashSet<String>, StoreError>;
    /// Blobs listed but not stored yet, and not given up as lost, first to expire first.
    fn pending(&self) -> Result<Vec<Pending>, StoreError>;
    /// Pending blobs that expired by `now` and were not reported yet. They are marked reported by the
    /// [`Writer::finish_run`] that reports them, so each is reported once (and again by the next run
    /// if this one dies first).
    fn lost(&self, now: DateTime<Utc>) -> Result<Vec<Pending>, StoreError>;
    /// How many blobs were reported lost (expired before they could be stored).
    fn lost_count(&self) -> Result<i64, StoreError>;
    /// Rows in the ledger.
    fn ledger_size(&self) -> Result<i64, StoreError>;
    /// Records quarantined (could not be read; their blobs' other records are stored): how many in
    /// all, and the `newest` most recent, newest first.
    fn quarantine(&self, newest: usize) -> Result<(i64, Vec<QuarantinedRecord>), StoreError>;
    /// Events per operation, by operation name.
    fn events_by_operation(&self) -> Result<Vec<OperationCount>, StoreError>;
    /// The apps report: one row per app, most launched first.
    fn report_apps(&self, filter: &ReportFilter) -> Result<Vec<AppRow>, StoreError>;
    /// The users report: one row per person (see `UserRow`), most launches first.
    fn report_users(&self, filter: &ReportFilter) -> Result<Vec<UserRow>, StoreError>;
    /// The daily report: one row per UTC day with launches, oldest first.
    fn report_daily(&self, filter: &ReportFilter) -> Result<Vec<DayRow>, StoreError>;
}

/// The writes of `sync`, `import` and `prune`. Only [`open_write`] makes one, under the run lock.
pub trait Writer: Reader + Send {
    /// Remembers listed blobs that are not stored yet (a blob already in the ledger is not pending).
    fn add_pending(&mut self, blobs: &[BlobRef]) -> Result<(), StoreError>;
    /// Commits units: each one's events, quarantined records and ledger row, and clears them from the
    /// pending list, in one transaction (all of it or none). Returns how many events were new (an `Id` stored before,
    /// from any source, is not inserted again).
    fn commit(&mut self, units: &[Unit]) -> Result<usize, StoreError>;
    /// Notes a failed fetch on a pending blob.
    fn note_failure(&mut self, content_id: &str, error: &str) -> Result<(), StoreError>;
    /// Inserts imported events in one transaction, `source` in `content_id` (no content type: they
    /// came from no blob). Returns how many were new.
    fn insert_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError>;
    /// Moves the watermark.
    fn set_watermark(&mut self, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records the start of a run over `window`; returns its id for [`Writer::finish_run`].
    fn begin_run(&mut self, window: (DateTime<Utc>, DateTime<Utc>)) -> Result<i64, StoreError>;
    /// Records how a run ended (its outcome and JSON summary), and marks the lost blobs it reported,
    /// in one transaction.
    fn finish_run(
        &mut self,
        id: i64,
        outcome: &str,
        summary: &str,
        reported_lost: &[String],
    ) -> Result<(), StoreError>;
    /// Deletes events created before `cutoff`, in batches, and the bookkeeping of the same age. Ledger
    /// rows of the last 8 days are kept whatever the cutoff: without them a sync would fetch those
    /// blobs again and bring the pruned events back.
    fn prune(&mut self, cutoff: DateTime<Utc>) -> Result<Pruned, StoreError>;
}

/// What the commands that write call: refuses a folder as `database`, takes the run lock (waiting up
/// to `wait` for another writer or for readers), then [`open_write`].
///
/// # Errors
/// [`StoreError::IsDirectory`] before anything is created, [`StoreError::Busy`] or
/// [`StoreError::Reading`] when the wait is over, [`StoreError::NoFolder`], and those of [`open_write`].
pub async fn lock_and_open(
    path: &Path,
    wait: std::time::Duration,
) -> Result<Box<dyn Writer>, StoreError> {
    check_path(path)?;
    let lock = RunLock::acquire(path, wait).await?;
    open_write(path, lock)
}

/// Opens the database at `path` for writing, creating and migrating it as needed, and keeps `lock`
/// for as long as the store lives.
///
/// # Errors
/// [`StoreError::IsDirectory`], [`StoreError::Foreign`] (another program's file, left untouched),
/// [`StoreError::TooNew`], or a failure to open or write ([`StoreError::Write`]: read-only, disk full).
pub fn open_write(path: &Path, lock: RunLock) -> Result<Box<dyn Writer>, StoreError> {
    Ok(Box::new(sqlite::SqliteStore::open_write(path, lock)?))
}

/// Opens the database at `path` read-only: never created, never migrated, never changed.
///
/// # Errors
/// [`StoreError::Missing`] when there is no file, [`StoreError::IsDirectory`], [`StoreError::Foreign`],
/// [`StoreError::TooNew`] / [`StoreError::TooOld`] when its schema is not this binary's, or
/// [`StoreError::Open`].
pub fn open_read(path: &Path) -> Result<Box<dyn Reader>, StoreError> {
    Ok(Box::new(sqlite::SqliteStore::open_read(path)?))
}

/// What is at `path`, without changing anything: `None` when there is no file (or an empty one), else
/// its schema version and whether this process may write the file (for `doctor`).
///
/// # Errors
/// [`StoreError::IsDirectory`], [`StoreError::Foreign`], [`StoreError::Open`].
pub fn inspect(path: &Path) -> Result<Option<(i64, bool)>, StoreError> {
    sqlite::SqliteStore::inspect(path)
}

/// The files that make up the database at `path`, each with what it is ("the database" first, then
/// "the write-ahead log (-wal)"...): the file, the `-wal`, `-shm`
/// and `-journal` SQLite keeps beside it (beside the real file too when `path` is a symbolic link),
/// and the run lock. They need not exist. Nothing auditsync writes besides the database (a report's
/// `--output`) may be one of them.
pub fn files(path: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut out = vec![(path.to_owned(), "the database")];
    let real = lock::real_path(path);
    for base in [path, real.as_path()] {
        for (suffix, what) in [
            ("-wal", "the write-ahead log (-wal)"),
            ("-shm", "the WAL index (-shm)"),
            ("-journal", "the rollback journal (-journal)"),
        ] {
            out.push((sqlite::sidecar(base, suffix), what));
        }
    }
    out.push((lock::lock_path(path), "the run lock"));
    out
}

/// Refuses a `database` path that cannot be a database file (a directory), before anything is created
/// next to it (the lock file).
///
/// # Errors
/// [`StoreError::IsDirectory`].
pub fn check_path(path: &Path) -> Result<(), StoreError> {
    if path.is_dir() {
        return Err(StoreError::IsDirectory(path.to_owned()));
    }
    Ok(())
}
