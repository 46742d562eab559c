//! Schema migrations of the SQLite store, keyed on `PRAGMA user_version`, one function per step.
//! Append only: never edit or remove a step, never drop a table or column that a released version
//! wrote; a new column or table is a new step (and a test that upgrades the previous release's
//! database to it, keeping its rows).

use rusqlite::{Connection, Transaction};

/// The steps, in order: `STEPS[i]` moves the schema from version `i` to `i + 1`, inside the one
/// transaction [`migrate`] opens. A step is code, so it can move data as well as change tables.
const STEPS: &[fn(&Transaction<'_>) -> rusqlite::Result<()>] = &[v1_tables];

/// 1: events, the blob ledger, pending blobs, runs, state.
fn v1_tables(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE audit_events (
        id             TEXT PRIMARY KEY,
        creation_time  TEXT NOT NULL,
        operation      TEXT NOT NULL,
        workload       TEXT,
        record_type    INTEGER,
        user_id        TEXT,
        app_id         TEXT,
        app_name       TEXT,
        environment_id TEXT,
        content_type   TEXT,
        content_id     TEXT,
        raw            TEXT NOT NULL
    );
    CREATE INDEX audit_events_creation_time ON audit_events (creation_time);
    CREATE INDEX audit_events_app ON audit_events (app_id, creation_time);
    CREATE INDEX audit_events_operation ON audit_events (operation, creation_time);
    CREATE TABLE blob_ledger (
        content_id         TEXT PRIMARY KEY,
        content_type       TEXT NOT NULL,
        content_created    TEXT NOT NULL,
        content_expiration TEXT,
        stored_at          TEXT NOT NULL,
        records_seen       INTEGER NOT NULL,
        records_kept       INTEGER NOT NULL
    );
    CREATE INDEX blob_ledger_created ON blob_ledger (content_created);
    CREATE TABLE pending_blobs (
        content_id         TEXT PRIMARY KEY,
        content_type       TEXT NOT NULL,
        content_uri        TEXT NOT NULL,
        content_created    TEXT NOT NULL,
        content_expiration TEXT,
        first_listed       TEXT NOT NULL,
        attempts           INTEGER NOT NULL DEFAULT 0,
        last_error         TEXT,
        lost_reported      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        window_start TEXT,
        window_end   TEXT,
        outcome      TEXT,
        summary      TEXT
    );
    CREATE TABLE state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    )
}

/// The schema version this build writes (and the only one it reads).
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], in one exclusive transaction: every missing step, the
/// application id, the new version. Nothing happens at the current version.
///
/// # Errors
/// The first failing statement's error; the transaction is rolled back, so the database stays at its
/// old version.
pub fn migrate(conn: &mut Connection, application_id: i32) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    for step in &STEPS[usize::try_from(version).unwrap_or(0)..] {
        step(&tx)?;
    }
    tx.pragma_update(None, "application_id", application_id)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, 7).unwrap();
        migrate(&mut c, 7).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
