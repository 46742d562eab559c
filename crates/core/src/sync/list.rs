//! The list stage: each content type × segment, page by page, following `NextPageUri` exactly as the
//! service gives it until a page has none (management-api.md §1.2). Blobs not already in the ledger
//! go to the writer (as pending) and to the fetch stage; listing may repeat freely.

use std::collections::HashSet;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::is_fatal;
use super::plan::Segment;
use super::progress::Counters;
use super::write::ToWriter;
use crate::api::{ApiClient, ApiError};
use crate::model::BlobRef;
use crate::time::ts;

/// Most pages one segment may take; a service that keeps sending `NextPageUri` is stopped there.
const MAX_PAGES: usize = 10_000;

/// One stream (content type) of one segment, as the listing left it.
pub(crate) struct Listed {
    /// The content type.
    pub(crate) stream: String,
    /// The segment's index in the plan.
    pub(crate) segment: usize,
    /// Why the listing did not reach the last page, if it did not.
    pub(crate) error: Option<String>,
    /// The same without the segment's names ([`ApiError::cause`]), to count segments by cause.
    pub(crate) cause: Option<String>,
    /// Every content id listed, stored already or not.
    pub(crate) keys: Vec<String>,
}

/// Where the lister sends what it found.
pub(crate) struct Outlets<'a> {
    /// To the writer: blobs to remember as pending.
    pub(crate) writer: &'a mpsc::Sender<ToWriter>,
    /// To the fetch stage: blobs to fetch (each once per run).
    pub(crate) fetch: mpsc::Sender<BlobRef>,
    /// Content ids in the ledger already: not pending, not fetched.
    pub(crate) known: &'a HashSet<String>,
    /// Shared counters.
    pub(crate) counters: &'a Counters,
}

/// Lists every content type × segment. Stops at the first error nothing can get past (returned), or
/// when a later stage has stopped (its queue is closed). Dropping `out.fetch` at the end tells the
/// fetch stage that nothing more is coming.
pub(crate) async fn list(
    api: &ApiClient,
    content_types: &[String],
    segments: &[Segment],
    out: Outlets<'_>,
) -> (Vec<Listed>, Option<ApiError>) {
    let mut listed = Vec::new();
    let mut dispatched = HashSet::new();
    for ct in content_types {
        for (i, seg) in segments.iter().enumerate() {
            let span = tracing::debug_span!(
                "segment",
                content_type = %ct,
                start = %ts(seg.start),
                end = %ts(seg.end)
            );
            let (entry, stop) = list_segment(api, ct, i, *seg, &out, &mut dispatched)
                .instrument(span)
                .await;
            match stop {
                Stop::Go => {
                    Counters::add(&out.counters.segments_listed, 1);
                    listed.push(entry);
                }
                // Left out, so the segment counts as not listed (its pages were not all read).
                Stop::Closed => return (listed, None),
                Stop::Fatal(e) => {
                    listed.push(entry);
                    return (listed, Some(e));
                }
            }
        }
    }
    (listed, None)
}

/// Whether listing goes on after a segment.
enum Stop {
    Go,
    /// A later stage stopped: there is no one to send to.
    Closed,
    /// Nothing else can succeed (no token, no permission, no subscription…).
    Fatal(ApiError),
}

/// Lists one segment of one content type to its last page.
async fn list_segment(
    api: &ApiClient,
    ct: &str,
    segment: usize,
    seg: Segment,
    out: &Outlets<'_>,
    dispatched: &mut HashSet<String>,
) -> (Listed, Stop) {
    let mut entry = Listed {
        stream: ct.to_owned(),
        segment,
        error: None,
        cause: None,
        keys: Vec::new(),
    };
    let mut url = Some(api.content_url(ct, seg.start, seg.end));
    let mut seen: HashSet<url::Url> = HashSet::new();
    while let Some(u) = url.take() {
        if !seen.insert(u.clone()) || seen.len() > MAX_PAGES {
            entry.error = Some(format!(
                "the service kept sending NextPageUri ({} pages, or the same page twice); the listing was \
                 stopped there",
                seen.len()
            ));
            break;
        }
        let page = match api.content_page(u, ct).await {
            Ok(page) => page,
            Err(e) if is_fatal(&e) => {
                entry.error = Some(e.to_string());
                entry.cause = Some(e.cause());
                return (entry, Stop::Fatal(e));
            }
            Err(e) => {
                // At -v: the command prints the segments not listed grouped by cause.
                tracing::debug!(
                    "listing {ct} from {} to {} failed: {e}",
                    ts(seg.start),
                    ts(seg.end)
                );
                entry.error = Some(e.to_string());
                entry.cause = Some(e.cause());
                break;
            }
        };
        Counters::add(&out.counters.pages, 1);
        Counters::add(&out.counters.listed, page.blobs.len());
        tracing::debug!(blobs = page.blobs.len(), next = page.next.is_some(), "page");
        url = page.next;
        entry
            .keys
            .extend(page.blobs.iter().map(|b| b.content_id.clone()));
        let new: Vec<BlobRef> = page
            .blobs
            .into_iter()
            .filter(|b| !out.known.contains(&b.content_id))
            .collect();
        if !dispatch(new, out, dispatched).await {
            return (entry, Stop::Closed);
        }
    }
    (entry, Stop::Go)
}

/// Sends new blobs to the writer (pending) and, once each, to the fetch stage. `false` when a queue
/// is closed.
async fn dispatch(new: Vec<BlobRef>, out: &Outlets<'_>, dispatched: &mut HashSet<String>) -> bool {
    if new.is_empty() {
        return true;
    }
    if out
        .writer
        .send(ToWriter::Listed(new.clone()))
        .await
        .is_err()
    {
        return false;
    }
    for b in new {
        if dispatched.insert(b.content_id.clone()) && out.fetch.send(b).await.is_err() {
            return false;
        }
    }
    true
}
