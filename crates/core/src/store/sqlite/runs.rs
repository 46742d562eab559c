//! Runs (when each sync started and ended, and how) and the watermark (table `state`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, map_write};
use crate::store::{KeptFor, RunRecord, StoreError};
use crate::time::{parse_stored, ts};

impl SqliteStore {
    pub(super) fn read_watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM state WHERE key = 'watermark'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.read_err(e))?;
        Ok(v.as_deref().and_then(parse_stored))
    }

    /// The latest watermark a finished run recorded in its summary (`$.watermark`) that is not after
    /// `at`; runs whose summary is not JSON or names no watermark are passed over.
    pub(super) fn read_watermark_not_after(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT json_extract(summary, '$.watermark') FROM runs \
                 WHERE json_valid(summary) AND json_type(summary, '$.watermark') = 'text'",
            )
            .map_err(|e| self.read_err(e))?;
        let marks = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.read_err(e))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.read_err(e))?;
        Ok(marks
            .iter()
            .filter_map(|m| parse_stored(m))
            .filter(|m| *m <= at)
            .max())
    }

    pub(super) fn write_watermark(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES ('watermark', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [ts(at)],
            )
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    /// The operations the ledger's blobs were kept for (`state` key `operations`, a JSON array) and
    /// since when (`operations_since`: ledger rows stored before it were kept for fewer operations).
    pub(super) fn read_ledger_operations(&self) -> Result<Option<KeptFor>, StoreError> {
        let read = |key: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row("SELECT value FROM state WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.read_err(e))
        };
        let Some(ops) = read("operations")? else {
            return Ok(None);
        };
        let ops: Vec<String> = serde_json::from_str(&ops).unwrap_or_default();
        Ok(Some((
            ops,
            read("operations_since")?.as_deref().and_then(parse_stored),
        )))
    }

    pub(super) fn write_ledger_operations(
        &mut self,
        operations: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let ops = serde_json::to_string(operations).unwrap_or_default();
        // Milliseconds, as the ledger's `stored_at`: a run may store blobs in the same second.
        let since = since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        self.conn
            .execute(
                "INSERT INTO state (key, value) VALUES ('operations', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [ops],
            )
            .and_then(|_| match since {
                Some(v) => self.conn.execute(
                    "INSERT INTO state (key, value) VALUES ('operations_since', ?1) \
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [v],
                ),
                None => self
                    .conn
                    .execute("DELETE FROM state WHERE key = 'operations_since'", []),
            })
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    pub(super) fn write_run_start(
        &mut self,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, window_start, window_end) VALUES (?1, ?2, ?3)",
                params![ts(Utc::now()), ts(window.0), ts(window.1)],
            )
            .map_err(|e| self.write_err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub(super) fn write_run_end(
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
            // The summary quotes errors, which may quote a service's answer that echoed a credential.
            params![id, ts(Utc::now()), outcome, crate::redact::redact(summary)],
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

    pub(super) fn read_last_run(&self) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT started_at, finished_at, outcome, summary FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.read_err(e))
            .map(|row| {
                row.map(|(started, finished, outcome, summary)| RunRecord {
                started_at: parse_stored(&started),
                finished_at: finished.as_deref().and_then(parse_stored),
                outcome,
                    summary,
                })
            })
    }
}
