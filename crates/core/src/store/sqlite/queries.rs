//! The query ledger of the Graph audit log query API (`graph_queries`, schema 4), the events a query
//! brings (staged with its row, so both commit together), and what `verify` reads: the stored Ids of a
//! time range.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::events::{Writing, insert_event};
use super::{SqliteStore, map_write};
use crate::model::Event;
use crate::store::{QueryPurpose, QueryRow, QueryState, StoreError};
use crate::time::{parse_stored, ts};

/// The columns of a ledger row, in [`QueryRow`]'s order (after the id).
const COLUMNS: &str = "purpose, window_start, window_end, display_name, query_id, state, service_status, \
     records_read, approximate_count, limit_exceeded, events_new, submitted_at, updated_at, loaded_at, error";

/// Inserts a ledger row: ?1..?15 the [`COLUMNS`].
const INSERT_QUERY: &str = "INSERT INTO graph_queries (purpose, window_start, window_end, display_name, \
     query_id, state, service_status, records_read, approximate_count, limit_exceeded, events_new, \
     submitted_at, updated_at, loaded_at, error) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

/// Updates the ledger row ?16 to the [`COLUMNS`] ?1..?15.
const UPDATE_QUERY: &str = "UPDATE graph_queries SET purpose = ?1, window_start = ?2, window_end = ?3, \
     display_name = ?4, query_id = ?5, state = ?6, service_status = ?7, records_read = ?8, \
     approximate_count = ?9, limit_exceeded = ?10, events_new = ?11, submitted_at = ?12, \
     updated_at = ?13, loaded_at = ?14, error = ?15 WHERE id = ?16";

/// The stored events of one operation in a time range: ?1 the operation's code, ?2 from, ?3 to
/// (seconds). One range of the index `events_time`; the table row is read for the `Id`.
pub(super) const LAUNCH_IDS: &str = "SELECT unixepoch(creation_time), rowid, id FROM events \
     WHERE operation = ?1 AND unixepoch(creation_time) >= ?2 AND unixepoch(creation_time) < ?3";

/// What a failed stage adds to its error: the staged writes are gone with it.
const STAGED_LOST: &str = "; nothing staged since the last commit was written";

/// A ledger row as read, before its texts are understood.
type Stored = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    [Option<i64>; 3],
    bool,
    [String; 2],
    Option<String>,
    Option<String>,
);

fn read_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        [r.get(8)?, r.get(9)?, r.get(11)?],
        r.get::<_, i64>(10)? != 0,
        [r.get(12)?, r.get(13)?],
        r.get(14)?,
        r.get(15)?,
    ))
}

/// A stored count as `u64` (a negative one, written by hand, reads as none).
fn count(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

/// A count as SQLite stores it.
fn stored_count(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// What a stored row means; the reason when a column holds what auditsync never writes.
fn understand(stored: Stored) -> Result<QueryRow, String> {
    let (
        id,
        purpose,
        start,
        end,
        display_name,
        query_id,
        state,
        service_status,
        counts,
        limit,
        at,
        loaded,
        error,
    ) = stored;
    let time = |column: &str, text: &str| {
        parse_stored(text).ok_or_else(|| format!("its {column} {text:?} is not a time"))
    };
    Ok(QueryRow {
        id: Some(id),
        purpose: QueryPurpose::parse(&purpose)
            .ok_or_else(|| format!("its purpose {purpose:?} is neither backfill nor verify"))?,
        window: (time("window_start", &start)?, time("window_end", &end)?),
        display_name,
        query_id,
        state: QueryState::parse(&state)
            .ok_or_else(|| format!("its state {state:?} is not known"))?,
        service_status,
        records_read: count(counts[0]),
        approximate_count: count(counts[1]),
        limit_exceeded: limit,
        events_new: count(counts[2]),
        submitted_at: time("submitted_at", &at[0])?,
        updated_at: time("updated_at", &at[1])?,
        loaded_at: loaded
            .as_deref()
            .map(|t| time("loaded_at", t))
            .transpose()?,
        error,
    })
}

/// Writes `row` as an insert (no id) or as the update of its id: the number of rows changed.
fn write_row(conn: &rusqlite::Connection, row: &QueryRow) -> rusqlite::Result<(usize, i64)> {
    // The error may quote a service's answer that echoed a credential.
    let error = row.error.as_deref().map(crate::redact::redact);
    let values = params![
        row.purpose.as_str(),
        ts(row.window.0),
        ts(row.window.1),
        row.display_name,
        row.query_id,
        row.state.as_str(),
        row.service_status,
        stored_count(row.records_read),
        stored_count(row.approximate_count),
        row.limit_exceeded,
        stored_count(row.events_new),
        ts(row.submitted_at),
        ts(row.updated_at),
        row.loaded_at.map(ts),
        error,
    ];
    match row.id {
        None => {
            let n = conn.prepare_cached(INSERT_QUERY)?.execute(values)?;
            Ok((n, conn.last_insert_rowid()))
        }
        Some(id) => {
            let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
            all.push(&id);
            let n = conn.prepare_cached(UPDATE_QUERY)?.execute(&*all)?;
            Ok((n, id))
        }
    }
}

impl SqliteStore {
    /// See [`Reader::graph_queries`](crate::store::Reader::graph_queries).
    pub(super) fn read_graph_queries(
        &self,
        purpose: QueryPurpose,
    ) -> Result<Vec<QueryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, {COLUMNS} FROM graph_queries WHERE purpose = ?1 \
                 ORDER BY window_start, id"
            ))
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([purpose.as_str()], read_row)
            .map_err(|e| self.read_err(e))?;
        let mut out = Vec::new();
        for stored in rows {
            let stored = stored.map_err(|e| self.read_err(e))?;
            let id = stored.0;
            out.push(understand(stored).map_err(|why| StoreError::Read {
                path: self.path.clone(),
                reason: format!(
                    "row {id} of graph_queries cannot be understood: {why} (was it edited by hand? \
                     delete that row and the window is queried again)"
                ),
            })?);
        }
        Ok(out)
    }

    /// See [`Reader::graph_submissions_since`](crate::store::Reader::graph_submissions_since).
    pub(super) fn read_graph_submissions_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM graph_queries WHERE (query_id IS NOT NULL OR state = 'submitting') \
                 AND unixepoch(submitted_at) >= unixepoch(?1)",
                [ts(since)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.read_err(e))
    }

    /// See [`Reader::launch_ids`](crate::store::Reader::launch_ids).
    pub(super) fn read_launch_ids(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        operations: &[String],
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let up = |t: DateTime<Utc>| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        let (from, to) = (up(from), up(to));
        let mut found: Vec<(i64, i64, String)> = Vec::new();
        let mut code = self
            .conn
            .prepare_cached("SELECT id FROM operations WHERE name = ?1")
            .map_err(|e| self.read_err(e))?;
        let mut range = self
            .conn
            .prepare_cached(LAUNCH_IDS)
            .map_err(|e| self.read_err(e))?;
        let mut seen = std::collections::HashSet::new();
        for operation in operations {
            let Some(op) = code
                .query_row([operation], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(|e| self.read_err(e))?
            else {
                continue;
            };
            if !seen.insert(op) {
                continue;
            }
            let rows = range
                .query_map(params![op, from, to], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.read_err(e))?;
            for row in rows {
                found.push(row.map_err(|e| self.read_err(e))?);
            }
        }
        found.sort_unstable_by_key(|(t, rowid, _)| (*t, *rowid));
        Ok(found
            .into_iter()
            .filter_map(|(t, _, id)| Some((id, DateTime::from_timestamp(t, 0)?)))
            .collect())
    }

    /// See [`Writer::save_query`](crate::store::Writer::save_query).
    pub(super) fn write_query(&mut self, row: &QueryRow) -> Result<i64, StoreError> {
        self.commit_staged()?;
        let (changed, id) = write_row(&self.conn, row).map_err(|e| self.write_err(e))?;
        if changed == 0 {
            return Err(self.no_such_query(id, ""));
        }
        Ok(id)
    }

    /// See [`Writer::stage_events`](crate::store::Writer::stage_events).
    pub(super) fn stage_events(
        &mut self,
        events: &[Event],
        source: &str,
    ) -> Result<usize, StoreError> {
        let result = self.try_stage_events(events, source);
        if result.is_err() {
            self.abandon_staged();
        }
        result.map_err(|e| map_write(&self.path, e))
    }

    fn try_stage_events(&mut self, events: &[Event], source: &str) -> rusqlite::Result<usize> {
        self.begin_staged()?;
        let codec = self.codec.as_mut().ok_or(rusqlite::Error::InvalidQuery)?;
        let mut w = Writing::new(&mut self.codes, codec);
        let mut new = 0;
        for e in events {
            new += insert_event(&self.conn, &mut w, e, None, source)?;
        }
        Ok(new)
    }

    /// See [`Writer::stage_query`](crate::store::Writer::stage_query).
    pub(super) fn stage_query(&mut self, row: &QueryRow) -> Result<(), StoreError> {
        let result = match row.id {
            None => Err(StoreError::Write {
                path: self.path.clone(),
                reason: format!(
                    "the query ledger row of {} was staged before it was saved (it has no id){STAGED_LOST}",
                    row.display_name
                ),
            }),
            Some(_) => match self
                .begin_staged()
                .and_then(|()| write_row(&self.conn, row))
            {
                Ok((0, id)) => Err(self.no_such_query(id, STAGED_LOST)),
                Ok(_) => Ok(()),
                Err(e) => Err(map_write(&self.path, e)),
            },
        };
        if result.is_err() {
            self.abandon_staged();
        }
        result
    }

    /// Opens the write transaction that staged writes share, unless it is open.
    fn begin_staged(&mut self) -> rusqlite::Result<()> {
        if !self.staged {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.staged = true;
        }
        Ok(())
    }

    /// The update of ledger row `id` changed nothing: the row is not there.
    fn no_such_query(&self, id: i64, then: &str) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            reason: format!(
                "there is no row {id} in graph_queries to update (was it deleted meanwhile?){then}"
            ),
        }
    }
}
