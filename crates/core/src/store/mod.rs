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
//! (`migrations.rs`): `events` and its dictionaries, with the view `audit_events` (the public
//! interface for dashboards; the reports read `events` through `tally`), `blob_ledger`
//! (a row exists exactly when that blob's events are stored: both commit in one transaction),
//! `quarantine` (records that could not be read, with their text, committed with their blob's ledger
//! row), `user_identities` (UPN → Entra object id, so a person is counted once),
//! `pending_blobs` (listed but not yet stored), `runs` and `state` (the watermark), and `graph_queries`
//! (schema 4: the query ledger of the Graph audit log query API, one row per query a `backfill` or
//! `verify` submitted, [`QueryRow`]).

mod lock;
mod reports;
mod sqlite;
pub mod tally;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::model::{BlobRef, Event, Unit};

pub use lock::RunLock;
pub use reports::{
    AppMonthRow, AppRow, DayRow, EnvironmentRow, InactiveReport, InactiveRow, MonthRow,
    PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS, ReportFilter, UserRow,
};
pub use tally::{Launch, LaunchNames};

/// One stored event as `auditsync export` writes it: the columns of `audit_events`, and the raw record.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportedEvent {
    /// `Id`.
    pub id: String,
    /// `CreationTime`, RFC 3339 UTC as stored.
    pub creation_time: String,
    /// `Operation`.
    pub operation: String,
    /// `Workload`.
    pub workload: Option<String>,
    /// `RecordType`.
    pub record_type: Option<i64>,
    /// `UserId` as logged.
    pub user_id: Option<String>,
    /// The key the person is counted by (see `UserRow`).
    pub user_key: Option<String>,
    /// The app id.
    pub app_id: Option<String>,
    /// The app's display name.
    pub app_name: Option<String>,
    /// The environment id.
    pub environment_id: Option<String>,
    /// The blob's content type (`None` for imported events).
    pub content_type: Option<String>,
    /// The blob's `contentId`, or the import's source.
    pub content_id: Option<String>,
    /// The record (`AuditData`) exactly as received.
    #[serde(skip)]
    pub raw: String,
}
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
         it up to date (status, report, export and doctor only read, and never change the database)"
    )]
    TooOld {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// This binary's ([`SCHEMA_VERSION`]).
        known: i64,
    },
    /// A read-only command found the database being created by a sync that still runs.
    #[error(
        "{path} is being created by the sync that holds it ({owner}); run this again when that sync is done"
    )]
    Creating {
        /// The database.
        path: PathBuf,
        /// The holder as its lock file says ("pid 123, since …").
        owner: String,
    },
    /// A writer holds the database through another name of the file (a hard link): SQLite keeps its
    /// write-ahead log beside the name it opened, so reading through this name meanwhile could see a
    /// half-written state; refused instead (exit 1).
    #[error(
        "the sync that holds {path} ({owner}) is writing it; SQLite keeps its journal beside the name it \
         was opened by, so it cannot be read through this name meanwhile: run this again when that sync is \
         done, or name the database by the same path in every configuration"
    )]
    WrittenElsewhere {
        /// The database, as this command names it.
        path: PathBuf,
        /// The holder ("pid 123, since …, through another name of the same file").
        owner: String,
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
    /// Readers (status, report, export, doctor) held the database for longer than the wait.
    #[error(
        "{database} was being read (by status, report, export or doctor) for all of the {waited} s this run \
         waited; this run stops: run it again, or raise --wait (an export into a pipe nobody reads holds the \
         database until it is read or stopped)"
    )]
    Reading {
        /// The database.
        database: PathBuf,
        /// Seconds waited.
        waited: u64,
    },
    /// The database's folder does not exist: one message from every command.
    #[error(
        "the folder {folder} for the database {database} does not exist; create it (mkdir -p {folder}), or \
         set `database` to a path in a folder that exists"
    )]
    NoFolder {
        /// The database, as configured.
        database: PathBuf,
        /// The folder to create (absolute, symlinks resolved as far as they exist).
        folder: PathBuf,
    },
    /// The path of the database's folder names a file, not a folder.
    #[error(
        "{folder} is not a folder, so the database {database} cannot be in it; set `database` to a path in \
         a folder"
    )]
    FolderNotAFolder {
        /// The database, as configured.
        database: PathBuf,
        /// What should be its folder.
        folder: PathBuf,
    },
    /// `database` names something that is neither a regular file nor nothing: a named pipe, a socket,
    /// a device. Refused before it is opened (opening a named pipe would block).
    #[error(
        "the database path {path} is {kind}, not a regular file; set `database` to a file path such as \
         auditsync.db"
    )]
    NotAFile {
        /// The database.
        path: PathBuf,
        /// What it is: "a named pipe", "a socket", "a character device"...
        kind: &'static str,
    },
    /// Ctrl-C or SIGTERM stopped the work between two transactions; what was committed is kept.
    #[error("interrupted by {0}")]
    Interrupted(crate::stop::Signal),
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
    /// Writing what was read out (an export) failed: the output's error, kept whole (a closed pipe
    /// is not the database's fault).
    #[error("cannot write the events read from the database: {0}")]
    Output(#[source] std::io::Error),
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
            | StoreError::NoFolder { .. }
            | StoreError::FolderNotAFolder { .. }
            | StoreError::NotAFile { .. } => 2,
            StoreError::Interrupted(signal) => signal.exit_code(),
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

/// Where a query of the ledger stands (`graph_queries.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// The row is written before the query is submitted (the `POST`); the query's id is not known yet.
    /// A run that finds one looks the query up by its display name among the tenant's queries.
    Submitting,
    /// The service gave the query an id; it has not been read to its last page yet.
    Submitted,
    /// The query succeeded, was read to its last page, and its records were committed with this row
    /// in one transaction (terminal).
    Loaded,
    /// The query's record limit was exceeded: its window was replaced by its two halves (terminal).
    Split,
    /// The service said `failed` or `cancelled`, or the query is gone (404): not usable (terminal).
    Failed,
    /// The record limit was exceeded at the smallest window: what was read is stored, the rest is
    /// lost (terminal, reported loudly).
    Truncated,
}

impl QueryState {
    /// Every state, in the order above.
    pub const ALL: [QueryState; 6] = [
        QueryState::Submitting,
        QueryState::Submitted,
        QueryState::Loaded,
        QueryState::Split,
        QueryState::Failed,
        QueryState::Truncated,
    ];

    /// The stored text: `submitting`, `submitted`, `loaded`, `split`, `failed`, `truncated`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryState::Submitting => "submitting",
            QueryState::Submitted => "submitted",
            QueryState::Loaded => "loaded",
            QueryState::Split => "split",
            QueryState::Failed => "failed",
            QueryState::Truncated => "truncated",
        }
    }

    /// The state a stored text names ([`QueryState::as_str`], exactly); `None` for any other text.
    pub fn parse(s: &str) -> Option<QueryState> {
        QueryState::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// What a query of the ledger was submitted for (`graph_queries.purpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPurpose {
    /// `auditsync backfill`: its records are loaded into the store.
    Backfill,
    /// `auditsync verify`: its records' Ids are compared with the store's.
    Verify,
}

impl QueryPurpose {
    /// The stored text: `backfill` or `verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryPurpose::Backfill => "backfill",
            QueryPurpose::Verify => "verify",
        }
    }

    /// The purpose a stored text names ([`QueryPurpose::as_str`], exactly); `None` for any other.
    pub fn parse(s: &str) -> Option<QueryPurpose> {
        [QueryPurpose::Backfill, QueryPurpose::Verify]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// One row of the query ledger (`graph_queries`): a query of the Graph audit log query API over one
/// window, and how far it got. Times are stored RFC 3339 UTC in whole seconds (`time::ts`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    /// The row's id; `None` for a row not stored yet ([`Writer::save_query`] inserts it and returns
    /// the id).
    pub id: Option<i64>,
    /// What the query is for.
    pub purpose: QueryPurpose,
    /// The window `[start, end)` the query covers (`filterStartDateTime`, `filterEndDateTime`).
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// The query's `displayName`, by which a resumed run finds a query it submitted but whose id it
    /// never stored.
    pub display_name: String,
    /// The query's `id` at the service; `None` while [`QueryState::Submitting`].
    pub query_id: Option<String>,
    /// Where the query stands.
    pub state: QueryState,
    /// The service's last `status` for it (`notStarted`, `running`, `succeeded`, `failed`, …).
    pub service_status: Option<String>,
    /// Records read from its pages so far.
    pub records_read: Option<u64>,
    /// The service's `approximateReturnedRecordCount`.
    pub approximate_count: Option<u64>,
    /// The service's `isRecordCountLimitExceeded`.
    pub limit_exceeded: bool,
    /// Events the query brought that were not stored before (from any source).
    pub events_new: Option<u64>,
    /// When it was submitted: each row is one submission against the tenant's daily allowance.
    pub submitted_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When its records were committed ([`QueryState::Loaded`] or [`QueryState::Truncated`]).
    pub loaded_at: Option<DateTime<Utc>>,
    /// Why it failed, redacted (for `status`).
    pub error: Option<String>,
}

/// How many days the Management Activity API serves a blob after its `contentCreated` (its
/// `contentExpiration`; the reference's "available for 7 days"). Events younger than this may still be
/// fetched again; `prune` refuses to delete them unless asked explicitly.
pub const FETCHABLE_DAYS: i64 = 7;

/// What to prune: events created before `cutoff`, and the bookkeeping that goes with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneScope {
    /// Events created before this are deleted.
    pub cutoff: DateTime<Utc>,
    /// The cutoff may lie inside the last [`FETCHABLE_DAYS`] (the caller was asked explicitly): the
    /// ledger rows and pending rows of the blobs the deleted events came from are forgotten too, so that
    /// a `sync --from` fetches those events again. Without it, ledger rows of the last 8 days are kept
    /// whatever the cutoff, so the next sync does not bring pruned events back.
    pub include_fetchable: bool,
}

/// What a [`Writer::commit`] stored that was not stored before.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Events new to `audit_events`.
    pub events: usize,
    /// Records new to the `quarantine` table, the records an entry stands for
    /// ([`Quarantined::more`](crate::model::Quarantined::more)) included.
    pub quarantined: usize,
}

/// The operations the ledger's blobs were kept for, and since when ([`Reader::ledger_operations`]):
/// `None` when every ledger row counts, else the time before which rows were kept for fewer.
pub type KeptFor = (Vec<String>, Option<DateTime<Utc>>);

/// What a prune deleted, or (dry run) would delete.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Rows of `audit_events`.
    pub events: usize,
    /// Rows of `blob_ledger` forgotten (a sync may fetch those blobs again if they are still served).
    pub ledger_rows: usize,
    /// Rows of `pending_blobs`: blobs reported lost, and with `include_fetchable` blobs listed but not
    /// stored before the cutoff.
    pub pending_rows: usize,
    /// Rows of `runs` that started before the cutoff (the latest run is always kept).
    pub runs: usize,
    /// Rows of `quarantine` (unreadable records, their raw AuditData included) quarantined before
    /// the cutoff: they do not outlive the events of their time.
    pub quarantine_rows: usize,
    /// The signal that stopped the prune between two batches; the counts are what was deleted by then.
    #[serde(skip)]
    pub interrupted: Option<crate::stop::Signal>,
    /// The database's bytes on disk (the file and its write-ahead log) before and after, once the
    /// pages freed were given back to the file system; `None` for a preview.
    pub file_bytes: Option<(u64, u64)>,
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
    /// The operations the ledger's blobs were kept for, and since when; `None` before the first sync
    /// that recorded them (a new database, or one from before this was recorded).
    fn ledger_operations(&self) -> Result<Option<KeptFor>, StoreError>;
    /// The latest run.
    fn last_run(&self) -> Result<Option<RunRecord>, StoreError>;
    /// Content ids in the ledger whose blobs were created at or after `since` and stored for the
    /// current operations (not before [`Reader::ledger_operations`]' time: a blob stored when fewer
    /// operations were kept counts as not stored, so it is fetched again when listed).
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
    /// Streams every stored `LaunchPowerApp` event whose time is in `range` (seconds since the epoch:
    /// from inclusive, to exclusive, `None` unbounded), without reading the raw records; then returns
    /// what their codes stand for.
    fn scan_launches(
        &self,
        range: (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(Launch),
    ) -> Result<LaunchNames, StoreError>;
    /// Streams the stored events whose time is in `range` (as [`Reader::scan_launches`]), each with its
    /// raw record byte for byte: by operation, then oldest first.
    fn export(
        &self,
        range: (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(&ExportedEvent) -> std::io::Result<()>,
    ) -> Result<u64, StoreError>;
    /// The time of the oldest stored launch, in seconds since the epoch.
    fn oldest_launch(&self) -> Result<Option<i64>, StoreError>;
    /// The apps report: one row per app, most launched first.
    fn report_apps(&self, filter: &ReportFilter) -> Result<Vec<AppRow>, StoreError> {
        tally::apps(self, filter)
    }
    /// The users report: one row per person (see `UserRow`), most launches first.
    fn report_users(&self, filter: &ReportFilter) -> Result<Vec<UserRow>, StoreError> {
        tally::users(self, filter)
    }
    /// The daily report: one row per UTC day with launches, oldest first.
    fn report_daily(&self, filter: &ReportFilter) -> Result<Vec<DayRow>, StoreError> {
        tally::daily(self, filter)
    }
    /// The monthly report: one row per calendar month (UTC) with launches, oldest first.
    fn report_monthly(&self, filter: &ReportFilter) -> Result<Vec<MonthRow>, StoreError> {
        tally::monthly(self, filter)
    }
    /// The monthly report by app: one row per month and app (see [`AppMonthRow`]).
    fn report_monthly_by_app(&self, filter: &ReportFilter) -> Result<Vec<AppMonthRow>, StoreError> {
        tally::monthly_by_app(self, filter)
    }
    /// The environments report: one row per environment, most launched first.
    fn report_environments(
        &self,
        filter: &ReportFilter,
    ) -> Result<Vec<EnvironmentRow>, StoreError> {
        tally::environments(self, filter)
    }
    /// The inactive apps report: apps whose latest stored launch (in `environment`, if given) is more
    /// than `days` days before `now`.
    fn report_inactive(
        &self,
        days: u32,
        environment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<InactiveReport, StoreError> {
        tally::inactive(self, days, environment, now)
    }
    /// What [`Writer::prune`] would delete for `scope`, changing nothing (`prune --dry-run`).
    fn prune_preview(&self, scope: PruneScope) -> Result<Pruned, StoreError>;
    /// Every row of the query ledger submitted for `purpose`, ordered by window start, then row id.
    fn graph_queries(&self, purpose: QueryPurpose) -> Result<Vec<QueryRow>, StoreError>;
    /// How many queries (of any purpose) were submitted at or after `since` (whole seconds): each
    /// ledger row that got a query id, or is still `submitting` (its POST may have reached the
    /// service), is one submission against the tenant's daily allowance; a submission the service
    /// refused (HTTP 429, no query id) is not.
    fn graph_submissions_since(&self, since: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Every stored event whose operation is one of `operations` (compared exactly) and whose
    /// `CreationTime` is in `[from, to)`, as (`Id`, `CreationTime`), oldest first (then in the order
    /// stored). Stored times are whole seconds, so a bound with a fraction rounds up, as a report's:
    /// an event at 10:00:00 is before `from` 10:00:00.5 and before `to` 10:00:00.5. One range of the
    /// index `events_time` per operation; the table row is read for its `Id` only.
    fn launch_ids(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operations: &[String],
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
}

/// The writes of `sync`, `import` and `prune`. Only [`open_write`] makes one, under the run lock.
pub trait Writer: Reader + Send {
    /// Remembers listed blobs that are not stored yet (a blob already in the ledger is not pending).
    fn add_pending(&mut self, blobs: &[BlobRef]) -> Result<(), StoreError>;
    /// Commits units: each one's events, quarantined records and ledger row, and clears them from the
    /// pending list, in one transaction (all of it or none). Returns what was new (an `Id` stored
    /// before, from any source, is not inserted again; nor is a record quarantined from the same
    /// blob at the same position before, as when a blob is fetched again after a prune).
    fn commit(&mut self, units: &[Unit]) -> Result<Committed, StoreError>;
    /// Stages units in the open write transaction (opening one): as [`Writer::commit`] does, but
    /// nothing is committed (nor visible to readers) until [`Writer::commit_staged`]; a failure rolls
    /// back every unit staged since the last commit. Each unit's ledger row is staged with its events,
    /// so the two still commit together. Every other write commits what is staged first.
    fn stage(&mut self, units: &[Unit]) -> Result<Committed, StoreError>;
    /// Commits the units staged so far, if any.
    fn commit_staged(&mut self) -> Result<(), StoreError>;
    /// Notes a failed fetch on a pending blob.
    fn note_failure(&mut self, content_id: &str, error: &str) -> Result<(), StoreError>;
    /// Inserts imported events in one transaction, `source` in `content_id` (no content type: they
    /// came from no blob). Returns how many were new.
    fn insert_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError>;
    /// Records the operations the ledger's blobs are kept for from now on; `since`: from when (rows
    /// stored earlier were kept for fewer operations and no longer count as stored), `None` when every
    /// row counts.
    fn set_ledger_operations(
        &mut self,
        operations: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
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
    /// Deletes what [`Reader::prune_preview`] counts for `scope`: first (in one transaction) the ledger
    /// and pending rows to forget, so that an interruption never leaves an event deleted while its
    /// ledger row says it is stored; then the events, in batches, stopping between two batches when
    /// [`Writer::set_stop`]'s flag is raised (the result says so); then the runs.
    fn prune(&mut self, scope: PruneScope) -> Result<Pruned, StoreError>;
    /// Writes a row of the query ledger and commits it at once (what is staged is committed first):
    /// inserts it when its id is `None`, else updates the row of that id. Returns the row's id. Durable
    /// before the caller goes on, so a run killed after it finds the row.
    ///
    /// # Errors
    /// [`StoreError::Write`], also when no row has the id given.
    fn save_query(&mut self, row: &QueryRow) -> Result<i64, StoreError>;
    /// Stages events in the open write transaction (opening one), as [`Writer::insert_events`] stores
    /// them (an `Id` stored before, from any source, is not inserted again; `source` as their
    /// `content_id`, no content type), without committing: they commit with the next
    /// [`Writer::commit_staged`], and a failure rolls back everything staged since the last commit.
    /// Returns how many are new.
    fn stage_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError>;
    /// Stages the update of a stored row of the query ledger (by its id) in the open write transaction
    /// (opening one), so that [`Writer::commit_staged`] commits it with the events staged before it: a
    /// window's last records and its `loaded` row commit together, or neither does.
    ///
    /// # Errors
    /// [`StoreError::Write`] when the row has no id or no row has it; everything staged since the last
    /// commit is then rolled back.
    fn stage_query(&mut self, row: &QueryRow) -> Result<(), StoreError>;
    /// Makes batch writes (`insert_events`, `prune`) stop before their next batch once `stop` is
    /// raised: `insert_events` then fails with [`StoreError::Interrupted`].
    fn set_stop(&mut self, stop: crate::stop::Stop);
}

/// Bytes for a person: "0 bytes", "740 KB", "12.3 MB", "4.51 GB" (powers of 1000, as `df -H`).
pub fn size_in_words(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.0} KB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

/// What the commands that write call: refuses a `database` that cannot be a file ([`check_path`]),
/// takes the run lock (waiting up
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
    let store = open_write(path, lock)?;
    if let Some(warning) = readable_by_others(path) {
        tracing::warn!("{warning}");
    }
    Ok(store)
}

/// A warning, with the `chmod 600` that fixes it, when the database or its `-wal`/`-shm` can be read
/// by other users: a database created before auditsync made it 0600 (it holds user names and IP
/// addresses) keeps its mode until an admin changes it. `None` when none can (or off Unix).
pub fn readable_by_others(path: &Path) -> Option<String> {
    let mut open: Vec<String> = Vec::new();
    let mut modes = Vec::new();
    for (file, _) in files(path)
        .into_iter()
        .filter(|(_, what)| *what != "the run lock")
    {
        let Some(mode) = crate::files::open_to_others(&file) else {
            continue;
        };
        let shown = file.display().to_string();
        if !open.contains(&shown) {
            modes.push(format!("{shown} {mode:o}"));
            open.push(shown);
        }
    }
    if open.is_empty() {
        return None;
    }
    Some(format!(
        "the database holds user names and IP addresses and can be read by other users (mode {}); \
         run: chmod 600 {}",
        modes.join(", "),
        open.join(" ")
    ))
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

/// Refuses a `database` path that cannot be a database file, before anything is opened or created
/// next to it (the lock file): a directory, a named pipe, a socket, a device (anything but a regular
/// file or nothing), or a path whose folder does not exist. Looks only at metadata, so it never blocks.
///
/// # Errors
/// [`StoreError::IsDirectory`], [`StoreError::NotAFile`], [`StoreError::NoFolder`].
pub fn check_path(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(StoreError::IsDirectory(path.to_owned())),
        Ok(m) if !m.is_file() => Err(StoreError::NotAFile {
            path: path.to_owned(),
            kind: crate::files::special_kind(&m).unwrap_or("not a regular file"),
        }),
        Ok(_) => Ok(()),
        Err(_) => match lock::real_path(path).parent() {
            Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
                Err(no_folder(path))
            }
            _ => Ok(()),
        },
    }
}

/// [`StoreError::NoFolder`] for `database`, naming the folder to create ([`StoreError::FolderNotAFolder`]
/// when that path is a file).
fn no_folder(database: &Path) -> StoreError {
    let real = lock::real_path(database);
    let folder = match real.parent() {
        Some(f) if !f.as_os_str().is_empty() => f.to_owned(),
        _ => PathBuf::from("."),
    };
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    if folder.exists() {
        return StoreError::FolderNotAFolder {
            database: database.to_owned(),
            folder,
        };
    }
    StoreError::NoFolder {
        database: database.to_owned(),
        folder,
    }
}
