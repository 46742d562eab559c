//! The dictionaries of the compact layout (schema 3): each repeated text of an event (its operation,
//! workload, `UserId`, app name, app id, environment id, person, source) is stored once in a small table
//! and referred to by an integer code, so an event row and its index entries hold integers, not text.
//!
//! [`Codes`] caches the codes the writer has looked up or made. A cached code may name a row of a
//! transaction that was rolled back: the writer calls [`Codes::clear`] whenever a write fails.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

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

/// The writer's cache of codes (text → code), per dictionary, and of sources (content type and id →
/// code). Bounded by what the store holds (a few hundred thousand short texts for a large tenant's
/// year); emptied when a write fails.
#[derive(Debug, Default)]
pub(super) struct Codes {
    texts: HashMap<(Dict, String), i64>,
    sources: HashMap<(Option<String>, String), i64>,
}

impl Codes {
    /// Forgets every cached code (after a rolled-back transaction).
    pub(super) fn clear(&mut self) {
        self.texts.clear();
        self.sources.clear();
    }

    /// The code of `value` in `dict`, made if it is new; `None` for `None`.
    pub(super) fn code(
        &mut self,
        tx: &Transaction<'_>,
        dict: Dict,
        value: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        let Some(value) = value else { return Ok(None) };
        if let Some(code) = self.texts.get(&(dict, value.to_owned())) {
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
        self.texts.insert((dict, value.to_owned()), code);
        Ok(Some(code))
    }

    /// The code of an event's source: a blob (`content_type` and `contentId`) or an import (no content
    /// type; `content_id` names the file).
    pub(super) fn source(
        &mut self,
        tx: &Transaction<'_>,
        content_type: Option<&str>,
        content_id: &str,
    ) -> rusqlite::Result<i64> {
        let key = (content_type.map(str::to_owned), content_id.to_owned());
        if let Some(code) = self.sources.get(&key) {
            return Ok(*code);
        }
        let code = match tx
            .prepare_cached("SELECT id FROM sources WHERE content_id = ?1 AND content_type IS ?2")?
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
        self.sources.insert(key, code);
        Ok(code)
    }
}
