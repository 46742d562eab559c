//! What the reports read (`store::tally` counts): the launches in a time range through the covering
//! index `events_time` (integers only: time, app, person, environment), and what their codes stand
//! for. No raw record and no text column of `events` is read.
//!
//! A person is counted by the key of their `people` row (see `events::user_key`), or by the object id
//! it was linked to (`counted_as`), and shown by the UPN last seen with that object id.

use std::collections::HashMap;

use rusqlite::OptionalExtension;
use rusqlite::types::ValueRef;

use super::SqliteStore;
use super::events::LAUNCH;
use super::raw::Readers;
use crate::store::tally::{AppName, Launch, LaunchNames, NONE, Person};
use crate::store::{ExportedEvent, StoreError};

/// The launches of a time range: ?1 the launch operation's code, ?2 from, ?3 to (seconds). One range
/// of the covering index `events_time`; the table is read only for a row inserted through the view
/// without a person (a deferred seek: SQLite reads the table row only when `user_id` is evaluated).
pub(super) const SCAN_LAUNCHES: &str = "SELECT unixepoch(creation_time), app, person, environment, \
     CASE WHEN person IS NULL THEN user_id END FROM events \
     WHERE operation = ?1 AND unixepoch(creation_time) >= ?2 AND unixepoch(creation_time) < ?3";

/// A dictionary row as `read_launch_names` reads it: code, text, and two optional texts.
type NameRow = (i64, String, Option<String>, Option<String>);

/// A code read from SQLite as the tally's `u32` (NULL → [`NONE`]); rowids past `u32` do not occur in
/// dictionaries of this size, and would count as none rather than as another code.
fn code(v: Option<i64>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(NONE)
}

/// A `Vec` indexed by code, filled from `(code, value)` rows.
fn by_code<T: Default + Clone>(rows: Vec<(i64, T)>) -> Vec<T> {
    let len = rows
        .iter()
        .map(|(c, _)| usize::try_from(*c).unwrap_or(0))
        .max()
        .map_or(1, |m| m + 1);
    let mut v = vec![T::default(); len];
    for (c, value) in rows {
        if let Some(slot) = usize::try_from(c).ok().and_then(|c| v.get_mut(c)) {
            *slot = value;
        }
    }
    v
}

impl SqliteStore {
    /// The code of the `LaunchPowerApp` operation, `None` while no launch is stored.
    fn launch_code(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT id FROM operations WHERE name = ?1", [LAUNCH], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.read_err(e))
    }

    pub(super) fn read_launch_names(&self) -> Result<LaunchNames, StoreError> {
        let rows = |sql: &str| -> Result<Vec<NameRow>, StoreError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.read_err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(|e| self.read_err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
        };
        let apps = rows(
            "SELECT a.id, a.app_id, a.name, v.environment_id FROM apps a \
             LEFT JOIN environments v ON v.id = a.environment",
        )?;
        let environments = rows("SELECT id, environment_id, NULL, NULL FROM environments")?;
        // The UPN last seen with each object id (the latest, then the first by text).
        let mut upn_of: HashMap<String, (String, String)> = HashMap::new();
        for (_, upn, object_id, seen) in
            rows("SELECT 0, upn, object_id, last_seen FROM user_identities")?
        {
            let (Some(oid), Some(seen)) = (object_id, seen) else {
                continue;
            };
            let better = upn_of
                .get(&oid)
                .is_none_or(|(s, u)| seen > *s || (seen == *s && upn < *u));
            if better {
                upn_of.insert(oid, (seen, upn));
            }
        }
        let people: Vec<(i64, String, i64)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, key, coalesce(counted_as, id) FROM people")
                .map_err(|e| self.read_err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.read_err(e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| self.read_err(e))?
        };
        Ok(LaunchNames {
            apps: by_code(
                apps.into_iter()
                    .map(|(c, app_id, name, environment)| {
                        (
                            c,
                            AppName {
                                app_id,
                                name,
                                environment,
                            },
                        )
                    })
                    .collect(),
            ),
            people: by_code(
                people
                    .into_iter()
                    .map(|(c, key, counted_as)| {
                        let shown = upn_of.get(&key).map_or(key.clone(), |(_, u)| u.clone());
                        let counted_as = code(Some(counted_as));
                        (c, Person { counted_as, shown })
                    })
                    .collect(),
            ),
            environments: by_code(
                environments
                    .into_iter()
                    .map(|(c, e, _, _)| (c, e))
                    .collect(),
            ),
        })
    }

    pub(super) fn read_launches(
        &self,
        (from, to): (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(Launch),
    ) -> Result<LaunchNames, StoreError> {
        let mut names = self.read_launch_names()?;
        let Some(launch) = self.launch_code()? else {
            return Ok(names);
        };
        // A row inserted into the `audit_events` view without a `user_key` names no person: it counts
        // by its `UserId`, lower-cased (the table is read for those rows only: a deferred seek).
        let mut by_user_id: HashMap<i64, u32> = HashMap::new();
        let mut keys: Option<HashMap<String, u32>> = None;
        let mut stmt = self
            .conn
            .prepare_cached(SCAN_LAUNCHES)
            .map_err(|e| self.read_err(e))?;
        let mut rows = stmt
            .query(rusqlite::params![
                launch,
                from.unwrap_or(i64::MIN),
                to.unwrap_or(i64::MAX)
            ])
            .map_err(|e| self.read_err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.read_err(e))? {
            let get = |i| r.get::<_, Option<i64>>(i).map_err(|e| self.read_err(e));
            let Some(at) = get(0)? else { continue };
            let mut person = code(get(2)?);
            if let Some(user_id) = get(4)? {
                person = match by_user_id.get(&user_id) {
                    Some(p) => *p,
                    None => {
                        let p = self.person_of_user_id(user_id, &mut keys, &mut names)?;
                        by_user_id.insert(user_id, p);
                        p
                    }
                };
            }
            visit(Launch {
                at,
                app: code(get(1)?),
                person,
                environment: code(get(3)?),
            });
        }
        Ok(names)
    }

    /// The person a `UserId` (a `terms` code) counts as: the `people` row of its lower-cased text, or a
    /// new code past them, added to `names`.
    fn person_of_user_id(
        &self,
        user_id: i64,
        keys: &mut Option<HashMap<String, u32>>,
        names: &mut LaunchNames,
    ) -> Result<u32, StoreError> {
        let text: String = self
            .conn
            .query_row("SELECT value FROM terms WHERE id = ?1", [user_id], |r| {
                r.get(0)
            })
            .map_err(|e| self.read_err(e))?;
        let folded = text.to_lowercase();
        let keys = match keys {
            Some(k) => k,
            None => {
                let mut stmt = self
                    .conn
                    .prepare("SELECT key, id FROM people")
                    .map_err(|e| self.read_err(e))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, code(r.get(1)?))))
                    .map_err(|e| self.read_err(e))?;
                keys.insert(
                    rows.collect::<Result<_, _>>()
                        .map_err(|e| self.read_err(e))?,
                )
            }
        };
        if let Some(p) = keys.get(&folded) {
            return Ok(*p);
        }
        let p = u32::try_from(names.people.len()).unwrap_or(u32::MAX);
        names.people.push(Person {
            counted_as: p,
            shown: folded.clone(),
        });
        keys.insert(folded, p);
        Ok(p)
    }

    pub(super) fn read_oldest_launch(&self) -> Result<Option<i64>, StoreError> {
        let Some(launch) = self.launch_code()? else {
            return Ok(None);
        };
        self.conn
            .query_row(super::events::OLDEST_LAUNCH, [launch], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    pub(super) fn read_export(
        &self,
        (from, to): (Option<i64>, Option<i64>),
        visit: &mut dyn FnMut(&ExportedEvent) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let operations: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM operations ORDER BY name")
                .map_err(|e| self.read_err(e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| self.read_err(e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| self.read_err(e))?
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.id, e.creation_time, o.name, w.value, e.record_type, u.value, \
                 coalesce(c.key, p.key), a.app_id, n.value, v.environment_id, s.content_type, \
                 s.content_id, e.dictionary, e.raw \
                 FROM events e JOIN operations o ON o.id = e.operation \
                 LEFT JOIN terms w ON w.id = e.workload LEFT JOIN terms u ON u.id = e.user_id \
                 LEFT JOIN apps a ON a.id = e.app LEFT JOIN terms n ON n.id = e.app_name \
                 LEFT JOIN environments v ON v.id = e.environment \
                 LEFT JOIN sources s ON s.id = e.source LEFT JOIN people p ON p.id = e.person \
                 LEFT JOIN people c ON c.id = p.counted_as \
                 WHERE e.operation = ?1 AND unixepoch(e.creation_time) >= ?2 \
                 AND unixepoch(e.creation_time) < ?3 ORDER BY unixepoch(e.creation_time)",
            )
            .map_err(|e| self.read_err(e))?;
        let mut readers = Readers::default();
        let mut written = 0;
        for operation in operations {
            let mut rows = stmt
                .query(rusqlite::params![
                    operation,
                    from.unwrap_or(i64::MIN),
                    to.unwrap_or(i64::MAX)
                ])
                .map_err(|e| self.read_err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.read_err(e))? {
                let event = self
                    .exported(r, &mut readers)
                    .map_err(|e| self.read_err(e))?;
                visit(&event).map_err(StoreError::Output)?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// One row of the export's query, its raw record read back.
    fn exported(
        &self,
        r: &rusqlite::Row<'_>,
        readers: &mut Readers,
    ) -> rusqlite::Result<ExportedEvent> {
        let dictionary: Option<i64> = r.get(12)?;
        let bytes = match (dictionary, r.get_ref(13)?) {
            // As another program inserted it through the view, not adopted yet.
            (Some(-1), ValueRef::Text(b) | ValueRef::Blob(b)) => b.to_vec(),
            (d, ValueRef::Blob(frame)) => readers.read(&self.conn, d, frame)?,
            (_, ValueRef::Text(t)) => t.to_vec(),
            _ => Vec::new(),
        };
        // What auditsync stored is the UTF-8 text it received; only another program's bytes could be
        // otherwise, and are shown with U+FFFD for what is not UTF-8.
        let raw = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(ExportedEvent {
            id: r.get(0)?,
            creation_time: r.get(1)?,
            operation: r.get(2)?,
            workload: r.get(3)?,
            record_type: r.get(4)?,
            user_id: r.get(5)?,
            user_key: r.get(6)?,
            app_id: r.get(7)?,
            app_name: r.get(8)?,
            environment_id: r.get(9)?,
            content_type: r.get(10)?,
            content_id: r.get(11)?,
            raw,
        })
    }
}
