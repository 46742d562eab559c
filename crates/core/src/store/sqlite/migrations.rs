//! Schema migrations of the SQLite store, keyed on `PRAGMA user_version`, one function per step.
//! Append only: never edit or remove a step, never lose a value that a released version wrote; a new
//! column or table, or a new layout, is a new step (and a test that upgrades the previous release's
//! database to it, keeping every value).

use rusqlite::{Connection, Transaction, params};

use crate::extract::Filter;

/// The steps, in order: `STEPS[i]` moves the schema from version `i` to `i + 1`, inside the one
/// transaction [`migrate`] opens. A step is code, so it can move data as well as change tables.
const STEPS: &[fn(&Transaction<'_>) -> rusqlite::Result<()>] = &[
    v1_tables,
    v2_quarantine_and_users,
    v3_compact_events,
    v4_graph_queries,
];

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

/// The compact layout's tables and indexes (see `codes.rs` and `raw.rs`), and `audit_events` as a
/// view of it with the columns the table had. Its `raw` is the stored value: a zstd frame
/// (`events.dictionary` names its dictionary) for what auditsync stored, which `auditsync export
/// --format jsonl` gives back byte for byte. Rows inserted into the view by another program (plain SQL, as into the
/// table it was) go into the layout through an `INSTEAD OF` trigger: the raw record stays text
/// (`dictionary` NULL), and a row without a `user_key` names no person (the reports then count it by
/// its `UserId`, lower-cased, as they did).
///
/// `events` is read by the reports through one covering index, `events_time`: operation, time (seconds
/// since the epoch, from the stored RFC 3339 text), app, person, environment, all integers; the raw
/// record and the other columns are never read by a report.
pub(super) const COMPACT_SCHEMA: &str = "CREATE TABLE operations (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE terms (
        id    INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE
    );
    CREATE TABLE apps (
        id               INTEGER PRIMARY KEY,
        app_id           TEXT NOT NULL UNIQUE,
        name             TEXT,
        name_seen        TEXT,
        environment      INTEGER,
        environment_seen TEXT
    );
    CREATE TABLE environments (
        id             INTEGER PRIMARY KEY,
        environment_id TEXT NOT NULL UNIQUE
    );
    CREATE TABLE people (
        id         INTEGER PRIMARY KEY,
        key        TEXT NOT NULL UNIQUE,
        counted_as INTEGER
    );
    CREATE TABLE sources (
        id           INTEGER PRIMARY KEY,
        content_id   TEXT,
        content_type TEXT
    );
    CREATE UNIQUE INDEX sources_key ON sources (content_id, content_type);
    CREATE TABLE raw_dictionaries (
        id         INTEGER PRIMARY KEY,
        dictionary BLOB NOT NULL,
        trained_at TEXT NOT NULL,
        samples    INTEGER NOT NULL
    );
    CREATE TABLE events (
        id            TEXT NOT NULL,
        creation_time TEXT NOT NULL,
        operation     INTEGER NOT NULL,
        workload      INTEGER,
        record_type   INTEGER,
        user_id       INTEGER,
        app           INTEGER,
        app_name      INTEGER,
        environment   INTEGER,
        person        INTEGER,
        source        INTEGER NOT NULL,
        dictionary    INTEGER,
        raw           BLOB NOT NULL
    );
    CREATE UNIQUE INDEX events_id ON events (id);
    CREATE INDEX events_time ON events
        (operation, unixepoch(creation_time), app, person, environment);
    CREATE VIEW audit_events AS SELECT e.id, e.creation_time, o.name AS operation,
        w.value AS workload, e.record_type, u.value AS user_id, a.app_id, n.value AS app_name,
        v.environment_id, s.content_type, s.content_id, e.raw, coalesce(c.key, p.key) AS user_key
    FROM events e
        LEFT JOIN operations o ON o.id = e.operation
        LEFT JOIN terms w ON w.id = e.workload
        LEFT JOIN terms u ON u.id = e.user_id
        LEFT JOIN apps a ON a.id = e.app
        LEFT JOIN terms n ON n.id = e.app_name
        LEFT JOIN environments v ON v.id = e.environment
        LEFT JOIN sources s ON s.id = e.source
        LEFT JOIN people p ON p.id = e.person
        LEFT JOIN people c ON c.id = p.counted_as;
    CREATE TRIGGER audit_events_insert INSTEAD OF INSERT ON audit_events BEGIN
        INSERT INTO operations (name) SELECT NEW.operation
            WHERE NOT EXISTS (SELECT 1 FROM operations WHERE name = NEW.operation);
        INSERT INTO terms (value) SELECT NEW.workload WHERE NEW.workload IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM terms WHERE value = NEW.workload);
        INSERT INTO terms (value) SELECT NEW.user_id WHERE NEW.user_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM terms WHERE value = NEW.user_id);
        INSERT INTO terms (value) SELECT NEW.app_name WHERE NEW.app_name IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM terms WHERE value = NEW.app_name);
        INSERT INTO apps (app_id) SELECT NEW.app_id WHERE NEW.app_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM apps WHERE app_id = NEW.app_id);
        INSERT INTO environments (environment_id) SELECT NEW.environment_id
            WHERE NEW.environment_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM environments WHERE environment_id = NEW.environment_id);
        INSERT INTO people (key) SELECT NEW.user_key WHERE NEW.user_key IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM people WHERE key = NEW.user_key);
        INSERT INTO sources (content_id, content_type) SELECT NEW.content_id, NEW.content_type
            WHERE NOT EXISTS (SELECT 1 FROM sources
                WHERE content_id IS NEW.content_id AND content_type IS NEW.content_type);
        INSERT INTO events (id, creation_time, operation, workload, record_type, user_id, app, app_name,
            environment, person, source, dictionary, raw)
        VALUES (NEW.id, NEW.creation_time,
            (SELECT id FROM operations WHERE name = NEW.operation),
            (SELECT id FROM terms WHERE value = NEW.workload), NEW.record_type,
            (SELECT id FROM terms WHERE value = NEW.user_id),
            (SELECT id FROM apps WHERE app_id = NEW.app_id),
            (SELECT id FROM terms WHERE value = NEW.app_name),
            (SELECT id FROM environments WHERE environment_id = NEW.environment_id),
            (SELECT id FROM people WHERE key = NEW.user_key),
            (SELECT id FROM sources WHERE content_id IS NEW.content_id
                AND content_type IS NEW.content_type),
            -1, NEW.raw);
        UPDATE apps SET
            name = CASE WHEN NEW.app_name IS NOT NULL
                AND (name_seen IS NULL OR name_seen <= NEW.creation_time) THEN NEW.app_name ELSE name END,
            name_seen = CASE WHEN NEW.app_name IS NOT NULL
                AND (name_seen IS NULL OR name_seen <= NEW.creation_time)
                THEN NEW.creation_time ELSE name_seen END,
            environment = CASE WHEN NEW.environment_id IS NOT NULL
                AND (environment_seen IS NULL OR environment_seen <= NEW.creation_time)
                THEN (SELECT id FROM environments WHERE environment_id = NEW.environment_id)
                ELSE environment END,
            environment_seen = CASE WHEN NEW.environment_id IS NOT NULL
                AND (environment_seen IS NULL OR environment_seen <= NEW.creation_time)
                THEN NEW.creation_time ELSE environment_seen END
            WHERE changes() = 1 AND NEW.operation = 'LaunchPowerApp' AND app_id = NEW.app_id;
        INSERT INTO state (key, value) SELECT 'adopt_from', (SELECT max(rowid) FROM events)
            WHERE NOT EXISTS (SELECT 1 FROM state WHERE key = 'adopt_from');
    END;";

/// 3: the compact layout. Every row of the old `audit_events` table moves into it with every value
/// (the raw record compressed against a dictionary trained on a sample of them), then the table
/// gives way to the view of the same name. The space the old table took is given back by the
/// `VACUUM` that `open_write` runs once after this migration (it cannot run in a transaction).
fn v3_compact_events(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE audit_events RENAME TO audit_events_v2;")?;
    tx.execute_batch(COMPACT_SCHEMA)?;
    super::events::move_v2_rows(tx)?;
    tx.execute_batch("DROP TABLE audit_events_v2;")
}

/// 4: the query ledger of the Graph audit log query API (`backfill`, `verify`): one row per query
/// submitted, with its window `[window_start, window_end)` (RFC 3339 UTC), its `displayName`, the
/// service's query id (`NULL` while it is being submitted), where it stands (`state`: `submitting`,
/// `submitted`, `loaded`, `split`, `failed`, `truncated`), the service's last `status`, the records
/// read, `approximateReturnedRecordCount`, `isRecordCountLimitExceeded`, the events it brought that
/// were new, and when it was submitted, last changed and loaded. No existing table changes.
fn v4_graph_queries(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE graph_queries (
        id                INTEGER PRIMARY KEY,
        purpose           TEXT NOT NULL,
        window_start      TEXT NOT NULL,
        window_end        TEXT NOT NULL,
        display_name      TEXT NOT NULL,
        query_id          TEXT,
        state             TEXT NOT NULL,
        service_status    TEXT,
        records_read      INTEGER,
        approximate_count INTEGER,
        limit_exceeded    INTEGER NOT NULL DEFAULT 0,
        events_new        INTEGER,
        submitted_at      TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        loaded_at         TEXT,
        error             TEXT
    );
    CREATE INDEX graph_queries_window ON graph_queries (purpose, window_start);",
    )
}

/// The version of the compact layout ([`v3_compact_events`]): a database older than it has its events
/// rewritten by the migration, which takes time (said before it starts).
pub(super) const COMPACT_VERSION: i64 = 3;

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
