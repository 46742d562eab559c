//! `audit_events`: the insert every source shares, imported events, the per-operation counts of
//! `status`, and pruning by age.

use chrono::{TimeDelta, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqliteStore, map_write};
use crate::model::Event;
use crate::store::{OperationCount, PruneScope, Pruned, StoreError};
use crate::time::ts;

/// Rows deleted per transaction when pruning, so a large prune never holds the database for long.
const PRUNE_BATCH: usize = 10_000;

/// An event's row; the same event again (same `Id`) changes nothing.
pub(super) const INSERT_EVENT: &str = "INSERT INTO audit_events (id, creation_time, operation, workload, \
     record_type, user_id, app_id, app_name, environment_id, content_type, content_id, raw, user_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT(id) DO NOTHING";

/// Inserts one event with [`INSERT_EVENT`], inside the caller's transaction, with its `user_key`
/// ([`user_key`]); 1 if it was new, 0 if it was stored already.
pub(super) fn insert_event(
    tx: &Transaction<'_>,
    e: &Event,
    content_type: Option<&str>,
    content_id: &str,
) -> rusqlite::Result<usize> {
    let key = user_key(
        tx,
        e.user_object_id.as_deref(),
        e.user_upn.as_deref(),
        &e.creation_time,
    )?;
    tx.prepare_cached(INSERT_EVENT)?.execute(params![
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
        e.raw,
        key
    ])
}

/// The key a person is counted by (`audit_events.user_key`): their Entra object id where the record
/// carries it; else the object id another record of the same UPN carried (`user_identities`); else
/// the lower-cased UPN; `None` when the record names no user.
///
/// A record that carries both keeps `user_identities` current (UPN → the object id of the newest
/// record naming both, and when that was) and, the first time a UPN is linked, moves the rows
/// counted by that UPN so far onto the object id, in the caller's transaction: a person is one key,
/// whichever record came first.
pub(super) fn user_key(
    tx: &Transaction<'_>,
    object_id: Option<&str>,
    upn: Option<&str>,
    seen: &str,
) -> rusqlite::Result<Option<String>> {
    match (object_id, upn) {
        (Some(oid), Some(upn)) => {
            let known: Option<String> = tx
                .prepare_cached("SELECT object_id FROM user_identities WHERE upn = ?1")?
                .query_row([upn], |r| r.get(0))
                .optional()?;
            // The newest record wins the UPN (a UPN given to someone else later); an older one,
            // imported from history, does not take it back. Nothing is written when nothing changes.
            tx.prepare_cached(
                "INSERT INTO user_identities (upn, object_id, last_seen) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(upn) DO UPDATE SET object_id = excluded.object_id, last_seen = excluded.last_seen \
                 WHERE excluded.last_seen > user_identities.last_seen",
            )?
            .execute(params![upn, oid, seen])?;
            if known.is_none() {
                tx.prepare_cached("UPDATE audit_events SET user_key = ?2 WHERE user_key = ?1")?
                    .execute(params![upn, oid])?;
            }
            Ok(Some(oid.to_owned()))
        }
        (Some(oid), None) => Ok(Some(oid.to_owned())),
        (None, Some(upn)) => {
            let known: Option<String> = tx
                .prepare_cached("SELECT object_id FROM user_identities WHERE upn = ?1")?
                .query_row([upn], |r| r.get(0))
                .optional()?;
            Ok(Some(known.unwrap_or_else(|| upn.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

impl SqliteStore {
    pub(super) fn write_events(
        &mut self,
        events: &[Event],
        source: &str,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        let mut inserted = 0;
        for e in events {
            inserted += insert_event(&tx, e, None, source).map_err(|e| map_write(&self.path, e))?;
        }
        tx.commit().map_err(|e| map_write(&self.path, e))?;
        Ok(inserted)
    }

    pub(super) fn read_events_by_operation(&self) -> Result<Vec<OperationCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT operation, count(*), min(creation_time), max(creation_time) FROM audit_events \
                 GROUP BY operation ORDER BY operation",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(OperationCount {
                    operation: r.get(0)?,
                    events: r.get(1)?,
                    first: r.get(2)?,
                    last: r.get(3)?,
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
            events: count("audit_events", PRUNE_EVENTS, &[&p.0])?,
            ledger_rows: count(
                "blob_ledger",
                FORGET_LEDGER,
                &[&p.0, &p.1, &p.2, &p.3, &p.4],
            )?,
            pending_rows: count("pending_blobs", FORGET_PENDING, &[&p.0, &p.1, &p.2])?,
            runs: count("runs", PRUNE_RUNS, &[&p.0])?,
            quarantine_rows: count("quarantine", PRUNE_QUARANTINE, &[&p.0])?,
            interrupted: None,
        })
    }

    /// See [`Writer::prune`](crate::store::Writer::prune).
    pub(super) fn delete_prunable(&mut self, scope: PruneScope) -> Result<Pruned, StoreError> {
        let p = prune_params(scope);
        let mut pruned = Pruned::default();
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
                return Ok(pruned);
            }
            let n = self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM audit_events WHERE rowid IN \
                         (SELECT rowid FROM audit_events WHERE {PRUNE_EVENTS} LIMIT ?2)"
                    ),
                    params![p.0, PRUNE_BATCH as i64],
                )
                .map_err(|e| map_write(&self.path, e))?;
            pruned.events += n;
            if n < PRUNE_BATCH {
                break;
            }
        }
        pruned.runs = self
            .conn
            .execute(&format!("DELETE FROM runs WHERE {PRUNE_RUNS}"), [&p.0])
            .map_err(|e| map_write(&self.path, e))?;
        Ok(pruned)
    }
}

/// Events to delete: `?1` the cutoff.
const PRUNE_EVENTS: &str = "creation_time < ?1";

/// Ledger rows to forget: `?2` the ledger's cutoff (the cutoff, or 8 days ago if that is earlier and
/// the fetchable days are not included), `?3` whether they are: then also the blobs the deleted events
/// came from (a blob is created after its records, so some are younger than the cutoff), and, when
/// imported events (which name no blob) of the last 7 days + 48 hours (`?5`) are deleted, every blob
/// created before the cutoff + 48 hours (`?4`), which could hold them (the service can publish a record
/// up to 48 hours late). A blob forgotten that held nothing deleted is fetched again for nothing.
const FORGET_LEDGER: &str = "content_created < ?2 OR (?3 AND content_id IN \
     (SELECT content_id FROM audit_events WHERE creation_time < ?1 AND content_type IS NOT NULL)) \
     OR (?3 AND content_created < ?4 AND EXISTS (SELECT 1 FROM audit_events \
     WHERE creation_time < ?1 AND creation_time >= ?5 AND content_type IS NULL))";

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
