//! The summary stage: what the run got and what it missed, decided once from what the stages report,
//! and the one line (or JSON) the admin reads.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::list::Listed;
use super::plan::Plan;
use crate::model::BlobRef;
use crate::redact::redact;
use crate::store::{Reader, StoreError};
use crate::time::ts;

/// A blob that was listed but could not be stored this run; the next run tries again.
#[derive(Debug, Clone, Serialize)]
pub struct FailedBlob {
    /// `contentId`.
    pub content_id: String,
    /// The content type it was listed under.
    pub content_type: String,
    /// `contentCreated`, RFC 3339 UTC.
    pub content_created: String,
    /// Why it was not stored ([`redact`]ed).
    pub error: String,
}

impl FailedBlob {
    /// The blob's fields and the error.
    pub(crate) fn new(blob: &BlobRef, error: &str) -> FailedBlob {
        FailedBlob {
            content_id: blob.content_id.clone(),
            content_type: blob.content_type.clone(),
            content_created: ts(blob.created),
            error: redact(error).into_owned(),
        }
    }
}

/// A segment whose listing did not reach its last page.
#[derive(Debug, Clone, Serialize)]
pub struct UnlistedSegment {
    /// The content type.
    pub content_type: String,
    /// The segment's start, RFC 3339 UTC (inclusive).
    pub start: String,
    /// Its end (exclusive).
    pub end: String,
    /// Why the listing stopped ([`redact`]ed).
    pub error: String,
}

/// What a run did, printed as one line or as JSON (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "complete", "incomplete" (something is missing; the next run retries it) or "failed" (see `error`).
    pub outcome: &'static str,
    /// The window's start, RFC 3339 UTC.
    pub window_start: String,
    /// The window's end.
    pub window_end: String,
    /// The content types listed.
    pub content_types: Vec<String>,
    /// Segments in the window.
    pub segments: usize,
    /// Segments listed to the end for every content type, with all their blobs stored.
    pub segments_complete: usize,
    /// Listing pages read.
    pub pages: usize,
    /// Distinct blobs listed.
    pub blobs_listed: usize,
    /// Blobs fetched and stored by this run.
    pub blobs_fetched: usize,
    /// Blobs listed that the ledger already held (not fetched again).
    pub blobs_already_stored: usize,
    /// Blobs listed but not stored (the next run retries them).
    pub blobs_failed: usize,
    /// Records in the fetched blobs.
    pub records_seen: usize,
    /// Records kept as events (the configured operations).
    pub events_kept: usize,
    /// Of those, events not stored before.
    pub events_new: usize,
    /// Wall time of the run.
    pub seconds: f64,
    /// API requests of the run: sent, refused as throttled, sent again.
    pub requests: crate::api::RequestCounts,
    /// The watermark after the run, RFC 3339 UTC.
    pub watermark: Option<String>,
    /// What the admin was told about the window (an extension to the watermark, a clamp).
    pub notes: Vec<String>,
    /// Blobs listed but not stored.
    pub failed_blobs: Vec<FailedBlob>,
    /// Segments whose listing did not reach the last page.
    pub unlisted_segments: Vec<UnlistedSegment>,
    /// Blobs listed by an earlier run that expired before they could be stored: reported once.
    pub lost_blobs: Vec<FailedBlob>,
    /// Why the run stopped early, when it did ("failed").
    pub error: Option<String>,
}

impl Summary {
    /// Whether the run got everything it was asked for.
    pub fn complete(&self) -> bool {
        self.outcome == "complete"
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let mut s = format!(
            "sync {} to {}: {} segments, {} pages, {} blobs listed ({} fetched, {} already stored), {} events \
             kept ({} new), {} requests ({} throttled), {:.1} s",
            self.window_start,
            self.window_end,
            self.segments,
            self.pages,
            self.blobs_listed,
            self.blobs_fetched,
            self.blobs_already_stored,
            self.events_kept,
            self.events_new,
            self.requests.sent,
            self.requests.throttled,
            self.seconds
        );
        if let Some(e) = &self.error {
            s.push_str(&format!("; FAILED: {e}"));
        } else if !self.complete() {
            s.push_str(&format!(
                "; INCOMPLETE: {} blobs not stored, {} segments not listed to the end (the next run retries \
                 them)",
                self.blobs_failed,
                self.unlisted_segments.len()
            ));
            if !self.lost_blobs.is_empty() {
                s.push_str(&format!(
                    ", {} blobs lost (expired before they could be fetched)",
                    self.lost_blobs.len()
                ));
            }
        }
        s
    }
}

/// Blobs listed by earlier runs that expired before they could be stored and were not reported yet,
/// each logged as an error. The run's record marks them reported (`Writer::finish_run`).
pub(crate) fn lost_blobs(
    store: &dyn Reader,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<FailedBlob>, StoreError> {
    Ok(store
        .lost(now)?
        .into_iter()
        .map(|p| {
            let error = format!(
                "it expired at {} before it could be stored (last error: {}); its events are missing: load \
                 them from a Purview audit export with `auditsync import`",
                p.expiration.map(ts).unwrap_or_default(),
                p.last_error.as_deref().unwrap_or("none")
            );
            tracing::error!(
                "lost: blob {} ({}, created {}): {error}",
                p.content_id,
                p.content_type,
                ts(p.created)
            );
            FailedBlob {
                content_id: p.content_id,
                content_type: p.content_type,
                content_created: ts(p.created),
                error,
            }
        })
        .collect())
}

/// What the listing and the writer add up to.
pub(crate) struct Assessment {
    /// Per segment of the plan: listed to the end for every stream, and every unit listed stored.
    pub(crate) complete: Vec<bool>,
    /// The segments whose listing stopped short.
    pub(crate) unlisted: Vec<UnlistedSegment>,
    /// Distinct units listed.
    pub(crate) listed: usize,
    /// Of those, units the ledger held before the run.
    pub(crate) already_stored: usize,
}

impl Assessment {
    /// `failed` when the run stopped early, `complete` when nothing is missing (`nothing_lost`: no unit
    /// failed and none expired), `incomplete` otherwise (the next run retries what is missing).
    pub(crate) fn outcome(&self, stopped: bool, nothing_lost: bool) -> &'static str {
        if stopped {
            "failed"
        } else if nothing_lost && self.unlisted.is_empty() && self.complete.iter().all(|c| *c) {
            "complete"
        } else {
            "incomplete"
        }
    }
}

/// Decides, per segment, whether the run covered it: every one of `streams` listed to its last page,
/// and every unit listed either in the ledger before (`known`) or committed now (`stored`).
pub(crate) fn assess(
    plan: &Plan,
    listed: &[Listed],
    streams: usize,
    known: &HashSet<String>,
    stored: &HashSet<String>,
) -> Assessment {
    let is_stored = |id: &String| known.contains(id) || stored.contains(id);
    let mut per_segment: HashMap<usize, (usize, bool)> = HashMap::new();
    let mut unlisted = Vec::new();
    let mut all: HashSet<&String> = HashSet::new();
    for l in listed {
        let ok = l.error.is_none() && l.keys.iter().all(is_stored);
        if let Some(err) = &l.error {
            let seg = plan.segments[l.segment];
            unlisted.push(UnlistedSegment {
                content_type: l.stream.clone(),
                start: ts(seg.start),
                end: ts(seg.end),
                error: redact(err).into_owned(),
            });
        }
        all.extend(l.keys.iter());
        let entry = per_segment.entry(l.segment).or_insert((0, true));
        entry.0 += 1;
        entry.1 &= ok;
    }
    let complete = (0..plan.segments.len())
        .map(|i| per_segment.get(&i) == Some(&(streams, true)))
        .collect();
    Assessment {
        complete,
        unlisted,
        listed: all.len(),
        already_stored: all.iter().filter(|id| known.contains(**id)).count(),
    }
}
