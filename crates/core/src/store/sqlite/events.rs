//! `audit_events`: the insert every source shares, imported events, the per-operation counts of
//! `status`, and pruning by age.

use chrono::{TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::codes::{Codes, Dict};
use super::raw::Codec;
use super::{SqliteStore, map_write};
use crate::model::Event;
use crate::store::{OperationCount, PruneScope, Pruned, StoreError};
use crate::time::ts;

/// Rows deleted per transaction when pruning, so a large prune never holds the database for long.
const PRUNE_BATCH: usize = 10_000;

/// The operation the reports count.
pub(super) const LAUNCH: &str = "LaunchPowerApp";

/// One event as the compact layout stores it, before its texts are coded: what [`insert_event`] makes
/// of a kept record, and what the migration from schema 2 makes of an old row.
pub(super) struct Row<'a> {
    pub(super) id: &'a str,
    pub(super) creation_time: &'a str,
    pub(super) operation: &'a str,
    pub(super) workload: Option<&'a str>,
    pub(super) record_type: Option<i64>,
    pub(super) user_id: Option<&'a str>,
    pub(super) app_id: Option<&'a str>,
    pub(super) app_name: Option<&'a str>,
    pub(super) environment_id: Option<&'a str>,
    pub(super) content_type: Option<&'a str>,
    pub(super) content_id: Option<&'a str>,
    pub(super) raw: &'a [u8],
    /// The key the person is counted by ([`user_key`], or the lower-cased `UserId` of a record that
    /// named neither a UPN nor an object id).
    pub(super) person: Option<&'a str>,
}

/// What writing events needs beyond the connection: the dictionaries' codes (which also hold what the
/// open transaction changed: the latest name and environment each app's launches carried, the UPN
/// links, written by [`Writing::finish`] before the commit), and the codec.
pub(super) struct Writing<'s> {
    pub(super) codes: &'s mut Codes,
    pub(super) codec: &'s mut Codec,
}

impl<'s> Writing<'s> {
    pub(super) fn new(codes: &'s mut Codes, codec: &'s mut Codec) -> Writing<'s> {
        Writing { codes, codec }
    }

    /// Inserts one row; 1 if it was new, 0 if an event of that `Id` was stored already.
    pub(super) fn insert(&mut self, tx: &Connection, row: &Row<'_>) -> rusqlite::Result<usize> {
        let c = &mut *self.codes;
        let operation = c.code(tx, Dict::Operation, Some(row.operation))?;
        let workload = c.code(tx, Dict::Term, row.workload)?;
        let user_id = c.code(tx, Dict::Term, row.user_id)?;
        let app = c.code(tx, Dict::App, row.app_id)?;
        let app_name = c.code(tx, Dict::Term, row.app_name)?;
        let environment = c.code(tx, Dict::Environment, row.environment_id)?;
        let person = c.code(tx, Dict::Person, row.person)?;
        let source = c.source(tx, row.content_type, row.content_id)?;
        let (dictionary, raw) = self.codec.compress(row.raw)?;
        let new = tx.prepare_cached(INSERT_EVENT)?.execute(params![
            row.id,
            row.creation_time,
            operation,
            workload,
            row.record_type,
            user_id,
            app,
            app_name,
            environment,
            person,
            source,
            dictionary,
            raw
        ])?;
        if new > 0
            && row.operation == LAUNCH
            && let Some(app) = app
        {
            self.codes
                .note_launch(app, row.creation_time, row.app_name, environment);
        }
        Ok(new)
    }

    /// Writes the UPN → object id links this transaction changed, each app's latest name and
    /// environment of this transaction (where no later one is stored), and trains the raw records'
    /// dictionary when enough wait for one.
    pub(super) fn finish(self, tx: &Connection) -> rusqlite::Result<()> {
        self.codes.write_identities(tx)?;
        let (names, environments) = self.codes.take_latest();
        for (app, (seen, name)) in &names {
            tx.prepare_cached(
                "UPDATE apps SET name = ?2, name_seen = ?3 WHERE id = ?1 \
                 AND (name_seen IS NULL OR name_seen <= ?3)",
            )?
            .execute(params![app, name, seen])?;
        }
        for (app, (seen, env)) in &environments {
            tx.prepare_cached(
                "UPDATE apps SET environment = ?2, environment_seen = ?3 WHERE id = ?1 \
                 AND (environment_seen IS NULL OR environment_seen <= ?3)",
            )?
            .execute(params![app, env, seen])?;
        }
        if self.codec.wants_training() {
            self.codec.train(tx)?;
        }
        Ok(())
    }
}

/// `status`'s counts per operation, with the first and last time (seconds): the covering index.
pub(super) const EVENTS_BY_OPERATION: &str = "SELECT o.name, count(*), \
     min(unixepoch(e.creation_time)), max(unixepoch(e.creation_time)) \
     FROM events e JOIN operations o ON o.id = e.operation GROUP BY e.operation ORDER BY o.name";

/// The oldest launch: ?1 the launch operation's code.
pub(super) const OLDEST_LAUNCH: &str =
    "SELECT min(unixepoch(creation_time)) FROM events WHERE operation = ?1";

/// An event's row; the same event again (same `Id`) changes nothing.
const INSERT_EVENT: &str = "INSERT INTO events (id, creation_time, operation, workload, record_type, \
     user_id, app, app_name, environment, person, source, dictionary, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT(id) DO NOTHING";

/// Inserts one kept record, inside the caller's transaction, with the key its person is counted by
/// ([`user_key`]); 1 if it was new, 0 if it was stored already.
pub(super) fn insert_event(
    tx: &Connection,
    w: &mut Writing<'_>,
    e: &Event,
    content_type: Option<&str>,
    content_id: &str,
) -> rusqlite::Result<usize> {
    let key = user_key(
        tx,
        w.codes,
        e.user_object_id.as_deref(),
        e.user_upn.as_deref(),
        &e.creation_time,
    )?;
    let folded = e.user_id.as_deref().map(str::to_lowercase);
    w.insert(
        tx,
        &Row {
            id: &e.id,
            creation_time: &e.creation_time,
            operation: &e.operation,
            workload: e.workload.as_deref(),
            record_type: e.record_type,
            user_id: e.user_id.as_deref(),
            app_id: e.app_id.as_deref(),
            app_name: e.app_name.as_deref(),
            environment_id: e.environment_id.as_deref(),
            content_type,
            content_id: Some(content_id),
            raw: e.raw.as_bytes(),
            person: key.as_deref().or(folded.as_deref()),
        },
    )
}

/// A row another program inserted through the view, as `adopt` reads it (the texts only where the
/// row is one to adopt).
struct Foreign {
    rowid: i64,
    raw: Option<Vec<u8>>,
    user_id: Option<String>,
    creation_time: Option<String>,
    app_id: Option<String>,
    app_name: Option<String>,
    environment: Option<i64>,
    operation: Option<String>,
}

impl Foreign {
    /// Compresses its raw record, keys its person by its `UserId` where it named none, writes its
    /// time in the stored form (RFC 3339 UTC, whole seconds) and its app id as a lower-case GUID, as
    /// `extract` does for what auditsync reads itself.
    fn adopt(self, tx: &Connection, codes: &mut Codes, codec: &mut Codec) -> rusqlite::Result<()> {
        if let Some(raw) = &self.raw {
            let (dictionary, frame) = codec.compress(raw)?;
            tx.prepare_cached("UPDATE events SET dictionary = ?2, raw = ?3 WHERE rowid = ?1")?
                .execute(params![self.rowid, dictionary, frame])?;
        }
        if let Some(user_id) = &self.user_id {
            let person = codes.code(tx, Dict::Person, Some(&user_id.to_lowercase()))?;
            tx.prepare_cached("UPDATE events SET person = ?2 WHERE rowid = ?1")?
                .execute(params![self.rowid, person])?;
        }
        let stored = self
            .creation_time
            .as_deref()
            .and_then(crate::time::parse_time)
            .map(ts);
        if let Some(t) = stored.as_deref()
            && Some(t) != self.creation_time.as_deref()
        {
            tx.prepare_cached("UPDATE events SET creation_time = ?2 WHERE rowid = ?1")?
                .execute(params![self.rowid, t])?;
        }
        let guid = self
            .app_id
            .as_deref()
            .and_then(|a| uuid::Uuid::try_parse(a.trim()).ok())
            .map(|g| g.hyphenated().to_string());
        if let Some(app_id) = guid.as_deref()
            && Some(app_id) != self.app_id.as_deref()
        {
            let app = codes.code(tx, Dict::App, Some(app_id))?;
            tx.prepare_cached("UPDATE events SET app = ?2 WHERE rowid = ?1")?
                .execute(params![self.rowid, app])?;
            if let (Some(app), Some(LAUNCH), Some(t)) = (
                app,
                self.operation.as_deref(),
                stored.as_deref().or(self.creation_time.as_deref()),
            ) {
                codes.note_launch(app, t, self.app_name.as_deref(), self.environment);
            }
        }
        Ok(())
    }
}

/// Rows another program inserted through the `audit_events` view since `state.adopt_from`: their raw
/// records compressed (a dictionary trained on them first when the store has none), their person
/// set from their `UserId` where they named no `user_key`, in transactions of 5,000 rows; then the
/// pages freed are given back. Run by every writer as it opens the store.
pub(super) fn adopt(
    conn: &mut rusqlite::Connection,
    codes: &mut Codes,
    codec: &mut Codec,
) -> rusqlite::Result<usize> {
    let from: Option<i64> = conn
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM state WHERE key = 'adopt_from'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(from) = from else { return Ok(0) };
    if !codec.has_dictionary() {
        let samples: Vec<Vec<u8>> = conn
            .prepare(
                "SELECT CAST(raw AS BLOB) FROM events WHERE rowid >= ?1 AND dictionary = -1 \
                 ORDER BY rowid DESC LIMIT 4000",
            )?
            .query_map([from], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if samples.len() as u64 >= super::raw::TRAIN_AFTER
            && let Some(dictionary) = super::raw::train(&samples)
        {
            conn.execute(
                "INSERT INTO raw_dictionaries (dictionary, trained_at, samples) VALUES (?1, ?2, ?3)",
                params![dictionary, ts(Utc::now()), samples.len() as i64],
            )?;
            *codec = Codec::load(conn)?;
        }
    }
    let mut after = from - 1;
    let mut adopted = 0;
    loop {
        let tx = conn.transaction()?;
        let rows: Vec<Foreign> = tx
            .prepare_cached(
                "SELECT e.rowid, CASE WHEN e.dictionary = -1 THEN CAST(e.raw AS BLOB) END, \
                 CASE WHEN e.person IS NULL THEN u.value END, \
                 CASE WHEN e.dictionary = -1 THEN e.creation_time END, \
                 CASE WHEN e.dictionary = -1 THEN a.app_id END, n.value, e.environment, o.name \
                 FROM events e LEFT JOIN terms u ON u.id = e.user_id \
                 LEFT JOIN apps a ON a.id = e.app LEFT JOIN terms n ON n.id = e.app_name \
                 LEFT JOIN operations o ON o.id = e.operation \
                 WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT 5000",
            )?
            .query_map([after], |r| {
                Ok(Foreign {
                    rowid: r.get(0)?,
                    raw: r.get(1)?,
                    user_id: r.get(2)?,
                    creation_time: r.get(3)?,
                    app_id: r.get(4)?,
                    app_name: r.get(5)?,
                    environment: r.get(6)?,
                    operation: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last() else {
            tx.execute("DELETE FROM state WHERE key = 'adopt_from'", [])?;
            Writing::new(codes, codec).finish(&tx)?;
            tx.commit()?;
            break;
        };
        after = last.rowid;
        for row in rows {
            adopted += usize::from(row.raw.is_some());
            row.adopt(&tx, codes, codec)?;
        }
        Writing::new(codes, codec).finish(&tx)?;
        tx.commit()?;
    }
    if adopted > 0 {
        tracing::info!(
            rows = adopted,
            "compressed the rows another program inserted into audit_events"
        );
    }
    Ok(adopted)
}

/// Moves the rows of schema 2's `audit_events` (renamed `audit_events_v2`) into the compact layout,
/// in batches by rowid: a dictionary is trained on the newest of them first.
pub(super) fn move_v2_rows(tx: &Connection) -> rusqlite::Result<()> {
    let samples: Vec<Vec<u8>> = tx
        .prepare("SELECT CAST(raw AS BLOB) FROM audit_events_v2 ORDER BY rowid DESC LIMIT 4000")?
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(dictionary) = super::raw::train(&samples) {
        tx.execute(
            "INSERT INTO raw_dictionaries (dictionary, trained_at, samples) VALUES (?1, ?2, ?3)",
            params![dictionary, ts(Utc::now()), samples.len() as i64],
        )?;
    }
    drop(samples);
    let mut codes = Codes::default();
    let mut codec = Codec::load(tx)?;
    let mut w = Writing::new(&mut codes, &mut codec);
    let mut after = i64::MIN;
    loop {
        type Old = (i64, Vec<Option<String>>, Option<i64>, Vec<u8>);
        let rows: Vec<Old> = tx
            .prepare_cached(
                "SELECT rowid, id, creation_time, operation, workload, user_id, app_id, app_name, \
                 environment_id, content_type, content_id, user_key, record_type, \
                 CAST(raw AS BLOB) FROM audit_events_v2 WHERE rowid > ?1 ORDER BY rowid LIMIT 5000",
            )?
            .query_map([after], |r| {
                let texts = (1..=11)
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<_>>()?;
                Ok((r.get(0)?, texts, r.get(12)?, r.get(13)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (_, t, record_type, raw) in &rows {
            let s = |i: usize| t[i].as_deref();
            // As schema 2's reports counted a row without a key: by its `UserId`, lower-cased.
            let folded = s(4).map(str::to_lowercase);
            w.insert(
                tx,
                &Row {
                    id: s(0).unwrap_or_default(),
                    creation_time: s(1).unwrap_or_default(),
                    operation: s(2).unwrap_or_default(),
                    workload: s(3),
                    record_type: *record_type,
                    user_id: s(4),
                    app_id: s(5),
                    app_name: s(6),
                    environment_id: s(7),
                    content_type: s(8),
                    content_id: s(9),
                    raw,
                    person: s(10).or(folded.as_deref()),
                },
            )?;
        }
    }
    w.finish(tx)
}
/// The key a person is counted by (`audit_events.user_key`): their Entra object id where the record
/// carries it; else the object id another record of the same UPN carried (`user_identities`); else
/// the lower-cased UPN; `None` when the record names no user.
///
/// A record that carries both keeps `user_identities` current (UPN → the object id of the newest
/// record naming both, and when that was) and, the first time a UPN is linked, makes the rows
/// counted by that UPN so far count as the object id (`people.counted_as`), in the caller's
/// transaction: a person is one key, whichever record came first.
pub(super) fn user_key(
    tx: &Connection,
    codes: &mut Codes,
    object_id: Option<&str>,
    upn: Option<&str>,
    seen: &str,
) -> rusqlite::Result<Option<String>> {
    match (object_id, upn) {
        (Some(oid), Some(upn)) => {
            let known = codes.identity(tx, upn)?.cloned();
            // The newest record wins the UPN (a UPN given to someone else later); an older one,
            // imported from history, does not take it back. Written at the end of the transaction.
            if known.as_ref().is_none_or(|(_, last)| seen > last.as_str()) {
                codes.set_identity(upn, oid, seen);
            }
            if known.is_none() {
                let counted_as = codes.code(tx, Dict::Person, Some(oid))?;
                tx.prepare_cached(
                    "UPDATE people SET counted_as = ?2 WHERE key = ?1 AND counted_as IS NULL",
                )?
                .execute(params![upn, counted_as])?;
            }
            Ok(Some(oid.to_owned()))
        }
        (Some(oid), None) => Ok(Some(oid.to_owned())),
        (None, Some(upn)) => Ok(Some(
            codes
                .identity(tx, upn)?
                .map_or_else(|| upn.to_owned(), |(oid, _)| oid.clone()),
        )),
        (None, None) => Ok(None),
    }
}

impl SqliteStore {
    pub(super) fn write_events(
        &mut self,
        events: &[Event],
        source: &str,
    ) -> Result<usize, StoreError> {
        let result = self.try_write_events(events, source);
        if result.is_err() {
            self.forget_unwritten();
        }
        result.map_err(|e| map_write(&self.path, e))
    }

    fn try_write_events(&mut self, events: &[Event], source: &str) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let codec = self.codec.as_mut().ok_or(rusqlite::Error::InvalidQuery)?;
        let mut w = Writing::new(&mut self.codes, codec);
        let mut inserted = 0;
        for e in events {
            inserted += insert_event(&tx, &mut w, e, None, source)?;
        }
        w.finish(&tx)?;
        tx.commit()?;
        Ok(inserted)
    }

    pub(super) fn read_events_by_operation(&self) -> Result<Vec<OperationCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(EVENTS_BY_OPERATION)
            .map_err(|e| self.read_err(e))?;
        let stamp = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(ts)
                .unwrap_or_default()
        };
        let rows = stmt
            .query_map([], |r| {
                Ok(OperationCount {
                    operation: r.get(0)?,
                    events: r.get(1)?,
                    first: stamp(r.get(2)?),
                    last: stamp(r.get(3)?),
                })
            })
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }

    /// See [`Reader::prune_preview`](crate::store::Reader::prune_preview): the same conditions as
    /// [`SqliteStore::delete_prunable`], counted.
    pub(super) fn count_prunable(&self, scope: PruneScope) -> Result<Pruned, StoreError> {
        let p = prune_params(scope);
        let count = |table: &str, condition: &str, params: &[&dyn rusqlite::ToSql]| {
            self.conn
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE {condition}"),
                    params,
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| usize::try_from(n).unwrap_or_default())
                .map_err(|e| self.read_err(e))
        };
        Ok(Pruned {
            events: count("events", PRUNE_EVENTS, &[&p.0])?,
            ledger_rows: count(
                "blob_ledger",
                FORGET_LEDGER,
                &[&p.0, &p.1, &p.2, &p.3, &p.4],
            )?,
            pending_rows: count("pending_blobs", FORGET_PENDING, &[&p.0, &p.1, &p.2])?,
            runs: count("runs", PRUNE_RUNS, &[&p.0])?,
            quarantine_rows: count("quarantine", PRUNE_QUARANTINE, &[&p.0])?,
            interrupted: None,
            file_bytes: None,
        })
    }

    /// See [`Writer::prune`](crate::store::Writer::prune).
    pub(super) fn delete_prunable(&mut self, scope: PruneScope) -> Result<Pruned, StoreError> {
        let p = prune_params(scope);
        let mut pruned = Pruned::default();
        let before = self.file_bytes();
        // The bookkeeping first, in one transaction: if the prune stops after it, the events are still
        // there and a sync that fetches their blobs again only finds them stored.
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        pruned.ledger_rows = tx
            .execute(
                &format!("DELETE FROM blob_ledger WHERE {FORGET_LEDGER}"),
                params![p.0, p.1, p.2, p.3, p.4],
            )
            .map_err(|e| map_write(&self.path, e))?;
        pruned.pending_rows = tx
            .execute(
                &format!("DELETE FROM pending_blobs WHERE {FORGET_PENDING}"),
                params![p.0, p.1, p.2],
            )
            .map_err(|e| map_write(&self.path, e))?;
        // Unreadable records keep raw AuditData (UPNs, IP addresses): not past the retention either.
        pruned.quarantine_rows = tx
            .execute(
                &format!("DELETE FROM quarantine WHERE {PRUNE_QUARANTINE}"),
                [&p.0],
            )
            .map_err(|e| map_write(&self.path, e))?;
        tx.commit().map_err(|e| map_write(&self.path, e))?;
        loop {
            if let Some(signal) = self.stop.requested() {
                pruned.interrupted = Some(signal);
                if pruned.events > 0 {
                    self.forget_pruned().map_err(|e| map_write(&self.path, e))?;
                }
                pruned.file_bytes = self.give_space_back(before)?;
                return Ok(pruned);
            }
            let n = self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM events WHERE rowid IN \
                         (SELECT rowid FROM events WHERE {PRUNE_EVENTS} LIMIT ?2)"
                    ),
                    params![p.0, PRUNE_BATCH as i64],
                )
                .map_err(|e| map_write(&self.path, e))?;
            pruned.events += n;
            if n < PRUNE_BATCH {
                break;
            }
        }
        if pruned.events > 0 {
            self.forget_pruned().map_err(|e| map_write(&self.path, e))?;
        }
        pruned.runs = self
            .conn
            .execute(&format!("DELETE FROM runs WHERE {PRUNE_RUNS}"), [&p.0])
            .map_err(|e| map_write(&self.path, e))?;
        pruned.file_bytes = self.give_space_back(before)?;
        Ok(pruned)
    }

    /// After events were deleted: an app whose every launch that named it (or its environment) is gone
    /// names none now (its latest is older than the oldest launch left), and the dictionary rows no
    /// event uses any more are deleted with them (`UserId`s and UPNs do not outlive the retention).
    fn forget_pruned(&mut self) -> rusqlite::Result<()> {
        self.codes.clear();
        let tx = self.conn.transaction()?;
        let oldest: Option<i64> = tx
            .query_row(
                "SELECT min(unixepoch(creation_time)) FROM events \
                 WHERE operation = (SELECT id FROM operations WHERE name = ?1)",
                [LAUNCH],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        tx.execute(
            "UPDATE apps SET name = NULL, name_seen = NULL \
             WHERE ?1 IS NULL OR unixepoch(name_seen) < ?1",
            [oldest],
        )?;
        tx.execute(
            "UPDATE apps SET environment = NULL, environment_seen = NULL \
             WHERE ?1 IS NULL OR unixepoch(environment_seen) < ?1",
            [oldest],
        )?;
        tx.execute_batch(
            "DELETE FROM terms WHERE id NOT IN (SELECT workload FROM events WHERE workload IS NOT NULL)
                 AND id NOT IN (SELECT user_id FROM events WHERE user_id IS NOT NULL)
                 AND id NOT IN (SELECT app_name FROM events WHERE app_name IS NOT NULL);
             DELETE FROM people WHERE id NOT IN (SELECT person FROM events WHERE person IS NOT NULL)
                 AND id NOT IN (SELECT counted_as FROM people WHERE counted_as IS NOT NULL);
             DELETE FROM sources WHERE id NOT IN (SELECT source FROM events);
             DELETE FROM apps WHERE id NOT IN (SELECT app FROM events WHERE app IS NOT NULL);
             DELETE FROM environments WHERE id NOT IN
                 (SELECT environment FROM events WHERE environment IS NOT NULL)
                 AND id NOT IN (SELECT environment FROM apps WHERE environment IS NOT NULL);",
        )?;
        tx.commit()
    }

    /// The database's bytes on disk: the file and its write-ahead log.
    pub(super) fn file_bytes(&self) -> u64 {
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        size(&self.path) + size(&super::sidecar(&self.path, "-wal"))
    }

    /// Gives the pages a prune freed back to the file system (`auto_vacuum = INCREMENTAL`, then a
    /// checkpoint that truncates the log); the bytes on disk before and after.
    pub(super) fn give_space_back(
        &mut self,
        before: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        // Each step of the pragma frees one page: step it to the end.
        self.conn
            .prepare("PRAGMA incremental_vacuum")
            .and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            })
            .map_err(|e| map_write(&self.path, e))?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| map_write(&self.path, e))?;
        Ok(Some((before, self.file_bytes())))
    }
}

/// Events to delete: `?1` the cutoff. Through `events_time`, one range per operation.
const PRUNE_EVENTS: &str = "operation IN (SELECT id FROM operations) \
     AND unixepoch(creation_time) < unixepoch(?1)";

/// Ledger rows to forget: `?2` the ledger's cutoff (the cutoff, or 8 days ago if that is earlier and
/// the fetchable days are not included), `?3` whether they are: then also the blobs the deleted events
/// came from (a blob is created after its records, so some are younger than the cutoff), and, when
/// imported events (which name no blob) of the last 7 days + 48 hours (`?5`) are deleted, every blob
/// created before the cutoff + 48 hours (`?4`), which could hold them (the service can publish a record
/// up to 48 hours late). A blob forgotten that held nothing deleted is fetched again for nothing.
const FORGET_LEDGER: &str = "content_created < ?2 OR (?3 AND content_id IN \
     (SELECT s.content_id FROM sources s WHERE s.content_type IS NOT NULL AND s.id IN \
      (SELECT source FROM events WHERE operation IN (SELECT id FROM operations) \
       AND unixepoch(creation_time) < unixepoch(?1)))) \
     OR (?3 AND content_created < ?4 AND EXISTS (SELECT 1 FROM events e JOIN sources s ON s.id = e.source \
     WHERE e.operation IN (SELECT id FROM operations) AND unixepoch(e.creation_time) < unixepoch(?1) \
     AND unixepoch(e.creation_time) >= unixepoch(?5) AND s.content_type IS NULL))";

/// Pending rows to delete: those reported lost before the ledger's cutoff; with the fetchable days,
/// every blob listed but not stored before the cutoff (a sync lists it again).
const FORGET_PENDING: &str = "content_created < ?2 AND (lost_reported = 1 OR ?3) AND ?1 = ?1";

/// Quarantined records to delete: `?1` the cutoff. By when they were quarantined, which is after
/// their blob was created and so after the record's own time: none younger than the cutoff goes.
const PRUNE_QUARANTINE: &str = "quarantined_at < ?1";

/// Runs to delete: those that started before the cutoff, but never the latest (`status` shows it).
const PRUNE_RUNS: &str = "started_at < ?1 AND id < (SELECT max(id) FROM runs)";

/// How late the service may publish a record, at most (the CoE's "up to 48 hours").
const LATE: TimeDelta = TimeDelta::hours(48);

/// The cutoff, the ledger's cutoff, the fetchable flag (as a number), the cutoff + [`LATE`], and the
/// oldest event time a listable blob may hold (7 days + [`LATE`] ago), as stored text.
fn prune_params(scope: PruneScope) -> (String, String, i64, String, String) {
    let now = Utc::now();
    let ledger_cutoff = if scope.include_fetchable {
        scope.cutoff
    } else {
        scope.cutoff.min(now - TimeDelta::days(8))
    };
    (
        ts(scope.cutoff),
        ts(ledger_cutoff),
        i64::from(scope.include_fetchable),
        ts(scope.cutoff + LATE),
        ts(now - TimeDelta::days(crate::store::FETCHABLE_DAYS) - LATE),
    )
}
