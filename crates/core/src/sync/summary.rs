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
    /// The same in a few words without the blob's names, shared by every blob that failed the same
    /// way (`HTTP 500 Internal Server Error "upstream timeout"`): what [`Summary::causes`] counts.
    pub cause: String,
}

impl FailedBlob {
    /// The blob's fields, the error and its cause.
    pub(crate) fn new(blob: &BlobRef, error: &str, cause: &str) -> FailedBlob {
        FailedBlob {
            content_id: blob.content_id.clone(),
            content_type: blob.content_type.clone(),
            content_created: ts(blob.created),
            error: redact(error).into_owned(),
            cause: redact(cause).into_owned(),
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
    /// The same without the segment's names, as [`FailedBlob::cause`].
    pub cause: String,
}

/// Something a run knows is missing for good: the next run does not retry it, so it is reported by
/// this one (exit 1, printed even under `-q`). Kinds so far: `expired_content` (content never fetched
/// that is now older than the API's 7 days), `lost_blobs` (listed blobs that expired before they could
/// be stored), `quarantined` (records that could not be read, kept aside); a new kind needs only its
/// own `kind`, `count` and `detail` (and, for the summary line's few words, a case in `short`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Loss {
    /// What was lost, as a snake_case word: `expired_content`, `lost_blobs`, ….
    pub kind: String,
    /// How many: blobs, records, or 1 for one stretch of time.
    pub count: usize,
    /// The sentence the admin reads: what is missing, from when, and how to get it back.
    pub detail: String,
}

impl Loss {
    /// A loss of `count` of `kind`, explained by `detail`.
    pub fn new(kind: &str, count: usize, detail: impl Into<String>) -> Loss {
        Loss {
            kind: kind.to_owned(),
            count,
            detail: detail.into(),
        }
    }

    /// The few words of the summary line.
    fn short(&self) -> String {
        match self.kind.as_str() {
            "expired_content" => "content past the API's 7 days".to_owned(),
            "lost_blobs" => format!("{} blobs expired before they could be stored", self.count),
            "quarantined" => format!("{} records quarantined", self.count),
            other => format!("{} {}", self.count, other.replace('_', " ")),
        }
    }
}

/// What a run did, printed as one line or as JSON (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "complete", "incomplete" (something is missing: the next run retries what it can, `losses`
    /// name what it cannot) or "failed" (see `error`).
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
    /// Records of the stored blobs that could not be read: kept in the quarantine table (see
    /// `auditsync status`), the blob's other records stored. Reported by this run only (the blob is in
    /// the ledger now), and it makes the run incomplete.
    pub quarantined: usize,
    /// Wall time of the run.
    pub seconds: f64,
    /// API requests of the run: sent, refused as throttled, sent again.
    pub requests: crate::api::RequestCounts,
    /// The watermark after the run, RFC 3339 UTC.
    pub watermark: Option<String>,
    /// What the admin was told about the window (an extension to the watermark, a clamp).
    pub notes: Vec<String>,
    /// What the admin must see even under `-q` (a watermark in the future, not trusted).
    pub alerts: Vec<String>,
    /// What is lost for good and was reported by this run (each makes it exit 1).
    pub losses: Vec<Loss>,
    /// Blobs listed but not stored.
    pub failed_blobs: Vec<FailedBlob>,
    /// Segments whose listing did not reach the last page.
    pub unlisted_segments: Vec<UnlistedSegment>,
    /// Blobs listed by an earlier run that expired before they could be stored: reported once.
    pub lost_blobs: Vec<FailedBlob>,
    /// Why the run stopped early, when it did ("failed").
    pub error: Option<String>,
    /// Why the run stopped sending requests before it was done, when it did (too many identical
    /// failures in a row, or `run_deadline`); what it did not do is in `failed_blobs` and
    /// `unlisted_segments` (the outcome is "incomplete").
    pub stopped: Option<String>,
}

impl Summary {
    /// Whether the run got everything it was asked for (a quarantined record is something it did not).
    pub fn complete(&self) -> bool {
        // Quarantined records are a loss (`losses`), which makes the outcome "incomplete" already.
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
        if self.quarantined > 0 && self.error.is_some() {
            s.push_str(&format!(", {} records quarantined", self.quarantined));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("; FAILED: {e}"));
        } else if !self.complete() {
            if self.blobs_failed > 0
                || !self.unlisted_segments.is_empty()
                || self.segments_complete < self.segments
            {
                s.push_str(&format!(
                    "; INCOMPLETE: {} blobs not stored, {} segments not listed to the end (the next run \
                     retries them)",
                    self.blobs_failed,
                    self.unlisted_segments.len()
                ));
            }
            // Quarantined records are not lost (their text is kept), but no run reads them again.
            let (aside, lost): (Vec<&Loss>, Vec<&Loss>) =
                self.losses.iter().partition(|l| l.kind == "quarantined");
            for q in aside {
                s.push_str(&format!(
                    "; INCOMPLETE: {} records quarantined (unreadable, kept aside with the rest of their \
                     blobs stored; see auditsync status)",
                    q.count
                ));
            }
            if !lost.is_empty() {
                let what: Vec<String> = lost.iter().map(|l| l.short()).collect();
                s.push_str(&format!(
                    "; LOST: {} (no run can fetch it any more; see stderr)",
                    what.join(", ")
                ));
            }
            if let Some(stop) = &self.stopped {
                s.push_str(&format!("; {stop}"));
            }
        }
        s
    }
}

impl Summary {
    /// What is missing, one line per distinct cause with its count, instead of a line per blob or
    /// segment (an outage fails hundreds alike): first why the run stopped sending requests, if it
    /// did, then `N blobs not stored: <cause> (a, b, c, …)` and `N segments not listed to the end:
    /// <cause> (…)`, the largest group first, naming its first three; a cause of one is named first
    /// (`not stored: blob <id>: <cause>`, `not listed to the end: <type> from <start> to <end>:
    /// <cause>`). The detail of each is in `failed_blobs` and `unlisted_segments`.
    pub fn causes(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .stopped
            .iter()
            .map(|s| format!("stopped early: {s}"))
            .collect();
        lines.extend(grouped(
            self.failed_blobs
                .iter()
                .map(|f| (f.cause.as_str(), f.content_id.clone())),
            ("not stored: blob", "blobs not stored"),
        ));
        lines.extend(grouped(
            self.unlisted_segments.iter().map(|s| {
                (
                    s.cause.as_str(),
                    format!("{} from {} to {}", s.content_type, s.start, s.end),
                )
            }),
            ("not listed to the end:", "segments not listed to the end"),
        ));
        lines
    }
}

/// Most names a grouped line gives.
const NAMED: usize = 3;

/// One line per distinct cause (as [`crate::api::cause_key`] tells them apart, so that answers that
/// differ only in a request id or a time are one cause, shown as the first of them): `N <many>:
/// <cause> (name, name, name, …)`, largest group first; a group of one as `<one> <name>: <cause>`.
fn grouped<'a>(
    items: impl Iterator<Item = (&'a str, String)>,
    (one, many): (&str, &str),
) -> Vec<String> {
    let mut groups: Vec<(&str, usize, Vec<String>, String)> = Vec::new();
    for (cause, name) in items {
        let key = crate::api::cause_key(cause);
        let at = match groups.iter().position(|g| g.3 == key) {
            Some(at) => at,
            None => {
                groups.push((cause, 0, Vec::new(), key));
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        g.1 += 1;
        if g.2.len() < NAMED {
            g.2.push(name);
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    groups
        .into_iter()
        .map(|(cause, n, names, _)| {
            let more = if n > names.len() { ", …" } else { "" };
            match names.as_slice() {
                [name] if n == 1 => format!("{one} {name}: {cause}"),
                _ => format!("{n} {many}: {cause} ({}{more})", names.join(", ")),
            }
        })
        .collect()
}

/// Blobs listed (by earlier runs or this one) that expired by `now` before they could be stored and
/// were not reported yet, leaving out those in `already` (found earlier in the run); each is logged as
/// an error. The run's record marks them reported (`Writer::finish_run`).
pub(crate) fn lost_blobs(
    store: &dyn Reader,
    now: chrono::DateTime<chrono::Utc>,
    already: &[FailedBlob],
) -> Result<Vec<FailedBlob>, StoreError> {
    Ok(store
        .lost(now)?
        .into_iter()
        .filter(|p| !already.iter().any(|a| a.content_id == p.content_id))
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
                cause: "expired before it could be stored".to_owned(),
            }
        })
        .collect())
}

/// What is lost for good: the part of the window the API no longer serves, the blobs that expired
/// before they could be stored (each already logged by [`lost_blobs`]), and the records this run
/// quarantined. Under `-q` too: the caller prints every [`Loss`] at error level.
pub(crate) fn losses(plan: &Plan, lost: &[FailedBlob], quarantined: usize) -> Vec<Loss> {
    let mut losses = Vec::new();
    if let Some(expired) = &plan.expired {
        losses.push(Loss::new("expired_content", 1, expired.describe()));
    }
    if !lost.is_empty() {
        losses.push(Loss::new(
            "lost_blobs",
            lost.len(),
            format!(
                "{} blobs listed by earlier runs expired before they could be stored (each named above); their \
                 events are missing: load them with `auditsync import` from a Purview audit export",
                lost.len()
            ),
        ));
    }
    if quarantined > 0 {
        losses.push(Loss::new(
            "quarantined",
            quarantined,
            format!(
                "{quarantined} records could not be read: they are kept aside in the database's quarantine \
                 table with their blob and the reason (the text of the first 100 of a blob, the rest \
                 counted), and the rest of each blob is stored; `auditsync status` lists them"
            ),
        ));
    }
    losses
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
    /// failed and nothing is lost for good), `incomplete` otherwise.
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
                cause: redact(&l.cause.clone().unwrap_or_else(|| err.clone())).into_owned(),
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
