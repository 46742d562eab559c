//! Schema migrations of the SQLite store, keyed on `PRAGMA user_version`, one function per step.
//! Append only: never edit or remove a step, never drop a table or column that a released version
//! wrote; a new column or table is a new step (and a test that upgrades the previous release's
//! database to it, keeping its rows).

use rusqlite::{Connection, Transaction, params};

use crate::extract::Filter;

/// The steps, in order: `STEPS[i]` moves the schema from version `i` to `i + 1`, inside the one
/// transaction [`migrate`] opens. A step is code, so it can move data as well as change tables.
const STEPS: &[fn(&Transaction<'_>) -> rusqlite::Result<()>] =
    &[v1_tables, v2_quarantine_and_users];

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

/// 2: the quarantine of records that cannot be read; who a user is (`audit_events.user_key`, the
/// `user_identities` of UPN → Entra object id), backfilled from each stored row's AuditData; and the
/// display name of legacy launches (RecordType 45), from their `AdditionalInfo`, where none is stored.
fn v2_quarantine_and_users(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE quarantine (
        id             INTEGER PRIMARY KEY,
        origin         TEXT NOT NULL,
        content_type   TEXT,
        content_uri    TEXT,
        position       INTEGER NOT NULL,
        reason         TEXT NOT NULL,
        raw            TEXT NOT NULL,
        quarantined_at TEXT NOT NULL,
        UNIQUE (origin, position)
    );
    CREATE TABLE user_identities (
        upn       TEXT PRIMARY KEY,
        object_id TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE INDEX user_identities_object_id ON user_identities (object_id);
    ALTER TABLE audit_events ADD COLUMN user_key TEXT;
    CREATE INDEX audit_events_user_key ON audit_events (user_key);",
    )?;
    backfill_users(tx)
}

/// Rows read per round of the backfill, so memory stays flat however large the table.
const BACKFILL_BATCH: i64 = 5_000;

/// Fills `user_key` (and the names of legacy launches) for rows stored before version 2, from their
/// AuditData as `extract` reads it today, falling back to the stored `user_id`; then links the rows
/// counted by a UPN to the object id another row of that UPN carried.
fn backfill_users(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, String, String, Option<String>, String, bool)> = tx
            .prepare(
                "SELECT rowid, operation, raw, user_id, creation_time, \
                 app_name IS NULL AND record_type IS NOT 256 FROM audit_events \
                 WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )?
            .query_map(params![after, BACKFILL_BATCH], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last() else {
            return tx.execute_batch(
                "UPDATE audit_events SET user_key = \
                 (SELECT object_id FROM user_identities i WHERE i.upn = audit_events.user_key) \
                 WHERE user_key IN (SELECT upn FROM user_identities)",
            );
        };
        after = last.0;
        for (rowid, operation, raw, user_id, seen, legacy_unnamed) in rows {
            let event = Filter::new(&[operation]).record(&raw).ok().flatten();
            let event = event.as_ref();
            let logged = user_id.as_deref().map(str::trim).unwrap_or_default();
            let object_id = event.and_then(|e| e.user_object_id.clone()).or_else(|| {
                uuid::Uuid::try_parse(logged)
                    .ok()
                    .map(|g| g.hyphenated().to_string())
            });
            let upn = event
                .and_then(|e| e.user_upn.clone())
                .or_else(|| logged.contains('@').then(|| logged.to_lowercase()));
            if let (Some(oid), Some(upn)) = (&object_id, &upn) {
                tx.prepare_cached(
                    "INSERT INTO user_identities (upn, object_id, last_seen) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(upn) DO UPDATE SET object_id = excluded.object_id, \
                     last_seen = excluded.last_seen WHERE excluded.last_seen >= last_seen",
                )?
                .execute(params![upn, oid, seen])?;
            }
            let name = event
                .and_then(|e| e.app_name.clone())
                .filter(|_| legacy_unnamed);
            tx.prepare_cached(
                "UPDATE audit_events SET user_key = ?2, app_name = coalesce(app_name, ?3) WHERE rowid = ?1",
            )?
            .execute(params![rowid, object_id.or(upn), name])?;
        }
    }
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
