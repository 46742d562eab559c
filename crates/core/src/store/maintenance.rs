//! Writes that are not a sync's: events from imported exports, and pruning by age.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::params;

use super::{INSERT_EVENT, Store, StoreError, insert_event, map_write};
use crate::extract::Event;
use crate::time::ts;

/// Rows deleted per transaction when pruning, so a large prune never holds the database for long.
const PRUNE_BATCH: usize = 10_000;

/// What a prune deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub events: usize,
    pub ledger_rows: usize,
    pub lost_blob_rows: usize,
}

impl Store {
    /// Inserts imported events in one transaction, marked with `source` in `content_id` (no content
    /// type: they did not come from a blob). Returns how many were new.
    pub fn insert_events(&mut self, events: &[Event], source: &str) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| map_write(&self.path, e))?;
        let mut inserted = 0;
        {
            let mut stmt = tx
                .prepare_cached(INSERT_EVENT)
                .map_err(|e| map_write(&self.path, e))?;
            for e in events {
                inserted += insert_event(&mut stmt, e, None, source)
                    .map_err(|e| map_write(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| map_write(&self.path, e))?;
        Ok(inserted)
    }

    /// Deletes events created before `cutoff`, in batches, and the bookkeeping of the same age. Ledger
    /// rows of the last 8 days are kept whatever the cutoff: without them a sync would fetch those
    /// blobs again and bring the pruned events back.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) -> Result<Pruned, StoreError> {
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
