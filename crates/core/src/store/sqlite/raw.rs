//! The raw records (`AuditData`, byte for byte) of the compact layout: each one a zstd frame in
//! `events.raw`, compressed against a dictionary trained on the store's own records
//! (`raw_dictionaries`; `events.dictionary` names it, NULL for a frame made without one, -1 for a
//! value another program inserted through the `audit_events` view, kept as given until the next
//! writer adopts it: `events::adopt`).
//!
//! Audit records of one tenant share most of their text (field names, workloads, the tenant's
//! ids), so a dictionary of 64 KiB trained on a thousand of them brings a 1.7 KB launch record to
//! about 170 bytes, against 740 without one (BENCHMARKS.md, "Reports over a year": the bench's
//! first table; 1.4 KB to 120 on the simulator's records). Until a store holds
//! [`TRAIN_AFTER`] records, they are compressed without a dictionary; the commit that reaches it trains
//! one and compresses those records again with it, in the same transaction.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// Records stored without a dictionary that make the writer train one.
pub(super) const TRAIN_AFTER: u64 = 1_000;
/// Records a dictionary is trained on at most (the newest).
const SAMPLES: i64 = 4_000;
/// The dictionary's size in bytes.
const DICTIONARY_BYTES: usize = 64 * 1024;
/// zstd's level: 3, its default, is as small as 9 within 3% here at a sixth of the time.
const LEVEL: i32 = 3;
/// The largest record a frame may hold when read back (a blob is at most `blob_size_limit_mib`).
const MAX_RECORD: usize = 1 << 30;

/// Compresses records with the store's current dictionary (or none).
pub(super) struct Codec {
    /// The current dictionary's id and its compressor; `None` before one is trained.
    dictionary: Option<(i64, zstd::bulk::Compressor<'static>)>,
    plain: zstd::bulk::Compressor<'static>,
    /// Records stored without a dictionary, while there is none; when to try training next.
    untrained: u64,
    train_at: u64,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("dictionary", &self.dictionary.as_ref().map(|d| d.0))
            .field("untrained", &self.untrained)
            .finish_non_exhaustive()
    }
}

fn io_err(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl Codec {
    /// The codec of a store: its newest dictionary, or none and how many records wait for one.
    pub(super) fn load(conn: &rusqlite::Connection) -> rusqlite::Result<Codec> {
        let newest: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT id, dictionary FROM raw_dictionaries ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut codec = Codec {
            dictionary: None,
            plain: zstd::bulk::Compressor::new(LEVEL).map_err(io_err)?,
            untrained: 0,
            train_at: TRAIN_AFTER,
        };
        match newest {
            Some((id, bytes)) => codec.use_dictionary(id, &bytes)?,
            None => {
                let n: i64 = conn.query_row(
                    "SELECT count(*) FROM events WHERE dictionary IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                codec.untrained = u64::try_from(n).unwrap_or(0);
                codec.train_at = TRAIN_AFTER.max(codec.untrained + 1);
            }
        }
        Ok(codec)
    }

    fn use_dictionary(&mut self, id: i64, bytes: &[u8]) -> rusqlite::Result<()> {
        let compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, bytes).map_err(io_err)?;
        self.dictionary = Some((id, compressor));
        Ok(())
    }

    /// `raw` compressed: the dictionary's id (or `None`) and the frame.
    pub(super) fn compress(&mut self, raw: &[u8]) -> rusqlite::Result<(Option<i64>, Vec<u8>)> {
        match &mut self.dictionary {
            Some((id, c)) => Ok((Some(*id), c.compress(raw).map_err(io_err)?)),
            None => {
                self.untrained += 1;
                Ok((None, self.plain.compress(raw).map_err(io_err)?))
            }
        }
    }

    /// Whether records are compressed against a dictionary.
    pub(super) fn has_dictionary(&self) -> bool {
        self.dictionary.is_some()
    }

    /// Whether enough records wait for a dictionary to train one.
    pub(super) fn wants_training(&self) -> bool {
        self.dictionary.is_none() && self.untrained >= self.train_at
    }

    /// Trains a dictionary on the newest records stored without one, stores it, and compresses every
    /// record stored without one again with it, in the caller's transaction. When zstd cannot train
    /// one (too few or too alike records), tries again after twice as many.
    pub(super) fn train(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        let mut readers = Readers::default();
        let samples: Vec<Vec<u8>> = tx
            .prepare(
                "SELECT dictionary, raw FROM events WHERE dictionary IS NULL ORDER BY rowid DESC LIMIT ?1",
            )?
            .query_map([SAMPLES], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Vec<u8>>(1)?)))?
            .map(|row| row.and_then(|(d, frame)| readers.read(tx, d, &frame)))
            .collect::<rusqlite::Result<_>>()?;
        let Some(dictionary) = train(&samples) else {
            self.train_at = self.untrained.saturating_mul(2);
            tracing::debug!(
                samples = samples.len(),
                "zstd could not train a dictionary yet"
            );
            return Ok(());
        };
        tx.execute(
            "INSERT INTO raw_dictionaries (dictionary, trained_at, samples) VALUES (?1, ?2, ?3)",
            params![
                dictionary,
                crate::time::ts(chrono::Utc::now()),
                samples.len() as i64
            ],
        )?;
        let id = tx.last_insert_rowid();
        self.use_dictionary(id, &dictionary)?;
        recompress(tx, self, &mut readers)?;
        tracing::debug!(
            id,
            samples = samples.len(),
            "trained a dictionary for the raw records"
        );
        self.untrained = 0;
        Ok(())
    }
}

/// A dictionary trained on `samples`, if zstd can make one.
pub(super) fn train(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    if samples.len() < 8 {
        return None;
    }
    zstd::dict::from_samples(samples, DICTIONARY_BYTES).ok()
}

/// Every record stored without a dictionary, compressed again with the codec's, in batches by rowid.
fn recompress(tx: &Connection, codec: &mut Codec, readers: &mut Readers) -> rusqlite::Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT rowid, raw FROM events WHERE dictionary IS NULL AND rowid > ?1 \
                 ORDER BY rowid LIMIT 1000",
            )?
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.0;
        for (rowid, frame) in rows {
            let raw = readers.read(tx, None, &frame)?;
            let (dictionary, frame) = codec.compress(&raw)?;
            tx.prepare_cached("UPDATE events SET dictionary = ?2, raw = ?3 WHERE rowid = ?1")?
                .execute(params![rowid, dictionary, frame])?;
        }
    }
}

/// Decompressors, one per dictionary, loaded when first needed.
#[derive(Default)]
pub(super) struct Readers {
    by_dictionary: HashMap<Option<i64>, zstd::bulk::Decompressor<'static>>,
}

impl Readers {
    /// The record a frame holds, byte for byte.
    pub(super) fn read(
        &mut self,
        conn: &rusqlite::Connection,
        dictionary: Option<i64>,
        frame: &[u8],
    ) -> rusqlite::Result<Vec<u8>> {
        let d = match self.by_dictionary.entry(dictionary) {
            std::collections::hash_map::Entry::Occupied(d) => d.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let d = match dictionary {
                    None => zstd::bulk::Decompressor::new(),
                    Some(id) => {
                        let bytes: Vec<u8> = conn.query_row(
                            "SELECT dictionary FROM raw_dictionaries WHERE id = ?1",
                            [id],
                            |r| r.get(0),
                        )?;
                        zstd::bulk::Decompressor::with_dictionary(&bytes)
                    }
                }
                .map_err(io_err)?;
                slot.insert(d)
            }
        };
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(MAX_RECORD)
            .min(MAX_RECORD);
        d.decompress(frame, size).map_err(io_err)
    }
}
