//! The blob ledger and the pending blobs: what is stored, what was listed but not yet stored, and what
//! expired before it could be.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::events::{Writing, insert_event};
use super::{SqliteStore, map_write};
use crate::model::{BlobRef, LedgerEntry, Unit};
use crate::store::{Committed, Pending, QuarantinedRecord, StoreError};
use crate::time::{parse_stored, ts};

impl SqliteStore {
    pub(super) fn read_stored_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT content_id FROM blob_ledger WHERE content_created >= ?1 AND \
                 julianday(stored_at) >= coalesce(julianday((SELECT value FROM state \
                 WHERE key = 'operations_since')), 0)",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([ts(since)], |r| r.get::<_, String>(0))
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }

    pub(super) fn write_pending(&mut self, blobs: &[BlobRef]) -> Result<(), StoreError> {
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
                    // As handed back by the service, which could have put a credential in it.
                    crate::redact::redact(&b.content_uri),
                    ts(b.created),
                    b.expiration.map(ts),
                    now
                ])
                .map_err(|e| map_write(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| map_write(&self.path, e))
    }

    pub(super) fn write_units(&mut self, units: &[Unit]) -> Result<Committed, StoreError> {
        let new = self.stage_units(units)?;
        self.commit_staged()?;
        Ok(new)
    }

    /// See [`Writer::stage`](crate::store::Writer::stage).
    pub(super) fn stage_units(&mut self, units: &[Unit]) -> Result<Committed, StoreError> {
        let result = self.try_stage_units(units);
        if result.is_err() {
            self.abandon_staged();
        }
        result.map_err(|e| map_write(&self.path, e))
    }

    /// See [`Writer::commit_staged`](crate::store::Writer::commit_staged).
    pub(super) fn commit_staged(&mut self) -> Result<(), StoreError> {
        if !self.staged {
            return Ok(());
        }
        let result = self.try_commit_staged();
        if result.is_err() {
            self.abandon_staged();
        }
        result.map_err(|e| map_write(&self.path, e))
    }

    fn try_commit_staged(&mut self) -> rusqlite::Result<()> {
        let codec = self.codec.as_mut().ok_or(rusqlite::Error::InvalidQuery)?;
        Writing::new(&mut self.codes, codec).finish(&self.conn)?;
        self.conn.execute_batch("COMMIT")?;
        self.staged = false;
        Ok(())
    }

    /// Rolls back what was staged (nothing of it was committed: its units' ledger rows neither), and
    /// reads the caches again.
    pub(super) fn abandon_staged(&mut self) {
        if self.staged {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::debug!("rolling back the staged units: {e}");
            }
            self.staged = false;
        }
        self.forget_unwritten();
    }

    fn try_stage_units(&mut self, units: &[Unit]) -> rusqlite::Result<Committed> {
        let now = ts(Utc::now());
        // Milliseconds: compared with `operations_since`, which may lie in the same second.
        let stored_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut new = Committed::default();
        if !self.staged {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.staged = true;
        }
        let tx = &self.conn;
        let codec = self.codec.as_mut().ok_or(rusqlite::Error::InvalidQuery)?;
        let mut w = Writing::new(&mut self.codes, codec);
        {
            let mut ledger = tx
                .prepare_cached(
                    "INSERT INTO blob_ledger (content_id, content_type, content_created, content_expiration, \
                     stored_at, records_seen, records_kept) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(content_id) DO UPDATE SET stored_at = excluded.stored_at, \
                     records_seen = excluded.records_seen, records_kept = excluded.records_kept",
                )?;
            let mut quarantine = tx.prepare_cached(
                "INSERT INTO quarantine (origin, content_type, content_uri, position, reason, raw, \
                     quarantined_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(origin, position) DO NOTHING",
            )?;
            let mut unpend =
                tx.prepare_cached("DELETE FROM pending_blobs WHERE content_id = ?1")?;
            for unit in units {
                let LedgerEntry::Blob(blob) = &unit.ledger;
                for e in &unit.events {
                    new.events +=
                        insert_event(tx, &mut w, e, Some(&blob.content_type), &blob.content_id)?;
                }
                // As handed back by the service, which could have put a credential in it (as for
                // pending_blobs).
                let content_uri = crate::redact::redact(&blob.content_uri);
                for q in &unit.quarantined {
                    let inserted = quarantine.execute(params![
                        blob.content_id,
                        blob.content_type,
                        content_uri,
                        i64::try_from(q.position).unwrap_or(i64::MAX),
                        q.reason,
                        q.raw,
                        now
                    ])?;
                    // Only rows new to the table: a blob fetched again reports nothing again.
                    if inserted > 0 {
                        let more = usize::try_from(q.more).unwrap_or(usize::MAX);
                        new.quarantined = new.quarantined.saturating_add(1).saturating_add(more);
                    }
                }
                ledger.execute(params![
                    blob.content_id,
                    blob.content_type,
                    ts(blob.created),
                    blob.expiration.map(ts),
                    stored_at,
                    unit.records_seen as i64,
                    unit.events.len() as i64
                ])?;
                unpend.execute([&blob.content_id])?;
            }
        }
        Ok(new)
    }

    pub(super) fn write_failure(
        &mut self,
        content_id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE pending_blobs SET attempts = attempts + 1, last_error = ?2 WHERE content_id = ?1",
                // The error may quote a service's answer that echoed a credential.
                params![content_id, crate::redact::redact(error)],
            )
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    pub(super) fn read_lost_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM pending_blobs WHERE lost_reported = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.read_err(e))
    }

    pub(super) fn read_quarantine(
        &self,
        newest: usize,
    ) -> Result<(i64, Vec<QuarantinedRecord>), StoreError> {
        let count = self
            .conn
            .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT quarantined_at, origin, content_type, position, reason FROM quarantine \
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([i64::try_from(newest).unwrap_or(i64::MAX)], |r| {
                Ok(QuarantinedRecord {
                    quarantined_at: r.get(0)?,
                    origin: r.get(1)?,
                    content_type: r.get(2)?,
                    position: r.get(3)?,
                    reason: r.get(4)?,
                })
            })
            .map_err(|e| self.read_err(e))?;
        let newest = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.read_err(e))?;
        Ok((count, newest))
    }

    pub(super) fn read_ledger_size(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM blob_ledger", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    /// Pending blobs not reported lost; with `expired_by`, only those expired by then.
    pub(super) fn pending_rows(
        &self,
        expired_by: Option<DateTime<Utc>>,
    ) -> Result<Vec<Pending>, StoreError> {
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
}
