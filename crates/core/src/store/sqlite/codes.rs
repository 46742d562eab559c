//! The dictionaries of the compact layout (schema 3): each repeated text of an event (its operation,
//! workload, `UserId`, app name, app id, environment id, person, source) is stored once in a small table
//! and referred to by an integer code, so an event row and its index entries hold integers, not text.
//!
//! [`Codes`] caches the codes the writer has looked up or made. A cached code may name a row of a
//! transaction that was rolled back: the writer calls [`Codes::clear`] whenever a write fails.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// A dictionary table: its name and the column holding the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Dict {
    /// `operations(name)`: the operations (few: the configured ones).
    Operation,
    /// `terms(value)`: workloads, `UserId`s, app names.
    Term,
    /// `apps(app_id)`.
    App,
    /// `environments(environment_id)`.
    Environment,
    /// `people(key)`: the key a person is counted by (see `events::user_key`).
    Person,
}

impl Dict {
    fn select(self) -> &'static str {
        match self {
            Dict::Operation => "SELECT id FROM operations WHERE name = ?1",
            Dict::Term => "SELECT id FROM terms WHERE value = ?1",
            Dict::App => "SELECT id FROM apps WHERE app_id = ?1",
            Dict::Environment => "SELECT id FROM environments WHERE environment_id = ?1",
            Dict::Person => "SELECT id FROM people WHERE key = ?1",
        }
    }
    fn insert(self) -> &'static str {
        match self {
            Dict::Operation => "INSERT INTO operations (name) VALUES (?1)",
            Dict::Term => "INSERT INTO terms (value) VALUES (?1)",
            Dict::App => "INSERT INTO apps (app_id) VALUES (?1)",
            Dict::Environment => "INSERT INTO environments (environment_id) VALUES (?1)",
            Dict::Person => "INSERT INTO people (key) VALUES (?1)",
        }
    }
}

/// A source's content type and content id.
type SourceKey = (Option<String>, Option<String>);

/// The writer's cache of codes (text → code), per dictionary, and of sources (content type and id →
/// code). Bounded by what the store holds (a few hundred thousand short texts for a large tenant's
/// year); emptied when a write fails.
#[derive(Debug, Default)]
pub(super) struct Codes {
    /// Per dictionary, text → code (looked up by `&str`: no allocation for a text seen before).
    texts: HashMap<Dict, HashMap<String, i64>>,
    /// The last source coded: a blob's events share it, an import's too; each blob is a new one, so
    /// no more are kept (memory stays flat however many blobs a run stores).
    source: Option<(SourceKey, i64)>,
    /// `user_identities` as read or changed by this writer: UPN → (object id, last seen), `None` for
    /// a UPN with no row; and the UPNs changed since the last [`Codes::write_identities`].
    identities: HashMap<String, Option<(String, String)>>,
    changed: Vec<String>,
    /// The open transaction's latest launch of each app that carried a name, and one that carried an
    /// environment: app code → (time, name or environment code).
    names: HashMap<i64, (String, String)>,
    environments: HashMap<i64, (String, i64)>,
}

impl Codes {
    /// Forgets every cached code (after a rolled-back transaction).
    pub(super) fn clear(&mut self) {
        self.texts.clear();
        self.source = None;
        self.identities.clear();
        self.changed.clear();
        self.names.clear();
        self.environments.clear();
    }

    /// Remembers a new launch of `app` at `t` (stored form) with the name and environment it carried,
    /// where it is the open transaction's latest.
    pub(super) fn note_launch(
        &mut self,
        app: i64,
        t: &str,
        name: Option<&str>,
        environment: Option<i64>,
    ) {
        if let Some(name) = name
            && self
                .names
                .get(&app)
                .is_none_or(|(seen, _)| seen.as_str() <= t)
        {
            self.names.insert(app, (t.to_owned(), name.to_owned()));
        }
        if let Some(env) = environment
            && self
                .environments
                .get(&app)
                .is_none_or(|(seen, _)| seen.as_str() <= t)
        {
            self.environments.insert(app, (t.to_owned(), env));
        }
    }

    /// The open transaction's latest names and environments (see [`Codes::note_launch`]), emptied.
    #[allow(clippy::type_complexity)]
    pub(super) fn take_latest(
        &mut self,
    ) -> (HashMap<i64, (String, String)>, HashMap<i64, (String, i64)>) {
        (
            std::mem::take(&mut self.names),
            std::mem::take(&mut self.environments),
        )
    }

    /// The object id a UPN was last seen with, and when (`user_identities`, or this transaction's
    /// change to it).
    pub(super) fn identity(
        &mut self,
        tx: &Connection,
        upn: &str,
    ) -> rusqlite::Result<Option<&(String, String)>> {
        if !self.identities.contains_key(upn) {
            let row: Option<(String, String)> = tx
                .prepare_cached("SELECT object_id, last_seen FROM user_identities WHERE upn = ?1")?
                .query_row([upn], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            self.identities.insert(upn.to_owned(), row);
        }
        Ok(self.identities.get(upn).and_then(Option::as_ref))
    }

    /// Links a UPN to an object id, seen at `seen`; written by [`Codes::write_identities`].
    pub(super) fn set_identity(&mut self, upn: &str, object_id: &str, seen: &str) {
        self.identities.insert(
            upn.to_owned(),
            Some((object_id.to_owned(), seen.to_owned())),
        );
        self.changed.push(upn.to_owned());
    }

    /// Writes the links changed since the last call, in the caller's transaction.
    pub(super) fn write_identities(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        for upn in changed {
            if let Some(Some((object_id, seen))) = self.identities.get(&upn) {
                tx.prepare_cached(
                    "INSERT INTO user_identities (upn, object_id, last_seen) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(upn) DO UPDATE SET object_id = excluded.object_id, \
                     last_seen = excluded.last_seen",
                )?
                .execute(params![upn, object_id, seen])?;
            }
        }
        Ok(())
    }

    /// The code of `value` in `dict`, made if it is new; `None` for `None`.
    pub(super) fn code(
        &mut self,
        tx: &Connection,
        dict: Dict,
        value: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        let Some(value) = value else { return Ok(None) };
        if let Some(code) = self.texts.get(&dict).and_then(|t| t.get(value)) {
            return Ok(Some(*code));
        }
        let code = match tx
            .prepare_cached(dict.select())?
            .query_row([value], |r| r.get(0))
            .optional()?
        {
            Some(code) => code,
            None => {
                tx.prepare_cached(dict.insert())?.execute([value])?;
                tx.last_insert_rowid()
            }
        };
        self.texts
            .entry(dict)
            .or_default()
            .insert(value.to_owned(), code);
        Ok(Some(code))
    }

    /// The code of an event's source: a blob (`content_type` and `contentId`) or an import (no content
    /// type; `content_id` names the file).
    pub(super) fn source(
        &mut self,
        tx: &Connection,
        content_type: Option<&str>,
        content_id: Option<&str>,
    ) -> rusqlite::Result<i64> {
        let key = (
            content_type.map(str::to_owned),
            content_id.map(str::to_owned),
        );
        if let Some((last, code)) = &self.source
            && *last == key
        {
            return Ok(*code);
        }
        let code = match tx
            .prepare_cached("SELECT id FROM sources WHERE content_id IS ?1 AND content_type IS ?2")?
            .query_row(params![content_id, content_type], |r| r.get(0))
            .optional()?
        {
            Some(code) => code,
            None => {
                tx.prepare_cached(
                    "INSERT INTO sources (content_id, content_type) VALUES (?1, ?2)",
                )?
                .execute(params![content_id, content_type])?;
                tx.last_insert_rowid()
            }
        };
        self.source = Some((key, code));
        Ok(code)
    }
}
