//! The SQLite implementation of the store: opening (for writing under the run lock and migrating, or
//! read-only), here; the ledger and pending blobs (`ledger.rs`), runs and the watermark (`runs.rs`),
//! events, import and prune (`events.rs`), the reports' queries (`reports.rs`), and the query ledger
//! of the Graph audit log query API with the events its queries bring (`queries.rs`).
//!
//! WAL mode, `synchronous = NORMAL`: a crash loses at most the last transactions, never consistency.
//! `PRAGMA application_id` marks the file as auditsync's, `PRAGMA user_version` is the schema version.

mod codes;
mod events;
mod ledger;
mod migrations;
mod queries;
mod raw;
mod reports;
mod runs;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::lock::{self, Share};
use super::{
    Committed, ExportedEvent, KeptFor, Launch, LaunchNames, OperationCount, Pending, PruneScope,
    Pruned, QuarantinedRecord, QueryPurpose, QueryRow, Reader, RunLock, RunRecord, StoreError,
    Writer, check_path,
};
use crate::model::{BlobRef, Event, Unit};
use crate::stop::Stop;

pub use migrations::SCHEMA_VERSION;

/// The writer's settings. WAL and `synchronous = NORMAL`: a crash loses at most the last transactions,
/// never consistency. An 8 MiB page cache and a checkpoint every 10,000 pages (40 MB of log): the
/// pages of the `Id` index, which every batch touches at random, are written to the log once per
/// transaction and to the file once per checkpoint rather than once per spill (BENCHMARKS.md, "Write
/// path (issue 11)"); the cache is what the writer's memory grows by.
const WRITER_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 10000;";

/// `PRAGMA application_id` of an auditsync database ("AUDS"), so that another program's SQLite file
/// is recognised and never written to.
const APPLICATION_ID: i32 = 0x4155_4453;

/// An open SQLite database: read-only, or writable while it holds the run lock.
///
/// The connection is the first field on purpose: Rust drops fields in declaration order, and the lock's
/// descriptors of the database file must be closed only after SQLite's (closing any descriptor of a
/// file drops the process's `fcntl` locks on it; see `lock.rs`).
pub(super) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held by a writable store for as long as it lives; `None` for a read-only one.
    _lock: Option<RunLock>,
    /// A read-only store's look at the run lock: held shared while it reads, or the writer it found.
    share: Option<Share>,
    /// Raised by Ctrl-C or SIGTERM: batch writes stop before their next batch.
    stop: Stop,
    /// The writer's cache of dictionary codes (`codes.rs`).
    codes: codes::Codes,
    /// How the writer compresses raw records (`raw.rs`); `None` for a read-only store.
    codec: Option<raw::Codec>,
    /// A write transaction is open with staged units (`Writer::stage`), not committed yet.
    staged: bool,
}

/// The functions every connection has: `fold_case`, SQLite's `lower()` for any alphabet (UPNs may
/// hold any letter).
fn add_functions(conn: &Connection) -> rusqlite::Result<()> {
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
}

/// Opens `path` read-only without ever creating or writing a file beside it, so that a reader can
/// neither change the database nor leave files a later sync would trip over.
///
/// When no writer holds the run lock (the reader then holds it shared, keeping writers out while it
/// reads) and there is no `-wal` file, everything is in the main file: it is opened as immutable, which
/// needs no WAL index (`-shm`) and takes no locks, so it works in a folder this user may only read.
/// While a writer runs (or after one was killed, leaving its `-wal`), SQLite's WAL index is needed and
/// is there beside the file; it is opened read-only through it.
fn connect_read_only(path: &Path) -> Result<(Connection, Share), StoreError> {
    let share = lock::share(path);
    if let Share::Elsewhere(owner) = share {
        return Err(StoreError::WrittenElsewhere {
            path: path.to_owned(),
            owner,
        });
    }
    let quiet =
        !matches!(share, Share::Writer(_)) && !sidecar(&lock::real_path(path), "-wal").exists();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let conn = if quiet {
        tracing::debug!(database = %path.display(), "reading the database as immutable (no writer, no WAL)");
        let mut uri =
            url::Url::from_file_path(std::path::absolute(path).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })?)
            .map_err(|()| StoreError::Open {
                path: path.to_owned(),
                reason: "the path cannot be written as a file: URI".into(),
            })?;
        uri.set_query(Some("immutable=1"));
        Connection::open_with_flags(uri.as_str(), flags | OpenFlags::SQLITE_OPEN_URI)
            .map_err(open_err)?
    } else {
        tracing::debug!(database = %path.display(), "reading the database through its WAL");
        Connection::open_with_flags(path, flags).map_err(open_err)?
    };
    // Opening is lazy: the first read finds out whether the WAL index could be had.
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        return Err(match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) if !quiet => {
                StoreError::Open {
                    path: path.to_owned(),
                    reason: format!(
                        "a sync is running or one was interrupted, so the database is read through its \
                         -wal and -shm files, which this user cannot open or create ({e}); read it as the \
                         user that runs auditsync sync, or after that user's next sync has finished"
                    ),
                }
            }
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::Foreign(path.to_owned()),
            _ if std::fs::File::open(path).is_err() => StoreError::Open {
                path: path.to_owned(),
                reason: format!(
                    "this user may not read it ({e}); check its owner and mode, or run as the user that \
                     runs auditsync sync"
                ),
            },
            _ => open_err(e),
        });
    }
    Ok((conn, share))
}

/// `path` with `suffix` appended to its file name (`auditsync.db-wal`).
pub(in crate::store) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The schema version and application id of an open database; [`StoreError::Foreign`] when the file is
/// not SQLite at all.
fn header(conn: &Connection, path: &Path) -> Result<(i32, i64), StoreError> {
    let foreign = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::Foreign(path.to_owned()),
        _ => StoreError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    };
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(foreign)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(foreign)?;
    Ok((app_id, version))
}

/// An existing auditsync database opened read-only, with its schema version; `None` when there is no
/// file or an empty one (what a first sync fills in: some admins create it with its mode first).
fn existing_read_only(path: &Path) -> Result<Option<(Connection, i64, Share)>, StoreError> {
    check_path(path)?;
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(None);
    }
    let (conn, share) = connect_read_only(path)?;
    let (app_id, version) = header(&conn, path)?;
    if app_id != APPLICATION_ID {
        // A first sync creating the database: SQLite's header is written, the schema not yet.
        let blank = version == 0
            && conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                    r.get::<_, i64>(0)
                })
                .is_ok_and(|n| n == 0);
        if blank && let Share::Writer(owner) = share {
            drop(conn);
            return Err(StoreError::Creating {
                path: path.to_owned(),
                owner,
            });
        }
        return Err(StoreError::Foreign(path.to_owned()));
    }
    Ok(Some((conn, version, share)))
}

/// Refuses a schema this binary cannot use: newer always; older unless it is about to migrate it.
fn check_version(path: &Path, found: i64, migrating: bool) -> Result<(), StoreError> {
    let (path, known) = (path.to_owned(), SCHEMA_VERSION);
    if found > known {
        Err(StoreError::TooNew { path, found, known })
    } else if found < known && !migrating {
        Err(StoreError::TooOld { path, found, known })
    } else {
        Ok(())
    }
}

impl SqliteStore {
    /// See [`super::inspect`].
    pub(super) fn inspect(path: &Path) -> Result<Option<(i64, bool)>, StoreError> {
        let Some((_, version, _)) = existing_read_only(path)? else {
            return Ok(None);
        };
        let writable = std::fs::OpenOptions::new().write(true).open(path).is_ok();
        Ok(Some((version, writable)))
    }

    /// See [`super::open_read`].
    pub(super) fn open_read(path: &Path) -> Result<SqliteStore, StoreError> {
        let Some((conn, version, share)) = existing_read_only(path)? else {
            // "Run sync first" would not help if the folder is not there either.
            // A missing folder was refused by `check_path` already. An empty file locked by a writer:
            // a first sync has just created it.
            if let Share::Writer(owner) | Share::Elsewhere(owner) = lock::share(path) {
                return Err(StoreError::Creating {
                    path: path.to_owned(),
                    owner,
                });
            }
            return Err(StoreError::Missing(path.to_owned()));
        };
        check_version(path, version, false)?;
        conn.busy_timeout(Duration::from_secs(10))
            .and_then(|()| add_functions(&conn))
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            _lock: None,
            share: Some(share),
            stop: Stop::new(),
            codes: codes::Codes::default(),
            codec: None,
            staged: false,
        })
    }

    /// See [`super::open_write`].
    pub(super) fn open_write(path: &Path, lock: RunLock) -> Result<SqliteStore, StoreError> {
        check_path(path)?;
        if !lock.locks(path) {
            return Err(StoreError::Open {
                path: path.to_owned(),
                reason: "the run lock held is another database's".into(),
            });
        }
        let open_err = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) => {
                map_write(path, source)
            }
            _ => StoreError::Open {
                path: path.to_owned(),
                reason: source.to_string(),
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
        let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        create_private(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        add_functions(&conn).map_err(open_err)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
            _lock: Some(lock),
            share: None,
            stop: Stop::new(),
            codes: codes::Codes::default(),
            codec: None,
            staged: false,
        };
        // Reading the header fails with NOTADB on a file that is not SQLite.
        let (app_id, version) = header(&store.conn, path).map_err(|e| match e {
            StoreError::Open { reason, .. } => StoreError::Write {
                path: path.to_owned(),
                reason: format!(
                    "it cannot be read ({reason}); check the permissions of the file and its folder"
                ),
            },
            other => other,
        })?;
        let tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(open_err)?;
        if existed && app_id != APPLICATION_ID && (tables > 0 || version > 0) {
            return Err(StoreError::Foreign(path.to_owned()));
        }
        check_version(path, version, true)?;
        // Before the first table: pages a prune frees can then be given back (`give_space_back`).
        if tables == 0 {
            store
                .conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
                .map_err(|e| store.write_err(e))?;
        }
        store
            .conn
            .execute_batch(WRITER_PRAGMAS)
            .map_err(|e| store.write_err(e))?;
        let before = store.file_bytes();
        store.say_migrating(version, before);
        migrations::migrate(&mut store.conn, APPLICATION_ID).map_err(|e| match &e {
            // Full disk, read-only…: said as for any write.
            rusqlite::Error::SqliteFailure(..) => store.write_err(e),
            _ => StoreError::Write {
                path: path.to_owned(),
                reason: format!(
                    "bringing its schema from version {version} to {SCHEMA_VERSION} failed and was rolled back \
                     (the database is as it was): {}",
                    sqlite_message(&e)
                ),
            },
        })?;
        store.compact_once(before)?;
        let mut codec = raw::Codec::load(&store.conn).map_err(|e| store.write_err(e))?;
        let adopted = events::adopt(&mut store.conn, &mut store.codes, &mut codec)
            .map_err(|e| store.write_err(e))?;
        store.codec = Some(codec);
        if adopted > 0 {
            store.after_adopting(adopted);
        }
        Ok(store)
    }

    /// Says what the migration from schema `version` does, before it starts (nothing at the current
    /// version or for a new database).
    fn say_migrating(&self, version: i64, before: u64) {
        if (1..migrations::COMPACT_VERSION).contains(&version) {
            tracing::info!(
                database = %self.path.display(),
                "bringing the database ({}) from schema {version} to {SCHEMA_VERSION}: its events are \
                 rewritten once in a compact layout, about a minute a million events; until that ends it \
                 stays as it was",
                crate::store::size_in_words(before)
            );
        } else if (1..SCHEMA_VERSION).contains(&version) {
            tracing::info!(
                database = %self.path.display(),
                "bringing the database from schema {version} to {SCHEMA_VERSION} (new tables only: the \
                 events stay as they are)"
            );
        }
    }

    /// After the migration to the compact layout (schema 3) of a database that had rows, or whenever
    /// the file cannot give freed pages back: `auto_vacuum = INCREMENTAL` and one `VACUUM`, which
    /// rewrites the file at its compact size (it cannot run in the migration's transaction).
    fn compact_once(&mut self, before: u64) -> Result<(), StoreError> {
        let mode: i64 = self
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .map_err(|e| self.write_err(e))?;
        if mode == 2 {
            return Ok(());
        }
        self.conn
            .execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(|e| self.write_err(e))?;
        if let Err(e) = self.vacuum() {
            // The store works as it is; only the space waits. Said at every run until it is done.
            tracing::warn!(
                database = %self.path.display(),
                "could not rewrite the database at its compact size ({e}); it works as it is, but keeps \
                 {} where it needs less: the rewrite needs about as much free space as the compact \
                 database takes, in the database's folder and in SQLite's temporary folder (set \
                 SQLITE_TMPDIR to a folder with room); the next run tries again",
                crate::store::size_in_words(self.file_bytes())
            );
            return Ok(());
        }
        tracing::info!(
            database = %self.path.display(),
            "the database takes {} now (it took {})",
            crate::store::size_in_words(self.file_bytes()),
            crate::store::size_in_words(before)
        );
        Ok(())
    }

    /// After rows inserted through the view were compressed in place (their pages part empty now):
    /// when they were a large share of the store (a quarter, or 100,000 rows), the file is rewritten
    /// at its compact size; else the pages that came free are given back. A failure only costs space.
    fn after_adopting(&mut self, adopted: usize) {
        let rows: i64 = self
            .conn
            .query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |r| {
                r.get(0)
            })
            .unwrap_or(0);
        let adopted = i64::try_from(adopted).unwrap_or(i64::MAX);
        let result = if adopted >= 100_000 || adopted.saturating_mul(4) >= rows {
            self.vacuum()
        } else {
            self.give_space_back(0).map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(
                database = %self.path.display(),
                "the rows inserted through audit_events were compressed, but the space they freed could \
                 not be given back ({e}); the next prune tries again"
            );
        }
    }

    /// Writes failed: the caches may name rows of the rolled-back transaction (a dictionary code, a
    /// trained raw dictionary), so they are read again from the file.
    fn forget_unwritten(&mut self) {
        self.codes.clear();
        match raw::Codec::load(&self.conn) {
            Ok(codec) => self.codec = Some(codec),
            Err(e) => {
                tracing::debug!("cannot reload the raw records' dictionary: {e}");
                self.codec = None;
            }
        }
    }

    /// Rewrites the file at its compact size (`VACUUM`, then a checkpoint that truncates the log).
    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("VACUUM;")
            .map_err(|e| self.write_err(e))?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.write_err(e))
    }

    fn write_err(&self, e: rusqlite::Error) -> StoreError {
        map_write(&self.path, e)
    }

    fn read_err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }
}

/// Creates the database file, empty and readable by its owner only (0600: it holds user names and IP
/// addresses), if it is not there, so that SQLite does not create it with the umask's mode. SQLite
/// gives its `-wal`, `-shm` and `-journal` the database file's mode. An existing database keeps its
/// mode (an admin may have chosen one, e.g. 0640 for a reporting group); an existing *empty* file
/// (made beforehand with `touch` or a configuration tool: "no database yet") is made 0600 before
/// SQLite fills it, and an INFO line says so.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| StoreError::Write {
        path: path.to_owned(),
        reason: format!(
            "it cannot be created ({e}); check that its folder exists and is writable, and that the \
             disk is not full"
        ),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata().map_err(|e| StoreError::Write {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if meta.len() == 0 && mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Write {
                    path: path.to_owned(),
                    reason: format!(
                        "it is an empty file of mode {mode:o} that will hold user names and IP addresses, \
                         and it cannot be made private (0600): {e}; run `chmod 600 {}` or remove it",
                        path.display()
                    ),
                })?;
            tracing::info!(
                "{} was an empty file of mode {mode:o}: made it 0600 (readable by its owner only) \
                 before creating the database in it, as it will hold user names and IP addresses",
                path.display()
            );
        }
    }
    drop(file);
    Ok(())
}

/// SQLite's own words for an error, without the statement it was running.
fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// A failed write in words an admin can act on.
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
        _ => sqlite_message(&e),
    };
    StoreError::Write {
        path: path.to_owned(),
        reason,
    }
}

impl Reader for SqliteStore {
    fn writer(&self) -> Option<&str> {
        match &self.share {
            Some(Share::Writer(owner)) => Some(owner),
            _ => None,
        }
    }
    fn watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read_watermark()
    }
    fn watermark_not_after(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read_watermark_not_after(at)
    }
    fn last_run(&self) -> Result<Option<RunRecord>, StoreError> {
        self.read_last_run()
    }
    fn ledger_operations(&self) -> Result<Option<KeptFor>, StoreError> {
        self.read_ledger_operations()
    }
    fn stored_since(&self, since: DateTime<Utc>) -> Result<HashSet<String>, StoreError> {
        self.read_stored_since(since)
    }
    fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        self.pending_rows(None)
    }
    fn lost(&self, now: DateTime<Utc>) -> Result<Vec<Pending>, StoreError> {
        self.pending_rows(Some(now))
    }
    fn lost_count(&self) -> Result<i64, StoreError> {
        self.read_lost_count()
    }
    fn ledger_size(&self) -> Result<i64, StoreError> {
        self.read_ledger_size()
    }
    fn quarantine(&self, newest: usize) -> Result<(i64, Vec<QuarantinedRecord>), StoreError> {
        self.read_quarantine(newest)
    }
    fn events_by_operation(&self) -> Result<Vec<OperationCount>, StoreError> {
        self.read_events_by_operation()
    }
    fn scan_launches(
        &self,
        range: (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(Launch),
    ) -> Result<LaunchNames, StoreError> {
        self.read_launches(range, visit)
    }
    fn export(
        &self,
        range: (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(&ExportedEvent) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        self.read_export(range, visit)
    }
    fn oldest_launch(&self) -> Result<Option<i64>, StoreError> {
        self.read_oldest_launch()
    }
    fn prune_preview(&self, scope: PruneScope) -> Result<Pruned, StoreError> {
        self.count_prunable(scope)
    }
    fn graph_queries(&self, purpose: QueryPurpose) -> Result<Vec<QueryRow>, StoreError> {
        self.read_graph_queries(purpose)
    }
    fn graph_submissions_since(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        self.read_graph_submissions_since(since)
    }
    fn launch_ids(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operations: &[String],
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.read_launch_ids(from, to, operations)
    }
}

impl Writer for SqliteStore {
    fn add_pending(&mut self, blobs: &[BlobRef]) -> Result<(), StoreError> {
        self.commit_staged()?;
        self.write_pending(blobs)
    }
    fn commit(&mut self, units: &[Unit]) -> Result<Committed, StoreError> {
        self.write_units(units)
    }
    fn stage(&mut self, units: &[Unit]) -> Result<Committed, StoreError> {
        self.stage_units(units)
    }
    fn commit_staged(&mut self) -> Result<(), StoreError> {
        self.commit_staged()
    }
    fn note_failure(&mut self, content_id: &str, error: &str) -> Result<(), StoreError> {
        self.commit_staged()?;
        self.write_failure(content_id, error)
    }
    fn insert_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError> {
        if let Some(signal) = self.stop.requested() {
            return Err(StoreError::Interrupted(signal));
        }
        self.commit_staged()?;
        self.write_events(events, source)
    }
    fn set_ledger_operations(
        &mut self,
        operations: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.commit_staged()?;
        self.write_ledger_operations(operations, since)
    }
    fn set_watermark(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.commit_staged()?;
        self.write_watermark(at)
    }
    fn begin_run(&mut self, window: (DateTime<Utc>, DateTime<Utc>)) -> Result<i64, StoreError> {
        self.commit_staged()?;
        self.write_run_start(window)
    }
    fn finish_run(
        &mut self,
        id: i64,
        outcome: &str,
        summary: &str,
        reported_lost: &[String],
    ) -> Result<(), StoreError> {
        self.commit_staged()?;
        self.write_run_end(id, outcome, summary, reported_lost)
    }
    fn prune(&mut self, scope: PruneScope) -> Result<Pruned, StoreError> {
        self.commit_staged()?;
        self.delete_prunable(scope)
    }
    fn set_stop(&mut self, stop: Stop) {
        self.stop = stop;
    }
    fn save_query(&mut self, row: &QueryRow) -> Result<i64, StoreError> {
        self.write_query(row)
    }
    fn stage_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError> {
        SqliteStore::stage_events(self, events, source)
    }
    fn stage_query(&mut self, row: &QueryRow) -> Result<(), StoreError> {
        SqliteStore::stage_query(self, row)
    }
}

#[cfg(test)]
mod tests;
