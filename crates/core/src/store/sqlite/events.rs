//! `audit_events`: the insert every source shares, imported events, the per-operation counts of
//! `status`, and pruning by age.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqliteStore, map_write};
use crate::model::Event;
use crate::store::{OperationCount, Pruned, StoreError};
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

    pub(super) fn delete_older_than(
        &mut self,
        cutoff: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let ledger_cutoff = cutoff.min(Utc::now() - TimeDelta::days(8));
        let mut pruned = Pruned::default();
        loop {
            let n = self
                .conn
                .execute(
                    "DELETE FROM audit_events WHERE rowid IN \
                     (SELECT rowid FROM audit_events WHERE creation_time < ?1 LIMIT ?2)",
                    params![ts(cutoff), PRUNE_BATCH as i64],
                )
                .map_err(|e| map_write(&self.path, e))?;
            pruned.events += n;
            if n < PRUNE_BATCH {
                break;
            }
        }
        pruned.ledger_rows = self
            .conn
            .execute(
                "DELETE FROM blob_ledger WHERE content_created < ?1",
                [ts(ledger_cutoff)],
            )
            .map_err(|e| map_write(&self.path, e))?;
        pruned.lost_blob_rows = self
            .conn
            .execute(
                "DELETE FROM pending_blobs WHERE lost_reported = 1 AND content_created < ?1",
                [ts(ledger_cutoff)],
            )
            .map_err(|e| map_write(&self.path, e))?;
        Ok(pruned)
    }
}
