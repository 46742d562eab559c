//! The audit log the Graph API searches: every record of the tenant once (the Management API's
//! blobs repeat some; the log does not), over the laid-out catalogue and, before it, up to
//! [`MAX_HISTORY_DAYS`] days of history that only the log holds (blobs older than 7 days are expired
//! on the Management side anyway).
//!
//! Nothing here is stored: a history hour's blobs are drawn from [`Stream::History`] when a scan
//! reaches them, and each record from its slot's stream, as the catalogue's records are. A scan
//! resumes from a [`Position`], so a page costs what its records cost, whatever the history.

use std::ops::ControlFlow;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::Value;

use super::{DUPLICATE_SHARE, Kind, LATE_SHARE, MAX_HOURS, Origin, Stream, Tenant, guid, seeded};
use crate::SimSpec;

/// The most days of history the audit log holds ([`SimSpec::history_days`] is capped to it).
pub(crate) const MAX_HISTORY_DAYS: u32 = 400;

/// Marks the stream keys of history blobs, apart from catalogue indices.
const HISTORY_KEY: u64 = 1 << 63;

/// Hours of history before the catalogue's origin: `history_days` × 24 less the laid-out hours.
pub(super) fn history_hours(spec: &SimSpec) -> u32 {
    let laid_out = spec.hours.min(MAX_HOURS);
    (spec.history_days.min(MAX_HISTORY_DAYS) * 24).saturating_sub(laid_out)
}

/// A place in the audit log's order: the history's hours oldest first (`phase` 0, `major` counting
/// hours from the oldest), then the catalogue's blobs in index order (`phase` 1, `major` the index);
/// within an hour its blob (`blob`), within a blob its record slot (`slot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) phase: u8,
    pub(crate) major: u64,
    pub(crate) blob: u32,
    pub(crate) slot: u32,
}

impl Position {
    /// `phase.major.blob.slot`, the form [`Position::parse`] reads.
    pub(crate) fn token(self) -> String {
        format!("{}.{}.{}.{}", self.phase, self.major, self.blob, self.slot)
    }

    pub(crate) fn parse(text: &str) -> Option<Position> {
        let mut parts = text.split('.');
        let position = Position {
            phase: parts.next()?.parse().ok().filter(|p| *p <= 1)?,
            major: parts.next()?.parse().ok()?,
            blob: parts.next()?.parse().ok()?,
            slot: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(position)
    }
}

/// What a scan selects: `start <= CreationTime < end` (whole seconds) and an `Operation` among
/// `operations` (lower-case; empty: every operation).
pub(crate) struct AuditQuery<'a> {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) operations: &'a [String],
    /// Catalogue blobs looked at: those with an index below it (the catalogue as it was when the
    /// query was created; blobs published later are not in its results).
    pub(crate) catalogue_len: usize,
    /// Only the count matters: when the filter is LaunchPowerApp alone, records are not rendered
    /// (their `record` is `null` and `wrapper_id` empty), as being a launch is known before.
    pub(crate) count_only: bool,
}

/// One record of the audit log, as a scan meets it.
pub(crate) struct AuditRecord {
    pub(crate) position: Position,
    /// The Graph wrapper's `id`: a GUID of its own, not `auditData.Id`.
    pub(crate) wrapper_id: String,
    /// Uniform in [0, 1): the record is late when below [`SimSpec::graph_late_share`].
    pub(crate) late_draw: f64,
    /// `CreationTime` to the whole second.
    pub(crate) time: DateTime<Utc>,
    /// The record, exactly as the Management API's blob serves it (`auditData`).
    pub(crate) record: Value,
}

impl Tenant {
    /// The tenant's GUID.
    pub(crate) fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Visits every record `query` selects from `from` on, in [`Position`] order, until `visit`
    /// breaks. Blobs with a body given by `publish_body` are not in the log.
    pub(crate) fn scan_audit_log(
        &self,
        query: &AuditQuery<'_>,
        from: Position,
        mut visit: impl FnMut(AuditRecord) -> ControlFlow<()>,
    ) {
        if self.scan_history(query, from, &mut visit).is_break() {
            return;
        }
        let catalogue = self.read();
        let given = self
            .given
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let first = if from.phase == 1 { from.major } else { 0 };
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        let last = query.catalogue_len.min(catalogue.blobs.len());
        for index in first..last {
            if given.contains(&index) {
                continue;
            }
            let blob = &catalogue.blobs[index];
            let at = Position {
                phase: 1,
                major: index as u64,
                blob: 0,
                slot: 0,
            };
            let first_slot = if from.phase == 1 { from.slot } else { 0 };
            let first_slot = if index == first { first_slot } else { 0 };
            let scan = self.scan_blob(
                query,
                blob.origin(),
                index as u64,
                blob.ordinal > 0,
                at,
                first_slot,
                &mut visit,
            );
            if scan.is_break() {
                return;
            }
        }
    }

    /// The history's part of [`Tenant::scan_audit_log`].
    fn scan_history(
        &self,
        query: &AuditQuery<'_>,
        from: Position,
        visit: &mut impl FnMut(AuditRecord) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if from.phase > 0 {
            return ControlFlow::Continue(());
        }
        let hours = u64::from(self.history_hours);
        for major in from.major..hours {
            let k = hours - major; // hours before the origin, 1 for the newest
            let hour = self.origin - Duration::hours(k as i64);
            if hour - Duration::minutes(722) >= query.end {
                break; // this hour and every later one reach no record before `end`
            }
            if hour + Duration::hours(1) - Duration::minutes(4) < query.start {
                continue;
            }
            for (j, origin) in self.history_hour(k).into_iter().enumerate() {
                let j = j as u32;
                let resumed = major == from.major;
                if resumed && j < from.blob {
                    continue;
                }
                let first_slot = if resumed && j == from.blob {
                    from.slot
                } else {
                    0
                };
                let at = Position {
                    phase: 0,
                    major,
                    blob: j,
                    slot: 0,
                };
                let key = HISTORY_KEY | (k << 20) | u64::from(j);
                self.scan_blob(query, origin, key, false, at, first_slot, visit)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// The blobs of the history hour `k` hours before the origin, as the catalogue lays an hour
    /// out: `blobs_per_hour` Audit.General ones and one Audit.SharePoint or Audit.Exchange.
    fn history_hour(&self, k: u64) -> Vec<Origin> {
        let mut rng = seeded(self.seed, Stream::History, k, 0);
        let start = self.origin - Duration::hours(k as i64);
        let other = if k.is_multiple_of(2) {
            Kind::SharePoint
        } else {
            Kind::Exchange
        };
        let kinds = (0..self.blobs_per_hour)
            .map(|_| Kind::General)
            .chain([other]);
        let mut blobs: Vec<Origin> = kinds
            .map(|kind| Origin {
                created: start + Duration::milliseconds(rng.random_range(0..3_600_000)),
                kind,
                late: false,
            })
            .collect();
        for blob in &mut blobs {
            blob.late = rng.random_bool(LATE_SHARE);
        }
        blobs
    }

    /// Visits the records of one blob (stream key `key`) from `first_slot` on. `duplicates`: its
    /// slots first draw whether they copy an earlier blob's record (catalogue blobs but the first
    /// of a kind), and those are skipped: the log holds the original once.
    #[allow(clippy::too_many_arguments)]
    fn scan_blob(
        &self,
        query: &AuditQuery<'_>,
        origin: Origin,
        key: u64,
        duplicates: bool,
        at: Position,
        first_slot: u32,
        visit: &mut impl FnMut(AuditRecord) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        // A record is 5 to 90 minutes (late blobs: 3 to 12 hours) and up to 59.999 s older than its
        // blob; a minute of margin either side.
        let (oldest, newest) = if origin.late { (722, 179) } else { (92, 4) };
        if origin.created - Duration::minutes(oldest) >= query.end
            || origin.created - Duration::minutes(newest) < query.start
        {
            return ControlFlow::Continue(());
        }
        let launches_only = matches!(query.operations, [only] if only == "launchpowerapp");
        if launches_only && origin.kind != Kind::General {
            return ControlFlow::Continue(());
        }
        for slot in first_slot..self.records_per_blob {
            let mut rng = seeded(self.seed, Stream::Record, key, slot.into());
            if duplicates && rng.random_bool(DUPLICATE_SHARE) {
                continue;
            }
            let when = Self::when(&mut rng, origin);
            let time = whole_second(when);
            if time < query.start || time >= query.end {
                continue;
            }
            let draws = self.draw_event(&mut rng, when);
            let record = if launches_only {
                // Whether it is a launch is known before any text is made.
                let draw = self.launch_draw(&mut rng);
                if !draw.1 {
                    continue;
                }
                if query.count_only {
                    let mut side = seeded(self.seed, Stream::AuditLog, key, slot.into());
                    let _wrapper_id: [u8; 16] = side.random();
                    visit(AuditRecord {
                        position: Position { slot, ..at },
                        wrapper_id: String::new(),
                        late_draw: side.random(),
                        time,
                        record: Value::Null,
                    })?;
                    continue;
                }
                self.general(&mut rng, &self.render_event(&draws), draw)
            } else {
                self.fresh(&mut rng, origin.kind, &self.render_event(&draws))
            };
            let record = self.with_quirks(record, key, slot);
            if !selects(query.operations, &record) {
                continue;
            }
            let mut side = seeded(self.seed, Stream::AuditLog, key, slot.into());
            let wrapper_id = guid(&mut side);
            visit(AuditRecord {
                position: Position { slot, ..at },
                wrapper_id,
                late_draw: side.random(),
                time,
                record,
            })?;
        }
        ControlFlow::Continue(())
    }
}

/// `t` without its fraction of a second.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Whether `record`'s `Operation` is one of `operations` (lower-case), any case; every record when
/// `operations` is empty.
fn selects(operations: &[String], record: &Value) -> bool {
    operations.is_empty()
        || record["Operation"]
            .as_str()
            .is_some_and(|op| operations.iter().any(|o| o.eq_ignore_ascii_case(op)))
}
